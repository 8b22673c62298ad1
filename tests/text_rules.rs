//! Rules from text against the same rules compiled: every built-in's own
//! source text, run by the JIT and by the block interpreter, gives the compiled rule's bits
//! (parameters, buffers and scalar state) for 20 steps of random data, in f32
//! and f64, at lengths that are not multiples of the block size, on one and
//! two threads, with the defaults and with every switch turned on.

mod common;

use common::data;
use optdsl::{builtins, DynFloat, DynRule, Float, HyperValue, Rules, State};

fn same_bits<F: Float>(a: &[F], b: &[F]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
}

fn run<F: DynFloat>(compiled: &dyn DynRule, text: &dyn DynRule, n: usize, what: &str) {
    let info = compiled.info();
    let inputs: Vec<Vec<F>> = info
        .inputs
        .iter()
        .enumerate()
        .map(|(k, _)| {
            data::<F>(n, 1000 + k as u64)
                .iter()
                .map(|x| x.abs())
                .collect()
        })
        .collect();
    let refs: Vec<&[F]> = inputs.iter().map(|v| v.as_slice()).collect();
    let mut w1: Vec<F> = data(n, 1);
    let mut w2 = w1.clone();
    // Rules with shapes get a matrix (`[d, n / d]`, d the least divisor
    // above 1), so their factored and matrix paths run.
    let (mut s1, mut s2): (State<F>, State<F>) = if info.program().tensor.is_some() {
        let d = (2..n).find(|d| n.is_multiple_of(*d)).unwrap_or(1);
        let shape = [d, n / d];
        (
            F::dyn_init_shaped(compiled, &shape).unwrap(),
            F::dyn_init_shaped(text, &shape).unwrap(),
        )
    } else {
        (F::dyn_init(compiled, n), F::dyn_init(text, n))
    };
    assert_eq!(s1.buffers, s2.buffers, "{what}: initial buffers");
    for step in 0..20u64 {
        let g: Vec<F> = data(n, step + 2);
        F::dyn_step(compiled, &mut s1, &mut w1, &g, &refs).unwrap();
        F::dyn_step(text, &mut s2, &mut w2, &g, &refs).unwrap();
        assert!(
            same_bits(&w1, &w2),
            "{what}: w differs at step {}",
            step + 1
        );
        for (k, (a, b)) in s1.buffers.iter().zip(&s2.buffers).enumerate() {
            assert!(
                same_bits(a, b),
                "{what}: buffer {} differs at step {}",
                info.buffers[k],
                step + 1
            );
        }
        let sa: Vec<u64> = s1.scalars.iter().map(|x| x.to_bits()).collect();
        let sb: Vec<u64> = s2.scalars.iter().map(|x| x.to_bits()).collect();
        assert_eq!(sa, sb, "{what}: scalar state at step {}", step + 1);
    }
}

/// The rule with its defaults, and with every boolean hyperparameter on.
fn variants(rule: &dyn DynRule) -> Vec<Box<dyn DynRule>> {
    let mut on = rule.clone_box();
    for h in rule.info().hypers {
        if let HyperValue::Bool(_) = h.default {
            on.set_hyper(h.name, HyperValue::Bool(true)).unwrap();
        }
    }
    vec![rule.clone_box(), on]
}

fn check_all(threads: usize, lengths: &[usize]) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        for b in builtins() {
            let compiled = (b.make)();
            let texts = Rules::parse(compiled.info().source)
                .unwrap_or_else(|e| panic!("{}: its source does not parse as text:\n{e}", b.name));
            assert_eq!(texts.len(), 1);
            for (c, jit) in variants(&*compiled)
                .into_iter()
                .flat_map(|c| [(c.clone_box(), true), (c, false)])
            {
                let mut t: Box<dyn DynRule> = Box::new(texts[0].clone().with_jit(jit));
                for h in c.info().hypers {
                    t.set_hyper(h.name, c.hyper(h.name).unwrap()).unwrap();
                }
                for &n in lengths {
                    let path = if jit { "jit" } else { "interpreter" };
                    let what = format!("{} ({path}) n={n} threads={threads}", b.name);
                    run::<f32>(&*c, &*t, n, &format!("{what} f32"));
                    run::<f64>(&*c, &*t, n, &format!("{what} f64"));
                }
            }
        }
    });
}

