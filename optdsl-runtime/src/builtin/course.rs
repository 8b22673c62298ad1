//! The course's first-order rules: gradient descent / SGD with PyTorch's
//! options, heavy-ball momentum, Nesterov's accelerated gradient and sign descent.
//! `sgd`'s hyper ranges are PyTorch's constructor checks; the others' are what
//! their maths needs.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// Stochastic gradient descent, PyTorch's `torch.optim.SGD`
    /// (`_single_tensor_sgd`):
    ///
    /// d = ±g + λ w;  b₁ = d,  b_t = μ b_{t-1} + (1 − τ) d;
    /// d = d + μ b (Nesterov) or b;  w ← w − η d.
    ///
    /// The momentum buffer starts at the first (decayed) gradient with no
    /// dampening, as in PyTorch. With `momentum = 0` this is plain (mini-batch)
    /// gradient descent, Robbins & Monro (1951).
    ///
    /// Ranges: PyTorch's constructor checks (`SGD.__init__`: `lr < 0.0`,
    /// `momentum < 0.0` and `weight_decay < 0.0` are refused; `dampening` is
    /// not checked). Its other check, `nesterov and (momentum <= 0 or
    /// dampening != 0)`, ties three hypers together and is no range: here
    /// `nesterov = true` with `momentum = 0` steps as plain SGD and with
    /// dampening τ uses the dampened buffer, as the update above reads. Where
    /// PyTorch writes `x < 0.0` a NaN passes its check; here NaN is refused.
    pub Sgd {
        hyper lr = 1e-3 where lr >= 0, momentum = 0 where momentum >= 0, dampening = 0,
              weight_decay = 0 where weight_decay >= 0, nesterov = false, maximize = false;
        state momentum_buffer = 0;
        let d = if maximize { -g } else { g };
        d = d + weight_decay * w;
        if momentum != 0 {
            momentum_buffer = if t == 1 { d } else { momentum * momentum_buffer + (1 - dampening) * d };
            d = if nesterov { d + momentum * momentum_buffer } else { momentum_buffer };
        }
        w -= lr * d;
    }
}

optimizer! {
    /// Heavy-ball momentum as the course writes it (Polyak 1964; Rumelhart,
    /// Hinton & Williams 1986):
    ///
    /// v ← μ v − η g;  w ← w + v   (v₀ = 0).
    ///
    /// Equal to PyTorch's SGD with momentum while η is constant; with a
    /// schedule the velocity keeps the old learning rates (PyTorch's buffer does not).
    ///
    /// Ranges from the maths: η ≥ 0 (a step down the gradient), λ ≥ 0 (a
    /// decay), 0 ≤ μ < 1 (v is −η Σ μᵏ g_{t−k}, past gradients with weights
    /// that fade only for 0 ≤ μ < 1; on a quadratic the iteration's two roots
    /// multiply to μ, so for μ ≥ 1 it does not converge).
    pub Momentum {
        hyper lr = 1e-2 where lr >= 0, momentum = 0.9 where 0 <= momentum < 1,
              weight_decay = 0 where weight_decay >= 0;
        state v = 0;
        v = momentum * v - lr * (g + weight_decay * w);
        w += v;
    }
}

optimizer! {
    /// Nesterov's accelerated gradient (NAG) in the form that needs the gradient
    /// at the current point only (Sutskever et al. 2013; Bengio, Boulanger-
    /// Lewandowski & Pascanu 2013, eq. 7), as the course's slides rewrite it:
    ///
    /// v_prev = v;  v ← μ v − η g;  w ← w − μ v_prev + (1 + μ) v.
    ///
    /// Ranges from the maths, as for `momentum`: η ≥ 0, λ ≥ 0, 0 ≤ μ < 1 (v is
    /// the same fading sum of past gradients).
    pub Nesterov {
        hyper lr = 1e-2 where lr >= 0, momentum = 0.9 where 0 <= momentum < 1,
              weight_decay = 0 where weight_decay >= 0;
        state v = 0;
        let v_prev = v;
        v = momentum * v - lr * (g + weight_decay * w);
        w += -momentum * v_prev + (1 + momentum) * v;
    }
}

optimizer! {
    /// Sign descent, the sign rule of RProp without step adaptation
    /// (Riedmiller & Braun 1993; signSGD, Bernstein et al. 2018):
    ///
    /// w ← w − η sign(g),  with sign(0) = 0.
    ///
    /// Ranges from the maths: η ≥ 0 (a step against the sign), λ ≥ 0 (a decay).
    pub SignSgd {
        hyper lr = 1e-2 where lr >= 0, weight_decay = 0 where weight_decay >= 0,
              maximize = false;
        let d = if maximize { -g } else { g };
        w -= lr * sign(d + weight_decay * w);
    }
}

/// The course's rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "sgd",
        family: Family::Sgd,
        reference: "torch.optim.SGD; Robbins & Monro 1951",
        make: || Box::new(Sgd::default()),
    },
    BuiltinInfo {
        name: "momentum",
        family: Family::Sgd,
        reference: "Polyak 1964; Rumelhart, Hinton & Williams 1986",
        make: || Box::new(Momentum::default()),
    },
    BuiltinInfo {
        name: "nesterov",
        family: Family::Sgd,
        reference: "Nesterov 1983; Sutskever et al. 2013; Bengio et al. 2013 (arXiv 1212.0901)",
        make: || Box::new(Nesterov::default()),
    },
    BuiltinInfo {
        name: "signsgd",
        family: Family::Sign,
        reference: "Riedmiller & Braun 1993 (sign rule); Bernstein et al. 2018 (arXiv 1802.04434)",
        make: || Box::new(SignSgd::default()),
    },
];
