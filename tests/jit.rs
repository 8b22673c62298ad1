//! The JIT of text rules against the same rules compiled by `optimizer!` and
//! against the block interpreter: every operator, function, comparison,
//! boolean operation, selection and reduction of the language, on data full
//! of the values where semantics differ (zeros of both signs, subnormals,
//! infinities, NaN, huge and negative numbers), in f32 and f64, at lengths
//! around the vector width, the chunk of 64 lanes and the block, on one and
//! two threads: the same bits everywhere.

use optdsl::{optimizer, DynFloat, DynRule, Float, Rules, State, TextRule};

optimizer! {
    /// Every element operation and function, no reduction.
    pub EveryOp {
        hyper lr = 0.5, b = 0.9, p = 1.5, flag = true, off = false;
        input h;
        state m = 0, q = g, k = 1;
        m = b*m + (1-b)*g;
        let c = g > 0 && (flag || h < 0.5) || !(w <= m);
        let d = (g >= w) == (h != 0);
        let f = (m < h) != (off || g == w);
        let e = select(select(d, c, f), min(g, w), max(g, m));
        q = sign(q) * abs(e) + sqrt(abs(g)) - exp(-abs(m)) + ln(abs(h)) + abs(g)^p + clamp(q, -1, 1) / (1 + h);
        k = if off { k * 2 } else { k - float(lr) * g };
        w -= lr * (if c { q } else { -e }) + w / (h - 0.5) - k;
    }

    /// Every element operation and function of the 256-bit loops (all but
    /// the calls `exp`, `ln` and `^`), no reduction.
    pub EveryWideOp {
        hyper lr = 0.5, b = 0.9, flag = true, off = false;
        input h;
        state m = 0, q = g, k = 1;
        m = b*m + (1-b)*g;
        let c = g > 0 && (flag || h < 0.5) || !(w <= m);
        let d = (g >= w) == (h != 0);
        let f = (m < h) != (off || g == w);
        let e = select(select(d, c, f), min(g, w), max(g, m));
        q = sign(q) * abs(e) + sqrt(abs(g)) - fma(m, h, -abs(m)) + clamp(q, -1, 1) / (1 + h);
        k = if off { k * 2 } else { k - float(lr) * g };
        w -= lr * (if c { q } else { -e }) + w / (h - 0.5) - k;
    }

    /// More slices than the 256-bit loops hold pointers to in registers,
    /// with and without reductions.
    pub ManySlices {
        hyper lr = 0.1;
        input h;
        state a = 0, b = 1, c = 0, d = 1, e = 0, f = 1, k = 0, l = 1, q = 0;
        a = 0.9*a + g;
        b = b + g*g;
        c = c + a / b;
        d = d*0.5 + sqrt(abs(c));
        e = e - h*g;
        f = max(f, abs(g));
        k = k + e / f;
        l = l*0.99 + d;
        q = q + k - l;
        let s = sum(q) + norm(a + e);
        w -= lr * (a + c + e + k) / (1 + abs(s) + l);
    }

    /// Every reduction, each feeding the update.
    pub EveryReduction {
        hyper lr = 0.1;
        state m = 0;
        m = 0.9*m + g;
        let s = sum(g) + mean(w) + norm(m) + max_abs(g - w);
        w -= lr * g / (1 + abs(s));
    }

    /// Divisions and roots in several layers (each one's operands made by
    /// earlier ones), a comparison used at two depths, and a reduction of a
    /// late value.
    pub Layers {
        hyper lr = 0.01, eps = 1e-8;
        state m = 0, v = 1;
        m = 0.9*m + g / (1 + abs(w));
        v = v / (1 + sqrt(abs(m) + g*g));
        let big = abs(g) > sqrt(v);
        let r = sqrt(v + eps) / (abs(m) + 1 / (1 + g*g));
        let q = if big { r / (2 + abs(g)) } else { sqrt(r + 1) };
        let s = sum(q);
        w -= lr * m / sqrt(v + q*q + eps) - eps / (1 + abs(s)) + (if big { sqrt(abs(w)) } else { 1 / (3 + q) });
    }
}

/// The rules above, each compiled by `optimizer!`, and as text (its own
/// source, parsed at run time).
fn rules() -> Vec<(Box<dyn DynRule>, TextRule)> {
    let compiled: Vec<Box<dyn DynRule>> = vec![
        Box::new(EveryOp::default()),
        Box::new(EveryWideOp::default()),
        Box::new(ManySlices::default()),
        Box::new(EveryReduction::default()),
        Box::new(Layers::default()),
    ];
    compiled
        .into_iter()
        .map(|c| {
            let t = Rules::parse(c.info().source).unwrap().remove(0);
            (c, t)
        })
        .collect()
}

/// Data with a special value every few elements (`special`: also NaN and
/// the infinities), random numbers in (-2, 2) between.
fn data<F: Float>(n: usize, seed: u64, special: bool) -> Vec<F> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let finite = [0.0, -0.0, 1e-40, -1e-310, 3e38, -2.5, 0.5, 1.0, -1.0];
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = match (x >> 3) % 7 {
                0 => finite[i % finite.len()],
                1 if special => odd[i % odd.len()],
                _ => 4.0 * u - 2.0,
            };
            F::from_f64(v)
        })
        .collect()
}

