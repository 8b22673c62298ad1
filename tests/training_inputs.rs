//! Rules that take an input train through the trainer: `g_prev` from a second
//! backward pass at the previous parameters, `h` from the finite difference of
//! the two gradients; both survive a checkpoint bit for bit.

use optdsl::data::{CsvOptions, DataSource, Split};
use optdsl::net::{Activation, Network, NetworkSpec};
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, optimizer};

optimizer! {
    /// A rule with an input the trainer does not know.
    pub Odd { input foo; w -= 0.1 * foo; }

    /// Plain gradient descent that records g_prev: w moves by g_prev's mean
    /// difference from g, which is 0 on the first step.
    pub Probe { hyper lr = 0.05; input g_prev; state diff = 0; diff = g - g_prev; w -= lr * g; }
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
fn input_rules_resume_bit_for_bit() {
    let data = data();
    for name in ["vsgd", "vsgd_fd"] {
        let mut straight = trainer(builtin_rule(name).unwrap(), 2);
        straight.fit(&data.train, &data.test, &mut Silent).unwrap();
        let mut first = trainer(builtin_rule(name).unwrap(), 1);
        first.fit(&data.train, &data.test, &mut Silent).unwrap();
        let mut saved = first.state();
        assert_eq!(saved.input_buffers.len(), 2, "{name}");
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
