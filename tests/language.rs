//! The language's semantics, end to end: rules compiled by `optimizer!` and
//! stepped, checked against values worked out by hand.

use optdsl::{optimizer, DynRule, Error, HyperValue, Optimizer, UpdateRule};

optimizer! {
    /// Sign descent.
    pub SignDescent { hyper lr = 0.01; w -= lr * sign(g); }
}

optimizer! {
    /// Keeps the previous gradient: statements run in order.
    pub PrevGrad {
        state gprev = g, first = w;
        w = gprev;
        gprev = g;
    }

    /// A zero-norm guard: the branch not taken may be 0/0.
    pub Normalized {
        hyper lr = 1;
        let n = norm(g);
        w -= lr * select(n > 0, g / n, 0);
        w += if g != 0 { 0 * (1 / g) } else { 0 };
    }

    /// Every reduction and a per-tensor scalar state.
    pub Reductions {
        scalar total = 0, count = 0;
        state s = 0, m = 0, n = 0, a = 0;
        s = sum(g);
        m = mean(g);
        n = norm(g + w);
        a = max_abs(g);
        total += sum(g);
        count += 1;
    }

    /// A per-step scalar rounded to the element type.
    pub Rounded {
        hyper b = 0.999;
        w = w * 0 + float(1 - float(b));
    }

    /// Per-element and per-step conditionals, boolean hypers, inputs.
    pub Branches {
        hyper flip = false, k = 2;
        input h;
        state st = 1;
        if g > 0 { st *= k; } else if g < 0 { st = st / k; } else { st = 0; }
        let d = if flip { -g } else { g };
        if t > 1 && !flip { w -= d * h; } else { w += d; }
    }
}

#[test]
fn sign_descent_treats_zero_as_zero() {
    let rule = SignDescent { lr: 0.5 };
    let mut w = vec![1.0f32, -2.0, 3.0];
    let mut s = rule.init::<f32>(w.len());
    rule.step(&mut s, &mut w, &[0.5, -0.5, 0.0]);
    assert_eq!(w, [0.5, -1.5, 3.0]);
    assert_eq!(s.t, 1);
}

#[test]
fn statements_run_in_order_and_first_step_inits_see_g() {
    let rule = PrevGrad::default();
    let mut w = vec![10.0f64, 20.0];
    let mut s = rule.init::<f64>(2);
    rule.step(&mut s, &mut w, &[1.0, 2.0]);
    // gprev was initialised to g on the first step, so w = g1.
    assert_eq!(w, [1.0, 2.0]);
    rule.step(&mut s, &mut w, &[3.0, 4.0]);
    // then w takes the previous gradient.
    assert_eq!(w, [1.0, 2.0]);
    assert_eq!(s.buffer(PrevGrad::INFO, "gprev").unwrap(), &[3.0, 4.0]);
    assert_eq!(s.buffer(PrevGrad::INFO, "first").unwrap(), &[10.0, 20.0]);
}

#[test]
fn a_nan_in_the_branch_not_taken_never_leaks() {
    let rule = Normalized::default();
    let mut w = vec![1.0f32, 1.0];
    let mut s = rule.init::<f32>(2);
    // n = 0: g / n is 0/0 = NaN and 1/g is infinite, both in branches not taken.
    rule.step(&mut s, &mut w, &[0.0, 0.0]);
    assert_eq!(w, [1.0, 1.0]);
    rule.step(&mut s, &mut w, &[3.0, 4.0]);
    assert_eq!(w, [1.0 - 0.6, 1.0 - 0.8]);
}

#[test]
fn float_rounds_per_step_scalars_to_the_element_type() {
    let rule = Rounded::default();
    let mut w32 = vec![0.0f32];
    rule.step(&mut rule.init::<f32>(1), &mut w32, &[0.0]);
    assert_eq!(w32[0], 1.0 - 0.999f32);
    assert_ne!(w32[0] as f64, 1.0 - 0.999f64);
    let mut w64 = vec![0.0f64];
    rule.step(&mut rule.init::<f64>(1), &mut w64, &[0.0]);
    assert_eq!(w64[0], 1.0 - 0.999f64);
}

#[test]
fn reductions_over_the_tensor() {
    let rule = Reductions::default();
    // 40 elements: more than one chunk of the fused loop plus a tail.
    let g: Vec<f64> = (0..40).map(|i| i as f64 - 10.0).collect();
    let mut w = vec![1.0f64; 40];
    let mut s = rule.init::<f64>(40);
    rule.step(&mut s, &mut w, &g);
    let sum: f64 = g.iter().sum();
    let norm = g.iter().map(|x| (x + 1.0) * (x + 1.0)).sum::<f64>().sqrt();
    assert_eq!(s.buffer(Reductions::INFO, "s").unwrap()[7], sum);
    assert_eq!(s.buffer(Reductions::INFO, "m").unwrap()[0], sum / 40.0);
    assert!((s.buffer(Reductions::INFO, "n").unwrap()[3] - norm).abs() < 1e-12);
    assert_eq!(s.buffer(Reductions::INFO, "a").unwrap()[39], 29.0);
    rule.step(&mut s, &mut w, &g);
    assert_eq!(s.scalar(Reductions::INFO, "total"), Some(2.0 * sum));
    assert_eq!(s.scalar(Reductions::INFO, "count"), Some(2.0));
    assert_eq!(w, vec![1.0; 40], "w is not assigned");
}

