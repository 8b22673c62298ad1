//! Random draws in rules (`rand()`, `randn()`): the same bits compiled and
//! from text (JIT on and off), on one and two threads, at every SIMD level,
//! by the reference interpreter, for a tensor cut into slices, and after a
//! saved and loaded optimizer state; the seed is a typed API; and the draws
//! pass a statistical test (mean, variance, tails, and no correlation
//! across elements, steps, streams and tensors over 10^6 draws).

mod common;

use common::data;
use optdsl::exec::{self, Simd};
use optdsl::{
    builtin_rule, optimizer, DrawSeed, DynFloat, DynRule, Float, Optimizer, OptimizerState, Rules,
    State, UpdateRule,
};

optimizer! {
    /// Every place a draw can be: a buffer started from one, reductions of
    /// draws (one of draws alone), a draw under a per-element condition and
    /// under a per-step switch, and two independent streams in one
    /// expression.
    pub Drawn {
        hyper lr = 0.1, sigma = 0.01, on = true;
        state m = 0.5 * rand(), v = 0;
        let z = randn();
        m = 0.9 * m + 0.1 * g + sigma * z;
        v = if g > 0 { v + rand() } else { v - z * z };
        let s = mean(randn() * g) + 1e-3 * sum(rand());
        w -= lr * (m + s) + sigma * (randn() - randn());
        if on { w += sigma * rand(); }
    }
}

optimizer! {
    /// Draws with no reduction: the reference interpreter gives its bits.
    pub Langevin {
        hyper lr = 0.01;
        state m = 0;
        m = 0.5 * m + g;
        w = w - (lr / 2) * m + sqrt(lr) * randn() + lr * rand();
    }
}

optimizer! {
    /// The draws themselves, written into `w` and a buffer.
    pub Draws {
        state u = 0;
        u = rand();
        w = randn();
    }
}

optimizer! {
    /// A reduction pass that loads nothing: the sum of draws alone.
    pub DrawSum {
        let s = sum(rand());
        w -= 1e-6 * s * g;
    }
}

fn bits<F: Float>(x: &[F]) -> Vec<u64> {
    x.iter().map(|v| v.to_f64().to_bits()).collect()
}

/// `steps` steps of `rule` from fixed data; the parameters and the state.
fn steps<F: DynFloat>(
    rule: &dyn DynRule,
    n: usize,
    steps: u64,
    seed: Option<DrawSeed>,
) -> (Vec<F>, State<F>) {
    let mut w: Vec<F> = data(n, 1);
    let mut s: State<F> = F::dyn_init(rule, n);
    s.draws = seed;
    for k in 0..steps {
        let g: Vec<F> = data(n, k + 2);
        F::dyn_step(rule, &mut s, &mut w, &g, &[]).unwrap();
    }
    (w, s)
}

fn same<F: DynFloat>(a: &(Vec<F>, State<F>), b: &(Vec<F>, State<F>), what: &str) {
    assert_eq!(bits(&a.0), bits(&b.0), "{what}: w");
    for (k, (x, y)) in a.1.buffers.iter().zip(&b.1.buffers).enumerate() {
        assert_eq!(bits(x), bits(y), "{what}: buffer {k}");
    }
    let sa: Vec<u64> = a.1.scalars.iter().map(|x| x.to_bits()).collect();
    let sb: Vec<u64> = b.1.scalars.iter().map(|x| x.to_bits()).collect();
    assert_eq!(sa, sb, "{what}: scalars");
}

/// The compiled rule, and its text through the JIT and the interpreter.
fn forms(compiled: Box<dyn DynRule>) -> Vec<(String, Box<dyn DynRule>)> {
    let text = Rules::parse(compiled.info().source).unwrap().remove(0);
    vec![
        ("compiled".into(), compiled),
        ("jit".into(), Box::new(text.clone().with_jit(true))),
        ("interpreter".into(), Box::new(text.with_jit(false))),
    ]
}

fn compare_all<F: DynFloat>(n: usize, reference: &(Vec<F>, State<F>), what: &str) {
    let seed = Some(DrawSeed {
        seed: 42,
        tensor: 3,
        offset: 0,
    });
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for (form, rule) in forms(Box::new(Drawn::default())) {
            let got = pool.install(|| steps::<F>(&*rule, n, 4, seed));
            same(
                reference,
                &got,
                &format!("{what} {form} threads={threads} n={n}"),
            );
        }
    }
}

