//! The tensor executor's evaluator: a rule's checked statements run in
//! order over whole arrays. Per-step numbers are computed in f64 and rounded
//! to the element type where they meet elements (as in element-wise rules);
//! arrays broadcast as numpy's do; an operation whose left (or right)
//! operand is a temporary of the result's shape writes into it, so a chain
//! of arithmetic allocates once. Sums run in f64 over eight interleaved
//! partial sums, in a fixed order.

use super::{gemm, Dims};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::hyper::HyperValue;
use crate::info::RuleInfo;
use crate::state::State;
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::functions::{Axis, Func, Reduction};
use optdsl_lang::typed::{Default, Shape, TExpr, TNode, TStmt, Var};
use optdsl_lang::Program;
use std::borrow::Cow;

/// Runs `$body` with `$f` bound to `$op`'s arithmetic as a closure of its
/// own (each operator's loop compiled apart, so it vectorizes; the maths is
/// `BinOp::arith`, the one definition).
macro_rules! per_op {
    ($op:expr, |$f:ident| $body:expr) => {
        match $op {
            BinOp::Add => {
                let $f = |x: F, y: F| BinOp::Add.arith(x, y);
                $body
            }
            BinOp::Sub => {
                let $f = |x: F, y: F| BinOp::Sub.arith(x, y);
                $body
            }
            BinOp::Mul => {
                let $f = |x: F, y: F| BinOp::Mul.arith(x, y);
                $body
            }
            BinOp::Div => {
                let $f = |x: F, y: F| BinOp::Div.arith(x, y);
                $body
            }
            other => {
                let $f = move |x: F, y: F| other.arith(x, y);
                $body
            }
        }
    };
}

/// As [`per_op!`] for a function of one or two numbers (`Func::apply`).
macro_rules! per_func {
    ($func:expr, |$f:ident| $body:expr) => {
        match $func {
            Func::Sqrt => {
                let $f = |x: F, _: F| Func::Sqrt.apply(x, x, x);
                $body
            }
            Func::Abs => {
                let $f = |x: F, _: F| Func::Abs.apply(x, x, x);
                $body
            }
            Func::Min => {
                let $f = |x: F, y: F| Func::Min.apply(x, y, y);
                $body
            }
            Func::Max => {
                let $f = |x: F, y: F| Func::Max.apply(x, y, y);
                $body
            }
            Func::Float => {
                let $f = |x: F, _: F| x;
                $body
            }
            other => {
                let $f = move |x: F, y: F| other.apply(x, y, y);
                $body
            }
        }
    };
}

use optdsl_lang::shaped::MAX_REPEAT;

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

/// The values a fresh state starts from: each buffer's and scalar's initial
/// value (rules with shapes start state from numbers).
pub(crate) fn initial_values<F: Float>(p: &Program, hypers: &[HyperValue]) -> (Vec<f64>, Vec<f64>) {
    use optdsl_lang::eval::{scalar, Leaves, Scalar};
    let hv: Vec<Scalar> = hyper_values(p, hypers)
        .into_iter()
        .map(Scalar::from)
        .collect();
    let leaves = Leaves {
        hypers: &hv,
        t: 0.0,
        scalars: &[],
    };
    let mut known = vec![None; p.values.len()];
    for id in 0..p.values.len() {
        known[id] = scalar::<F>(p, id, &known, &leaves);
    }
    let value = |id: usize| known.get(id).copied().flatten().map_or(0.0, Scalar::num);
    (
        p.buffers.iter().map(|b| value(b.init)).collect(),
        p.scalars.iter().map(|b| value(b.init)).collect(),
    )
}

fn hyper_values(p: &Program, hypers: &[HyperValue]) -> Vec<Default> {
    p.hypers
        .iter()
        .enumerate()
        .map(|(i, h)| match hypers.get(i) {
            Some(HyperValue::Num(x)) => Default::Num(*x),
            Some(HyperValue::Bool(b)) => Default::Bool(*b),
            None => h.default,
        })
        .collect()
}

/// One step (the state's `t` is advanced here).
pub(crate) fn run<F: Float>(
    info: &RuleInfo,
    hypers: &[HyperValue],
    dims: Dims,
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
) -> Result<()> {
    let p = info.program();
    let Some(body) = &p.tensor else {
        return Err(Error::Rule(format!(
            "{} is an element-wise rule; it has no tensor body",
            info.name
        )));
    };
    state.t += 1;
    let draws = state.draws.unwrap_or_default();
    let mut ex = Exec {
        rule: info.name,
        draws,
        hypers: hyper_values(p, hypers),
        dims,
        t: state.t as f64,
        w,
        g,
        inputs,
        buffers: std::mem::take(&mut state.buffers),
        shapes: &body.shapes,
        scalars: &mut state.scalars,
        lets: vec![None; body.lets],
    };
    let out = ex.stmts(&body.body);
    state.buffers = std::mem::take(&mut ex.buffers);
    out
}

