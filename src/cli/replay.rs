//! `optdsl replay FIXTURE.json...`: runs reference trajectories through the built-ins.

use super::CliResult;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Fixture files (see tests/golden/README.md for the format).
    #[arg(required = true)]
    pub fixtures: Vec<PathBuf>,
}

/// Replays each fixture in its dtype through the built-in it names and prints
/// `PASS <name> max_rel_err=<x>` or `FAIL <name> step=<k> coord=<i> ours=<a> ref=<b>`;
/// exit status 1 if any fails, 2 if a fixture cannot be replayed (unreadable,
/// or an unknown optimizer or hyperparameter: the message lists the known ones).
pub fn run(args: Args) -> CliResult {
    let mut failed = 0usize;
    let mut errors = 0usize;
    for path in &args.fixtures {
        match optdsl::replay::replay_file(path) {
            Ok((fixture, outcome)) => {
                println!("{}", outcome.line(&fixture.name));
                failed += usize::from(!outcome.passed());
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                errors += 1;
            }
        }
    }
    if errors > 0 {
        return Err(format!(
            "{errors} of {} fixtures could not be replayed",
            args.fixtures.len()
        )
        .into());
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
