//! `optdsl list`: every built-in with its family, hyperparameters and
//! reference, and L-BFGS with its options.

use super::rules::RuleFiles;
use super::CliResult;
use optdsl::{storage_for, DynRule, StateFormat, Storage};
use std::process::ExitCode;

/// Arguments of `optdsl list`.
#[derive(clap::Args)]
pub struct Args {
    /// Only the built-ins of this family (sgd, sign, adaptive, adam, curvature, slides).
    #[arg(long)]
    pub family: Option<String>,
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
        if args.family.as_deref().is_some_and(|f| f != b.family) {
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
    if args.family.as_deref().is_none_or(|f| f == "curvature") {
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
    if args.family.as_deref().is_none_or(|f| f == "file") {
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
