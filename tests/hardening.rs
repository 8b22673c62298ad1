//! Issue 12's command-line and runtime items: each test runs what broke
//! (huge networks, concurrent or killed saves, unwritable outputs, inputs
//! named as outputs, endless inputs, unclear messages) and checks that the
//! run is refused with an error naming the cause, or completes.

mod common;

use common::{optdsl, text};

fn dir(name: &str) -> std::path::PathBuf {
    common::scratch("hard", name)
}

use std::path::Path;
use std::process::{Command, Output};

/// The standard error of a run that must exit 2 with `error: ...` and no panic.
fn exit_2(out: &Output) -> String {
    let e = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}\n{}{e}",
        out.status,
        text(&out.stdout)
    );
    assert!(e.starts_with("error: "), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// Whether a run printed an epoch's line.
fn trained(out: &Output) -> bool {
    text(&out.stdout).lines().any(|l| l.starts_with("epoch"))
}

/// MemAvailable of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn huge_hidden_layers_are_refused_before_allocating() {
    let d = dir("hidden");
    for hidden in [
        "2305843009213693952",
        "9223372036854775807",
        "18446744073709551615",
        "4294967296,4294967296",
        "1000000,1000000",
    ] {
        for cmd in ["train", "compare"] {
            let out = optdsl(
                &d,
                &[
                    cmd, "--data", "semeion", "--hidden", hidden, "--epochs", "1",
                ],
            );
            let e = exit_2(&out);
            assert!(e.contains("parameters"), "{hidden}: {e}");
            assert!(!d.join("optdsl-out").exists());
        }
    }
    // Counted, but more than the memory: the parameter count and the bytes.
    let out = optdsl(
        &d,
        &["train", "--data", "semeion", "--hidden", "1000000,1000000"],
    );
    let e = exit_2(&out);
    assert!(e.contains("1000268000010 parameters"), "{e}");
    assert!(
        e.contains("bytes") || e.contains("GB") || e.contains("TB"),
        "{e}"
    );
    // The case: about 40 GB in f32 for the parameters alone, and
    // more for gradients and optimizer state.
    let needs = 10_026_800_010u64 * 4 * 3;
    if available_memory().is_some_and(|m| m < needs) {
        let out = optdsl(
            &d,
            &["train", "--hidden", "100000,100000", "--optimizer", "adam"],
        );
        let e = exit_2(&out);
        assert!(e.contains("parameters") && e.contains("available"), "{e}");
    }
}

#[test]
fn the_library_refuses_an_overflowing_or_oversized_spec_with_a_typed_error() {
    use optdsl::net::{Activation, Network, NetworkSpec};
    let spec = NetworkSpec::classifier(256, &[1 << 61], Activation::Sigmoid, 10);
    assert_eq!(spec.checked_param_count(), None);
    let e = spec.validate().unwrap_err().to_string();
    assert!(
        e.contains("more than 18446744073709551615 parameters"),
        "{e}"
    );
    let e = Network::<f32>::new(spec, 0).unwrap_err().to_string();
    assert!(e.contains("parameters"), "{e}");
    let spec = NetworkSpec::classifier(256, &[1_000_000, 1_000_000], Activation::Sigmoid, 10);
    assert_eq!(spec.checked_param_count(), Some(1_000_268_000_010));
    let e = Network::<f64>::zeros(spec).unwrap_err().to_string();
    assert!(
        e.contains("1000268000010 parameters") && e.contains("8.0 TB"),
        "{e}"
    );
}

/// What a save in the concurrency test writes: the thread and round in
/// every element, so a mixed or torn file cannot decode as either.
fn payload(thread: u32, round: u32) -> Vec<u64> {
    vec![u64::from(thread) << 32 | u64::from(round); 2000]
}

#[test]
fn two_threads_saving_one_checkpoint_a_thousand_times_never_fail_or_corrupt_it() {
    use optdsl::checkpoint;
    let d = dir("threads");
    let path = d.join("run.ckpt");
    std::thread::scope(|s| {
        for thread in 0..2u32 {
            let path = &path;
            s.spawn(move || {
                for round in 0..1000u32 {
                    checkpoint::save(path, "test", &payload(thread, round))
                        .unwrap_or_else(|e| panic!("thread {thread}, save {round}: {e}"));
                    let back: Vec<u64> = checkpoint::load(path, "test")
                        .unwrap_or_else(|e| panic!("thread {thread}, load {round}: {e}"));
                    let first = back[0];
                    assert!(back.iter().all(|&x| x == first), "a mixed file");
                    assert!(first >> 32 < 2 && first & 0xffff_ffff < 1000);
                }
            });
        }
    });
    let left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(left, ["run.ckpt"], "no temporary or lock file is left");
}

