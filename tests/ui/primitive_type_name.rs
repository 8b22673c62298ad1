//! A rule named after a Rust primitive type is an error at the name.

use optdsl::optimizer;

optimizer! {
    pub f64 { hyper lr = 0.1; w -= lr * g; }
}

fn main() {}
