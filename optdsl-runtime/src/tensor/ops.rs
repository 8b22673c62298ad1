//! The tensor executor's values and their operations: arrays with a shape
//! and per-step numbers ([`Val`]), numpy's broadcasting, element-wise
//! operators and functions, selections, reductions over the whole array or
//! along an axis, and the transpose. Each loop is compiled per vector level
//! (`simd!`), with the maths of `BinOp::arith` and `Func::apply`, the one
//! definition of each operator.

use crate::float::Float;
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::functions::{Axis, Func, Reduction};
use std::borrow::Cow;

/// An array of numbers with a shape.
#[derive(Debug, Clone)]
pub(crate) struct Arr<'a, F: Clone> {
    pub rows: usize,
    pub cols: usize,
    pub data: Cow<'a, [F]>,
    /// Known symmetric (a Gram matrix, or sums and scalings of them), so a
    /// product with itself is a Gram product too.
    pub symmetric: bool,
}

/// A value during a step.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a, F: Clone> {
    /// A per-step number (or a constant), in f64.
    Num(f64),
    /// A per-step boolean.
    Bool(bool),
    /// Numbers with a shape.
    Arr(Arr<'a, F>),
    /// Booleans per element (`rows`, `cols`, values).
    Mask(usize, usize, Vec<bool>),
}

/// One chunk's part of a reduction.
pub(super) enum Part<F> {
    All(f64),
    Rows(Vec<F>),
    Cols(Vec<f64>),
}

/// Adds a block's eight lanes of whole-array reduction `r` (element `i` of
/// the block in lane `i mod 8`) to the chunk's total, in lane order.
pub(super) fn add_lanes(total: &mut f64, r: Reduction, lanes: &[f64; 8]) {
    let block = lanes[1..].iter().fold(lanes[0], |t, &s| r.combine(t, s));
    *total = r.combine(*total, block);
}

/// Adds `data` (rows of `cols` numbers) to a chunk's part of reduction `r`.
pub(super) fn accumulate<F: Float>(part: &mut Part<F>, r: Reduction, data: &[F], cols: usize) {
    #[cfg(target_arch = "x86_64")]
    if let (Part::Rows(out), Some(xs)) = (&mut *part, F::as_f32s(data)) {
        if r != Reduction::MaxAbs && crate::exec::level_for(true) != crate::exec::Simd::Portable {
            // SAFETY: the level in force (AVX2 or above) is one this CPU has.
            let sums = unsafe { row_sums_avx2(xs, cols, r == Reduction::Norm, None) };
            out.extend(sums.into_iter().map(|t| F::from_f64(r.finish(t, cols))));
            return;
        }
    }
    simd!(accumulate_body, accumulate_avx2, accumulate_avx512, <F: Float>, (part: &mut Part<F>, r: Reduction, data: &[F], cols: usize), (part, r, data, cols));
}

