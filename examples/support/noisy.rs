//! Noisy quadratics, the setting of the vSGD paper (Schaul, Zhang & LeCun 2012,
//! section 5.1): f(w) = ½ Σᵢ hᵢ (wᵢ − w*ᵢ)² with the optimum w* drawn afresh
//! for every sample, w*ᵢ ~ N(0, σᵢ²); and a runner that feeds any built-in the
//! inputs it declares (`h`: the exact diagonal curvature; `g_prev`: the same
//! sample's gradient at the previous parameters).

#![allow(dead_code)]

use optdsl::schedule::Clock;
use optdsl::{DynRule, HyperValue, LrSchedule, Schedule};

/// A small deterministic generator (splitmix64) with normal draws.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A separable noisy quadratic.
pub struct NoisyQuadratic {
    /// Curvatures hᵢ.
    pub h: Vec<f64>,
    /// Noise scales σᵢ of the optimum.
    pub sigma: Vec<f64>,
    /// The starting point.
    pub w0: Vec<f64>,
}

impl NoisyQuadratic {
    /// `dim` coordinates with curvatures log-spaced over [h_lo, h_hi], σ = 1, w0 = 2.
    pub fn new(dim: usize, h_lo: f64, h_hi: f64) -> Self {
        let h = (0..dim)
            .map(|i| {
                let a = if dim == 1 {
                    0.0
                } else {
                    i as f64 / (dim - 1) as f64
                };
                h_lo * (h_hi / h_lo).powf(a)
            })
            .collect();
        NoisyQuadratic {
            h,
            sigma: vec![1.0; dim],
            w0: vec![2.0; dim],
        }
    }
    /// The expected loss above its minimum: ½ Σ hᵢ wᵢ².
    pub fn excess_loss(&self, w: &[f64]) -> f64 {
        0.5 * self.h.iter().zip(w).map(|(h, w)| h * w * w).sum::<f64>()
    }
    fn grad(&self, w: &[f64], star: &[f64]) -> Vec<f64> {
        self.h
            .iter()
            .zip(w)
            .zip(star)
            .map(|((h, w), s)| h * (w - s))
            .collect()
    }
}

/// Runs `rule` for `steps` samples from seed `seed` and returns the final
/// excess loss; `schedule` (a base rate and its schedule, counted in
/// steps) sets `lr` before each step when given.
pub fn run(
    rule: &dyn DynRule,
    schedule: Option<(f64, &LrSchedule)>,
    p: &NoisyQuadratic,
    steps: usize,
    seed: u64,
) -> f64 {
    let mut rule = rule.clone_box();
    let mut rng = Rng::new(seed);
    let mut w = p.w0.clone();
    let mut w_prev = w.clone();
    let mut state = rule.init_f64(w.len());
    for t in 1..=steps {
        if let Some((lr, s)) = schedule {
            let clock = Clock::of_steps(t as u64 - 1, steps as u64);
            rule.set_hyper("lr", HyperValue::Num(s.value(lr, clock)))
                .unwrap();
        }
        let star: Vec<f64> = p.sigma.iter().map(|s| s * rng.normal()).collect();
        let g = p.grad(&w, &star);
        let inputs: Vec<Vec<f64>> = rule
            .info()
            .inputs
            .iter()
            .map(|name| match *name {
                "h" => p.h.clone(),
                "g_prev" => p.grad(&w_prev, &star),
                other => panic!("no input `{other}` on this problem"),
            })
            .collect();
        let refs: Vec<&[f64]> = inputs.iter().map(|v| v.as_slice()).collect();
        let before = w.clone();
        rule.step_f64(&mut state, &mut w, &g, &refs).unwrap();
        w_prev = before;
        if !w.iter().all(|x| x.is_finite()) {
            return f64::INFINITY;
        }
    }
    p.excess_loss(&w)
}

/// The mean final excess loss over `seeds` runs.
pub fn mean_loss(
    rule: &dyn DynRule,
    schedule: Option<(f64, &LrSchedule)>,
    p: &NoisyQuadratic,
    steps: usize,
    seeds: u64,
) -> f64 {
    (0..seeds)
        .map(|s| run(rule, schedule, p, steps, s))
        .sum::<f64>()
        / seeds as f64
}

/// The best mean loss of SGD with η_t = η₀ / (1 + δ (t − 1)) over a grid of
/// η₀ (log-spaced, 10⁻³ … 10²) and δ ∈ {10⁻³, 10⁻², 10⁻¹, 1}: (loss, η₀, δ).
pub fn best_sgd(p: &NoisyQuadratic, steps: usize, seeds: u64) -> (f64, f64, f64) {
    let sgd = optdsl::builtin_rule("sgd").unwrap();
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for k in 0..16 {
        let lr = 1e-3 * 10f64.powf(k as f64 * 5.0 / 15.0);
        for decay in [1e-3, 1e-2, 1e-1, 1.0] {
            let schedule = LrSchedule::inverse_time(decay);
            let loss = mean_loss(sgd.as_ref(), Some((lr, &schedule)), p, steps, seeds);
            if loss < best.0 {
                best = (loss, lr, decay);
            }
        }
    }
    best
}
