//! `optdsl train`: trains the course's digit network (or one of any widths)
//! on USPS, Semeion or a CSV file with a built-in optimizer, prints each
//! epoch and writes the history; its last line is `test accuracy: 0.xxxx`.

use super::progress::Progress;
use super::rows::{apply_settings, entry_for_builtin};
use super::setup::{
    apply_sets, describe_data, hypers_text, invalid, parse_hidden, parse_set, set_init, Dtype,
};
use super::state::StateArgs;
use super::train_args::{
    check_outputs, finish, load_data, network_spec, refuse_inputs_as_outputs, train_config, Args,
};
use super::CliResult;
use optdsl::data::{DataSource, Split};
use optdsl::net::{Activation, Loss, NetFloat, Network, NetworkSpec};
use optdsl::parallel::{self, Collective, Replicas};
use optdsl::rng::Generator;
use optdsl::schedule::LrSchedule;
use optdsl::train::{History, Observer, Silent, TrainConfig, Trainer};
use optdsl::{DynRule, Error, StateFormat, Storage};
use std::process::ExitCode;

/// Trains and prints the test accuracy last.
pub fn run(args: Args) -> CliResult {
    if args.shard_state && !args.distributed {
        return Err(invalid(
            "--shard-state",
            "it shards the optimizer state across the processes of a --distributed run; \
             add --distributed and launch with mpirun"
                .into(),
        )
        .into());
    }
    if super::train_lbfgs::is_lbfgs(&args.optimizer) {
        refuse_inputs_as_outputs(&args)?;
        return super::train_lbfgs::run(args);
    }
    check_flags(&args)?;
    refuse_inputs_as_outputs(&args)?;
    if args.distributed {
        return distributed(args);
    }
    let run = Run::new(&args, true)?;
    let history = match args.dtype {
        Dtype::F32 => train::<f32>(&args, run, None)?,
        Dtype::F64 => train::<f64>(&args, run, None)?,
    };
    finish(&args, &history)?;
    Ok(ExitCode::SUCCESS)
}

/// `--distributed` in a build with MPI: this process's part of the run; a
/// failure ends every process (MPI_Abort) with exit code 2 after printing
/// `error: rank R of N: ...`.
#[cfg(feature = "mpi")]
fn distributed(args: Args) -> CliResult {
    let mut mpi = optdsl::dist::Mpi::init()?;
    let (rank, size) = (Collective::<f32>::rank(&mpi), Collective::<f32>::size(&mpi));
    let result = (|| -> Result<(), Error> {
        let run = Run::new(&args, rank == 0)?;
        let history = match args.dtype {
            Dtype::F32 => train::<f32>(&args, run, Some(&mut mpi))?,
            Dtype::F64 => train::<f64>(&args, run, Some(&mut mpi))?,
        };
        if rank == 0 {
            finish(&args, &history)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("error: rank {rank} of {size}: {e}");
            mpi.abort(2)
        }
    }
}

/// `--distributed` in a build without MPI: an error saying how to get it.
#[cfg(not(feature = "mpi"))]
fn distributed(_args: Args) -> CliResult {
    Err(invalid(
        "--distributed",
        "this optdsl was built without MPI; install Open MPI (apt-get install openmpi-bin \
         libopenmpi-dev libclang-dev), rebuild with `cargo build --release --features mpi` \
         and launch with `mpirun -np N optdsl train ... --distributed`"
            .into(),
    )
    .into())
}

/// The lock on `--save`'s checkpoint ([`optdsl::checkpoint::lock`]), if
/// one is saved: an error naming the other process if one holds it.
fn lock_save(args: &Args) -> Result<Option<optdsl::checkpoint::CheckpointLock>, Error> {
    args.save
        .as_deref()
        .map(optdsl::checkpoint::lock)
        .transpose()
}

/// Checks every flag that can be checked without the data, before the data
/// is read (which can take seconds): the network's shape, the optimizer and
/// its settings, the batch, generator, schedule, element type, the CSV
/// options and `--save`'s path.
fn check_flags(args: &Args) -> Result<(), Error> {
    args.data.parse::<DataSource>()?;
    args.label.parse::<optdsl::data::LabelColumn>()?;
    if !(args.scale.is_finite() && args.scale > 0.0) {
        return Err(invalid(
            "scale",
            format!("{}; give a positive divisor such as 255", args.scale),
        ));
    }
    if let Some(f) = args.test_fraction.filter(|f| !(*f > 0.0 && *f < 1.0)) {
        return Err(invalid(
            "test fraction",
            format!("{f}; give a number between 0 and 1, e.g. 0.2"),
        ));
    }
    if args.epochs == 0 {
        return Err(invalid(
            "--epochs",
            "0; give at least 1 (passes over the training set)".into(),
        ));
    }
    // The shape with placeholder input and output widths.
    let hidden = parse_hidden(&args.hidden)?;
    let act: Activation = args.activation.parse()?;
    let mut spec = NetworkSpec::classifier(1, &hidden, act, 2);
    spec.loss = args.loss.parse::<Loss>()?;
    set_init(&mut spec, &args.init)?;
    spec.validate()?;
    args.rules.load()?;
    let mut rule = super::rules::lookup(&args.optimizer)?;
    if let Some(entry) = entry_for_builtin(&args.optimizer) {
        apply_settings(rule.as_mut(), entry)?;
    }
    apply_sets(rule.as_mut(), &args.set)?;
    let biases = bias_rule(args, rule.as_ref())?;
    args.state.check(&[rule.as_ref(), biases.as_ref()])?;
    if !matches!(args.batch.as_str(), "all" | "full") {
        args.batch
            .parse::<usize>()
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| {
                invalid(
                    "batch",
                    format!("`{}`; give a positive number or `all`", args.batch),
                )
            })?;
    }
    args.rng.parse::<Generator>()?;
    args.schedule.parse::<LrSchedule>()?;
    if let Some(save) = &args.save {
        let text = save.as_os_str().to_string_lossy();
        if save.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            return Err(invalid(
                "--save",
                format!(
                    "{} is a directory; give a file name, e.g. --save {}",
                    save.display(),
                    save.join("run.ckpt").display()
                ),
            ));
        }
    }
    Ok(())
}