struct Exec<'s, F: Float> {
    rule: &'static str,
    /// What random draws are keyed by (seed, tensor, first element).
    draws: crate::state::DrawSeed,
    hypers: Vec<Default>,
    dims: Dims,
    t: f64,
    w: &'s mut [F],
    g: &'s [F],
    inputs: &'s [&'s [F]],
    buffers: Vec<Vec<F>>,
    shapes: &'s [Shape],
    scalars: &'s mut Vec<f64>,
    lets: Vec<Option<Val<'static, F>>>,
}

/// The element type's machine epsilon, `2^(1 - digits)`.
fn epsilon<F: Float>() -> f64 {
    (2.0f64).powi(1 - F::DIGITS as i32)
}

impl<'s, F: Float> Exec<'s, F> {
    fn stmts(&mut self, stmts: &[TStmt]) -> Result<()> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &TStmt) -> Result<()> {
        match s {
            TStmt::Let { var, value } => {
                let v = owned(self.eval(value)?);
                self.lets[*var] = Some(v);
            }
            TStmt::Assign { target, op, value } => {
                let v = owned(self.eval(value)?);
                let v = match op.bin_op() {
                    None => v,
                    // `w -= ...`: in place, as numpy's `-=` on an array.
                    Some(bin) if matches!(target, Var::Param | Var::Buffer(_)) => {
                        self.update(*target, bin, &v);
                        return Ok(());
                    }
                    Some(bin) => binary(bin, owned(self.var(*target)), v),
                };
                self.assign(*target, v)?;
            }
            TStmt::If {
                cond,
                then,
                otherwise,
            } => match self.eval(cond)? {
                Val::Bool(true) => self.stmts(then)?,
                Val::Bool(false) => self.stmts(otherwise)?,
                _ => return Err(self.bug("an `if` statement's condition is not one boolean")),
            },
            TStmt::Repeat { count, body } => {
                let n = match self.eval(count)? {
                    Val::Num(n) => n,
                    _ => return Err(self.bug("a `repeat` count is not a number")),
                };
                if n.is_nan() || n > MAX_REPEAT {
                    return Err(Error::Invalid {
                        what: format!("`repeat` count of {}", self.rule),
                        reason: format!("{n} iterations; a step repeats at most {MAX_REPEAT} times (check the hyperparameter that sets it)"),
                    });
                }
                for _ in 0..n.max(0.0) as u64 {
                    self.stmts(body)?;
                }
            }
        }
        Ok(())
    }

    /// `target op= v` in place on `w` or a buffer (`v` broadcast to it).
    fn update(&mut self, target: Var, bin: BinOp, v: &Val<'_, F>) {
        let d = self.dims;
        let (data, dims): (&mut [F], (usize, usize)) = match target {
            Var::Param => (&mut *self.w, (d.rows, d.cols)),
            Var::Buffer(i) => {
                let dims = self.buffer_dims(i);
                (&mut self.buffers[i][..], dims)
            }
            _ => return,
        };
        per_op!(bin, |f| update_in_place(data, dims, &nums(v), f));
    }

    /// Buffer `i`'s rows and columns.
    fn buffer_dims(&self, i: usize) -> (usize, usize) {
        let d = self.dims;
        self.shapes
            .get(i)
            .map_or((d.rows, d.cols), |s| s.dims(d.rows, d.cols))
    }

    fn bug(&self, what: &str) -> Error {
        Error::Rule(format!(
            "{}: {what} (the checker should have refused it)",
            self.rule
        ))
    }

    /// Stores `v` into `target`, broadcast to its shape.
    fn assign(&mut self, target: Var, v: Val<'static, F>) -> Result<()> {
        let d = self.dims;
        match target {
            Var::Param => {
                let a = broadcast_to(v, d.rows, d.cols)
                    .ok_or_else(|| self.bug("`w` assigned a value of another shape"))?;
                self.w.copy_from_slice(&a);
            }
            Var::Buffer(i) => {
                let (r, c) = self.buffer_dims(i);
                let a = broadcast_to(v, r, c)
                    .ok_or_else(|| self.bug("a buffer assigned a value of another shape"))?;
                self.buffers[i] = a.into_owned();
            }
            Var::Scalar(i) => match v {
                Val::Num(x) => self.scalars[i] = x,
                _ => return Err(self.bug("a scalar state assigned an array")),
            },
            Var::Let(i) => self.lets[i] = Some(v),
            _ => return Err(self.bug("assignment to a read-only name")),
        }
        Ok(())
    }

    fn var(&self, v: Var) -> Val<'_, F> {
        let d = self.dims;
        fn arr<F: Float>(data: &[F], rows: usize, cols: usize) -> Val<'_, F> {
            Val::Arr(Arr {
                rows,
                cols,
                data: Cow::Borrowed(data),
                symmetric: false,
            })
        }
        match v {
            Var::Param => arr(self.w, d.rows, d.cols),
            Var::Grad => arr(self.g, d.rows, d.cols),
            Var::Input(i) => arr(self.inputs.get(i).copied().unwrap_or(&[]), d.rows, d.cols),
            Var::Buffer(i) => {
                let (r, c) = self.buffer_dims(i);
                arr(&self.buffers[i], r, c)
            }
            Var::Step => Val::Num(self.t),
            Var::Hyper(i) => match self.hypers[i] {
                Default::Num(x) => Val::Num(x),
                Default::Bool(b) => Val::Bool(b),
            },
            Var::Scalar(i) => Val::Num(self.scalars[i]),
            Var::Let(i) => match &self.lets[i] {
                Some(v) => borrow(v),
                None => Val::Num(f64::NAN),
            },
            Var::Rows => Val::Num(d.rows as f64),
            Var::Cols => Val::Num(d.cols as f64),
            Var::Numel => Val::Num(d.numel as f64),
            Var::Matrix => Val::Bool(d.matrix),
            Var::Epsilon => Val::Num(epsilon::<F>()),
        }
    }

    fn eval(&self, e: &TExpr) -> Result<Val<'_, F>> {
        Ok(match &e.node {
            TNode::Num(x) => Val::Num(*x),
            TNode::Bool(b) => Val::Bool(*b),
            TNode::Var(v) => self.var(*v),
            TNode::Unary(op, x) => unary(*op, self.eval(x)?),
            TNode::Binary(op, a, b) => {
                // `x^2` multiplies, as element-wise rules lower it.
                let square = *op == BinOp::Pow && matches!(b.node, TNode::Num(n) if n == 2.0);
                if square {
                    let x = self.eval(a)?;
                    let y = borrow(&x);
                    let y = owned(y);
                    binary(BinOp::Mul, x, y)
                } else {
                    binary(*op, self.eval(a)?, self.eval(b)?)
                }
            }
            TNode::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>>>()?;
                func(*f, vals)
            }
            TNode::Select(c, a, b) => select(self.eval(c)?, self.eval(a)?, self.eval(b)?),
            TNode::Reduce(r, x) => Val::Num(reduce(*r, &self.eval(x)?)),
            TNode::Axis(axis, r, x) => axis_reduce(*axis, *r, &self.eval(x)?),
            TNode::Transpose(x) => transpose(self.eval(x)?),
            TNode::Draw(d, stream) => {
                // Element i draws from the counter (offset + i, t) of its
                // stream, as element-wise rules draw.
                let key =
                    optdsl_lang::random::stream_key(self.draws.seed, self.draws.tensor, *stream);
                let (step, first) = (self.t as u64, self.draws.offset);
                let d = *d;
                let data: Vec<F> = (0..self.dims.numel as u64)
                    .map(|i| d.sample::<F>(key, step, first.wrapping_add(i)))
                    .collect();
                Val::Arr(Arr {
                    rows: self.dims.rows,
                    cols: self.dims.cols,
                    data: Cow::Owned(data),
                    symmetric: false,
                })
            }
            TNode::Eye(x) => {
                let (n, _) = x.shape.dims(self.dims.rows, self.dims.cols);
                let mut data = vec![F::ZERO; n * n];
                data.iter_mut().step_by(n + 1).for_each(|v| *v = F::ONE);
                Val::Arr(Arr {
                    rows: n,
                    cols: n,
                    data: Cow::Owned(data),
                    symmetric: true,
                })
            }
            TNode::MatMul(a, b) => self.matmul(a, b)?,
        })
    }

    /// `a @ b`, with transposes folded into the product and Gram products
    /// (`x @ x^T`, `x^T @ x`, `s @ s` for symmetric `s`) by halves.
    fn matmul(&self, a: &TExpr, b: &TExpr) -> Result<Val<'_, F>> {
        let (ta, ea) = peel_transpose(a);
        let (tb, eb) = peel_transpose(b);
        let same = matches!((&ea.node, &eb.node), (TNode::Var(x), TNode::Var(y)) if x == y);
        let va = self.eval(ea)?;
        let vb = if same { borrow(&va) } else { self.eval(eb)? };
        let (Val::Arr(x), Val::Arr(y)) = (&va, &vb) else {
            // Two numbers (`[1, 1] @ [1, 1]`).
            return Ok(owned(binary(BinOp::Mul, owned(va.clone()), owned(vb))));
        };
        let sym = x.symmetric && same;
        let out = if same && ta != tb || sym {
            // x @ x^T (rows x rows) or x^T @ x (cols x cols).
            let data = gemm::gram(&x.data, x.rows, x.cols, ta && !sym);
            let n = if ta && !sym { x.cols } else { x.rows };
            Arr {
                rows: n,
                cols: n,
                data: Cow::Owned(data),
                symmetric: true,
            }
        } else {
            let (m, k) = if ta {
                (x.cols, x.rows)
            } else {
                (x.rows, x.cols)
            };
            let (k2, n) = if tb {
                (y.cols, y.rows)
            } else {
                (y.rows, y.cols)
            };
            if k != k2 {
                return Err(self.bug("a product of shapes that do not match"));
            }
            let data = gemm::matmul(&x.data, (x.rows, x.cols), ta, &y.data, (y.rows, y.cols), tb);
            Arr {
                rows: m,
                cols: n,
                data: Cow::Owned(data),
                symmetric: false,
            }
        };
        Ok(Val::Arr(out))
    }
}

