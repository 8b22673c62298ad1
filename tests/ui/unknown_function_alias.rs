//! Compile-fail test: unknown function alias.
use optdsl::optimizer;

optimizer! {
    pub LogDescent { hyper lr = 0.01; w -= lr * log(1 + g); }
}

fn main() {}
