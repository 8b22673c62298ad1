//! Compile-fail test: function as value.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        w -= sqrt * g;
    }
}

fn main() {}