/// What a run trains: the data, the network, the rule and the settings.
struct Run {
    data: Split,
    spec: NetworkSpec,
    rule: Box<dyn DynRule>,
    config: TrainConfig,
    /// Whether this process prints (process 0 of a distributed run).
    speaks: bool,
}

impl Run {
    fn new(args: &Args, speaks: bool) -> Result<Self, Error> {
        // The rule and its --set values first: a value outside a hyper's
        // range is refused before the data is read.
        args.rules.load()?;
        let mut rule = super::rules::lookup(&args.optimizer)?;
        if let Some(entry) = entry_for_builtin(&args.optimizer) {
            apply_settings(rule.as_mut(), entry)?;
        }
        apply_sets(rule.as_mut(), &args.set)?;
        let data = load_data(args)?;
        if speaks {
            println!("{}", describe_data(&data));
        }
        let spec = network_spec(args, &data)?;
        let config = train_config(args, &data)?;
        Ok(Run {
            data,
            spec,
            rule,
            config,
            speaks,
        })
    }
}

fn train<F: NetFloat>(
    args: &Args,
    run: Run,
    comm: Option<&mut dyn Collective<F>>,
) -> Result<History, Error> {
    let Run {
        data,
        spec,
        rule,
        config,
        speaks,
    } = run;
    let data = &data;
    if speaks {
        println!(
            "network {} ({} parameters, init {}), {} {}, batch {}, {} epochs, schedule {}, seed {}{}, {}",
            spec.describe(),
            spec.param_count(),
            args.init,
            rule.info().name,
            hypers_text(rule.as_ref()),
            config.batch,
            config.epochs,
            config.schedule,
            config.seed,
            match config.generator {
                Generator::ChaCha8 => "",
                Generator::Torch => " (torch generator)",
            },
            F::DTYPE
        );
    }
    Trainer::<F>::check_memory(&spec, rule.as_ref(), &config)?;
    // The process that speaks (process 0) writes the outputs: it checks
    // them before training and holds the checkpoint's lock for the run, so
    // a second process saving there is refused.
    let _lock = if speaks {
        check_outputs(args)?;
        lock_save(args)?
    } else {
        None
    };
    let net = Network::<F>::new_with(spec, args.seed, config.generator)?;
    let biases = bias_rule(args, rule.as_ref())?;
    let mut trainer = Trainer::with_bias_rule(net, rule, Some(biases), config)?;
    trainer.set_compression(args.state.compression(args.seed));
    for kv in &args.bias_set {
        let (k, v) = parse_set(kv)?;
        trainer.set_bias_hyper(&k, v)?;
    }
    if speaks {
        if let Some(line) = state_line(&trainer, &args.state) {
            println!("{line}");
        }
    }
    let mut progress = Progress::new("", args.epochs, true);
    let mut silent = Silent;
    let obs: &mut dyn Observer = if speaks { &mut progress } else { &mut silent };
    match comm {
        None => {
            if let Some(path) = &args.resume {
                trainer.resume(path, args.epochs)?;
                say_resumed(path, &trainer);
            }
            while trainer.epoch() < trainer.config().epochs {
                trainer.run_epoch(&data.train, &data.test, obs)?;
                if let Some(path) = &args.save {
                    trainer.save(path)?;
                }
            }
        }
        Some(comm) => {
            if let Some(path) = &args.resume {
                parallel::resume(comm, &mut trainer, path, args.epochs)?;
                if speaks {
                    say_resumed(path, &trainer);
                }
            }
            let mut rep = Replicas::new(
                comm,
                &mut trainer,
                args.shard_state,
                &[&data.train, &data.test],
            )?;
            while trainer.epoch() < trainer.config().epochs {
                trainer.run_epoch_with(&data.train, &data.test, obs, &mut rep)?;
                if let Some(path) = &args.save {
                    rep.save(&trainer, path)?;
                }
            }
            if speaks {
                say_communication(&rep, trainer.network().params().len());
            }
        }
    }
    if let (Some(path), true) = (&args.save, speaks) {
        println!("checkpoint: {}", path.display());
    }
    if let (Some(warning), true) = (trainer.divergence(), speaks) {
        eprintln!("warning: {warning}");
    }
    Ok(trainer.history(&args.data))
}

