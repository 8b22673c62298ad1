//! Compile-fail test: rust keyword hyper.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        hyper type = 1;
        w -= g;
    }
}

fn main() {}
