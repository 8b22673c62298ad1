//! Compile-fail test: a matrix product whose inner dimensions differ.
use optdsl::optimizer;

optimizer! {
    pub Gram {
        hyper lr = 0.01;
        let a = g @ g;
        w -= lr * (a @ g);
    }
}

fn main() {}
