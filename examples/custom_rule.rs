//! A custom update rule written the way a paper writes it, compiled by
//! `optimizer!` and run on a small ill-conditioned quadratic.
//!
//! Run with `cargo run --release --example custom_rule`.

use optdsl::{optimizer, UpdateRule};

optimizer! {
    /// Adam with the bias corrections written out (Kingma & Ba 2015, Algorithm 1).
    pub MyAdam {
        hyper lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        state m = 0, v = 0;
        m = b1*m + (1-b1)*g;
        v = b2*v + (1-b2)*g*g;
        let mhat = m / (1 - b1^t);
        let vhat = v / (1 - b2^t);
        w -= lr*mhat/(sqrt(vhat)+eps);
    }

    /// Normalized gradient descent with a zero-norm guard: the branch not
    /// taken may divide 0 by 0, and its NaN never reaches `w`.
    pub NormalizedGd {
        hyper lr = 0.1;
        let n = norm(g);
        w -= lr * if n > 0 { g / n } else { 0 * g };
    }
}

/// f(w) = sum_i c_i w_i^2 / 2 with condition number 100.
fn gradient(w: &[f64]) -> (f64, Vec<f64>) {
    let c: Vec<f64> = (0..w.len())
        .map(|i| 1.0 + 99.0 * i as f64 / (w.len() - 1) as f64)
        .collect();
    let loss = w.iter().zip(&c).map(|(x, c)| 0.5 * c * x * x).sum();
    (loss, w.iter().zip(&c).map(|(x, c)| c * x).collect())
}

fn run(name: &str, rule: &impl UpdateRule) {
    let mut w = vec![1.0f64; 10];
    let mut state = rule.init::<f64>(w.len());
    let (start, _) = gradient(&w);
    for _ in 0..300 {
        let (_, g) = gradient(&w);
        rule.step(&mut state, &mut w, &g);
    }
    let (end, _) = gradient(&w);
    println!(
        "{name:<14} loss {start:.3e} -> {end:.3e} after {} steps",
        state.t
    );
}

fn main() {
    run(
        "MyAdam",
        &MyAdam {
            lr: 0.05,
            ..Default::default()
        },
    );
    run("NormalizedGd", &NormalizedGd { lr: 0.01 });
}
