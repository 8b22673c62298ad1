//! `optdsl bench`: a built-in's fused step against the same-traffic bound and
//! the ndarray-operator interpreter, one line per measurement.

use super::rules::{interpreted, lookup, RuleFiles};
use super::setup::Dtype;
use super::CliResult;
use optdsl::bench::{bench_rule_with, bench_shaped};
use optdsl::builtins;
use std::process::ExitCode;

/// Arguments of `optdsl bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Built-ins' or rule files' rules, comma-separated (`MyAdam,adam` times
    /// a text rule beside a compiled one in one run), or `all` (every
    /// built-in); with `--rule` and no `--optimizer`, every rule of the files.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Rule files; their rules run from text (JIT-compiled, or interpreted
    /// with `OPTDSL_JIT=0`).
    #[command(flatten)]
    pub rules: RuleFiles,
    /// Also time each built-in run from its own source text (JIT-compiled,
    /// or interpreted with `OPTDSL_JIT=0`), in the same run.
    #[arg(long)]
    pub interpreted: bool,
    /// Parameters per step.
    #[arg(long, default_value_t = 10_000_000)]
    pub n: usize,
    /// Element type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 21)]
    pub reps: usize,
    /// Timed interpreted steps (0 skips the interpreter).
    #[arg(long, default_value_t = 3)]
    pub naive_reps: usize,
    /// The state's format: f32, bf16 or q8 (the bound then moves the
    /// compressed bytes).
    #[arg(long = "state", default_value = "f32", value_parser = super::state::parse_format)]
    pub state: optdsl::StateFormat,
    /// One tensor of this shape (`1024x4096`, or `4096` for a vector)
    /// instead of `--n` parameters: rules with shapes (muon, adafactor) are
    /// timed beside the same matrix products done by the GEMM alone and the
    /// least traffic of a step. Rules with shapes default to 1024x4096.
    #[arg(long)]
    pub shape: Option<String>,
}

/// `1024x4096` (or `4096`): positive dimensions.
fn parse_shape(text: &str) -> Result<Vec<usize>, String> {
    let dims: Option<Vec<usize>> = text
        .split(['x', 'X'])
        .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect();
    match dims {
        Some(d) if !d.is_empty() && d.len() <= 8 => Ok(d),
        _ => Err(format!(
            "`{text}` is not a shape; write positive dimensions joined by `x`, as in 1024x4096"
        )),
    }
}

/// Prints `<name> <dtype> n=<n> threads=<t> ours_ms=.. bound_ms=.. ratio=.. naive_ms=..`.
pub fn run(args: Args) -> CliResult {
    let files = args.rules.load()?;
    let names: Vec<String> = match args.optimizer.as_deref() {
        Some("all") => builtins().iter().map(|b| b.name.to_string()).collect(),
        Some(list) => list.split(',').map(|n| n.trim().to_string()).collect(),
        None if !files.is_empty() => files.iter().map(|r| r.name().to_string()).collect(),
        None => vec!["adam".to_string()],
    };
    let shape = args.shape.as_deref().map(parse_shape).transpose()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    let most = (4 * cores).min(1024);
    if !(1..=most).contains(&threads) {
        return Err(format!(
            "invalid --threads: {threads}; give at least 1 and at most {most} (4 per core of the \
             {cores} available, at most 1024)"
        )
        .into());
    }
    println!(
        "# simd: light passes {}, heavy passes {}",
        optdsl::exec::level_for(false).name(),
        optdsl::exec::level_for(true).name()
    );
    for name in names {
        let mut rules = vec![(name.clone(), lookup(&name)?)];
        let is_file_rule = super::rules::find(&name).is_some();
        if args.interpreted && !is_file_rule {
            rules.push((format!("{name}(text)"), interpreted(&name)?));
        }
        for (label, rule) in rules {
            let shaped = rule.info().program().tensor.is_some();
            if shape.is_some() || shaped {
                if args.state != optdsl::StateFormat::Full {
                    println!(
                        "# {label}: a rule with shapes keeps its state uncompressed; --state {} \
                         applies to element-wise rules",
                        args.state
                    );
                }
                let shape = shape.clone().unwrap_or_else(|| vec![1024, 4096]);
                let line = if args.dtype == Dtype::F64 {
                    bench_shaped::<f64>(rule.as_ref(), &shape, threads, args.reps)?.to_string()
                } else {
                    bench_shaped::<f32>(rule.as_ref(), &shape, threads, args.reps)?.to_string()
                };
                println!("{label}{}", &line[rule.info().name.len()..]);
                continue;
            }
            let result = if args.dtype == Dtype::F64 {
                bench_rule_with::<f64>(
                    rule.as_ref(),
                    args.n,
                    threads,
                    args.reps,
                    args.naive_reps,
                    args.state,
                )?
            } else {
                bench_rule_with::<f32>(
                    rule.as_ref(),
                    args.n,
                    threads,
                    args.reps,
                    args.naive_reps,
                    args.state,
                )?
            };
            let mut line = result.to_string();
            line.replace_range(..result.name.len(), &label);
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