/// Adds `data` to a chunk's parts of reduction `r` along rows (`rows`) and
/// along columns (`cols_part`) of the same numbers, in one sweep where it
/// can (f32 numbers, AVX2, a sum or a sum of squares); `false` where it
/// cannot (nothing added). The same additions in the same order as two
/// calls of [`accumulate`].
pub(super) fn accumulate_rows_cols<F: Float>(
    rows: &mut Part<F>,
    cols_part: &mut Part<F>,
    r: Reduction,
    data: &[F],
    cols: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let (Part::Rows(out), Part::Cols(acc), Some(xs)) =
        (&mut *rows, &mut *cols_part, F::as_f32s(data))
    {
        if r != Reduction::MaxAbs
            && acc.len() == cols
            && crate::exec::level_for(true) != crate::exec::Simd::Portable
        {
            // SAFETY: the level in force (AVX2 or above) is one this CPU has.
            let sums = unsafe { row_sums_avx2(xs, cols, r == Reduction::Norm, Some(acc)) };
            out.extend(sums.into_iter().map(|t| F::from_f64(r.finish(t, cols))));
            return true;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, cols_part, r, data, cols);
    false
}

/// Each row's sum (of squares, with `square`) of f32 rows of `cols`
/// numbers, in f64: eight rows side by side in two vectors of four sums,
/// four columns of the eight rows loaded and transposed at a time, then
/// added column by column, so each row's sum is the same sequence of f64
/// additions as [`Reduction::accumulate`]'s from 0 (no fused multiply-add).
/// With `col`, each column's numbers are also added to its sum there, row
/// by row in order.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_sums_avx2(
    data: &[f32],
    cols: usize,
    square: bool,
    mut col: Option<&mut [f64]>,
) -> Vec<f64> {
    use std::arch::x86_64::*;
    if cols == 0 {
        return Vec::new();
    }
    let rows = data.len() / cols;
    let mut out = Vec::with_capacity(rows);
    let add = |s: f64, x: f32| {
        let x = x as f64;
        if square {
            s + x * x
        } else {
            s + x
        }
    };
    let mut groups = data[..rows * cols].chunks_exact(8 * cols);
    for group in &mut groups {
        let p = group.as_ptr();
        let (mut a, mut b) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let whole = cols / 4 * 4;
        let mut j = 0;
        while j < whole {
            // SAFETY: row `q < 8` of the group, columns `j..j + 4 <= cols`.
            let load = |q: usize| unsafe { _mm_loadu_ps(p.add(q * cols + j)) };
            // Columns j..j + 4 of rows 0-3, and of rows 4-7, as four
            // vectors of one column each.
            let (l0, l1, l2, l3) = (load(0), load(1), load(2), load(3));
            let (h0, h1, h2, h3) = (load(4), load(5), load(6), load(7));
            if let Some(col) = col.as_deref_mut() {
                // SAFETY: `col` holds `cols` sums; columns `j..j + 4`.
                let at = unsafe { col.as_mut_ptr().add(j) };
                let mut c = unsafe { _mm256_loadu_pd(at) };
                for x in [l0, l1, l2, l3, h0, h1, h2, h3] {
                    let x = _mm256_cvtps_pd(x);
                    c = _mm256_add_pd(c, if square { _mm256_mul_pd(x, x) } else { x });
                }
                unsafe { _mm256_storeu_pd(at, c) };
            }
            let lo = transpose4(l0, l1, l2, l3);
            let hi = transpose4(h0, h1, h2, h3);
            for (x, y) in lo.into_iter().zip(hi) {
                let (x, y) = (_mm256_cvtps_pd(x), _mm256_cvtps_pd(y));
                if square {
                    a = _mm256_add_pd(a, _mm256_mul_pd(x, x));
                    b = _mm256_add_pd(b, _mm256_mul_pd(y, y));
                } else {
                    a = _mm256_add_pd(a, x);
                    b = _mm256_add_pd(b, y);
                }
            }
            j += 4;
        }
        let mut acc = [0.0f64; 8];
        // SAFETY: `acc` holds eight numbers.
        unsafe {
            _mm256_storeu_pd(acc.as_mut_ptr(), a);
            _mm256_storeu_pd(acc.as_mut_ptr().add(4), b);
        }
        for j in whole..cols {
            for (q, s) in acc.iter_mut().enumerate() {
                *s = add(*s, group[q * cols + j]);
            }
            if let Some(col) = col.as_deref_mut() {
                col[j] = (0..8).fold(col[j], |c, q| add(c, group[q * cols + j]));
            }
        }
        out.extend_from_slice(&acc);
    }
    for row in groups.remainder().chunks_exact(cols) {
        out.push(row.iter().fold(0.0, |s, &x| add(s, x)));
        if let Some(col) = col.as_deref_mut() {
            for (c, &x) in col.iter_mut().zip(row) {
                *c = add(*c, x);
            }
        }
    }
    out
}

/// Four vectors of four numbers transposed: the columns of the 4 x 4 block
/// whose rows they are.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn transpose4(
    r0: std::arch::x86_64::__m128,
    r1: std::arch::x86_64::__m128,
    r2: std::arch::x86_64::__m128,
    r3: std::arch::x86_64::__m128,
) -> [std::arch::x86_64::__m128; 4] {
    use std::arch::x86_64::*;
    let t0 = _mm_unpacklo_ps(r0, r1); // r0[0] r1[0] r0[1] r1[1]
    let t1 = _mm_unpacklo_ps(r2, r3); // r2[0] r3[0] r2[1] r3[1]
    let t2 = _mm_unpackhi_ps(r0, r1); // r0[2] r1[2] r0[3] r1[3]
    let t3 = _mm_unpackhi_ps(r2, r3); // r2[2] r3[2] r2[3] r3[3]
    [
        _mm_movelh_ps(t0, t1),
        _mm_movehl_ps(t1, t0),
        _mm_movelh_ps(t2, t3),
        _mm_movehl_ps(t3, t2),
    ]
}