#[test]
fn a_second_process_saving_the_same_checkpoint_is_refused_naming_the_first() {
    let d = dir("second");
    let path = d.join("run.ckpt");
    let lock = optdsl::checkpoint::lock(&path).unwrap();
    let args = [
        "train", "--data", "semeion", "--hidden", "8", "--epochs", "1", "--save", "run.ckpt",
        "--out", "out",
    ];
    let out = optdsl(&d, &args);
    let e = exit_2(&out);
    // Refused before training, not at the first save.
    assert!(!trained(&out), "{}", text(&out.stdout));
    assert!(
        e.contains(&format!(
            "process {} is writing this checkpoint",
            std::process::id()
        )) && e.contains("run.ckpt.lock"),
        "{e}"
    );
    assert!(!path.exists());
    // Threads of this process share the lock: a save here goes through.
    optdsl::checkpoint::save(&path, "test", &1u8).unwrap();
    drop(lock);
    assert!(!d.join("run.ckpt.lock").exists());
    let out = optdsl(&d, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("checkpoint: run.ckpt"));
    assert!(
        !d.join("run.ckpt.lock").exists(),
        "the lock file is removed"
    );
}

/// The id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn temporaries_of_a_killed_save_are_removed_at_the_next_save() {
    let d = dir("stale");
    let path = d.join("run.ckpt");
    let dead = dead_pid();
    let mine = std::process::id();
    let stale = [
        format!(".run.ckpt.tmp-{dead}-a1b2c3"),
        format!(".run.ckpt.tmp-{dead}"),
    ];
    let kept = [
        // A live process's (this one's) temporary, and another checkpoint's.
        format!(".run.ckpt.tmp-{mine}-zzzzzz"),
        format!(".other.ckpt.tmp-{dead}-a1b2c3"),
    ];
    for name in stale.iter().chain(&kept) {
        std::fs::write(d.join(name), vec![7u8; 1000]).unwrap();
    }
    optdsl::checkpoint::save(&path, "test", &1u8).unwrap();
    for name in &stale {
        assert!(!d.join(name).exists(), "{name} is left");
    }
    for name in &kept {
        assert!(d.join(name).exists(), "{name} was removed");
    }
    // A real kill -9 while the run writes its checkpoint, then a save.
    let args = [
        "train",
        "--data",
        "semeion",
        "--hidden",
        "1500,1500",
        "--epochs",
        "3",
        "--save",
        "big.ckpt",
        "--out",
        "out",
    ];
    let mut caught = false;
    for _ in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_optdsl"))
            .current_dir(&d)
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let prefix = format!(".big.ckpt.tmp-{}-", child.id());
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(120) {
            let writing = std::fs::read_dir(&d).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&prefix)
            });
            if writing {
                child.kill().unwrap(); // SIGKILL
                caught = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        child.wait().unwrap();
        if caught {
            break;
        }
    }
    if caught {
        let temporaries = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with(".big.ckpt.tmp-")
                })
                .count()
        };
        assert_eq!(temporaries(&d), 1, "the killed save left its temporary");
        optdsl::checkpoint::save(&d.join("big.ckpt"), "test", &1u8).unwrap();
        assert_eq!(temporaries(&d), 0, "removed at the next save");
    } else {
        eprintln!("no save was caught in flight; the simulated temporaries above were checked");
    }
}

/// Whether this process runs as root (who may write in read-only directories).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0")
        .unwrap_or(true)
}

#[test]
fn an_out_dir_that_cannot_be_written_is_refused_before_training() {
    let d = dir("out-unwritable");
    std::fs::write(d.join("blocker"), "a file, not a directory").unwrap();
    let mut cases = vec!["blocker/out".to_string()];
    if !is_root() {
        let ro = d.join("read-only");
        std::fs::create_dir(&ro).unwrap();
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
        std::fs::set_permissions(&ro, perms).unwrap();
        cases.push("read-only/out".into());
        cases.push("read-only".into());
    }
    for out in &cases {
        let run = optdsl(
            &d,
            &[
                "train", "--data", "semeion", "--hidden", "8", "--epochs", "3", "--out", out,
            ],
        );
        let e = exit_2(&run);
        assert!(e.contains(out.as_str()) && e.contains("--out"), "{e}");
        assert!(!trained(&run), "{}", text(&run.stdout));
    }
}

