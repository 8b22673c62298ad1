//! The built-ins refuse what PyTorch's constructors refuse: for each rule
//! that `torch.optim` has, a value the torch 2.15 constructor raises
//! `ValueError` for is an `Error::HyperRange` naming the hyper, and the
//! boundary values the constructor accepts (`lr = 0`, `betas[0] = 0`,
//! `rho = 1`, an unchecked `dampening` or `t0`) are accepted; `optdsl train
//! --set` refuses the same values before it reads any data.

use optdsl::{builtin_rule, builtins, Error, HyperValue};
use std::process::{Command, Output};

/// (built-in, hyper, a value its torch 2.15 constructor refuses).
const REFUSED: &[(&str, &str, f64)] = &[
    // SGD: `lr < 0.0`, `momentum < 0.0`, `weight_decay < 0.0`.
    ("sgd", "lr", -1e-3),
    ("sgd", "momentum", -0.1),
    ("sgd", "weight_decay", -0.01),
    // Adagrad: `0.0 <=` lr, lr_decay, weight_decay, initial_accumulator_value, eps.
    ("adagrad", "lr", -0.1),
    ("adagrad", "lr_decay", -0.1),
    ("adagrad", "weight_decay", -0.1),
    ("adagrad", "initial_accumulator_value", -0.1),
    ("adagrad", "eps", -1e-10),
    // RMSprop: `0.0 <=` lr, eps, momentum, weight_decay, alpha.
    ("rmsprop", "lr", -0.01),
    ("rmsprop", "eps", -1e-8),
    ("rmsprop", "momentum", -0.5),
    ("rmsprop", "weight_decay", -0.1),
    ("rmsprop", "alpha", -0.01),
    // Rprop: `0.0 <= lr`, `0.0 < etas[0] < 1.0 < etas[1]`.
    ("rprop", "lr", -0.01),
    ("rprop", "etaminus", 0.0),
    ("rprop", "etaminus", 1.0),
    ("rprop", "etaminus", -0.5),
    ("rprop", "etaplus", 1.0),
    ("rprop", "etaplus", 0.5),
    // Adadelta: `0.0 <= lr`, `0.0 <= rho <= 1.0`, `0.0 <= eps`, `0.0 <= weight_decay`.
    ("adadelta", "lr", -1.0),
    ("adadelta", "rho", -0.1),
    ("adadelta", "rho", 1.1),
    ("adadelta", "eps", -1e-6),
    ("adadelta", "weight_decay", -0.1),
    // Adam, AdamW, Adamax, NAdam, RAdam: `0.0 <= lr`, `0.0 <= eps`,
    // `0.0 <= betas[i] < 1.0`, `0.0 <= weight_decay`.
    ("adam", "lr", -1e-3),
    ("adam", "eps", -1e-8),
    ("adam", "beta1", 1.0),
    ("adam", "beta1", 1.5),
    ("adam", "beta1", -0.1),
    ("adam", "beta2", 1.0),
    ("adam", "beta2", -0.5),
    ("adam", "weight_decay", -0.1),
    ("adamw", "lr", -1e-3),
    ("adamw", "eps", -1e-8),
    ("adamw", "beta1", 1.0),
    ("adamw", "beta2", 1.0),
    ("adamw", "weight_decay", -0.01),
    ("adamax", "lr", -2e-3),
    ("adamax", "eps", -1e-8),
    ("adamax", "beta1", 1.0),
    ("adamax", "beta2", -0.1),
    ("adamax", "weight_decay", -0.1),
    ("nadam", "lr", -2e-3),
    ("nadam", "eps", -1e-8),
    ("nadam", "beta1", 1.0),
    ("nadam", "beta2", 1.0),
    ("nadam", "weight_decay", -0.1),
    // NAdam also `0.0 <= momentum_decay`.
    ("nadam", "momentum_decay", -4e-3),
    ("radam", "lr", -1e-3),
    ("radam", "eps", -1e-8),
    ("radam", "beta1", -0.1),
    ("radam", "beta2", 1.0),
    ("radam", "weight_decay", -0.1),
    // ASGD: `0.0 <=` lr, lambd, alpha, weight_decay.
    ("asgd", "lr", -0.01),
    ("asgd", "lambd", -1e-4),
    ("asgd", "alpha", -0.75),
    ("asgd", "weight_decay", -0.1),
];

