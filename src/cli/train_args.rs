//! The `train` command's arguments, and what they build: the data, the
//! network, the training settings, and the checks and writes of its
//! outputs (shared by gradient training and L-BFGS).

use super::outputs::{refuse_overlaps, Input, Output};
use super::setup::{invalid, parse_hidden, set_init, Dtype};
use optdsl::data::{CsvOptions, DataSource, Split};
use optdsl::net::{Activation, Loss, NetworkSpec};
use optdsl::rng::Generator;
use optdsl::schedule::LrSchedule;
use optdsl::train::{History, TrainConfig};
use optdsl::Error;
use std::path::PathBuf;

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
    /// warmup:EPOCHS[+SCHEDULE]; options by PyTorch's argument names (docs/training.md).
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
    /// The float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
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

/// Refuses a `--save` or history file that is one of the run's inputs
/// (the `--data` CSV file, the `--resume` checkpoint; `--save` may name the
/// checkpoint resumed, which the run goes on in), or that is the other.
pub fn refuse_inputs_as_outputs(args: &Args) -> Result<(), Error> {
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
pub fn check_outputs(args: &Args) -> Result<(), Error> {
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
pub fn finish(args: &Args, history: &History) -> Result<(), Error> {
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
