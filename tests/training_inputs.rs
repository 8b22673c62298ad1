//! Rules that take an input train through the trainer: `g_prev` from a second
//! backward pass at the previous parameters, `h` the batch loss's
//! Gauss-Newton diagonal (bbprop), `g2` the batch's mean squared per-row
//! gradient and `n_mb` its row count; all survive a checkpoint bit for bit.

use ndarray::ArrayView2;
use optdsl::data::{CsvOptions, DataSource, Split};
use optdsl::net::{Activation, Network, NetworkSpec, Workspace};
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, optimizer};

optimizer! {
    /// A rule with an input the trainer does not know.
    pub Odd { input foo; w -= 0.1 * foo; }

    /// Plain gradient descent that records g_prev: w moves by g_prev's mean
    /// difference from g, which is 0 on the first step.
    pub Probe { hyper lr = 0.05; input g_prev: previous_grad; state diff = 0; diff = g - g_prev; w -= lr * g; }

    /// Gradient descent that records the curvature it was given.
    pub CurvatureProbe { input h: curvature; state seen = 0; seen = h; w -= 0.05 * g; }

    /// Gradient descent that records the row count, squared gradients and
    /// curvature it was given (in that order of inputs).
    pub BatchProbe {
        input n_mb: batch_rows, g2: grad_squares, h: curvature;
        state rows = 0, squares = 0, curvature = 0;
        rows = n_mb;
        squares = g2;
        curvature = h;
        w -= 0.05 * g;
    }

    /// A rule asking for `g_prev` and `h` together.
    pub Mixed { input g_prev: previous_grad, h: curvature; w -= 0.1 * g; }
}

fn data() -> Split {
    "semeion"
        .parse::<DataSource>()
        .unwrap()
        .load(&CsvOptions::default(), None, 2)
        .unwrap()
}

fn trainer(rule: Box<dyn optdsl::DynRule>, epochs: usize) -> Trainer<f64> {
    let spec = NetworkSpec::classifier(256, &[16], Activation::Tanh, 10);
    let config = TrainConfig {
        epochs,
        batch: 64,
        ..TrainConfig::default()
    };
    Trainer::new(Network::<f64>::new(spec, 4).unwrap(), rule, config).unwrap()
}

#[test]
fn g_prev_is_the_gradient_at_the_previous_parameters() {
    let data = data();
    let mut t = trainer(Box::new(Probe::default()), 1);
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    // The recorded differences are nonzero once the parameters have moved.
    let state = t.optimizer().state();
    let diffs = &state.groups[0].states[0].buffers[0];
    assert!(diffs.iter().any(|&d| d != 0.0));
    assert!(diffs.iter().all(|d| d.is_finite()));
}

#[test]
fn h_is_the_gauss_newton_diagonal_of_the_batch() {
    let data = data();
    let spec = NetworkSpec::classifier(256, &[16], Activation::Tanh, 10);
    let net = Network::<f64>::new(spec, 4).unwrap();
    // One step over the whole training set: the curvature at the start.
    let rows = data.train.len();
    let mut ws = Workspace::new(&net, rows);
    let all: Vec<usize> = (0..rows).collect();
    ws.stage_rows(&data.train, &all);
    let mut want = vec![0.0; net.params().len()];
    net.staged_loss_grad_and_curvature(&mut ws, rows, &mut want)
        .unwrap();
    let config = TrainConfig {
        epochs: 1,
        batch: rows,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, Box::new(CurvatureProbe::default()), config).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    let state = t.optimizer().state();
    let seen: Vec<f64> = state
        .groups
        .iter()
        .flat_map(|g| g.states.iter().flat_map(|s| s.buffers[0].iter().copied()))
        .collect();
    assert_eq!(seen.len(), want.len());
    assert!(want.iter().any(|&h| h > 0.0));
    for (i, (&got, &want)) in seen.iter().zip(&want).enumerate() {
        // The same sums over the rows, in the trainer's shuffled order.
        assert!(
            (got - want).abs() <= 1e-12 + 1e-9 * want.abs(),
            "parameter {i}: {got} vs {want}"
        );
    }
}

/// Buffer `k` of every tensor's state, in the parameters' layout.
fn recorded(t: &Trainer<f64>, k: usize) -> Vec<f64> {
    let state = t.optimizer().state();
    state
        .groups
        .iter()
        .flat_map(|g| g.states.iter().flat_map(|s| s.buffers[k].iter().copied()))
        .collect()
}