/// (built-in, hyper, a value its torch 2.15 constructor accepts), boundaries
/// and values it does not check.
const ACCEPTED: &[(&str, &str, f64)] = &[
    ("sgd", "lr", 0.0),
    ("sgd", "momentum", 0.0),
    ("sgd", "momentum", 1.5),
    ("sgd", "weight_decay", 0.0),
    ("sgd", "dampening", -0.5),
    ("sgd", "dampening", 2.0),
    ("adagrad", "lr", 0.0),
    ("adagrad", "lr_decay", 0.0),
    ("adagrad", "weight_decay", 0.0),
    ("adagrad", "initial_accumulator_value", 0.0),
    ("adagrad", "eps", 0.0),
    ("rmsprop", "lr", 0.0),
    ("rmsprop", "eps", 0.0),
    ("rmsprop", "momentum", 0.0),
    ("rmsprop", "weight_decay", 0.0),
    ("rmsprop", "alpha", 0.0),
    ("rmsprop", "alpha", 1.5),
    ("rprop", "lr", 0.0),
    ("rprop", "etaminus", 1e-12),
    ("rprop", "etaminus", 0.999),
    ("rprop", "etaplus", 1.0001),
    ("rprop", "etaplus", 1e6),
    ("rprop", "step_min", -1.0),
    ("rprop", "step_max", 0.0),
    ("adadelta", "lr", 0.0),
    ("adadelta", "rho", 0.0),
    ("adadelta", "rho", 1.0),
    ("adadelta", "eps", 0.0),
    ("adadelta", "weight_decay", 0.0),
    ("adam", "lr", 0.0),
    ("adam", "lr", f64::INFINITY),
    ("adam", "eps", 0.0),
    ("adam", "beta1", 0.0),
    ("adam", "beta1", 0.9999),
    ("adam", "beta2", 0.0),
    ("adam", "weight_decay", 0.0),
    ("adamw", "lr", 0.0),
    ("adamw", "beta1", 0.0),
    ("adamw", "beta2", 0.0),
    ("adamw", "weight_decay", 0.0),
    ("adamax", "lr", 0.0),
    ("adamax", "beta1", 0.0),
    ("adamax", "beta2", 0.0),
    ("adamax", "eps", 0.0),
    ("nadam", "lr", 0.0),
    ("nadam", "beta1", 0.0),
    ("nadam", "beta2", 0.0),
    ("nadam", "momentum_decay", 0.0),
    ("radam", "lr", 0.0),
    ("radam", "beta1", 0.0),
    ("radam", "beta2", 0.0),
    ("radam", "weight_decay", 0.0),
    ("asgd", "lr", 0.0),
    ("asgd", "lambd", 0.0),
    ("asgd", "alpha", 0.0),
    ("asgd", "weight_decay", 0.0),
    ("asgd", "t0", -5.0),
];

/// The built-ins that are `torch.optim` classes.
const TORCH: &[&str] = &[
    "sgd", "adagrad", "rmsprop", "rprop", "adadelta", "adam", "adamw", "adamax", "nadam", "radam",
    "asgd",
];

/// The numeric hypers of those that torch 2.15's constructors do not check.
const UNCHECKED: &[(&str, &str)] = &[
    ("sgd", "dampening"),
    ("rprop", "step_min"),
    ("rprop", "step_max"),
    ("asgd", "t0"),
];

