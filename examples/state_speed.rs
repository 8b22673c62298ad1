//! A rule's step with f32, bf16 and 8-bit state in one process, the three
//! interleaved step by step so that a busy machine slows them alike; prints
//! each median and its ratio to the f32-state step.
//!
//! `cargo run --release --example state_speed -- [n] [rule] [reps] [formats]`
//! (defaults 10,000,000, `adam`, 15, all three; `formats` a comma list of
//! `f32`, `bf16`, `q8`). Threads: `RAYON_NUM_THREADS`.

use optdsl::{builtin_rule, Optimizer, StateFormat};
use std::time::Instant;

/// One format's optimizer, parameters and step times.
struct Run {
    name: &'static str,
    opt: Optimizer<f32>,
    w: Vec<f32>,
    ms: Vec<f64>,
}

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> Result<(), optdsl::Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let rule = args.get(2).map_or("adam", String::as_str);
    let reps: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(1);
    let only = args.get(4).map_or("", String::as_str);
    let formats = [
        ("f32", StateFormat::Full),
        ("bf16", StateFormat::Bf16),
        ("q8", StateFormat::Q8),
    ];
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut runs = Vec::new();
    for (name, format) in formats {
        if only.is_empty() || only.split(',').any(|o| o == name) {
            runs.push(Run {
                name,
                opt: Optimizer::<f32>::with_rule(builtin_rule(rule)?, &[n])
                    .with_state_format(format),
                w: vec![1.0; n],
                ms: Vec::with_capacity(reps),
            });
        }
    }
    for _ in 0..reps {
        for r in runs.iter_mut() {
            let start = Instant::now();
            r.opt.step_flat(&mut r.w, &g)?;
            r.ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let base = runs.first().map_or(1.0, |r| median(r.ms.clone()));
    for r in runs {
        let bytes = r.opt.groups()[0].states()[0].bytes_per_element();
        let m = median(r.ms);
        println!(
            "{rule} {}: {m:.3} ms ({:.2}x the first) state_bytes={bytes:.3}",
            r.name,
            m / base
        );
    }
    Ok(())
}
