//! Compile-fail test: a random draw given an argument (draws take none).
use optdsl::optimizer;

optimizer! {
    pub Noisy {
        hyper lr = 0.1;
        w -= lr * (g + randn(g));
    }
}

fn main() {}
