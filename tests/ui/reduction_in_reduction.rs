//! Compile-fail test: reduction in reduction.
use optdsl::optimizer;

optimizer! {
    pub Lamb {
        w -= g * norm(g / norm(w));
    }
}

fn main() {}
