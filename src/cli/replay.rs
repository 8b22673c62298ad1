//! `optdsl replay FIXTURE.json...`: runs reference trajectories through the
//! built-ins, or through the rules of `--rule FILE`.

use super::rules::{loaded, RuleFiles};
use super::CliResult;
use optdsl::replay::{fixture_rule_from, replay_with, Fixture};
use optdsl::DynRule;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Fixture files (see tests/golden/README.md for the format).
    #[arg(required = true)]
    pub fixtures: Vec<PathBuf>,
    /// Rule files: a fixture's `optimizer` is matched with a rule's name
    /// (ignoring case and `_`/`-`) and its `hyper` entries set by name.
    #[command(flatten)]
    pub rules: RuleFiles,
    /// Replay every fixture through this rule, whatever its `optimizer` says.
    #[arg(long)]
    pub optimizer: Option<String>,
}

/// Replays one fixture: through a loaded rule when rule files are given (or
/// `--optimizer` names one), otherwise through the built-in it names; a
/// closure-driven fixture (an objective: L-BFGS) always through L-BFGS.
fn replay_one(
    args: &Args,
    path: &std::path::Path,
) -> optdsl::Result<(Fixture, optdsl::replay::Outcome)> {
    let fixture = Fixture::load(path)?;
    let text: Vec<&dyn DynRule> = loaded().iter().map(|r| r as &dyn DynRule).collect();
    let closure = fixture.kind() == optdsl::replay::FixtureKind::Closure;
    if closure || (text.is_empty() && args.optimizer.is_none()) {
        return optdsl::replay::replay(&fixture).map(|o| (fixture, o));
    }
    let rule = if text.is_empty() {
        let b = optdsl::builtin_rule(args.optimizer.as_deref().unwrap_or_default())?;
        fixture_rule_from(&fixture, &[b.as_ref()], Some(b.info().name))?
    } else {
        fixture_rule_from(&fixture, &text, args.optimizer.as_deref())?
    };
    let outcome = replay_with(rule.as_ref(), &fixture)?;
    Ok((fixture, outcome))
}

/// Replays each fixture in its dtype through the built-in it names and prints
/// `PASS <name> max_rel_err=<x>` or `FAIL <name> step=<k> coord=<i> ours=<a> ref=<b>`;
/// exit status 1 if any fails, 2 if a fixture cannot be replayed (unreadable,
/// or an unknown optimizer or hyperparameter: the message lists the known ones).
pub fn run(args: Args) -> CliResult {
    args.rules.load()?;
    let mut failed = 0usize;
    let mut errors = 0usize;
    for path in &args.fixtures {
        match replay_one(&args, path) {
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
