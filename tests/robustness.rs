//! Run-time misuse and odd input: empty tensors, non-finite gradients, wrong
//! lengths and inputs. Each is a typed error or a documented behaviour.

use optdsl::{builtin_rule, builtins, DynFloat, Error, Optimizer, State};

#[test]
fn every_built_in_steps_an_empty_tensor_by_counting_the_step() {
    for b in builtins() {
        let rule = (b.make)();
        let inputs: Vec<&[f64]> = rule.info().inputs.iter().map(|_| &[][..]).collect();
        // A rule that needs a matrix gets an empty one.
        let needs_matrix = rule
            .info()
            .program()
            .tensor
            .as_ref()
            .is_some_and(|t| t.needs_matrix);
        let mut state: State<f64> = if needs_matrix {
            f64::dyn_init_shaped(rule.as_ref(), &[0, 4]).unwrap()
        } else {
            f64::dyn_init(rule.as_ref(), 0)
        };
        let mut w: Vec<f64> = Vec::new();
        f64::dyn_step(rule.as_ref(), &mut state, &mut w, &[], &inputs).unwrap();
        assert_eq!(state.t, 1, "{}", b.name);
        assert!(state.buffers.iter().all(Vec::is_empty));
    }
}

#[test]
fn non_finite_gradients_are_skipped_and_counted_when_asked() {
    let mut opt = Optimizer::<f64>::with_rule(builtin_rule("adam").unwrap(), &[3]);
    opt.skip_non_finite(2);
    let mut w = vec![1.0, 2.0, 3.0];
    opt.step_flat(&mut w, &[0.1, 0.1, 0.1]).unwrap();
    let after_one = w.clone();
    let state_one = opt.state();
    for bad in [f64::NAN, f64::INFINITY] {
        opt.step_flat(&mut w, &[0.1, bad, 0.1]).unwrap();
        assert_eq!(w, after_one, "a skipped step leaves the parameters");
    }
    assert_eq!(opt.skipped_steps(), 2);
    assert_eq!(opt.steps(), 1);
    assert_eq!(opt.state(), state_one, "and the state");
    // A third in a row is an error that says what to do.
    let err = opt
        .step_flat(&mut w, &[f64::NEG_INFINITY, 0.0, 0.0])
        .unwrap_err();
    assert_eq!(
        err,
        Error::NonFiniteGradient {
            step: 2,
            consecutive: 3
        }
    );
    assert!(err.to_string().contains("lower the learning rate"));
    // A finite step resets the run of skips.
    opt.step_flat(&mut w, &[0.1, 0.1, 0.1]).unwrap();
    assert_eq!(opt.steps(), 2);
    opt.step_flat(&mut w, &[f64::NAN, 0.1, 0.1]).unwrap();
    assert_eq!(opt.skipped_steps(), 3);
}

#[test]
fn without_the_guard_a_nan_gradient_spreads_as_in_pytorch() {
    let mut opt = Optimizer::<f32>::with_rule(builtin_rule("sgd").unwrap(), &[2]);
    let mut w = vec![1.0f32, 1.0];
    opt.step_flat(&mut w, &[f32::NAN, 1.0]).unwrap();
    assert!(w[0].is_nan());
    assert!(w[1].is_finite());
}

#[test]
fn lengths_and_inputs_are_checked_before_anything_changes() {
    let mut opt = Optimizer::<f64>::with_rule(builtin_rule("vsgd").unwrap(), &[2, 3]);
    let mut w = vec![1.0; 5];
    let g = vec![0.5; 5];
    let h = vec![1.0; 5];
    let err = opt.step_flat(&mut w, &g).unwrap_err();
    assert!(err.to_string().contains("input"), "{err}");
    let err = opt.step_flat_with(&mut w, &g, &[&h[..4]]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 5,
                got: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = opt
        .step_flat_with(&mut w[..4], &g[..4], &[&h[..4]])
        .unwrap_err();
    assert!(err.to_string().contains("parameter buffer"), "{err}");
    assert_eq!(w, vec![1.0; 5]);
    assert_eq!(opt.steps(), 0);
    opt.step_flat_with(&mut w, &g, &[&h]).unwrap();
    assert_eq!(opt.steps(), 1);
}

#[test]
fn a_state_from_another_rule_is_refused() {
    let mut opt = Optimizer::<f64>::with_rule(builtin_rule("adam").unwrap(), &[3]);
    let other = Optimizer::<f64>::with_rule(builtin_rule("rmsprop").unwrap(), &[3]);
    let err = opt.load_state(other.state()).unwrap_err();
    assert!(matches!(err, Error::StateMismatch(_)), "{err}");
    let shorter = Optimizer::<f64>::with_rule(builtin_rule("adam").unwrap(), &[2]);
    let err = opt.load_state(shorter.state()).unwrap_err();
    assert!(err.to_string().contains("group 0, tensor 0"), "{err}");
}
