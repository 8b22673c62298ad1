//! Compile-fail test: condition not boolean.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        if g { w -= 1; }
    }
}

fn main() {}
