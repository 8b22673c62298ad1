//! Learning-rate schedules: a hyperparameter's value as a function of the step,
//! set on an [`Optimizer`] before each step (the course's 1/t decay).

use crate::error::Result;
use crate::optim::Optimizer;
use crate::rule::{DynFloat, HyperValue};

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
