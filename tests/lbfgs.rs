//! L-BFGS (`optdsl::lbfgs`) against torch 2.15: the last-rows fixtures
//! (tests/golden/last-rows, with extra/) replayed with their losses and
//! evaluation counts, the `optdsl replay` command on them; the options'
//! effects and the typed errors of closure-driven steps; full-batch training.

mod common;

use common::optdsl_at_root as optdsl;

use optdsl::error::Error;
use optdsl::lbfgs::Lbfgs;
use optdsl::replay::{replay, replay_file, Fixture, Outcome};
use optdsl::{builtin_rule, HyperValue, Optimizer};
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/last-rows")
        .join(name);
    Fixture::load(&path).unwrap()
}

#[test]
fn every_last_rows_fixture_replays_with_its_evaluation_counts() {
    let mut names = Vec::new();
    for dir in ["tests/golden/last-rows", "tests/golden/last-rows/extra"] {
        for path in fixtures(dir) {
            let (f, out) = replay_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(out.passed(), "{}", out.line(&f.name));
            names.push(f.name);
        }
    }
    assert_eq!(names.len(), 10, "{names:?}");
    for want in [
        "lbfgs",
        "lbfgs-short",
        "lbfgs-strong-wolfe",
        "sparse-adam",
        "sparse-adam-f32",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
}

#[test]
fn a_wrong_evaluation_count_loss_or_parameter_fails_at_its_step() {
    let f = load("lbfgs-strong-wolfe.json");
    assert!(replay(&f).unwrap().passed());

    let mut wrong = f.clone();
    wrong.evaluations[2] += 1;
    let out = replay(&wrong).unwrap();
    assert_eq!(
        out,
        Outcome::Mismatch {
            step: 3,
            what: "evaluations",
            ours: 7.0,
            reference: 8.0
        }
    );
    assert!(
        out.line("x")
            .starts_with("FAIL x step=3 evaluations ours=7"),
        "{}",
        out.line("x")
    );

    let mut wrong = f.clone();
    wrong.losses[1] *= 1.0 + 1e-7;
    assert!(matches!(
        replay(&wrong).unwrap(),
        Outcome::Mismatch {
            step: 2,
            what: "loss",
            ..
        }
    ));

    let mut wrong = f.clone();
    wrong.params[4][7] += 1e-6;
    assert!(matches!(
        replay(&wrong).unwrap(),
        Outcome::Fail {
            step: 5,
            coord: 7,
            ..
        }
    ));

    // Without the line search the same start takes other steps.
    let mut other = f;
    other.hyper.remove("line_search_fn");
    assert!(!replay(&other).unwrap().passed());
}

#[test]
fn fixture_hyperparameters_are_checked() {
    let mut f = load("lbfgs.json");
    f.hyper
        .insert("line_search_fn".into(), serde_json::json!("backtracking"));
    let e = replay(&f).unwrap_err().to_string();
    assert!(e.contains("strong_wolfe"), "{e}");
    let mut f = load("lbfgs.json");
    f.hyper.insert("history".into(), serde_json::json!(3));
    let e = replay(&f).unwrap_err().to_string();
    assert!(e.contains("`history`") && e.contains("history_size"), "{e}");
    let mut f = load("lbfgs.json");
    f.losses.pop();
    assert!(replay(&f).is_err());
    let mut f = load("lbfgs.json");
    f.objective.as_mut().unwrap().kind = "himmelblau".into();
    let e = replay(&f).unwrap_err().to_string();
    assert!(e.contains("quadratic-rosenbrock-12"), "{e}");
}

#[test]
fn the_replay_command_passes_the_last_rows() {
    let files: Vec<String> = fixtures("tests/golden/last-rows")
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("replay")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = optdsl(&args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines.iter().all(|l| l.starts_with("PASS ")), "{text}");
    assert!(text.contains("PASS lbfgs-strong-wolfe "), "{text}");
    // A closure-driven fixture replays through L-BFGS even with --optimizer.
    let out = optdsl(&[
        "replay",
        "--optimizer",
        "adam",
        "tests/golden/last-rows/lbfgs-short.json",
    ]);
    assert!(out.status.success());
}

/// f(w) = Σ (i + 1) (w_i − 1)² / 2 + (w_0 w_1 − 1)², a coupled quadratic-plus.
fn objective(w: &[f64], g: &mut [f64]) -> optdsl::Result<f64> {
    let mut f = 0.0;
    for (i, (&x, gi)) in w.iter().zip(g.iter_mut()).enumerate() {
        let s = (i + 1) as f64;
        f += 0.5 * s * (x - 1.0) * (x - 1.0);
        *gi = s * (x - 1.0);
    }
    let c = w[0] * w[1] - 1.0;
    f += c * c;
    g[0] += 2.0 * c * w[1];
    g[1] += 2.0 * c * w[0];
    Ok(f)
}

fn run(lbfgs: &Lbfgs, steps: usize) -> (Vec<f64>, Vec<usize>) {
    let mut w = vec![-1.0, 2.0, 0.5, -0.3, 3.0];
    let mut state = lbfgs.init(w.len());
    let mut evals = Vec::new();
    for _ in 0..steps {
        evals.push(
            lbfgs
                .step(&mut state, &mut w, objective)
                .unwrap()
                .evaluations,
        );
    }
    (w, evals)
}

#[test]
fn the_options_do_what_pytorch_documents() {
    let base = Lbfgs::default();
    let grad_max = |w: &[f64]| {
        let mut g = vec![0.0; 5];
        let _ = objective(w, &mut g);
        g.iter().fold(0.0f64, |m, x| m.max(x.abs()))
    };
    // The first step ends when the loss changes by less than
    // tolerance_change; the later ones when the directional derivative
    // -|g|^2-ish is above -tolerance_change: one evaluation each.
    let (w, evals) = run(&base, 4);
    assert!(grad_max(&w) < 1e-4, "{w:?} after {evals:?}");
    assert!(evals[0] > 1 && evals[0] <= base.max_eval(), "{evals:?}");
    assert_eq!(&evals[1..], [1, 1, 1], "{evals:?}");
    // A tighter tolerance_change goes on to the gradient tolerance.
    let tight = Lbfgs {
        tolerance_change: 1e-20,
        ..base
    };
    let (w, evals) = run(&tight, 4);
    assert!(grad_max(&w) <= 1e-7, "{w:?} after {evals:?}");
    assert_eq!(evals.last(), Some(&1), "{evals:?}");

    // max_iter = 1: one evaluation (the last iteration does not re-evaluate).
    let one = Lbfgs {
        max_iter: 1,
        ..base
    };
    assert_eq!(run(&one, 4).1, [1, 1, 1, 1]);
    // max_eval caps the evaluations of a step.
    let capped = Lbfgs {
        max_eval: Some(3),
        ..base
    };
    assert!(run(&capped, 3).1.iter().all(|&e| e == 3));
    let capped_sw = Lbfgs {
        max_eval: Some(4),
        strong_wolfe: true,
        ..base
    };
    assert!(run(&capped_sw, 3).1.iter().all(|&e| e <= 5));
    // A loose gradient tolerance: done at the first evaluation, nothing moves.
    let loose = Lbfgs {
        tolerance_grad: 1e3,
        ..base
    };
    let (w, evals) = run(&loose, 2);
    assert_eq!((w, evals), (vec![-1.0, 2.0, 0.5, -0.3, 3.0], vec![1, 1]));
    // history_size and the line search change the trajectory.
    let short = Lbfgs {
        history_size: 1,
        max_iter: 4,
        ..base
    };
    let long = Lbfgs {
        max_iter: 4,
        ..base
    };
    assert_ne!(run(&short, 1).0, run(&long, 1).0);
    // With lr 1 the line search accepts every first trial step here (the
    // same points as the fixed step, and one more evaluation: the last
    // iteration's); with lr 3 it shortens the overshooting ones.
    let sw = Lbfgs {
        strong_wolfe: true,
        max_iter: 4,
        ..base
    };
    let (w_sw, e_sw) = run(&sw, 1);
    assert_eq!((w_sw, e_sw), (run(&long, 1).0, vec![5]));
    let far = Lbfgs { lr: 3.0, ..long };
    let far_sw = Lbfgs {
        strong_wolfe: true,
        ..far
    };
    assert_ne!(run(&far_sw, 1).0, run(&far, 1).0);
    // lr = 0: no step at all, and the step ends on the lack of progress.
    let still = Lbfgs { lr: 0.0, ..base };
    assert_eq!(run(&still, 1).0, vec![-1.0, 2.0, 0.5, -0.3, 3.0]);
}

#[test]
fn maximizing_the_negation_is_minimizing_bit_for_bit() {
    let min = Lbfgs {
        strong_wolfe: true,
        max_iter: 6,
        ..Lbfgs::default()
    };
    let max = Lbfgs {
        maximize: true,
        ..min
    };
    let (w_min, e_min) = run(&min, 3);
    let mut w = vec![-1.0, 2.0, 0.5, -0.3, 3.0];
    let mut state = max.init(w.len());
    let mut e_max = Vec::new();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let r = max
            .step(&mut state, &mut w, |w, g| {
                let f = objective(w, g)?;
                g.iter_mut().for_each(|x| *x = -*x);
                Ok(-f)
            })
            .unwrap();
        e_max.push(r.evaluations);
        losses.push(r.loss);
    }
    assert_eq!((w, e_max), (w_min, e_min));
    assert!(losses.iter().all(|&l| l < 0.0), "{losses:?}");
}

