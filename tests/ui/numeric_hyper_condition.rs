//! `if nesterov` on a numeric hyperparameter suggests a boolean hyper or `nesterov != 0`.

use optdsl::optimizer;

optimizer! {
    pub Nag { hyper lr = 0.1, nesterov = 0; if nesterov { w -= lr * g; } }
}

fn main() {}
