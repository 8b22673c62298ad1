//! Learning-rate-free rules that estimate curvature: vSGD ("No more pesky
//! learning rates", Schaul, Zhang & LeCun 2012), per sample and for
//! mini-batches, and AdaSecant (Gulcehre, Moczulski & Bengio 2014). Every
//! choice the papers leave open is stated in the rule's documentation. Their
//! hyper ranges are what the maths needs, each stated with its reason.

use super::BuiltinInfo;
use super::Family;
use crate::optimizer;

optimizer! {
    /// vSGD-l (Schaul, Zhang & LeCun 2012, arXiv 1206.1106, algorithm 1): a
    /// per-parameter learning rate from running averages of g, g² and the
    /// curvature h, each with an adaptive memory τ:
    ///
    /// x̄ ← (1 − 1/τ) x̄ + x/τ  for x ∈ {g, g², h};
    /// η* = ḡ² / (h̄ · v̄);  τ ← (1 − ḡ²/v̄) τ + 1;  w ← w − η* g.
    ///
    /// `h` is an `input`: a diagonal curvature estimate the caller provides
    /// beside g (the paper's bbprop / Gauss-Newton diagonal, the exact diagonal
    /// Hessian on a quadratic, or a finite difference of two gradients of the
    /// same samples, arXiv 1301.3764, which is what `vsgd_fd` computes).
    ///
    /// Choices the paper leaves open: the slow start uses the first sample only
    /// (ḡ = g₁, v̄ = c·g₁², h̄ = max(h₁, `hmin`), τ₁ = `tau0`), c = 10
    /// overestimating the variance so that the first steps are cautious; h is
    /// floored at `eps` (h̄ > 0); where v̄ = 0 (no gradient seen yet) η* = 0
    /// and τ grows by 1. The authors' code (py-optim) starts h̄ at
    /// c·max(h₁, 1) and τ at 10, with c = 2: on a network, where h₁ ≪ 1,
    /// `c = 2, hmin = 2, tau0 = 10` is that start (`optdsl compare` uses it).
    ///
    /// Ranges from the maths: τ₁ = `tau0` ≥ 1, so that each x̄ is a convex
    /// combination (weights 1 − 1/τ and 1/τ); c ≥ 1, so that v̄₁ = c g₁² ≥ ḡ₁²,
    /// which the convex averages keep (v̄ ≥ ḡ²), hence 0 ≤ ḡ²/v̄ ≤ 1 and τ stays
    /// ≥ 1; `eps` > 0, so that h̄ > 0 (the step divides by it). `hmin` only
    /// raises h̄ and needs no range.
    ///
    /// Here v̄ averages the squared gradient as given; for a mini-batch
    /// gradient, `vsgd_mb` has the paper's per-sample estimate.
    pub Vsgd {
        hyper c = 10 where c >= 1, tau0 = 1 where tau0 >= 1, eps = 1e-10 where eps > 0, hmin = 0;
        input h: curvature;
        state gbar = 0, vbar = 0, hbar = 0, tau = tau0;
        let hh = max(h, eps);
        if t == 1 {
            gbar = g;
            vbar = c * (g * g);
            hbar = max(hh, hmin);
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g * g - vbar) / tau;
            hbar = hbar + (hh - hbar) / tau;
        }
        let r = if vbar > 0 { gbar * gbar / vbar } else { 0 };
        tau = (1 - r) * tau + 1;
        w -= r / hbar * g;
    }
}

