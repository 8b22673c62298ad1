//! `optdsl list`: every built-in with its family, hyperparameters and
//! reference, and L-BFGS with its options.

use super::rules::RuleFiles;
use super::CliResult;
use optdsl::{storage_for, DynRule, Family, StateFormat, Storage};
use std::process::ExitCode;

/// What `--family` picks: a built-in family, or the rules of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// The built-ins of a family.
    Builtin(Family),
    /// The rules of `--rule` files.
    File,
}

/// `--family NAME`: a family's name or `file`.
fn parse_family(name: &str) -> Result<Listed, String> {
    if name == "file" {
        return Ok(Listed::File);
    }
    Family::parse(name).map(Listed::Builtin).ok_or_else(|| {
        let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
        format!("`{name}`; use one of {}, or file", names.join(", "))
    })
}

/// Arguments of `optdsl list`.
#[derive(clap::Args)]
pub struct Args {
    /// Only the built-ins of this family (sgd, sign, adaptive, adam, matrix,
    /// curvature, slides), or `file` for the rules of --rule files.
    #[arg(long, value_parser = parse_family)]
    pub family: Option<Listed>,
    /// Rule files whose rules are listed too (family `file`).
    #[command(flatten)]
    pub rules: RuleFiles,
    /// Show how each buffer is stored under this state format (f32 shows
    /// only what rules declare themselves).
    #[arg(long = "state", default_value = "f32", value_parser = super::state::parse_format)]
    pub state: StateFormat,
}

/// `lr=0.001[0<=lr] beta1=0.9[0<=beta1<1] amsgrad=false [input h: curvature]
/// [state m:q8 v:uq8]`: each hyper with its default and, where the rule
/// declares one, its range; the inputs; how the buffers are stored when
/// any is compressed (`full`: the element type).
fn hypers_of(rule: &dyn DynRule, format: StateFormat) -> String {
    let info = rule.info();
    let mut hypers: Vec<String> = info
        .hypers
        .iter()
        .map(|h| match h.range {
            Some(r) => format!(
                "{}={}[{}]",
                h.name,
                h.default,
                r.describe(h.name).replace(' ', "")
            ),
            None => format!("{}={}", h.name, h.default),
        })
        .collect();
    if !info.inputs.is_empty() {
        hypers.push(format!("[input {}]", info.input_decls().join(", ")));
    }
    let storage = storage_for(info.program(), format);
    if storage.iter().any(|s| *s != Storage::Full) {
        let each: Vec<String> = info
            .buffers
            .iter()
            .zip(&storage)
            .map(|(b, s)| format!("{b}:{s}"))
            .collect();
        hypers.push(format!("[state {}]", each.join(" ")));
    }
    hypers.join(" ")
}

/// Prints one line per built-in: name, family, hyperparameters with their
/// defaults and ranges (and the `input`s it takes beside the gradient),
/// reference.
pub fn run(args: Args) -> CliResult {
    let files = args.rules.load()?;
    for b in optdsl::builtins() {
        if args.family.is_some_and(|f| f != Listed::Builtin(b.family)) {
            continue;
        }
        let rule = (b.make)();
        println!(
            "{:<22} {:<10} {:<60} {}",
            b.name,
            b.family,
            hypers_of(rule.as_ref(), args.state),
            b.reference
        );
    }
    // L-BFGS is no rule (it drives a closure: `optdsl::lbfgs`), listed
    // with the curvature-based rules.
    if args
        .family
        .is_none_or(|f| f == Listed::Builtin(Family::Curvature))
    {
        let options: Vec<String> = optdsl::lbfgs::HYPERS
            .iter()
            .map(|(name, default)| format!("{name}={default}"))
            .collect();
        let reference = "torch.optim.LBFGS (closure-driven; train with --batch all); Nocedal 1980, Liu & Nocedal 1989";
        println!(
            "{:<22} {:<10} {:<60} {reference}",
            "lbfgs",
            "curvature",
            options.join(" "),
        );
    }
    if args.family.is_none_or(|f| f == Listed::File) {
        for r in files {
            let doc = r.info().doc.lines().next().unwrap_or("").trim();
            println!(
                "{:<22} {:<10} {:<60} {}",
                r.name(),
                "file",
                hypers_of(r, args.state),
                doc
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
