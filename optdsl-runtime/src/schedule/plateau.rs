//! Reduce-on-plateau (PyTorch's `ReduceLROnPlateau`): its settings
//! ([`Plateau`]) and its memory between epochs ([`ScheduleState`]: the best
//! metric so far, the bad epochs, the cool-down, the cuts made), which a
//! trainer keeps and checkpoints so that a resumed run cuts where the
//! uninterrupted one does.

use super::LrSchedule;
use serde::{Deserialize, Serialize};

/// Whether the watched metric should fall or rise (PyTorch's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMode {
    /// Improving means falling (a loss).
    #[default]
    Min,
    /// Improving means rising (an accuracy).
    Max,
}

/// How far a metric must beat the best to count as better (PyTorch's
/// `threshold_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// By a share of the best: below `best (1 - threshold)` (min), above
    /// `best (1 + threshold)` (max).
    #[default]
    Rel,
    /// By an amount: below `best - threshold`, above `best + threshold`.
    Abs,
}

/// PyTorch's `ReduceLROnPlateau` settings, its defaults by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    /// Whether the metric should fall or rise.
    pub mode: PlateauMode,
    /// Each cut multiplies the rate by this, in (0, 1).
    pub factor: f64,
    /// Epochs without improvement tolerated; the next one cuts.
    pub patience: usize,
    /// How much better than the best counts as better.
    pub threshold: f64,
    /// Whether `threshold` is a share or an amount.
    pub threshold_mode: ThresholdMode,
    /// Epochs after a cut during which bad epochs are not counted.
    pub cooldown: usize,
    /// The rate is never cut below this (`min_lr`, every group).
    pub min_lr: f64,
    /// A cut smaller than this is not made.
    pub eps: f64,
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

impl Plateau {
    /// The rate of a group whose base rate is `base` after `cuts` cuts:
    /// each `lr = max(lr factor, min_lr)` unless that moves it by `eps` or
    /// less, as PyTorch's `_reduce_lr` (so the same floating-point value).
    pub fn reduced(&self, base: f64, cuts: u32) -> f64 {
        let mut lr = base;
        for _ in 0..cuts {
            let new = (lr * self.factor).max(self.min_lr);
            if lr - new > self.eps {
                lr = new;
            } else {
                // Every later cut is refused alike.
                break;
            }
        }
        lr
    }

    /// Whether `metric` beats `best` (`None`: nothing seen yet, PyTorch's
    /// infinitely bad start).
    fn is_better(&self, metric: f64, best: Option<f64>) -> bool {
        let worst = match self.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        let best = best.unwrap_or(worst);
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => metric < best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => metric < best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => metric > best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => metric > best + self.threshold,
        }
    }
}

/// What a schedule remembers from epoch to epoch: reduce-on-plateau's best
/// metric, bad epochs, cool-down and cuts (every other schedule is a
/// function of the clock alone and leaves this at its start). Saved in
/// trainer checkpoints.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::schedule::{Clock, LrSchedule, Schedule, ScheduleState};
/// let s: LrSchedule = "plateau:factor=0.5:patience=1".parse().unwrap();
/// let mut state = ScheduleState::default();
/// for loss in [1.0, 0.9, 0.9, 0.9] {
///     state.observe(&s, loss);
/// }
/// // Two epochs without improvement: more than the patience of 1, one cut.
/// let clock = state.clock(Clock::at(40, 10, 10));
/// assert_eq!(s.value(0.1, clock), 0.05);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The best metric so far (`None` before the first).
    pub best: Option<f64>,
    /// Epochs since the last improvement (cool-down epochs not counted).
    pub bad_epochs: usize,
    /// Cool-down epochs left.
    pub cooldown_left: usize,
    /// Cuts made.
    pub cuts: u32,
}

impl ScheduleState {
    /// Whether nothing has been observed yet (or nothing was remembered),
    /// so a checkpoint need not carry it.
    pub fn is_start(&self) -> bool {
        *self == ScheduleState::default()
    }

    /// `clock` with this state's cuts.
    pub fn clock(&self, clock: super::Clock) -> super::Clock {
        super::Clock {
            cuts: self.cuts,
            ..clock
        }
    }

    /// Takes the metric of the epoch just finished, as PyTorch's
    /// `ReduceLROnPlateau.step(metric)`: a metric better than the best
    /// becomes the best, else the epoch is bad; bad epochs during a
    /// cool-down are forgotten; more than `patience` bad epochs cut the
    /// rate (from the next epoch) and start a cool-down. Does nothing for a
    /// schedule without a plateau; a plateau after a warm-up watches the
    /// warm-up's epochs too. A metric that is not finite (which the
    /// trainer never gives: it stops at a non-finite loss) counts as a bad
    /// epoch and never becomes the best.
    pub fn observe(&mut self, schedule: &LrSchedule, metric: f64) {
        let Some(p) = schedule.plateau() else {
            return;
        };
        if metric.is_finite() && p.is_better(metric, self.best) {
            self.best = Some(metric);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > p.patience {
            self.cuts = self.cuts.saturating_add(1);
            self.cooldown_left = p.cooldown;
            self.bad_epochs = 0;
        }
    }
}
