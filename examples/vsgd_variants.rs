//! vSGD (Schaul, Zhang & LeCun 2012) on the course's USPS network
//! (256-128-64-10 sigmoid, softmax, cross-entropy, batches of 32, 20 epochs,
//! f32) against tuned SGD, over seeds 0 to 4: the built-ins at their
//! defaults, ablations of `vsgd_mb`'s recipe, and the curvature along
//! vSGD-l's step measured on SGD's path.
//!
//! Run with `cargo run --release --example vsgd_variants` (about 75 s on
//! one core). Four tables:
//!
//! 1. final test accuracy, mean and standard deviation over the seeds, from
//!    `train`'s default start (Xavier, ChaCha8) and from PyTorch's (`--init
//!    torch --rng torch`): `sgd` at `compare`'s lr = 0.5, `vsgd` at
//!    `compare`'s row, `vsgd_mb` and `vsgd_mb_b` at their defaults, each the
//!    run `optdsl train --optimizer NAME --seed S` makes;
//! 2. `vsgd_mb` with one part of its recipe changed (Xavier, ChaCha8);
//! 3. `vsgd_mb`'s r and memory τ per tensor after its run from seed 0;
//! 4. along SGD's path (lr = 0.5, seed 0, f64), every 1000 steps to 4000,
//!    per tensor: the median of vSGD-l's per-element rate r/h̄ (running means
//!    with memory 100), the curvature of the mini-batch's loss along that
//!    step u (central differences of the gradient) over the diagonal's
//!    prediction Σ h u², and the multiple of u that minimizes the
//!    mini-batch's loss along u (gᵀu / uᵀHu); medians over the four points.

use optdsl::data::{usps, Batches, Dataset};
use optdsl::net::{Activation, Init, Network, NetworkSpec, Workspace};
use optdsl::rng::Generator;
use optdsl::stats::median;
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, optimizer, DynRule, HyperValue};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

optimizer! {
    /// `vsgd_mb` without the mini-batch estimates: v̄ averages the squared
    /// mini-batch gradient, taken as one sample (r = ḡ²/v̄), with the same
    /// slow start.
    pub WithoutMiniBatchForm {
        hyper c = 4180, n0 = 10, eps = 1e-9;
        input h: curvature;
        state gbar = 0, vbar = 0, hbar = 0, tau = n0;
        if t <= n0 {
            gbar = gbar + (g - gbar) / t;
            vbar = vbar + (g * g - vbar) / t;
            hbar = hbar + (h - hbar) / t;
            if t + 1 > n0 {
                vbar = c * (vbar + eps);
                hbar = c * (hbar + eps);
            }
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g * g + eps - vbar) / tau;
            hbar = hbar + (h + eps - hbar) / tau;
            let r = min(gbar * gbar / vbar, 1);
            tau = (1 - r) * tau + 1;
            w -= r / hbar * g;
        }
    }
}

const SEEDS: u64 = 5;
const MEMORY: f64 = 100.0;

/// A built-in with these hyperparameters.
fn builtin(name: &str, hypers: &[(&str, f64)]) -> Box<dyn DynRule> {
    let mut rule = builtin_rule(name).expect("built in");
    for &(k, v) in hypers {
        rule.set_hyper(k, HyperValue::Num(v)).expect("a hyper");
    }
    rule
}

