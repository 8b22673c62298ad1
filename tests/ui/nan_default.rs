//! A hyperparameter whose default is not a finite number (0/0) is an error at the default.

use optdsl::optimizer;

optimizer! {
    pub Nan { hyper lr = 0 / 0; w -= lr * g; }
}

fn main() {}
