//! PyTorch parity: `torch.optim`'s Adagrad, RMSprop, Rprop, Adadelta, Adam,
//! AdamW, Adamax, NAdam, RAdam, SparseAdam and ASGD, transcribed from the single-tensor code
//! paths of torch 2.15 (`_single_tensor_<name>` in `torch/optim/<name>.py`) with
//! PyTorch's names and defaults. Tuple options are split: `betas` → `beta1`,
//! `beta2`; `etas` → `etaminus`, `etaplus`; `step_sizes` → `step_min`, `step_max`.
//! Every rule has `maximize` (descend on −g).
//!
//! Each hyper's `where` range is the check the constructor of the same
//! `torch.optim` class makes in torch 2.15 (`if not 0.0 <= lr: raise
//! ValueError(...)` becomes `where lr >= 0`), no tighter and no looser; a
//! tuple check is split like the tuple (`0.0 < etas[0] < 1.0 < etas[1]` becomes
//! `0 < etaminus < 1` and `etaplus > 1`). Hypers the constructor does not check
//! (Rprop's step sizes, ASGD's `t0`) have no range. NaN is outside every range.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// Adagrad (Duchi, Hazan & Singer 2011), `torch.optim.Adagrad`:
    ///
    /// d = ±g + λ w;  S ← S + d²;  η_t = η / (1 + (t − 1) δ);  w ← w − η_t d / (√S + ε),
    ///
    /// with S₀ = `initial_accumulator_value`, δ = `lr_decay`; ε outside the root.
    ///
    /// Ranges: PyTorch's constructor checks (`Adagrad.__init__`: `0.0 <=` each
    /// of lr, lr_decay, weight_decay, initial_accumulator_value and eps).
    pub Adagrad {
        hyper lr = 1e-2 where lr >= 0, lr_decay = 0 where lr_decay >= 0,
              weight_decay = 0 where weight_decay >= 0,
              initial_accumulator_value = 0 where initial_accumulator_value >= 0,
              eps = 1e-10 where eps >= 0, maximize = false;
        state sum_sq = initial_accumulator_value;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        let clr = lr / (1 + (t - 1) * lr_decay);
        sum_sq = sum_sq + d * d;
        w -= clr * (d / (sqrt(sum_sq) + eps));
    }
}

optimizer! {
    /// RMSprop (Tieleman & Hinton 2012, lecture 6.5), `torch.optim.RMSprop`:
    ///
    /// d = ±g + λ w;  v ← α v + (1 − α) d²;  centered: ḡ ← ḡ + (1 − α)(d − ḡ), v̂ = v − ḡ²;
    /// s = √v̂ + ε;  momentum μ > 0: b ← μ b + d / s, w ← w − η b;  else w ← w − η d / s.
    ///
    /// Ranges: PyTorch's constructor checks (`RMSprop.__init__`: `0.0 <=` each
    /// of lr, eps, momentum, weight_decay and alpha; alpha has no upper bound).
    pub Rmsprop {
        hyper lr = 1e-2 where lr >= 0, alpha = 0.99 where alpha >= 0, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0, momentum = 0 where momentum >= 0,
              centered = false, maximize = false;
        state square_avg = 0, grad_avg = 0, momentum_buffer = 0;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        square_avg = alpha * square_avg + (1 - alpha) * (d * d);
        let avg = sqrt(square_avg) + eps;
        if centered {
            grad_avg = grad_avg + (1 - alpha) * (d - grad_avg);
            avg = sqrt(square_avg - grad_avg * grad_avg) + eps;
        }
        if momentum > 0 {
            momentum_buffer = momentum * momentum_buffer + d / avg;
            w -= lr * momentum_buffer;
        } else {
            w -= lr * (d / avg);
        }
    }
}

optimizer! {
    /// Rprop, `torch.optim.Rprop`: the adaptive-step iRprop⁻ of Igel & Hüsken
    /// (2000), after Riedmiller & Braun (1993):
    ///
    /// s = sign(d · d_prev);  Δ ← clamp(Δ · (η⁺ if s > 0, η⁻ if s < 0, 1 if s = 0), Δ_min, Δ_max);
    /// d ← 0 where s < 0;  w ← w − sign(d) Δ;  d_prev ← d.
    ///
    /// Δ starts at `lr`; the clamp applies on step 1 too, and where the sign
    /// flipped the gradient is zeroed (no step, no flip next time).
    ///
    /// Ranges: PyTorch's constructor checks (`Rprop.__init__`: `0.0 <= lr` and
    /// `0.0 < etas[0] < 1.0 < etas[1]`, split into the two etas); the step sizes
    /// are not checked.
    pub Rprop {
        hyper lr = 1e-2 where lr >= 0, etaminus = 0.5 where 0 < etaminus < 1,
              etaplus = 1.2 where etaplus > 1, step_min = 1e-6, step_max = 50,
              maximize = false;
        state prev = 0, step_size = lr;
        let d = if maximize { -g } else { g };
        let s = sign(d * prev);
        let factor = if s > 0 { etaplus } else if s < 0 { etaminus } else { 1 };
        step_size = clamp(step_size * factor, step_min, step_max);
        d = if s < 0 { 0 } else { d };
        w -= sign(d) * step_size;
        prev = d;
    }
}

