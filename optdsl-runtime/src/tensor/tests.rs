//! The fused passes' programs ([`super::fused`]) against the tree walk they
//! replace: the same bits of `w` and of the state, for the built-in rules
//! with shapes and a user's rule reading rows and columns, selections and
//! functions, on matrices whose widths are not multiples of the vector
//! width, vectors and a 3-D tensor, on one thread and two.

use super::exec::{PROGRAMS, TREE_WALK};
use crate::rule::DynRule;
use crate::state::State;
use crate::{builtin_rule, Rules};

/// A rule reading per-row and per-column state, comparisons combined with
/// `&&`, selections by element and by a per-step boolean, and functions of
/// one, two and three arguments.
const USER: &str = "Broadcasts {
    hyper lr = 0.05 where lr >= 0, cap = 0.5, flip = false;
    state m: [rows] = 0, s: [cols] = 1;
    m = m + 0.5 * (row_mean(g) - m);
    s = max(s * 0.9, col_norm(g)^2 / rows);
    let z = if g > m { g * m + s } else { -abs(g) / sqrt(s + 1e-3) };
    let y = clamp(z, -cap, cap) + min(w, 0.25) * exp(-abs(g)) - sign(g) * fma(g, m, s);
    let x = if flip { -y } else { y };
    w -= lr * select(x > 0 && w < 1, x, x * 0.5) + max_abs(x) * 1e-3;
}";

fn data(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = (i as u64 + 1).wrapping_mul(6364136223846793005)
                ^ seed.wrapping_mul(1442695040888963407);
            ((x >> 11) % 20001) as f64 / 10000.0 - 1.0
        })
        .collect()
}

/// `w` and the state after three steps, in `F`, with the tree walk or not.
fn run<F: crate::float::Float>(
    rule: &dyn DynRule,
    shape: &[usize],
    threads: usize,
    walk: bool,
    step: impl Fn(&dyn DynRule, &mut State<F>, &mut [F], &[F]) + Send + Sync,
    init: impl Fn(&dyn DynRule) -> State<F> + Send + Sync,
) -> (Vec<F>, State<F>) {
    let n: usize = shape.iter().product();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        TREE_WALK.with(|w| w.set(walk));
        let before = PROGRAMS.with(|n| n.get());
        let mut state = init(rule);
        let mut w: Vec<F> = data(n, 7).into_iter().map(F::from_f64).collect();
        for k in 0..3 {
            let g: Vec<F> = data(n, 40 + k).into_iter().map(F::from_f64).collect();
            step(rule, &mut state, &mut w, &g);
        }
        TREE_WALK.with(|w| w.set(false));
        // The programs ran where they were meant to (and only there).
        let ran = PROGRAMS.with(|n| n.get()) - before;
        assert_eq!(ran > 0, !walk, "{ran} programs with walk = {walk}");
        (w, state)
    })
}

#[test]
fn programs_give_the_bits_of_the_tree_walk() {
    let user = Rules::parse(USER).unwrap().remove(0);
    let rules: Vec<(&str, Box<dyn DynRule>)> = vec![
        ("adafactor", builtin_rule("adafactor").unwrap()),
        ("muon", builtin_rule("muon").unwrap()),
        ("user", Box::new(user)),
    ];
    let shapes: [&[usize]; 8] = [
        &[37, 53],
        &[53, 37],
        &[300, 260],
        &[5, 7, 9],
        &[1, 77],
        &[77, 1],
        &[2500],
        &[100_000],
    ];
    for (name, rule) in &rules {
        for shape in shapes {
            if rule.init_shaped_f32(shape).is_err() {
                continue;
            }
            let step_vector = rule.step_f32(
                &mut rule.init_shaped_f32(shape).unwrap(),
                &mut vec![0.0; shape.iter().product()],
                &vec![0.0; shape.iter().product()],
                &[],
            );
            if step_vector.is_err() {
                // A rule that needs a matrix refuses a vector.
                continue;
            }
            for threads in [1, 2] {
                let step = |r: &dyn DynRule, s: &mut State<f32>, w: &mut [f32], g: &[f32]| {
                    r.step_f32(s, w, g, &[]).unwrap()
                };
                let init = |r: &dyn DynRule| r.init_shaped_f32(shape).unwrap();
                let (w1, s1) = run(rule.as_ref(), shape, threads, false, step, init);
                let (w2, s2) = run(rule.as_ref(), shape, threads, true, step, init);
                let b = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(b(&w1), b(&w2), "{name} {shape:?} {threads} threads");
                assert_eq!(s1, s2, "{name} {shape:?} {threads} threads");
                assert!(w1.iter().any(|x| x.is_finite()), "{name} {shape:?}");
            }
            let step = |r: &dyn DynRule, s: &mut State<f64>, w: &mut [f64], g: &[f64]| {
                r.step_f64(s, w, g, &[]).unwrap()
            };
            let init = |r: &dyn DynRule| r.init_shaped_f64(shape).unwrap();
            let (w1, s1) = run(rule.as_ref(), shape, 2, false, step, init);
            let (w2, s2) = run(rule.as_ref(), shape, 2, true, step, init);
            let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(b(&w1), b(&w2), "{name} {shape:?} f64");
            assert_eq!(s1, s2, "{name} {shape:?} f64");
        }
    }
}
