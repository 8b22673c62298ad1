//! `optdsl paths --out DIR`: pictures of optimizer paths on 2-D error surfaces
//! (an ill-conditioned bowl, Rosenbrock, Beale, a saddle) over their contours.

use super::CliResult;
use optdsl::plot::{plot_paths, Format};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `optdsl paths`.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the pictures (created if missing). Writes
    /// paths-bowl.png, paths-bowl-nag.png, paths-rosenbrock.png, paths-beale.png and
    /// paths-saddle.png there, replacing files of those names only.
    #[arg(long)]
    pub out: PathBuf,
    /// Steps per optimizer on every surface (default: the surface's own:
    /// bowl 60, bowl-nag 80, Rosenbrock 1000, Beale 500, saddle 60).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub steps: Option<u64>,
    /// Also write each picture as SVG (paths-*.svg).
    #[arg(long)]
    pub svg: bool,
}

/// Traces the optimizers on each surface, draws the pictures and prints the
/// path of every file written.
pub fn run(args: Args) -> CliResult {
    let mut formats = vec![Format::Png];
    if args.svg {
        formats.push(Format::Svg);
    }
    let steps = args.steps.map(|s| s as usize);
    for path in plot_paths(&args.out, steps, &formats)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
