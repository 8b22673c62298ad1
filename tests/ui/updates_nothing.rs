//! A rule that assigns neither w nor any state is an error at its name.

use optdsl::optimizer;

optimizer! {
    pub Idle { hyper lr = 0.1; let step = lr * g; }
}

fn main() {}
