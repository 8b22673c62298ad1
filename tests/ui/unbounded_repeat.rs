//! Compile-fail test: a `repeat` count from a hyperparameter with no bound.
use optdsl::optimizer;

optimizer! {
    pub Iterate {
        hyper lr = 0.01, k = 5;
        let x = g;
        repeat k {
            x = 1.5 * x - 0.5 * (x @ x^T) @ x;
        }
        w -= lr * x;
    }
}

fn main() {}
