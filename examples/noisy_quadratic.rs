//! vSGD and AdaSecant, untuned, against the best SGD with 1/t decay over a
//! learning-rate grid, on the vSGD paper's noisy quadratics.
//!
//! Run: `cargo run --release --example noisy_quadratic`

#[path = "support/noisy.rs"]
mod noisy;

use noisy::{best_sgd, mean_loss, NoisyQuadratic};

fn main() {
    let steps = 10_000;
    let seeds = 20;
    let problems = [
        ("1-d, h = 1", NoisyQuadratic::new(1, 1.0, 1.0)),
        ("10-d, h in [0.1, 10]", NoisyQuadratic::new(10, 0.1, 10.0)),
        (
            "10-d, h in [0.01, 100]",
            NoisyQuadratic::new(10, 0.01, 100.0),
        ),
    ];
    println!("final excess loss ½Σh w², mean of {seeds} runs of {steps} samples (σ = 1, w0 = 2)\n");
    println!(
        "| problem | best SGD 1/t (η₀, δ) | vsgd | vsgd / SGD | vsgd_fd | vsgd_fd / SGD | adasecant | adasecant / SGD |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, p) in &problems {
        let (sgd, lr, decay) = best_sgd(p, steps, seeds);
        let run = |n: &str| {
            mean_loss(
                optdsl::builtin_rule(n).unwrap().as_ref(),
                None,
                p,
                steps,
                seeds,
            )
        };
        let (v, vfd, ada) = (run("vsgd"), run("vsgd_fd"), run("adasecant"));
        println!(
            "| {name} | {sgd:.3e} ({lr:.3}, {decay}) | {v:.3e} | {:.2} | {vfd:.3e} | {:.2} | {ada:.3e} | {:.2} |",
            v / sgd,
            vfd / sgd,
            ada / sgd
        );
    }
}