#[test]
fn a_non_finite_objective_or_bad_lengths_are_typed_errors() {
    let lbfgs = Lbfgs::default();
    let mut w = vec![1.0, 2.0];
    let mut state = lbfgs.init::<f64>(2);
    let e = lbfgs
        .step(&mut state, &mut w, |_, _| Ok(f64::NAN))
        .unwrap_err();
    assert!(
        matches!(e, Error::NonFiniteObjective { evaluation: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("non-finite loss"), "{e}");
    assert_eq!(w, [1.0, 2.0]);

    // A NaN later in a step: at the second evaluation (after the first move).
    let mut calls = 0;
    let e = lbfgs
        .step(&mut state, &mut w, |w, g| {
            calls += 1;
            g[0] = 2.0 * w[0];
            g[1] = if calls == 2 {
                f64::INFINITY
            } else {
                2.0 * w[1]
            };
            Ok(w[0] * w[0] + w[1] * w[1])
        })
        .unwrap_err();
    assert!(
        matches!(&e, Error::NonFiniteObjective { what, evaluation: 2, .. } if what == "gradient"),
        "{e}"
    );

    // The state is for 2 parameters.
    let mut three = vec![0.0; 3];
    let e = lbfgs
        .step(&mut state, &mut three, |_, _| Ok(0.0))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::LengthMismatch {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{e}"
    );

    // A closure's own error is passed on.
    let e = lbfgs
        .step(&mut lbfgs.init(2), &mut w, |_, _| {
            Err(Error::Invalid {
                what: "objective".into(),
                reason: "out of data".into(),
            })
        })
        .unwrap_err();
    assert!(e.to_string().contains("out of data"), "{e}");

    // strong_wolfe with max_eval 0, where PyTorch's line search fails.
    let bad = Lbfgs {
        strong_wolfe: true,
        max_eval: Some(0),
        ..lbfgs
    };
    let e = bad.step(&mut bad.init(2), &mut w, objective2).unwrap_err();
    assert!(e.to_string().contains("max_eval >= 1"), "{e}");
}

fn objective2(w: &[f64], g: &mut [f64]) -> optdsl::Result<f64> {
    g[0] = 2.0 * w[0];
    g[1] = 2.0 * w[1];
    Ok(w[0] * w[0] + w[1] * w[1])
}

#[test]
fn the_closure_step_of_the_optimizer_steps_once_per_call() {
    let mut sgd = builtin_rule("sgd").unwrap();
    sgd.set_hyper("lr", HyperValue::Num(0.25)).unwrap();
    let mut opt = Optimizer::<f64>::with_rule(sgd, &[2]);
    let mut w = vec![2.0, -4.0];
    let loss = opt.step_with_closure(&mut w, objective2).unwrap();
    assert_eq!((loss, w.clone(), opt.steps()), (20.0, vec![1.0, -2.0], 1));
    let e = opt
        .step_with_closure(&mut w, |_, _| Ok(f64::INFINITY))
        .unwrap_err();
    assert!(matches!(e, Error::NonFiniteObjective { .. }), "{e}");
    assert_eq!((w.clone(), opt.steps()), (vec![1.0, -2.0], 1));
    let mut short = vec![0.0];
    assert!(matches!(
        opt.step_with_closure(&mut short, objective2).unwrap_err(),
        Error::LengthMismatch { .. }
    ));
}

#[test]
fn f32_lbfgs_follows_f64_on_the_fixture_objective() {
    let f = load("lbfgs-short.json");
    let mut f32_fixture = f.clone();
    f32_fixture.dtype = "f32".into();
    f32_fixture.tolerance.rel = 1e-3;
    f32_fixture.tolerance.abs = 1e-4;
    // Three steps of four evaluations: close to torch's f64 run in f32.
    f32_fixture.params.truncate(3);
    f32_fixture.losses.truncate(3);
    f32_fixture.evaluations.truncate(3);
    let out = replay(&f32_fixture).unwrap();
    assert!(out.passed(), "{}", out.line("f32"));
}

#[test]
fn the_train_command_trains_full_batch_and_refuses_mini_batches() {
    let dir = std::env::temp_dir().join(format!("optdsl-lbfgs-{}", std::process::id()));
    let out = optdsl(&[
        "train",
        "--optimizer",
        "lbfgs",
        "--batch",
        "all",
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--set",
        "max_iter=10",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acc: f64 = text
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("test accuracy: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc > 0.8, "{text}");
    assert!(text.contains("lbfgs: 20 objective evaluations"), "{text}");
    let csv = std::fs::read_to_string(dir.join("lbfgs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    std::fs::remove_dir_all(&dir).unwrap();

    for (flags, says) in [
        (vec!["--batch", "32"], "--batch all"),
        (
            vec!["--batch", "all", "--schedule", "cosine"],
            "--schedule constant",
        ),
        (
            vec!["--batch", "all", "--set", "history_size=0"],
            "history_size",
        ),
        (
            vec!["--batch", "all", "--set", "line_search=1"],
            "strong_wolfe",
        ),
    ] {
        let args: Vec<&str> = ["train", "--optimizer", "lbfgs", "--epochs", "1"]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        let out = optdsl(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            !out.status.success() && err.contains(says),
            "{flags:?}: {err}"
        );
    }
}
