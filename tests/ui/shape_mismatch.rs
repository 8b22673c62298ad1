//! Compile-fail test: a per-row value assigned to a per-column state.
use optdsl::optimizer;

optimizer! {
    pub Factored {
        hyper lr = 0.01;
        state c: [cols] = 0;
        c = row_mean(g * g);
        w -= lr * g / sqrt(c + 1e-8);
    }
}

fn main() {}
