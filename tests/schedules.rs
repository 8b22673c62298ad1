//! Every `--schedule` form against the learning rates PyTorch's schedulers
//! give (tests/golden/schedules/torch.json, made by
//! tools/torch_schedules.py), optax's `piecewise_constant_schedule`
//! (optax.json and a hand-computed table), text round trips and typed errors
//! for random and malformed strings, and reduce-on-plateau's memory surviving
//! a checkpoint byte for byte.
//!
//! Tolerances. PyTorch's `step()` computes the chainable schedulers
//! (`StepLR`, `MultiStepLR`, `ExponentialLR`, `CosineAnnealingLR`,
//! `LinearLR`, `PolynomialLR`, and `SequentialLR` around them) from the
//! group's previous rate, so its rate after k steps carries up to k
//! roundings (and the cosine's ratio of two small numbers near its end);
//! ours is the closed form, one formula of the clock. Those are compared to
//! [`CHAINED`] in relative error, and exactly (bit for bit) against
//! PyTorch's own closed forms (`_get_closed_form_lr`), which the fixture
//! records beside them. The other schedulers (`LambdaLR`, `OneCycleLR`,
//! `CyclicLR`, `CosineAnnealingWarmRestarts`, `ReduceLROnPlateau`) compute
//! from the base rates with the operations ours does, in the same order:
//! equal bit for bit, except 1/t, where `LambdaLR` multiplies the base by
//! `1 / (1 + δt)` and ours divides it by `1 + δt` (two roundings against
//! one: within [`ONE_ULP`]).

mod common;

use common::ok;

use optdsl::schedule::{Clock, LrSchedule, Schedule, ScheduleError, ScheduleState};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

/// The largest relative error allowed against a chainable PyTorch
/// scheduler's rates: the largest measured is 1.1e-15 (`linear:1:0.1:30`,
/// 60 chained roundings), so 1e-14 leaves a factor of 10 for other libm
/// and PyTorch builds.
const CHAINED: f64 = 1e-14;
/// Two roundings: `a (1 / b)` against `a / b`.
const ONE_ULP: f64 = 2.0 * f64::EPSILON;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/schedules")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn rel_error(ours: f64, theirs: f64) -> f64 {
    if ours == theirs {
        0.0
    } else if theirs == 0.0 {
        f64::INFINITY
    } else {
        ((ours - theirs) / theirs).abs()
    }
}

/// A case's rates from our schedule: `[group][index]`, the index an epoch
/// or a step as the case's `unit` says, checking along the way that every
/// step of an epoch has its epoch's rate (epoch-wise schedules).
fn our_rates(case: &Value, schedule: &LrSchedule) -> Vec<Vec<f64>> {
    let spe = case["steps_per_epoch"].as_u64().unwrap();
    let epochs = case["epochs"].as_u64().unwrap() as usize;
    let bases = floats(&case["base_lrs"]);
    let n = case["lr"][0].as_array().unwrap().len();
    let per_epoch = case["unit"] == "epoch";
    let metrics = case["metrics"].as_array().map(|_| floats(&case["metrics"]));
    let mut state = ScheduleState::default();
    let mut rates = vec![Vec::with_capacity(n); bases.len()];
    for k in 0..n as u64 {
        for (g, &base) in bases.iter().enumerate() {
            let value = if per_epoch {
                let first = schedule.value(base, state.clock(Clock::at(k * spe, spe, epochs)));
                for j in 1..spe {
                    let at = state.clock(Clock::at(k * spe + j, spe, epochs));
                    assert_eq!(schedule.value(base, at), first, "{schedule} epoch {k}");
                }
                first
            } else {
                schedule.value(base, state.clock(Clock::at(k, spe, epochs)))
            };
            rates[g].push(value);
        }
        if let Some(m) = &metrics {
            state.observe(schedule, m[k as usize]);
        }
    }
    rates
}

