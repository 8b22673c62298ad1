//! A literal beyond f64 (1e400) is an error at the literal, not infinity.

use optdsl::optimizer;

optimizer! {
    pub Huge { hyper lr = 1e400; w -= lr * g; }
}

fn main() {}
