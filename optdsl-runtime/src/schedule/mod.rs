//! Learning-rate schedules: one [`Schedule`] interface (a hyperparameter's
//! value as a function of where training stands, a [`Clock`]) and one data
//! type implementing it, [`LrSchedule`], which `optdsl train --schedule`
//! parses and prints: constant, 1/t, PyTorch's `StepLR`, `MultiStepLR`,
//! `ExponentialLR`, `CosineAnnealingLR`, `LinearLR`, `PolynomialLR`,
//! `OneCycleLR`, `CyclicLR`, `CosineAnnealingWarmRestarts` and
//! `ReduceLROnPlateau`, optax's `piecewise_constant_schedule`, and a linear
//! warm-up before any of them. Each formula is written once, in
//! [`LrSchedule::value`](Schedule::value); `tests/schedules.rs` checks every
//! one against the rates PyTorch's schedulers give
//! (`tests/golden/schedules/`).
//!
//! The string forms parse with [`std::str::FromStr`] (a [`ScheduleError`]
//! for a bad one) and print with [`std::fmt::Display`];
//! reduce-on-plateau's memory between epochs (the only schedule with one)
//! is [`ScheduleState`].

mod parse;
mod plateau;

pub use parse::ScheduleError;
pub use plateau::{Plateau, PlateauMode, ScheduleState, ThresholdMode};

use crate::error::Result;
use crate::optim::Optimizer;
use crate::rule::{DynFloat, HyperValue};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::fmt;

/// Where training stands when a step's rate is computed; counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Steps taken before this one.
    pub step: u64,
    /// Epochs finished before this step's epoch.
    pub epoch: usize,
    /// Steps (mini-batches) in an epoch.
    pub steps_per_epoch: u64,
    /// Steps in the whole run.
    pub total_steps: u64,
    /// Times a reduce-on-plateau schedule has cut the rate so far
    /// ([`ScheduleState`]); 0 for every other schedule.
    #[serde(default)]
    pub cuts: u32,
}

impl Clock {
    /// The clock of step `step` (from 0) of a run of `epochs` epochs of
    /// `steps_per_epoch` steps each (at least 1), before any plateau cut.
    pub fn at(step: u64, steps_per_epoch: u64, epochs: usize) -> Clock {
        let steps_per_epoch = steps_per_epoch.max(1);
        Clock {
            step,
            epoch: (step / steps_per_epoch) as usize,
            steps_per_epoch,
            total_steps: steps_per_epoch.saturating_mul(epochs as u64),
            cuts: 0,
        }
    }

    /// The clock of step `step` (from 0) of a run of `total_steps` steps
    /// without epochs: every step counts as an epoch, so epoch-wise
    /// schedules change every step.
    pub fn of_steps(step: u64, total_steps: u64) -> Clock {
        Clock::at(step, 1, total_steps as usize)
    }
}

/// A hyperparameter's value as a function of where training stands.
pub trait Schedule {
    /// The value at `clock` of a hyperparameter whose unscheduled value
    /// (its base) is `base`.
    fn value(&self, base: f64, clock: Clock) -> f64;

    /// Sets hyperparameter `name` of every group of `opt` to its value for
    /// the step `opt` is about to take, in a run of `total_steps` steps
    /// without epochs ([`Clock::of_steps`] of `opt`'s step count), from
    /// `base`. An error if `opt`'s rule has no such hyperparameter.
    fn apply<F: DynFloat>(
        &self,
        opt: &mut Optimizer<F>,
        name: &str,
        base: f64,
        total_steps: u64,
    ) -> Result<()>
    where
        Self: Sized,
    {
        let clock = Clock::of_steps(opt.steps(), total_steps);
        opt.set_hyper(name, HyperValue::Num(self.value(base, clock)))
    }
}

/// How one-cycle anneals between its rates (PyTorch's `anneal_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// `end + (start - end) / 2 (cos(pi p) + 1)`.
    #[default]
    Cos,
    /// `(end - start) p + start`.
    Linear,
}

/// PyTorch's `OneCycleLR` settings; the peak rate (`max_lr`) is the
/// group's learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneCycle {
    /// Share of the steps spent rising to the peak (`pct_start`, in [0, 1]).
    pub pct_start: f64,
    /// How the rate moves between its values.
    pub anneal: Anneal,
    /// The rate starts at `max_lr / div_factor`.
    pub div_factor: f64,
    /// The rate ends at `max_lr / div_factor / final_div_factor`.
    pub final_div_factor: f64,
    /// Three phases (up, back down to the start, then down to the end, as
    /// the paper) instead of fastai's two.
    pub three_phase: bool,
}

