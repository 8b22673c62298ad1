//! `optdsl list`: every built-in with its family, hyperparameters and
//! reference, and L-BFGS with its options.

use super::rules::RuleFiles;
use super::CliResult;
use optdsl::DynRule;
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
}

/// `lr=0.001[0<=lr] beta1=0.9[0<=beta1<1] amsgrad=false [input h]`: each
/// hyper with its default and, where the rule declares one, its range.
fn hypers_of(rule: &dyn DynRule) -> String {
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
        hypers.push(format!("[input {}]", info.inputs.join(", ")));
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
            hypers_of(rule.as_ref()),
            b.reference
        );
    }
    // L-BFGS is no rule (it drives a closure: `optdsl::lbfgs`), listed
    // with the curvature-based rules.
    if args.family.as_deref().map_or(true, |f| f == "curvature") {
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
    if args.family.as_deref().map_or(true, |f| f == "file") {
        for r in files {
            let doc = r.info().doc.lines().next().unwrap_or("").trim();
            println!(
                "{:<22} {:<10} {:<60} {}",
                r.name(),
                "file",
                hypers_of(r),
                doc
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
