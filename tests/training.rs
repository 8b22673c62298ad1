//! Training end to end: a short Semeion run learns, runs are reproducible
//! bit for bit, schedules and batch sizes do what they say, a diverging run
//! stops with a typed error, and `optdsl train` reads CSV it has never seen.

use optdsl::data::{semeion, usps_test, Dataset, Split};
use optdsl::net::{Activation, Loss, Network, NetworkSpec};
use optdsl::schedule::LrSchedule;
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, DynRule, Error, HyperValue};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn sgd(lr: f64, momentum: f64) -> Box<dyn DynRule> {
    let mut rule = builtin_rule("sgd").unwrap();
    rule.set_hyper("lr", HyperValue::Num(lr)).unwrap();
    rule.set_hyper("momentum", HyperValue::Num(momentum))
        .unwrap();
    rule
}

fn semeion_split() -> Split {
    semeion().unwrap().split(0.2, 0).unwrap()
}

fn config(epochs: usize, batch: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs,
        batch,
        seed,
        ..TrainConfig::default()
    }
}

#[test]
fn a_short_semeion_run_clearly_learns_within_seconds() {
    let data = semeion_split();
    let start = Instant::now();
    let spec = NetworkSpec::classifier(256, &[64], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut t = Trainer::new(net, sgd(0.1, 0.9), config(8, 32, 0)).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let r = t.records();
    assert_eq!(r.len(), 8);
    let last = r.last().unwrap();
    // Chance is 0.1; a sigmoid network learns Semeion to about 0.9 in a few epochs.
    assert!(
        last.test_accuracy > 0.8,
        "test accuracy {}",
        last.test_accuracy
    );
    assert!(
        last.train_loss < 0.5 * r[0].train_loss,
        "{} vs {}",
        last.train_loss,
        r[0].train_loss
    );
    assert!(seconds < 20.0, "{seconds} s");
}

fn run_f64(seed: u64, data: &Split) -> Trainer<f64> {
    let spec = NetworkSpec::classifier(256, &[16], Activation::Tanh, 10);
    let net = Network::<f64>::new(spec, seed).unwrap();
    let mut t = Trainer::new(net, sgd(0.05, 0.9), config(2, 16, seed)).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    t
}

#[test]
fn same_seed_same_result_bit_for_bit_and_another_seed_differs() {
    let data = semeion_split();
    let (a, b, c) = (run_f64(3, &data), run_f64(3, &data), run_f64(4, &data));
    assert_eq!(a.network().params(), b.network().params());
    let metrics = |t: &Trainer<f64>| -> Vec<[f64; 5]> {
        t.records()
            .iter()
            .map(|r| {
                [
                    r.lr.expect("sgd has a learning rate"),
                    r.train_loss,
                    r.train_accuracy,
                    r.test_loss,
                    r.test_accuracy,
                ]
            })
            .collect()
    };
    assert_eq!(metrics(&a), metrics(&b));
    assert_ne!(a.network().params(), c.network().params());
    assert_eq!(a.optimizer().state(), b.optimizer().state());
}

#[test]
fn next_epoch_order_is_the_order_the_epoch_trains_in() {
    use optdsl::net::Workspace;
    use optdsl::Optimizer;
    let data = semeion_split();
    let spec = NetworkSpec::classifier(256, &[16], Activation::Sigmoid, 10);
    let net = Network::<f64>::new(spec, 5).unwrap();
    let mut t = Trainer::new(net.clone(), sgd(0.1, 0.9), config(2, 50, 5)).unwrap();
    // By hand: the trainer's two groups (weights, biases), mini-batches of
    // 50 consecutive rows of the announced order, the last shorter.
    let mut replay = net;
    let mut opt = Optimizer::new();
    opt.add_group(sgd(0.1, 0.9), &replay.weight_lens());
    opt.add_group(sgd(0.1, 0.9), &replay.bias_lens());
    let mut ws = Workspace::new(&replay, 50);
    let mut orders = vec![];
    for _ in 0..2 {
        let order = t.next_epoch_order(data.train.len());
        assert_eq!(order, t.next_epoch_order(data.train.len()));
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..data.train.len()).collect::<Vec<_>>());
        for chunk in order.chunks(50) {
            let rows = data.train.subset("batch", chunk);
            let x = ndarray::ArrayView2::from_shape((chunk.len(), 256), rows.inputs()).unwrap();
            replay.loss_and_grad(&mut ws, x, rows.labels()).unwrap();
            opt.step_flat(replay.params_mut(), ws.grads()).unwrap();
        }
        t.run_epoch(&data.train, &data.test, &mut Silent).unwrap();
        assert_eq!(replay.params(), t.network().params());
        orders.push(order);
    }
    assert_ne!(orders[0], orders[1]);
}