optimizer! {
    /// vSGD-l for mini-batches, as Schaul, Zhang & LeCun (2012, arXiv
    /// 1206.1106) give it: algorithm 1 with the paper's mini-batch estimates
    /// and its slow start. Its inputs, computed by the trainer with the
    /// mini-batch's mean gradient g: `h` the bbprop (Gauss-Newton) diagonal
    /// of the mini-batch's mean loss, `g2` the mean over the mini-batch's
    /// rows of each squared per-row gradient, `n_mb` the row count.
    ///
    /// Slow start (the paper's initialization), steps 1 to n0: no step; ḡ,
    /// v̄ and h̄ are the means of g, g2 and max(h, `hmin`) over the first n0
    /// mini-batches; after the last, v̄ ← C (v̄ + ε), h̄ ← C (h̄ + ε) and τ =
    /// n0, so that the first rates are small and grow as the overestimates
    /// are averaged out. Then, per element, with x̄ ← (1 − 1/τ) x̄ + x/τ:
    ///
    /// ḡ ← avg g;  v̄ ← avg (g2 + ε);  h̄ ← avg (h + ε);
    /// r = n_mb ḡ² / (v̄ + (n_mb − 1) ḡ²);
    /// η* = r / h̄;  τ ← (1 − r) τ + 1;  w ← w − η* g.
    ///
    /// r is the paper's mini-batch form of ḡ²/v̄: the variance of a mean of
    /// n_mb samples is the per-sample variance over n_mb, and v̄ estimates
    /// the per-sample E[g²] from the per-row squares (with n_mb = 1, r is
    /// `vsgd`'s ḡ²/v̄). Choices taken from the authors' code (py-optim,
    /// vsgd.py): the memory τ is updated with the same r; n0 = 10
    /// mini-batches; C = d/10 with d the number of parameters (that code's
    /// value when C is not given; its class default is 2), 4180 for the
    /// course's 256-128-64-10 network (41 802 parameters), the default; ε =
    /// 1e-9. That code also floors each h at 1 in the slow start (`hmin =
    /// 1`), which on a network, where h ≪ 1, starts h̄ at C; here `hmin = 0`.
    /// r is capped at 1 against rounding (in exact arithmetic ḡ² ≤ v̄: a
    /// mean of squares is at least the square of the mean).
    pub VsgdMb {
        hyper c = 4180 where c > 0, n0 = 10 where n0 >= 1, eps = 1e-9 where eps >= 0,
              hmin = 0 where hmin >= 0;
        input h: curvature, g2: grad_squares, n_mb: batch_rows;
        state gbar = 0, vbar = 0, hbar = 0, tau = n0;
        if t <= n0 {
            gbar = gbar + (g - gbar) / t;
            vbar = vbar + (g2 - vbar) / t;
            hbar = hbar + (max(h, hmin) - hbar) / t;
            if t + 1 > n0 {
                vbar = c * (vbar + eps);
                hbar = c * (hbar + eps);
            }
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g2 + eps - vbar) / tau;
            hbar = hbar + (h + eps - hbar) / tau;
            let r = min(n_mb * (gbar * gbar) / (vbar + (n_mb - 1) * (gbar * gbar)), 1);
            tau = (1 - r) * tau + 1;
            w -= r / hbar * g;
        }
    }
}

optimizer! {
    /// vSGD-b for mini-batches (Schaul, Zhang & LeCun 2012, arXiv
    /// 1206.1106): the paper's per-block variant, one learning rate per
    /// block (here a tensor) from the block's sums and its largest
    /// curvature, with the mini-batch estimates and the slow start of
    /// `vsgd_mb` (inputs `h`, `g2`, `n_mb`; the same C, n0, ε and `hmin`):
    ///
    /// r = n_mb Σ ḡ² / (Σ v̄ + (n_mb − 1) Σ ḡ²);
    /// η* = r / max h̄;  τ ← (1 − r) τ + 1;  w ← w − η* g,
    ///
    /// with ḡ, v̄ and h̄ per element as in `vsgd_mb` but one memory τ for the
    /// block. Choice: the block's curvature is the largest of its running
    /// means h̄ (each element's h averaged, then the maximum taken).
    pub VsgdMbB {
        hyper c = 4180 where c > 0, n0 = 10 where n0 >= 1, eps = 1e-9 where eps >= 0,
              hmin = 0 where hmin >= 0;
        input h: curvature, g2: grad_squares, n_mb: batch_rows;
        state gbar = 0, vbar = 0, hbar = 0;
        scalar tau = n0;
        if t <= n0 {
            gbar = gbar + (g - gbar) / t;
            vbar = vbar + (g2 - vbar) / t;
            hbar = hbar + (max(h, hmin) - hbar) / t;
            if t + 1 > n0 {
                vbar = c * (vbar + eps);
                hbar = c * (hbar + eps);
            }
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g2 + eps - vbar) / tau;
            hbar = hbar + (h + eps - hbar) / tau;
            let sg = sum(gbar * gbar);
            let n = max_abs(n_mb);
            let r = min(n * sg / (sum(vbar) + (n - 1) * sg), 1);
            tau = (1 - r) * tau + 1;
            w -= r / max_abs(hbar) * g;
        }
    }
}

