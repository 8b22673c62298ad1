//! Trains the slides' network on USPS as `optdsl compare` does (one row, one
//! seed) and writes what another framework needs to replay the run step for
//! step: the initial weights, each epoch's row order, and optdsl's history.
//!
//! Run with
//! `cargo run --release --example export_run -- DIR LABEL [f32|f64] [SEED] [EPOCHS] [INIT] [RNG]`
//! (LABEL: sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam; INIT:
//! xavier, he, torch or auto; RNG: chacha8 or torch; defaults f64, seed 0,
//! 20 epochs, auto, chacha8), then `python3 tools/pytorch_usps.py --replay DIR
//! --dtype f64`. DIR receives, as plain text:
//!
//! - `meta.txt`: `label= batch= epochs= seed= dtype=`, one a line;
//! - `w{l}.txt`, `b{l}.txt`: layer `l`'s initial weights (`units` rows of
//!   `fan_in`, PyTorch's `nn.Linear.weight`) and biases;
//! - `order.txt`: a line per epoch, the training rows in the order they are
//!   used; mini-batches are consecutive runs of `batch` rows, the last shorter;
//! - `history.txt`: a line per epoch: epoch, train loss, test accuracy, test
//!   loss, train accuracy;
//! - `params.txt`: the final parameters in the network's buffer order (every
//!   weight matrix, then every bias), one a line.

use optdsl::data::{usps, Dataset};
use optdsl::net::{Activation, Init, NetFloat, Network, NetworkSpec};
use optdsl::rng::Generator;
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, DynRule, HyperValue};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The settings of `optdsl compare`'s rows that PyTorch figures are quoted for.
fn rule_for(label: &str) -> Result<Box<dyn DynRule>, String> {
    let (name, settings): (&str, &[(&str, HyperValue)]) = match label {
        "sgd" => ("sgd", &[("lr", HyperValue::Num(0.5))]),
        "momentum" => (
            "sgd",
            &[
                ("lr", HyperValue::Num(0.1)),
                ("momentum", HyperValue::Num(0.9)),
            ],
        ),
        "nesterov" => (
            "sgd",
            &[
                ("lr", HyperValue::Num(0.1)),
                ("momentum", HyperValue::Num(0.9)),
                ("nesterov", HyperValue::Bool(true)),
            ],
        ),
        "adagrad" => ("adagrad", &[("lr", HyperValue::Num(0.05))]),
        "rmsprop" => ("rmsprop", &[("lr", HyperValue::Num(1e-3))]),
        "adadelta" => ("adadelta", &[("lr", HyperValue::Num(1.0))]),
        "adam" => ("adam", &[("lr", HyperValue::Num(1e-3))]),
        other => {
            return Err(format!(
                "no row `{other}`; use sgd, momentum, nesterov, adagrad, rmsprop, adadelta or adam"
            ))
        }
    };
    let mut rule = builtin_rule(name).map_err(|e| e.to_string())?;
    for &(k, v) in settings {
        rule.set_hyper(k, v).map_err(|e| e.to_string())?;
    }
    Ok(rule)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A line per row of `values` (`cols` a line), space-separated, shortest
/// round-trip decimal of the f64 value.
fn matrix<F: NetFloat>(values: &[F], cols: usize) -> String {
    let mut out = String::new();
    for row in values.chunks(cols) {
        let line: Vec<String> = row.iter().map(|v| format!("{:?}", v.to_f64())).collect();
        out += &line.join(" ");
        out.push('\n');
    }
    out
}

/// What to run: the row, seed, epochs and initialization (`None`: each
/// layer's default).
struct Run {
    label: String,
    seed: u64,
    epochs: usize,
    init: Option<Init>,
    generator: Generator,
}

fn export<F: NetFloat>(
    dir: &Path,
    run: &Run,
    train: &Dataset,
    test: &Dataset,
) -> Result<(), String> {
    let Run {
        label,
        seed,
        epochs,
        init,
        generator,
    } = run;
    let (label, seed, epochs) = (label.as_str(), *seed, *epochs);
    let mut spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    spec.layers.iter_mut().for_each(|l| l.init = *init);
    let net = Network::<F>::new_with(spec, seed, *generator).map_err(|e| e.to_string())?;
    for l in 0..net.layer_count() {
        let w = net.weights(l);
        let w: Vec<F> = w.iter().copied().collect();
        write(
            dir,
            &format!("w{l}.txt"),
            &matrix(&w, net.weights(l).ncols()),
        )?;
        let b: Vec<F> = net.bias(l).iter().copied().collect();
        write(dir, &format!("b{l}.txt"), &matrix(&b, 1))?;
    }
    let config = TrainConfig {
        epochs,
        seed,
        generator: *generator,
        ..TrainConfig::default()
    };
    write(
        dir,
        "meta.txt",
        &format!(
            "label={label}\nbatch={}\nepochs={epochs}\nseed={seed}\ndtype={}\n",
            config.batch,
            F::DTYPE
        ),
    )?;
    let mut trainer = Trainer::new(net, rule_for(label)?, config).map_err(|e| e.to_string())?;
    let (mut order, mut history) = (String::new(), String::new());
    while trainer.epoch() < epochs {
        let rows: Vec<String> = trainer
            .next_epoch_order(train.len())
            .iter()
            .map(usize::to_string)
            .collect();
        order += &rows.join(" ");
        order.push('\n');
        let r = trainer
            .run_epoch(train, test, &mut Silent)
            .map_err(|e| e.to_string())?;
        writeln!(
            history,
            "{} {:?} {:?} {:?} {:?}",
            r.epoch, r.train_loss, r.test_accuracy, r.test_loss, r.train_accuracy
        )
        .expect("writing to a String");
        println!(
            "epoch {:2}: train loss {:.15} test accuracy {:.4}",
            r.epoch, r.train_loss, r.test_accuracy
        );
    }
    write(dir, "order.txt", &order)?;
    write(dir, "history.txt", &history)?;
    write(dir, "params.txt", &matrix(trainer.network().params(), 1))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: export_run DIR LABEL [f32|f64] [SEED] [EPOCHS] [INIT] [RNG]";
    let (dir, label) = match (args.first(), args.get(1)) {
        (Some(d), Some(l)) => (PathBuf::from(d), l.clone()),
        _ => return Err(usage.into()),
    };
    let dtype = args.get(2).map_or("f64", String::as_str);
    let number = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| format!("`{s}` is not a number; {usage}"))
        })
    };
    let seed = number(3, 0)?;
    let epochs = number(4, 20)? as usize;
    let init = match args.get(5).map_or("auto", String::as_str) {
        "auto" => None,
        name => Some(name.parse::<Init>().map_err(|e| e.to_string())?),
    };
    let generator = args
        .get(6)
        .map_or(Ok(Generator::ChaCha8), |s| s.parse::<Generator>())
        .map_err(|e| e.to_string())?;
    let run = Run {
        label,
        seed,
        epochs,
        init,
        generator,
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data = usps().map_err(|e| e.to_string())?;
    match dtype {
        "f32" => export::<f32>(&dir, &run, &data.train, &data.test),
        "f64" => export::<f64>(&dir, &run, &data.train, &data.test),
        other => Err(format!("dtype `{other}`; use f32 or f64")),
    }?;
    println!("wrote {}", dir.display());
    Ok(())
}