#[test]
fn draws_give_the_same_bits_compiled_interpreted_threaded_and_at_every_simd_level() {
    // One test: the SIMD level is process-wide.
    let before = exec::level();
    let seed = Some(DrawSeed {
        seed: 42,
        tensor: 3,
        offset: 0,
    });
    for n in [1, 63, 1000, 16384 + 77, 3 * 65536 + 1234] {
        exec::force(Simd::Portable);
        let r32 = steps::<f32>(&Drawn::default(), n, 4, seed);
        let r64 = steps::<f64>(&Drawn::default(), n, 4, seed);
        for level in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
            let got = exec::force(level);
            compare_all(n, &r32, &format!("f32 {got:?}"));
            compare_all(n, &r64, &format!("f64 {got:?}"));
        }
        // The draws did something: another seed moves w.
        let other = steps::<f64>(
            &Drawn::default(),
            n,
            4,
            Some(DrawSeed {
                seed: 43,
                tensor: 3,
                offset: 0,
            }),
        );
        assert_ne!(
            bits(&other.0),
            bits(&r64.0),
            "n={n}: the seed changed nothing"
        );
    }
    exec::force(before);
}

#[test]
fn a_pass_of_draws_alone_runs_the_same_compiled_and_interpreted() {
    let seed = Some(DrawSeed {
        seed: 1,
        tensor: 0,
        offset: 0,
    });
    for n in [1, 1000, 3 * 65536 + 5] {
        let reference = steps::<f64>(&DrawSum::default(), n, 2, seed);
        // Σ of n uniforms moved w: about n/2 each step.
        let moved = data::<f64>(n, 1)[n - 1] - reference.0[n - 1];
        assert!(n == 1 || moved != 0.0, "n={n}");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (form, rule) in forms(Box::new(DrawSum::default())) {
                let got = pool.install(|| steps::<f64>(&*rule, n, 2, seed));
                same(&reference, &got, &format!("{form} n={n} threads={threads}"));
            }
        }
    }
}

#[test]
fn the_reference_interpreter_draws_the_same_bits() {
    let n = 70_000;
    let seed = Some(DrawSeed {
        seed: 9,
        tensor: 1,
        offset: 0,
    });
    for (form, rule) in forms(Box::new(Langevin::default())) {
        let fused = steps::<f32>(&*rule, n, 3, seed);
        let mut w: Vec<f32> = data(n, 1);
        let mut s: State<f32> = rule.init_f32(n);
        s.draws = seed;
        for k in 0..3 {
            let g: Vec<f32> = data(n, k + 2);
            optdsl::naive::naive_step_dyn(&*rule, &mut s, &mut w, &g, &[]).unwrap();
        }
        same(&fused, &(w, s), &format!("reference against {form}"));
    }
}

#[test]
fn a_tensor_cut_into_slices_draws_what_the_whole_tensor_draws() {
    // Sharded optimizer state: each piece keeps where it starts.
    let n = 5000;
    let mut whole =
        Optimizer::<f64>::with_rule(builtin_rule("sgld").unwrap(), &[3000, 2000]).with_seed(11);
    let mut parts: Vec<Optimizer<f64>> = [0..1234, 1234..4100, 4100..5000]
        .into_iter()
        .map(|r| whole.slice(r).unwrap())
        .collect();
    let mut w: Vec<f64> = data(n, 1);
    let mut w_parts = w.clone();
    for k in 0..3 {
        let g: Vec<f64> = data(n, k + 2);
        whole.step_flat(&mut w, &g).unwrap();
        let mut lo = 0;
        for p in &mut parts {
            let hi = lo + p.param_count();
            p.step_flat(&mut w_parts[lo..hi], &g[lo..hi]).unwrap();
            lo = hi;
        }
    }
    assert_eq!(bits(&w), bits(&w_parts));
    let states: Vec<OptimizerState<f64>> = parts.iter().map(Optimizer::state).collect();
    let joined = OptimizerState::join(states, &[vec![3000, 2000]]).unwrap();
    assert_eq!(joined, whole.state());
}