#[test]
fn every_builtin_from_text_gives_the_compiled_bits_on_one_thread() {
    check_all(1, &[1, 63, 1000, 16384 + 77]);
}

#[test]
fn every_builtin_from_text_gives_the_compiled_bits_on_two_threads() {
    // Long enough to be split among threads (super-blocks of 65,536).
    check_all(2, &[3 * 65536 + 1234]);
}

#[test]
fn a_rule_file_with_comments_and_doc_lines_runs() {
    let text = "// A comment line.\n\
        /// Momentum, written by hand.\n\
        pub Heavy {\n    hyper lr = 0.1, mu = 0.9; // per-line comment\n    state v = 0;\n    v = mu * v + g;\n    w -= lr * v;\n}\n";
    let rules = Rules::parse(text).unwrap();
    assert_eq!(rules[0].name(), "Heavy");
    assert_eq!(rules[0].info().doc, "Momentum, written by hand.");
    let mut w = vec![1.0f64; 3];
    let mut s = rules[0].init_f64(3);
    rules[0]
        .step_f64(&mut s, &mut w, &[1.0, 0.0, -1.0], &[])
        .unwrap();
    assert_eq!(w, [0.9, 1.0, 1.1]);
}

#[test]
fn text_rule_errors_are_rendered_with_file_line_and_column() {
    let text = "pub R {\n    hyper lr = 0.1;\n    w -= lr * sgn(g);\n}\n";
    let err = Rules::parse_named("rules.opt", text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rules.opt:3:15"), "{err}");
    assert!(err.contains("did you mean `sign`?"), "{err}");
}

#[test]
fn a_preset_in_a_rule_file_runs_as_its_base_with_its_settings() {
    let text = "pub Heavy {\n    hyper lr = 0.1, mu = 0.9, nesterov = false;\n    state v = 0;\n    v = mu * v + g;\n    w -= if nesterov { lr * (g + mu * v) } else { lr * v };\n}\n\
        /// Nesterov's form, a step of 0.5.\n\
        pub Nag = Heavy { hyper lr = 0.5; let nesterov = true; }\n";
    let rules = Rules::parse(text).unwrap();
    assert_eq!(rules[1].name(), "Nag");
    assert_eq!(rules[1].info().hyper_names(), ["lr", "mu"]);
    let mut base = rules[0].clone();
    base.set_hyper("lr", 0.5.into()).unwrap();
    base.set_hyper("nesterov", true.into()).unwrap();
    let g = [1.0, -2.0, 0.25];
    let (mut w1, mut w2) = (vec![1.0f64; 3], vec![1.0f64; 3]);
    let (mut s1, mut s2) = (base.init_f64(3), rules[1].init_f64(3));
    for _ in 0..3 {
        base.step_f64(&mut s1, &mut w1, &g, &[]).unwrap();
        rules[1].step_f64(&mut s2, &mut w2, &g, &[]).unwrap();
    }
    assert_eq!(w1, w2);
    // The preset's source is a rule of its own.
    assert_eq!(Rules::parse(rules[1].info().source).unwrap().len(), 1);
}

#[test]
fn a_mistake_in_a_preset_is_rendered_at_its_file_line_and_column() {
    let text = "pub R {\n    hyper lr = 0.1;\n    w -= lr * g;\n}\npub S = R { hyper lrr = 1; }\n";
    let err = Rules::parse_named("rules.opt", text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rules.opt:5:19"), "{err}");
    assert!(err.contains("did you mean `lr`?"), "{err}");
}
