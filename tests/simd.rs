//! The generated loop gives the same bits on every SIMD path and on any number
//! of threads (one test: the SIMD level is process-wide).

use optdsl::exec::{self, Simd};
use optdsl::{optimizer, UpdateRule};

optimizer! {
    /// Adam with decoupled decay and a LAMB-style trust ratio: per-step
    /// scalars, two buffers, a reduction stage and a selection.
    pub Mixed {
        hyper lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
        state m = 0, v = 0;
        m = b1*m + (1-b1)*g;
        v = b2*v + (1-b2)*g^2;
        let u = m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) + wd*w;
        let wn = norm(w);
        let un = norm(u);
        let ratio = if wn > 0 && un > 0 { wn / un } else { 1 };
        w -= lr * ratio * select(abs(u) > 1e-3, u, sign(u) * 1e-3);
    }
}

fn run<F: optdsl::Float>(n: usize, threads: usize) -> (Vec<F>, optdsl::State<F>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let rule = Mixed::default();
        let mut w: Vec<F> = (0..n)
            .map(|i| F::from_f64(((i * 7919) % 1000) as f64 / 500.0 - 1.0))
            .collect();
        let mut s = rule.init::<F>(n);
        for step in 0..3 {
            let g: Vec<F> = (0..n)
                .map(|i| F::from_f64((((i + step) * 104729) % 2001) as f64 / 1000.0 - 1.0))
                .collect();
            rule.step(&mut s, &mut w, &g);
        }
        (w, s)
    })
}

#[test]
fn every_path_and_thread_count_gives_the_same_bits() {
    // Above the parallel threshold, with a ragged tail.
    let n = (1 << 18) + 37;
    let before = exec::level();
    let mut results32 = Vec::new();
    let mut results64 = Vec::new();
    for wanted in [Simd::Portable, Simd::Avx2, Simd::Avx512] {
        let got = exec::force(wanted);
        for threads in [1, 2, 3] {
            results32.push((got, threads, run::<f32>(n, threads)));
            results64.push((got, threads, run::<f64>(n, threads)));
        }
    }
    exec::force(before);
    for (level, threads, r) in &results32[1..] {
        assert!(
            r == &results32[0].2,
            "f32 differs on {level:?} with {threads} threads"
        );
    }
    for (level, threads, r) in &results64[1..] {
        assert!(
            r == &results64[0].2,
            "f64 differs on {level:?} with {threads} threads"
        );
    }
    // and the step did something
    assert!(results64[0].2 .0.iter().any(|&x| x != 0.0));
}

#[test]
fn reductions_do_not_depend_on_where_the_buffers_are() {
    // The same tensor at 16 different offsets from a 64-byte boundary.
    let n = 5000;
    let rule = Mixed::default();
    let mut reference: Option<Vec<f32>> = None;
    for offset in 0..16 {
        let mut w_store = vec![0.0f32; n + 16];
        let mut g_store = vec![0.0f32; n + 16];
        let w = &mut w_store[offset..offset + n];
        let g = &mut g_store[offset..offset + n];
        for i in 0..n {
            w[i] = ((i * 7919) % 1000) as f32 / 500.0 - 1.0;
            g[i] = ((i * 104729) % 2001) as f32 / 1000.0 - 1.0;
        }
        let mut s = rule.init::<f32>(n);
        rule.step(&mut s, w, g);
        rule.step(&mut s, w, g);
        match &reference {
            None => reference = Some(w.to_vec()),
            Some(r) => assert!(r == w, "offset {offset} changed the result"),
        }
    }
}