#[test]
fn g2_is_the_mean_squared_per_row_gradient_and_n_mb_the_row_count() {
    let data = data();
    let spec = NetworkSpec::classifier(256, &[16], Activation::Tanh, 10);
    let net = Network::<f64>::new(spec, 4).unwrap();
    let rows = data.train.len();
    // By brute force: one backward pass per row at the start.
    let mut ws = Workspace::new(&net, 1);
    let mut want = vec![0.0; net.params().len()];
    for i in 0..rows {
        let x = ArrayView2::from_shape((1, 256), data.train.row(i)).unwrap();
        net.loss_and_grad(&mut ws, x, &data.train.labels()[i..=i])
            .unwrap();
        want.iter_mut()
            .zip(ws.grads())
            .for_each(|(s, g)| *s += g * g / rows as f64);
    }
    let mut all = Workspace::new(&net, rows);
    all.stage_rows(&data.train, &(0..rows).collect::<Vec<_>>());
    let mut want_h = vec![0.0; net.params().len()];
    net.staged_loss_grad_and_curvature(&mut all, rows, &mut want_h)
        .unwrap();
    // One step over the whole training set.
    let config = TrainConfig {
        epochs: 1,
        batch: rows,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, Box::new(BatchProbe::default()), config).unwrap();
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    assert!(recorded(&t, 0).iter().all(|&n| n == rows as f64));
    let squares = recorded(&t, 1);
    assert_eq!(squares.len(), want.len());
    assert!(want.iter().any(|&v| v > 0.0));
    for (i, (&got, &want)) in squares.iter().zip(&want).enumerate() {
        assert!(
            (got - want).abs() <= 1e-15 + 1e-9 * want,
            "parameter {i}: {got} vs {want}"
        );
    }
    for (i, (&got, &want)) in recorded(&t, 2).iter().zip(&want_h).enumerate() {
        assert!(
            (got - want).abs() <= 1e-12 + 1e-9 * want.abs(),
            "parameter {i}: {got} vs {want}"
        );
    }
    // Batches of 64: the last batch of the epoch is shorter, and `n_mb` says so.
    let mut t = trainer(Box::new(BatchProbe::default()), 1);
    t.fit(&data.train, &data.test, &mut Silent).unwrap();
    let last = match rows % 64 {
        0 => 64,
        r => r,
    };
    assert_ne!(last, 64, "the test wants a short last batch");
    assert!(recorded(&t, 0).iter().all(|&n| n == last as f64));
}

#[test]
fn input_rules_resume_bit_for_bit() {
    let data = data();
    for name in ["vsgd", "vsgd_mb", "vsgd_fd"] {
        let mut straight = trainer(builtin_rule(name).unwrap(), 2);
        straight.fit(&data.train, &data.test, &mut Silent).unwrap();
        let mut first = trainer(builtin_rule(name).unwrap(), 1);
        first.fit(&data.train, &data.test, &mut Silent).unwrap();
        let mut saved = first.state();
        // vsgd_fd keeps the parameters before the last step and its g_prev;
        // vsgd's and vsgd_mb's inputs are computed afresh each step.
        let buffers = if name == "vsgd_fd" { 2 } else { 0 };
        assert_eq!(saved.input_buffers.len(), buffers, "{name}");
        saved.config.epochs = 2;
        let mut resumed = trainer(builtin_rule(name).unwrap(), 2);
        resumed.restore(saved).unwrap();
        resumed.fit(&data.train, &data.test, &mut Silent).unwrap();
        assert_eq!(
            resumed.network().params(),
            straight.network().params(),
            "{name}"
        );
    }
}

#[test]
fn an_unknown_input_is_a_typed_error() {
    let spec = NetworkSpec::classifier(256, &[8], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let Err(err) = Trainer::new(net, Box::new(Odd::default()), TrainConfig::default()) else {
        panic!("a rule with an unknown input is refused")
    };
    assert!(err.to_string().contains("takes inputs [foo]"), "{err}");
}

#[test]
fn g_prev_does_not_combine_with_other_inputs() {
    let spec = NetworkSpec::classifier(256, &[8], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let Err(err) = Trainer::new(net, Box::new(Mixed::default()), TrainConfig::default()) else {
        panic!("g_prev with h is refused")
    };
    assert!(
        err.to_string()
            .contains("takes inputs [g_prev: previous_grad, h: curvature]"),
        "{err}"
    );
}
