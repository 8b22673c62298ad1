//! Compile-fail test: declare builtin.
use optdsl::optimizer;

optimizer! {
    pub Shadow {
        let g = 2;
        w -= g;
    }
}

fn main() {}
