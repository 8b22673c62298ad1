//! Compile-fail test: unknown function.
use optdsl::optimizer;

optimizer! {
    /// Sign descent.
    pub SignDescent { hyper lr = 0.01; w -= lr * sgn(g); }
}

fn main() {}
