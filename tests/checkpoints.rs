//! Checkpoints through `optdsl train`: a resumed run ends byte-identical to an
//! uninterrupted one; damaged or mismatched checkpoints are refused with an
//! error that says "checkpoint", and the file is left untouched.

mod common;

use common::{ok, refused as err};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dir(name: &str) -> PathBuf {
    common::scratch("ckpt", name)
}

fn train(dir: &Path, extra: &[&str]) -> Output {
    let hidden = if extra.contains(&"--hidden") {
        &[][..]
    } else {
        &["--hidden", "24"][..]
    };
    let mut args = vec!["train", "--data", "semeion", "--optimizer", "adam"];
    args.extend(hidden);
    args.extend(["--set", "lr=0.01", "--batch", "64", "--out", "out"]);
    args.extend(extra);
    common::optdsl(dir, &args)
}

#[test]
fn a_resumed_run_ends_byte_identical() {
    let d = dir("resume");
    let a = ok(&train(&d, &["--epochs", "3", "--save", "a"]));
    ok(&train(&d, &["--epochs", "2", "--save", "b"]));
    let c = ok(&train(
        &d,
        &["--epochs", "3", "--resume", "b", "--save", "c"],
    ));
    assert!(c.contains("resumed b at epoch 2"), "{c}");
    assert_eq!(
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("c")).unwrap()
    );
    let last = |s: &str| s.lines().last().unwrap().to_string();
    assert_eq!(last(&a), last(&c));
    assert!(last(&a).starts_with("test accuracy: 0."));
}

#[test]
fn resumed_vsgd_runs_end_byte_identical() {
    // Rules whose inputs the trainer computes with the gradient: bbprop's
    // curvature (vsgd), and with it the squared per-row gradients and the
    // row count (vsgd_mb, whose first 10 steps are its slow start).
    for optimizer in ["vsgd", "vsgd_mb"] {
        let d = dir(optimizer);
        let run = |extra: &[&str]| {
            ok(&Command::new(env!("CARGO_BIN_EXE_optdsl"))
                .current_dir(&d)
                .args(["train", "--data", "semeion", "--optimizer", optimizer])
                .args(["--hidden", "24", "--batch", "64", "--out", "out"])
                .args(extra)
                .output()
                .unwrap())
        };
        let a = run(&["--epochs", "3", "--save", "a"]);
        run(&["--epochs", "2", "--save", "b"]);
        let c = run(&["--epochs", "3", "--resume", "b", "--save", "c"]);
        assert!(c.contains("resumed b at epoch 2"), "{c}");
        assert_eq!(
            std::fs::read(d.join("a")).unwrap(),
            std::fs::read(d.join("c")).unwrap(),
            "{optimizer}"
        );
        let last = |s: &str| s.lines().last().unwrap().to_string();
        assert_eq!(last(&a), last(&c), "{optimizer}");
    }
}

#[test]
fn resumed_runs_of_rules_that_draw_end_byte_identical() {
    // noisy_sgd and sgld draw a normal number per element and step, keyed
    // by --seed: the resumed run draws what the uninterrupted one drew.
    for optimizer in ["noisy_sgd", "sgld"] {
        let d = dir(optimizer);
        let run = |extra: &[&str]| {
            ok(&Command::new(env!("CARGO_BIN_EXE_optdsl"))
                .current_dir(&d)
                .args(["train", "--data", "semeion", "--optimizer", optimizer])
                .args(["--hidden", "24", "--batch", "64", "--out", "out"])
                .args(["--set", "lr=0.01", "--seed", "7"])
                .args(extra)
                .output()
                .unwrap())
        };
        let a = run(&["--epochs", "3", "--save", "a"]);
        run(&["--epochs", "2", "--save", "b"]);
        let c = run(&["--epochs", "3", "--resume", "b", "--save", "c"]);
        assert!(c.contains("resumed b at epoch 2"), "{c}");
        assert_eq!(
            std::fs::read(d.join("a")).unwrap(),
            std::fs::read(d.join("c")).unwrap(),
            "{optimizer}"
        );
        let last = |s: &str| s.lines().last().unwrap().to_string();
        assert_eq!(last(&a), last(&c), "{optimizer}");
    }
}

