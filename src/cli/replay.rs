//! `optdsl replay FIXTURE.json...`: runs reference trajectories through the built-ins.

use super::CliResult;
use std::path::PathBuf;

/// Arguments of `optdsl replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Fixture files (see tests/golden/README.md for the format).
    #[arg(required = true)]
    pub fixtures: Vec<PathBuf>,
}

/// Replays each fixture; exit status 1 if any fails.
pub fn run(args: Args) -> CliResult {
    Err(format!("replay of {} fixtures: not built yet", args.fixtures.len()).into())
}
