//! Learning-rate schedules: [`LrSchedule`], the rate of each step of a
//! training run as a function of the base rate, the step and the epoch
//! (constant, 1/t, step, exponential, cosine, linear warm-up; what
//! `optdsl train --schedule` takes), and the [`Schedule`] trait, a
//! hyperparameter's value as a function of the step alone, with
//! [`InverseTime`] (the course's 1/t decay).

use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::rule::{DynFloat, HyperValue};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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
}

/// A learning-rate schedule. Epoch-wise ones (1/t, step, exponential) change
/// the rate once an epoch, as PyTorch's schedulers stepped once an epoch do;
/// cosine and warm-up change it every step.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::schedule::{Clock, LrSchedule};
/// let s: LrSchedule = "warmup:1+cosine".parse().unwrap();
/// let at = |step| Clock { step, epoch: (step / 10) as usize, steps_per_epoch: 10, total_steps: 110 };
/// assert_eq!(s.lr(0.1, at(0)), 0.1 / 10.0);        // warm-up: 1/10 of the way
/// assert_eq!(s.lr(0.1, at(10)), 0.1);              // cosine starts at the base rate
/// assert!(s.lr(0.1, at(109)) < 1e-3);              // and ends near 0
/// assert_eq!(s.to_string(), "warmup:1+cosine");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `eta`.
    #[default]
    Constant,
    /// `eta / (t + 1)`, `t` the epoch, or the step when `per_step`.
    InverseTime {
        /// Count `t` in steps rather than epochs.
        per_step: bool,
    },
    /// `eta * gamma^floor(epoch / every)` (PyTorch's `StepLR`).
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor of each decay.
        gamma: f64,
    },
    /// `eta * gamma^epoch` (PyTorch's `ExponentialLR`).
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// `min + (eta - min) (1 + cos(pi s / S)) / 2` over the `S` steps of the run
    /// (PyTorch's `CosineAnnealingLR` with `T_max` = all steps).
    Cosine {
        /// The final rate.
        min: f64,
    },
    /// `eta (s + 1) / W` for the first `W` steps (`epochs` epochs' worth), then
    /// `then`, whose clock starts after the warm-up.
    Warmup {
        /// Length of the warm-up, in epochs (fractions allowed).
        epochs: f64,
        /// The schedule after it.
        then: Box<LrSchedule>,
    },
}

impl LrSchedule {
    /// The learning rate of the step at `clock` for base rate `eta`.
    pub fn lr(&self, eta: f64, clock: Clock) -> f64 {
        match self {
            LrSchedule::Constant => eta,
            LrSchedule::InverseTime { per_step } => {
                let t = if *per_step {
                    clock.step as f64
                } else {
                    clock.epoch as f64
                };
                eta / (t + 1.0)
            }
            LrSchedule::Step { every, gamma } => eta * gamma.powi((clock.epoch / every) as i32),
            LrSchedule::Exponential { gamma } => eta * gamma.powi(clock.epoch as i32),
            LrSchedule::Cosine { min } => {
                let span = clock.total_steps.max(1) as f64;
                let s = (clock.step as f64).min(span);
                min + (eta - min) * (1.0 + (std::f64::consts::PI * s / span).cos()) / 2.0
            }
            LrSchedule::Warmup { epochs, then } => {
                let w = self.warmup_steps(*epochs, clock.steps_per_epoch);
                if clock.step < w {
                    eta * (clock.step + 1) as f64 / w as f64
                } else {
                    let step = clock.step - w;
                    let after = Clock {
                        step,
                        epoch: (step / clock.steps_per_epoch.max(1)) as usize,
                        steps_per_epoch: clock.steps_per_epoch,
                        total_steps: clock.total_steps.saturating_sub(w),
                    };
                    then.lr(eta, after)
                }
            }
        }
    }

    fn warmup_steps(&self, epochs: f64, steps_per_epoch: u64) -> u64 {
        ((epochs * steps_per_epoch as f64).round() as u64).max(1)
    }

