//! Row-sparse steps (`optdsl::sparse`, `Optimizer::step_sparse`): touched
//! rows only, state per row, the tensor's step count; repeated rows summed
//! as PyTorch coalesces them; equal to the dense step when every row is
//! touched; rules that are not row-local refused; typed errors for bad rows
//! and lengths, with nothing changed.

use optdsl::error::Error;
use optdsl::sparse::{check_row_local, coalesce, step_rows, SparseGrad};
use optdsl::{builtin_rule, DynFloat, DynRule, HyperValue, Optimizer, State};

const COLS: usize = 3;

fn table(rows: usize) -> Vec<f64> {
    (0..rows * COLS)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0)
        .collect()
}

fn adam_like(name: &str) -> Box<dyn DynRule> {
    let mut r = builtin_rule(name).unwrap();
    r.set_hyper("lr", HyperValue::Num(0.05)).unwrap();
    r
}

#[test]
fn only_touched_rows_and_their_state_change() {
    let rule = adam_like("sparse_adam");
    let mut w = table(5);
    let mut state: State<f64> = f64::dyn_init(rule.as_ref(), w.len());
    let g = SparseGrad {
        cols: COLS,
        rows: &[3, 1],
        values: &[1.0, -2.0, 0.5, 0.25, 0.0, -1.0],
    };
    step_rows(rule.as_ref(), &mut state, &mut w, &g).unwrap();
    let before = table(5);
    for r in [0, 2, 4] {
        assert_eq!(
            w[r * COLS..(r + 1) * COLS],
            before[r * COLS..(r + 1) * COLS]
        );
        for b in &state.buffers {
            assert!(b[r * COLS..(r + 1) * COLS].iter().all(|&x| x == 0.0));
        }
    }
    // Row 1's middle gradient is 0: Adam's step there is 0 too.
    assert_eq!(w[COLS + 1], before[COLS + 1]);
    for i in [COLS, COLS + 2, 3 * COLS, 3 * COLS + 1, 3 * COLS + 2] {
        assert_ne!(w[i], before[i], "element {i}");
    }
    assert_eq!(state.t, 1);
    // The first step of a row moves it by lr against the gradient's sign
    // (to eps).
    assert!((w[3 * COLS] - (before[3 * COLS] - 0.05)).abs() < 1e-7);
}

#[test]
fn touching_every_row_is_the_dense_step_bit_for_bit() {
    for name in ["sparse_adam", "adam", "sgd", "rmsprop", "adagrad", "lion"] {
        let rule = adam_like(name);
        let rows = 4;
        let (mut dense, mut sparse) = (table(rows), table(rows));
        let mut ds: State<f64> = f64::dyn_init(rule.as_ref(), dense.len());
        let mut ss = ds.clone();
        for step in 0..5 {
            let g: Vec<f64> = (0..rows * COLS)
                .map(|i| ((i * 7 + step * 3) % 5) as f64 - 2.0)
                .collect();
            rule.step_f64(&mut ds, &mut dense, &g, &[]).unwrap();
            // the rows in another order, with values to match
            let order = [2usize, 0, 3, 1];
            let values: Vec<f64> = order
                .iter()
                .flat_map(|&r| g[r * COLS..(r + 1) * COLS].to_vec())
                .collect();
            let sg = SparseGrad {
                cols: COLS,
                rows: &order,
                values: &values,
            };
            step_rows(rule.as_ref(), &mut ss, &mut sparse, &sg).unwrap();
        }
        assert_eq!(dense, sparse, "{name}");
        assert_eq!(ds, ss, "{name}");
    }
}

#[test]
fn repeated_rows_add_up_as_pytorch_coalesces_them() {
    let rule = adam_like("sparse_adam");
    let mut a = table(4);
    let mut b = table(4);
    let mut sa: State<f64> = f64::dyn_init(rule.as_ref(), a.len());
    let mut sb = sa.clone();
    let twice = SparseGrad {
        cols: COLS,
        rows: &[2, 0, 2],
        values: &[1.0, 2.0, 3.0, -1.0, 0.5, 0.0, 0.5, -4.0, 1.0],
    };
    let summed = SparseGrad {
        cols: COLS,
        rows: &[0, 2],
        values: &[-1.0, 0.5, 0.0, 1.5, -2.0, 4.0],
    };
    step_rows(rule.as_ref(), &mut sa, &mut a, &twice).unwrap();
    step_rows(rule.as_ref(), &mut sb, &mut b, &summed).unwrap();
    assert_eq!((a, sa), (b, sb));
    let (rows, values) = coalesce(12, &twice).unwrap();
    assert_eq!(rows, [0, 2]);
    assert_eq!(values, [-1.0, 0.5, 0.0, 1.5, -2.0, 4.0]);
}

#[test]
fn an_empty_row_set_counts_a_step_and_changes_no_row() {
    let rule = adam_like("sparse_adam");
    let mut w = table(3);
    let mut state: State<f64> = f64::dyn_init(rule.as_ref(), w.len());
    let empty = SparseGrad::<f64> {
        cols: COLS,
        rows: &[],
        values: &[],
    };
    step_rows(rule.as_ref(), &mut state, &mut w, &empty).unwrap();
    assert_eq!((w.clone(), state.t), (table(3), 1));
    // The step count is the tensor's: the next step's bias correction is
    // step 2's (PyTorch's SparseAdam counts the empty step too).
    let mut fresh: State<f64> = f64::dyn_init(rule.as_ref(), w.len());
    let mut w2 = w.clone();
    let g = SparseGrad {
        cols: COLS,
        rows: &[1],
        values: &[1.0, 1.0, 1.0],
    };
    step_rows(rule.as_ref(), &mut state, &mut w, &g).unwrap();
    step_rows(rule.as_ref(), &mut fresh, &mut w2, &g).unwrap();
    assert_eq!(state.t, 2);
    assert_ne!(w, w2);
}