optimizer! {
    /// Adadelta (Zeiler 2012, arXiv 1212.5701, algorithm 1), `torch.optim.Adadelta`:
    ///
    /// d = ±g + λ w;  v ← ρ v + (1 − ρ) d²;  Δ = √(u + ε) / √(v + ε) · d;
    /// u ← ρ u + (1 − ρ) Δ²;  w ← w − η Δ   (ε inside both roots).
    ///
    /// Ranges: PyTorch's constructor checks (`Adadelta.__init__`: `0.0 <= lr`,
    /// `0.0 <= rho <= 1.0`, `0.0 <= eps`, `0.0 <= weight_decay`).
    pub Adadelta {
        hyper lr = 1.0 where lr >= 0, rho = 0.9 where 0 <= rho <= 1, eps = 1e-6 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0, maximize = false;
        state square_avg = 0, acc_delta = 0;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        square_avg = rho * square_avg + (1 - rho) * (d * d);
        let delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * d;
        acc_delta = rho * acc_delta + (1 - rho) * (delta * delta);
        w -= lr * delta;
    }
}

optimizer! {
    /// Adam (Kingma & Ba 2015, algorithm 1), `torch.optim.Adam`, with AMSGrad
    /// (Reddi, Kale & Kumar 2018) and decoupled weight decay as options:
    ///
    /// d = ±g (+ λ w, or w ← (1 − ηλ) w when decoupled);  m ← m + (1 − β₁)(d − m);
    /// v ← β₂ v + (1 − β₂) d²;  AMSGrad: v̂ ← max(v̂, v);
    /// w ← w − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
    ///
    /// Ranges: PyTorch's constructor checks (`Adam.__init__`: `0.0 <= lr`,
    /// `0.0 <= eps`, `0.0 <= betas[i] < 1.0`, `0.0 <= weight_decay`).
    pub Adam {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0,
              amsgrad = false, maximize = false, decoupled_weight_decay = false;
        state exp_avg = 0, exp_avg_sq = 0, max_exp_avg_sq = 0;
        let d = if maximize { -g } else { g };
        if decoupled_weight_decay {
            w = w * (1 - lr * weight_decay);
        } else {
            d = d + weight_decay * w;
        }
        exp_avg = exp_avg + (1 - beta1) * (d - exp_avg);
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * (d * d);
        let step_size = lr / (1 - beta1^t);
        let bc2_sqrt = sqrt(1 - beta2^t);
        let v = exp_avg_sq;
        if amsgrad {
            max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq);
            v = max_exp_avg_sq;
        }
        w -= step_size * (exp_avg / (sqrt(v) / bc2_sqrt + eps));
    }

    /// AdamW (Loshchilov & Hutter 2019, algorithm 2), `torch.optim.AdamW`: Adam
    /// with decoupled weight decay, w ← (1 − ηλ) w before the Adam step, λ = 0.01.
    /// As in torch 2.15, where `AdamW` is `Adam` with
    /// `decoupled_weight_decay=True`, it is a preset of [`Adam`]: the switch is
    /// fixed (not a hyperparameter), and the program is that of Adam written
    /// without it.
    ///
    /// Ranges: PyTorch's constructor checks (`AdamW.__init__` passes its
    /// arguments to `Adam.__init__`, whose checks these are).
    pub AdamW = Adam {
        hyper weight_decay = 1e-2;
        let decoupled_weight_decay = true;
    }
}

optimizer! {
    /// Adamax (Kingma & Ba 2015, algorithm 2), `torch.optim.Adamax`:
    ///
    /// d = ±g + λ w;  m ← m + (1 − β₁)(d − m);  u ← max(β₂ u, |d| + ε);
    /// w ← w − η/(1 − β₁ᵗ) · m / u.
    ///
    /// Ranges: PyTorch's constructor checks (`Adamax.__init__`: `0.0 <= lr`,
    /// `0.0 <= eps`, `0.0 <= betas[i] < 1.0`, `0.0 <= weight_decay`).
    pub Adamax {
        hyper lr = 2e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0, maximize = false;
        state exp_avg = 0, exp_inf = 0;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        exp_avg = exp_avg + (1 - beta1) * (d - exp_avg);
        exp_inf = max(beta2 * exp_inf, abs(d) + eps);
        w -= lr / (1 - beta1^t) * (exp_avg / exp_inf);
    }
}

