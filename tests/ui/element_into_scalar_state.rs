//! Compile-fail test: element into scalar state.
use optdsl::optimizer;

optimizer! {
    pub Average {
        scalar avg = 0;
        avg = 0.9 * avg + 0.1 * g;
        w -= avg;
    }
}

fn main() {}
