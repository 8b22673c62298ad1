//! Matrix products for rules with shapes, through the `gemm` crate (the
//! product kernels candle uses; measured against `matrixmultiply` on
//! Muon's shapes in `benches/`). A Gram product `x @ x^T` is symmetric, so
//! only the blocks on and above the diagonal are multiplied and the rest
//! mirrored: about half the multiply-adds of a general product.

use crate::float::Float;
use std::cell::RefCell;

/// One matrix product a step ran: its kind and dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `op(a) @ op(b)`: `m x k` times `k x n`.
    General {
        /// Rows of the result.
        m: usize,
        /// Columns of the result.
        n: usize,
        /// The inner dimension.
        k: usize,
    },
    /// A Gram product: `n x n` from dot products of length `k`.
    Gram {
        /// Rows and columns of the result.
        n: usize,
        /// The inner dimension.
        k: usize,
    },
}

impl Product {
    /// Multiply-adds it performs.
    pub fn multiply_adds(self) -> usize {
        match self {
            Product::General { m, n, k } => m * n * k,
            Product::Gram { n, k } => {
                // The blocks on and above the diagonal.
                let size = |b: usize| GRAM_BLOCK.min(n - b * GRAM_BLOCK);
                let blocks = n.div_ceil(GRAM_BLOCK);
                (0..blocks)
                    .map(|bi| {
                        (bi..blocks)
                            .map(|bj| size(bi) * size(bj) * k)
                            .sum::<usize>()
                    })
                    .sum()
            }
        }
    }

    /// Operands for [`Product::run`]: constant `F` data of this product's
    /// shapes (the second is empty for a Gram product).
    pub fn operands<F: Float>(self) -> (Vec<F>, Vec<F>) {
        match self {
            Product::General { m, n, k } => (
                vec![F::from_f64(0.5); m * k],
                vec![F::from_f64(0.25); k * n],
            ),
            Product::Gram { n, k } => (vec![F::from_f64(0.5); n * k], Vec::new()),
        }
    }

    /// Runs this product alone on `operands` (from [`Product::operands`];
    /// for the benchmark: the products a step runs, timed without the rest
    /// of the step); its result goes back to the workspace, as the step's
    /// products do, and its first number is returned.
    pub fn run<F: Float>(self, (a, b): &(Vec<F>, Vec<F>)) -> F {
        let out = match self {
            Product::General { m, n, k } => matmul(a, (m, k), false, b, (k, n), false),
            Product::Gram { n, k } => gram(a, n, k, false),
        };
        let first = out.first().copied().unwrap_or(F::ZERO);
        super::pool::give(out);
        first
    }
}

thread_local! {
    static RECORD: RefCell<Option<Vec<Product>>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, with its result, every product it ran on this
/// thread, in order.
pub fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<Product>) {
    RECORD.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let out = f();
    let products = RECORD.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, products)
}

fn note(p: Product) {
    RECORD.with(|r| {
        if let Some(list) = r.borrow_mut().as_mut() {
            list.push(p);
        }
    });
}

/// Rows of one block of a Gram product: small enough that the blocks above
/// the diagonal are most of the work, large enough for the kernels.
const GRAM_BLOCK: usize = 256;

fn parallelism(flops: usize) -> gemm::Parallelism {
    let threads = rayon::current_num_threads();
    if threads > 1 && flops >= 1 << 22 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// Strides (column, row) of `op(x)` for `x` stored row-major with `cols`
/// columns, `op` the transpose when `t`.
fn strides(cols: usize, t: bool) -> (isize, isize) {
    if t {
        (cols as isize, 1)
    } else {
        (1, cols as isize)
    }
}

/// `op(a) @ op(b)` for row-major `a` (`da` = its rows, cols) and `b`, `op`
/// the transpose where `ta`/`tb`; row-major result.
pub fn matmul<F: Float>(
    a: &[F],
    da: (usize, usize),
    ta: bool,
    b: &[F],
    db: (usize, usize),
    tb: bool,
) -> Vec<F> {
    let (m, k) = if ta { (da.1, da.0) } else { da };
    let n = if tb { db.0 } else { db.1 };
    let mut out = super::pool::take::<F>(m * n);
    note(Product::General { m, n, k });
    if m == 0 || n == 0 {
        return out;
    }
    let (acs, ars) = strides(da.1, ta);
    let (bcs, brs) = strides(db.1, tb);
    // SAFETY: the pointers and strides describe `m x k`, `k x n` and `m x n`
    // matrices inside `a`, `b` and `out` (row-major, lengths `da.0 * da.1`,
    // `db.0 * db.1` and `m * n`); `out` does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            acs,
            ars,
            b.as_ptr(),
            bcs,
            brs,
            F::ZERO,
            F::ONE,
            false,
            false,
            false,
            parallelism(m * n * k),
        );
    }
    out
}