impl Default for OneCycle {
    fn default() -> Self {
        OneCycle {
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

/// How a cyclic schedule scales its amplitude (PyTorch's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclicMode {
    /// The same amplitude every cycle.
    #[default]
    Triangular,
    /// The amplitude halves every cycle.
    Triangular2,
    /// The amplitude is scaled by `gamma^step`.
    ExpRange,
}

/// PyTorch's `CyclicLR` settings; the upper rate (`max_lr`) is the group's
/// learning rate. Counted in steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cyclic {
    /// The lower rate (`base_lr`), the same for every group.
    pub base_lr: f64,
    /// Steps of a cycle's rising half (`step_size_up`).
    pub step_size_up: u64,
    /// Steps of its falling half (`step_size_down`; `None`: as rising).
    pub step_size_down: Option<u64>,
    /// How the amplitude changes from cycle to cycle.
    pub mode: CyclicMode,
    /// The factor of [`CyclicMode::ExpRange`] (1 for the other modes).
    pub gamma: f64,
}

/// A learning-rate schedule: the rate of each step as a function of the
/// group's base rate `eta` (its `lr`) and the [`Clock`]. Each variant says
/// whether it counts in epochs (the rate changes once an epoch, as a
/// PyTorch scheduler stepped once an epoch) or in steps (stepped after every
/// mini-batch); those that span "the run" use the run's length.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::schedule::{Clock, LrSchedule, Schedule};
/// let s: LrSchedule = "warmup:1+cosine".parse().unwrap();
/// let at = |step| Clock::at(step, 10, 11);
/// assert_eq!(s.value(0.1, at(0)), 0.1 / 10.0);        // warm-up: 1/10 of the way
/// assert_eq!(s.value(0.1, at(10)), 0.1);              // cosine starts at the base rate
/// assert!(s.value(0.1, at(109)) < 1e-3);              // and ends near 0
/// assert_eq!(s.to_string(), "warmup:1+cosine");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `eta`.
    #[default]
    Constant,
    /// 1/t decay, `eta / (1 + decay t)`, `t` the epoch, or the step when
    /// `per_step`. With `decay` 1 this is the course's `eta / t` (t from 1),
    /// the Robbins–Monro rate that makes SGD converge on stochastic problems
    /// (Σ η_t = ∞, Σ η_t² < ∞); PyTorch's Adagrad `lr_decay` has the same
    /// form, and `LambdaLR(lambda t: 1 / (1 + decay * t))` gives it.
    InverseTime {
        /// Count `t` in steps rather than epochs.
        per_step: bool,
        /// δ, the decay per epoch (or step).
        #[serde(default = "one")]
        decay: f64,
    },
    /// `eta gamma^floor(epoch / every)` (PyTorch's `StepLR`); epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor of each decay.
        gamma: f64,
    },
    /// `eta gamma^k`, `k` the number of milestones at or before the epoch
    /// (PyTorch's `MultiStepLR`); epochs.
    MultiStep {
        /// The epochs at which the rate is multiplied by `gamma`, increasing.
        milestones: Vec<usize>,
        /// Factor of each decay.
        gamma: f64,
    },
    /// `eta gamma^epoch` (PyTorch's `ExponentialLR`); epochs.
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// `min + (eta - min) (1 + cos(pi s / S)) / 2` over the `S` steps of the
    /// run (PyTorch's `CosineAnnealingLR` with `T_max` = all steps, stepped
    /// every step).
    Cosine {
        /// The final rate.
        min: f64,
    },
    /// `eta (start + (end - start) min(epoch, epochs) / epochs)`: the factor
    /// moves linearly from `start` to `end` over `epochs` epochs, then stays
    /// (PyTorch's `LinearLR`); epochs.
    Linear {
        /// The first epoch's factor (`start_factor`, in (0, 1]).
        start: f64,
        /// The factor from epoch `epochs` on (`end_factor`, in [0, 1]).
        end: f64,
        /// Epochs of the change (`total_iters`).
        epochs: usize,
    },
    /// `eta (1 - min(epoch, epochs) / epochs)^power` (PyTorch's
    /// `PolynomialLR`); epochs.
    Polynomial {
        /// Epochs to reach 0 (`total_iters`).
        epochs: usize,
        /// The exponent.
        power: f64,
    },
    /// Up from `eta / div_factor` to `eta`, then down to
    /// `eta / div_factor / final_div_factor` over the run (PyTorch's
    /// `OneCycleLR`, `max_lr` = `eta`, `total_steps` = the run's steps);
    /// steps. Momentum is not cycled (PyTorch's `cycle_momentum=False`).
    OneCycle(OneCycle),
    /// Triangular cycles between `base_lr` and `eta` (PyTorch's `CyclicLR`,
    /// `max_lr` = `eta`); steps. Momentum is not cycled.
    Cyclic(Cyclic),
    /// Cosine annealing from `eta` to `min` over `t0` epochs, restarted at
    /// `eta` with a period `t_mult` times longer each time (SGDR; PyTorch's
    /// `CosineAnnealingWarmRestarts` stepped once an epoch); epochs.
    Restarts {
        /// Epochs of the first period (`T_0`).
        t0: usize,
        /// Factor of each period's length over the last (`T_mult`).
        t_mult: usize,
        /// The rate at the end of each period (`eta_min`).
        min: f64,
    },
    /// `eta`, cut by `factor` each time the watched metric stops improving
    /// (PyTorch's `ReduceLROnPlateau`); it watches a metric once an epoch
    /// ([`ScheduleState::observe`]; the trainer gives it the epoch's
    /// training loss). Stateful: the cuts so far come in [`Clock::cuts`].
    Plateau(Plateau),
    /// `eta` times the product of the scales of the boundaries at or before
    /// the step (optax's `piecewise_constant_schedule`, whose `count` is the
    /// step); steps.
    Piecewise {
        /// `(boundary, scale)` pairs, boundaries (steps) increasing.
        boundaries: Vec<(u64, f64)>,
    },
    /// `eta (s + 1) / W` for the first `W` steps (`epochs` epochs' worth), then
    /// `then`, whose clock starts after the warm-up (PyTorch's `LinearLR`
    /// with `start_factor` 1/W and `total_iters` W − 1, stepped every step,
    /// in a `SequentialLR` with `then`).
    Warmup {
        /// Length of the warm-up, in epochs (fractions allowed).
        epochs: f64,
        /// The schedule after it.
        then: Box<LrSchedule>,
    },
}

