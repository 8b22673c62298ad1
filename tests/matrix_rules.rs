//! Rules with shapes: the matrix fixtures replay, a user's own Adafactor
//! compiles and steps as the built-in does, text and compiled forms give
//! the same bits (on awkward shapes, vectors and a 3-D tensor, one thread
//! and two), state is sized by the shape, a vector given to a rule that
//! needs a matrix is a typed error, the fused passes give the same bits on
//! one thread and on two, and the executor records the passes the bench's
//! bound replays.

use optdsl::{builtin_rule, optimizer, DynRule, Error, Rules, State, UpdateRule};

optimizer! {
    /// Adafactor as a user writes it (the built-in's text).
    pub MyAdafactor {
        hyper lr = 1e-2 where lr >= 0, beta2_decay = -0.8 where beta2_decay <= 0,
              eps1 = 0 where eps1 >= 0, eps2 = 1e-3 where eps2 >= 0, d = 1 where d >= 1,
              weight_decay = 0 where weight_decay >= 0, maximize = false;
        let grad = if maximize { -g } else { g };
        let e1 = if eps1 > 0 { eps1 } else { epsilon };
        let beta = t ^ beta2_decay;
        let rho = min(lr, 1 / sqrt(t));
        let alpha = max(eps2, norm(w) / sqrt(numel)) * rho;
        w *= 1 - lr * weight_decay;
        let var = grad;
        if matrix {
            state r: [rows] = 0, c: [cols] = 0;
            r = r + beta * (row_norm(grad)^2 / cols - r);
            c = c + beta * (col_norm(grad)^2 / rows - c);
            var = r * c / max(mean(r), e1);
        } else {
            state v = 0;
            v = v + beta * (grad * grad - v);
            var = v;
        }
        let u = 1 / sqrt(max(var, e1 * e1)) * grad;
        let denom = max(1, norm(u) / (sqrt(numel) * d));
        w += -alpha / denom * u;
    }
}

optimizer! {
    /// A user's rule with shapes reading per-row and per-column state,
    /// comparisons combined with `&&`, selections by element and by a
    /// per-step boolean, and functions of one, two and three arguments.
    pub Broadcasts {
        hyper lr = 0.05 where lr >= 0, cap = 0.5, flip = false;
        state m: [rows] = 0, s: [cols] = 1;
        m = m + 0.5 * (row_mean(g) - m);
        s = max(s * 0.9, col_norm(g)^2 / rows);
        let z = if g > m { g * m + s } else { -abs(g) / sqrt(s + 1e-3) };
        let y = clamp(z, -cap, cap) + min(w, 0.25) * exp(-abs(g)) - sign(g) * fma(g, m, s);
        let x = if flip { -y } else { y };
        w -= lr * select(x > 0 && w < 1, x, x * 0.5) + max_abs(x) * 1e-3;
    }
}

fn data(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = (i as u64 + 1).wrapping_mul(6364136223846793005)
                ^ seed.wrapping_mul(1442695040888963407);
            ((x >> 11) % 20001) as f64 / 10000.0 - 1.0
        })
        .collect()
}

fn bits(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn every_matrix_fixture_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/matrix");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let (fixture, outcome) = optdsl::replay::replay_file(&path).unwrap();
            assert!(
                outcome.passed(),
                "{}: {}",
                fixture.name,
                outcome.line(&fixture.name)
            );
            n += 1;
        }
    }
    assert_eq!(n, 9);
}

#[test]
fn a_users_adafactor_steps_as_the_builtin_on_matrices_and_vectors() {
    let builtin = builtin_rule("adafactor").unwrap();
    let mine = MyAdafactor::default();
    for shape in [vec![6usize, 10], vec![12], vec![3, 4, 5]] {
        let n: usize = shape.iter().product();
        let mut s1 = builtin.init_shaped_f64(&shape).unwrap();
        let mut s2: State<f64> = mine.init_shaped(&shape).unwrap();
        let (mut w1, mut w2) = (data(n, 1), data(n, 1));
        for k in 0..5 {
            let g = data(n, 10 + k);
            builtin.step_f64(&mut s1, &mut w1, &g, &[]).unwrap();
            mine.try_step(&mut s2, &mut w2, &g).unwrap();
        }
        assert_eq!(bits(&w1), bits(&w2), "{shape:?}");
        assert_ne!(w1, data(n, 1), "the step moved nothing");
    }
}