/// The Gram product of row-major `x` (`rows x cols`): `x @ x^T`
/// (`rows x rows`), or `x^T @ x` (`cols x cols`) when `t`. Blocks above the
/// diagonal are computed and mirrored, so the result is exactly symmetric.
pub fn gram<F: Float>(x: &[F], rows: usize, cols: usize, t: bool) -> Vec<F> {
    // Rows of op(x): the result is n x n, each entry a dot product of length k.
    let (n, k) = if t { (cols, rows) } else { (rows, cols) };
    let mut out = super::pool::take::<F>(n * n);
    note(Product::Gram { n, k });
    if n == 0 {
        return out;
    }
    // op(x)'s row i starts at `i * rs` and steps by `cs`.
    let (cs, rs) = if t {
        (cols as isize, 1)
    } else {
        (1, cols as isize)
    };
    let blocks = n.div_ceil(GRAM_BLOCK);
    for bi in 0..blocks {
        let i0 = bi * GRAM_BLOCK;
        let mi = GRAM_BLOCK.min(n - i0);
        for bj in bi..blocks {
            let j0 = bj * GRAM_BLOCK;
            let nj = GRAM_BLOCK.min(n - j0);
            // SAFETY: rows i0..i0+mi and j0..j0+nj of op(x) lie inside `x`
            // (strides from its row-major layout); the destination block
            // (i0.., j0..) of `out` (n x n) is inside it and disjoint from `x`.
            unsafe {
                gemm::gemm(
                    mi,
                    nj,
                    k,
                    out.as_mut_ptr().add(i0 * n + j0),
                    1,
                    n as isize,
                    false,
                    x.as_ptr().offset(i0 as isize * rs),
                    cs,
                    rs,
                    x.as_ptr().offset(j0 as isize * rs),
                    rs,
                    cs,
                    F::ZERO,
                    F::ONE,
                    false,
                    false,
                    false,
                    parallelism(mi * nj * k),
                );
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            out[i * n + j] = out[j * n + i];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], (m, k): (usize, usize), b: &[f64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn t(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
        let mut out = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                out[j * rows + i] = x[i * cols + j];
            }
        }
        out
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| ((((i as u64 + 1) * 2654435761) ^ seed) % 1000) as f64 / 500.0 - 1.0)
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-10 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn products_with_every_transpose_match_the_definition() {
        let (m, k, n) = (7, 300, 5);
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let want = naive(&a, (m, k), &b, n);
        close(&matmul(&a, (m, k), false, &b, (k, n), false), &want);
        close(
            &matmul(&t(&a, m, k), (k, m), true, &b, (k, n), false),
            &want,
        );
        close(
            &matmul(&a, (m, k), false, &t(&b, k, n), (n, k), true),
            &want,
        );
        close(
            &matmul(&t(&a, m, k), (k, m), true, &t(&b, k, n), (n, k), true),
            &want,
        );
    }

    #[test]
    fn gram_products_match_the_general_product_and_are_symmetric() {
        // More rows than a block, so blocks above the diagonal are mirrored.
        for (rows, cols) in [(600, 37), (37, 600), (1, 1), (257, 256)] {
            let x = data(rows * cols, 3);
            let xt = t(&x, rows, cols);
            let g = gram(&x, rows, cols, false);
            close(&g, &naive(&x, (rows, cols), &xt, rows));
            let h = gram(&x, rows, cols, true);
            close(&h, &naive(&xt, (cols, rows), &x, cols));
            for (m, n) in [(&g, rows), (&h, cols)] {
                for i in 0..n {
                    for j in 0..n {
                        assert_eq!(m[i * n + j].to_bits(), m[j * n + i].to_bits());
                    }
                }
            }
        }
    }
}
