//! Compile-fail test: assign to gradient.
use optdsl::optimizer;

optimizer! {
    pub Clip {
        hyper c = 1;
        g = clamp(g, -c, c);
        w -= g;
    }
}

fn main() {}
