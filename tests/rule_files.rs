//! Rule files on the command line: `optdsl check` (one line a rule, or
//! diagnostics at FILE:LINE:COL with a caret, exit 1), `replay --rule` (the
//! eight optax rules of tests/golden/zoo/zoo.opt against optax's
//! trajectories; hyper entries set by name, an unknown one named),
//! `train --rule`, `list --rule` and `bench --rule`.

mod common;

use common::{optdsl, text};

fn dir(name: &str) -> std::path::PathBuf {
    common::scratch("rules", name)
}

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const MOMENTUM: &str = "// Heavy-ball momentum, as a user writes it.
/// Momentum (Polyak 1964).
pub Heavy {
    hyper lr = 0.1, mu = 0.9;
    state v = 0;
    v = mu * v + g;
    w -= lr * v;
}
";

#[test]
fn zoo_rules_replay_optax_trajectories() {
    let zoo = root().join("tests/golden/zoo");
    let mut fixtures: Vec<String> = std::fs::read_dir(&zoo)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.display().to_string())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 16, "{fixtures:?}");
    let rule = zoo.join("zoo.opt").display().to_string();
    let mut args = vec!["replay", "--rule", rule.as_str()];
    args.extend(fixtures.iter().map(String::as_str));
    let out = optdsl(&root(), &args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS")).count(),
        fixtures.len(),
        "{stdout}"
    );
}

#[test]
fn an_unknown_hyper_entry_is_named() {
    let d = dir("unknown-hyper");
    std::fs::write(d.join("heavy.opt"), MOMENTUM).unwrap();
    let fixture = r#"{"name":"h","optimizer":"heavy","hyper":{"lr":0.1,"momentun":0.5},"dtype":"f64",
        "tolerance":{"rel":1e-9,"abs":1e-12},"params0":[1.0],"grads":[[1.0]],"params":[[0.9]]}"#;
    std::fs::write(d.join("h.json"), fixture).unwrap();
    let out = optdsl(&d, &["replay", "--rule", "heavy.opt", "h.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("momentun") && err.contains("lr, mu"), "{err}");
    // Without the bad entry it replays: 1 - 0.1 * 1 = 0.9.
    let good = fixture.replace(",\"momentun\":0.5", "");
    std::fs::write(d.join("h.json"), good).unwrap();
    let out = optdsl(&d, &["replay", "--rule", "heavy.opt", "h.json"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn check_points_at_the_token_with_file_line_and_column() {
    let d = dir("check");
    let bad = "/// Sign descent.\npub SignDescent {\n    hyper lr = 0.01; w -= lr * sgn(g);\n}\n";
    std::fs::write(d.join("bad.opt"), bad).unwrap();
    let out = optdsl(&d, &["check", "bad.opt"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("bad.opt:3:32"), "{err}");
    assert!(err.contains("did you mean `sign`"), "{err}");
    let src = err.lines().find(|l| l.contains("w -= lr")).unwrap();
    let caret = err.lines().find(|l| l.contains('^')).unwrap();
    let at = caret.find('^').unwrap();
    assert_eq!(&src[at..at + 3], "sgn", "{err}");

    std::fs::write(d.join("good.opt"), MOMENTUM).unwrap();
    let out = optdsl(&d, &["check", "good.opt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.starts_with("Heavy hypers: lr=0.1 mu=0.9 state: v"),
        "{line}"
    );
    // One pass reading w, g, v and writing w, v: 5 values of 4 bytes.
    assert!(
        line.contains("passes: 1 bytes/element: 20 (f32) 40 (f64)"),
        "{line}"
    );
}

#[test]
fn train_list_and_bench_take_rule_files() {
    let d = dir("train");
    std::fs::write(d.join("heavy.opt"), MOMENTUM).unwrap();
    let out = optdsl(&d, &["list", "--rule", "heavy.opt"]);
    let listed = text(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("Heavy") && l.contains("file")),
        "{listed}"
    );

    let out = optdsl(
        &d,
        &[
            "train",
            "--rule",
            "heavy.opt",
            "--optimizer",
            "heavy",
            "--epochs",
            "1",
            "--set",
            "lr=0.05",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let acc: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .expect("an accuracy line")
        .trim()
        .parse()
        .unwrap();
    assert!(acc > 0.5, "{stdout}");

    let out = optdsl(
        &d,
        &[
            "bench",
            "--rule",
            "heavy.opt",
            "--n",
            "100000",
            "--reps",
            "3",
            "--naive-reps",
            "1",
        ],
    );
    let line = text(&out.stdout);
    assert!(
        line.lines().any(|l| l.starts_with("Heavy f32 n=100000")),
        "{line}"
    );
    // A file's rule beside a built-in, in one run.
    let out = optdsl(
        &d,
        &[
            "bench",
            "--rule",
            "heavy.opt",
            "--optimizer",
            "heavy,momentum",
            "--n",
            "100000",
            "--reps",
            "3",
            "--naive-reps",
            "0",
        ],
    );
    let lines = text(&out.stdout);
    assert!(lines.lines().any(|l| l.starts_with("heavy f32")), "{lines}");
    assert!(
        lines.lines().any(|l| l.starts_with("momentum f32")),
        "{lines}"
    );
}

#[test]
fn compare_makes_a_row_of_each_rule_named_as_optimizer_names_it() {
    let d = dir("compare");
    std::fs::write(d.join("heavy.opt"), MOMENTUM).unwrap();
    let out = optdsl(
        &d,
        &[
            "compare",
            "--rule",
            "heavy.opt",
            "--only",
            "heavy,sgd",
            "--epochs",
            "1",
            "--out",
            "out",
        ],
    );
    let table = text(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", text(&out.stderr));
    assert!(table.lines().any(|l| l.starts_with("Heavy ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("sgd ")), "{table}");
}