fn say_resumed<F: NetFloat>(path: &std::path::Path, trainer: &Trainer<F>) {
    println!(
        "resumed {} at epoch {}, step {}",
        path.display(),
        trainer.epoch(),
        trainer.steps()
    );
}

/// One line on how the optimizer keeps its state, when the run asks for
/// compressed state or a rule declares it: per group, how many tensors are
/// compressed (those under `--state-min-size`, and those of rules with
/// shapes, keep the element type), and the state's bytes per parameter.
fn state_line<F: NetFloat>(trainer: &Trainer<F>, state: &StateArgs) -> Option<String> {
    let opt = trainer.optimizer();
    let compressed = |s: &&optdsl::State<F>| s.storage().iter().any(|st| *st != Storage::Full);
    let states = || opt.groups().iter().flat_map(|g| g.states());
    if state.format == StateFormat::Full && !states().any(|s| compressed(&s)) {
        return None;
    }
    let groups: Vec<String> = ["weights", "biases"]
        .iter()
        .zip(opt.groups())
        .map(|(name, g)| {
            let info = g.rule().info();
            let k = g.states().iter().filter(compressed).count();
            let shaped = if info.program().tensor.is_some() && k == 0 {
                " (a rule with shapes keeps its state uncompressed)"
            } else {
                ""
            };
            format!(
                "{} on the {name}: {k} of {} tensors compressed{shaped}",
                info.name,
                g.states().len()
            )
        })
        .collect();
    let params: usize = states().map(|s| s.len).sum();
    let bytes: f64 = states().map(|s| s.bytes_per_element() * s.len as f64).sum();
    let rounding = if state.stochastic_rounding {
        ", bf16 rounded stochastically"
    } else {
        ""
    };
    let asked = match state.format {
        StateFormat::Full => format!("as the rules declare it{rounding}"),
        format => format!(
            "--state {format}{rounding} (tensors under --state-min-size {} keep {})",
            state.state_min_size,
            F::DTYPE
        ),
    };
    Some(format!(
        "optimizer state: {asked}; {}; {:.2} bytes a parameter",
        groups.join(", "),
        bytes / params.max(1) as f64
    ))
}

/// One line on what each process communicated per step.
fn say_communication<F: NetFloat>(rep: &Replicas<'_, F>, params: usize) {
    let (collectives, payload, ring) = rep.stats().per_step();
    let scheme = match rep.shards() {
        None => "gradients all-reduced, every process steps all".to_string(),
        Some(shards) => format!(
            "optimizer state sharded (largest shard {} of {params} elements), gradients \
             reduce-scattered, parameters all-gathered",
            shards.iter().map(|r| r.len()).max().unwrap_or(0)
        ),
    };
    let stats = rep.stats();
    println!(
        "distributed: {} process{}, {scheme}; per step and process: {collectives:.0} \
         collectives, {payload:.0} bytes handed to them, {ring:.0} bytes sent (ring algorithms), \
         {:.3} ms in collectives",
        rep.size(),
        if rep.size() == 1 { "" } else { "es" },
        stats.seconds * 1e3 / stats.steps.max(1) as f64
    );
}

/// Applies `--set KEY=VALUE`s to `rule`.
/// The biases' rule: `--bias-optimizer`'s (or the default for `rule`) with
/// the `--bias-set` values.
fn bias_rule(args: &Args, rule: &dyn DynRule) -> Result<Box<dyn DynRule>, Error> {
    let mut bias = match &args.bias_optimizer {
        Some(name) => super::rules::lookup(name)?,
        None => Trainer::<f64>::default_bias_rule(rule)?,
    };
    apply_sets(bias.as_mut(), &args.bias_set).map_err(|e| Error::Invalid {
        what: "--bias-set (the biases' group)".into(),
        reason: e.to_string(),
    })?;
    Ok(bias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn error_of(argv: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("train").chain(argv.iter().copied()))
            .expect("arguments parse");
        run(cli.args).expect_err("refused").to_string()
    }

    #[test]
    fn shard_state_needs_distributed() {
        let e = error_of(&["--shard-state", "--epochs", "1"]);
        assert!(e.contains("add --distributed"), "{e}");
    }

    #[cfg(not(feature = "mpi"))]
    #[test]
    fn distributed_without_mpi_says_how_to_rebuild() {
        let e = error_of(&["--distributed", "--epochs", "1"]);
        assert!(e.contains("--features mpi"), "{e}");
    }
}