/// Runs `$body` with `$add` bound to reduction `$r`'s accumulation as a
/// closure of its own (each reduction's loops compiled apart; the maths is
/// `Reduction::accumulate`, the one definition).
macro_rules! per_red {
    ($r:expr, |$add:ident| $body:expr) => {
        match $r {
            Reduction::Sum => {
                let $add = |s: f64, x: f64| Reduction::Sum.accumulate(s, x);
                $body
            }
            Reduction::Mean => {
                let $add = |s: f64, x: f64| Reduction::Mean.accumulate(s, x);
                $body
            }
            Reduction::Norm => {
                let $add = |s: f64, x: f64| Reduction::Norm.accumulate(s, x);
                $body
            }
            Reduction::MaxAbs => {
                let $add = |s: f64, x: f64| Reduction::MaxAbs.accumulate(s, x);
                $body
            }
        }
    };
}

/// Adds `data` to eight lanes of whole-array reduction `r`: element `k`
/// into lane `k mod 8`, in order (a block's part of a whole-array
/// reduction, [`accumulate`]'s order). For compiled blocks (feature `jit`).
#[cfg(feature = "jit")]
pub(super) fn accumulate_lanes<F: Float>(lanes: &mut [f64; 8], r: Reduction, data: &[F]) {
    simd!(lanes_body, lanes_avx2, lanes_avx512, <F: Float>, (lanes: &mut [f64; 8], r: Reduction, data: &[F]), (lanes, r, data));
}

#[inline(always)]
fn lanes_body<F: Float>(lanes: &mut [f64; 8], r: Reduction, data: &[F]) {
    let mut chunks = data.chunks_exact(8);
    per_red!(r, |add| {
        for c in &mut chunks {
            for (s, &v) in lanes.iter_mut().zip(c) {
                *s = add(*s, v.to_f64());
            }
        }
        for (s, &v) in lanes.iter_mut().zip(chunks.remainder()) {
            *s = add(*s, v.to_f64());
        }
    });
}

#[inline(always)]
pub(super) fn accumulate_body<F: Float>(part: &mut Part<F>, r: Reduction, data: &[F], cols: usize) {
    match part {
        Part::All(total) => {
            let mut acc = [r.identity::<f64>(); 8];
            lanes_body(&mut acc, r, data);
            add_lanes(total, r, &acc);
        }
        Part::Rows(out) => {
            // Each row in index order; eight rows at a time, so their sums
            // proceed side by side.
            for group in data.chunks(8 * cols) {
                let n = group.len() / cols;
                let mut acc = [r.identity::<f64>(); 8];
                per_red!(r, |add| {
                    if n == 8 {
                        let rows: [&[F]; 8] =
                            std::array::from_fn(|q| &group[q * cols..(q + 1) * cols]);
                        for j in 0..cols {
                            for (s, row) in acc.iter_mut().zip(&rows) {
                                *s = add(*s, row[j].to_f64());
                            }
                        }
                    } else {
                        for (q, s) in acc.iter_mut().enumerate().take(n) {
                            *s = group[q * cols..(q + 1) * cols]
                                .iter()
                                .fold(*s, |s, &v| add(s, v.to_f64()));
                        }
                    }
                });
                out.extend(acc[..n].iter().map(|&t| F::from_f64(r.finish(t, cols))));
            }
        }
        Part::Cols(acc) => per_red!(r, |add| {
            // Up to eight rows at a time, eight columns' sums held while
            // the rows are added in order (each column's sum takes its
            // numbers in row order, as one row at a time would).
            for group in data.chunks(8 * cols) {
                let n = group.len() / cols;
                let mut j = 0;
                for sums in acc.chunks_exact_mut(8) {
                    let mut s: [f64; 8] = [0.0; 8];
                    s.copy_from_slice(sums);
                    for q in 0..n {
                        let row = &group[q * cols + j..q * cols + j + 8];
                        for (s, &v) in s.iter_mut().zip(row) {
                            *s = add(*s, v.to_f64());
                        }
                    }
                    sums.copy_from_slice(&s);
                    j += 8;
                }
                for row in group.chunks_exact(cols) {
                    for (s, &v) in acc[j..].iter_mut().zip(&row[j..]) {
                        *s = add(*s, v.to_f64());
                    }
                }
            }
        }),
    }
}

pub(super) fn borrow<'b, F: Float>(v: &'b Val<'_, F>) -> Val<'b, F> {
    match v {
        Val::Num(x) => Val::Num(*x),
        Val::Bool(b) => Val::Bool(*b),
        Val::Arr(a) => Val::Arr(Arr {
            rows: a.rows,
            cols: a.cols,
            data: Cow::Borrowed(&a.data),
            symmetric: a.symmetric,
        }),
        Val::Mask(r, c, m) => Val::Mask(*r, *c, m.clone()),
    }
}