#[test]
fn batch_of_the_whole_set_is_one_step_an_epoch_and_batch_one_a_step_a_row() {
    let data = semeion_split();
    let small = Split::new(
        data.train.subset("small", &(0..50).collect::<Vec<_>>()),
        data.test.clone(),
    )
    .unwrap();
    let spec = NetworkSpec::classifier(256, &[8], Activation::Relu, 10);
    for (batch, steps) in [(small.train.len(), 1), (1, 50), (16, 4)] {
        let net = Network::<f32>::new(spec.clone(), 1).unwrap();
        let mut t = Trainer::new(net, sgd(0.1, 0.0), config(3, batch, 1)).unwrap();
        t.fit(&small.train, &small.test, &mut Silent).unwrap();
        let per_epoch: Vec<u64> = t.records().iter().map(|r| r.steps).collect();
        assert_eq!(per_epoch, [steps, 2 * steps, 3 * steps], "batch {batch}");
    }
}

#[test]
fn schedules_set_the_rate_each_epoch_and_biases_can_take_their_own() {
    let data = semeion_split();
    let spec = NetworkSpec::classifier(256, &[8], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 2).unwrap();
    let mut cfg = config(4, 64, 2);
    cfg.schedule = "1/t".parse::<LrSchedule>().unwrap();
    let mut t = Trainer::new(net, sgd(0.8, 0.0), cfg).unwrap();
    t.set_bias_hyper("lr", HyperValue::Num(0.0)).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    let lrs: Vec<f64> = t
        .records()
        .iter()
        .map(|r| r.lr.expect("sgd has a learning rate"))
        .collect();
    assert_eq!(lrs, [0.8, 0.4, 0.8 / 3.0, 0.2]);
    // Biases (the end of the buffer) had rate 0 all along: still at their init, 0.
    let n_weights: usize = t.network().weight_lens().iter().sum();
    assert!(t.network().params()[n_weights..].iter().all(|&b| b == 0.0));
    assert!(t.network().params()[..n_weights].iter().any(|&w| w != 0.0));
    let bias_lr = t.optimizer().rule(1).unwrap().hyper("lr").unwrap();
    assert_eq!(bias_lr, HyperValue::Num(0.0));
}

