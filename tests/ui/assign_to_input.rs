//! Compile-fail test: assign to input.
use optdsl::optimizer;

optimizer! {
    pub Curvature {
        input h;
        h = abs(h);
        w -= g / h;
    }
}

fn main() {}
