//! Issue 12's command-line and runtime items: each test runs what broke
//! (huge networks, concurrent or killed saves, unwritable outputs, inputs
//! named as outputs, endless inputs, unclear messages) and checks that the
//! run is refused with an error naming the cause, or completes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory under the system's temp dir.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optdsl-hard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn optdsl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

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
