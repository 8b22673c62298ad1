//! `optdsl list`: every built-in with its family, hyperparameters and reference.

use super::CliResult;
use std::process::ExitCode;

/// Arguments of `optdsl list`.
#[derive(clap::Args)]
pub struct Args {}

/// Prints one line per built-in.
pub fn run(_: Args) -> CliResult {
    for b in optdsl::builtins() {
        let rule = (b.make)();
        let hypers: Vec<String> = rule
            .info()
            .hypers
            .iter()
            .map(|h| format!("{}={}", h.name, h.default))
            .collect();
        println!(
            "{:<12} {:<10} {:<60} {}",
            b.name,
            b.family,
            hypers.join(" "),
            b.reference
        );
    }
    Ok(ExitCode::SUCCESS)
}