#[test]
fn every_schedule_gives_pytorchs_rates() {
    let data = fixture("torch.json");
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut worst_chained: f64 = 0.0;
    let mut closed_worst: f64 = 0.0;
    let mut report = String::new();
    for case in cases {
        let text = case["schedule"].as_str().unwrap();
        let schedule: LrSchedule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let ours = our_rates(case, &schedule);
        let chainable = case["chainable"].as_bool().unwrap();
        let inverse_time = matches!(schedule, LrSchedule::InverseTime { .. });
        let mut worst: f64 = 0.0;
        for (g, theirs) in case["lr"].as_array().unwrap().iter().enumerate() {
            for (k, (&a, b)) in ours[g].iter().zip(floats(theirs)).enumerate() {
                let e = rel_error(a, b);
                let allowed = if chainable {
                    CHAINED
                } else if inverse_time {
                    ONE_ULP
                } else {
                    0.0
                };
                assert!(
                    e <= allowed,
                    "{text} ({}) group {g} at {} {k}: ours {a:e}, PyTorch's {b:e}, relative error {e:e} > {allowed:e}",
                    case["torch"],
                    case["unit"]
                );
                worst = worst.max(e);
            }
        }
        if let Some(closed) = case["closed_form"].as_array() {
            // Exact: our formulas are PyTorch's closed forms, operation for
            // operation; but the warm-up's `eta (s + 1) / W` (one rounding)
            // is LinearLR's `eta (1/W + (1 - 1/W) s / (W - 1))` (several).
            let allowed = if matches!(schedule, LrSchedule::Warmup { .. }) {
                4.0 * f64::EPSILON
            } else {
                0.0
            };
            for (g, theirs) in closed.iter().enumerate() {
                for (k, (&a, b)) in ours[g].iter().zip(floats(theirs)).enumerate() {
                    let e = rel_error(a, b);
                    assert!(
                        e <= allowed,
                        "{text}: PyTorch's closed form, group {g} at {k}: ours {a:e}, theirs {b:e}"
                    );
                    closed_worst = closed_worst.max(e);
                }
            }
        }
        if chainable {
            worst_chained = worst_chained.max(worst);
        }
        report += &format!("{text}: largest relative error {worst:e}\n");
    }
    eprintln!("{report}largest relative error against the closed forms: {closed_worst:e}");
    // The tolerance is not loose by more than two orders of magnitude.
    assert!(worst_chained > CHAINED / 100.0, "{worst_chained:e}");
}

#[test]
fn the_fixture_covers_every_schedule() {
    let data = fixture("torch.json");
    let mut seen: Vec<String> = data["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s: LrSchedule = c["schedule"].as_str().unwrap().parse().unwrap();
            kind(&s).to_string()
        })
        .collect();
    seen.push("piecewise".into()); // optax.json
    for want in [
        "constant",
        "1/t",
        "step",
        "multistep",
        "exp",
        "cosine",
        "linear",
        "poly",
        "onecycle",
        "cyclic",
        "sgdr",
        "plateau",
        "piecewise",
        "warmup",
    ] {
        assert!(seen.iter().any(|k| k == want), "no case of {want}");
    }
}

/// A schedule's kind, by the name its text form starts with.
fn kind(s: &LrSchedule) -> &'static str {
    match s {
        LrSchedule::Constant => "constant",
        LrSchedule::InverseTime { .. } => "1/t",
        LrSchedule::Step { .. } => "step",
        LrSchedule::MultiStep { .. } => "multistep",
        LrSchedule::Exponential { .. } => "exp",
        LrSchedule::Cosine { .. } => "cosine",
        LrSchedule::Linear { .. } => "linear",
        LrSchedule::Polynomial { .. } => "poly",
        LrSchedule::OneCycle(_) => "onecycle",
        LrSchedule::Cyclic(_) => "cyclic",
        LrSchedule::Restarts { .. } => "sgdr",
        LrSchedule::Plateau(_) => "plateau",
        LrSchedule::Piecewise { .. } => "piecewise",
        LrSchedule::Warmup { .. } => "warmup",
    }
}

