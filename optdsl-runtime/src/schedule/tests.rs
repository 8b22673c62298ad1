//! Unit tests of the schedules: epoch/step conventions, the 1/t decay
//! driving an optimizer, text round trips and the typed parse errors.

use super::*;
use crate::builtin::builtin_rule;

fn clock(step: u64) -> Clock {
    Clock::at(step, 4, 10)
}

fn parse(s: &str) -> LrSchedule {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn epoch_wise_schedules_change_once_an_epoch() {
    let inv = parse("1/t");
    assert_eq!(inv.value(1.0, clock(3)), 1.0);
    assert_eq!(inv.value(1.0, clock(4)), 0.5);
    assert_eq!(inv.value(1.0, clock(9)), 1.0 / 3.0);
    assert_eq!(parse("1/t:step").value(1.0, clock(3)), 0.25);
    assert_eq!(parse("1/t:0.5").value(1.0, clock(8)), 0.5);
    let step = parse("step:2:0.5");
    assert_eq!(step.value(0.8, clock(7)), 0.8);
    assert_eq!(step.value(0.8, clock(8)), 0.4);
    assert_eq!(step.value(0.8, clock(16)), 0.2);
    let exp = parse("exp:0.9");
    assert!((exp.value(1.0, clock(8)) - 0.81).abs() < 1e-15);
    let multi = parse("multistep:1,3:0.5");
    let lrs: Vec<f64> = (0..5).map(|e| multi.value(1.0, clock(4 * e))).collect();
    assert_eq!(lrs, [1.0, 0.5, 0.5, 0.25, 0.25]);
    // Every step of an epoch has the epoch's rate.
    for s in [
        "linear:0.5:1:4",
        "poly:4:2",
        "sgdr:2:2:0.1",
        "multistep:2:0.1",
    ] {
        let s = parse(s);
        for e in 0..10 {
            let first = s.value(1.0, clock(4 * e));
            for k in 1..4 {
                assert_eq!(s.value(1.0, clock(4 * e + k)), first, "{s} epoch {e}");
            }
        }
    }
}

#[test]
fn cosine_runs_from_the_base_rate_to_the_minimum() {
    let cos = parse("cosine:0.01");
    assert_eq!(cos.value(0.1, clock(0)), 0.1);
    assert!((cos.value(0.1, clock(20)) - 0.055).abs() < 1e-12);
    assert!((cos.value(0.1, clock(40)) - 0.01).abs() < 1e-12);
}

#[test]
fn warmup_rises_linearly_then_hands_over() {
    let s = parse("warmup:2+step:1:0.5");
    let lrs: Vec<f64> = (0..13).map(|k| s.value(1.0, clock(k))).collect();
    assert_eq!(
        &lrs[..8],
        [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
    );
    assert_eq!(&lrs[8..13], [1.0, 1.0, 1.0, 1.0, 0.5]);
    assert_eq!(parse("warmup:1").value(1.0, clock(30)), 1.0);
}

#[test]
fn linear_and_polynomial_reach_their_end_and_stay() {
    let lin = parse("linear:0.5:1:4");
    let lrs: Vec<f64> = (0..6).map(|e| lin.value(2.0, clock(4 * e))).collect();
    assert_eq!(lrs, [1.0, 1.25, 1.5, 1.75, 2.0, 2.0]);
    let poly = parse("poly:4:2");
    let lrs: Vec<f64> = (0..6).map(|e| poly.value(1.0, clock(4 * e))).collect();
    assert_eq!(lrs, [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]);
}

#[test]
fn one_cycle_starts_low_peaks_at_the_base_rate_and_ends_lower() {
    let s = parse("onecycle:anneal_strategy=linear:pct_start=0.25");
    // 40 steps: up over steps 0..=9, down over 9..=39.
    let lr = |k| s.value(1.0, clock(k));
    // To the rounding of the peak (1): the linear interpolation's
    // `(min - 1) p + 1` cancels.
    let close = |a: f64, b: f64| (a - b).abs() <= 4.0 * f64::EPSILON;
    assert_eq!(lr(0), 1.0 / 25.0);
    assert!(close(lr(9), 1.0), "{}", lr(9));
    assert!(close(lr(39), 1.0 / 25.0 / 1e4), "{}", lr(39));
    assert!(lr(5) > lr(4) && lr(20) < lr(10));
    // A phase of no length (pct_start * steps = 1) gives its start value
    // where PyTorch divides by zero.
    let s = parse("onecycle:pct_start=0.125");
    let eight = |k| Clock::at(k, 1, 8);
    assert!(close(s.value(1.0, eight(0)), 1.0 / 25.0));
    assert!((0..8).all(|k| s.value(1.0, eight(k)).is_finite()));
}

#[test]
fn cyclic_goes_up_and_down_between_its_rates() {
    let s = parse("cyclic:0.1:2:step_size_down=3");
    let lrs: Vec<f64> = (0..6).map(|k| s.value(1.1, clock(k))).collect();
    let want = [0.1, 0.6, 1.1, 1.1 - 1.0 / 3.0, 1.1 - 2.0 / 3.0, 0.1];
    for (got, want) in lrs.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{lrs:?}");
    }
    let halving = parse("cyclic:0:1:mode=triangular2");
    assert_eq!(halving.value(1.0, clock(1)), 1.0);
    assert_eq!(halving.value(1.0, clock(3)), 0.5);
    assert_eq!(halving.value(1.0, clock(5)), 0.25);
}

#[test]
fn sgdr_restarts_with_longer_periods() {
    let s = parse("sgdr:2:2");
    let lr = |e: u64| s.value(1.0, clock(4 * e));
    // Periods of 2, 4, 8 epochs: restarts at epochs 2 and 6.
    assert_eq!([lr(0), lr(2), lr(6)], [1.0, 1.0, 1.0]);
    assert!((lr(1) - 0.5).abs() < 1e-15 && (lr(4) - 0.5).abs() < 1e-15);
    assert!(lr(5) < lr(4) && lr(7) < lr(6));
}

#[test]
fn plateau_cuts_after_its_patience_and_waits_out_the_cooldown() {
    let s = parse("plateau:factor=0.5:patience=1:cooldown=2:min_lr=0.2");
    let mut state = ScheduleState::default();
    let mut lrs = vec![];
    let mut losses = vec![1.0, 0.5];
    losses.resize(18, 0.6);
    for loss in losses {
        state.observe(&s, loss);
        lrs.push(s.value(1.0, state.clock(clock(0))));
    }
    // The 2nd bad epoch (epoch 3) cuts; two cool-down epochs, whose bad
    // epochs do not count; two bad epochs, a cut; again, a cut clamped by
    // min_lr (0.125 -> 0.2); the next cut (to 0.2) moves it by less than eps.
    assert_eq!(
        lrs,
        [
            1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2,
            0.2, 0.2
        ]
    );
    assert_eq!(state.cuts, 4);
    // A schedule without a plateau remembers nothing.
    let mut quiet = ScheduleState::default();
    quiet.observe(&parse("cosine"), 1.0);
    assert!(quiet.is_start());
    // A warm-up hands its epochs to the plateau after it.
    assert!(parse("warmup:1+plateau").plateau().is_some());
}

#[test]
fn piecewise_scales_at_and_after_each_boundary() {
    let s = parse("piecewise:2=0.5,5=0.1");
    let lrs: Vec<f64> = (0..7).map(|k| s.value(2.0, clock(k))).collect();
    assert_eq!(lrs, [2.0, 2.0, 1.0, 1.0, 1.0, 0.1, 0.1]);
}

#[test]
fn inverse_time_drives_sgd_like_the_slides_rule() {
    // SGD with η_t = η/t set by the schedule equals the slides' 1/t rule.
    let mut opt = Optimizer::<f64>::with_rule(builtin_rule("sgd").unwrap(), &[2]);
    let slides = builtin_rule("seed-gd-1-over-t").unwrap();
    let mut state = slides.init_f64(2);
    let s = LrSchedule::inverse_time(1.0);
    let mut slides = slides;
    slides.set_hyper("lr", HyperValue::Num(0.3)).unwrap();
    let (mut a, mut b) = (vec![1.0, -2.0], vec![1.0, -2.0]);
    for k in 0..5 {
        let g = [a[0] * (k as f64 + 1.0), a[1] - 0.5];
        s.apply(&mut opt, "lr", 0.3, 5).unwrap();
        opt.step_flat(&mut a, &g).unwrap();
        let g = [b[0] * (k as f64 + 1.0), b[1] - 0.5];
        slides.step_f64(&mut state, &mut b, &g, &[]).unwrap();
    }
    assert_eq!(a, b);
    assert!(s.apply(&mut opt, "nope", 0.3, 5).is_err());
    let values: Vec<f64> = (0..3)
        .map(|t| s.value(0.5, Clock::of_steps(t, 3)))
        .collect();
    assert_eq!(values, [0.5, 0.25, 0.5 / 3.0]);
}

#[test]
fn text_round_trips() {
    for text in [
        "constant",
        "1/t",
        "1/t:step",
        "1/t:0.1",
        "1/t:step:0.001",
        "step:3:0.1",
        "multistep:30,80:0.1",
        "exp:0.95",
        "cosine",
        "cosine:0.001",
        "linear:0.25:1:5",
        "poly:50:0.9",
        "onecycle",
        "onecycle:pct_start=0.25:anneal_strategy=linear:div_factor=10:final_div_factor=100:three_phase=true",
        "cyclic:0.001:2000",
        "cyclic:0.001:20:step_size_down=30:mode=exp_range:gamma=0.99",
        "sgdr:10",
        "sgdr:10:2",
        "sgdr:10:1:0.001",
        "plateau",
        "plateau:mode=max:factor=0.5:patience=3:threshold=0.01:threshold_mode=abs:cooldown=2:min_lr=0.0001:eps=0",
        "piecewise:100=0.5,200=0.1",
        "warmup:0.5+cosine",
        "warmup:2+plateau:patience=2",
    ] {
        assert_eq!(parse(text).to_string(), text);
    }
    // Other spellings read as the canonical form.
    assert_eq!(parse("1/t:epoch").to_string(), "1/t");
    assert_eq!(parse("polynomial:5:1").to_string(), "poly:5:1");
    assert_eq!(parse("exponential:0.5").to_string(), "exp:0.5");
}

#[test]
fn bad_text_is_a_typed_error_naming_what_to_fix() {
    use ScheduleError as E;
    let err = |s: &str| s.parse::<LrSchedule>().unwrap_err();
    for bad in [
        "",
        "linear",
        "step:2",
        "nope",
        "sgdr",
        "sgdr:1:2:3:4",
        "1/t:1:2",
    ] {
        assert!(matches!(err(bad), E::Form { .. }), "{bad}: {:?}", err(bad));
    }
    assert!(err("step:2").to_string().contains("step:EVERY:GAMMA"));
    for (bad, what) in [
        ("step:0:0.5", "EVERY (epochs between decays)"),
        ("exp:-1", "GAMMA"),
        ("linear:0:1:5", "START_FACTOR"),
        ("linear:0.5:1.5:5", "END_FACTOR"),
        ("linear:0.5:1:0", "EPOCHS (total_iters)"),
        ("poly:0:1", "EPOCHS (total_iters)"),
        ("poly:3:-1", "POWER"),
        ("onecycle:pct_start=1.5", "pct_start"),
        ("onecycle:div_factor=0", "div_factor"),
        ("cyclic:0.1:0", "STEP_SIZE_UP"),
        ("cyclic:0.1:5:step_size_down=0", "step_size_down"),
        ("sgdr:0", "T_0"),
        ("sgdr:5:0", "T_MULT"),
        ("plateau:factor=1", "factor"),
        ("plateau:factor=0", "factor"),
        ("warmup:0+cosine", "the warm-up's EPOCHS"),
        ("piecewise:5=-1", "a scale"),
    ] {
        match err(bad) {
            E::OutOfRange { what: w, .. } => assert_eq!(w, what, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    for bad in [
        "cosine:x",
        "step:2.5:0.5",
        "plateau:patience=-1",
        "cosine:inf",
    ] {
        assert!(matches!(err(bad), E::NotANumber { .. }), "{bad}");
    }
    assert!(matches!(err("multistep::0.1"), E::Empty { .. }));
    assert!(matches!(err("piecewise:"), E::Empty { .. }));
    assert!(matches!(
        err("multistep:30,20:0.1"),
        E::NotIncreasing {
            prev: 30,
            next: 20,
            ..
        }
    ));
    assert!(matches!(err("multistep:5,5:0.1"), E::NotIncreasing { .. }));
    assert!(matches!(
        err("piecewise:10=0.5,3=0.1"),
        E::NotIncreasing { .. }
    ));
    assert!(matches!(err("plateau:speed=2"), E::UnknownOption { .. }));
    assert!(matches!(err("onecycle:three_phase"), E::NotANumber { .. }));
    assert!(matches!(
        err("plateau:patience=2:patience=3"),
        E::Repeated { .. }
    ));
    assert!(matches!(err("cyclic:0.1:5:gamma=0.9"), E::Conflict { .. }));
    assert!(matches!(err("plateau:threshold=1"), E::Conflict { .. }));
    assert!(matches!(err("warmup:1+nope"), E::Form { text, .. } if text == "warmup:1+nope"));
    assert!(
        matches!(err("warmup:1+cosine:x"), E::NotANumber { text, .. } if text == "warmup:1+cosine:x")
    );
    // The runtime's error, for callers that return it.
    let e: crate::Error = err("step:0:1").into();
    assert!(matches!(e, crate::Error::Invalid { ref what, .. } if what == "schedule"));
}