/// The test accuracy after 20 epochs from seed `seed` (the accuracy where
/// training stopped on a non-finite loss).
fn accuracy(
    rule: &dyn DynRule,
    seed: u64,
    torch: bool,
    data: &(Dataset, Dataset),
) -> optdsl::Result<f64> {
    let mut spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    let generator = if torch {
        spec.layers
            .iter_mut()
            .for_each(|l| l.init = Some(Init::Torch));
        Generator::Torch
    } else {
        Generator::ChaCha8
    };
    let net = Network::<f32>::new_with(spec, seed, generator)?;
    let config = TrainConfig {
        seed,
        generator,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(net, rule.clone_box(), config)?;
    match trainer.fit(&data.0, &data.1, &mut Silent) {
        Ok(()) => Ok(trainer.records().last().expect("20 epochs").test_accuracy),
        Err(_) => Ok(trainer.evaluate(&data.1)?.1),
    }
}

/// "mean (sd)" of the accuracies over the seeds, in percent, and the lowest.
fn summary(rule: &dyn DynRule, torch: bool, data: &(Dataset, Dataset)) -> optdsl::Result<String> {
    let accs = (0..SEEDS)
        .map(|s| accuracy(rule, s, torch, data))
        .collect::<optdsl::Result<Vec<f64>>>()?;
    let n = accs.len() as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let sd = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let low = accs.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(format!(
        "{:.2} ({:.2}), lowest {:.2}",
        100.0 * mean,
        100.0 * sd,
        100.0 * low
    ))
}

/// Table 3: per tensor, the medians over steps 1000..=4000 of SGD's path of
/// (vSGD-l's median rate, curvature along its step over the diagonal's,
/// the best multiple of its step).
fn curvature_along_the_step(train: &Dataset) -> optdsl::Result<Vec<[f64; 3]>> {
    let spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    let mut net = Network::<f64>::new(spec, 0)?;
    let n = net.params().len();
    let segments = net.segments().to_vec();
    let mut ws = Workspace::new(&net, 32);
    let (mut h, mut g2) = (vec![0.0; n], vec![0.0; n]);
    let (mut gbar, mut vbar, mut hbar) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    rng.set_stream(1);
    let mut seen: Vec<Vec<[f64; 3]>> = vec![Vec::new(); segments.len()];
    let mut step = 0usize;
    while step < 4000 {
        let mut batches = Batches::new(train.len(), 32);
        batches.shuffle(&mut rng);
        for rows in batches.iter().filter(|b| b.len() == 32) {
            let rows = ws.stage_rows(train, rows);
            net.staged_loss_grad_with(&mut ws, rows, Some(&mut h), Some(&mut g2))?;
            step += 1;
            let a = (1.0 / step as f64).max(1.0 / MEMORY);
            let g = ws.grads().to_vec();
            for i in 0..n {
                gbar[i] += (g[i] - gbar[i]) * a;
                vbar[i] += (g2[i] - vbar[i]) * a;
                hbar[i] += (h[i] - hbar[i]) * a;
            }
            if step.is_multiple_of(1000) {
                for (k, seg) in segments.iter().enumerate() {
                    let range = seg.range();
                    let rate: Vec<f64> = range
                        .clone()
                        .map(|i| {
                            let q = gbar[i] * gbar[i];
                            32.0 * q / (vbar[i] + 31.0 * q) / hbar[i]
                        })
                        .collect();
                    let u: Vec<f64> = range
                        .clone()
                        .map(|i| rate[i - range.start] * g[i])
                        .collect();
                    let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
                    let eps = 1e-4 / norm;
                    let w0 = net.params().to_vec();
                    let mut along = |sign: f64| -> optdsl::Result<Vec<f64>> {
                        for (i, du) in range.clone().zip(&u) {
                            net.params_mut()[i] = w0[i] + sign * eps * du;
                        }
                        net.staged_share_loss_and_grad(&mut ws, rows, rows)?;
                        net.params_mut().copy_from_slice(&w0);
                        Ok(ws.grads()[range.clone()].to_vec())
                    };
                    let (up, down) = (along(1.0)?, along(-1.0)?);
                    let uhu: f64 = u
                        .iter()
                        .zip(up.iter().zip(&down))
                        .map(|(du, (a, b))| du * (a - b) / (2.0 * eps))
                        .sum();
                    let diagonal: f64 = range.clone().zip(&u).map(|(i, du)| h[i] * du * du).sum();
                    let gu: f64 = range.clone().zip(&u).map(|(i, du)| g[i] * du).sum();
                    seen[k].push([median(rate), uhu / diagonal, gu / uhu]);
                }
            }
            net.params_mut()
                .iter_mut()
                .zip(&g)
                .for_each(|(w, g)| *w -= 0.5 * g);
            if step == 4000 {
                break;
            }
        }
    }
    Ok(seen
        .into_iter()
        .map(|points| {
            let col = |j: usize| median(points.iter().map(|p| p[j]).collect());
            [col(0), col(1), col(2)]
        })
        .collect())
}

/// `vsgd_mb`'s state after its 20 epochs from seed 0 (default start): the
/// steps taken, and per tensor the medians of its r and of its memory τ.
fn memory_after_training(data: &(Dataset, Dataset)) -> optdsl::Result<(u64, Vec<[f64; 2]>)> {
    let spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 0)?;
    let mut trainer = Trainer::new(net, builtin("vsgd_mb", &[]), TrainConfig::default())?;
    trainer.fit(&data.0, &data.1, &mut Silent)?;
    let state = trainer.optimizer().state();
    let tensors = state
        .groups
        .iter()
        .flat_map(|g| &g.states)
        .map(|s| {
            let [gbar, vbar, _, tau] = &s.buffers[..] else {
                unreachable!("vsgd_mb keeps four buffers")
            };
            let r = gbar
                .iter()
                .zip(vbar)
                .map(|(&g, &v)| {
                    let q = f64::from(g) * f64::from(g);
                    32.0 * q / (f64::from(v) + 31.0 * q)
                })
                .collect();
            [
                median(r),
                median(tau.iter().map(|&t| f64::from(t)).collect()),
            ]
        })
        .collect();
    Ok((trainer.steps(), tensors))
}

