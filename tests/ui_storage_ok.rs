//! A user's crate declares 8-bit and bf16 state with `optimizer!`: it
//! compiles, keeps the declared layout and steps.

use optdsl::{optimizer, Storage, UpdateRule};

optimizer! {
    /// Adam with both moments in 8 bits and a bf16 running maximum.
    pub MyAdam8 {
        hyper lr = 1e-3 where lr >= 0, b1 = 0.9 where 0 <= b1 < 1,
              b2 = 0.999 where 0 <= b2 < 1;
        state m: q8 = 0, v: uq8 = 0, peak: bf16 = 0;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        peak = max(peak, abs(g));
        w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + 1e-8);
    }
}

#[test]
fn declared_storage_is_kept_and_the_rule_steps() {
    let rule = MyAdam8::default();
    let mut w = vec![1.0f32; 1000];
    let mut state = rule.init::<f32>(w.len());
    assert_eq!(
        state.storage(),
        [
            Storage::Q8 { signed: true },
            Storage::Q8 { signed: false },
            Storage::Bf16
        ]
    );
    let g: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 1e-3).collect();
    for _ in 0..3 {
        rule.step(&mut state, &mut w, &g);
    }
    assert!(w
        .iter()
        .zip(&g)
        .all(|(w, g)| (*w < 1.0) == (*g > 0.0) || *g == 0.0));
    let peak = state.buffer_values(MyAdam8::INFO, "peak").unwrap();
    assert_eq!(peak[0], 0.5);
}
