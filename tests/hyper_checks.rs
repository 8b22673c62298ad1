//! Hyperparameters and states refuse what cannot be meant: a value outside
//! the range a rule declares (`where 0 <= b1 < 1`) is a typed error naming
//! the hyperparameter and its range, from compiled and text rules alike;
//! `Optimizer::set_hyper` sets every group or none; a state made by another
//! rule of the same name is refused (its program's fingerprint differs).

use optdsl::{optimizer, DynRule, Error, HyperValue, Optimizer, Rules, UpdateRule};

optimizer! {
    /// A rule with declared ranges.
    pub Ranged {
        hyper lr = 1e-3 where lr >= 0, b1 = 0.9 where 0 <= b1 < 1, eta = 0.5 where 0 < eta < 1;
        state m = 0;
        m = b1 * m + (1 - b1) * g;
        w -= lr * eta * m;
    }
}

mod first {
    optdsl::optimizer! { pub Same { hyper lr = 0.1; w -= lr * g; } }
}
mod second {
    optdsl::optimizer! { pub Same { hyper lr = 0.1; state v = 0; v = v + g * g; w -= lr * g / (v + 1); } }
}

#[track_caller]
fn range_error(r: optdsl::Result<()>) -> String {
    match r {
        Err(e @ Error::HyperRange { .. }) => e.to_string(),
        other => panic!("expected a range error, got {other:?}"),
    }
}

#[test]
fn values_outside_the_declared_range_are_refused_by_name() {
    let mut r = Ranged::default();
    let e = range_error(r.set_hyper("b1", HyperValue::Num(1.5)));
    assert!(
        e.contains("`b1`") && e.contains("0 <= b1 < 1") && e.contains("1.5"),
        "{e}"
    );
    range_error(r.set_hyper("b1", HyperValue::Num(1.0)));
    range_error(r.set_hyper("lr", HyperValue::Num(f64::NAN)));
    range_error(r.set_hyper("lr", HyperValue::Num(-0.1)));
    range_error(r.set_hyper("eta", HyperValue::Num(0.0)));
    assert_eq!(r, Ranged::default(), "a refused value changes nothing");
    r.set_hyper("b1", HyperValue::Num(0.0)).unwrap();
    assert_eq!(r.b1, 0.0);

    let text = Rules::parse(Ranged::INFO.source).unwrap();
    let mut t: Box<dyn DynRule> = Box::new(text[0].clone());
    let e = range_error(t.set_hyper("b1", HyperValue::Num(2.0)));
    assert!(e.contains("0 <= b1 < 1"), "{e}");
}

#[test]
fn optimizer_set_hyper_sets_every_group_or_none() {
    let sgd = optdsl::builtin_rule("sgd").unwrap();
    let adam = optdsl::builtin_rule("adam").unwrap();
    let mut opt = Optimizer::<f64>::new();
    opt.add_group(sgd, &[3]);
    opt.add_group(adam, &[2]);
    assert!(opt.set_hyper("momentum", HyperValue::Num(0.9)).is_err());
    assert_eq!(
        opt.rule(0).unwrap().hyper("momentum"),
        Some(HyperValue::Num(0.0))
    );
    opt.set_hyper("lr", HyperValue::Num(0.5)).unwrap();
    assert_eq!(opt.rule(0).unwrap().hyper("lr"), Some(HyperValue::Num(0.5)));
    assert_eq!(opt.rule(1).unwrap().hyper("lr"), Some(HyperValue::Num(0.5)));
}

#[test]
fn a_state_of_another_rule_with_the_same_name_is_refused() {
    let a = first::Same::default();
    let b = second::Same::default();
    let mut state = a.init::<f64>(2);
    let mut w = vec![1.0, 2.0];
    let err = b.try_step(&mut state, &mut w, &[0.1, 0.2]).unwrap_err();
    assert!(matches!(err, Error::StateMismatch(_)), "{err}");
    assert!(
        err.to_string().contains("another rule named `Same`"),
        "{err}"
    );
    assert_eq!(w, [1.0, 2.0]);
    // A text rule of the same program steps the compiled rule's state.
    let text = Rules::parse(first::Same::INFO.source).unwrap();
    text[0]
        .step_f64(&mut state, &mut w, &[0.1, 0.2], &[])
        .unwrap();
}
