//! Compile-fail test: state init uses step.
use optdsl::optimizer;

optimizer! {
    pub Odd {
        state m = t;
        m = m + g;
        w -= m;
    }
}

fn main() {}
