//! `optdsl train`: trains the course's digit network (or one of any widths)
//! on USPS, Semeion or a CSV file with a built-in optimizer, prints each
//! epoch and writes the history; its last line is `test accuracy: 0.xxxx`.

use super::progress::Progress;
use super::CliResult;
use optdsl::data::{CsvOptions, DataSource, Split};
use optdsl::net::{Activation, Init, Loss, NetFloat, Network, NetworkSpec};
use optdsl::parallel::{self, Collective, Replicas};
use optdsl::rng::Generator;
use optdsl::schedule::LrSchedule;
use optdsl::train::{History, Observer, Silent, TrainConfig, Trainer};
use optdsl::{DynRule, Error, HyperValue};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl train`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The data: usps (its own test set), semeion, or csv:PATH (gzipped or not).
    #[arg(long, default_value = "usps")]
    pub data: String,
    /// The CSV column holding the class label: first or last.
    #[arg(long, default_value = "first")]
    pub label: String,
    /// Divide every CSV input by this (255 for 8-bit grey values).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Share of the rows kept for testing (semeion and csv; default 0.2).
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Hidden layer widths, comma-separated ("" or none: no hidden layer).
    #[arg(long, default_value = "128,64")]
    pub hidden: String,
    /// Activation of the hidden layers: sigmoid, tanh, relu (or identity).
    #[arg(long, default_value = "sigmoid")]
    pub activation: String,
    /// Weight initialization: auto (xavier for sigmoid/tanh, he for relu, zero
    /// biases), xavier, he, or torch (PyTorch's nn.Linear default: weights and
    /// biases uniform on ±1/sqrt(fan_in)).
    #[arg(long, default_value = "auto")]
    pub init: String,
    /// The cost after the softmax output: cross_entropy or mse.
    #[arg(long, default_value = "cross_entropy")]
    pub loss: String,
    /// A built-in optimizer (see `optdsl list`). One with a row in `optdsl
    /// compare` starts from that row's settings (sgd lr=0.5, adagrad
    /// lr=0.05, adam lr=0.001, vsgd c=2 hmin=2 tau0=10, ...; the header line
    /// prints them), the others from their defaults; --set overrides either.
    /// (momentum and nesterov are the course's own rules, at their defaults;
    /// compare's rows of those names run sgd with momentum=0.9.) `lbfgs`
    /// trains full-batch (--batch all), one L-BFGS step per epoch.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Rule files; `--optimizer NAME` may name one of their rules (run from
    /// text: JIT or interpreter).
    #[command(flatten)]
    pub rules: super::rules::RuleFiles,
    /// How the optimizer keeps its state.
    #[command(flatten)]
    pub state: super::state::StateArgs,
    /// A hyperparameter, by name (repeatable): --set lr=0.1 --set nesterov=true.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A hyperparameter of the biases only (repeatable): --bias-set weight_decay=0.
    #[arg(long = "bias-set", value_name = "KEY=VALUE")]
    pub bias_set: Vec<String>,
    /// The rule for the biases (default: --optimizer's, or adamw where that
    /// rule needs a matrix, as for muon).
    #[arg(long = "bias-optimizer", value_name = "NAME")]
    pub bias_optimizer: Option<String>,
    /// constant, 1/t[:step][:DECAY], step:EVERY:GAMMA, multistep:E1,E2,..:GAMMA, exp:GAMMA,
    /// cosine[:MIN_LR], linear:START:END:EPOCHS, poly:EPOCHS:POWER, onecycle[:KEY=VALUE..],
    /// cyclic:BASE_LR:STEP_SIZE_UP[:KEY=VALUE..], sgdr:T_0[:T_MULT[:ETA_MIN]],
    /// plateau[:KEY=VALUE..] (watches the training loss), piecewise:STEP=SCALE,..,
    /// warmup:EPOCHS[+SCHEDULE]; options by PyTorch's argument names (README).
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Passes over the training set.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Rows per mini-batch, or `all` (gradient descent); 1 is SGD.
    #[arg(long, default_value = "32")]
    pub batch: String,
    /// Seeds the initialization, the shuffling and the split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The generator of the initial weights and the mini-batch order:
    /// chacha8, or torch (what PyTorch draws after torch.manual_seed(SEED):
    /// nn.Linear's init, then torch.randperm each epoch; with --init torch a
    /// PyTorch script's run, number for number).
    #[arg(long, default_value = "chacha8")]
    pub rng: String,
    /// Where to write the history (OPTIMIZER.csv and OPTIMIZER.json).
    #[arg(long, default_value = "optdsl-out/train")]
    pub out: PathBuf,
    /// The float type: f32 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Save a checkpoint here after every epoch (atomically: a crash leaves
    /// the previous one whole).
    #[arg(long, value_name = "PATH")]
    pub save: Option<PathBuf>,
    /// Continue the run saved here; `--epochs` is the run's total.
    #[arg(long, value_name = "PATH")]
    pub resume: Option<PathBuf>,
    /// Data-parallel training across the processes of
    /// `mpirun -np N optdsl train ... --distributed`: each takes its share
    /// of every mini-batch and the gradients are summed (needs a build with
    /// `--features mpi`).
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: each process keeps and steps only its slice of
    /// the optimizer state (ZeRO stage 1).
    #[arg(long)]
    pub shard_state: bool,
}

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
    let history = match args.dtype.as_str() {
        "f32" => train::<f32>(&args, run, None)?,
        "f64" => train::<f64>(&args, run, None)?,
        other => return Err(invalid("dtype", format!("`{other}`; use f32 or f64")).into()),
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
        let history = match args.dtype.as_str() {
            "f32" => train::<f32>(&args, run, Some(&mut mpi))?,
            "f64" => train::<f64>(&args, run, Some(&mut mpi))?,
            other => return Err(invalid("dtype", format!("`{other}`; use f32 or f64"))),
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
    if let Some(entry) = super::compare::entry_for_builtin(&args.optimizer) {
        super::compare::apply_settings(rule.as_mut(), entry)?;
    }
    apply_sets(rule.as_mut(), &args.set)?;
    bias_rule(args, rule.as_ref())?;
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
    if !matches!(args.dtype.as_str(), "f32" | "f64") {
        return Err(invalid(
            "dtype",
            format!("`{}`; use f32 or f64", args.dtype),
        ));
    }
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

/// Refuses a `--save` or history file that is one of the run's inputs
/// (the `--data` CSV file, the `--resume` checkpoint; `--save` may name the
/// checkpoint resumed, which the run goes on in), or that is the other.
fn refuse_inputs_as_outputs(args: &Args) -> Result<(), Error> {
    use super::outputs::{refuse_overlaps, Input, Output};
    let data: Vec<Input<'_>> = match args.data.parse::<DataSource>() {
        Ok(DataSource::Csv(path)) => vec![Input {
            flag: "--data",
            value: args.data.clone(),
            path,
        }],
        _ => vec![],
    };
    let resume = args.resume.iter().map(|path| Input {
        flag: "--resume",
        value: path.display().to_string(),
        path: path.clone(),
    });
    let stem = history_stem(args);
    let history = ["csv", "json"].map(|ext| Output {
        flag: "--out",
        path: args.out.join(format!("{stem}.{ext}")),
    });
    let save: Vec<Output<'_>> = args
        .save
        .iter()
        .map(|path| Output {
            flag: "--save",
            path: path.clone(),
        })
        .collect();
    refuse_overlaps(&save, &data)?;
    refuse_overlaps(&history, &[data, resume.collect()].concat())?;
    refuse_overlaps(&[save, history.into()].concat(), &[])
}

/// Checks before training that the history can be written into `--out`
/// (see [`History::check_writable`]).
pub(super) fn check_outputs(args: &Args) -> Result<(), Error> {
    History::check_writable(&args.out, &history_stem(args)).map_err(|e| {
        invalid(
            "--out",
            format!("{e}; give a directory the history can be written in"),
        )
    })
}

/// The history's file stem: the optimizer's name.
fn history_stem(args: &Args) -> String {
    args.optimizer.to_ascii_lowercase()
}

/// Writes the history and prints the closing lines, the test accuracy last;
/// the accuracy is printed even when the history cannot be written (the
/// error is returned after it).
pub(super) fn finish(args: &Args, history: &History) -> Result<(), Error> {
    let stem = history_stem(args);
    let written = history.write(&args.out, &stem);
    let last = history.epochs.last().expect("at least one epoch");
    if written.is_ok() {
        println!(
            "history: {}/{stem}.csv, .json; median epoch {:.1} ms",
            args.out.display(),
            history.median_epoch_seconds() * 1e3
        );
    }
    println!("test accuracy: {:.4}", last.test_accuracy);
    written.map_err(|e| invalid("--out", format!("the history was not written: {e}")))
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
        if let Some(entry) = super::compare::entry_for_builtin(&args.optimizer) {
            super::compare::apply_settings(rule.as_mut(), entry)?;
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

/// Loads `--data` with the CSV options and the split.
pub fn load_data(args: &Args) -> Result<Split, Error> {
    let source: DataSource = args.data.parse()?;
    let csv = CsvOptions {
        label: args.label.parse()?,
        scale: args.scale,
        separator: None,
    };
    source.load(&csv, args.test_fraction, args.seed)
}

/// One line about the data.
pub fn describe_data(data: &Split) -> String {
    format!(
        "data {}: {} train / {} test rows of {} inputs, {} classes",
        data.train.name(),
        data.train.len(),
        data.test.len(),
        data.train.dim(),
        data.train.classes()
    )
}

/// The network of `--hidden`, `--activation` and `--loss` for this data.
pub fn network_spec(args: &Args, data: &Split) -> Result<NetworkSpec, Error> {
    let hidden = parse_hidden(&args.hidden)?;
    let act: Activation = args.activation.parse()?;
    let mut spec = NetworkSpec::classifier(data.train.dim(), &hidden, act, data.train.classes());
    spec.loss = args.loss.parse::<Loss>()?;
    set_init(&mut spec, &args.init)?;
    spec.validate()?;
    Ok(spec)
}

/// Gives every layer of `spec` the initialization named `init` (`auto`:
/// each layer's default for its activation).
pub fn set_init(spec: &mut NetworkSpec, init: &str) -> Result<(), Error> {
    let init = match init.trim() {
        "auto" => None,
        name => Some(
            name.parse::<Init>()
                .map_err(|_| invalid("init", format!("`{name}`; use auto, xavier, he or torch")))?,
        ),
    };
    spec.layers.iter_mut().for_each(|l| l.init = init);
    Ok(())
}

/// The training settings of `--epochs`, `--batch`, `--seed`, `--schedule`.
pub fn train_config(args: &Args, data: &Split) -> Result<TrainConfig, Error> {
    let batch =
        match args.batch.as_str() {
            "all" | "full" => data.train.len(),
            b => b.parse::<usize>().ok().filter(|&b| b > 0).ok_or_else(|| {
                invalid("batch", format!("`{b}`; give a positive number or `all`"))
            })?,
        };
    Ok(TrainConfig {
        epochs: args.epochs,
        batch: batch.min(data.train.len()),
        seed: args.seed,
        generator: args.rng.parse::<Generator>()?,
        schedule: args.schedule.parse::<LrSchedule>()?,
        ..TrainConfig::default()
    })
}

/// `128,64` -> [128, 64]; `` or `none` -> [].
pub fn parse_hidden(text: &str) -> Result<Vec<usize>, Error> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Ok(vec![]);
    }
    text.split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .ok()
                .filter(|&w| w > 0)
                .ok_or_else(|| {
                    invalid(
                        "hidden",
                        format!("`{w}` in `{text}`; give widths like 128,64"),
                    )
                })
        })
        .collect()
}

