//! The course's first-order rules: gradient descent / SGD with PyTorch's
//! options, heavy-ball momentum, Nesterov's accelerated gradient and sign descent.

use super::BuiltinInfo;
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
    pub Sgd {
        hyper lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0,
              nesterov = false, maximize = false;
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
    pub Momentum {
        hyper lr = 1e-2, momentum = 0.9, weight_decay = 0;
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
    pub Nesterov {
        hyper lr = 1e-2, momentum = 0.9, weight_decay = 0;
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
    pub SignSgd {
        hyper lr = 1e-2, weight_decay = 0, maximize = false;
        let d = if maximize { -g } else { g };
        w -= lr * sign(d + weight_decay * w);
    }
}

/// The course's rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "sgd",
        family: "sgd",
        reference: "torch.optim.SGD; Robbins & Monro 1951",
        make: || Box::new(Sgd::default()),
    },
    BuiltinInfo {
        name: "momentum",
        family: "sgd",
        reference: "Polyak 1964; Rumelhart, Hinton & Williams 1986",
        make: || Box::new(Momentum::default()),
    },
    BuiltinInfo {
        name: "nesterov",
        family: "sgd",
        reference: "Nesterov 1983; Sutskever et al. 2013; Bengio et al. 2013 (arXiv 1212.0901)",
        make: || Box::new(Nesterov::default()),
    },
    BuiltinInfo {
        name: "signsgd",
        family: "sign",
        reference: "Riedmiller & Braun 1993 (sign rule); Bernstein et al. 2018 (arXiv 1802.04434)",
        make: || Box::new(SignSgd::default()),
    },
];
