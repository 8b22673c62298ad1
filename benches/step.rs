//! criterion benchmarks of the fused step, the same-traffic bound and the
//! interpreter, for a few built-ins at 10^5 and 10^7 parameters
//! (`cargo bench --bench step`). `optdsl bench` prints the same comparison as
//! one line per rule.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use optdsl::{builtin_rule, builtins, DynFloat, State};

fn fused(c: &mut Criterion) {
    let mut group = c.benchmark_group("fused_step_f32");
    group.sample_size(20);
    for name in ["sgd", "adam", "lamb"] {
        if !builtins().iter().any(|b| b.name == name) {
            continue;
        }
        for n in [100_000usize, 10_000_000] {
            let rule = builtin_rule(name).expect("built in");
            let mut w = vec![0.5f32; n];
            let g: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect();
            let mut state: State<f32> = f32::dyn_init(rule.as_ref(), n);
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    f32::dyn_step(rule.as_ref(), &mut state, &mut w, &g, &[]).expect("lengths")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, fused);
criterion_main!(benches);