    /// Whether the rate never changes (so a trainer need not set it each step).
    pub fn is_constant(&self) -> bool {
        matches!(self, LrSchedule::Constant)
    }
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrSchedule::Constant => f.write_str("constant"),
            LrSchedule::InverseTime { per_step: false } => f.write_str("1/t"),
            LrSchedule::InverseTime { per_step: true } => f.write_str("1/t:step"),
            LrSchedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            LrSchedule::Exponential { gamma } => write!(f, "exp:{gamma}"),
            LrSchedule::Cosine { min } if *min == 0.0 => f.write_str("cosine"),
            LrSchedule::Cosine { min } => write!(f, "cosine:{min}"),
            LrSchedule::Warmup { epochs, then } => write!(f, "warmup:{epochs}+{then}"),
        }
    }
}

const SYNTAX: &str = "constant, 1/t, 1/t:step, step:EVERY:GAMMA, exp:GAMMA, cosine, \
                      cosine:MIN_LR, or warmup:EPOCHS+SCHEDULE";

impl FromStr for LrSchedule {
    type Err = Error;
    /// Parses `constant`, `1/t` (per epoch), `1/t:step` (per step),
    /// `step:EVERY:GAMMA`, `exp:GAMMA`, `cosine`, `cosine:MIN_LR`,
    /// `warmup:EPOCHS` or `warmup:EPOCHS+SCHEDULE`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Invalid {
            what: "schedule".into(),
            reason: format!("`{s}`: {why}; use {SYNTAX}"),
        };
        let num = |t: &str| -> Result<f64> {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| bad(&format!("`{t}` is not a non-negative number")))
        };
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("warmup:") {
            let (epochs, then) = rest.split_once('+').unwrap_or((rest, "constant"));
            let epochs = num(epochs)?;
            if epochs <= 0.0 {
                return Err(bad("the warm-up needs a positive number of epochs"));
            }
            return Ok(LrSchedule::Warmup {
                epochs,
                then: Box::new(then.parse()?),
            });
        }
        let parts: Vec<&str> = s.split(':').collect();
        match parts[..] {
            ["constant"] => Ok(LrSchedule::Constant),
            ["1/t"] | ["inverse"] => Ok(LrSchedule::InverseTime { per_step: false }),
            ["1/t", "step"] | ["inverse", "step"] => Ok(LrSchedule::InverseTime { per_step: true }),
            ["1/t", "epoch"] | ["inverse", "epoch"] => {
                Ok(LrSchedule::InverseTime { per_step: false })
            }
            ["step", every, gamma] => {
                let every = every
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&e| e > 0)
                    .ok_or_else(|| bad("EVERY must be a positive whole number of epochs"))?;
                Ok(LrSchedule::Step {
                    every,
                    gamma: num(gamma)?,
                })
            }
            ["exp", gamma] | ["exponential", gamma] => {
                Ok(LrSchedule::Exponential { gamma: num(gamma)? })
            }
            ["cosine"] => Ok(LrSchedule::Cosine { min: 0.0 }),
            ["cosine", min] => Ok(LrSchedule::Cosine { min: num(min)? }),
            _ => Err(bad("unknown form")),
        }
    }
}

/// A hyperparameter's value at each step (from 1).
pub trait Schedule {
    /// The value for step `t` (1, 2, ...).
    fn value(&self, t: u64) -> f64;

    /// Sets hyperparameter `name` of every group of `opt` to the value for the
    /// step `opt` is about to take.
    fn apply<F: DynFloat>(&self, opt: &mut Optimizer<F>, name: &str) -> Result<()>
    where
        Self: Sized,
    {
        opt.set_hyper(name, HyperValue::Num(self.value(opt.steps() + 1)))
    }
}

/// 1/t decay: η_t = η / (1 + δ (t − 1)). With δ = 1 this is the course's
/// η_t = η / t, the Robbins–Monro rate that makes SGD converge on stochastic
/// problems (Σ η_t = ∞, Σ η_t² < ∞); PyTorch's Adagrad `lr_decay` is the same
/// form.
///
/// ```
/// use optdsl_runtime::{InverseTime, Schedule};
/// let s = InverseTime { lr: 0.5, decay: 1.0 };
/// assert_eq!([s.value(1), s.value(2), s.value(5)], [0.5, 0.25, 0.1]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InverseTime {
    /// η, the value at step 1.
    pub lr: f64,
    /// δ, the decay per step.
    pub decay: f64,
}