#[test]
fn a_resumed_run_with_the_torch_generator_ends_byte_identical() {
    let d = dir("resume-torch");
    let torch = ["--rng", "torch", "--init", "torch"];
    ok(&train(
        &d,
        &[&torch[..], &["--epochs", "3", "--save", "a"]].concat(),
    ));
    ok(&train(
        &d,
        &[&torch[..], &["--epochs", "2", "--save", "b"]].concat(),
    ));
    ok(&train(
        &d,
        &[
            &torch[..],
            &["--epochs", "3", "--resume", "b", "--save", "c"],
        ]
        .concat(),
    ));
    let (a, c) = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("c")).unwrap(),
    );
    assert_eq!(a, c);
    assert!(String::from_utf8_lossy(&a).contains("torch_rng"));
    // A run asking for the other generator is told so, and b is kept.
    let before = std::fs::read(d.join("b")).unwrap();
    let e = err(&train(
        &d,
        &["--epochs", "3", "--resume", "b", "--init", "torch"],
    ));
    assert!(e.contains("checkpoint") && e.contains("--rng torch"), "{e}");
    assert_eq!(std::fs::read(d.join("b")).unwrap(), before);
}

#[test]
fn damaged_or_mismatched_checkpoints_are_refused_and_kept() {
    let d = dir("damaged");
    ok(&train(&d, &["--epochs", "1", "--save", "good"]));
    let good = std::fs::read(d.join("good")).unwrap();
    // Half the file.
    std::fs::write(d.join("half"), &good[..good.len() / 2]).unwrap();
    let e = err(&train(&d, &["--epochs", "2", "--resume", "half"]));
    assert!(e.contains("checkpoint") && e.contains("truncated"), "{e}");
    assert_eq!(
        std::fs::read(d.join("half")).unwrap(),
        &good[..good.len() / 2]
    );
    // One byte changed.
    let mut bad = good.clone();
    let k = bad.len() - 10;
    bad[k] ^= 1;
    std::fs::write(d.join("flipped"), &bad).unwrap();
    let e = err(&train(&d, &["--epochs", "2", "--resume", "flipped"]));
    assert!(e.contains("checkpoint") && e.contains("corrupt"), "{e}");
    // Another network shape, another optimizer, another element type.
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "good", "--hidden", "32"],
    ));
    assert!(e.contains("checkpoint") && e.contains("network"), "{e}");
    let e = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&d)
        .args([
            "train",
            "--data",
            "semeion",
            "--hidden",
            "24",
            "--optimizer",
            "sgd",
            "--batch",
            "64",
        ])
        .args(["--epochs", "2", "--resume", "good", "--out", "out"])
        .output()
        .unwrap();
    let e = err(&e);
    assert!(e.contains("checkpoint") && e.contains("Adam"), "{e}");
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "good", "--dtype", "f64"],
    ));
    assert!(e.contains("checkpoint") && e.contains("trainer-f32"), "{e}");
    let e = err(&train(&d, &["--epochs", "1", "--resume", "good"]));
    assert!(
        e.contains("checkpoint") && e.contains("epoch 1 already"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(d.join("good")).unwrap(),
        good,
        "never touched"
    );
}

#[test]
fn a_resume_with_other_hyperparameters_is_refused_and_kept() {
    let d = dir("hypers");
    ok(&train(&d, &["--epochs", "1", "--save", "a"]));
    let before = std::fs::read(d.join("a")).unwrap();
    // The saved run has lr=0.01 (train() sets it); a later --set wins over it.
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "a", "--set", "lr=0.5"],
    ));
    assert!(
        e.contains("checkpoint a")
            && e.contains("made with lr=0.01")
            && e.contains("asks for lr=0.5")
            && e.contains("repeat the run's flags"),
        "{e}"
    );
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "a", "--set", "beta2=0.99"],
    ));
    assert!(
        e.contains("beta2=0.999") && e.contains("beta2=0.99;"),
        "{e}"
    );
    let e = err(&train(
        &d,
        &[
            "--epochs",
            "2",
            "--resume",
            "a",
            "--bias-set",
            "weight_decay=0.1",
        ],
    ));
    assert!(
        e.contains("for the biases") && e.contains("--bias-set weight_decay=0"),
        "{e}"
    );
    assert_eq!(std::fs::read(d.join("a")).unwrap(), before, "never touched");
    // The same flags resume.
    ok(&train(&d, &["--epochs", "2", "--resume", "a"]));
}