/// `KEY=VALUE` -> (key, value), the value a number or true/false.
pub fn parse_set(kv: &str) -> Result<(String, HyperValue), Error> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| invalid("--set", format!("`{kv}`; write KEY=VALUE, e.g. lr=0.1")))?;
    let value = HyperValue::parse(v).ok_or_else(|| {
        invalid(
            "--set",
            format!("`{v}` for {k}; give a number or true/false"),
        )
    })?;
    Ok((k.trim().to_string(), value))
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

pub fn apply_sets(rule: &mut dyn DynRule, sets: &[String]) -> Result<(), Error> {
    for kv in sets {
        let (k, v) = parse_set(kv)?;
        rule.set_hyper(&k, v)?;
    }
    Ok(())
}

/// `lr=0.5 momentum=0.9`: the hyperparameters that differ from the defaults.
pub fn hypers_text(rule: &dyn DynRule) -> String {
    let parts: Vec<String> = rule
        .info()
        .hypers
        .iter()
        .filter_map(|h| {
            let v = rule.hyper(h.name)?;
            (v != h.default || h.name == "lr" || h.name == "learning_rate")
                .then(|| format!("{}={v}", h.name))
        })
        .collect();
    parts.join(" ")
}

fn invalid(what: &str, reason: String) -> Error {
    Error::Invalid {
        what: what.to_string(),
        reason,
    }
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