pub(super) fn owned<F: Float>(v: Val<'_, F>) -> Val<'static, F> {
    match v {
        Val::Num(x) => Val::Num(x),
        Val::Bool(b) => Val::Bool(b),
        Val::Arr(a) => Val::Arr(Arr {
            rows: a.rows,
            cols: a.cols,
            data: Cow::Owned(a.data.into_owned()),
            symmetric: a.symmetric,
        }),
        Val::Mask(r, c, m) => Val::Mask(r, c, m),
    }
}

/// `v` as `rows x cols` numbers, broadcast; `None` if its shape does not
/// broadcast there.
pub(super) fn broadcast_to<F: Float>(
    v: Val<'_, F>,
    rows: usize,
    cols: usize,
) -> Option<Cow<'_, [F]>> {
    match v {
        Val::Num(x) => Some(Cow::Owned(vec![F::from_f64(x); rows * cols])),
        Val::Arr(a) if a.rows == rows && a.cols == cols => Some(a.data),
        Val::Arr(a) if (a.rows == rows || a.rows == 1) && (a.cols == cols || a.cols == 1) => {
            let mut out = Vec::with_capacity(rows * cols);
            for i in 0..rows {
                let r = if a.rows == 1 { 0 } else { i };
                for j in 0..cols {
                    let c = if a.cols == 1 { 0 } else { j };
                    out.push(a.data[r * a.cols + c]);
                }
            }
            Some(Cow::Owned(out))
        }
        _ => None,
    }
}

pub(super) fn unary<F: Float>(op: UnOp, x: Val<'_, F>) -> Val<'_, F> {
    match (op, x) {
        (UnOp::Neg, Val::Num(v)) => Val::Num(-v),
        (UnOp::Not, Val::Bool(b)) => Val::Bool(!b),
        (UnOp::Neg, Val::Arr(mut a)) => {
            a.data.to_mut().iter_mut().for_each(|v| *v = -*v);
            Val::Arr(a)
        }
        (UnOp::Not, Val::Mask(r, c, mut m)) => {
            m.iter_mut().for_each(|b| *b = !*b);
            Val::Mask(r, c, m)
        }
        (_, other) => other,
    }
}

/// How an operand is read at row `i`, column `j`: its index, from its shape.
#[derive(Clone, Copy)]
pub(super) struct Walk {
    rows: usize,
    cols: usize,
}

impl Walk {
    #[inline(always)]
    fn at(self, i: usize, j: usize) -> usize {
        let r = if self.rows == 1 { 0 } else { i };
        let c = if self.cols == 1 { 0 } else { j };
        r * self.cols + c
    }
}

/// Numbers of an operand: one (a per-step number) or an array.
pub(super) enum Nums<'v, F> {
    One(F),
    Many(&'v [F], Walk),
}

pub(super) fn dims_of<F: Clone>(v: &Val<'_, F>) -> (usize, usize) {
    match v {
        Val::Arr(a) => (a.rows, a.cols),
        Val::Mask(r, c, _) => (*r, *c),
        _ => (1, 1),
    }
}

pub(super) fn out_dims(shapes: &[(usize, usize)]) -> (usize, usize) {
    shapes.iter().fold((1, 1), |(r, c), &(a, b)| {
        // numpy's rule: a dimension of 1 takes the other's, 0 included.
        (if a == 1 { r } else { a }, if b == 1 { c } else { b })
    })
}

/// One row of an operand broadcast to the result's columns: one number, or
/// a slice of the row's numbers.
pub(super) enum Row<'v, F> {
    One(F),
    Slice(&'v [F]),
}

impl<'v, F: Float> Nums<'v, F> {
    /// Whether it covers a `rows x cols` result number for number (or is one
    /// number), so a flat loop reads it.
    fn flat(&self, rows: usize, cols: usize) -> bool {
        match self {
            Nums::One(_) => true,
            Nums::Many(_, w) => w.rows == rows && w.cols == cols,
        }
    }

    /// The number at row `i`, column `j` of the result it broadcasts to.
    #[inline(always)]
    fn get(&self, i: usize, j: usize) -> F {
        match self {
            Nums::One(v) => *v,
            Nums::Many(d, w) => d[w.at(i, j)],
        }
    }

    /// Row `i` of the operand broadcast to `cols` columns.
    fn row(&self, i: usize, cols: usize) -> Row<'v, F> {
        match *self {
            Nums::One(v) => Row::One(v),
            Nums::Many(d, w) => {
                let r = if w.rows == 1 { 0 } else { i };
                if w.cols == 1 && cols != 1 {
                    Row::One(d[r])
                } else {
                    Row::Slice(&d[r * w.cols..(r + 1) * w.cols])
                }
            }
        }
    }
}

