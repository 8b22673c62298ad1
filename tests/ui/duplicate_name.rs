//! Compile-fail test: duplicate name.
use optdsl::optimizer;

optimizer! {
    pub Twice {
        hyper lr = 0.1;
        state lr = 0;
        w -= lr * g;
    }
}

fn main() {}