#[test]
fn piecewise_gives_optax_rates() {
    // optax 0.2.8 in float64: v = init; for each boundary b (sorted) with
    // count >= b: v = scale * v (its docstring says b < count; its code,
    // `indicator = max(0, sign(b - count))`, scales at count == b too).
    let data = fixture("optax.json");
    for case in data["cases"].as_array().unwrap() {
        let text = case["schedule"].as_str().unwrap();
        let s: LrSchedule = text.parse().unwrap();
        let base = case["base_lr"].as_f64().unwrap();
        let theirs = floats(&case["lr"]);
        let ours: Vec<f64> = (0..theirs.len() as u64)
            .map(|k| s.value(base, Clock::at(k, 5, 12)))
            .collect();
        assert_eq!(ours, theirs, "{text}");
    }
    // By hand: 0.1, halved from step 5, then a tenth of that from step 12,
    // doubled from step 30; a boundary at 0 scales from the first step.
    let s: LrSchedule = "piecewise:5=0.5,12=0.1,30=2".parse().unwrap();
    let at = |k| s.value(0.1, Clock::of_steps(k, 100));
    let table = [
        (0, 0.1),
        (4, 0.1),
        (5, 0.05),
        (11, 0.05),
        (12, 0.1 * 0.05),
        (29, 0.1 * 0.05),
        (30, 2.0 * (0.1 * 0.05)),
        (99, 2.0 * (0.1 * 0.05)),
    ];
    for (k, want) in table {
        assert_eq!(at(k), want, "step {k}");
    }
    let zero: LrSchedule = "piecewise:0=0.5".parse().unwrap();
    assert_eq!(zero.value(0.3, Clock::of_steps(0, 10)), 0.15);
}

/// A random valid schedule of every kind, warm-ups around some.
fn random_schedule(rng: &mut ChaCha8Rng, depth: usize) -> LrSchedule {
    use optdsl::schedule::{
        Anneal, Cyclic, CyclicMode, OneCycle, Plateau, PlateauMode, ThresholdMode,
    };
    let f = |rng: &mut ChaCha8Rng| -> f64 {
        // Numbers with long and short decimal forms.
        if rng.random_bool(0.5) {
            rng.random_range(0.0..1.0)
        } else {
            rng.random_range(0..100) as f64 / 20.0
        }
    };
    let unit = |rng: &mut ChaCha8Rng| f(rng).min(1.0);
    let count = |rng: &mut ChaCha8Rng| rng.random_range(1..50usize);
    let increasing = |rng: &mut ChaCha8Rng| -> Vec<u64> {
        let mut at = 0;
        (0..rng.random_range(1..5))
            .map(|_| {
                at += rng.random_range(1..20u64);
                at
            })
            .collect()
    };
    match rng.random_range(0..if depth == 0 { 15 } else { 14 }) {
        0 => LrSchedule::Constant,
        1 => LrSchedule::InverseTime {
            per_step: rng.random_bool(0.5),
            decay: f(rng),
        },
        2 => LrSchedule::Step {
            every: count(rng),
            gamma: f(rng),
        },
        3 => LrSchedule::MultiStep {
            milestones: increasing(rng).into_iter().map(|m| m as usize).collect(),
            gamma: f(rng),
        },
        4 => LrSchedule::Exponential { gamma: f(rng) },
        5 => LrSchedule::Cosine { min: f(rng) },
        6 => LrSchedule::Linear {
            start: unit(rng).max(0.01),
            end: unit(rng),
            epochs: count(rng),
        },
        7 => LrSchedule::Polynomial {
            epochs: count(rng),
            power: f(rng),
        },
        8 => LrSchedule::OneCycle(OneCycle {
            pct_start: unit(rng),
            anneal: if rng.random_bool(0.5) {
                Anneal::Cos
            } else {
                Anneal::Linear
            },
            div_factor: f(rng) + 1.0,
            final_div_factor: f(rng) + 0.5,
            three_phase: rng.random_bool(0.5),
        }),
        9 => {
            let mode = [
                CyclicMode::Triangular,
                CyclicMode::Triangular2,
                CyclicMode::ExpRange,
            ][rng.random_range(0..3)];
            LrSchedule::Cyclic(Cyclic {
                base_lr: f(rng),
                step_size_up: count(rng) as u64,
                step_size_down: rng.random_bool(0.5).then(|| count(rng) as u64),
                mode,
                gamma: if mode == CyclicMode::ExpRange {
                    unit(rng).max(0.5)
                } else {
                    1.0
                },
            })
        }
        10 => LrSchedule::Restarts {
            t0: count(rng),
            t_mult: rng.random_range(1..4),
            min: f(rng),
        },
        11 => {
            let threshold_mode = if rng.random_bool(0.5) {
                ThresholdMode::Rel
            } else {
                ThresholdMode::Abs
            };
            LrSchedule::Plateau(Plateau {
                mode: if rng.random_bool(0.5) {
                    PlateauMode::Min
                } else {
                    PlateauMode::Max
                },
                factor: unit(rng).clamp(0.01, 0.99),
                patience: rng.random_range(0..20),
                threshold: unit(rng) * 0.5,
                threshold_mode,
                cooldown: rng.random_range(0..5),
                min_lr: f(rng) / 100.0,
                eps: f(rng) * 1e-8,
            })
        }
        12 => LrSchedule::Piecewise {
            boundaries: increasing(rng).into_iter().map(|b| (b, f(rng))).collect(),
        },
        13 => LrSchedule::Constant,
        _ => LrSchedule::Warmup {
            epochs: f(rng) + 0.05,
            then: Box::new(random_schedule(rng, depth + 1)),
        },
    }
}

