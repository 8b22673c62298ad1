//! The `optdsl` command line: list the built-ins, replay reference
//! trajectories, train and compare optimizers on the bundled digits.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cli;

/// Optimizer update rules, compiled to fused loops, compared on real data.
#[derive(Parser)]
#[command(name = "optdsl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every built-in optimizer: name, family, hyperparameters (defaults and ranges), reference.
    List(cli::list::Args),
    /// Check rule files (the syntax inside `optimizer! { ... }`): one line a rule, or its errors.
    Check(cli::check::Args),
    /// Replay reference trajectories (JSON fixtures) through the built-ins or rule files.
    Replay(cli::replay::Args),
    /// Train the digit network on USPS, Semeion or a CSV file with one optimizer.
    Train(Box<cli::train_args::Args>),
    /// Train the course's digit network with every built-in optimizer and compare.
    Compare(cli::compare::Args),
    /// Time a rule's step against the same-traffic bound, the memory's limit and the interpreters.
    Bench(cli::bench::Args),
    /// Draw optimizer paths on 2-D error surfaces (bowl, Rosenbrock, Beale, saddle) as PNG/SVG.
    Paths(cli::paths::Args),
}

/// Ends the process quietly when its output pipe closes (`optdsl list |
/// head`), as Unix tools do, instead of panicking in `println!`: Rust
/// ignores SIGPIPE by default, so a write to a closed pipe is an error that
/// `println!` turns into a panic.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal at start-up,
    // before any thread is spawned.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(a) => cli::list::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Train(a) => cli::train::run(*a),
        Command::Compare(a) => cli::compare::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Paths(a) => cli::paths::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Escaped: an error may quote bytes of a damaged input file.
            eprintln!(
                "error: {}",
                optdsl::error::escape_controls(&cli::flags::render(e.as_ref()))
            );
            ExitCode::from(2)
        }
    }
}
