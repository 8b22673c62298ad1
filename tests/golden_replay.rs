//! Every fixture in tests/golden (PyTorch, Optax and the slides' `seed-*`
//! formulas) and tests/golden/extra (unseen option combinations) replayed
//! through the built-ins, in the fixture's dtype; and the `optdsl replay` and
//! `optdsl list` commands.

mod common;

use common::optdsl_at_root as optdsl;

use optdsl::replay::{replay, replay_file, Fixture, Outcome};
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

fn replay_all(dir: &str) -> Vec<(String, Outcome)> {
    fixtures(dir)
        .iter()
        .map(|p| {
            let (f, out) = replay_file(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (f.name, out)
        })
        .collect()
}

fn assert_all_pass(results: &[(String, Outcome)]) {
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.1.passed())
        .map(|(n, o)| o.line(n))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_golden_fixture_replays() {
    let results = replay_all("tests/golden");
    assert_eq!(results.len(), 32, "the golden set has 32 fixtures");
    assert_all_pass(&results);
}

#[test]
fn the_slides_formulas_replay_the_seed_fixtures() {
    let results = replay_all("tests/golden");
    let seeds: Vec<&(String, Outcome)> = results
        .iter()
        .filter(|r| r.0.starts_with("seed-"))
        .collect();
    assert_eq!(seeds.len(), 10);
    assert_all_pass(&results);
    let rule = optdsl::builtin_rule("seed-rmsprop-sigma").unwrap();
    let src: String = rule.info().source.split_whitespace().collect();
    assert!(src.contains("statesigma=abs(g)"), "{src}");
}

#[test]
fn every_extra_fixture_replays() {
    let results = replay_all("tests/golden/extra");
    assert!(results.len() >= 30, "{} extra fixtures", results.len());
    assert!(results.iter().any(|r| r.0.ends_with("-f32")));
    assert_all_pass(&results);
}

#[test]
fn a_wrong_reference_fails_at_the_first_bad_value() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/adam.json");
    let mut f = Fixture::load(&path).unwrap();
    f.params[9][4] *= 1.0 + 1e-6;
    match replay(&f).unwrap() {
        Outcome::Fail { step, coord, .. } => assert_eq!((step, coord), (10, 4)),
        other => panic!("{other:?}"),
    }
    // The same trajectory in the other optimizer fails too.
    let mut f = Fixture::load(&path).unwrap();
    f.optimizer = "AdamW".into();
    assert!(!replay(&f).unwrap().passed());
}

#[test]
fn the_replay_command_prints_a_line_per_fixture_and_sets_the_exit_status() {
    let out = optdsl(&[
        "replay",
        "tests/golden/rprop.json",
        "tests/golden/seed-adam.json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("PASS rprop max_rel_err="), "{text}");

    let dir = std::env::temp_dir().join(format!("optdsl-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sgd.json");
    let mut f = Fixture::load(&src).unwrap();
    f.params[2][3] += 0.5;
    let bad = dir.join("bad.json");
    std::fs::write(&bad, serde_json::to_string(&f).unwrap()).unwrap();
    let out = optdsl(&["replay", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("FAIL sgd step=3 coord=3 ours="), "{text}");

    f.optimizer = "Shampoo".into();
    std::fs::write(&bad, serde_json::to_string(&f).unwrap()).unwrap();
    let out = optdsl(&["replay", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("unknown optimizer `Shampoo`") && err.contains("adabelief"),
        "{err}"
    );

    f.optimizer = "SGD".into();
    f.hyper.insert("nesterof".into(), serde_json::json!(true));
    std::fs::write(&bad, serde_json::to_string(&f).unwrap()).unwrap();
    let out = optdsl(&["replay", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("`nesterof`") && err.contains("nesterov"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_list_command_names_every_required_builtin() {
    let out = optdsl(&["list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for want in "sgd momentum nesterov rprop rmsprop adagrad adadelta adam adasecant vsgd \
                 adamw adamax nadam radam asgd lion lamb adabelief noisy_sgd sgld"
        .split_whitespace()
    {
        assert!(names.contains(&want), "`{want}` missing from:\n{text}");
    }
    let adam = text.lines().find(|l| l.starts_with("adam ")).unwrap();
    assert!(adam.contains("lr=0.001") && adam.contains("beta2=0.999") && adam.contains("Kingma"));
    let vsgd = text.lines().find(|l| l.starts_with("vsgd ")).unwrap();
    assert!(vsgd.contains("[input h: curvature]"), "{vsgd}");
    let noisy = text.lines().find(|l| l.starts_with("noisy_sgd ")).unwrap();
    assert!(
        noisy.contains("eta=0.01") && noisy.contains("gamma=0.55"),
        "{noisy}"
    );
}
