//! Matrix products for rules with shapes, through faer's products
//! (`faer::linalg::matmul`, AVX-512 kernels on x86-64). faer was chosen
//! over the `gemm` crate by timing both on Muon's products (1024 x 4096
//! f32, 2 threads, same process, load average 1.9): `x @ x^T` by faer's
//! triangular product 23 ms against 37-45 ms for the `gemm` crate by
//! blocks above the diagonal, a 1024 x 1024 by 1024 x 4096 product 41 ms
//! against 41-48 ms; both give the same bits on one thread and on two. A
//! Gram product `x @ x^T` is symmetric, so only the entries on and above
//! the diagonal are computed and the rest mirrored: about half the
//! multiply-adds of a general product.

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
            // The entries on and above the diagonal.
            Product::Gram { n, k } => n * (n + 1) / 2 * k,
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

fn parallelism(flops: usize) -> faer::Par {
    let threads = rayon::current_num_threads();
    if threads > 1 && flops >= 1 << 22 {
        faer::Par::rayon(threads)
    } else {
        faer::Par::Seq
    }
}

/// Strides (row, column) of `op(x)` for `x` stored row-major with `cols`
/// columns, `op` the transpose when `t`.
fn strides(cols: usize, t: bool) -> (isize, isize) {
    if t {
        (1, cols as isize)
    } else {
        (cols as isize, 1)
    }
}

/// One product `dst = lhs @ rhs` for faer, in views: each matrix a pointer,
/// its dimensions and its (row, column) strides.
struct Views<T> {
    dst: (*mut T, (usize, usize), (isize, isize)),
    lhs: (*const T, (usize, usize), (isize, isize)),
    rhs: (*const T, (usize, usize), (isize, isize)),
    /// Only the entries on and above the diagonal of `dst` are computed.
    upper: bool,
}

impl<T: faer::traits::ComplexField> Views<T> {
    /// Runs the product.
    ///
    /// # Safety
    /// Each view must lie inside its allocation, `dst` must not alias the
    /// operands, and the dimensions must agree (`lhs` m x k, `rhs` k x n,
    /// `dst` m x n).
    unsafe fn run(self, one: T, par: faer::Par) {
        use faer::linalg::matmul::triangular::{self, BlockStructure};
        let (d, (m, n), (drs, dcs)) = self.dst;
        let (a, (am, ak), (ars, acs)) = self.lhs;
        let (b, (bk, bn), (brs, bcs)) = self.rhs;
        // SAFETY: the caller's contract.
        unsafe {
            let dst = faer::MatMut::from_raw_parts_mut(d, m, n, drs, dcs);
            let lhs = faer::MatRef::from_raw_parts(a, am, ak, ars, acs);
            let rhs = faer::MatRef::from_raw_parts(b, bk, bn, brs, bcs);
            if self.upper {
                triangular::matmul(
                    dst,
                    BlockStructure::TriangularUpper,
                    faer::Accum::Replace,
                    lhs,
                    BlockStructure::Rectangular,
                    rhs,
                    BlockStructure::Rectangular,
                    one,
                    par,
                );
            } else {
                faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, one, par);
            }
        }
    }
}

/// Runs `v` (built for `F`'s pointers) on faer with `F`'s concrete type;
/// false, with nothing computed, for an element type other than f32 and
/// f64.
///
/// # Safety
/// As [`Views::run`].
#[must_use]
unsafe fn product<F: Float>(v: Views<F>, par: faer::Par) -> bool {
    fn cast<F, T>(v: &Views<F>) -> Views<T> {
        let view = |(p, d, s): (*const F, (usize, usize), (isize, isize))| (p.cast::<T>(), d, s);
        let (d, dd, ds) = v.dst;
        Views {
            dst: (d.cast::<T>(), dd, ds),
            lhs: view(v.lhs),
            rhs: view(v.rhs),
            upper: v.upper,
        }
    }
    // SAFETY: `F` is f32 exactly when `as_f32s` sees f32 elements (f64
    // when `as_f64s` does), so the casts keep the element type; the views
    // are the caller's.
    unsafe {
        if F::as_f32s(&[] as &[F]).is_some() {
            cast::<F, f32>(&v).run(1.0f32, par);
        } else if F::as_f64s(&[] as &[F]).is_some() {
            cast::<F, f64>(&v).run(1.0f64, par);
        } else {
            return false;
        }
    }
    true
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
    if k == 0 {
        out.fill(F::ZERO);
        return out;
    }
    // SAFETY: the views describe `m x k`, `k x n` and `m x n` matrices
    // inside `a`, `b` and `out` (row-major, lengths `da.0 * da.1`,
    // `db.0 * db.1` and `m * n`); `out` does not alias the inputs.
    let done = unsafe {
        product(
            Views {
                dst: (out.as_mut_ptr(), (m, n), (n as isize, 1)),
                lhs: (a.as_ptr(), (m, k), strides(da.1, ta)),
                rhs: (b.as_ptr(), (k, n), strides(db.1, tb)),
                upper: false,
            },
            parallelism(m * n * k),
        )
    };
    if !done {
        out.fill(F::from_f64(f64::NAN));
    }
    out
}

/// The Gram product of row-major `x` (`rows x cols`): `x @ x^T`
/// (`rows x rows`), or `x^T @ x` (`cols x cols`) when `t`. The entries on
/// and above the diagonal are computed (faer's triangular product) and
/// mirrored, so the result is exactly symmetric.
pub fn gram<F: Float>(x: &[F], rows: usize, cols: usize, t: bool) -> Vec<F> {
    // Rows of op(x): the result is n x n, each entry a dot product of length k.
    let (n, k) = if t { (cols, rows) } else { (rows, cols) };
    let mut out = super::pool::take::<F>(n * n);
    note(Product::Gram { n, k });
    if n == 0 {
        return out;
    }
    if k == 0 {
        out.fill(F::ZERO);
        return out;
    }
    let (rs, cs) = strides(cols, t);
    // SAFETY: op(x) (n x k) and its transpose (k x n) are views of `x` by
    // its row-major strides; the destination (n x n) is `out`, disjoint
    // from `x`.
    let done = unsafe {
        product(
            Views {
                dst: (out.as_mut_ptr(), (n, n), (n as isize, 1)),
                lhs: (x.as_ptr(), (n, k), (rs, cs)),
                rhs: (x.as_ptr(), (k, n), (cs, rs)),
                upper: true,
            },
            parallelism(n * n * k / 2),
        )
    };
    if !done {
        out.fill(F::from_f64(f64::NAN));
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
