//! `optdsl compare`: the slides' network (256-128-64-10, sigmoid, softmax,
//! cross-entropy, batch 32) trained with every built-in optimizer; prints a
//! table of test accuracy, final train loss and epoch time beside the time of
//! the bare matrix products an epoch needs, and writes every history.

use super::progress::Progress;
use super::rows::{make_rule, pytorch_reference, settings_text, Entry, ENTRIES, TOLERANCE};
use super::setup::{describe_data, hypers_text, parse_hidden, set_init, Dtype};
use super::CliResult;
use optdsl::data::{CsvOptions, DataSource, Split};
use optdsl::net::{Activation, NetFloat, Network, NetworkSpec};
use optdsl::plot::{plot_grouped_curves, Curve, EpochPoint, Format, Group};
use optdsl::replay::name_key;
use optdsl::rng::Generator;
use optdsl::train::{matmul_epoch_seconds, History, TrainConfig, Trainer};
use optdsl::{builtins, Error};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The data: usps, semeion or csv:PATH.
    #[arg(long, default_value = "usps")]
    pub data: String,
    /// Passes over the training set, per optimizer.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Hidden layer widths.
    #[arg(long, default_value = "128,64")]
    pub hidden: String,
    /// Activation of the hidden layers.
    #[arg(long, default_value = "sigmoid")]
    pub activation: String,
    /// Weight initialization: torch (PyTorch's nn.Linear default, weights
    /// and biases uniform on ±1/sqrt(fan_in), as in the PyTorch runs of the
    /// table), auto (the course's choice: xavier for sigmoid/tanh, he for
    /// relu, zero biases), xavier or he.
    #[arg(long, default_value = "torch")]
    pub init: String,
    /// The generator of the initial weights and mini-batch orders: torch
    /// (what PyTorch draws after torch.manual_seed(SEED), so that with
    /// --init torch each row repeats the PyTorch run its figure comes from)
    /// or chacha8 (optdsl's own).
    #[arg(long, default_value = "torch")]
    pub rng: String,
    /// The first seed (initialization, the same for every optimizer, and shuffling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Runs per row, seeds SEED, SEED+1, ...; the table shows the mean test
    /// accuracy (and its standard deviation) over them.
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Only these rows (comma-separated labels, e.g. sgd,adam).
    #[arg(long)]
    pub only: Option<String>,
    /// Rule files: each rule becomes a row (run from text: JIT or interpreter).
    #[command(flatten)]
    pub rules: super::rules::RuleFiles,
    /// How the optimizers keep their state.
    #[command(flatten)]
    pub state: super::state::StateArgs,
    /// Also run the slides' reference formulas (the `seed-*` built-ins) at their defaults.
    #[arg(long)]
    pub all: bool,
    /// The float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Where to write each history (LABEL.csv, LABEL.json; LABEL-sN.* for
    /// further seeds) and summary.csv.
    #[arg(long, default_value = "optdsl-out/compare")]
    pub out: PathBuf,
    /// Print every epoch, not only each optimizer's result.
    #[arg(long)]
    pub verbose: bool,
    /// Exit with status 1 if a row with a PyTorch accuracy ends more than 0.5
    /// points below it, or fails. Needs the run to start where PyTorch's
    /// did: --init torch --rng torch --seed 0 --seeds 1 on the reference
    /// data and network (the defaults).
    #[arg(long)]
    pub check: bool,
}

/// The outcome of one row: a history per seed, or why there is none.
#[derive(Debug, Clone)]
enum Outcome {
    Done(Vec<History>),
    Skipped(String),
    Failed(String),
}

/// Mean and standard deviation of the runs' final test accuracies, the mean
/// final train loss, and the median of all their epochs' times.
struct Summary {
    accuracy: f64,
    sd: f64,
    train_loss: f64,
    epoch_seconds: f64,
}

impl Summary {
    fn of(runs: &[History]) -> Self {
        let n = runs.len() as f64;
        let last = |h: &History| h.epochs.last().expect("an epoch").clone();
        let accuracy = runs.iter().map(|h| last(h).test_accuracy).sum::<f64>() / n;
        let var = runs
            .iter()
            .map(|h| (last(h).test_accuracy - accuracy).powi(2))
            .sum::<f64>()
            / (n - 1.0).max(1.0);
        let mut times: Vec<f64> = runs
            .iter()
            .flat_map(|h| h.epochs.iter().map(|r| r.seconds))
            .collect();
        times.sort_by(f64::total_cmp);
        Summary {
            accuracy,
            sd: var.sqrt(),
            train_loss: runs.iter().map(|h| last(h).train_loss).sum::<f64>() / n,
            epoch_seconds: times[times.len() / 2],
        }
    }
}

