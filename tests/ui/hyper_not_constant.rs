//! Compile-fail test: hyper not constant.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        hyper lr = 2 * t;
        w -= lr * g;
    }
}

fn main() {}