fn one() -> f64 {
    1.0
}

impl LrSchedule {
    /// The course's 1/t decay counted in steps, `eta / (1 + decay t)`.
    pub fn inverse_time(decay: f64) -> LrSchedule {
        LrSchedule::InverseTime {
            per_step: true,
            decay,
        }
    }

    /// Whether the rate never changes (so a trainer need not set it each step).
    pub fn is_constant(&self) -> bool {
        matches!(self, LrSchedule::Constant)
    }

    /// The reduce-on-plateau schedule this one runs (itself, or after a
    /// warm-up), if any.
    pub fn plateau(&self) -> Option<&Plateau> {
        match self {
            LrSchedule::Plateau(p) => Some(p),
            LrSchedule::Warmup { then, .. } => then.plateau(),
            _ => None,
        }
    }

    fn warmup_steps(epochs: f64, steps_per_epoch: u64) -> u64 {
        ((epochs * steps_per_epoch as f64).round() as u64).max(1)
    }
}

impl Schedule for LrSchedule {
    fn value(&self, eta: f64, clock: Clock) -> f64 {
        let epoch = clock.epoch;
        match self {
            LrSchedule::Constant => eta,
            LrSchedule::InverseTime { per_step, decay } => {
                let t = if *per_step { clock.step } else { epoch as u64 };
                eta / (1.0 + decay * t as f64)
            }
            // Powers as PyTorch's closed forms take them (`gamma ** k`).
            LrSchedule::Step { every, gamma } => eta * gamma.powf((epoch / (*every).max(1)) as f64),
            LrSchedule::MultiStep { milestones, gamma } => {
                let passed = milestones.partition_point(|&m| m <= epoch);
                eta * gamma.powf(passed as f64)
            }
            LrSchedule::Exponential { gamma } => eta * gamma.powf(epoch as f64),
            LrSchedule::Cosine { min } => {
                let span = clock.total_steps.max(1) as f64;
                cosine(eta, *min, (clock.step as f64).min(span), span)
            }
            LrSchedule::Linear { start, end, epochs } => {
                let e = epoch.min(*epochs) as f64;
                eta * (start + (end - start) * e / *epochs as f64)
            }
            LrSchedule::Polynomial { epochs, power } => {
                let e = epoch.min(*epochs) as f64;
                eta * (1.0 - e / *epochs as f64).powf(*power)
            }
            LrSchedule::OneCycle(c) => c.value(eta, clock.step, clock.total_steps.max(1)),
            LrSchedule::Cyclic(c) => c.value(eta, clock.step),
            LrSchedule::Restarts { t0, t_mult, min } => {
                let (t, period) = restart_position(epoch as u64, *t0 as u64, *t_mult as u64);
                cosine(eta, *min, t as f64, period as f64)
            }
            LrSchedule::Plateau(p) => p.reduced(eta, clock.cuts),
            LrSchedule::Piecewise { boundaries } => boundaries
                .iter()
                .take_while(|(b, _)| *b <= clock.step)
                .fold(eta, |v, (_, scale)| scale * v),
            LrSchedule::Warmup { epochs, then } => {
                let w = Self::warmup_steps(*epochs, clock.steps_per_epoch);
                if clock.step < w {
                    eta * (clock.step + 1) as f64 / w as f64
                } else {
                    let step = clock.step - w;
                    let after = Clock {
                        step,
                        epoch: (step / clock.steps_per_epoch.max(1)) as usize,
                        steps_per_epoch: clock.steps_per_epoch,
                        total_steps: clock.total_steps.saturating_sub(w),
                        cuts: clock.cuts,
                    };
                    then.value(eta, after)
                }
            }
        }
    }
}

