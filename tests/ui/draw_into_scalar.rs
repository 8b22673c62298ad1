//! Compile-fail test: a scalar state started from a per-element draw.
use optdsl::optimizer;

optimizer! {
    pub Noisy {
        scalar s = rand();
        w -= s * g;
    }
}

fn main() {}
