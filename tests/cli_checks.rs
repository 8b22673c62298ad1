//! The command line refuses what cannot work before it trains, and says
//! what to give: zero batches, seeds or epochs for `compare`, `--check` for a
//! run that does not start where PyTorch's did, an unknown `--init`, a
//! softmax hidden layer, a CSV file that is missing or whose labels are all
//! one class; it warns about an unknown `OPTDSL_SIMD`; rules without a
//! learning rate print `lr -`; and `train` starts each optimizer from the
//! settings `compare` uses for it.

mod common;

use common::{ok, optdsl, refused, text};

fn dir(name: &str) -> std::path::PathBuf {
    common::scratch("cli", name)
}

use optdsl::net::{Activation, NetworkSpec};
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{optimizer, Error};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn compare_refuses_zero_batches_seeds_or_epochs_before_training() {
    let d = dir("zero");
    for (flag, says) in [
        ("--batch", "rows per mini-batch"),
        ("--seeds", "runs per row"),
        ("--epochs", "passes over the training set"),
    ] {
        let start = Instant::now();
        let out = optdsl(&d, &["compare", "--only", "sgd", flag, "0", "--out", "out"]);
        let e = refused(&out);
        assert!(
            e.contains(&format!("invalid {flag}: 0; give at least 1")) && e.contains(says),
            "{e}"
        );
        assert!(!e.contains("panicked"), "{e}");
        // Refused up front: no row ran, no table was written.
        assert!(
            !text(&out.stdout).contains("test accuracy"),
            "{}",
            text(&out.stdout)
        );
        assert!(!d.join("out").exists());
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn compare_check_is_refused_for_a_run_that_starts_elsewhere() {
    let d = dir("check");
    for (args, names) in [
        (&["--seeds", "10"][..], "--seeds 10"),
        (&["--init", "auto"][..], "--init auto"),
        (&["--rng", "chacha8"][..], "--rng chacha8"),
        (&["--seed", "3"][..], "--seed 3"),
        (&["--data", "semeion", "--epochs", "2"][..], "--epochs 2"),
    ] {
        let mut argv = vec!["compare", "--check", "--only", "sgd", "--out", "out"];
        argv.extend_from_slice(args);
        let out = optdsl(&d, &argv);
        let e = refused(&out);
        assert!(
            e.contains("invalid --check")
                && e.contains("--init torch --rng torch --seed 0 --seeds 1")
                && e.contains(names),
            "{args:?}: {e}"
        );
        assert!(
            !text(&out.stdout).contains("test accuracy"),
            "{}",
            text(&out.stdout)
        );
    }
    // Without --check the same start runs, with the PyTorch column's note.
    let out = ok(&optdsl(
        &d,
        &[
            "compare", "--only", "sgd", "--seed", "3", "--epochs", "20", "--out", "out",
        ],
    ));
    assert!(
        out.contains("PyTorch's accuracies are single runs from torch.manual_seed(0)"),
        "{out}"
    );
    assert!(out.contains("0.931"), "{out}");
}

#[test]
fn an_unknown_init_lists_every_choice_auto_included() {
    let d = dir("init");
    for cmd in ["train", "compare"] {
        let e = refused(&optdsl(&d, &[cmd, "--init", "foo", "--epochs", "1"]));
        assert!(e.contains("`foo`; use auto, xavier, he or torch"), "{e}");
    }
}

#[test]
fn a_softmax_hidden_layer_is_refused_as_network_does() {
    let d = dir("softmax");
    let e = refused(&optdsl(
        &d,
        &["train", "--activation", "softmax", "--epochs", "1"],
    ));
    assert!(
        e.contains("softmax normalizes the output: only the last layer can have it"),
        "{e}"
    );
    let mut spec = NetworkSpec::classifier(4, &[3, 3], Activation::Identity, 2);
    spec.validate().unwrap();
    spec.layers[1].activation = Activation::Softmax;
    let e = spec.validate().unwrap_err().to_string();
    assert!(e.contains("layer 2 is softmax"), "{e}");
}

#[test]
fn a_missing_csv_file_is_a_data_error_naming_it() {
    let d = dir("missing");
    let missing = d.join("nonexistent.csv");
    let data = format!("csv:{}", missing.display());
    let e = refused(&optdsl(&d, &["train", "--data", &data, "--epochs", "1"]));
    assert!(
        e.starts_with(&format!(
            "error: data {}: cannot read the file: ",
            missing.display()
        )) && e.contains("csv:"),
        "{e}"
    );
}

#[test]
fn a_csv_whose_labels_are_all_one_class_is_refused_suggesting_the_other_column() {
    let d = dir("one-label");
    // Like scikit-learn's 8x8 digits: the first pixel is 0 in every row, the
    // label last.
    let mut text = String::new();
    for i in 0..40 {
        let pixels: Vec<String> = (0..6).map(|j| ((i * 7 + j * 3) % 16).to_string()).collect();
        text += &format!("0,{},{}\n", pixels.join(","), i % 4);
    }
    let path = d.join("digits.csv");
    std::fs::write(&path, text).unwrap();
    let data = format!("csv:{}", path.display());
    let e = refused(&optdsl(&d, &["train", "--data", &data, "--epochs", "1"]));
    assert!(
        e.contains("every row's label is 0") && e.contains("give --label last"),
        "{e}"
    );
    // With the label where it is, it trains.
    ok(&optdsl(
        &d,
        &[
            "train", "--data", &data, "--label", "last", "--epochs", "1", "--hidden", "4", "--out",
            "out",
        ],
    ));
    // And the other way round.
    let mut text = String::new();
    for i in 0..40 {
        text += &format!("{},{},2\n", i % 3, i % 5);
    }
    std::fs::write(&path, text).unwrap();
    let e = refused(&optdsl(
        &d,
        &["train", "--data", &data, "--label", "last", "--epochs", "1"],
    ));
    assert!(
        e.contains("every row's label is 2") && e.contains("give --label first"),
        "{e}"
    );
}

#[test]
fn an_unknown_optdsl_simd_is_warned_about_once() {
    let d = dir("simd");
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&d)
        .env("OPTDSL_SIMD", "avx9000")
        .args([
            "train", "--data", "semeion", "--hidden", "8", "--epochs", "2", "--out", "out",
        ])
        .output()
        .unwrap();
    ok(&out);
    let warnings: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.contains("OPTDSL_SIMD"))
        .map(str::to_string)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`avx9000`") && warnings[0].contains("portable, avx2, avx512"),
        "{warnings:?}"
    );
    // An accepted value is not warned about.
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&d)
        .env("OPTDSL_SIMD", "portable")
        .args([
            "train", "--data", "semeion", "--hidden", "8", "--epochs", "1", "--out", "out",
        ])
        .output()
        .unwrap();
    ok(&out);
    assert!(
        !text(&out.stderr).contains("OPTDSL_SIMD"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_rule_without_a_learning_rate_prints_lr_dash_and_its_checkpoint_resumes() {
    let d = dir("vsgd");
    let base = [
        "train",
        "--data",
        "semeion",
        "--hidden",
        "16",
        "--optimizer",
        "vsgd",
        "--out",
        "out",
    ];
    let first = ok(&optdsl(
        &d,
        &[&base[..], &["--epochs", "1", "--save", "v"]].concat(),
    ));
    let epoch = first.lines().find(|l| l.starts_with("epoch")).unwrap();
    assert!(epoch.contains("lr -"), "{epoch}");
    assert!(!first.contains("NaN"), "{first}");
    let csv = std::fs::read_to_string(d.join("out/vsgd.csv")).unwrap();
    assert!(!csv.contains("NaN"), "{csv}");
    // The checkpoint (no learning rate in its records) resumes.
    let resumed = ok(&optdsl(
        &d,
        &[&base[..], &["--epochs", "2", "--resume", "v"]].concat(),
    ));
    assert!(resumed.contains("resumed v at epoch 1"), "{resumed}");
    assert!(resumed.contains("epoch   2/2  lr -"), "{resumed}");
}

optimizer! {
    /// Gradient descent with a huge fixed gain and no learning rate.
    pub Blowup { hyper gain = 1e30, shrink = 1; w -= gain * shrink * g; }
}

#[test]
fn a_diverging_rule_without_a_learning_rate_names_its_hyperparameters() {
    let data = optdsl::data::semeion().unwrap().split(0.2, 0).unwrap();
    let spec = NetworkSpec::classifier(256, &[32], Activation::Relu, 10);
    let net = optdsl::net::Network::<f32>::new(spec, 0).unwrap();
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, Box::new(Blowup::default()), config).unwrap();
    let err = t.fit(&data.train, &data.test, &mut Silent).unwrap_err();
    assert!(matches!(err, Error::NonFiniteStep { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("epoch 1, step")
            && text.contains("has no learning rate")
            && text.contains("gain, shrink")
            && text.contains("optdsl list")
            && !text.contains("NaN"),
        "{text}"
    );
}

/// The hyperparameters the header line of `optdsl train` prints.
fn header(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("network "))
        .unwrap_or_else(|| panic!("no header in\n{out}"))
        .to_string()
}

#[test]
fn train_starts_each_optimizer_from_compares_settings_and_set_overrides() {
    let d = dir("defaults");
    let run = |extra: &[&str]| {
        ok(&optdsl(
            &d,
            &[
                &[
                    "train", "--data", "semeion", "--hidden", "8", "--epochs", "1",
                ][..],
                &["--out", "out"],
                extra,
            ]
            .concat(),
        ))
    };
    let sgd = header(&run(&[]));
    assert!(sgd.contains("Sgd lr=0.5,"), "{sgd}");
    let adagrad = header(&run(&["--optimizer", "adagrad"]));
    assert!(adagrad.contains("lr=0.05"), "{adagrad}");
    let vsgd = header(&run(&["--optimizer", "vsgd"]));
    assert!(
        vsgd.contains("c=2") && vsgd.contains("tau0=10") && vsgd.contains("hmin=2"),
        "{vsgd}"
    );
    let set = header(&run(&["--set", "lr=0.1"]));
    assert!(set.contains("Sgd lr=0.1,"), "{set}");
    // momentum and nesterov are the course's own built-ins, at their defaults.
    let momentum = header(&run(&["--optimizer", "momentum"]));
    assert!(momentum.contains("Momentum lr=0.01"), "{momentum}");
}