/// Applies `f` element by element over numbers `a` and `b` broadcast to
/// `(rows, cols)`, into `out`: one flat loop where both cover the result,
/// else row by row (each row's loop over slices or one number).
pub(super) fn zip_into<F: Float, T: Copy>(
    out: &mut [T],
    dims: (usize, usize),
    a: &Nums<'_, F>,
    b: &Nums<'_, F>,
    f: impl Fn(F, F) -> T,
) {
    simd!(zip_body, zip_avx2, zip_avx512, <F: Float, T: Copy, G: Fn(F, F) -> T>, (out: &mut [T], dims: (usize, usize), a: &Nums<'_, F>, b: &Nums<'_, F>, f: &G), (out, dims, a, b, &f));
}

#[inline(always)]
pub(super) fn zip_body<F: Float, T: Copy, G: Fn(F, F) -> T>(
    out: &mut [T],
    (rows, cols): (usize, usize),
    a: &Nums<'_, F>,
    b: &Nums<'_, F>,
    f: &G,
) {
    match (a, b) {
        (Nums::Many(x, _), Nums::Many(y, _)) if a.flat(rows, cols) && b.flat(rows, cols) => {
            for ((o, &x), &y) in out.iter_mut().zip(x.iter()).zip(y.iter()) {
                *o = f(x, y);
            }
        }
        (Nums::Many(x, _), Nums::One(y)) if a.flat(rows, cols) => {
            for (o, &x) in out.iter_mut().zip(x.iter()) {
                *o = f(x, *y);
            }
        }
        (Nums::One(x), Nums::Many(y, _)) if b.flat(rows, cols) => {
            for (o, &y) in out.iter_mut().zip(y.iter()) {
                *o = f(*x, y);
            }
        }
        (Nums::One(x), Nums::One(y)) => out.fill(f(*x, *y)),
        _ => {
            for (i, o) in out.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
                match (a.row(i, cols), b.row(i, cols)) {
                    (Row::Slice(x), Row::Slice(y)) => {
                        for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                            *o = f(x, y);
                        }
                    }
                    (Row::Slice(x), Row::One(y)) => {
                        for (o, &x) in o.iter_mut().zip(x) {
                            *o = f(x, y);
                        }
                    }
                    (Row::One(x), Row::Slice(y)) => {
                        for (o, &y) in o.iter_mut().zip(y) {
                            *o = f(x, y);
                        }
                    }
                    (Row::One(x), Row::One(y)) => o.fill(f(x, y)),
                }
            }
        }
    }
}

