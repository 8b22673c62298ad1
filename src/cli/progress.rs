//! Training progress for the command line: an indicatif bar through each
//! epoch when stderr is a terminal, and one plain line per epoch either way.

use indicatif::{ProgressBar, ProgressStyle};
use optdsl::train::{EpochRecord, Observer};
use std::io::IsTerminal;

/// Shows a run's epochs: a bar on a terminal, a line per epoch (or none when
/// `lines` is off).
pub struct Progress {
    label: String,
    epochs: usize,
    lines: bool,
    terminal: bool,
    bar: Option<ProgressBar>,
    steps: u64,
}

impl Progress {
    /// Progress of a run of `epochs` epochs, its lines prefixed by `label`.
    pub fn new(label: &str, epochs: usize, lines: bool) -> Self {
        Progress {
            label: label.to_string(),
            epochs,
            lines,
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            steps: 0,
        }
    }
}

impl Observer for Progress {
    fn epoch_start(&mut self, epoch: usize, steps: u64) {
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(steps);
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> ");
        bar.set_style(style);
        let prefix = format!("{} epoch {epoch}/{}", self.label, self.epochs);
        bar.set_prefix(prefix.trim_start().to_string());
        self.bar = Some(bar);
        self.steps = 0;
    }

    fn step(&mut self, loss: f64) {
        if let Some(bar) = &self.bar {
            self.steps += 1;
            bar.inc(1);
            if self.steps % 16 == 1 {
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.lines {
            // A rule without a learning rate shows `lr -`.
            let lr =
                r.lr.map_or_else(|| "-".to_string(), |lr| format!("{lr:.4}"));
            println!(
                "{}epoch {:>3}/{}  lr {:<8}  train loss {:.4}  train acc {:.4}  test loss {:.4}  test acc {:.4}  {:.0} ms",
                if self.label.is_empty() { String::new() } else { format!("{} ", self.label) },
                r.epoch,
                self.epochs,
                lr,
                r.train_loss,
                r.train_accuracy,
                r.test_loss,
                r.test_accuracy,
                r.seconds * 1e3
            );
        }
    }
}