#[test]
fn values_pytorch_refuses_are_refused_by_name() {
    for &(rule, hyper, x) in REFUSED {
        let mut r = builtin_rule(rule).unwrap();
        let before = r.hyper(hyper);
        match r.set_hyper(hyper, HyperValue::Num(x)) {
            Err(Error::HyperRange { name, range, .. }) => {
                assert_eq!(name, hyper, "{rule} {hyper}={x}");
                assert!(range.contains(hyper), "{rule} {hyper}={x}: {range}");
            }
            other => panic!("{rule} {hyper}={x}: expected a range error, got {other:?}"),
        }
        assert_eq!(
            r.hyper(hyper),
            before,
            "{rule} {hyper}: a refused value changes nothing"
        );
    }
}

#[test]
fn values_pytorch_accepts_are_accepted() {
    for &(rule, hyper, x) in ACCEPTED {
        let mut r = builtin_rule(rule).unwrap();
        r.set_hyper(hyper, HyperValue::Num(x))
            .unwrap_or_else(|e| panic!("{rule} {hyper}={x}: {e}"));
        assert_eq!(r.hyper(hyper), Some(HyperValue::Num(x)), "{rule} {hyper}");
    }
}

#[test]
fn every_hyper_pytorch_checks_has_a_range_and_no_other() {
    for &rule in TORCH {
        let r = builtin_rule(rule).unwrap();
        for h in r.info().hypers {
            if matches!(h.default, HyperValue::Bool(_)) {
                assert!(h.range.is_none(), "{rule} {}", h.name);
                continue;
            }
            let unchecked = UNCHECKED.contains(&(rule, h.name));
            assert_eq!(
                h.range.is_none(),
                unchecked,
                "{rule} {}: range {:?}",
                h.name,
                h.range
            );
            assert!(
                unchecked || REFUSED.iter().any(|&(b, n, _)| b == rule && n == h.name),
                "{rule} {}: no refused value in the table",
                h.name
            );
        }
    }
}

#[test]
fn nan_is_refused_wherever_a_range_is_declared() {
    // PyTorch's `not 0.0 <= x` refuses NaN too; SGD's `x < 0.0` lets it
    // through, the one place where a built-in is stricter than PyTorch.
    for b in builtins() {
        let mut r = (b.make)();
        for h in r.info().hypers {
            if h.range.is_some() {
                let e = r.set_hyper(h.name, HyperValue::Num(f64::NAN));
                assert!(
                    matches!(e, Err(Error::HyperRange { .. })),
                    "{} {}: {e:?}",
                    b.name,
                    h.name
                );
            }
        }
    }
}

#[test]
fn every_default_is_inside_its_range() {
    // The compiler checks this of every rule; here it is checked of the
    // registry's rules as they are handed out.
    for b in builtins() {
        let mut r = (b.make)();
        for h in r.info().hypers {
            r.set_hyper(h.name, h.default)
                .unwrap_or_else(|e| panic!("{} {}: {e}", b.name, h.name));
        }
    }
}

fn train(set: &str) -> Output {
    let dir = std::env::temp_dir().join(format!(
        "optdsl-ranges-{}-{}",
        std::process::id(),
        set.replace(['=', '.', '-'], "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .current_dir(&dir)
        .args([
            "train",
            "--optimizer",
            "adam",
            "--set",
            set,
            "--epochs",
            "1",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

#[test]
fn train_refuses_a_value_outside_the_range_before_training() {
    for (set, name, range) in [
        ("beta1=1.5", "`beta1`", "0 <= beta1 < 1"),
        ("lr=nan", "`lr`", "0 <= lr"),
        ("lr=-0.1", "`lr`", "0 <= lr"),
    ] {
        let out = train(set);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{set}: {stdout}{stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(range),
            "{set}: {stderr}"
        );
        assert!(
            stdout.is_empty(),
            "{set}: printed before refusing:\n{stdout}"
        );
    }
}
