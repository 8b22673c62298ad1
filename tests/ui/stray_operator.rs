//! Compile-fail test: stray operator.
use optdsl::optimizer;

optimizer! {
    pub Descent {
        hyper lr = 0.1;
        w -= lr * * g;
    }
}

fn main() {}