/// `out[i, j] = f(out[i, j], other[i, j])`, `other` broadcast to `out`'s
/// shape.
pub(super) fn update_in_place<F: Float>(
    out: &mut [F],
    dims: (usize, usize),
    other: &Nums<'_, F>,
    f: impl Fn(F, F) -> F,
) {
    simd!(update_body, update_avx2, update_avx512, <F: Float, G: Fn(F, F) -> F>, (out: &mut [F], dims: (usize, usize), other: &Nums<'_, F>, f: &G), (out, dims, other, &f));
}

#[inline(always)]
pub(super) fn update_body<F: Float, G: Fn(F, F) -> F>(
    out: &mut [F],
    (rows, cols): (usize, usize),
    other: &Nums<'_, F>,
    f: &G,
) {
    match other {
        Nums::One(y) => out.iter_mut().for_each(|o| *o = f(*o, *y)),
        Nums::Many(y, _) if other.flat(rows, cols) => {
            for (o, &y) in out.iter_mut().zip(y.iter()) {
                *o = f(*o, y);
            }
        }
        Nums::Many(..) => {
            for (i, o) in out.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
                match other.row(i, cols) {
                    Row::Slice(y) => {
                        for (o, &y) in o.iter_mut().zip(y) {
                            *o = f(*o, y);
                        }
                    }
                    Row::One(y) => o.iter_mut().for_each(|o| *o = f(*o, y)),
                }
            }
        }
    }
}

pub(super) fn nums<'v, F: Float>(v: &'v Val<'_, F>) -> Nums<'v, F> {
    match v {
        Val::Num(x) => Nums::One(F::from_f64(*x)),
        Val::Arr(a) => Nums::Many(
            &a.data,
            Walk {
                rows: a.rows,
                cols: a.cols,
            },
        ),
        _ => Nums::One(F::ZERO),
    }
}

pub(super) fn binary<'a, F: Float>(op: BinOp, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
    match (&a, &b) {
        (Val::Num(x), Val::Num(y)) => {
            return if op.is_arith() {
                Val::Num(op.arith(*x, *y))
            } else {
                Val::Bool(op.compare(*x, *y))
            }
        }
        (Val::Bool(x), Val::Bool(y)) => return Val::Bool(op.logic(*x, *y)),
        _ => {}
    }
    if op.is_logic() {
        return mask_logic(op, a, b);
    }
    let (rows, cols) = out_dims(&[dims_of(&a), dims_of(&b)]);
    if op.is_arith() {
        let symmetric = sym(&a) && sym(&b);
        // Write into an owned temporary of the result's shape where there is one.
        let reusable =
            |x: &Arr<'_, F>| matches!(x.data, Cow::Owned(_)) && x.rows == rows && x.cols == cols;
        let out = match (a, b) {
            (Val::Arr(x), b) if reusable(&x) => {
                let mut out = x.data.into_owned();
                per_op!(op, |f| update_in_place(
                    &mut out,
                    (rows, cols),
                    &nums(&b),
                    f
                ));
                out
            }
            (a, Val::Arr(y)) if reusable(&y) => {
                let mut out = y.data.into_owned();
                per_op!(op, |f| update_in_place(
                    &mut out,
                    (rows, cols),
                    &nums(&a),
                    |o, x| f(x, o)
                ));
                out
            }
            (a, b) => {
                let mut out = super::pool::take::<F>(rows * cols);
                per_op!(op, |f| zip_into(
                    &mut out,
                    (rows, cols),
                    &nums(&a),
                    &nums(&b),
                    f
                ));
                out
            }
        };
        return Val::Arr(Arr {
            rows,
            cols,
            data: Cow::Owned(out),
            symmetric,
        });
    }
    let mut out = vec![false; rows * cols];
    zip_into(&mut out, (rows, cols), &nums(&a), &nums(&b), |x, y| {
        op.compare(x, y)
    });
    Val::Mask(rows, cols, out)
}

pub(super) fn sym<F: Clone>(v: &Val<'_, F>) -> bool {
    match v {
        Val::Num(_) => true,
        Val::Arr(a) => a.symmetric,
        _ => false,
    }
}

pub(super) fn mask_logic<'a, F: Float>(op: BinOp, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
    let (rows, cols) = out_dims(&[dims_of(&a), dims_of(&b)]);
    let get = |v: &Val<'_, F>, i: usize, j: usize| match v {
        Val::Bool(x) => *x,
        Val::Mask(r, c, m) => m[Walk { rows: *r, cols: *c }.at(i, j)],
        _ => false,
    };
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            out.push(op.logic(get(&a, i, j), get(&b, i, j)));
        }
    }
    Val::Mask(rows, cols, out)
}