/// The bits of each value, every NaN as one NaN: x86 returns the first
/// operand's NaN when both operands are NaN, and LLVM may swap the operands
/// of `+` and `*` (the compiled rule at one SIMD level and another may too),
/// so the sign and payload of a NaN are not part of the contract; that a
/// value is NaN, and every other bit, is.
fn bits<F: Float>(x: &[F]) -> Vec<u64> {
    x.iter()
        .map(|v| {
            if v.is_nan() {
                f64::NAN.to_bits()
            } else {
                v.to_f64().to_bits()
            }
        })
        .collect()
}

/// Ten steps of `a` and `b` on the same data: the same bits of `w`, buffers
/// and scalar state after each.
fn same<F: DynFloat>(a: &dyn DynRule, b: &dyn DynRule, n: usize, special: bool, what: &str) {
    let inputs: Vec<Vec<F>> = a
        .info()
        .inputs
        .iter()
        .enumerate()
        .map(|(k, _)| data::<F>(n, 500 + k as u64, special))
        .collect();
    let refs: Vec<&[F]> = inputs.iter().map(|v| v.as_slice()).collect();
    let mut w1: Vec<F> = data(n, 1, special);
    let mut w2 = w1.clone();
    let mut s1: State<F> = F::dyn_init(a, n);
    let mut s2: State<F> = F::dyn_init(b, n);
    for step in 1..=10u64 {
        let g: Vec<F> = data(n, step + 7, special);
        F::dyn_step(a, &mut s1, &mut w1, &g, &refs).unwrap();
        F::dyn_step(b, &mut s2, &mut w2, &g, &refs).unwrap();
        let first = bits(&w1).iter().zip(bits(&w2)).position(|(x, y)| *x != y);
        assert!(
            first.is_none(),
            "{what}: w differs at step {step}, element {first:?}: {:?} vs {:?}",
            first.map(|i| w1[i]),
            first.map(|i| w2[i])
        );
        for (k, (x, y)) in s1.buffers.iter().zip(&s2.buffers).enumerate() {
            let first = bits(x).iter().zip(bits(y)).position(|(a, b)| *a != b);
            assert!(
                first.is_none(),
                "{what}: buffer {k} differs at step {step}, element {first:?}: {:?} vs {:?}",
                first.map(|i| x[i]),
                first.map(|i| y[i])
            );
        }
        let sa: Vec<u64> = s1.scalars.iter().map(|x| x.to_bits()).collect();
        let sb: Vec<u64> = s2.scalars.iter().map(|x| x.to_bits()).collect();
        assert_eq!(sa, sb, "{what}: scalar state at step {step}");
    }
}

fn check(threads: usize, lengths: &[usize]) {
    let rules = rules();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        for (c, t) in &rules {
            let jit = t.clone().with_jit(true);
            let interp = t.clone().with_jit(false);
            for &n in lengths {
                for special in [false, true] {
                    let what = format!("{} n={n} threads={threads} special={special}", t.name());
                    same::<f32>(
                        &**c,
                        &interp,
                        n,
                        special,
                        &format!("{what} f32 interp vs compiled"),
                    );
                    same::<f32>(&**c, &jit, n, special, &format!("{what} f32 jit"));
                    same::<f64>(&**c, &jit, n, special, &format!("{what} f64 jit"));
                    same::<f32>(&jit, &interp, n, special, &format!("{what} f32 interp"));
                    same::<f64>(&jit, &interp, n, special, &format!("{what} f64 interp"));
                }
            }
        }
    });
}

#[test]
fn every_operation_gives_the_compiled_bits_on_one_thread() {
    check(1, &[1, 2, 3, 5, 63, 64, 65, 131, 1000, 16384 + 77]);
}

#[test]
fn every_operation_gives_the_compiled_bits_on_two_threads() {
    check(2, &[3 * 65536 + 1234]);
}

#[test]
fn every_builtin_and_the_rules_here_compile_without_falling_back() {
    let mut rules: Vec<Box<dyn DynRule>> = rules()
        .into_iter()
        .map(|(_, t)| Box::new(t) as Box<dyn DynRule>)
        .collect();
    for b in optdsl::builtins() {
        let compiled = (b.make)();
        if compiled.info().program().tensor.is_some() {
            // Rules with shapes run on the tensor executor, not as passes.
            continue;
        }
        let t = Rules::parse(compiled.info().source).unwrap().remove(0);
        rules.push(Box::new(t));
    }
    for r in &rules {
        let n = 300;
        let h: Vec<f64> = data(n, 3, false);
        let refs: Vec<&[f64]> = r.info().inputs.iter().map(|_| h.as_slice()).collect();
        let mut w: Vec<f64> = data(n, 1, false);
        let mut s = r.init_f64(n);
        for step in 0..3 {
            let g: Vec<f64> = data(n, step + 2, false);
            r.step_f64(&mut s, &mut w, &g, &refs).unwrap();
        }
    }
    let (compiled, failed) = optdsl::jit::counts();
    assert!(compiled > 0, "nothing was compiled");
    assert_eq!(failed, 0, "passes fell back to the interpreter");
}

#[test]
fn the_rules_here_without_calls_get_256_bit_loops() {
    if !optdsl::jit::wide_available() {
        eprintln!("no AVX2 and FMA here (or OPTDSL_WIDE=0): Cranelift's loops only");
        return;
    }
    check(1, &[1000]);
    for name in ["EveryWideOp", "ManySlices", "EveryReduction", "Layers"] {
        assert!(
            optdsl::jit::wide_loops(name) >= 2,
            "{name}: no 256-bit loop in f32 and f64 (OPTDSL_JIT_LOG=1 says why)"
        );
    }
}
