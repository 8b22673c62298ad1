//! The Shampoo example (a rule with shapes, its inverse fourth roots by a
//! coupled Newton iteration in `repeat`) against the numpy reference of
//! `tools/shampoo_reference.py`, which takes the roots exactly.

#[allow(dead_code)]
#[path = "../examples/shampoo.rs"]
mod example;

#[test]
fn shampoo_matches_the_numpy_reference() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/shampoo/shampoo.json");
    let fixture = optdsl::replay::Fixture::load(&path).unwrap();
    let mut rule = example::Shampoo::default();
    for (name, value) in &fixture.hyper {
        optdsl::UpdateRule::set_hyper(
            &mut rule,
            name,
            optdsl::HyperValue::Num(value.as_f64().unwrap()),
        )
        .unwrap();
    }
    let outcome = optdsl::replay::replay_as::<f64>(&rule, &fixture).unwrap();
    println!("{}", outcome.line("shampoo"));
    assert!(outcome.passed(), "{}", outcome.line("shampoo"));
}

#[test]
fn the_loss_falls_on_the_examples_problem() {
    use optdsl::UpdateRule;
    let (rows, cols) = (6, 4);
    let target: Vec<f64> = (0..rows * cols).map(|k| (k % 5) as f64 - 2.0).collect();
    let rule = example::Shampoo::default();
    let mut state = rule.init_shaped::<f64>(&[rows, cols]).unwrap();
    let mut w = vec![0.0; rows * cols];
    let first = example::gradient(&w, &target, rows, cols).0;
    for _ in 0..30 {
        let (_, g) = example::gradient(&w, &target, rows, cols);
        rule.try_step(&mut state, &mut w, &g).unwrap();
    }
    let last = example::gradient(&w, &target, rows, cols).0;
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}