#[test]
fn a_saved_and_loaded_optimizer_draws_on_as_if_never_stopped() {
    let make = |seed: u64| {
        let mut o =
            Optimizer::<f32>::with_rule(builtin_rule("noisy_sgd").unwrap(), &[700]).with_seed(seed);
        o.add_group(Box::new(Drawn::default()), &[300, 77]);
        o
    };
    let n = 700 + 300 + 77;
    let grads = |k: u64| data::<f32>(n, k + 2);
    let mut straight = make(5);
    let mut w: Vec<f32> = data(n, 1);
    for k in 0..10 {
        straight.step_flat(&mut w, &grads(k)).unwrap();
    }
    let mut first = make(5);
    let mut w2: Vec<f32> = data(n, 1);
    for k in 0..4 {
        first.step_flat(&mut w2, &grads(k)).unwrap();
    }
    let saved = serde_json::to_string(&first.state()).unwrap();
    // Loaded into an optimizer seeded otherwise: the saved seed wins.
    let mut resumed = make(999);
    resumed
        .load_state(serde_json::from_str(&saved).unwrap())
        .unwrap();
    assert_eq!(resumed.seed(), 5);
    for k in 4..10 {
        resumed.step_flat(&mut w2, &grads(k)).unwrap();
    }
    assert_eq!(bits(&w), bits(&w2));
    assert_eq!(straight.state(), resumed.state());
}

#[test]
fn the_seed_is_typed_and_tensors_draw_apart() {
    let run = |seed: u64| {
        let mut o =
            Optimizer::<f64>::with_rule(Box::new(Draws::default()), &[1000, 1000]).with_seed(seed);
        let mut w = vec![0.0; 2000];
        o.step_flat(&mut w, &[0.0; 2000]).unwrap();
        w
    };
    let a = run(1);
    assert_eq!(bits(&a), bits(&run(1)));
    assert_ne!(bits(&a), bits(&run(2)));
    // The two tensors of one optimizer draw different numbers.
    assert_ne!(bits(&a[..1000]), bits(&a[1000..]));
    let mut o = Optimizer::<f64>::with_rule(Box::new(Draws::default()), &[10]);
    assert_eq!(o.seed(), 0);
    o.set_seed(77);
    assert_eq!(o.seed(), 77);
    assert_eq!(o.groups()[0].states()[0].draws.unwrap().seed, 77);
    // Old states (no seed saved) load with this optimizer's seed.
    let mut old = o.state();
    old.seed = None;
    for s in &mut old.groups[0].states {
        s.draws = None;
    }
    let mut fresh = Optimizer::<f64>::with_rule(Box::new(Draws::default()), &[10]).with_seed(8);
    fresh.load_state(old).unwrap();
    assert_eq!(fresh.seed(), 8);
    assert_eq!(fresh.groups()[0].states()[0].draws.unwrap().seed, 8);
}

#[test]
fn sparse_steps_refuse_rules_that_draw() {
    let mut o = Optimizer::<f32>::with_rule(builtin_rule("sgld").unwrap(), &[8]);
    let mut table = vec![0.0f32; 8];
    let g = optdsl::sparse::SparseGrad {
        cols: 2,
        rows: &[1],
        values: &[1.0, 1.0],
    };
    let e = o
        .step_sparse(&mut [&mut table], &[g])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("draws random numbers") && e.contains("densely"),
        "{e}"
    );
    assert_eq!(table, [0.0; 8]);
}

/// Mean, variance and the correlation of `a` with `b`, in f64.
fn moments(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let va = a.iter().map(|x| (x - ma) * (x - ma)).sum::<f64>() / n;
    let vb = b.iter().map(|x| (x - mb) * (x - mb)).sum::<f64>() / n;
    let cov = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / n;
    (ma, va, cov / (va * vb).sqrt())
}

