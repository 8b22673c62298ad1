//! Rules that draw random numbers (`randn()`: see `optdsl_lang::random`):
//! optax's noisy SGD and stochastic gradient Langevin dynamics. Their draws
//! are keyed by the optimizer's seed ([`crate::Optimizer::with_seed`], the
//! trainer's `--seed`), the step, the tensor and the element, so a run is
//! the same bits on any number of threads and after a resumed checkpoint.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// Noisy SGD (Neelakantan et al. 2015, "Adding gradient noise improves
    /// learning for very deep networks", arXiv 1511.06807), `optax.noisy_sgd`
    /// (`optax/_src/alias.py`: `add_noise(eta, gamma)` then
    /// `scale_by_learning_rate`; `transform.py`'s `add_noise` takes the
    /// variance `eta / count_inc**gamma` with `count_inc` the step from 1):
    ///
    /// σₜ² = η / tᵞ (t from 1; optax's docs write (1 + t)ᵞ with t from 0);
    /// w ← w − lr (g + σₜ z),  z ~ N(0, 1) per element.
    ///
    /// optax has no default learning rate, ours is 1e-2; η = 0.01 and γ = 0.55
    /// are optax's. The noise is optdsl's (Philox), not JAX's.
    pub NoisySgd {
        hyper lr = 1e-2 where lr >= 0, eta = 0.01 where eta >= 0, gamma = 0.55 where gamma >= 0;
        let sigma = sqrt(eta / t^gamma);
        w -= lr * (g + sigma * randn());
    }
}

optimizer! {
    /// Stochastic gradient Langevin dynamics (Welling & Teh 2011, "Bayesian
    /// learning via stochastic gradient Langevin dynamics", ICML, eq. 4),
    /// with `g` the gradient of the loss (the negative log posterior):
    ///
    /// w ← w − (ε/2) g + √ε z,  z ~ N(0, 1) per element (noise of variance ε).
    ///
    /// `lr` is the step size ε (≥ 0: it is a variance).
    pub Sgld {
        hyper lr = 1e-4 where lr >= 0;
        w = w - (lr / 2) * g + sqrt(lr) * randn();
    }
}

/// The rules that draw random numbers.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "noisy_sgd",
        family: Family::Sgd,
        reference: "optax.noisy_sgd; Neelakantan et al. 2015 (arXiv 1511.06807)",
        make: || Box::new(NoisySgd::default()),
    },
    BuiltinInfo {
        name: "sgld",
        family: Family::Sgd,
        reference: "Welling & Teh 2011 (ICML), stochastic gradient Langevin dynamics",
        make: || Box::new(Sgld::default()),
    },
];