optimizer! {
    /// NAdam (Dozat 2016), `torch.optim.NAdam`, with the momentum schedule
    /// μ_t = β₁ (1 − ½ · 0.96^(t ψ)) and its running product Π μ:
    ///
    /// m ← m + (1 − β₁)(d − m);  v ← β₂ v + (1 − β₂) d²;  s = √(v / (1 − β₂ᵗ)) + ε;
    /// w ← w − η (1 − μ_t)/(1 − Πμ) · d / s − η μ_{t+1}/(1 − Πμ · μ_{t+1}) · m / s.
    ///
    /// torch keeps Π μ as a float32 scalar; here it is kept in f64 (the
    /// difference is about 1e-7 relative).
    ///
    /// Ranges: PyTorch's constructor checks (`NAdam.__init__`: `0.0 <= lr`,
    /// `0.0 <= eps`, `0.0 <= betas[i] < 1.0`, `0.0 <= weight_decay`,
    /// `0.0 <= momentum_decay`).
    pub NAdam {
        hyper lr = 2e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0,
              momentum_decay = 4e-3 where momentum_decay >= 0,
              decoupled_weight_decay = false, maximize = false;
        state exp_avg = 0, exp_avg_sq = 0;
        scalar mu_product = 1;
        let d = if maximize { -g } else { g };
        if decoupled_weight_decay {
            w = w * (1 - lr * weight_decay);
        } else {
            d = d + weight_decay * w;
        }
        let bc2 = 1 - beta2^t;
        let mu = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));
        let mu_next = beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay));
        mu_product = mu_product * mu;
        exp_avg = exp_avg + (1 - beta1) * (d - exp_avg);
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * (d * d);
        let denom = sqrt(exp_avg_sq / bc2) + eps;
        w -= lr * (1 - mu) / (1 - mu_product) * (d / denom);
        w -= lr * mu_next / (1 - mu_product * mu_next) * (exp_avg / denom);
    }
}

optimizer! {
    /// RAdam (Liu et al. 2020, arXiv 1908.03265, algorithm 2), `torch.optim.RAdam`:
    ///
    /// ρ_∞ = 2/(1 − β₂) − 1;  ρ_t = ρ_∞ − 2 t β₂ᵗ / (1 − β₂ᵗ);  m̂ = m / (1 − β₁ᵗ);
    /// ρ_t > 5: w ← w − η m̂ · √(1 − β₂ᵗ) / (√v + ε) · r_t,
    /// r_t = √((ρ_t − 4)(ρ_t − 2) ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2) ρ_t));  else w ← w − η m̂.
    ///
    /// Ranges: PyTorch's constructor checks (`RAdam.__init__`: `0.0 <= lr`,
    /// `0.0 <= eps`, `0.0 <= betas[i] < 1.0`, `0.0 <= weight_decay`).
    pub RAdam {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0,
              decoupled_weight_decay = false, maximize = false;
        state exp_avg = 0, exp_avg_sq = 0;
        let d = if maximize { -g } else { g };
        if decoupled_weight_decay {
            w = w * (1 - lr * weight_decay);
        } else {
            d = d + weight_decay * w;
        }
        exp_avg = exp_avg + (1 - beta1) * (d - exp_avg);
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * (d * d);
        let bc1 = 1 - beta1^t;
        let bc2 = 1 - beta2^t;
        let mhat = exp_avg / bc1;
        let rho_inf = 2 / (1 - beta2) - 1;
        let rho_t = rho_inf - 2 * t * beta2^t / bc2;
        if rho_t > 5 {
            let rect = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
            w -= mhat * lr * (sqrt(bc2) / (sqrt(exp_avg_sq) + eps)) * rect;
        } else {
            w -= mhat * lr;
        }
    }
}