#[test]
fn conditionals_inputs_and_boolean_hypers() {
    let rule = Branches::default();
    let mut w = vec![0.0f32; 3];
    let h = vec![10.0f32; 3];
    let mut s = rule.init::<f32>(3);
    rule.step_with(&mut s, &mut w, &[1.0, -1.0, 0.0], &[&h]);
    assert_eq!(w, [1.0, -1.0, 0.0]); // t = 1: w += g
    assert_eq!(s.buffers[0], [2.0, 0.5, 0.0]);
    rule.step_with(&mut s, &mut w, &[1.0, -1.0, 0.0], &[&h]);
    assert_eq!(w, [-9.0, 9.0, 0.0]); // t = 2: w -= g * h
    let flipped = Branches {
        flip: true,
        ..Default::default()
    };
    let mut s = flipped.init::<f32>(3);
    let mut w = vec![0.0f32; 3];
    flipped.step_with(&mut s, &mut w, &[1.0, -1.0, 0.0], &[&h]);
    assert_eq!(w, [-1.0, 1.0, 0.0]);
    // a missing input is a typed error
    let err = rule.try_step(&mut s, &mut w, &[1.0, 1.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("step_with"), "{err}");
}

#[test]
fn lengths_and_states_are_checked() {
    let rule = SignDescent::default();
    let mut s = rule.init::<f64>(3);
    let mut w = vec![0.0f64; 3];
    let err = rule.try_step(&mut s, &mut w, &[1.0, 2.0]).unwrap_err();
    assert_eq!(
        err,
        Error::LengthMismatch {
            what: "the gradient".into(),
            expected: 3,
            got: 2
        }
    );
    let mut other = PrevGrad::default().init::<f64>(3);
    let err = rule
        .try_step(&mut other, &mut w, &[1.0, 2.0, 3.0])
        .unwrap_err();
    assert!(matches!(err, Error::StateMismatch(_)), "{err}");
    assert_eq!(w, [0.0; 3], "nothing changed");
}

#[test]
fn hypers_by_name_through_the_dynamic_form() {
    let mut rule: Box<dyn DynRule> = Box::new(Branches::default());
    assert_eq!(rule.hyper("k"), Some(HyperValue::Num(2.0)));
    rule.set_hyper("k", HyperValue::Num(3.0)).unwrap();
    rule.set_hyper("flip", HyperValue::Bool(true)).unwrap();
    assert_eq!(rule.hyper("flip"), Some(HyperValue::Bool(true)));
    let err = rule.set_hyper("kk", HyperValue::Num(1.0)).unwrap_err();
    assert!(err.to_string().contains("known: flip, k"), "{err}");
    let err = rule.set_hyper("flip", HyperValue::Num(1.0)).unwrap_err();
    assert!(err.to_string().contains("true or false"), "{err}");
    assert_eq!(rule.info().inputs, ["h"]);
    assert_eq!(rule.info().buffers, ["st"]);
}

#[test]
fn optimizer_steps_groups_and_rejects_bad_lengths() {
    let mut opt = Optimizer::<f32>::new();
    opt.add_group(Box::new(SignDescent { lr: 1.0 }), &[2, 1]);
    opt.add_group(Box::new(SignDescent { lr: 0.5 }), &[1]);
    let mut p = vec![0.0f32; 4];
    opt.step_flat(&mut p, &[1.0, -1.0, 1.0, 1.0]).unwrap();
    assert_eq!(p, [-1.0, 1.0, -1.0, -0.5]);
    assert!(matches!(
        opt.step_flat(&mut p, &[1.0; 3]),
        Err(Error::LengthMismatch { got: 3, .. })
    ));
    assert_eq!(opt.steps(), 1);
    let mut a = vec![0.0f32; 2];
    let mut b = vec![0.0f32; 1];
    let mut c = vec![0.0f32; 1];
    let err = opt
        .step(
            &mut [&mut a, &mut b, &mut c],
            &[&[1.0, 1.0], &[1.0, 1.0], &[1.0]],
        )
        .unwrap_err();
    assert!(err.to_string().contains("gradient of tensor 1"), "{err}");
    assert_eq!(a, [0.0, 0.0], "nothing changed on error");
    let saved = opt.state();
    let mut fresh = Optimizer::<f32>::new();
    fresh.add_group(Box::new(SignDescent { lr: 9.0 }), &[2, 1]);
    fresh.add_group(Box::new(SignDescent { lr: 9.0 }), &[1]);
    fresh.load_state(saved).unwrap();
    assert_eq!(fresh.steps(), 1);
    assert_eq!(
        fresh.rule(1).unwrap().hyper("lr"),
        Some(HyperValue::Num(0.5))
    );
}
