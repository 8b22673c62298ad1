//! Compile-fail test: boolean in arithmetic.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        hyper nesterov = false;
        w -= nesterov * g;
    }
}

fn main() {}