#[test]
fn state_is_sized_by_the_shape() {
    let rule = builtin_rule("adafactor").unwrap();
    let m = rule.init_shaped_f32(&[6, 10]).unwrap();
    let lens: Vec<usize> = m.buffers.iter().map(Vec::len).collect();
    // r: one a row, c: one a column, v: none (it exists for vectors only).
    assert_eq!(lens, [6, 10, 0]);
    let v = rule.init_shaped_f32(&[12]).unwrap();
    let lens: Vec<usize> = v.buffers.iter().map(Vec::len).collect();
    assert_eq!(lens, [0, 0, 12]);
    let muon = builtin_rule("muon")
        .unwrap()
        .init_shaped_f32(&[8, 12])
        .unwrap();
    assert_eq!(muon.buffers[0].len(), 96);
}

#[test]
fn a_vector_given_to_muon_is_a_typed_error_naming_its_shape() {
    let rule = builtin_rule("muon").unwrap();
    let e = rule.init_shaped_f32(&[12]).unwrap_err();
    assert!(
        matches!(e, Error::NeedsMatrix { ref shape, .. } if shape == &[12]),
        "{e}"
    );
    assert!(e.to_string().contains("needs a matrix"), "{e}");
    // A flat state (no shape) is a vector too, refused at the step.
    let mut state = rule.init_f32(12);
    let (mut w, g) = (vec![1.0f32; 12], vec![0.5f32; 12]);
    let e = rule.step_f32(&mut state, &mut w, &g, &[]).unwrap_err();
    assert!(matches!(e, Error::NeedsMatrix { .. }), "{e}");
    assert_eq!(w, vec![1.0f32; 12], "a refused step changed w");
}

#[test]
fn text_and_compiled_rules_with_shapes_give_the_same_bits() {
    for name in ["adafactor", "muon"] {
        let compiled = builtin_rule(name).unwrap();
        let text = Rules::parse(compiled.info().source).unwrap().remove(0);
        assert_eq!(
            text.info().program().fingerprint,
            compiled.info().program().fingerprint
        );
        for shape in [[8usize, 12], [12, 8]] {
            let n = 96;
            let mut s1 = compiled.init_shaped_f32(&shape).unwrap();
            let mut s2 = text.init_shaped_f32(&shape).unwrap();
            let (mut w1, mut w2): (Vec<f32>, Vec<f32>) = (
                data(n, 3).iter().map(|&x| x as f32).collect(),
                data(n, 3).iter().map(|&x| x as f32).collect(),
            );
            for k in 0..4 {
                let g: Vec<f32> = data(n, 20 + k).iter().map(|&x| x as f32).collect();
                compiled.step_f32(&mut s1, &mut w1, &g, &[]).unwrap();
                text.step_f32(&mut s2, &mut w2, &g, &[]).unwrap();
            }
            let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(b(&w1), b(&w2), "{name} {shape:?}");
            assert_eq!(s1, s2, "{name} {shape:?}");
        }
    }
}

