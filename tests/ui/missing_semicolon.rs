//! Compile-fail test: missing semicolon.
use optdsl::optimizer;

optimizer! {
    pub Descent {
        hyper lr = 0.1
        w -= lr * g;
    }
}

fn main() {}