optimizer! {
    /// vSGD with the finite-difference curvature of Schaul & LeCun (2013,
    /// arXiv 1301.3764, section 3.2): two gradients of the same samples per
    /// step, g at w_t and `g_prev` at the previous parameters w_{t−1}
    /// (the caller evaluates the current mini-batch there), give
    ///
    /// h_fd = |g − g_prev| / |w_t − w_{t−1}|,
    ///
    /// which replaces bbprop's h in vSGD-l (see `vsgd`). Choices: on step 1 (no
    /// previous parameters) and wherever the last step was 0 the curvature is
    /// unknown; h̄ then keeps its value, and starts at `h0`, so the first step
    /// is ḡ²/(h0 v̄) g. h_fd is floored at `eps`.
    ///
    /// Ranges from the maths, as for `vsgd`: c ≥ 1, `tau0` ≥ 1, and h̄ > 0 (the
    /// step divides by it), so `h0` > 0 and `eps` > 0.
    pub VsgdFd {
        hyper c = 10 where c >= 1, tau0 = 1 where tau0 >= 1, h0 = 1 where h0 > 0,
              eps = 1e-10 where eps > 0;
        input g_prev: previous_grad;
        state gbar = 0, vbar = 0, hbar = h0, tau = tau0, dw = 0;
        let known = dw != 0;
        let hfd = max(abs(g - g_prev) / select(known, abs(dw), 1), eps);
        if t == 1 {
            gbar = g;
            vbar = c * (g * g);
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g * g - vbar) / tau;
        }
        hbar = if known { hbar + (hfd - hbar) / tau } else { hbar };
        let r = if vbar > 0 { gbar * gbar / vbar } else { 0 };
        tau = (1 - r) * tau + 1;
        dw = -(r / hbar * g);
        w += dw;
    }
}

