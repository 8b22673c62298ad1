//! Shampoo (Gupta, Koren & Singer 2018, "Shampoo: Preconditioned Stochastic
//! Tensor Optimization", arXiv 1802.09568) written in the language: a left
//! and a right preconditioner per matrix, `L += G G^T` and `R += G^T G`, and
//! the step `L^(-1/4) G R^(-1/4)`, the inverse fourth roots taken by the
//! coupled Newton iteration (Guo & Higham 2006, as in Anil et al. 2020's
//! scalable Shampoo) in a `repeat`.
//!
//! `cargo run --release --example shampoo` fits an ill-conditioned matrix
//! least-squares problem and prints the loss; `tests/shampoo.rs` checks the
//! rule against a numpy reference that takes the roots exactly
//! (`tools/shampoo_reference.py`).

use optdsl::{optimizer, UpdateRule};

optimizer! {
    /// Shampoo for one matrix: with `Lε = L + ε I` and `Rε = R + ε I`,
    /// w ← w − lr · Lε^(−1/4) g Rε^(−1/4).
    ///
    /// A^(−1/4) by the coupled Newton iteration: with z = 5 / (2 ‖A‖),
    /// M = z A and H = z^(1/4) I, `iters` times T = (5 I − M) / 4,
    /// H ← H T, M ← T⁴ M; H tends to A^(−1/4) (Guo & Higham's p = 4).
    pub Shampoo {
        hyper lr = 0.1 where lr >= 0, eps = 1e-3 where eps > 0,
              iters = 40 where 0 <= iters <= 100;
        state l: [rows, rows] = 0, r: [cols, cols] = 0;
        l = l + g @ g^T;
        r = r + g^T @ g;
        // The left root.
        let ml = l + eps * eye(l);
        let zl = 5 / (2 * norm(ml));
        ml = zl * ml;
        let hl = zl ^ 0.25 * eye(ml);
        repeat iters {
            let tl = (5 * eye(ml) - ml) / 4;
            hl = hl @ tl;
            let tl2 = tl @ tl;
            ml = (tl2 @ tl2) @ ml;
        }
        // The right root.
        let mr = r + eps * eye(r);
        let zr = 5 / (2 * norm(mr));
        mr = zr * mr;
        let hr = zr ^ 0.25 * eye(mr);
        repeat iters {
            let tr = (5 * eye(mr) - mr) / 4;
            hr = hr @ tr;
            let tr2 = tr @ tr;
            mr = (tr2 @ tr2) @ mr;
        }
        w -= lr * (hl @ g @ hr);
    }
}

/// The gradient of ½‖S (S w − target)‖²-like least squares: `S (S w − y)`
/// with `S` diagonal (row scales from 0.5 to 3).
pub fn gradient(w: &[f64], target: &[f64], rows: usize, cols: usize) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; rows * cols];
    let mut loss = 0.0;
    for i in 0..rows {
        let s = 0.5 + 2.5 * i as f64 / (rows - 1) as f64;
        for j in 0..cols {
            let e = s * w[i * cols + j] - target[i * cols + j];
            loss += 0.5 * e * e;
            g[i * cols + j] = s * e;
        }
    }
    (loss, g)
}

pub fn main() -> optdsl::Result<()> {
    let (rows, cols) = (6, 4);
    let target: Vec<f64> = (0..rows * cols)
        .map(|k| ((k * 7) % 11) as f64 / 5.0 - 1.0)
        .collect();
    let rule = Shampoo::default();
    let mut state = rule.init_shaped::<f64>(&[rows, cols])?;
    let mut w = vec![0.0; rows * cols];
    for step in 1..=30 {
        let (loss, g) = gradient(&w, &target, rows, cols);
        if step % 5 == 1 {
            println!("step {step:2}: loss {loss:.6}");
        }
        rule.try_step(&mut state, &mut w, &g)?;
    }
    println!("final loss {:.6}", gradient(&w, &target, rows, cols).0);
    Ok(())
}
