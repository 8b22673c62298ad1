//! The subcommands of the `optdsl` binary, one file each.

pub mod bench;
pub mod list;
pub mod paths;
pub mod replay;

/// What a subcommand returns: an exit code, or an error printed as `error: ...`.
pub type CliResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;