#[test]
fn a_diverging_run_stops_naming_the_epoch_the_step_and_the_rate() {
    let data = semeion_split();
    let spec = NetworkSpec::classifier(256, &[32], Activation::Relu, 10);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut t = Trainer::new(net, sgd(1e30, 0.0), config(3, 32, 0)).unwrap();
    let err = t.fit(&data.train, &data.test, &mut Silent).unwrap_err();
    match &err {
        Error::NonFinite {
            what,
            epoch,
            step,
            lr,
        } => {
            assert_eq!((what.as_str(), *epoch, *lr), ("loss", 1, 1e30));
            assert!(*step >= 2 && *step <= 40, "step {step}");
            assert_eq!(t.steps(), step - 1);
        }
        other => panic!("expected a non-finite loss, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("epoch 1") && text.contains("lower the learning rate"),
        "{text}"
    );
}

#[test]
fn mse_networks_train_and_data_that_does_not_fit_the_network_is_an_error() {
    let data = semeion_split();
    let mut spec = NetworkSpec::classifier(256, &[16], Activation::Sigmoid, 10);
    spec.loss = Loss::Mse;
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut t = Trainer::new(net, sgd(0.5, 0.9), config(4, 32, 0)).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    assert!(t.records()[3].test_accuracy > 0.5, "{:?}", t.records()[3]);
    let narrow = NetworkSpec::classifier(100, &[], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(narrow, 0).unwrap();
    let mut t = Trainer::new(net, sgd(0.5, 0.0), config(1, 32, 0)).unwrap();
    assert!(matches!(
        t.fit(&data.train, &data.test, &mut Silent),
        Err(Error::Data { .. })
    ));
    let net = Network::<f32>::new(
        NetworkSpec::classifier(256, &[], Activation::Sigmoid, 10),
        0,
    )
    .unwrap();
    assert!(Trainer::new(net, sgd(0.5, 0.0), config(0, 32, 0)).is_err());
}

/// A fresh directory under the system's temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optdsl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The USPS test set as CSV: label first or last, values times `mul`.
fn write_csv(data: &Dataset, label_last: bool, mul: f64) -> String {
    let mut out = String::from(if label_last {
        "p0,...,label\n"
    } else {
        "label,p0,...\n"
    });
    for i in 0..data.len() {
        let values: Vec<String> = data.row(i).iter().map(|v| format!("{}", v * mul)).collect();
        let label = data.labels()[i].to_string();
        let row = if label_last {
            format!("{},{label}", values.join(","))
        } else {
            format!("{label},{}", values.join(","))
        };
        out += &row;
        out.push('\n');
    }
    out
}

fn train_cli(dir: &std::path::Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .args([
            "train",
            "--epochs",
            "4",
            "--hidden",
            "64",
            "--optimizer",
            "sgd",
        ])
        .args(["--set", "lr=0.1", "--set", "momentum=0.9", "--seed", "1"])
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn accuracy(stdout: &str) -> f64 {
    let last = stdout.lines().last().unwrap();
    let value = last.strip_prefix("test accuracy: ").expect(last);
    assert_eq!(value.len(), 6, "{last}");
    value.parse().unwrap()
}

#[test]
fn optdsl_train_reads_csv_it_has_never_seen_label_first_or_last_gzipped_and_scaled() {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let dir = temp_dir("csv");
    let data = usps_test().unwrap();
    let first = dir.join("digits.csv");
    std::fs::write(&first, write_csv(&data, false, 1.0)).unwrap();
    let last_gz = dir.join("digits-last.csv.gz");
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(write_csv(&data, true, 1.0).as_bytes())
        .unwrap();
    std::fs::write(&last_gz, enc.finish().unwrap()).unwrap();
    let scaled = dir.join("digits-255.csv");
    std::fs::write(&scaled, write_csv(&data, false, 255.0)).unwrap();

    let a = train_cli(&dir, &["--data", &format!("csv:{}", first.display())]);
    assert!(
        a.contains("2007 rows") || a.contains("1606 train / 401 test"),
        "{a}"
    );
    let acc = accuracy(&a);
    assert!(acc > 0.85, "{a}");
    let b = train_cli(
        &dir,
        &[
            "--data",
            &format!("csv:{}", last_gz.display()),
            "--label",
            "last",
        ],
    );
    assert_eq!(accuracy(&b), acc, "same rows, other layout: same run");
    let c = train_cli(
        &dir,
        &[
            "--data",
            &format!("csv:{}", scaled.display()),
            "--scale",
            "255",
        ],
    );
    assert!((accuracy(&c) - acc).abs() < 0.02, "{c}");
    assert!(dir.join("out/sgd.csv").exists() && dir.join("out/sgd.json").exists());
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/sgd.json")).unwrap()).unwrap();
    assert_eq!(history["epochs"].as_array().unwrap().len(), 4);

    // A row cut short: the error names the file's line.
    let broken = dir.join("broken.csv");
    let mut text = write_csv(&data, false, 1.0);
    text.push_str("3,0.5,0.5\n");
    std::fs::write(&broken, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .args(["train", "--data", &format!("csv:{}", broken.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2009") && err.contains("expected 257 fields"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn optdsl_compare_prints_the_table_with_epoch_and_gemm_times() {
    let dir = temp_dir("compare");
    let out = Command::new(env!("CARGO_BIN_EXE_optdsl"))
        .args([
            "compare", "--data", "semeion", "--epochs", "2", "--only", "sgd,adam",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("optimizer"))
        .expect(&stdout);
    for col in ["test acc", "train loss", "epoch ms", "GEMM ms"] {
        assert!(header.contains(col), "{header}");
    }
    let sgd_row = stdout
        .lines()
        .skip_while(|l| !l.starts_with("optimizer"))
        .find(|l| l.starts_with("sgd "))
        .expect(&stdout);
    // PyTorch's numbers are for USPS, 20 epochs: not shown beside a Semeion run.
    assert!(!sgd_row.contains("0.931"), "{sgd_row}");
    assert!(sgd_row.contains("lr=0.5"), "{sgd_row}");
    assert!(dir.join("sgd.csv").exists() && dir.join("summary.csv").exists());
    let adam_built = builtin_rule("adam").is_ok();
    assert_eq!(dir.join("adam.csv").exists(), adam_built);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_saved_trainer_state_resumes_the_run_bit_for_bit() {
    let data = semeion_split();
    let spec = NetworkSpec::classifier(256, &[16], Activation::Sigmoid, 10);
    let make = |seed| {
        let mut rule = builtin_rule("sgd").unwrap();
        rule.set_hyper("lr", HyperValue::Num(0.1)).unwrap();
        rule.set_hyper("momentum", HyperValue::Num(0.9)).unwrap();
        let mut cfg = config(4, 32, seed);
        cfg.schedule = "cosine".parse().unwrap();
        Trainer::new(Network::<f32>::new(spec.clone(), seed).unwrap(), rule, cfg).unwrap()
    };
    let mut straight = make(5);
    straight.fit(&data.train, &data.test, &mut Silent).unwrap();

    let mut first = make(5);
    first
        .run_epoch(&data.train, &data.test, &mut Silent)
        .unwrap();
    first
        .run_epoch(&data.train, &data.test, &mut Silent)
        .unwrap();
    let json = serde_json::to_string(&first.state()).unwrap();
    let saved: optdsl::train::TrainerState<f32> = serde_json::from_str(&json).unwrap();
    // JSON keeps every float exactly (serde_json's float_roundtrip).
    assert!(saved == first.state());
    let mut resumed = make(99);
    resumed.restore(saved).unwrap();
    assert_eq!((resumed.epoch(), resumed.steps()), (2, 80));
    resumed.fit(&data.train, &data.test, &mut Silent).unwrap();

    assert_eq!(resumed.network().params(), straight.network().params());
    assert_eq!(resumed.optimizer().state(), straight.optimizer().state());
    let strip = |t: &Trainer<f32>| -> Vec<[f64; 4]> {
        t.records()
            .iter()
            .map(|r| {
                [
                    r.lr.expect("sgd has a learning rate"),
                    r.train_loss,
                    r.test_loss,
                    r.test_accuracy,
                ]
            })
            .collect()
    };
    assert_eq!(strip(&resumed), strip(&straight));

    let other = NetworkSpec::classifier(256, &[8], Activation::Sigmoid, 10);
    let mut wrong = Trainer::new(
        Network::<f32>::new(other, 0).unwrap(),
        sgd(0.1, 0.0),
        config(1, 32, 0),
    )
    .unwrap();
    assert!(matches!(
        wrong.restore(first.state()),
        Err(Error::StateMismatch(_))
    ));
    assert_eq!(wrong.steps(), 0);
}
