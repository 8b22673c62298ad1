//! Compile-fail test: the unsigned 8-bit map for a moving average of `g`,
//! which can be negative.
use optdsl::optimizer;

optimizer! {
    pub Adam8 {
        hyper lr = 1e-3, b1 = 0.9 where 0 <= b1 < 1, b2 = 0.999 where 0 <= b2 < 1;
        state m: uq8 = 0, v: uq8 = 0;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        w -= lr * m / (sqrt(v) + 1e-8);
    }
}

fn main() {}
