//! `for` says the language has no loops, instead of `expected =`.

use optdsl::optimizer;

optimizer! {
    pub Looping { hyper lr = 0.1; for i in 0 { w -= lr * g; } }
}

fn main() {}
