//! Compile-fail test: branch types differ.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        w -= select(g > 0, true, 1);
    }
}

fn main() {}