fn peel_transpose(e: &TExpr) -> (bool, &TExpr) {
    match &e.node {
        TNode::Transpose(x) => (true, x),
        _ => (false, e),
    }
}

fn borrow<'b, F: Float>(v: &'b Val<'_, F>) -> Val<'b, F> {
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

fn owned<F: Float>(v: Val<'_, F>) -> Val<'static, F> {
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
fn broadcast_to<F: Float>(v: Val<'_, F>, rows: usize, cols: usize) -> Option<Cow<'_, [F]>> {
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

fn unary<F: Float>(op: UnOp, x: Val<'_, F>) -> Val<'_, F> {
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
struct Walk {
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
enum Nums<'v, F> {
    One(F),
    Many(&'v [F], Walk),
}

fn dims_of<F: Clone>(v: &Val<'_, F>) -> (usize, usize) {
    match v {
        Val::Arr(a) => (a.rows, a.cols),
        Val::Mask(r, c, _) => (*r, *c),
        _ => (1, 1),
    }
}

fn out_dims(shapes: &[(usize, usize)]) -> (usize, usize) {
    shapes.iter().fold((1, 1), |(r, c), &(a, b)| {
        // numpy's rule: a dimension of 1 takes the other's, 0 included.
        (if a == 1 { r } else { a }, if b == 1 { c } else { b })
    })
}

/// One row of an operand broadcast to the result's columns: one number, or
/// a slice of the row's numbers.
enum Row<'v, F> {
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
fn zip_into<F: Float, T: Copy>(
    out: &mut [T],
    (rows, cols): (usize, usize),
    a: &Nums<'_, F>,
    b: &Nums<'_, F>,
    f: impl Fn(F, F) -> T,
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
fn update_in_place<F: Float>(
    out: &mut [F],
    (rows, cols): (usize, usize),
    other: &Nums<'_, F>,
    f: impl Fn(F, F) -> F,
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

fn nums<'v, F: Float>(v: &'v Val<'_, F>) -> Nums<'v, F> {
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

fn binary<'a, F: Float>(op: BinOp, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
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
                let mut out = vec![F::ZERO; rows * cols];
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

fn sym<F: Clone>(v: &Val<'_, F>) -> bool {
    match v {
        Val::Num(_) => true,
        Val::Arr(a) => a.symmetric,
        _ => false,
    }
}

fn mask_logic<'a, F: Float>(op: BinOp, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
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

fn func<'a, F: Float>(f: Func, vals: Vec<Val<'a, F>>) -> Val<'a, F> {
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
                let mut out = vec![F::ZERO; rows * cols];
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

fn select<'a, F: Float>(c: Val<'a, F>, a: Val<'a, F>, b: Val<'a, F>) -> Val<'a, F> {
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
fn reduce<F: Float>(r: Reduction, x: &Val<'_, F>) -> f64 {
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
fn axis_reduce<'a, F: Float>(axis: Axis, r: Reduction, x: &Val<'_, F>) -> Val<'a, F> {
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

fn transpose<F: Float>(x: Val<'_, F>) -> Val<'_, F> {
    match x {
        Val::Arr(a) if a.symmetric => Val::Arr(a),
        Val::Arr(a) => {
            let (rows, cols) = (a.rows, a.cols);
            let mut out = vec![F::ZERO; rows * cols];
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