#[test]
fn random_schedules_print_text_that_parses_back_to_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..5000 {
        let s = random_schedule(&mut rng, 0);
        kinds.insert(kind(&s));
        let text = s.to_string();
        let back: LrSchedule = text
            .parse()
            .unwrap_or_else(|e| panic!("{s:?} printed as `{text}`: {e}"));
        assert_eq!(back, s, "`{text}`");
        assert_eq!(back.to_string(), text);
        // And every rate of it is a finite number, never a panic.
        for step in [0, 1, 7, 99, 100, 1000] {
            let v = s.value(0.1, Clock::at(step, 10, 10));
            assert!(v.is_finite(), "{text} at step {step}: {v}");
        }
    }
    assert_eq!(kinds.len(), 14, "{kinds:?}");
}

#[test]
fn mangled_schedule_strings_are_typed_errors_never_panics() {
    // Every valid form, cut short, with a character changed or doubled:
    // either a schedule that prints as text that parses back to it, or a
    // ScheduleError whose message names the string.
    let forms = [
        "1/t:step:0.5",
        "step:3:0.1",
        "multistep:30,80:0.1",
        "exp:0.95",
        "cosine:0.001",
        "linear:0.25:1:5",
        "poly:50:0.9",
        "onecycle:pct_start=0.25:anneal_strategy=linear:three_phase=true",
        "cyclic:0.001:20:step_size_down=30:mode=exp_range:gamma=0.99",
        "sgdr:10:2:0.001",
        "plateau:mode=max:factor=0.5:patience=3:threshold_mode=abs:cooldown=2:min_lr=0.0001",
        "piecewise:100=0.5,200=0.1",
        "warmup:0.5+cosine",
        "warmup:2+multistep:3,5:0.5",
    ];
    let noise = ['0', '-', ':', ',', '=', '+', 'x', '.', ' ', '9'];
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut ok, mut errors) = (0, 0);
    for form in forms {
        let chars: Vec<char> = form.chars().collect();
        let mut variants: Vec<String> = (0..=chars.len())
            .map(|n| chars[..n].iter().collect())
            .collect();
        for _ in 0..300 {
            let mut c = chars.clone();
            let i = rng.random_range(0..c.len());
            match rng.random_range(0..3) {
                0 => c[i] = noise[rng.random_range(0..noise.len())],
                1 => {
                    c.remove(i);
                }
                _ => c.insert(i, c[i]),
            }
            variants.push(c.into_iter().collect());
        }
        for v in variants {
            match v.parse::<LrSchedule>() {
                Ok(s) => {
                    ok += 1;
                    assert_eq!(s.to_string().parse::<LrSchedule>().unwrap(), s, "`{v}`");
                }
                Err(e) => {
                    errors += 1;
                    let message = e.to_string();
                    assert!(message.contains(v.trim()), "`{v}`: {message}");
                    let runtime: optdsl::Error = e.into();
                    assert!(runtime.to_string().contains("schedule"), "{runtime}");
                }
            }
        }
    }
    assert!(ok > 100 && errors > 1000, "{ok} parsed, {errors} refused");
}

