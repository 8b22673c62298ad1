//! Compile-fail test: assign to step.
use optdsl::optimizer;

optimizer! {
    pub Restart { hyper lr = 0.1; t = 0; w -= lr * g; }
}

fn main() {}