impl Schedule for InverseTime {
    fn value(&self, t: u64) -> f64 {
        self.lr / (1.0 + self.decay * (t.max(1) - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(step: u64) -> Clock {
        Clock {
            step,
            epoch: (step / 4) as usize,
            steps_per_epoch: 4,
            total_steps: 40,
        }
    }

    #[test]
    fn epoch_wise_schedules_change_once_an_epoch() {
        let inv: LrSchedule = "1/t".parse().unwrap();
        assert_eq!(inv.lr(1.0, clock(3)), 1.0);
        assert_eq!(inv.lr(1.0, clock(4)), 0.5);
        assert_eq!(inv.lr(1.0, clock(9)), 1.0 / 3.0);
        let per_step: LrSchedule = "1/t:step".parse().unwrap();
        assert_eq!(per_step.lr(1.0, clock(3)), 0.25);
        let step: LrSchedule = "step:2:0.5".parse().unwrap();
        assert_eq!(step.lr(0.8, clock(7)), 0.8);
        assert_eq!(step.lr(0.8, clock(8)), 0.4);
        assert_eq!(step.lr(0.8, clock(16)), 0.2);
        let exp: LrSchedule = "exp:0.9".parse().unwrap();
        assert!((exp.lr(1.0, clock(8)) - 0.81).abs() < 1e-15);
    }

    #[test]
    fn cosine_runs_from_the_base_rate_to_the_minimum() {
        let cos: LrSchedule = "cosine:0.01".parse().unwrap();
        assert_eq!(cos.lr(0.1, clock(0)), 0.1);
        assert!((cos.lr(0.1, clock(20)) - 0.055).abs() < 1e-12);
        assert!((cos.lr(0.1, clock(40)) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn warmup_rises_linearly_then_hands_over() {
        let s: LrSchedule = "warmup:2+step:1:0.5".parse().unwrap();
        let lrs: Vec<f64> = (0..13).map(|k| s.lr(1.0, clock(k))).collect();
        assert_eq!(
            &lrs[..8],
            [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
        );
        assert_eq!(&lrs[8..13], [1.0, 1.0, 1.0, 1.0, 0.5]);
        assert_eq!(
            "warmup:1".parse::<LrSchedule>().unwrap().lr(1.0, clock(30)),
            1.0
        );
    }

    #[test]
    fn text_round_trips_and_bad_text_is_an_error() {
        for text in [
            "constant",
            "1/t",
            "1/t:step",
            "step:3:0.1",
            "exp:0.95",
            "cosine",
            "cosine:0.001",
            "warmup:0.5+cosine",
        ] {
            assert_eq!(text.parse::<LrSchedule>().unwrap().to_string(), text);
        }
        for bad in [
            "",
            "linear",
            "step:0:0.5",
            "step:2",
            "exp:-1",
            "cosine:x",
            "warmup:0+cosine",
            "warmup:1+nope",
        ] {
            let err = bad.parse::<LrSchedule>().unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{bad}");
        }
    }
}

#[cfg(test)]
mod inverse_time_tests {
    use super::*;
    use crate::builtin::builtin_rule;

    #[test]
    fn inverse_time_drives_sgd_like_the_slides_rule() {
        // SGD with η_t = η/t set by the schedule equals the slides' 1/t rule.
        let mut opt = Optimizer::<f64>::with_rule(builtin_rule("sgd").unwrap(), &[2]);
        let slides = builtin_rule("seed-gd-1-over-t").unwrap();
        let mut state = slides.init_f64(2);
        let s = InverseTime {
            lr: 0.3,
            decay: 1.0,
        };
        let mut slides = slides;
        slides.set_hyper("lr", HyperValue::Num(0.3)).unwrap();
        let (mut a, mut b) = (vec![1.0, -2.0], vec![1.0, -2.0]);
        for k in 0..5 {
            let g = [a[0] * (k as f64 + 1.0), a[1] - 0.5];
            s.apply(&mut opt, "lr").unwrap();
            opt.step_flat(&mut a, &g).unwrap();
            let g = [b[0] * (k as f64 + 1.0), b[1] - 0.5];
            slides.step_f64(&mut state, &mut b, &g, &[]).unwrap();
        }
        assert_eq!(a, b);
        assert!(s.apply(&mut opt, "nope").is_err());
    }
}
