//! Compile-fail test: a storage type the language does not have.
use optdsl::optimizer;

optimizer! {
    pub Momentum8 {
        hyper lr = 0.01, mu = 0.9;
        state v: int8 = 0;
        v = mu * v + g;
        w -= lr * v;
    }
}

fn main() {}
