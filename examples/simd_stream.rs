//! The same memory-bound loop (`w -= 0.1 * g` over 10^7 f32) compiled for the
//! baseline, AVX2 and AVX-512, timed in turn: which vector width streams
//! fastest on this machine. Run with `cargo run --release --example simd_stream`.

use optdsl::stats::median;
use std::time::Instant;

#[inline(always)]
fn stream(w: &mut [f32], g: &[f32]) {
    for (x, y) in w.iter_mut().zip(g) {
        *x -= 0.1 * *y;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn stream_avx2(w: &mut [f32], g: &[f32]) {
    stream(w, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn stream_avx512(w: &mut [f32], g: &[f32]) {
    stream(w, g)
}

fn main() {
    let n = 10_000_000;
    let g: Vec<f32> = (0..n).map(|i| ((i % 97) as f32 - 48.0) * 1e-3).collect();
    let mut w = vec![0.5f32; n];
    let best = optdsl::exec::detected();
    let mut times: [Vec<f64>; 3] = Default::default();
    for _ in 0..31 {
        let t = Instant::now();
        stream(&mut w, &g);
        times[0].push(t.elapsed().as_secs_f64() * 1e3);
        #[cfg(target_arch = "x86_64")]
        {
            if best >= optdsl::exec::Simd::Avx2 {
                let t = Instant::now();
                // SAFETY: the CPU has AVX2.
                unsafe { stream_avx2(&mut w, &g) };
                times[1].push(t.elapsed().as_secs_f64() * 1e3);
            }
            if best >= optdsl::exec::Simd::Avx512 {
                let t = Instant::now();
                // SAFETY: the CPU has AVX-512F.
                unsafe { stream_avx512(&mut w, &g) };
                times[2].push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    for (name, t) in ["portable", "avx2", "avx512"].iter().zip(times) {
        if !t.is_empty() {
            println!(
                "{name:<9} {:.3} ms (median of {})",
                median(t.clone()),
                t.len()
            );
        }
    }
}
