//! The rule core alone (`default-features = false`, as CI builds it with
//! `cargo test -p optdsl-runtime --no-default-features --test bare_core`): a
//! user's `optimizer!` rule, a built-in chosen by name, a rule read from text
//! and the `Optimizer`, with no networks, data, pictures or MPI compiled in.

extern crate optdsl_runtime as optdsl;

use optdsl::{builtin_rule, optimizer, DynRule, Optimizer, Rules, UpdateRule};

optimizer! {
    /// Adam as the paper writes it.
    pub PaperAdam {
        hyper lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        state m = 0, v = 0;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g^2;
        let mhat = m / (1 - b1^t);
        let vhat = v / (1 - b2^t);
        w -= lr * mhat / (sqrt(vhat) + eps);
    }
}

fn grad(w: &[f64]) -> Vec<f64> {
    // f(w) = sum (w_i - i)^2 / 2
    w.iter().enumerate().map(|(i, x)| x - i as f64).collect()
}

#[test]
fn a_user_rule_compiles_and_agrees_with_the_built_in_and_the_text_rule() {
    let n = 37;
    let rule = PaperAdam::default();
    let mut w1 = vec![0.5f64; n];
    let mut s1 = rule.init::<f64>(n);
    let builtin = builtin_rule("adam").expect("adam is built in");
    let mut w2 = w1.clone();
    let mut s2 = builtin.init_f64(n);
    let text = Rules::parse(DynRule::info(&rule).source).expect("the rule's own text parses");
    let from_text = &text[0];
    let mut w3 = w1.clone();
    let mut s3 = from_text.init_f64(n);
    for _ in 0..25 {
        let g1 = grad(&w1);
        rule.step(&mut s1, &mut w1, &g1);
        let g2 = grad(&w2);
        builtin.step_f64(&mut s2, &mut w2, &g2, &[]).unwrap();
        let g3 = grad(&w3);
        from_text.step_f64(&mut s3, &mut w3, &g3, &[]).unwrap();
    }
    // torch's Adam divides by sqrt(v_hat) + eps with v_hat = v / (1 - b2^t),
    // as the paper's rule does: the same bits.
    assert_eq!(w1, w2);
    assert_eq!(w1, w3);
    // and the rule moved every coordinate towards its minimum at i.
    assert!(w1
        .iter()
        .enumerate()
        .all(|(i, x)| (x - i as f64).abs() < (0.5 - i as f64).abs()));
}

#[test]
fn the_optimizer_steps_groups_and_refuses_bad_lengths() {
    let mut w = vec![1.0f32; 10];
    let mut opt = Optimizer::<f32>::new();
    opt.add_group(builtin_rule("sgd").unwrap(), &[w.len()]);
    let g = vec![1.0f32; 10];
    opt.step(&mut [&mut w], &[&g]).unwrap();
    assert!(w.iter().all(|&x| x < 1.0));
    let before = w.clone();
    let err = opt.step(&mut [&mut w], &[&g[..3]]).unwrap_err();
    assert!(err.to_string().contains("length"), "{err}");
    assert_eq!(w, before, "a refused step changes nothing");
}
