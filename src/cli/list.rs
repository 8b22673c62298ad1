//! `optdsl list`: every built-in with its family, hyperparameters and reference.

use super::CliResult;
use std::process::ExitCode;

/// Arguments of `optdsl list`.
#[derive(clap::Args)]
pub struct Args {
    /// Only the built-ins of this family (sgd, sign, adaptive, adam, curvature, slides).
    #[arg(long)]
    pub family: Option<String>,
}

/// Prints one line per built-in: name, family, hyperparameters with their
/// defaults (and the `input`s it takes beside the gradient), reference.
pub fn run(args: Args) -> CliResult {
    for b in optdsl::builtins() {
        if args.family.as_deref().is_some_and(|f| f != b.family) {
            continue;
        }
        let rule = (b.make)();
        let info = rule.info();
        let mut hypers: Vec<String> = info
            .hypers
            .iter()
            .map(|h| format!("{}={}", h.name, h.default))
            .collect();
        if !info.inputs.is_empty() {
            hypers.push(format!("[input {}]", info.inputs.join(", ")));
        }
        println!(
            "{:<22} {:<10} {:<60} {}",
            b.name,
            b.family,
            hypers.join(" "),
            b.reference
        );
    }
    Ok(ExitCode::SUCCESS)
}
