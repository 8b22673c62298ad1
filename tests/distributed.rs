//! Data-parallel training under MPI (`--features mpi`; needs Open MPI's
//! `mpirun`): `optdsl train --distributed` on 2 processes, plain and with
//! `--shard-state`, against 1 process on USPS and the slides' network;
//! checkpoints written by 2 sharded processes resumed by 1 and by 3, and one
//! written by 1 resumed by 2; a failing process ends the whole run with its
//! rank and error.

use optdsl::train::TrainerState;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_optdsl");

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optdsl-dist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a run printed and how it ended.
struct Outcome {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` in `cwd`, killing it after 120 s (a hung collective fails the test).
fn run(cwd: &Path, cmd: &mut Command) -> Outcome {
    let mut child = cmd
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("{cmd:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `mpirun -np n` (as root and on fewer cores than processes, as in CI).
fn mpirun(n: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &n.to_string(),
    ]);
    // Containers often forbid the cross-memory attach Open MPI's shared
    // memory transport tries first; copying through shared memory always works.
    c.env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c
}

/// `optdsl train` with `args` on `procs` processes (0: without MPI), saving
/// a checkpoint to `save`; panics unless it succeeds.
fn train(cwd: &Path, procs: usize, args: &[&str], save: &str) -> Outcome {
    let mut cmd = if procs == 0 {
        Command::new(BIN)
    } else {
        let mut c = mpirun(procs);
        c.arg(BIN);
        c
    };
    cmd.arg("train")
        .args(args)
        .args(["--save", save, "--out", "out"]);
    if procs > 0 {
        cmd.arg("--distributed");
    }
    let out = run(cwd, &mut cmd);
    assert!(
        out.ok,
        "{procs} processes, {args:?}: {}\n{}",
        out.stdout, out.stderr
    );
    out
}

/// The largest relative difference between two runs' parameters and between
/// their optimizer states' buffers.
fn rel_diff(a: &Path, b: &Path) -> (f64, f64) {
    let a = TrainerState::<f64>::load(a).unwrap();
    let b = TrainerState::<f64>::load(b).unwrap();
    assert_eq!((a.epoch, a.step), (b.epoch, b.step));
    let rel = |x: &[f64], y: &[f64]| -> f64 {
        assert_eq!(x.len(), y.len());
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs() / p.abs().max(q.abs()).max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max)
    };
    let buffers = |s: &TrainerState<f64>| -> Vec<f64> {
        s.optimizer
            .groups
            .iter()
            .flat_map(|g| &g.states)
            .flat_map(|t| t.buffers.iter().flatten().copied())
            .collect()
    };
    assert_eq!(a.optimizer.lens(), b.optimizer.lens());
    (rel(&a.params, &b.params), rel(&buffers(&a), &buffers(&b)))
}

/// Lines of `text` that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

#[test]
fn two_processes_plain_and_sharded_agree_with_one_in_f64() {
    let d = dir("f64");
    // Adam is element-wise (shards cut tensors), LAMB takes tensor norms
    // (shards keep whole tensors); momentum from PyTorch's generator (every
    // process draws the same init and orders).
    let torch: &[&str] = &["--set", "momentum=0.9", "--rng", "torch", "--init", "torch"];
    for (opt, lr, extra) in [
        ("adam", "lr=0.001", &[][..]),
        ("lamb", "lr=0.01", &[][..]),
        ("sgd", "lr=0.1", torch),
    ] {
        let mut args = vec![
            "--dtype",
            "f64",
            "--epochs",
            "1",
            "--optimizer",
            opt,
            "--set",
            lr,
        ];
        args.extend_from_slice(extra);
        let one = train(&d, 0, &args, "one.ckpt");
        let two = train(&d, 2, &args, "two.ckpt");
        let mut sharded = args.to_vec();
        sharded.push("--shard-state");
        let shard = train(&d, 2, &sharded, "shard.ckpt");
        for (name, out) in [("plain", &two), ("sharded", &shard)] {
            let ckpt = if name == "plain" {
                "two.ckpt"
            } else {
                "shard.ckpt"
            };
            let (params, state) = rel_diff(&d.join("one.ckpt"), &d.join(ckpt));
            println!("{opt} f64, 2 processes {name} vs 1: largest relative difference {params:.1e} in the parameters, {state:.1e} in the optimizer state");
            assert!(
                params < 1e-9,
                "{opt} {name}: parameters differ by {params:e}"
            );
            assert!(
                state < 1e-9,
                "{opt} {name}: optimizer state differs by {state:e}"
            );
            // Only rank 0 prints, and it prints what one process prints.
            assert_eq!(
                lines(&out.stdout, "test accuracy:").len(),
                1,
                "{}",
                out.stdout
            );
            assert_eq!(
                lines(&out.stdout, "test accuracy:"),
                lines(&one.stdout, "test accuracy:")
            );
            assert_eq!(lines(&out.stdout, "data ").len(), 1, "{}", out.stdout);
        }
        assert!(
            shard.stdout.contains("optimizer state sharded"),
            "{}",
            shard.stdout
        );
    }
}

#[test]
fn f32_test_accuracy_after_five_epochs_agrees() {
    let d = dir("f32");
    let args = ["--epochs", "5", "--optimizer", "adam", "--set", "lr=0.001"];
    let accuracy = |out: &Outcome| -> f64 {
        let line = lines(&out.stdout, "test accuracy:")[0];
        line["test accuracy:".len()..].trim().parse().unwrap()
    };
    let one = accuracy(&train(&d, 0, &args, "one.ckpt"));
    let two = accuracy(&train(&d, 2, &args, "two.ckpt"));
    let mut sharded = args.to_vec();
    sharded.push("--shard-state");
    let shard = accuracy(&train(&d, 2, &sharded, "shard.ckpt"));
    println!("adam f32, test accuracy after 5 epochs: 1 process {one}, 2 processes {two}, 2 sharded {shard}");
    assert!(one > 0.85, "one process reached only {one}");
    for (name, acc) in [("plain", two), ("sharded", shard)] {
        assert!(
            (acc - one).abs() <= 0.003,
            "{name}: {acc} on 2 processes, {one} on 1"
        );
    }
}

#[test]
fn a_sharded_checkpoint_resumes_with_one_or_three_processes() {
    let d = dir("resume");
    let base = ["--dtype", "f64", "--optimizer", "adam", "--set", "lr=0.001"];
    let with = |epochs: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend(["--epochs", epochs]);
        v.extend(extra);
        v
    };
    train(&d, 0, &with("2", &[]), "straight.ckpt");
    train(&d, 2, &with("1", &["--shard-state"]), "half.ckpt");
    train(&d, 0, &with("1", &[]), "alone.ckpt");
    train(
        &d,
        2,
        &with("2", &["--resume", "alone.ckpt", "--shard-state"]),
        "alone.ckpt",
    );
    std::fs::copy(d.join("half.ckpt"), d.join("by1.ckpt")).unwrap();
    std::fs::copy(d.join("half.ckpt"), d.join("by3.ckpt")).unwrap();
    let one = train(&d, 0, &with("2", &["--resume", "by1.ckpt"]), "by1.ckpt");
    assert!(
        one.stdout.contains("resumed by1.ckpt at epoch 1, step 228"),
        "{}",
        one.stdout
    );
    train(
        &d,
        3,
        &with("2", &["--resume", "by3.ckpt", "--shard-state"]),
        "by3.ckpt",
    );
    for ckpt in ["by1.ckpt", "by3.ckpt", "alone.ckpt"] {
        let (params, state) = rel_diff(&d.join("straight.ckpt"), &d.join(ckpt));
        println!("adam f64, resumed at epoch 1 ({ckpt}) to epoch 2, vs 1 process straight: {params:.1e} in the parameters, {state:.1e} in the optimizer state");
        assert!(params < 1e-9, "{ckpt}: parameters differ by {params:e}");
        assert!(state < 1e-9, "{ckpt}: optimizer state differs by {state:e}");
    }
}

/// Two ranks of one run, 1 epoch, the second given `extra` arguments too.
fn two_ranks_differing(d: &Path, extra: &[&str]) -> Outcome {
    let mut cmd = mpirun(1);
    cmd.args([
        BIN,
        "train",
        "--epochs",
        "1",
        "--distributed",
        "--out",
        "out",
    ])
    .args([
        ":",
        "-np",
        "1",
        BIN,
        "train",
        "--epochs",
        "1",
        "--distributed",
    ])
    .args(["--out", "out"])
    .args(extra);
    run(d, &mut cmd)
}

#[test]
fn a_failing_process_ends_the_run_with_its_rank_and_error() {
    let d = dir("fail");
    // Rank 1 is given a data file that does not exist; rank 0 would wait for
    // it in the first collective.
    let out = two_ranks_differing(&d, &["--data", "csv:missing.csv"]);
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("error: rank 1 of 2:") && out.stderr.contains("missing.csv"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("test accuracy"), "{}", out.stdout);
    // Processes started with different settings are refused, not trained.
    let out = two_ranks_differing(&d, &["--seed", "5"]);
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("process(es) 1 start from another"),
        "{}",
        out.stderr
    );
}
