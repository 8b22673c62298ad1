//! bitsandbytes' 8-bit optimizers (`bnb.optim.Adam8bit`, `AdamW8bit`,
//! `Lion8bit`), written in the language with their moments declared 8-bit
//! (`q8`: the signed dynamic map; `uq8`: the unsigned one, which the
//! compiler checks is only given values that are never negative). The maths
//! is that of bitsandbytes' pure-PyTorch blockwise update, operation for
//! operation (`mul_`/`add_`/`addcmul_`/`addcdiv_` in their order; `add_`
//! with `alpha`, which PyTorch's vectorized CPU kernel computes as a fused
//! multiply-add, is `fma`: the fixtures' final bytes need it).
//!
//! Any other built-in runs with 8-bit state too: `--state q8` on the command
//! line, or `State::set_format` from Rust.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// bitsandbytes' `Adam8bit` (Dettmers et al. 2022, "8-bit Optimizers via
    /// Block-wise Quantization", arXiv 2110.02861): Adam with both moments
    /// kept in 8 bits, quantized per block of 256 on the dynamic maps.
    /// Weight decay, as bitsandbytes' blockwise kernel applies it, is
    /// decoupled (w ← (1 − ηλ) w first):
    ///
    /// m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g g;
    /// w ← w + (−η/(1 − β₁ᵗ)) m / (√v / √(1 − β₂ᵗ) + ε).
    pub Adam8bit {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 0 where weight_decay >= 0;
        state m: q8 = 0, v: uq8 = 0;
        w = w * (1 - lr * weight_decay);
        m = fma(g, 1 - beta1, beta1 * m);
        v = beta2 * v + (1 - beta2) * g * g;
        let step = -lr / (1 - beta1^t);
        w += step * m / (sqrt(v) / sqrt(1 - beta2^t) + eps);
    }

    /// bitsandbytes' `AdamW8bit`: [`Adam8bit`] with its default weight decay
    /// 0.01 (bitsandbytes runs both through one kernel, decay decoupled).
    pub AdamW8bit = Adam8bit {
        hyper weight_decay = 1e-2;
    }
}

optimizer! {
    /// bitsandbytes' `Lion8bit` (Chen et al. 2023, arXiv 2302.06675, with the
    /// momentum kept in 8 bits on the signed map):
    ///
    /// w ← (1 − ηλ) w;  w ← w − η sign(β₁ m + (1 − β₁) g);  m ← β₂ m + (1 − β₂) g.
    pub Lion8bit {
        hyper lr = 1e-4 where lr >= 0, beta1 = 0.9 where 0 <= beta1 <= 1,
              beta2 = 0.99 where 0 <= beta2 <= 1, weight_decay = 0 where weight_decay >= 0;
        state m: q8 = 0;
        w = w * (1 - lr * weight_decay);
        w -= lr * sign(fma(g, 1 - beta1, beta1 * m));
        m = fma(g, 1 - beta2, beta2 * m);
    }
}

/// bitsandbytes' rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "adam8bit",
        family: Family::Adam,
        reference: "bitsandbytes.optim.Adam8bit; Dettmers et al. 2022 (arXiv 2110.02861)",
        make: || Box::new(Adam8bit::default()),
    },
    BuiltinInfo {
        name: "adamw8bit",
        family: Family::Adam,
        reference: "bitsandbytes.optim.AdamW8bit; Dettmers et al. 2022 (arXiv 2110.02861)",
        make: || Box::new(AdamW8bit::default()),
    },
    BuiltinInfo {
        name: "lion8bit",
        family: Family::Sign,
        reference: "bitsandbytes.optim.Lion8bit; Chen et al. 2023, Dettmers et al. 2022",
        make: || Box::new(Lion8bit::default()),
    },
];
