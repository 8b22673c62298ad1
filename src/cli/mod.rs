//! The subcommands of the `optdsl` binary, one file each.

pub mod bench;
pub mod check;
pub mod compare;
pub mod flags;
pub mod list;
pub mod outputs;
pub mod paths;
pub mod progress;
pub mod replay;
pub mod rows;
pub mod rules;
pub mod setup;
pub mod state;
pub mod train;
pub mod train_args;
pub mod train_lbfgs;

/// What a subcommand returns: an exit code, or an error printed as `error: ...`.
pub type CliResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;
