//! The course slides' formulas, written in the DSL the way the slides write
//! them (σ-form RMSProp, Adagrad as η/√Σg², the Nesterov rewrite with v_prev,
//! ...), one rule per `seed-*` fixture in tests/golden and named after it.
//! They check the language against the slides; the polished built-ins with
//! PyTorch's options are in `course` and `torch`. Their hyper ranges are what
//! the maths needs: η ≥ 0, ε ≥ 0, a momentum μ in [0, 1) (v is −η Σ μᵏ g, with
//! fading weights only for μ < 1), an average's weight in [0, 1] (the root's
//! argument stays ≥ 0), and Adam's β in [0, 1) (1 − βᵗ divides).

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// Gradient descent with 1/t decay: η_t = η / t;  w ← w − η_t g.
    /// Ranges from the maths: η ≥ 0.
    pub SeedGdOneOverT {
        hyper lr = 0.1 where lr >= 0;
        let eta_t = lr / t;
        w -= eta_t * g;
    }

    /// Momentum: v ← λ v − η g;  w ← w + v.
    /// Ranges from the maths: η ≥ 0, 0 ≤ λ < 1.
    pub SeedMomentum {
        hyper lr = 0.01 where lr >= 0, momentum = 0.9 where 0 <= momentum < 1;
        state v = 0;
        v = momentum * v - lr * g;
        w += v;
    }

    /// Nesterov, rewritten to need the gradient at w only:
    /// v_prev = v;  v ← λ v − η g;  w ← w − λ v_prev + (1 + λ) v.
    /// Ranges from the maths: η ≥ 0, 0 ≤ λ < 1.
    pub SeedNesterovRewrite {
        hyper lr = 0.01 where lr >= 0, momentum = 0.9 where 0 <= momentum < 1;
        state v = 0;
        let v_prev = v;
        v = momentum * v - lr * g;
        w += -momentum * v_prev + (1 + momentum) * v;
    }

    /// Sign descent: w ← w − η sign(g).  Ranges from the maths: η ≥ 0.
    pub SeedSignDescent {
        hyper lr = 0.01 where lr >= 0;
        w -= lr * sign(g);
    }

    /// RMSProp, σ form: σ⁰ = |g⁰|;  σᵗ = √(α (σᵗ⁻¹)² + (1 − α)(gᵗ)²);  w ← w − η/σᵗ · gᵗ.
    /// Ranges from the maths: η ≥ 0, 0 ≤ α ≤ 1.
    pub SeedRmspropSigma {
        hyper lr = 0.01 where lr >= 0, alpha = 0.9 where 0 <= alpha <= 1;
        state sigma = abs(g);
        sigma = sqrt(alpha * sigma^2 + (1 - alpha) * g^2);
        w -= lr / sigma * g;
    }

    /// RMSProp, v form: v ← β v + (1 − β) g²;  w ← w − η g / √(v + ε).
    /// Ranges from the maths: η ≥ 0, 0 ≤ β ≤ 1, ε ≥ 0.
    pub SeedRmspropV {
        hyper lr = 0.01 where lr >= 0, beta = 0.9 where 0 <= beta <= 1, eps = 1e-8 where eps >= 0;
        state v = 0;
        v = beta * v + (1 - beta) * g^2;
        w -= lr * g / sqrt(v + eps);
    }

    /// Adagrad: w ← w − η / √(Σ_{i≤t} (gⁱ)²) · gᵗ.  Ranges from the maths: η ≥ 0.
    pub SeedAdagradSigma {
        hyper lr = 0.1 where lr >= 0;
        state sum_sq = 0;
        sum_sq += g^2;
        w -= lr / sqrt(sum_sq) * g;
    }

    /// Adagrad, averaged form: ηᵗ = η / √(t + 1);  σᵗ = √(1/(t + 1) Σ_{i≤t} (gⁱ)²);
    /// w ← w − ηᵗ/σᵗ · gᵗ  (the slides count t from 0, the DSL from 1).
    /// Ranges from the maths: η ≥ 0.
    pub SeedAdagradAverage {
        hyper lr = 0.1 where lr >= 0;
        state sum_sq = 0;
        sum_sq += g^2;
        let eta_t = lr / sqrt(t);
        let sigma = sqrt(sum_sq / t);
        w -= eta_t / sigma * g;
    }

    /// Adagrad with ε: w ← w − η / √(Σ (gⁱ)² + ε) · gᵗ.
    /// Ranges from the maths: η ≥ 0, ε ≥ 0.
    pub SeedAdagradEps {
        hyper lr = 0.1 where lr >= 0, eps = 1e-8 where eps >= 0;
        state sum_sq = 0;
        sum_sq += g^2;
        w -= lr / sqrt(sum_sq + eps) * g;
    }

    /// Adam, the algorithm box: m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;
    /// m̂ = m/(1 − β₁ᵗ);  v̂ = v/(1 − β₂ᵗ);  w ← w − η m̂ / (√v̂ + ε).
    /// Ranges from the maths: η ≥ 0, 0 ≤ β₁, β₂ < 1, ε ≥ 0.
    pub SeedAdam {
        hyper lr = 0.001 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0;
        state m = 0, v = 0;
        m = beta1 * m + (1 - beta1) * g;
        v = beta2 * v + (1 - beta2) * g^2;
        let mhat = m / (1 - beta1^t);
        let vhat = v / (1 - beta2^t);
        w -= lr * mhat / (sqrt(vhat) + eps);
    }
}

/// One slide rule's registry entry.
macro_rules! slide {
    ($name:literal, $ty:ident, $what:literal) => {
        BuiltinInfo {
            name: $name,
            family: Family::Slides,
            reference: concat!("course slides: ", $what),
            make: || Box::new($ty::default()),
        }
    };
}

/// The slides' rules, named after their fixtures.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    slide!(
        "seed-gd-1-over-t",
        SeedGdOneOverT,
        "gradient descent with 1/t decay"
    ),
    slide!("seed-momentum", SeedMomentum, "momentum"),
    slide!(
        "seed-nesterov-rewrite",
        SeedNesterovRewrite,
        "Nesterov rewrite with v_prev"
    ),
    slide!("seed-sign-descent", SeedSignDescent, "sign descent"),
    slide!(
        "seed-rmsprop-sigma",
        SeedRmspropSigma,
        "RMSProp, sigma form, sigma0 = |g0|"
    ),
    slide!("seed-rmsprop-v", SeedRmspropV, "RMSProp, v form"),
    slide!(
        "seed-adagrad-sigma",
        SeedAdagradSigma,
        "Adagrad as eta/sqrt(sum g^2)"
    ),
    slide!(
        "seed-adagrad-average",
        SeedAdagradAverage,
        "Adagrad, averaged form"
    ),
    slide!(
        "seed-adagrad-eps",
        SeedAdagradEps,
        "Adagrad with eps inside the root"
    ),
    slide!("seed-adam", SeedAdam, "Adam's algorithm box"),
];