/// Refuses settings that cannot run, before any data is read or row trained:
/// a zero `--batch`, `--seeds` or `--epochs`, and `--check` for a run that
/// does not start where PyTorch's runs of the table started.
fn validate(args: &Args) -> Result<(), Error> {
    let positive = [
        (
            "--batch",
            args.batch as u64,
            "rows per mini-batch, e.g. --batch 32",
        ),
        ("--seeds", args.seeds, "runs per row, e.g. --seeds 1"),
        (
            "--epochs",
            args.epochs as u64,
            "passes over the training set, e.g. --epochs 20",
        ),
    ];
    for (flag, value, what) in positive {
        if value == 0 {
            return Err(Error::Invalid {
                what: flag.into(),
                reason: format!("0; give at least 1 ({what})"),
            });
        }
    }
    // The flags that need no data, checked before it is read.
    let mut spec = NetworkSpec::classifier(
        1,
        &parse_hidden(&args.hidden)?,
        args.activation.parse::<Activation>()?,
        2,
    );
    set_init(&mut spec, &args.init)?;
    spec.validate()?;
    args.rng.parse::<Generator>()?;
    args.data.parse::<DataSource>()?;
    selected(args)?;
    if args.seed.checked_add(args.seeds).is_none() {
        return Err(Error::Invalid {
            what: "--seeds".into(),
            reason: format!(
                "{} seeds from --seed {} run past the largest seed, {}; give a smaller --seed",
                args.seeds,
                args.seed,
                u64::MAX
            ),
        });
    }
    if args.check {
        let mut off = off_pytorch_start(args)?;
        off.extend(off_reference(args)?);
        if !off.is_empty() {
            return Err(Error::Invalid {
                what: "--check".into(),
                reason: format!(
                    "it compares each row with PyTorch's single run from torch.manual_seed(0), \
                     so it needs the run to start where that one did: --init torch --rng torch \
                     --seed 0 --seeds 1 on --data usps --epochs 20 --batch 32 --hidden 128,64 \
                     --activation sigmoid (the defaults); this run has {}. Leave out --check \
                     (the table still shows PyTorch's figures) or those flags",
                    off.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The flags (with their values) by which this run starts elsewhere than
/// the PyTorch runs of the table: `torch.manual_seed(0)`, nn.Linear's init,
/// one run.
fn off_pytorch_start(args: &Args) -> Result<Vec<String>, Error> {
    let mut off = Vec::new();
    if args.init.trim() != "torch" {
        off.push(format!("--init {}", args.init));
    }
    if args.rng.parse::<Generator>()? != Generator::Torch {
        off.push(format!("--rng {}", args.rng));
    }
    if args.seed != 0 {
        off.push(format!("--seed {}", args.seed));
    }
    if args.seeds != 1 {
        off.push(format!("--seeds {}", args.seeds));
    }
    Ok(off)
}

/// The flags (with their values) by which the data, network or training
/// length differ from those of the PyTorch runs of the table.
fn off_reference(args: &Args) -> Result<Vec<String>, Error> {
    let mut off = Vec::new();
    if args.data != "usps" {
        off.push(format!("--data {}", args.data));
    }
    if args.epochs != 20 {
        off.push(format!("--epochs {}", args.epochs));
    }
    if args.batch != 32 {
        off.push(format!("--batch {}", args.batch));
    }
    if parse_hidden(&args.hidden)? != [128, 64] {
        off.push(format!("--hidden {}", args.hidden));
    }
    if args.activation != "sigmoid" {
        off.push(format!("--activation {}", args.activation));
    }
    Ok(off)
}

/// Runs every row and prints the table.
pub fn run(args: Args) -> CliResult {
    validate(&args)?;
    let source: DataSource = args.data.parse()?;
    if let DataSource::Csv(path) = &source {
        refuse_data_in_outputs(&args, path)?;
    }
    let data = source.load(&CsvOptions::default(), None, args.seed)?;
    println!("{}", describe_data(&data));
    let mut spec = NetworkSpec::classifier(
        data.train.dim(),
        &parse_hidden(&args.hidden)?,
        args.activation.parse::<Activation>()?,
        data.train.classes(),
    );
    set_init(&mut spec, &args.init)?;
    spec.validate()?;
    let generator: Generator = args.rng.parse()?;
    println!(
        "network {} ({} parameters, init {}), batch {}, {} epochs, seeds {}..{} ({} generator), {}",
        spec.describe(),
        spec.param_count(),
        args.init,
        args.batch,
        args.epochs,
        args.seed,
        args.seed + args.seeds - 1,
        generator,
        args.dtype
    );
    match args.dtype {
        Dtype::F32 => compare::<f32>(&args, &spec, &data, generator),
        Dtype::F64 => compare::<f64>(&args, &spec, &data, generator),
    }
}

fn compare<F: NetFloat>(
    args: &Args,
    spec: &NetworkSpec,
    data: &Split,
    generator: Generator,
) -> CliResult {
    let config = TrainConfig {
        batch: args.batch,
        ..TrainConfig::default()
    };
    let rules: Vec<_> = selected(args)?
        .iter()
        .filter_map(|e| make_rule(e).ok())
        .collect();
    for rule in &rules {
        Trainer::<F>::check_memory(spec, rule.as_ref(), &config)?;
    }
    let refs: Vec<&dyn optdsl::DynRule> = rules.iter().map(|r| r.as_ref()).collect();
    args.state.check(&refs)?;
    optdsl::train::check_writable_dir(&args.out).map_err(|e| Error::Invalid {
        what: "--out".into(),
        reason: format!("{e}; give a directory the histories can be written in"),
    })?;
    let probe = Network::<F>::new_with(spec.clone(), args.seed, generator)?;
    println!(
        "GEMM ms: the bare matrix products of one epoch (forward + backward, {} batches), \
         measured before each row",
        data.train.len().div_ceil(args.batch)
    );
    let reference = off_reference(args)?.is_empty();
    if !reference {
        println!(
            "PyTorch's accuracies are for usps, 128,64 sigmoid, batch 32, 20 epochs: not shown"
        );
    } else if args.seeds > 1 {
        println!(
            "PyTorch: its mean test accuracy over seeds 0-9 with the same init \
             (docs/pytorch-parity.md, table 1; - where not measured)"
        );
    } else if !off_pytorch_start(args)?.is_empty() {
        println!(
            "PyTorch's accuracies are single runs from torch.manual_seed(0) with nn.Linear's \
             init (--init torch --rng torch --seed 0 --seeds 1); this run starts elsewhere, so \
             compare means over --seeds (docs/pytorch-parity.md)"
        );
    }
    let mut rows = Vec::new();
    for mut entry in selected(args)? {
        entry.pytorch = match reference {
            true => pytorch_reference(&entry, args.seeds, &args.init),
            false => None,
        };
        let matmul = matmul_epoch_seconds(&probe, &data.train, args.batch, 9)?;
        let outcome = run_entry::<F>(args, &entry, spec, data, generator);
        match &outcome {
            Outcome::Done(runs) => {
                let s = Summary::of(runs);
                println!(
                    "{:<10} test accuracy {:.4}  train loss {:.4}  {:.1} ms/epoch",
                    entry.label,
                    s.accuracy,
                    s.train_loss,
                    s.epoch_seconds * 1e3
                );
                for (k, h) in runs.iter().enumerate() {
                    let stem = match k {
                        0 => entry.label.to_string(),
                        k => format!("{}-s{}", entry.label, args.seed + k as u64),
                    };
                    h.write(&args.out, &stem)?;
                }
            }
            Outcome::Skipped(why) => println!("{:<10} skipped: {why}", entry.label),
            Outcome::Failed(why) => println!("{:<10} failed: {why}", entry.label),
        }
        rows.push((entry, outcome, matmul));
    }
    let (table, csv, bad) = table(&rows, args.seeds > 1);
    println!("\n{table}");
    std::fs::create_dir_all(&args.out)?;
    optdsl::train::write_atomically(&args.out.join("summary.csv"), csv.as_bytes())?;
    println!("histories and summary.csv in {}", args.out.display());
    // One picture row per family of the optimizer a row runs; rows running
    // a rule from a file (which shadows a built-in of its name) get their own.
    let curves: Vec<Curve> = rows
        .iter()
        .filter_map(|(entry, outcome, _)| match outcome {
            Outcome::Done(runs) => Some(Curve {
                label: entry.label.to_string(),
                group: match super::rules::find(entry.optimizer) {
                    Some(_) => Group::UserRules,
                    None => Group::of_name(entry.optimizer),
                },
                points: runs[0].epochs.iter().map(EpochPoint::from).collect(),
            }),
            _ => None,
        })
        .collect();
    if !curves.is_empty() {
        for path in plot_grouped_curves(&curves, &args.out, &[Format::Png])? {
            println!("wrote {}", path.display());
        }
    }
    if args.check && bad > 0 {
        println!("{bad} rows below PyTorch's accuracy minus 0.5 points, or failed");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses an `--out` in which compare would write over the `--data` CSV
/// file at `data`: `summary.csv`, `curves.png`, `curves.svg`, or a row's
/// history (`LABEL.csv`, `LABEL.json`, `LABEL-sN.*`), the paths compared
/// with symbolic links and `..` resolved.
fn refuse_data_in_outputs(args: &Args, data: &std::path::Path) -> Result<(), Error> {
    use super::outputs::resolved;
    let (Some(file), Some(out)) = (resolved(data), resolved(&args.out)) else {
        return Ok(());
    };
    let name = file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let written = |name: &str| -> Result<bool, Error> {
        if ["summary.csv", "curves.png", "curves.svg"].contains(&name) {
            return Ok(true);
        }
        let Some(stem) = name
            .strip_suffix(".csv")
            .or_else(|| name.strip_suffix(".json"))
        else {
            return Ok(false);
        };
        Ok(selected(args)?.iter().any(|e| {
            stem == e.label
                || stem
                    .strip_prefix(e.label)
                    .and_then(|r| r.strip_prefix("-s"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > args.seed && n - args.seed < args.seeds)
        }))
    };
    if file.parent() == Some(out.as_path()) && written(&name)? {
        return Err(Error::Invalid {
            what: "--out".into(),
            reason: format!(
                "compare writes its histories, summary.csv and curves.png in {}, which holds \
                 this run's input (--data {}): it would be overwritten; give another --out",
                args.out.display(),
                args.data
            ),
        });
    }
    Ok(())
}

/// The table's rows: the listed entries, then unlisted built-ins at their
/// defaults (the slides' `seed-*` formulas only with `--all`); `--only`
/// keeps the named ones.
fn selected(args: &Args) -> Result<Vec<Entry>, Error> {
    let mut entries: Vec<Entry> = ENTRIES.to_vec();
    for r in args.rules.load()? {
        entries.push(Entry {
            label: r.name(),
            optimizer: r.name(),
            settings: &[],
            pytorch: None,
        });
    }
    for b in builtins() {
        let listed = ENTRIES
            .iter()
            .any(|e| e.optimizer == b.name || e.label == b.name);
        if !listed && (args.all || b.family != optdsl::Family::Slides) {
            entries.push(Entry {
                label: b.name,
                optimizer: b.name,
                settings: &[],
                pytorch: None,
            });
        }
    }
    if let Some(only) = &args.only {
        let names: Vec<&str> = only.split(',').map(str::trim).collect();
        if let Some(n) = names
            .iter()
            .find(|n| !entries.iter().any(|e| name_key(e.label) == name_key(n)))
        {
            return Err(Error::Invalid {
                what: "--only".into(),
                reason: format!(
                    "no row `{n}`; rows: {}",
                    entries
                        .iter()
                        .map(|e| e.label)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        // Rows are named as `--optimizer` names rules: case and `_`/`-` aside.
        entries.retain(|e| names.iter().any(|n| name_key(n) == name_key(e.label)));
    }
    Ok(entries)
}

fn run_entry<F: NetFloat>(
    args: &Args,
    entry: &Entry,
    spec: &NetworkSpec,
    data: &Split,
    generator: Generator,
) -> Outcome {
    let rule = match make_rule(entry) {
        Ok(rule) => rule,
        Err(Error::UnknownOptimizer { .. }) => {
            return Outcome::Skipped(format!("`{}` is not built in yet", entry.optimizer))
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let roles = &rule.info().program().input_roles;
    if roles.contains(&Some(optdsl::Role::PreviousGrad)) && !args.all {
        // The trainer gives vsgd_fd the batch's gradient at the previous
        // parameters (a second backward pass); its finite-difference
        // curvature is too noisy here: `optdsl train --optimizer vsgd_fd
        // --set c=2 --set tau0=10 --set h0=2` stops with a non-finite loss at
        // step 110; with c = h0 = 4180 20 epochs end at 43%.
        return Outcome::Skipped(format!(
            "its finite-difference curvature (g_prev from a second backward pass) is too noisy to train here (see `optdsl train --optimizer {}`); --all runs it",
            entry.optimizer
        ));
    }
    let settings = hypers_text(rule.as_ref());
    let mut runs = Vec::new();
    for seed in args.seed..args.seed + args.seeds {
        let config = TrainConfig {
            epochs: args.epochs,
            batch: args.batch,
            seed,
            generator,
            ..TrainConfig::default()
        };
        let mut progress = Progress::new(entry.label, args.epochs, args.verbose);
        let result = Network::<F>::new_with(spec.clone(), seed, generator)
            .and_then(|net| Trainer::new(net, rule.clone(), config))
            .and_then(|mut t| {
                t.set_compression(args.state.compression(seed));
                t.fit(&data.train, &data.test, &mut progress)?;
                if let Some(warning) = t.divergence() {
                    eprintln!("warning: {} seed {seed}: {warning}", entry.label);
                }
                let mut h = t.history(&args.data);
                h.optimizer = format!("{} ({settings})", h.optimizer);
                Ok(h)
            });
        match result {
            Ok(h) => runs.push(h),
            Err(e) => return Outcome::Failed(format!("seed {seed}: {e}")),
        }
    }
    Outcome::Done(runs)
}

/// The printed table, the same as CSV, and the number of rows that fail
/// `--check`.
fn table(rows: &[(Entry, Outcome, f64)], with_sd: bool) -> (String, String, usize) {
    let acc_head = if with_sd { "test acc (sd)" } else { "test acc" };
    let mut text = format!(
        "{:<10} {:<34} {:>15} {:>8} {:>11} {:>9} {:>8} {:>6}\n",
        "optimizer", "settings", acc_head, "PyTorch", "train loss", "epoch ms", "GEMM ms", "ratio"
    );
    let mut csv = String::from(
        "optimizer,settings,runs,test_accuracy,test_accuracy_sd,pytorch_accuracy,\
         final_train_loss,median_epoch_ms,gemm_ms,status\n",
    );
    let mut bad = 0;
    for (e, outcome, matmul) in rows {
        let reference = e.pytorch.map_or("-".to_string(), |p| format!("{p:.3}"));
        let settings = settings_text(e);
        match outcome {
            Outcome::Done(runs) => {
                let s = Summary::of(runs);
                let ok = !matches!(e.pytorch, Some(p) if s.accuracy < p - TOLERANCE);
                bad += usize::from(!ok);
                let acc = if with_sd {
                    format!("{:.4} ({:.4})", s.accuracy, s.sd)
                } else {
                    format!("{:.4}", s.accuracy)
                };
                text += &format!(
                    "{:<10} {:<34} {:>15} {:>8} {:>11.4} {:>9.1} {:>8.1} {:>6.2}{}\n",
                    e.label,
                    settings,
                    acc,
                    reference,
                    s.train_loss,
                    s.epoch_seconds * 1e3,
                    matmul * 1e3,
                    s.epoch_seconds / matmul,
                    if ok { "" } else { "  below PyTorch - 0.5" }
                );
                csv += &format!(
                    "{},{},{},{},{},{},{},{},{},{}\n",
                    e.label,
                    settings,
                    runs.len(),
                    s.accuracy,
                    s.sd,
                    e.pytorch.map_or(String::new(), |p| p.to_string()),
                    s.train_loss,
                    s.epoch_seconds * 1e3,
                    matmul * 1e3,
                    if ok { "ok" } else { "below" }
                );
            }
            Outcome::Skipped(why) | Outcome::Failed(why) => {
                let failed = matches!(outcome, Outcome::Failed(_));
                bad += usize::from(failed && e.pytorch.is_some());
                let status = if failed { "failed" } else { "skipped" };
                text += &format!("{:<10} {:<34} {status}: {why}\n", e.label, settings);
                csv += &format!("{},{},0,,,,,,,{status}\n", e.label, settings);
            }
        }
    }
    (text, csv, bad)
}
