//! Compile-fail test: assign to hyper.
use optdsl::optimizer;

optimizer! {
    pub Decay {
        hyper lr = 0.1;
        lr *= 0.99;
        w -= lr * g;
    }
}

fn main() {}