#[test]
fn a_million_draws_pass_a_statistical_test() {
    // Bounds at five standard errors of each statistic for N = 10^6 (the
    // draws are fixed by the seed, so the test is deterministic; a biased
    // or correlated generator fails it).
    let n = 1_000_000;
    let tol = 5.0 / (n as f64).sqrt(); // 0.005
    let mut o = Optimizer::<f64>::with_rule(Box::new(Draws::default()), &[n, n]).with_seed(2026);
    let mut w = vec![0.0; 2 * n];
    let zero = vec![0.0; 2 * n];
    o.step_flat(&mut w, &zero).unwrap();
    let z1 = w[..n].to_vec();
    let other_tensor = w[n..].to_vec();
    let u1 = o.groups()[0].states()[0].buffers[0].clone();
    o.step_flat(&mut w, &zero).unwrap();
    let z2 = w[..n].to_vec();
    let u2 = o.groups()[0].states()[0].buffers[0].clone();

    // Normal: mean 0, variance 1 (its standard error is sqrt(2/N)).
    let (mean, var, next) = moments(&z1[..n - 1], &z1[1..]);
    assert!(mean.abs() < tol, "normal mean {mean}");
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
        "normal variance {var}"
    );
    assert!(next.abs() < tol, "consecutive elements correlate: {next}");
    let (_, _, steps) = moments(&z1, &z2);
    assert!(steps.abs() < tol, "consecutive steps correlate: {steps}");
    let (_, _, tensors) = moments(&z1, &other_tensor);
    assert!(tensors.abs() < tol, "two tensors correlate: {tensors}");
    let (_, _, streams) = moments(&z1, &u1);
    assert!(streams.abs() < tol, "two streams correlate: {streams}");
    println!(
        "randn, 10^6 draws: mean {mean:.5}, variance {var:.5}, correlation of consecutive elements {next:.5}, of consecutive steps {steps:.5}, of two tensors {tensors:.5}, of two streams {streams:.5}"
    );
    // Tails: P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027.
    let beyond = |k: f64| z1.iter().filter(|z| z.abs() > k).count() as f64 / n as f64;
    let p2 = 0.045_500_263_896_358_4;
    let p3 = 0.002_699_796_063_260_2;
    assert!((beyond(2.0) - p2).abs() < 5.0 * (p2 * (1.0 - p2) / n as f64).sqrt());
    assert!((beyond(3.0) - p3).abs() < 5.0 * (p3 * (1.0 - p3) / n as f64).sqrt());

    // Uniform on [0, 1): mean 1/2, variance 1/12, every decile 10%.
    assert!(u1.iter().all(|&u| (0.0..1.0).contains(&u)));
    let (mean, var, next) = moments(&u1[..n - 1], &u1[1..]);
    let sd = (1.0f64 / 12.0).sqrt();
    assert!((mean - 0.5).abs() < tol * sd, "uniform mean {mean}");
    assert!(
        (var - 1.0 / 12.0).abs() < 5.0 * (1.0 / 180.0 / n as f64).sqrt(),
        "uniform variance {var}"
    );
    assert!(next.abs() < tol, "consecutive uniforms correlate: {next}");
    let (_, _, steps) = moments(&u1, &u2);
    assert!(
        steps.abs() < tol,
        "uniforms at consecutive steps correlate: {steps}"
    );
    let mut deciles = [0usize; 10];
    for &u in &u1 {
        deciles[(u * 10.0) as usize] += 1;
    }
    // Chi-square with 9 degrees of freedom: 27.9 is its 0.999 quantile.
    let e = n as f64 / 10.0;
    let chi2: f64 = deciles.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
    assert!(chi2 < 27.9, "uniform deciles {deciles:?} (chi2 {chi2})");
    println!(
        "rand, 10^6 draws: mean {mean:.5}, variance {var:.5} (1/12 = 0.08333), correlation of consecutive elements {next:.5}, of consecutive steps {steps:.5}, deciles chi2 {chi2:.2}"
    );
}

#[test]
fn f32_draws_are_the_f64_draws_rounded() {
    let n = 4096;
    let seed = Some(DrawSeed {
        seed: 3,
        tensor: 0,
        offset: 0,
    });
    let (w32, _) = steps::<f32>(&Draws::default(), n, 1, seed);
    let (w64, _) = steps::<f64>(&Draws::default(), n, 1, seed);
    assert!(w32.iter().zip(&w64).all(|(a, b)| *a == *b as f32));
}

#[test]
fn a_rule_without_its_optimizer_draws_with_seed_zero() {
    // UpdateRule::step alone: the state's draws are unset, seed 0, tensor 0.
    let rule = Draws::default();
    let mut s = rule.init::<f64>(5);
    let mut w = vec![0.0; 5];
    rule.step(&mut s, &mut w, &[0.0; 5]);
    let mut o = Optimizer::<f64>::with_rule(Box::new(Draws::default()), &[5]);
    let mut w2 = vec![0.0; 5];
    o.step_flat(&mut w2, &[0.0; 5]).unwrap();
    assert_eq!(bits(&w), bits(&w2));
}