fn main() -> optdsl::Result<()> {
    let split = usps()?;
    let data = (split.train, split.test);
    let rows: [(&str, Box<dyn DynRule>); 4] = [
        ("sgd lr=0.5", builtin("sgd", &[("lr", 0.5)])),
        (
            "vsgd c=2 hmin=2 tau0=10",
            builtin("vsgd", &[("c", 2.0), ("hmin", 2.0), ("tau0", 10.0)]),
        ),
        ("vsgd_mb (defaults)", builtin("vsgd_mb", &[])),
        ("vsgd_mb_b (defaults)", builtin("vsgd_mb_b", &[])),
    ];
    println!("| optimizer | Xavier, ChaCha8: mean (sd) % | `--init torch --rng torch` |");
    println!("| --- | ---: | ---: |");
    for (label, rule) in &rows {
        println!(
            "| {label} | {} | {} |",
            summary(rule.as_ref(), false, &data)?,
            summary(rule.as_ref(), true, &data)?
        );
    }
    println!();
    let ablations: [(&str, Box<dyn DynRule>); 6] = [
        ("defaults (C = 4180, n0 = 10)", builtin("vsgd_mb", &[])),
        ("C = 2", builtin("vsgd_mb", &[("c", 2.0)])),
        ("C = 100", builtin("vsgd_mb", &[("c", 100.0)])),
        ("C = 41802", builtin("vsgd_mb", &[("c", 41802.0)])),
        ("hmin = 1", builtin("vsgd_mb", &[("hmin", 1.0)])),
        (
            "without the mini-batch form",
            Box::new(WithoutMiniBatchForm::default()),
        ),
    ];
    println!("| vsgd_mb | mean (sd) % |");
    println!("| --- | ---: |");
    for (label, rule) in &ablations {
        println!("| {label} | {} |", summary(rule.as_ref(), false, &data)?);
    }
    println!();
    let names = ["W1", "W2", "W3", "b1", "b2", "b3"];
    let (steps, memory) = memory_after_training(&data)?;
    println!("| vsgd_mb, seed 0, after {steps} steps | median r | median τ |");
    println!("| --- | ---: | ---: |");
    for (name, [r, tau]) in names.iter().zip(memory) {
        println!("| {name} | {r:.1e} | {tau:.0} |");
    }
    println!();
    println!("| tensor | vSGD-l rate r/h̄ (median) | curvature along its step / diagonal's | best multiple of the step |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, [rate, ratio, best]) in names.iter().zip(curvature_along_the_step(&data.0)?) {
        println!("| {name} | {rate:.3} | {ratio:.1} | {best:.3} |");
    }
    Ok(())
}