#[test]
fn a_resume_with_other_state_storage_is_refused_and_kept() {
    // Saved with q8 state down to the smallest tensor; a resume that would
    // keep any tensor's state otherwise (another --state, the default
    // minimum size, stochastic rounding) is refused, the file untouched.
    let d = dir("storage");
    let q8 = ["--state", "q8", "--state-min-size", "0"];
    let mut save = vec!["--epochs", "1", "--save", "a"];
    save.extend(q8);
    ok(&train(&d, &save));
    let before = std::fs::read(d.join("a")).unwrap();
    let resume = ["--epochs", "2", "--resume", "a"];
    for (extra, saved, asked) in [
        (&[][..], "in q8", "keep it in f32"),
        (&["--state", "bf16"][..], "in q8", "keep it in bf16"),
        (
            &["--state", "q8"][..],
            "tensor 1 of the weights (240 elements) in q8",
            "keep it in f32",
        ),
    ] {
        let mut args = resume.to_vec();
        args.extend(extra);
        let e = err(&train(&d, &args));
        assert!(
            e.contains("checkpoint a")
                && e.contains(saved)
                && e.contains(asked)
                && e.contains("repeat the run's --state, --state-min-size"),
            "{extra:?}: {e}"
        );
    }
    assert_eq!(std::fs::read(d.join("a")).unwrap(), before, "never touched");
    // Stochastic rounding is part of the storage too.
    ok(&train(
        &d,
        &[
            "--epochs",
            "1",
            "--save",
            "b",
            "--state",
            "bf16",
            "--stochastic-rounding",
        ],
    ));
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "b", "--state", "bf16"],
    ));
    assert!(
        e.contains("in bf16 rounded stochastically") && e.contains("keep it in bf16;"),
        "{e}"
    );
    // It rounds bf16 state only: refused where no buffer is bf16, taken
    // where a rule declares one.
    let e = err(&train(&d, &["--epochs", "1", "--stochastic-rounding"]));
    assert!(
        e.contains("--stochastic-rounding") && e.contains("--state bf16"),
        "{e}"
    );
    std::fs::write(
        d.join("bf16.rule"),
        "Ema {\n    hyper lr = 1e-2;\n    state m: bf16 = 0;\n    m = 0.9 * m + 0.1 * g;\n    w -= lr * m;\n}\n",
    )
    .unwrap();
    let declared = [
        "train",
        "--data",
        "semeion",
        "--rule",
        "bf16.rule",
        "--optimizer",
        "Ema",
        "--epochs",
        "1",
        "--out",
        "out",
        "--stochastic-rounding",
    ];
    let out = ok(&common::optdsl(&d, &declared));
    assert!(out.contains("bf16 rounded stochastically"), "{out}");
    // The same flags resume.
    let mut args = resume.to_vec();
    args.extend(q8);
    ok(&train(&d, &args));
}

#[test]
fn a_resume_on_other_data_of_the_same_shape_is_refused() {
    let d = dir("data");
    ok(&train(&d, &["--epochs", "1", "--save", "a"]));
    let before = std::fs::read(d.join("a")).unwrap();
    let text = String::from_utf8_lossy(&before).to_string();
    assert!(text.contains("\"train_data\""), "the fingerprint is saved");
    // USPS has Semeion's width and classes.
    let usps = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&d)
        .args([
            "train",
            "--data",
            "usps",
            "--optimizer",
            "adam",
            "--hidden",
            "24",
        ])
        .args(["--set", "lr=0.01", "--batch", "64", "--out", "out"])
        .args(["--epochs", "2", "--resume", "a"])
        .output()
        .unwrap();
    let e = err(&usps);
    assert!(
        e.contains("semeion (train split) (1274 rows")
            && e.contains("usps.train (7291 rows")
            && e.contains("the data it started with"),
        "{e}"
    );
    // Another split of Semeion (another test fraction): the same size of
    // rows, other rows.
    let e = err(&train(
        &d,
        &["--epochs", "2", "--resume", "a", "--test-fraction", "0.3"],
    ));
    assert!(e.contains("this run was trained on"), "{e}");
    assert_eq!(std::fs::read(d.join("a")).unwrap(), before, "never touched");
}

#[test]
fn a_checkpoint_without_a_data_fingerprint_still_resumes() {
    use optdsl::train::TrainerState;
    let d = dir("old");
    ok(&train(&d, &["--epochs", "2", "--save", "a"]));
    ok(&train(&d, &["--epochs", "1", "--save", "b"]));
    // b as a build without the fingerprint wrote it.
    let mut old = TrainerState::<f32>::load(&d.join("b")).unwrap();
    assert!(old.train_data.is_some());
    old.train_data = None;
    old.save(&d.join("b")).unwrap();
    assert!(!String::from_utf8_lossy(&std::fs::read(d.join("b")).unwrap()).contains("train_data"));
    ok(&train(
        &d,
        &["--epochs", "2", "--resume", "b", "--save", "c"],
    ));
    // The resumed run records the fingerprint again: the same file as a.
    assert_eq!(
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("c")).unwrap()
    );
}
