//! Checkpoints through `optdsl train`: a resumed run ends byte-identical to an
//! uninterrupted one; damaged or mismatched checkpoints are refused with an
//! error that says "checkpoint", and the file is left untouched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optdsl-ckpt-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train(dir: &Path, extra: &[&str]) -> Output {
    let hidden = if extra.contains(&"--hidden") {
        &[][..]
    } else {
        &["--hidden", "24"][..]
    };
    Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(dir)
        .args(["train", "--data", "semeion", "--optimizer", "adam"])
        .args(hidden)
        .args(["--set", "lr=0.01", "--batch", "64", "--out", "out"])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn err(out: &Output) -> String {
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
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
