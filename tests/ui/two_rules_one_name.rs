//! Two rules of one name in one block: one error at the second name (not rustc's E0428 and E0119).

use optdsl::optimizer;

optimizer! {
    pub R { hyper lr = 0.1; w -= lr * g; }
    pub R { hyper lr = 0.2; w -= lr * g; }
}

fn main() {}
