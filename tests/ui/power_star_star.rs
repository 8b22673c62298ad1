//! `**` (another language's power) points at `^`.

use optdsl::optimizer;

optimizer! {
    pub Squares { hyper lr = 0.1; w -= lr * g**2; }
}

fn main() {}
