//! `optdsl train --optimizer lbfgs --batch all`: the digit network trained
//! full-batch by L-BFGS (`optdsl::lbfgs_train`), one `LBFGS.step(closure)`
//! per epoch; the same data, network and output flags as `optdsl train`.

use super::progress::Progress;
use super::setup::{describe_data, parse_set, Dtype};
use super::train_args::{finish, load_data, network_spec, train_config, Args};
use super::CliResult;
use optdsl::lbfgs::Lbfgs;
use optdsl::lbfgs_train::LbfgsTrainer;
use optdsl::net::{NetFloat, Network};
use optdsl::rng::Generator;
use optdsl::train::History;
use optdsl::Error;
use std::process::ExitCode;

/// Whether `--optimizer` names L-BFGS (`lbfgs`, `LBFGS`, `l-bfgs`).
pub fn is_lbfgs(name: &str) -> bool {
    optdsl::replay::name_key(name) == "lbfgs"
}

/// The options of `--set KEY=VALUE`s (PyTorch's names; `strong_wolfe=true`
/// for `line_search_fn="strong_wolfe"`).
pub fn options(sets: &[String]) -> Result<Lbfgs, Error> {
    let mut lbfgs = Lbfgs::default();
    for kv in sets {
        let (k, v) = parse_set(kv)?;
        lbfgs.set_hyper(&k, v)?;
    }
    Ok(lbfgs)
}

/// Refuses the flags L-BFGS training does not take, saying what to do.
fn check(args: &Args) -> Result<(), Error> {
    let refuse = |flag: &str, reason: &str| {
        Err(Error::Invalid {
            what: flag.to_string(),
            reason: reason.to_string(),
        })
    };
    if !matches!(args.batch.as_str(), "all" | "full") {
        return refuse(
            "--batch",
            "L-BFGS trains full-batch (each step evaluates the whole training set several times); use --batch all",
        );
    }
    if args.schedule != "constant" {
        return refuse(
            "--schedule",
            "L-BFGS sets its own step lengths; use --schedule constant (and --set lr=... for its step scale)",
        );
    }
    if args.distributed || args.shard_state {
        return refuse(
            "--distributed",
            "L-BFGS trains on one process; leave it out",
        );
    }
    if args.save.is_some() || args.resume.is_some() {
        return refuse(
            "--save/--resume",
            "checkpoints of L-BFGS runs are not supported yet; leave them out",
        );
    }
    if !args.bias_set.is_empty() {
        return refuse(
            "--bias-set",
            "L-BFGS has one set of options for all parameters (PyTorch's LBFGS takes no parameter groups); use --set",
        );
    }
    if args.epochs == 0 {
        return refuse("--epochs", "0; give at least 1 (L-BFGS steps)");
    }
    Ok(())
}

/// Trains with L-BFGS and prints the test accuracy last.
pub fn run(args: Args) -> CliResult {
    check(&args)?;
    let lbfgs = options(&args.set)?;
    let data = load_data(&args)?;
    println!("{}", describe_data(&data));
    let history = match args.dtype {
        Dtype::F32 => train::<f32>(&args, lbfgs, &data)?,
        Dtype::F64 => train::<f64>(&args, lbfgs, &data)?,
    };
    finish(&args, &history)?;
    Ok(ExitCode::SUCCESS)
}

fn train<F: NetFloat>(
    args: &Args,
    lbfgs: Lbfgs,
    data: &optdsl::data::Split,
) -> Result<History, Error> {
    let spec = network_spec(args, data)?;
    let config = train_config(args, data)?;
    super::train_args::check_outputs(args)?;
    let options: Vec<String> = optdsl::lbfgs::HYPERS
        .iter()
        .filter_map(|(name, _)| Some(format!("{name}={}", lbfgs.hyper(name)?)))
        .collect();
    println!(
        "network {} ({} parameters, init {}), lbfgs {}, full batch of {}, {} epochs (one L-BFGS step each), seed {}{}, {}",
        spec.describe(),
        spec.param_count(),
        args.init,
        options.join(" "),
        data.train.len(),
        config.epochs,
        config.seed,
        match config.generator {
            Generator::ChaCha8 => "",
            Generator::Torch => " (torch generator)",
        },
        F::DTYPE
    );
    let net = Network::<F>::new_with(spec, args.seed, config.generator)?;
    let mut trainer = LbfgsTrainer::new(net, lbfgs, config)?;
    let mut progress = Progress::new("", args.epochs, true);
    for _ in 0..args.epochs {
        trainer.run_epoch(&data.train, &data.test, &mut progress)?;
    }
    println!(
        "lbfgs: {} objective evaluations (full-batch forward and backward passes) in {} steps",
        trainer.evaluations(),
        trainer.epoch()
    );
    Ok(trainer.history(&args.data))
}