#[test]
fn bad_rows_and_lengths_are_typed_errors_and_change_nothing() {
    let rule = adam_like("sparse_adam");
    let mut w = table(3);
    let mut state: State<f64> = f64::dyn_init(rule.as_ref(), w.len());
    let fresh = state.clone();
    let cases: [(SparseGrad<f64>, &str); 4] = [
        (
            SparseGrad {
                cols: COLS,
                rows: &[0, 3],
                values: &[0.0; 6],
            },
            "no row with index 3; there are 3",
        ),
        (
            SparseGrad {
                cols: COLS,
                rows: &[0, 1],
                values: &[0.0; 5],
            },
            "has 5 elements",
        ),
        (
            SparseGrad {
                cols: 4,
                rows: &[0],
                values: &[0.0; 4],
            },
            "do not tile",
        ),
        (
            SparseGrad {
                cols: 0,
                rows: &[],
                values: &[],
            },
            "cols > 0",
        ),
    ];
    for (g, says) in cases {
        let e = step_rows(rule.as_ref(), &mut state, &mut w, &g).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!((&w, &state), (&table(3), &fresh));
    }
    let e = step_rows(
        rule.as_ref(),
        &mut state,
        &mut w[..6],
        &SparseGrad {
            cols: COLS,
            rows: &[0],
            values: &[0.0; 3],
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { .. }), "{e}");
}

#[test]
fn rules_that_are_not_row_local_are_refused() {
    for (name, says) in [
        ("lamb", "reduces over the whole tensor"),
        ("seed-rmsprop-sigma", "starts from per-element values"),
        ("vsgd", "takes inputs [h]"),
        ("adam8bit", "declared compressed"),
    ] {
        let rule = builtin_rule(name).unwrap();
        let e = check_row_local(rule.info()).unwrap_err();
        assert!(matches!(e, Error::NotRowLocal { .. }), "{name}: {e}");
        assert!(e.to_string().contains(says), "{name}: {e}");
        let mut w = vec![1.0f64; 6];
        let mut state: State<f64> = f64::dyn_init(rule.as_ref(), 6);
        let g = SparseGrad {
            cols: 2,
            rows: &[1],
            values: &[1.0, 1.0],
        };
        assert!(step_rows(rule.as_ref(), &mut state, &mut w, &g).is_err());
        assert_eq!(w, [1.0; 6]);
    }
    for name in [
        "sparse_adam",
        "adam",
        "sgd",
        "adagrad",
        "rmsprop",
        "asgd",
        "nadam",
    ] {
        check_row_local(builtin_rule(name).unwrap().info()).unwrap();
    }
}

#[test]
fn the_optimizer_steps_every_tensor_sparsely_or_none() {
    let mut opt = Optimizer::<f32>::new();
    opt.add_group(builtin_rule("sparse_adam").unwrap(), &[6]);
    opt.add_group(builtin_rule("sgd").unwrap(), &[4]);
    let (mut a, mut b) = (vec![1.0f32; 6], vec![1.0f32; 4]);
    let ga = SparseGrad {
        cols: 2,
        rows: &[2],
        values: &[1.0, -1.0],
    };
    let gb = SparseGrad {
        cols: 2,
        rows: &[0, 0],
        values: &[1.0, 1.0, 2.0, 2.0],
    };
    opt.step_sparse(&mut [&mut a, &mut b], &[ga, gb]).unwrap();
    assert_eq!(opt.steps(), 1);
    assert_eq!(&a[..4], &[1.0; 4]);
    assert!(a[4] < 1.0 && a[5] > 1.0);
    // sgd's default lr 1e-3 on the summed row [3, 3]
    assert_eq!(b, [1.0 - 0.003, 1.0 - 0.003, 1.0, 1.0]);
    let states: Vec<u64> = opt
        .groups()
        .iter()
        .flat_map(|g| g.states().iter().map(|s| s.t))
        .collect();
    assert_eq!(states, [1, 1]);

    // A bad row in the second tensor: the first does not move either.
    let (a0, b0) = (a.clone(), b.clone());
    let bad = SparseGrad {
        cols: 2,
        rows: &[5],
        values: &[1.0, 1.0],
    };
    let e = opt
        .step_sparse(&mut [&mut a, &mut b], &[ga, bad])
        .unwrap_err();
    assert!(matches!(e, Error::NoSuchIndex { what: "row", .. }), "{e}");
    assert_eq!((a.clone(), b.clone(), opt.steps()), (a0, b0, 1));
    assert!(opt.step_sparse(&mut [&mut a], &[ga]).is_err());

    // A group whose rule is not row-local refuses the whole step.
    let mut lamb = Optimizer::<f32>::with_rule(builtin_rule("lamb").unwrap(), &[6]);
    let e = lamb.step_sparse(&mut [&mut a], &[ga]).unwrap_err();
    assert!(matches!(e, Error::NotRowLocal { .. }), "{e}");
}

#[test]
fn a_non_finite_sparse_gradient_is_skipped_when_asked() {
    let mut opt = Optimizer::<f64>::with_rule(builtin_rule("sparse_adam").unwrap(), &[4]);
    opt.skip_non_finite(1);
    let mut w = vec![0.5; 4];
    let g = SparseGrad {
        cols: 2,
        rows: &[1],
        values: &[f64::NAN, 1.0],
    };
    opt.step_sparse(&mut [&mut w], &[g]).unwrap();
    assert_eq!(
        (w.clone(), opt.skipped_steps(), opt.steps()),
        (vec![0.5; 4], 1, 0)
    );
}
