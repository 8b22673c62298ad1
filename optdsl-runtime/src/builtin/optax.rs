//! Optax parity: `optax.lion`, `optax.lamb` and `optax.adabelief` (optax 0.2.8,
//! `optax/_src/alias.py` and `transform.py`). Names follow the rest of the
//! runtime (`lr` for optax's `learning_rate`, `beta1`/`beta2` for `b1`/`b2`);
//! optax has no default learning rate, ours is 1e-3.
//!
//! optax computes the bias corrections `1 - b^t` in the parameters' type (in
//! float32 for float32 parameters, where `1 - float32(0.999)` is 1.3e-5
//! relative below 1e-3); `float(..)` rounds those per-step scalars to the
//! element type the same way, so float32 runs replay optax's float32 runs.
//!
//! optax does not check its arguments; the hyper ranges here are what the
//! maths needs: η ≥ 0, λ ≥ 0 (a decay), ε ≥ 0, and a β in [0, 1), or in
//! [0, 1] where nothing divides by 1 − βᵗ.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// Lion (Chen et al. 2023, arXiv 2302.06675), `optax.lion`
    /// (`scale_by_lion` + `add_decayed_weights` + learning rate):
    ///
    /// u = sign((1 − β₁) g + β₁ m);  m ← (1 − β₂) g + β₂ m;  w ← w − η (u + λ w).
    ///
    /// Ranges from the maths: η ≥ 0, λ ≥ 0, and β₁, β₂ in [0, 1], the weights
    /// of convex combinations (no bias correction divides by 1 − βᵗ).
    pub Lion {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 <= 1,
              beta2 = 0.99 where 0 <= beta2 <= 1, weight_decay = 1e-3 where weight_decay >= 0,
              maximize = false;
        state mu = 0;
        let d = if maximize { -g } else { g };
        let u = sign((1 - beta1) * d + beta1 * mu);
        mu = (1 - beta2) * d + beta2 * mu;
        w -= lr * (u + weight_decay * w);
    }
}

optimizer! {
    /// LAMB (You et al. 2020, arXiv 1904.00962), `optax.lamb`
    /// (`scale_by_adam` + `add_decayed_weights` + `scale_by_trust_ratio`):
    ///
    /// m ← (1 − β₁) g + β₁ m;  v ← (1 − β₂) g² + β₂ v;
    /// u = m/(1 − β₁ᵗ) / (√(v/(1 − β₂ᵗ) + ε_root) + ε) + λ w;
    /// r = ‖w‖ / ‖u‖ per tensor (1 when either norm is 0);  w ← w − η r u.
    ///
    /// Ranges from the maths: η ≥ 0, λ ≥ 0, β₁, β₂ in [0, 1) (1 − βᵗ divides),
    /// ε, ε_root ≥ 0 (the root's argument and the denominator stay ≥ 0).
    pub Lamb {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-6 where eps >= 0,
              eps_root = 0 where eps_root >= 0, weight_decay = 0 where weight_decay >= 0,
              maximize = false;
        state mu = 0, nu = 0;
        let d = if maximize { -g } else { g };
        mu = (1 - beta1) * d + beta1 * mu;
        nu = (1 - beta2) * (d * d) + beta2 * nu;
        let bc1 = float(1 - float(float(beta1)^t));
        let bc2 = float(1 - float(float(beta2)^t));
        let u = (mu / bc1) / (sqrt(nu / bc2 + eps_root) + eps) + weight_decay * w;
        let param_norm = norm(w);
        let update_norm = norm(u);
        let ratio = if param_norm == 0 || update_norm == 0 { 1 } else { param_norm / update_norm };
        w -= lr * (u * ratio);
    }
}

optimizer! {
    /// AdaBelief (Zhuang et al. 2020, arXiv 2010.07468), `optax.adabelief`
    /// (`scale_by_belief`):
    ///
    /// m ← (1 − β₁) g + β₁ m;  s ← (1 − β₂)(g − m)² + β₂ s + ε_root;
    /// w ← w − η · m/(1 − β₁ᵗ) / (√(s/(1 − β₂ᵗ)) + ε).
    ///
    /// `nesterov` uses β₁ m/(1 − β₁ᵗ⁺¹) + (1 − β₁) g/(1 − β₁ᵗ) for the first moment.
    ///
    /// Ranges from the maths: η ≥ 0, β₁, β₂ in [0, 1) (1 − βᵗ divides), ε,
    /// ε_root ≥ 0 (s stays ≥ 0 under the root).
    pub AdaBelief {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-16 where eps >= 0,
              eps_root = 1e-16 where eps_root >= 0, nesterov = false, maximize = false;
        state mu = 0, nu = 0;
        let d = if maximize { -g } else { g };
        mu = (1 - beta1) * d + beta1 * mu;
        let err = d - mu;
        nu = (1 - beta2) * (err * err) + beta2 * nu;
        nu = nu + eps_root;
        let bc1 = float(1 - float(float(beta1)^t));
        let bc2 = float(1 - float(float(beta2)^t));
        let mhat = mu / bc1;
        if nesterov {
            let bc1_next = float(1 - float(float(beta1)^(t + 1)));
            mhat = beta1 * (mu / bc1_next) + (1 - beta1) * (d / bc1);
        }
        w -= lr * (mhat / (sqrt(nu / bc2) + eps));
    }
}

/// Optax's rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "lion",
        family: Family::Sign,
        reference: "optax.lion; Chen et al. 2023 (arXiv 2302.06675)",
        make: || Box::new(Lion::default()),
    },
    BuiltinInfo {
        name: "lamb",
        family: Family::Adam,
        reference: "optax.lamb; You et al. 2020 (arXiv 1904.00962)",
        make: || Box::new(Lamb::default()),
    },
    BuiltinInfo {
        name: "adabelief",
        family: Family::Adam,
        reference: "optax.adabelief; Zhuang et al. 2020 (arXiv 2010.07468)",
        make: || Box::new(AdaBelief::default()),
    },
];