#[test]
fn text_and_compiled_rules_give_the_same_bits_on_awkward_shapes_and_threads() {
    // Widths that are not multiples of the vector width, vectors, a 3-D
    // tensor viewed as a matrix, on one thread and two.
    let rules: Vec<Box<dyn DynRule>> = vec![
        builtin_rule("adafactor").unwrap(),
        builtin_rule("muon").unwrap(),
        Box::new(Broadcasts::default()),
    ];
    let shapes: [&[usize]; 7] = [
        &[37, 53],
        &[53, 37],
        &[300, 261],
        &[5, 7, 9],
        &[1, 77],
        &[77, 1],
        &[2501],
    ];
    for compiled in &rules {
        let name = compiled.info().name;
        let text = Rules::parse(compiled.info().source).unwrap().remove(0);
        for shape in shapes {
            let n: usize = shape.iter().product();
            let Ok(mut s1) = compiled.init_shaped_f32(shape) else {
                continue;
            };
            let (mut w0, g0) = (vec![0.0f32; n], vec![0.0f32; n]);
            if compiled.step_f32(&mut s1, &mut w0, &g0, &[]).is_err() {
                // A rule that needs a matrix refuses a vector, in both forms.
                let mut s2 = text.init_shaped_f32(shape).unwrap();
                assert!(text.step_f32(&mut s2, &mut w0, &g0, &[]).is_err());
                continue;
            }
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let run = |rule: &dyn DynRule| {
                    pool.install(|| {
                        let mut state = rule.init_shaped_f32(shape).unwrap();
                        let mut w: Vec<f32> = data(n, 3).iter().map(|&x| x as f32).collect();
                        for k in 0..3 {
                            let g: Vec<f32> = data(n, 20 + k).iter().map(|&x| x as f32).collect();
                            rule.step_f32(&mut state, &mut w, &g, &[]).unwrap();
                        }
                        (w, state)
                    })
                };
                let (w1, s1) = run(compiled.as_ref());
                let (w2, s2) = run(&text);
                let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(b(&w1), b(&w2), "{name} {shape:?} {threads} threads");
                assert_eq!(s1, s2, "{name} {shape:?} {threads} threads");
                assert_ne!(w1, data(n, 3).iter().map(|&x| x as f32).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn the_executor_records_adafactors_three_passes_over_the_matrix() {
    // What `optdsl bench --shape` replays as its same-traffic bound.
    let rule = builtin_rule("adafactor").unwrap();
    let (rows, cols) = (64, 96);
    let n = rows * cols;
    let mut state = rule.init_shaped_f32(&[rows, cols]).unwrap();
    let mut w: Vec<f32> = data(n, 1).iter().map(|&x| x as f32).collect();
    let g: Vec<f32> = data(n, 2).iter().map(|&x| x as f32).collect();
    let (out, traffic) = optdsl::tensor::passes(|| rule.step_f32(&mut state, &mut w, &g, &[]));
    out.unwrap();
    let large: Vec<_> = traffic.passes.iter().filter(|p| p.numbers == n).collect();
    // norm(w), row_norm(g) and col_norm(g) in one pass; norm(u), which
    // stores u (two divisions and a square root per number) as it sums;
    // the update, which reads u back instead of computing it again.
    let shape: Vec<(usize, usize)> = large
        .iter()
        .map(|p| (p.reads.len(), p.writes.len()))
        .collect();
    assert_eq!(shape, [(2, 0), (1, 1), (1, 1)], "{traffic:?}");
    let g_id = large[1].reads[0];
    let u_id = large[1].writes[0];
    assert_eq!(large[2].reads, [u_id]);
    assert!(large[0].reads.contains(&g_id));
    assert!(
        large[0].reads.contains(&large[2].writes[0]),
        "w read first, written last"
    );
    // The small passes (r, c, mean(r)) move rows or cols numbers.
    assert!(traffic
        .passes
        .iter()
        .all(|p| p.numbers == n || p.numbers == rows || p.numbers == cols));
    let bytes = traffic.bytes(4);
    assert!(bytes >= 32 * n && bytes < 33 * n, "{bytes}");
    // Nothing is recorded outside `passes`.
    let (_, none) = optdsl::tensor::passes(|| ());
    assert!(none.passes.is_empty());
}

#[test]
fn a_saved_state_with_a_shape_resumes_to_the_same_bits() {
    let rule = builtin_rule("muon").unwrap();
    let shape = [12usize, 8];
    let mut state = rule.init_shaped_f64(&shape).unwrap();
    let mut w = data(96, 5);
    for k in 0..3 {
        rule.step_f64(&mut state, &mut w, &data(96, 30 + k), &[])
            .unwrap();
    }
    let saved = serde_json::to_string(&state).unwrap();
    let mut resumed: State<f64> = serde_json::from_str(&saved).unwrap();
    assert_eq!(resumed.shape, shape);
    let mut w2 = w.clone();
    for k in 3..6 {
        rule.step_f64(&mut state, &mut w, &data(96, 30 + k), &[])
            .unwrap();
        rule.step_f64(&mut resumed, &mut w2, &data(96, 30 + k), &[])
            .unwrap();
    }
    assert_eq!(bits(&w), bits(&w2));
}

#[test]
fn a_bounded_hyper_cannot_make_repeat_endless() {
    let mut rule = builtin_rule("muon").unwrap();
    assert!(rule
        .set_hyper("ns_steps", optdsl::HyperValue::Num(1e12))
        .is_err());
    assert!(rule
        .set_hyper("ns_steps", optdsl::HyperValue::Num(f64::NAN))
        .is_err());
    rule.set_hyper("ns_steps", optdsl::HyperValue::Num(0.0))
        .unwrap();
    // No iteration: the update is the normalized momentum.
    let mut state = rule.init_shaped_f64(&[2, 2]).unwrap();
    let mut w = vec![0.0; 4];
    rule.step_f64(&mut state, &mut w, &[3.0, 0.0, 0.0, 4.0], &[])
        .unwrap();
    let n = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((n - 1e-3).abs() < 1e-12, "{w:?}");
}

#[test]
fn fused_passes_give_the_same_bits_on_one_thread_and_two() {
    // Large enough that a pass is split into chunks shared among threads
    // (300 rows of 260: two chunks; a vector of 100000: two chunks).
    let cases: [(&str, Vec<usize>); 4] = [
        ("adafactor", vec![300, 260]),
        ("adafactor", vec![260, 300]),
        ("adafactor", vec![100_000]),
        ("muon", vec![300, 260]),
    ];
    for (name, shape) in cases {
        let rule = builtin_rule(name).unwrap();
        let n: usize = shape.iter().product();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut state = rule.init_shaped_f32(&shape).unwrap();
                let mut w: Vec<f32> = data(n, 7).iter().map(|&x| x as f32).collect();
                for k in 0..3 {
                    let g: Vec<f32> = data(n, 40 + k).iter().map(|&x| x as f32).collect();
                    rule.step_f32(&mut state, &mut w, &g, &[]).unwrap();
                }
                (w, state)
            })
        };
        let (w1, s1) = run(1);
        let (w2, s2) = run(2);
        let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(b(&w1), b(&w2), "{name} {shape:?}");
        assert_eq!(s1, s2, "{name} {shape:?}");
        assert_ne!(w1, data(n, 7).iter().map(|&x| x as f32).collect::<Vec<_>>());
    }
}

#[test]
fn a_costly_let_kept_by_its_reduction_gives_the_bits_of_computing_it_twice() {
    // `u` divides and takes square roots, and is read by `norm(u)`,
    // `row_sum(u)` and the update: the executor stores it in the pass of
    // `norm(u)` and reads it back. The second rule writes `u` out where it
    // is used, so it is computed in each pass instead.
    let u = "(g / sqrt(r * r + 1) + 1 / (abs(g) + 1))";
    let kept = format!(
        "Kept {{ hyper lr = 0.1; state r: [rows] = 0; r = r + 0.5 * (row_mean(g) - r); \
         let u = {u}; let n = max(1, norm(u)); \
         w -= lr * u / n + 1e-3 * row_sum(u); }}"
    );
    let twice = format!(
        "Twice {{ hyper lr = 0.1; state r: [rows] = 0; r = r + 0.5 * (row_mean(g) - r); \
         let n = max(1, norm({u})); \
         w -= lr * {u} / n + 1e-3 * row_sum({u}); }}"
    );
    let kept = Rules::parse(&kept).unwrap().remove(0);
    let twice = Rules::parse(&twice).unwrap().remove(0);
    for shape in [vec![300usize, 260], vec![7, 5]] {
        let n: usize = shape.iter().product();
        for threads in [1, 2] {
            let run = |rule: &dyn DynRule| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut state = rule.init_shaped_f32(&shape).unwrap();
                    let mut w: Vec<f32> = data(n, 9).iter().map(|&x| x as f32).collect();
                    let mut traffic = Vec::new();
                    for k in 0..3 {
                        let g: Vec<f32> = data(n, 60 + k).iter().map(|&x| x as f32).collect();
                        let (out, t) =
                            optdsl::tensor::passes(|| rule.step_f32(&mut state, &mut w, &g, &[]));
                        out.unwrap();
                        traffic.push(t);
                    }
                    (w.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), traffic)
                })
            };
            let (a, kept_traffic) = run(&kept);
            let (b, twice_traffic) = run(&twice);
            assert_eq!(a, b, "{shape:?} {threads} threads");
            // The kept rule's `norm(u)` pass writes `u`; the other's writes
            // nothing but `w`.
            let writes = |t: &[optdsl::tensor::Traffic]| {
                t[0].passes
                    .iter()
                    .filter(|p| p.numbers == n && !p.writes.is_empty())
                    .count()
            };
            assert_eq!(writes(&kept_traffic), 2, "{kept_traffic:?}");
            assert_eq!(writes(&twice_traffic), 1, "{twice_traffic:?}");
        }
    }
}
