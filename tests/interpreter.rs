//! The fused code against the reference interpreter (ndarray operators, one
//! temporary per operation) on the same rules and data: they must agree to the
//! last bits except for reductions' order of summation.

use optdsl::naive::naive_step_dyn;
use optdsl::{builtins, optimizer, DynRule, Float, State};

optimizer! {
    /// Every feature at once: hypers, buffers initialized from g, scalar
    /// state, an input, reductions, per-element and per-step selections.
    pub Everything {
        hyper lr = 0.05, b = 0.9, flag = true, wd = 0.01;
        input h;
        state m = 0, gprev = g, st = lr;
        scalar acc = 1;
        m = b*m + (1-b)*g;
        let u = m / (1 - b^t) + wd * w;
        let r = if norm(u) > 0 { norm(w) / norm(u) } else { 1 };
        acc *= b;
        st = select(g * gprev > 0, min(st * 1.2, 1), max(st * 0.5, 1e-6));
        gprev = g;
        if flag && t > 1 { w -= lr * r * u + st * sign(g) * abs(h) / (1 + acc); } else { w -= lr * exp(-abs(u)) * ln(1 + abs(g)); }
        w = clamp(w, -5, 5);
    }
}

fn data<F: Float>(n: usize, seed: usize) -> Vec<F> {
    (0..n)
        .map(|i| {
            let k = (i * 7919 + seed * 104729) % 2003;
            F::from_f64(if k.is_multiple_of(17) {
                0.0
            } else {
                k as f64 / 1001.0 - 1.0
            })
        })
        .collect()
}

fn agree<F: DynFloat>(rule: &dyn DynRule, n: usize, tol: f64) {
    let info = rule.info();
    let inputs: Vec<Vec<F>> = info.inputs.iter().map(|_| data::<F>(n, 99)).collect();
    let input_refs: Vec<&[F]> = inputs.iter().map(|v| v.as_slice()).collect();
    let mut w1: Vec<F> = data(n, 1);
    let mut w2 = w1.clone();
    let mut s1: State<F> = F::dyn_init(rule, n);
    let mut s2 = s1.clone();
    for step in 0..5 {
        let g: Vec<F> = data(n, step + 2);
        F::dyn_step(rule, &mut s1, &mut w1, &g, &input_refs).unwrap();
        naive_step_dyn(rule, &mut s2, &mut w2, &g, &input_refs).unwrap();
        for (i, (a, b)) in w1.iter().zip(&w2).enumerate() {
            let (a, b) = (a.to_f64(), b.to_f64());
            let ok = (a - b).abs() <= tol * b.abs().max(1.0) || (a.is_nan() && b.is_nan());
            assert!(
                ok,
                "{} {}: step {step} w[{i}] fused {a} interpreted {b}",
                info.name,
                F::DTYPE
            );
        }
        for (k, (x, y)) in s1.scalars.iter().zip(&s2.scalars).enumerate() {
            assert!(
                (x - y).abs() <= tol * f64::abs(*y).max(1e-30),
                "{}: scalar {k}",
                info.name
            );
        }
    }
    assert_eq!(s1.t, s2.t);
}

use optdsl::DynFloat;

#[test]
fn a_rule_with_every_feature_agrees_with_the_interpreter() {
    let rule = Everything::default();
    for n in [1, 63, 64, 1000, 70_000] {
        agree::<f64>(&rule, n, 1e-12);
        agree::<f32>(&rule, n, 1e-5);
    }
}

#[test]
fn every_built_in_agrees_with_the_interpreter() {
    for b in builtins() {
        let rule = (b.make)();
        if rule.info().program().tensor.is_some() {
            // Rules with shapes have one implementation, the tensor
            // executor, for compiled and text rules alike; PyTorch's
            // fixtures check it (tests/matrix_rules.rs).
            continue;
        }
        agree::<f64>(rule.as_ref(), 1000, 1e-11);
        agree::<f32>(rule.as_ref(), 1000, 1e-4);
    }
}
