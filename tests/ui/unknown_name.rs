//! Compile-fail test: unknown name.
use optdsl::optimizer;

optimizer! {
    pub Descent {
        hyper lr = 0.01;
        w -= lrr * g;
    }
}

fn main() {}
