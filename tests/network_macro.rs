//! `network!`: specs written as the slides write them become types that build
//! the runtime's networks (one parameter buffer, weights and biases as
//! segments) and train with any built-in optimizer.

use optdsl::data::{CsvOptions, DataSource};
use optdsl::net::{Activation, Network, NetworkSpec};
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, network, HyperValue};

network! {
    /// The course's digit network: 16x16 pixels in, 10 digits out.
    pub Digits {
        input 256;
        dense 128 sigmoid;
        dense 64 sigmoid;
        dense 10 softmax;
        loss cross_entropy;
    }

    /// The slides' example: three 2-unit sigmoid layers, Euclidean cost.
    pub SlidesExample { input 2; dense 2 sigmoid; dense 2 sigmoid; dense 2 sigmoid; loss mse; }

    /// A small Semeion classifier.
    SmallDigits { input 256; dense 32 tanh; dense 10 softmax; loss cross_entropy; }
}

#[test]
fn the_digits_spec_is_the_course_network() {
    assert_eq!(Digits::<f32>::INPUTS, 256);
    assert_eq!(Digits::<f32>::OUTPUTS, 10);
    assert_eq!(
        Digits::<f32>::PARAM_COUNT,
        256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    );
    let built = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    assert_eq!(Digits::<f32>::spec(), built);
    // Same seed, same initial parameters as a network built at run time.
    let net = Digits::<f32>::new(7);
    let runtime = Network::<f32>::new(built, 7).unwrap();
    assert_eq!(net.params(), runtime.params());
    assert_eq!(net.params().len(), Digits::<f32>::PARAM_COUNT);
}

#[test]
fn the_slides_example_gives_the_slides_outputs() {
    let mut net = SlidesExample::<f64>::new(0);
    net.set_layer(0, &[1.0, -2.0, -1.0, 1.0], &[1.0, 0.0])
        .unwrap();
    net.set_layer(1, &[2.0, -1.0, -2.0, -1.0], &[0.0, 0.0])
        .unwrap();
    net.set_layer(2, &[3.0, -1.0, -1.0, 4.0], &[-2.0, 2.0])
        .unwrap();
    let round2 =
        |v: Vec<f64>| -> Vec<f64> { v.iter().map(|x| (x * 100.0).round() / 100.0).collect() };
    assert_eq!(round2(net.predict(&[1.0, -1.0]).unwrap()), [0.62, 0.83]);
    assert_eq!(round2(net.predict(&[0.0, 0.0]).unwrap()), [0.51, 0.85]);
}

#[test]
fn a_macro_network_trains_on_semeion() {
    let data = "semeion"
        .parse::<DataSource>()
        .unwrap()
        .load(&CsvOptions::default(), None, 1)
        .unwrap();
    let mut rule = builtin_rule("adam").unwrap();
    rule.set_hyper("lr", HyperValue::Num(0.01)).unwrap();
    let config = TrainConfig {
        epochs: 4,
        batch: 32,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(SmallDigits::<f32>::new(1).net, rule, config).unwrap();
    trainer.fit(&data.train, &data.test, &mut Silent).unwrap();
    let acc = trainer.records().last().unwrap().test_accuracy;
    assert!(acc > 0.8, "test accuracy {acc}");
}

#[test]
fn a_spec_type_can_start_from_pytorchs_generator() {
    use optdsl::rng::Generator;
    let ours = Digits::<f32>::new_with(0, Generator::Torch);
    let runtime = Network::<f32>::new_with(Digits::<f32>::spec(), 0, Generator::Torch).unwrap();
    assert_eq!(ours.params(), runtime.params());
    assert_ne!(ours.params(), Digits::<f32>::new(0).params());
}