#[test]
fn each_kind_of_bad_string_has_its_error() {
    let err = |s: &str| s.parse::<LrSchedule>().unwrap_err();
    assert!(matches!(
        err("multistep:10,10:0.1"),
        ScheduleError::NotIncreasing {
            prev: 10,
            next: 10,
            ..
        }
    ));
    assert!(matches!(err("multistep::0.1"), ScheduleError::Empty { .. }));
    assert!(matches!(err("sgdr:-3"), ScheduleError::NotANumber { .. }));
    assert!(matches!(
        err("sgdr:0"),
        ScheduleError::OutOfRange { value, .. } if value == 0.0
    ));
    assert!(matches!(
        err("linear:2:1:5"),
        ScheduleError::OutOfRange {
            what: "START_FACTOR",
            ..
        }
    ));
    assert!(matches!(
        err("plateau:factor=1.5"),
        ScheduleError::OutOfRange { what: "factor", .. }
    ));
    assert!(matches!(
        err("cyclic:0.01:0"),
        ScheduleError::OutOfRange { .. }
    ));
    assert!(matches!(
        err("onecycle:anneal_strategy=cosine"),
        ScheduleError::NotANumber { .. }
    ));
    let unknown = err("plateau:patient=3").to_string();
    assert!(unknown.contains("patience"), "{unknown}");
    let form = err("cyclic:0.01").to_string();
    assert!(form.contains("cyclic:BASE_LR:STEP_SIZE_UP"), "{form}");
}

fn train(dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data",
        "semeion",
        "--optimizer",
        "sgd",
        "--hidden",
        "16",
        "--set",
        "lr=0.5",
        "--batch",
        "64",
        "--out",
        "out",
        // Nothing counts as an improvement after the first epoch: each
        // later epoch halves the rate of the next.
        "--schedule",
        "plateau:factor=0.5:patience=0:threshold=100:threshold_mode=abs",
    ];
    args.extend(extra);
    common::optdsl(dir, &args)
}

#[test]
fn a_plateau_run_resumes_from_a_checkpoint_byte_identical() {
    let d = std::env::temp_dir().join(format!("optdsl-sched-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let a = ok(&train(&d, &["--epochs", "4", "--save", "a"]));
    ok(&train(&d, &["--epochs", "2", "--save", "b"]));
    let c = ok(&train(
        &d,
        &["--epochs", "4", "--resume", "b", "--save", "c"],
    ));
    let (fa, fc) = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("c")).unwrap(),
    );
    assert_eq!(fa, fc, "the resumed run's checkpoint differs");
    assert_eq!(a.lines().last(), c.lines().last());
    // The plateau's memory is in the checkpoint: three cuts after epoch 4.
    let text = String::from_utf8_lossy(&fa);
    assert!(
        text.contains("\"schedule_state\""),
        "no schedule state saved"
    );
    assert!(text.contains("\"cuts\":3"), "expected three cuts");
    // The first epoch sets the best loss; every later one is bad and cuts
    // the rate of the epoch after it.
    let history = std::fs::read_to_string(d.join("out").join("sgd.json")).unwrap();
    let h: Value = serde_json::from_str(&history).unwrap();
    let lrs: Vec<f64> = h["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["lr"].as_f64().unwrap())
        .collect();
    assert_eq!(lrs, [0.5, 0.5, 0.25, 0.125]);
    let _ = std::fs::remove_dir_all(&d);
}
