//! criterion benchmarks of the fused step, the same-traffic bound and the
//! interpreter, for a few built-ins at 10^5 and 10^7 parameters, and of the
//! 8-bit encode (`cargo bench --bench step`). `optdsl bench` prints the same
//! comparison as one line per rule.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use optdsl::quant::quantizer;
use optdsl::{builtin_rule, builtins, DynFloat, State, QBLOCK};

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

/// The 8-bit encode of 2^15 values in blocks of 256 (in cache), from the
/// map's progressions (`quantize`) against the table alone
/// (`quantize_table`, a gather per 16 values under AVX-512), on each map:
/// values spread over six decades, as Adam's moments are.
fn encode_8bit(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_8bit");
    let n = 1 << 15;
    let mut s = 1u64;
    let xs: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            u * u * u * 1e-3
        })
        .collect();
    let mut codes = vec![0u8; n];
    for (map, signed) in [("signed", true), ("unsigned", false)] {
        let q = quantizer(signed);
        let xs: Vec<f32> = if signed {
            xs.clone()
        } else {
            xs.iter().map(|x| x.abs()).collect()
        };
        for (how, table) in [("progressions", false), ("table", true)] {
            group.bench_function(BenchmarkId::new(how, map), |b| {
                b.iter(|| {
                    for (x, c) in xs.chunks(QBLOCK).zip(codes.chunks_mut(QBLOCK)) {
                        if table {
                            q.quantize_table(x, c);
                        } else {
                            q.quantize(x, c);
                        }
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, fused, encode_8bit);
criterion_main!(benches);