/// Cosine annealing from `eta` to `min`, `t` into a period of `period`:
/// `min + (eta - min) (1 + cos(pi t / period)) / 2`, in the order PyTorch's
/// `CosineAnnealingLR` (closed form) and `CosineAnnealingWarmRestarts`
/// compute it.
fn cosine(eta: f64, min: f64, t: f64, period: f64) -> f64 {
    min + (eta - min) * (1.0 + (PI * t / period).cos()) / 2.0
}

/// Where epoch `epoch` falls in SGDR's periods: (epochs into its period,
/// the period's length), the first period `t0` long, each next `t_mult`
/// times the last.
fn restart_position(epoch: u64, t0: u64, t_mult: u64) -> (u64, u64) {
    let t0 = t0.max(1);
    if t_mult <= 1 {
        return (epoch % t0, t0);
    }
    let (mut t, mut period) = (epoch, t0);
    while t >= period {
        t -= period;
        period = period.saturating_mul(t_mult);
    }
    (t, period)
}

impl OneCycle {
    /// The rate at step `step` of `total` for peak `max_lr`, as PyTorch's
    /// `OneCycleLR.get_lr` computes it (same operations, same order). A
    /// phase of no length (`pct_start * total` = 1) gives its start value
    /// where PyTorch divides by zero.
    fn value(&self, max_lr: f64, step: u64, total: u64) -> f64 {
        let initial = max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let total_f = total as f64;
        let phases: &[(f64, f64, f64)] = if self.three_phase {
            &[
                (self.pct_start * total_f - 1.0, initial, max_lr),
                (2.0 * self.pct_start * total_f - 2.0, max_lr, initial),
                ((total - 1) as f64, initial, min),
            ]
        } else {
            &[
                (self.pct_start * total_f - 1.0, initial, max_lr),
                ((total - 1) as f64, max_lr, min),
            ]
        };
        let step = step as f64;
        // The first phase whose end is not before the step, else the last.
        let last = phases.len() - 1;
        let (mut k, mut start_step) = (0, 0.0);
        while k < last && step > phases[k].0 {
            start_step = phases[k].0;
            k += 1;
        }
        let (end_step, from, to) = phases[k];
        let length = end_step - start_step;
        let pct = if length == 0.0 {
            0.0
        } else {
            (step - start_step) / length
        };
        match self.anneal {
            Anneal::Cos => to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (to - from) * pct + from,
        }
    }
}

impl Cyclic {
    /// The rate at step `step` for upper rate `max_lr`, as PyTorch's
    /// `CyclicLR.get_lr` computes it (same operations, same order).
    fn value(&self, max_lr: f64, step: u64) -> f64 {
        let up = self.step_size_up as f64;
        let total = up + self.step_size_down.unwrap_or(self.step_size_up) as f64;
        let ratio = up / total;
        let e = step as f64;
        let cycle = (1.0 + e / total).floor();
        let x = 1.0 + e / total - cycle;
        let scale = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let height = (max_lr - self.base_lr) * scale;
        let amplitude = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange => self.gamma.powf(e),
        };
        self.base_lr + height * amplitude
    }
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        parse::write(self, f)
    }
}

#[cfg(test)]
mod tests;
