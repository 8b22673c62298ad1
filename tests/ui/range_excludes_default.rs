//! A hyperparameter range that excludes its own default is an error at the range.

use optdsl::optimizer;

optimizer! {
    pub Ranged { hyper b1 = 1.5 where 0 <= b1 < 1; w -= b1 * g; }
}

fn main() {}
