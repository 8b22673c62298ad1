//! `optdsl check FILE...`: compiles rule files and prints one line a rule
//! (name, hyperparameters with defaults, state, inputs, passes and bytes
//! moved per element), or every diagnostic at `FILE:LINE:COL` (exit 1).

use super::CliResult;
use optdsl::{DynRule, Rules};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl check`.
#[derive(clap::Args)]
pub struct Args {
    /// Rule files (the syntax inside `optimizer! { ... }`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// One line describing a rule.
pub fn describe(rule: &dyn DynRule) -> String {
    let info = rule.info();
    let hypers: Vec<String> = info
        .hypers
        .iter()
        .map(|h| format!("{}={}", h.name, h.default))
        .collect();
    let hypers_now: Vec<optdsl::HyperValue> = info.hypers.iter().map(|h| h.default).collect();
    let passes = info.traffic(&hypers_now, 2);
    let bytes = |elem: usize| -> usize { passes.iter().map(|p| p.bytes_per_element(elem)).sum() };
    let list = |v: &[&str]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    format!(
        "{} hypers: {} state: {} scalars: {} inputs: {} passes: {} bytes/element: {} (f32) {} (f64)",
        info.name,
        if hypers.is_empty() { "-".to_string() } else { hypers.join(" ") },
        list(info.buffers),
        list(info.scalars),
        list(&info.input_decls().iter().map(String::as_str).collect::<Vec<_>>()),
        passes.len(),
        bytes(4),
        bytes(8),
    )
}

/// Checks every file; prints each rule's line, or the diagnostics on stderr.
pub fn run(args: Args) -> CliResult {
    let mut bad = 0;
    for path in &args.files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                bad += 1;
                continue;
            }
        };
        match Rules::parse_named(&path.display().to_string(), &text) {
            Ok(rules) => {
                for r in &rules {
                    println!("{}", describe(r));
                }
            }
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
