//! Compile-fail test: reduction of scalar.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        hyper lr = 0.1;
        w -= g * sum(lr);
    }
}

fn main() {}