optimizer! {
    /// AdaSecant (Gulcehre, Moczulski & Bengio 2014, arXiv 1412.7419,
    /// algorithm 1), per tensor (a block) and per element:
    ///
    /// 1. block-normalized gradient ĝ = g / (‖g‖ + ε);
    /// 2. E[ĝ] and E[ĝ²] with decay ρ; variance reduction
    ///    g̃ = (ĝ + γ E[ĝ]) / (1 + γ), γ = min(√E[((ĝ − g̃_prev)(g̃_prev − E[ĝ]))²] /
    ///    √(E[((E[ĝ] − ĝ)(g̃_prev − E[ĝ]))²] + ε), γ_clip);
    /// 3. secant curvature α = ĝ_t − ĝ_{t−1}, with E[α], E[α²] over memory τ;
    /// 4. step Δ = −η g̃,  η = √(E[Δ²] + δ) / √(E[α²] + δ) − E[αΔ] / (E[α²] + δ);
    /// 5. memory τ ← (1 − E[Δ]² / E[Δ²]) τ + 1, reset to `tau_reset` when ĝ or α
    ///    is more than two standard deviations from its mean (outlier), and
    ///    kept in [`tau_min`, `tau_max`].
    ///
    /// Choices the paper leaves open, taken from the authors' reference code
    /// (github.com/caglar/adasecant_wshp_paper): accumulators start at ε and τ
    /// at 2.1; on step 1, E[Δ] and E[Δ²] are taken as ĝ and ĝ² (no step yet);
    /// δ = `damping` = 1e-6 keeps the roots positive; `lr` (default 1) scales
    /// the secant step and is not tuned; γ uses the averages updated with the
    /// current gradient.
    ///
    /// Ranges from the maths: `lr` ≥ 0; ρ = `decay` in [0, 1] (convex
    /// averages); `gamma_clip` ≥ 0, so that γ is in [0, γ_clip] and g̃ a convex
    /// combination of ĝ and E[ĝ]; ε > 0 (ĝ of g = 0 would be 0/0); δ > 0 (E[α²]
    /// can be 0 when τ = 1 and the secant divides by E[α²] + δ); `tau_min`,
    /// `tau_max` ≥ 1, so that the memory τ ≥ 1 keeps the averages convex.
    /// `tau_reset` is clamped into [`tau_min`, `tau_max`] and needs no range;
    /// `tau_min` ≤ `tau_max` relates two hypers and is no range.
    pub AdaSecant {
        hyper lr = 1 where lr >= 0, decay = 0.95 where 0 <= decay <= 1,
              gamma_clip = 1.8 where gamma_clip >= 0, eps = 1e-7 where eps > 0,
              damping = 1e-6 where damping > 0, tau_reset = 2.2,
              tau_min = 1.5 where tau_min >= 1, tau_max = 1e8 where tau_max >= 1;
        state mean_grad = eps, mean_sq_grad = eps, gamma_num = eps, gamma_den = eps,
              cov = eps, mean_sq_dx = 0, mean_dx = 0, old_grad = eps, old_plain = eps,
              mean_curv = eps, mean_sq_curv = eps, tau = 2.1 * (1 + eps);
        let ng = g / (norm(g) + eps);
        let msdx = if t == 1 { ng * ng } else { mean_sq_dx };
        let mdx = if t == 1 { ng } else { mean_dx };
        mean_sq_grad = decay * mean_sq_grad + (1 - decay) * (ng * ng);
        mean_grad = decay * mean_grad + (1 - decay) * ng;
        let k = 1 / tau;
        let gnum = (ng - old_grad) * (old_grad - mean_grad);
        let gden = (mean_grad - ng) * (old_grad - mean_grad);
        gamma_num = gamma_num * (1 - k) + gnum * gnum * k;
        gamma_den = gamma_den * (1 - k) + gden * gden * k;
        let gamma = min(sqrt(gamma_num) / sqrt(gamma_den + eps), gamma_clip);
        let corrected = (ng + gamma * mean_grad) / (1 + gamma);
        let curv = ng - old_plain;
        mean_curv = mean_curv * (1 - k) + curv * k;
        mean_sq_curv = mean_sq_curv * (1 - k) + curv * curv * k;
        let eta = sqrt(msdx + damping) / sqrt(mean_sq_curv + damping) - cov / (mean_sq_curv + damping);
        let dx = -lr * eta * corrected;
        let new_tau = (1 - mdx * mdx / (msdx + eps)) * tau + 1 + eps;
        let outlier = abs(ng - mean_grad) > 2 * sqrt(mean_sq_grad - mean_grad * mean_grad)
            || abs(curv - mean_curv) > 2 * sqrt(mean_sq_curv - mean_curv * mean_curv);
        new_tau = if outlier { tau_reset } else { new_tau };
        mean_sq_dx = msdx * (1 - k) + dx * dx * k;
        mean_dx = mean_dx * (1 - k) + dx * k;
        cov = cov * (1 - k) + dx * curv * k;
        tau = clamp(new_tau, tau_min, tau_max);
        old_plain = ng;
        old_grad = corrected;
        w += dx;
    }
}

/// The curvature-estimating rules.
pub(crate) static BUILTINS: &[BuiltinInfo] = &[
    BuiltinInfo {
        name: "vsgd",
        family: Family::Curvature,
        reference: "Schaul, Zhang & LeCun 2012, No more pesky learning rates (arXiv 1206.1106); input h",
        make: || Box::new(Vsgd::default()),
    },
    BuiltinInfo {
        name: "vsgd_mb",
        family: Family::Curvature,
        reference: "vSGD-l with the mini-batch estimates and slow start of Schaul, Zhang & LeCun 2012 (arXiv 1206.1106); inputs h, g2, n_mb",
        make: || Box::new(VsgdMb::default()),
    },
    BuiltinInfo {
        name: "vsgd_mb_b",
        family: Family::Curvature,
        reference: "vSGD-b (one rate per tensor) with the mini-batch estimates and slow start of Schaul, Zhang & LeCun 2012 (arXiv 1206.1106); inputs h, g2, n_mb",
        make: || Box::new(VsgdMbB::default()),
    },
    BuiltinInfo {
        name: "vsgd_fd",
        family: Family::Curvature,
        reference: "vSGD with finite-difference curvature, Schaul & LeCun 2013 (arXiv 1301.3764); input g_prev",
        make: || Box::new(VsgdFd::default()),
    },
    BuiltinInfo {
        name: "adasecant",
        family: Family::Curvature,
        reference: "Gulcehre, Moczulski & Bengio 2014, AdaSecant (arXiv 1412.7419)",
        make: || Box::new(AdaSecant::default()),
    },
];
