//! `pub(in crate)` names what may follow `pub(`, not the grammar's rule name.

use optdsl::optimizer;

optimizer! {
    pub(in crate) R { hyper lr = 0.1; w -= lr * g; }
}

fn main() {}
