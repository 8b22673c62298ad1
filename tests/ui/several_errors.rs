//! Compile-fail test: several errors.
use optdsl::optimizer;

optimizer! {
    pub Many {
        hyper lr = 0.1;
        g = 0;
        w -= lr * sgn(g) + mmm;
    }
}

fn main() {}