#[test]
fn the_result_is_printed_even_when_the_history_cannot_be_written() {
    use std::io::BufRead;
    let d = dir("out-lost");
    let mut child = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&d)
        .args([
            "train", "--data", "semeion", "--hidden", "512,256", "--epochs", "60", "--out", "out",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.starts_with("epoch") && lines.iter().all(|l: &String| !l.starts_with("epoch")) {
            // The output directory goes away during training; a file takes its place.
            let _ = std::fs::remove_dir_all(d.join("out"));
            std::fs::write(d.join("out"), "not a directory").unwrap();
        }
        lines.push(line);
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        lines.iter().any(|l| l.starts_with("epoch  60/60")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("test accuracy: 0.")),
        "{lines:?}\n{err}"
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: ") && err.contains("out"), "{err}");
}

#[test]
fn history_files_are_replaced_whole() {
    let d = dir("out-atomic");
    let args = [
        "train", "--data", "semeion", "--hidden", "8", "--epochs", "1", "--out", "out",
    ];
    for _ in 0..2 {
        let out = optdsl(&d, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let mut names: Vec<String> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["sgd.csv", "sgd.json"], "no temporary is left");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/sgd.json")).unwrap()).unwrap();
    assert_eq!(json["epochs"].as_array().unwrap().len(), 1);
}

/// A small CSV of labelled rows that trains: 60 rows, 4 inputs, 3 classes.
fn small_csv() -> String {
    let mut text = String::new();
    for i in 0..60 {
        let y = i % 3;
        text += &format!("{y},{},{},{},{}\n", y, (i * 7) % 5, 1 + y * 2, i % 2);
    }
    text
}

#[test]
fn an_output_that_is_one_of_the_runs_inputs_is_refused_and_left_unchanged() {
    let d = dir("inputs");
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let data = d.join("digits.csv");
    std::fs::write(&data, small_csv()).unwrap();
    std::fs::write(d.join("out/sgd.csv"), small_csv()).unwrap();
    std::os::unix::fs::symlink(&data, d.join("link.csv")).unwrap();
    let base = ["train", "--hidden", "4", "--epochs", "1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--data", "csv:digits.csv", "--save", "digits.csv"],
            "--save",
        ),
        (
            vec!["--data", "csv:./digits.csv", "--save", "sub/../digits.csv"],
            "--save",
        ),
        (
            vec!["--data", "csv:link.csv", "--save", "digits.csv"],
            "--save",
        ),
        (
            vec!["--data", "csv:digits.csv", "--save", "link.csv"],
            "--save",
        ),
        (vec!["--data", "csv:out/sgd.csv", "--out", "out"], "--out"),
    ];
    for (args, flag) in cases {
        let argv = [&base[..], &args[..]].concat();
        let out = optdsl(&d, &argv);
        let e = exit_2(&out);
        assert!(e.contains(flag) && e.contains("input"), "{argv:?}: {e}");
        assert!(!trained(&out), "{argv:?}");
        assert_eq!(std::fs::read_to_string(&data).unwrap(), small_csv());
        assert_eq!(
            std::fs::read_to_string(d.join("out/sgd.csv")).unwrap(),
            small_csv()
        );
        assert!(std::fs::symlink_metadata(d.join("link.csv"))
            .unwrap()
            .is_symlink());
    }
    // A checkpoint resumed is not overwritten by the history, but may be
    // saved over (the run goes on in it).
    let run = |extra: &[&str]| {
        let argv = [
            &["train", "--data", "csv:digits.csv", "--hidden", "4"][..],
            extra,
        ]
        .concat();
        optdsl(&d, &argv)
    };
    assert!(run(&["--epochs", "1", "--save", "r.ckpt", "--out", "o"])
        .status
        .success());
    let saved = std::fs::read(d.join("r.ckpt")).unwrap();
    std::fs::copy(d.join("r.ckpt"), d.join("o/sgd.json")).unwrap();
    let e = exit_2(&run(&[
        "--epochs",
        "2",
        "--resume",
        "o/sgd.json",
        "--out",
        "o",
    ]));
    assert!(e.contains("--out") && e.contains("input"), "{e}");
    assert_eq!(std::fs::read(d.join("o/sgd.json")).unwrap(), saved);
    let out = run(&[
        "--epochs", "2", "--resume", "r.ckpt", "--save", "r.ckpt", "--out", "o",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(std::fs::read(d.join("r.ckpt")).unwrap(), saved);
}

#[test]
fn compare_refuses_an_out_dir_that_would_overwrite_its_data() {
    let d = dir("compare-inputs");
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out/summary.csv"), small_csv()).unwrap();
    let out = optdsl(
        &d,
        &[
            "compare",
            "--data",
            "csv:out/summary.csv",
            "--only",
            "sgd",
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--out",
            "out",
        ],
    );
    let e = exit_2(&out);
    assert!(e.contains("--out") && e.contains("input"), "{e}");
    assert_eq!(
        std::fs::read_to_string(d.join("out/summary.csv")).unwrap(),
        small_csv()
    );
}

/// Runs `optdsl` with a time limit: `None` if it had to be killed.
fn optdsl_within(dir: &Path, args: &[&str], seconds: u64) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(seconds) {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

#[test]
fn endless_inputs_are_refused_quickly() {
    let d = dir("endless");
    let out = optdsl_within(
        &d,
        &["train", "--data", "csv:/dev/zero", "--epochs", "1"],
        30,
    )
    .expect("csv:/dev/zero ends within 30 s");
    let e = exit_2(&out);
    assert!(
        e.contains("/dev/zero") && e.contains("line 1") && e.contains("longer than"),
        "{e}"
    );
    let out = optdsl_within(
        &d,
        &[
            "train",
            "--data",
            "semeion",
            "--resume",
            "/dev/zero",
            "--epochs",
            "1",
        ],
        30,
    )
    .expect("--resume /dev/zero ends within 30 s");
    let e = exit_2(&out);
    assert!(
        e.contains("/dev/zero") && e.contains("not a regular file"),
        "{e}"
    );
    // A checkpoint that claims more bytes than it holds is refused as
    // truncated before its payload is read.
    let path = d.join("claims.ckpt");
    std::fs::write(
        &path,
        "optdsl-checkpoint 1 trainer-f32 999999999999 0123456789abcdef\n{}",
    )
    .unwrap();
    let e = optdsl::checkpoint::read(&path).unwrap_err().to_string();
    assert!(e.contains("truncated: 2 of 999999999999 bytes"), "{e}");
}

#[test]
fn bench_refuses_zero_threads_and_more_than_it_can_use() {
    let d = dir("threads");
    for threads in ["0", "100000"] {
        let out = optdsl_within(
            &d,
            &[
                "bench",
                "--optimizer",
                "sgd",
                "--n",
                "1000",
                "--reps",
                "1",
                "--naive-reps",
                "0",
                "--threads",
                threads,
            ],
            20,
        )
        .expect("refused within 20 s");
        let e = exit_2(&out);
        assert!(
            e.contains("--threads") && e.contains(threads) && e.contains("at least 1"),
            "{e}"
        );
        assert!(
            !text(&out.stdout).contains("threads="),
            "{}",
            text(&out.stdout)
        );
    }
    let out = optdsl(
        &d,
        &[
            "bench",
            "--optimizer",
            "sgd",
            "--n",
            "1000",
            "--reps",
            "1",
            "--naive-reps",
            "0",
            "--threads",
            "1",
        ],
    );
    assert!(
        text(&out.stdout).contains("threads=1"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_value_beyond_f32_is_named_by_line_and_a_nan_bias_rate_by_group() {
    let d = dir("f32-range");
    let mut rows: Vec<String> = small_csv().lines().map(str::to_string).collect();
    rows[6] = "1,1,1e39,3,0".into();
    std::fs::write(d.join("over.csv"), rows.join("\n") + "\n").unwrap();
    let base = [
        "train",
        "--data",
        "csv:over.csv",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--out",
        "out",
    ];
    let out = optdsl(&d, &base);
    let e = exit_2(&out);
    assert!(
        e.contains("line 7, field 3")
            && e.contains("1e39")
            && e.contains("f32")
            && e.contains("--dtype f64")
            && e.contains("--scale")
            && !e.contains("learning rate"),
        "{e}"
    );
    assert!(!trained(&out));
    // In f64 it trains.
    let out = optdsl(&d, &[&base[..], &["--dtype", "f64"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A rate that is not a number, given to the biases only, is named with
    // its group, not blamed on the weights' rate.
    let out = optdsl(
        &d,
        &[
            "train",
            "--data",
            "semeion",
            "--hidden",
            "4",
            "--epochs",
            "2",
            "--bias-set",
            "lr=nan",
            "--out",
            "out",
        ],
    );
    let e = exit_2(&out);
    assert!(
        e.contains("biases") && e.contains("lr") && e.contains("NaN") && !e.contains("0.5"),
        "{e}"
    );
}

#[test]
fn a_diverging_run_ends_with_a_warning_saying_what_to_change() {
    let d = dir("diverge");
    for optimizer in ["sgd", "adam", "rprop"] {
        let out = optdsl(
            &d,
            &[
                "train",
                "--data",
                "semeion",
                "--hidden",
                "16",
                "--epochs",
                "3",
                "--optimizer",
                optimizer,
                "--set",
                "lr=1e6",
                "--out",
                "out",
            ],
        );
        let e = text(&out.stderr);
        assert!(out.status.success(), "{e}");
        assert!(
            e.contains("warning: training diverged")
                && e.contains("lower the learning rate")
                && e.contains("lr=1e6"),
            "{optimizer}: {e}"
        );
        assert!(text(&out.stdout).contains("test accuracy:"));
    }
    // A run that learns is not warned about.
    let out = optdsl(
        &d,
        &[
            "train", "--data", "semeion", "--hidden", "16", "--epochs", "3", "--out", "out",
        ],
    );
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_byte_order_mark_and_a_header_of_numeric_names_are_read_as_such() {
    let d = dir("bom-header");
    let body = small_csv();
    // A UTF-8 byte-order mark before a header line.
    std::fs::write(d.join("bom.csv"), format!("\u{feff}label,a,b,c,d\n{body}")).unwrap();
    // A header whose column names are numbers but for the label's.
    std::fs::write(d.join("named.csv"), format!("label,0,1,2,3\n{body}")).unwrap();
    // A byte-order mark before the first data row.
    std::fs::write(d.join("bom-data.csv"), format!("\u{feff}{body}")).unwrap();
    for file in ["bom.csv", "named.csv", "bom-data.csv"] {
        let data = format!("csv:{file}");
        let out = optdsl(
            &d,
            &[
                "train", "--data", &data, "--hidden", "4", "--epochs", "1", "--out", "out",
            ],
        );
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("48 train / 12 test rows of 4 inputs, 3 classes"),
            "{file}: {}",
            text(&out.stdout)
        );
    }
    // A bad label further down is still named, without an invisible mark.
    let mut rows: Vec<&str> = body.lines().collect();
    rows[1] = "q,1,2,3,4";
    std::fs::write(d.join("bad.csv"), format!("\u{feff}{}\n", rows.join("\n"))).unwrap();
    let out = optdsl(
        &d,
        &[
            "train",
            "--data",
            "csv:bad.csv",
            "--hidden",
            "4",
            "--epochs",
            "1",
        ],
    );
    let e = exit_2(&out);
    assert!(e.contains("line 2, field 1") && e.contains("`q`"), "{e}");
    assert!(!e.contains('\u{feff}'), "{e:?}");
}

#[test]
fn resuming_with_another_init_says_that_the_init_differs() {
    let d = dir("init-differs");
    let base = [
        "train", "--data", "semeion", "--hidden", "8", "--out", "out",
    ];
    let out = optdsl(
        &d,
        &[&base[..], &["--epochs", "1", "--save", "r.ckpt"]].concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = optdsl(
        &d,
        &[
            &base[..],
            &["--epochs", "2", "--resume", "r.ckpt", "--init", "torch"],
        ]
        .concat(),
    );
    let e = exit_2(&out);
    assert!(
        e.contains("init") && e.contains("torch") && e.contains("auto"),
        "{e}"
    );
}

#[test]
fn saving_to_a_directory_says_so_and_asks_for_a_file_name() {
    let d = dir("save-dir");
    std::fs::create_dir(d.join("ckpts")).unwrap();
    for save in ["ckpts/", "ckpts", "new/"] {
        let out = optdsl(
            &d,
            &[
                "train", "--data", "semeion", "--hidden", "8", "--epochs", "1", "--save", save,
                "--out", "out",
            ],
        );
        let e = exit_2(&out);
        assert!(
            e.contains("--save") && e.contains("directory") && e.contains("file name"),
            "{save}: {e}"
        );
        assert!(!trained(&out), "{save}");
    }
    let e = optdsl::checkpoint::save(&d.join("ckpts"), "test", &1u8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a directory"), "{e}");
}

#[test]
fn a_misspelt_optimizer_or_hyperparameter_gets_a_suggestion() {
    let d = dir("did-you-mean");
    let e = exit_2(&optdsl(
        &d,
        &["train", "--optimizer", "adma", "--epochs", "1"],
    ));
    assert!(e.contains("did you mean adam?"), "{e}");
    let e = exit_2(&optdsl(
        &d,
        &[
            "train",
            "--optimizer",
            "adam",
            "--set",
            "betta1=0.8",
            "--epochs",
            "1",
        ],
    ));
    assert!(e.contains("did you mean beta1?"), "{e}");
    let e = exit_2(&optdsl(
        &d,
        &["train", "--optimizer", "zzzzzz", "--epochs", "1"],
    ));
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn flags_are_checked_before_the_data_is_read() {
    let d = dir("flags-first");
    // The data file does not exist: an error about a flag shows it was
    // checked before the data was looked at.
    for (flag, value, says) in [
        ("--activation", "sigmoud", "activation"),
        ("--optimizer", "adma", "adam"),
        ("--init", "foo", "init"),
        ("--loss", "hinge", "loss"),
        ("--batch", "0", "batch"),
        ("--schedule", "bogus", "schedule"),
        ("--rng", "mt", "rng"),
        ("--dtype", "f16", "dtype"),
        ("--hidden", "8,x", "hidden"),
        ("--set", "lr", "--set"),
        ("--bias-set", "lr=abc", "--set"),
        ("--label", "middle", "label"),
        ("--scale", "0", "scale"),
        ("--test-fraction", "1.5", "test fraction"),
    ] {
        let out = optdsl(
            &d,
            &[
                "train",
                "--data",
                "csv:missing.csv",
                "--epochs",
                "1",
                flag,
                value,
            ],
        );
        let e = exit_2(&out);
        assert!(
            e.contains(says) && !e.contains("missing.csv"),
            "{flag} {value}: {e}"
        );
    }
}

#[test]
fn control_bytes_of_a_damaged_checkpoint_are_not_echoed_to_the_terminal() {
    let d = dir("control-bytes");
    std::fs::write(
        d.join("evil.ckpt"),
        b"optdsl-checkpoint 1 \x1b[2J\x1b]0;owned\x07trainer-f32 2 0000000000000000\n{}",
    )
    .unwrap();
    let out = optdsl(
        &d,
        &[
            "train",
            "--data",
            "semeion",
            "--epochs",
            "1",
            "--resume",
            "evil.ckpt",
        ],
    );
    let e = exit_2(&out);
    assert!(!e.bytes().any(|b| b == 0x1b || b == 0x07), "{e:?}");
    assert!(e.contains("\\u{1b}[2J"), "{e}");
}

/// Trains the course's network in f32 on USPS with `optimizer` for
/// `epochs` epochs (compare's settings for it), from --init torch.
fn trained_f32(
    optimizer: &str,
    epochs: usize,
) -> (optdsl::train::Trainer<f32>, optdsl::data::Split) {
    use optdsl::net::{Activation, Init, Network, NetworkSpec};
    use optdsl::train::{Silent, TrainConfig, Trainer};
    let data = optdsl::data::usps().unwrap();
    let mut spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    spec.layers
        .iter_mut()
        .for_each(|l| l.init = Some(Init::Torch));
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut rule = optdsl::builtin_rule(optimizer).unwrap();
    if optimizer == "vsgd" {
        for (k, v) in [("c", 2.0), ("hmin", 2.0), ("tau0", 10.0)] {
            rule.set_hyper(k, optdsl::HyperValue::Num(v)).unwrap();
        }
    } else {
        rule.set_hyper("lr", optdsl::HyperValue::Num(0.5)).unwrap();
    }
    let config = TrainConfig {
        epochs,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, rule, config).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    (t, data)
}

#[test]
fn the_f32_curvature_pass_keeps_subnormal_numbers_out() {
    use optdsl::net::Workspace;
    let (trainer, data) = trained_f32("vsgd", 12);
    let net = trainer.network();
    // For the record: the rule's own state (its step is compiled code,
    // outside this pass) holds subnormal numbers too.
    let state = trainer.optimizer().state();
    let held: usize = state
        .groups
        .iter()
        .flat_map(|g| &g.states)
        .flat_map(|s| &s.buffers)
        .map(|b| b.iter().filter(|v| v.is_subnormal()).count())
        .sum();
    eprintln!("subnormal numbers in vsgd's state after 12 epochs: {held}");
    let mut ws = Workspace::new(net, 32);
    let mut h = vec![0.0f32; net.params().len()];
    let mut g2 = vec![0.0f32; net.params().len()];
    let (mut subnormal, mut positive) = ([0usize; 2], [0usize; 2]);
    let order: Vec<usize> = (0..data.train.len()).collect();
    for batch in order.chunks(32) {
        let rows = ws.stage_rows(&data.train, batch);
        // The curvature and, in the same pass, the squared per-row gradients
        // (vsgd_mb's inputs).
        net.staged_loss_grad_with(&mut ws, rows, Some(&mut h), Some(&mut g2))
            .unwrap();
        for (k, buf) in [&h, &g2].into_iter().enumerate() {
            subnormal[k] += buf.iter().filter(|v| v.is_subnormal()).count();
            positive[k] += buf.iter().filter(|v| **v > 0.0).count();
            assert!(buf.iter().all(|v| *v >= 0.0 && v.is_finite()));
        }
    }
    assert_eq!(
        subnormal,
        [0, 0],
        "subnormal curvatures and squares ({positive:?} positive)"
    );
    assert!(positive.iter().all(|&p| p > 0));
}

/// Momentum with one gradient and then zero gradients: the buffer decays
/// by 0.9 a step into f32's subnormal range (below 1.2e-38 from step ~830)
/// and stays there, at 4 x 2^-149 = 5.6e-45, a fixed point of `v <- 0.9 v`
/// rounded to nearest (as in PyTorch, which does not flush subnormals by
/// default). Returns the seconds of each window of 100 steps, and the
/// buffer at the end.
fn momentum_decay_windows(steps: usize) -> (Vec<f64>, Vec<f32>) {
    let n = 1 << 18;
    let mut rule = optdsl::builtin_rule("sgd").unwrap();
    rule.set_hyper("momentum", optdsl::HyperValue::Num(0.9))
        .unwrap();
    rule.set_hyper("lr", optdsl::HyperValue::Num(1e-3)).unwrap();
    let mut opt = optdsl::Optimizer::<f32>::with_rule(rule, &[n]);
    let mut w = vec![1.0f32; n];
    opt.step_flat(&mut w, &vec![1.0f32; n]).unwrap();
    let zeros = vec![0.0f32; n];
    let mut windows = Vec::new();
    for _ in 0..steps / 100 {
        let start = std::time::Instant::now();
        for _ in 0..100 {
            opt.step_flat(&mut w, &zeros).unwrap();
        }
        windows.push(start.elapsed().as_secs_f64());
    }
    let state = opt.state();
    (windows, state.groups[0].states[0].buffers[0].clone())
}

/// A timing (run with --ignored on a quiet machine): the median time of 100
/// zero-gradient momentum steps with the buffer subnormal (steps 1001 to
/// 3000) is at most 3 times the median with it normal (steps 101 to 800).
#[test]
#[ignore]
fn momentum_with_zero_gradients_does_not_slow_down() {
    let (windows, buffer) = momentum_decay_windows(3000);
    assert!(
        buffer.iter().all(|v| v.is_subnormal()),
        "{:?}",
        &buffer[..4]
    );
    let median = |w: &[f64]| {
        let mut w = w.to_vec();
        w.sort_by(f64::total_cmp);
        w[w.len() / 2]
    };
    let (normal, subnormal) = (median(&windows[1..8]), median(&windows[10..]));
    let ms: Vec<String> = windows.iter().map(|s| format!("{:.1}", s * 1e3)).collect();
    eprintln!(
        "ms per 100 steps: {}; median normal {:.2}, subnormal {:.2}",
        ms.join(" "),
        normal * 1e3,
        subnormal * 1e3
    );
    assert!(subnormal <= 3.0 * normal, "{subnormal} vs {normal}");
}

#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::process::{Command, Stdio};
    // `optdsl list | head -0`: the reader is gone before the first line
    // (closed right after the spawn, before the program has started up).
    let mut child = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .args(["list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "{err}");
}
