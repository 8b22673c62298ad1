//! Compile-fail test: wrong arity.
use optdsl::optimizer;

optimizer! {
    pub Clamped {
        hyper lr = 0.1;
        w -= lr * clamp(g, 1);
    }
}

fn main() {}
