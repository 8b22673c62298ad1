//! What the command-line tests share: a fresh scratch directory, a run of the
//! `optdsl` binary in it, and its output as text.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty directory under the system's temp dir, named after the
/// test file (`group`), the process and the test (`name`).
pub fn scratch(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("optdsl-{group}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `optdsl ARGS...` run in `dir` (no backtraces: messages as users see them).
pub fn optdsl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .args(args)
        .output()
        .unwrap()
}

/// `optdsl ARGS...` run in the repository's root (where `tests/golden/` is).
pub fn optdsl_at_root(args: &[&str]) -> Output {
    optdsl(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// The standard output of a run that must succeed (both streams shown if
/// it did not).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The standard error of a run that must fail (both streams shown if it
/// did not).
pub fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "accepted:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

/// Bytes as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `n` numbers in [-1, 1) from an xorshift generator seeded by `seed`, every
/// 29th a zero: the random data the bit-identity tests step rules on.
pub fn data<F: optdsl::Float>(n: usize, seed: u64) -> Vec<F> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            F::from_f64(if i % 29 == 0 { 0.0 } else { 2.0 * u - 1.0 })
        })
        .collect()
}