optimizer! {
    /// Averaged SGD (Polyak & Juditsky 1992), `torch.optim.ASGD`:
    ///
    /// d = ±g + λ_w w;  w ← w (1 − λ η_t) − η_t d;
    /// a ← w if μ_t = 1 else a + μ_t (w − a);
    /// η_{t+1} = η / (1 + λ η t)^α;  μ_{t+1} = 1 / max(1, t − t₀).
    ///
    /// `ax` holds the averaged parameters. torch keeps η_t and μ_t as float32
    /// scalars; here they are f64 (about 1e-7 relative apart).
    ///
    /// Ranges: PyTorch's constructor checks (`ASGD.__init__`: `0.0 <=` each of
    /// lr, lambd, alpha and weight_decay); `t0` is not checked.
    pub Asgd {
        hyper lr = 1e-2 where lr >= 0, lambd = 1e-4 where lambd >= 0,
              alpha = 0.75 where alpha >= 0, t0 = 1e6,
              weight_decay = 0 where weight_decay >= 0, maximize = false;
        state ax = 0;
        scalar eta = lr, mu = 1;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        w = w * (1 - lambd * eta);
        w -= eta * d;
        ax = if mu != 1 { ax + (w - ax) * mu } else { w };
        eta = lr / (1 + lambd * lr * t)^alpha;
        mu = 1 / max(1, t - t0);
    }
}

optimizer! {
    /// SparseAdam, `torch.optim.SparseAdam` (`torch.optim._functional.sparse_adam`):
    /// Adam on the rows a row-sparse gradient touches, stepped with
    /// `optdsl::sparse::step_rows` or `Optimizer::step_sparse` (a dense step
    /// is SparseAdam with every row touched). Per touched element, with t the
    /// tensor's step count:
    ///
    /// d = ±g;  m ← m + (d − m)(1 − β₁);  v ← v + (d² − v)(1 − β₂);
    /// w ← w − η √(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε).
    ///
    /// Ranges: PyTorch's constructor checks (`SparseAdam.__init__`: `0.0 < lr`,
    /// `0.0 < eps`, `0.0 <= betas[i] < 1.0`).
    pub SparseAdam {
        hyper lr = 1e-3 where lr > 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps > 0,
              maximize = false;
        state exp_avg = 0, exp_avg_sq = 0;
        let d = if maximize { -g } else { g };
        exp_avg = exp_avg + (d - exp_avg) * (1 - beta1);
        exp_avg_sq = exp_avg_sq + (d * d - exp_avg_sq) * (1 - beta2);
        let step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t);
        w += -step_size * (exp_avg / (sqrt(exp_avg_sq) + eps));
    }
}

/// PyTorch's rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "adagrad",
        family: Family::Adaptive,
        reference: "torch.optim.Adagrad; Duchi, Hazan & Singer 2011",
        make: || Box::new(Adagrad::default()),
    },
    BuiltinInfo {
        name: "rmsprop",
        family: Family::Adaptive,
        reference: "torch.optim.RMSprop; Tieleman & Hinton 2012",
        make: || Box::new(Rmsprop::default()),
    },
    BuiltinInfo {
        name: "rprop",
        family: Family::Sign,
        reference: "torch.optim.Rprop; Riedmiller & Braun 1993; iRprop- of Igel & Huesken 2000",
        make: || Box::new(Rprop::default()),
    },
    BuiltinInfo {
        name: "adadelta",
        family: Family::Adaptive,
        reference: "torch.optim.Adadelta; Zeiler 2012 (arXiv 1212.5701)",
        make: || Box::new(Adadelta::default()),
    },
    BuiltinInfo {
        name: "adam",
        family: Family::Adam,
        reference: "torch.optim.Adam; Kingma & Ba 2015 (arXiv 1412.6980)",
        make: || Box::new(Adam::default()),
    },
    BuiltinInfo {
        name: "adamw",
        family: Family::Adam,
        reference: "torch.optim.AdamW; Loshchilov & Hutter 2019 (arXiv 1711.05101)",
        make: || Box::new(AdamW::default()),
    },
    BuiltinInfo {
        name: "adamax",
        family: Family::Adam,
        reference: "torch.optim.Adamax; Kingma & Ba 2015, section 7",
        make: || Box::new(Adamax::default()),
    },
    BuiltinInfo {
        name: "nadam",
        family: Family::Adam,
        reference: "torch.optim.NAdam; Dozat 2016",
        make: || Box::new(NAdam::default()),
    },
    BuiltinInfo {
        name: "radam",
        family: Family::Adam,
        reference: "torch.optim.RAdam; Liu et al. 2020 (arXiv 1908.03265)",
        make: || Box::new(RAdam::default()),
    },
    BuiltinInfo {
        name: "sparse_adam",
        family: Family::Adam,
        reference: "torch.optim.SparseAdam (row-sparse steps: optdsl::sparse)",
        make: || Box::new(SparseAdam::default()),
    },
    BuiltinInfo {
        name: "asgd",
        family: Family::Sgd,
        reference: "torch.optim.ASGD; Polyak & Juditsky 1992",
        make: || Box::new(Asgd::default()),
    },
];