pub(super) fn func<'a, F: Float>(f: Func, vals: Vec<Val<'a, F>>) -> Val<'a, F> {
    if vals.iter().all(|v| matches!(v, Val::Num(_))) {
        let at = |i: usize| match vals.get(i) {
            Some(Val::Num(x)) => *x,
            _ => 0.0,
        };
        return Val::Num(f.apply_scalar::<F>(at(0), at(1), at(2)));
    }
    let shapes: Vec<(usize, usize)> = vals.iter().map(dims_of).collect();
    let (rows, cols) = out_dims(&shapes);
    let mut vals = vals;
    if f.arity() <= 2 {
        // One or two arguments: the same loops as the operators.
        fn second<'v, F: Float>(vals: &'v [Val<'_, F>]) -> Nums<'v, F> {
            vals.get(1).map_or(Nums::One(F::ZERO), nums)
        }
        let out = match vals.first_mut() {
            Some(Val::Arr(a))
                if matches!(a.data, Cow::Owned(_)) && (a.rows, a.cols) == (rows, cols) =>
            {
                let mut out = std::mem::take(a.data.to_mut());
                per_func!(f, |g| update_in_place(
                    &mut out,
                    (rows, cols),
                    &second(&vals),
                    g
                ));
                out
            }
            _ => {
                let mut out = super::pool::take::<F>(rows * cols);
                let first = vals.first().map_or(Nums::One(F::ZERO), nums);
                per_func!(f, |g| zip_into(
                    &mut out,
                    (rows, cols),
                    &first,
                    &second(&vals),
                    g
                ));
                out
            }
        };
        return Val::Arr(Arr {
            rows,
            cols,
            data: Cow::Owned(out),
            symmetric: false,
        });
    }
    // The first argument's array, when it is a temporary of the result's
    // shape, takes the result.
    let reuse = match vals.first_mut() {
        Some(Val::Arr(a))
            if matches!(a.data, Cow::Owned(_)) && (a.rows, a.cols) == (rows, cols) =>
        {
            Some(std::mem::take(a.data.to_mut()))
        }
        _ => None,
    };
    let ns: Vec<Nums<'_, F>> = vals.iter().map(nums).collect();
    let get = |k: usize, i: usize, j: usize| ns.get(k).map_or(F::ZERO, |n| n.get(i, j));
    let apply = |x: F, i: usize, j: usize| match f {
        Func::Float => x,
        f => f.apply(x, get(1, i, j), get(2, i, j)),
    };
    let out = match reuse {
        Some(mut out) => {
            for i in 0..rows {
                for j in 0..cols {
                    let o = &mut out[i * cols + j];
                    *o = apply(*o, i, j);
                }
            }
            out
        }
        None => {
            let mut out = Vec::with_capacity(rows * cols);
            for i in 0..rows {
                for j in 0..cols {
                    out.push(apply(get(0, i, j), i, j));
                }
            }
            out
        }
    };
    Val::Arr(Arr {
        rows,
        cols,
        data: Cow::Owned(out),
        symmetric: false,
    })
}

pub(super) fn select<'a, F: Float>(c: Val<'a, F>, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
    match c {
        Val::Bool(true) => a,
        Val::Bool(false) => b,
        Val::Mask(mr, mc, m) => {
            let (rows, cols) = out_dims(&[(mr, mc), dims_of(&a), dims_of(&b)]);
            let (na, nb) = (nums(&a), nums(&b));
            let wm = Walk { rows: mr, cols: mc };
            let mut out = Vec::with_capacity(rows * cols);
            for i in 0..rows {
                for j in 0..cols {
                    out.push(if m[wm.at(i, j)] {
                        na.get(i, j)
                    } else {
                        nb.get(i, j)
                    });
                }
            }
            Val::Arr(Arr {
                rows,
                cols,
                data: Cow::Owned(out),
                symmetric: false,
            })
        }
        _ => b,
    }
}

/// A reduction over every number of `x`, in f64 over eight interleaved
/// partial results combined in order.
pub(super) fn reduce<F: Float>(r: Reduction, x: &Val<'_, F>) -> f64 {
    match x {
        Val::Num(v) => r.finish(r.accumulate(r.identity::<f64>(), *v), 1),
        Val::Arr(a) => {
            let mut acc = [r.identity::<f64>(); 8];
            let mut chunks = a.data.chunks_exact(8);
            for c in &mut chunks {
                for (s, &v) in acc.iter_mut().zip(c) {
                    *s = r.accumulate(*s, v.to_f64());
                }
            }
            for (s, &v) in acc.iter_mut().zip(chunks.remainder()) {
                *s = r.accumulate(*s, v.to_f64());
            }
            let total = acc[1..].iter().fold(acc[0], |t, &s| r.combine(t, s));
            r.finish(total, a.data.len())
        }
        _ => f64::NAN,
    }
}

/// A reduction along one axis: one number per row (`Axis::Row`) or per
/// column, accumulated in f64 in index order.
pub(super) fn axis_reduce<'a, F: Float>(axis: Axis, r: Reduction, x: &Val<'_, F>) -> Val<'a, F> {
    let Val::Arr(a) = x else {
        return Val::Num(reduce(r, x));
    };
    let (rows, cols) = (a.rows, a.cols);
    let out: Vec<F> = match axis {
        Axis::Row => a
            .data
            .chunks_exact(cols.max(1))
            .map(|row| {
                let t = row
                    .iter()
                    .fold(r.identity::<f64>(), |s, &v| r.accumulate(s, v.to_f64()));
                F::from_f64(r.finish(t, cols))
            })
            .collect(),
        Axis::Col => {
            let mut acc = vec![r.identity::<f64>(); cols];
            for row in a.data.chunks_exact(cols.max(1)) {
                for (s, &v) in acc.iter_mut().zip(row) {
                    *s = r.accumulate(*s, v.to_f64());
                }
            }
            acc.into_iter()
                .map(|t| F::from_f64(r.finish(t, rows)))
                .collect()
        }
    };
    let (orows, ocols) = match axis {
        Axis::Row => (rows, 1),
        Axis::Col => (1, cols),
    };
    Val::Arr(Arr {
        rows: orows,
        cols: ocols,
        data: Cow::Owned(out),
        symmetric: false,
    })
}

