//! Compile-fail test: used before let.
use optdsl::optimizer;

optimizer! {
    pub Early {
        hyper lr = 0.1;
        w -= lr * d;
        let d = 2 * g;
    }
}

fn main() {}