pub(super) fn transpose<F: Float>(x: Val<'_, F>) -> Val<'_, F> {
    match x {
        Val::Arr(a) if a.symmetric => Val::Arr(a),
        Val::Arr(a) => {
            let (rows, cols) = (a.rows, a.cols);
            let mut out = super::pool::take::<F>(rows * cols);
            for i in 0..rows {
                for j in 0..cols {
                    out[j * rows + i] = a.data[i * cols + j];
                }
            }
            Val::Arr(Arr {
                rows: cols,
                cols: rows,
                data: Cow::Owned(out),
                symmetric: false,
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{accumulate, accumulate_rows_cols, Part};
    use crate::float::Float;
    use optdsl_lang::functions::Reduction;

    /// Rows' and columns' partial reductions against the plain definition:
    /// each row's (column's) numbers added in order, in f64, from 0.
    fn check<F: Float>() -> usize {
        let mut fused = 0;
        let reds = [
            Reduction::Sum,
            Reduction::Mean,
            Reduction::Norm,
            Reduction::MaxAbs,
        ];
        for cols in [1usize, 3, 4, 7, 8, 9, 33, 300] {
            for rows in [1usize, 7, 8, 9, 16, 19] {
                let data: Vec<F> = (0..rows * cols)
                    .map(|i| F::from_f64(((i * 7919 % 2003) as f64 / 1001.0 - 1.0) * 1.3))
                    .collect();
                for r in reds {
                    let at = |i: usize, j: usize| data[i * cols + j].to_f64();
                    let mut part = Part::<F>::Rows(Vec::new());
                    accumulate(&mut part, r, &data, cols);
                    let want: Vec<F> = (0..rows)
                        .map(|i| {
                            let t = (0..cols).fold(0.0, |s, j| r.accumulate(s, at(i, j)));
                            F::from_f64(r.finish(t, cols))
                        })
                        .collect();
                    let Part::Rows(got) = part else { panic!() };
                    let bits = |v: &[F]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "rows {r:?} {rows}x{cols}");
                    let mut part = Part::<F>::Cols(vec![0.0; cols]);
                    accumulate(&mut part, r, &data, cols);
                    let want: Vec<u64> = (0..cols)
                        .map(|j| {
                            (0..rows)
                                .fold(0.0, |s, i| r.accumulate(s, at(i, j)))
                                .to_bits()
                        })
                        .collect();
                    let Part::Cols(got) = part else { panic!() };
                    let got: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "cols {r:?} {rows}x{cols}");
                    // Both in one sweep, onto sums already started.
                    let start: Vec<f64> = (0..cols).map(|j| j as f64 * 0.25).collect();
                    let mut by_rows = Part::<F>::Rows(Vec::new());
                    let mut by_cols = Part::<F>::Cols(start.clone());
                    if accumulate_rows_cols(&mut by_rows, &mut by_cols, r, &data, cols) {
                        let (mut rows_alone, mut cols_alone) =
                            (Part::<F>::Rows(Vec::new()), Part::<F>::Cols(start));
                        accumulate(&mut rows_alone, r, &data, cols);
                        accumulate(&mut cols_alone, r, &data, cols);
                        let (Part::Rows(a), Part::Rows(b)) = (by_rows, rows_alone) else {
                            panic!()
                        };
                        assert_eq!(bits(&a), bits(&b), "rows, fused {r:?} {rows}x{cols}");
                        let (Part::Cols(a), Part::Cols(b)) = (by_cols, cols_alone) else {
                            panic!()
                        };
                        let b64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(b64(&a), b64(&b), "cols, fused {r:?} {rows}x{cols}");
                        fused += 1;
                    }
                }
            }
        }
        fused
    }

    #[test]
    fn row_and_column_sums_add_each_ones_numbers_in_order() {
        let fused = check::<f32>();
        check::<f64>();
        if crate::exec::level_for(true) != crate::exec::Simd::Portable {
            assert!(fused > 0, "no sweep of rows and columns together ran");
        }
    }
}
