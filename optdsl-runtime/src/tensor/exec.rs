//! The tensor executor's evaluator: a rule's checked statements run in
//! order. Per-step numbers are computed in f64 and rounded to the element
//! type where they meet elements (as in element-wise rules); arrays
//! broadcast as numpy's do.
//!
//! Element-wise work is fused: an element-wise `let` is kept as its
//! expression and evaluated where it is used; an assignment to `w` or a
//! buffer, and a reduction of an element-wise expression, evaluate their
//! whole expression in one pass over the data, block by block (a block of
//! rows stays in cache, temporaries are block-sized, values per row or per
//! column broadcast within the block); `w *= s` by a per-step number waits
//! for the next pass over `w`; reductions of later statements whose operands
//! are already final are computed in the same pass as the current one; a
//! `let` that is costly per element (a division, a square root, ...) and
//! read again after a reduction of it is stored by that reduction's pass
//! and read back, not computed a second time.
//! Rows are shared among rayon's threads in chunks fixed by the lengths
//! alone, and partial reductions are combined in chunk order, so the bits do
//! not depend on the thread count. Sums run in f64: per block over eight
//! interleaved partial sums, then block by block and chunk by chunk in order.

use super::ops::{
    accumulate, accumulate_rows_cols, add_lanes, axis_reduce, binary, borrow, broadcast_to, func,
    nums, owned, reduce, select, sym, transpose, unary, update_in_place, Arr, Part, Val,
};
use super::{gemm, Dims};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::hyper::HyperValue;
use crate::info::RuleInfo;
use crate::state::State;
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::functions::{Axis, Func, Reduction};
use optdsl_lang::shaped::MAX_REPEAT;
use optdsl_lang::typed::{Default, Kind, Shape, TExpr, TNode, TStmt, Ty, Var};
use optdsl_lang::Program;
use std::borrow::Cow;
use std::collections::HashMap;

#[cfg(feature = "jit")]
mod compiled;

/// Without the JIT (feature `jit` off), fused passes run on the tree walk.
#[cfg(not(feature = "jit"))]
mod compiled {
    use super::{Exec, Pre};
    use crate::float::Float;
    use optdsl_lang::ast::BinOp;
    use optdsl_lang::typed::{TExpr, Var};

    /// No pass is compiled.
    pub(super) fn worth(_numbers: usize) -> bool {
        false
    }

    impl<F: Float> Exec<'_, F> {
        /// Nothing is compiled: `Ok(false)`.
        #[allow(clippy::too_many_arguments)]
        pub(super) fn block_compiled(
            &self,
            _: &TExpr,
            _: &Pre<F>,
            _: std::ops::Range<usize>,
            _: usize,
            _: Option<(Var, &[(BinOp, F)])>,
            _: Option<BinOp>,
            _: &mut [F],
            _: Option<(optdsl_lang::Reduction, &mut [f64; 8])>,
        ) -> crate::error::Result<bool> {
            Ok(false)
        }
    }
}

std::thread_local! {
    /// Test builds: the fused passes run on the tree walk only, so tests can
    /// compare it with the compiled blocks in one process.
    #[cfg(test)]
    static WALK_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether fused passes may run as compiled code in this step: with the JIT
/// on ([`crate::jit::enabled`]), and in test builds unless the calling
/// thread asked for the tree walk.
fn compiled_blocks() -> bool {
    #[cfg(test)]
    if WALK_ONLY.with(|w| w.get()) {
        return false;
    }
    #[cfg(feature = "jit")]
    return crate::jit::enabled();
    #[cfg(not(feature = "jit"))]
    false
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
    let buffers = std::mem::take(&mut state.buffers);
    let pending = vec![Vec::new(); buffers.len() + 1];
    let mut ex = Exec {
        rule: info.name,
        draws,
        hypers: hyper_values(p, hypers),
        dims,
        t: state.t as f64,
        w,
        g,
        inputs,
        buffers,
        shapes: &body.shapes,
        scalars: &mut state.scalars,
        lets: (0..body.lets).map(|_| Slot::Unset).collect(),
        pending,
        batched: HashMap::new(),
        shared: shared_lets(&body.body, body.lets),
        compiled: compiled_blocks(),
    };
    let out = ex.stmts(&body.body).and_then(|()| ex.flush());
    for slot in std::mem::take(&mut ex.lets) {
        recycle_slot(slot);
    }
    state.buffers = std::mem::take(&mut ex.buffers);
    out
}

/// A `let`'s value during a step.
enum Slot<'s, F: Float> {
    /// Not bound yet.
    Unset,
    /// Computed.
    Val(Val<'static, F>),
    /// An element-wise expression not computed as a whole: evaluated block
    /// by block where it is used, with the whole values it reads (per-step
    /// numbers, reductions, products) computed when it was bound.
    Lazy(&'s TExpr, Pre<F>),
}

/// The whole values an element-wise expression reads, computed before its
/// pass, by the address of their node.
type Pre<F> = HashMap<usize, Val<'static, F>>;

fn key(e: &TExpr) -> usize {
    e as *const TExpr as usize
}

/// Numbers a fused pass evaluates at once: a block of rows this long stays
/// in the second level of cache with its temporaries, and is long enough
/// that walking the expression per block costs little (Adafactor's step on
/// 1024 x 4096 f32, one thread, CPU time per step: 19 ms with blocks of
/// 2^12 numbers, 17.7 with 2^14, 15.0 with 2^15, 14.4 with 2^16, 14.9 with
/// 2^17, 16.6 with 2^18; `perf stat -e task-clock` over `optdsl bench
/// --reps 5` and `--reps 35`).
const BLOCK_NUMBERS: usize = 1 << 16;

/// Chunks a fused pass splits its rows into (rayon's unit of work, and the
/// unit of partial reductions).
const CHUNKS: usize = 16;

/// Numbers from which a fused pass shares its chunks among threads.
const PARALLEL_MIN: usize = 1 << 15;

/// How a fused pass walks an array of `rows` x `cols`: chunks of `chunk`
/// rows, each in blocks of `block` rows. Both follow from the lengths
/// alone, so what is summed with what does not depend on the thread count.
#[derive(Debug, Clone, Copy)]
struct Split {
    rows: usize,
    cols: usize,
    chunk: usize,
    block: usize,
    parallel: bool,
}

impl Split {
    fn new(rows: usize, cols: usize) -> Split {
        let block = (BLOCK_NUMBERS / cols.max(1)).max(1);
        let chunk = rows.div_ceil(CHUNKS).div_ceil(block).max(1) * block;
        let parallel =
            rows * cols >= PARALLEL_MIN && rows > chunk && rayon::current_num_threads() > 1;
        Split {
            rows,
            cols,
            chunk,
            block,
            parallel,
        }
    }

    /// `f` of every chunk's index, in order.
    fn map<R: Send>(&self, f: impl Fn(usize) -> Result<R> + Sync + Send) -> Result<Vec<R>> {
        use rayon::prelude::*;
        let count = self.rows.div_ceil(self.chunk);
        if self.parallel {
            (0..count).into_par_iter().map(f).collect()
        } else {
            (0..count).map(f).collect()
        }
    }

    /// `f(index, numbers)` of every chunk of `out` (`rows x cols`), in order.
    fn map_mut<F: Float, R: Send>(
        &self,
        out: &mut [F],
        f: impl Fn(usize, &mut [F]) -> Result<R> + Sync + Send,
    ) -> Result<Vec<R>> {
        use rayon::prelude::*;
        let size = (self.chunk * self.cols).max(1);
        if self.parallel {
            out.par_chunks_mut(size)
                .enumerate()
                .map(|(k, c)| f(k, c))
                .collect()
        } else {
            out.chunks_mut(size)
                .enumerate()
                .map(|(k, c)| f(k, c))
                .collect()
        }
    }

    /// `f(index, numbers)` of every chunk of `out` (`rows x cols`).
    fn each<F: Float>(
        &self,
        out: &mut [F],
        f: impl Fn(usize, &mut [F]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        self.map_mut(out, f).map(|_| ())
    }

    /// The blocks of chunk `k`: their first row and row count.
    fn blocks(&self, k: usize) -> impl Iterator<Item = (usize, usize)> {
        let (start, end) = (k * self.chunk, ((k + 1) * self.chunk).min(self.rows));
        let block = self.block;
        (start..end)
            .step_by(block)
            .map(move |r| (r, block.min(end - r)))
    }
}

/// `x op= y` for each pending `(op, y)`, in order.
fn apply_ops<F: Float>(data: &mut [F], ops: &[(BinOp, F)]) {
    for &(op, y) in ops {
        per_op!(op, |f| data.iter_mut().for_each(|o| *o = f(*o, y)));
    }
}

/// Rows `rows` of `v` (all of it where it has one row).
fn rows_of<'b, F: Float>(v: &'b Val<'_, F>, rows: &std::ops::Range<usize>) -> Val<'b, F> {
    match v {
        Val::Arr(a) if a.rows != 1 => Val::Arr(Arr {
            rows: rows.len(),
            cols: a.cols,
            data: Cow::Borrowed(&a.data[rows.start * a.cols..rows.end * a.cols]),
            symmetric: false,
        }),
        Val::Mask(r, c, m) if *r != 1 => {
            Val::Mask(rows.len(), *c, m[rows.start * c..rows.end * c].to_vec())
        }
        other => borrow(other),
    }
}

/// Gives an array's numbers back to the workspace.
fn recycle<F: Float>(v: Val<'_, F>) {
    if let Val::Arr(Arr {
        data: Cow::Owned(d),
        ..
    }) = v
    {
        super::pool::give(d);
    }
}

fn recycle_slot<F: Float>(s: Slot<'_, F>) {
    match s {
        Slot::Val(v) => recycle(v),
        Slot::Lazy(_, pre) => recycle_pre(pre),
        Slot::Unset => {}
    }
}

fn recycle_pre<F: Float>(pre: Pre<F>) {
    pre.into_values().for_each(recycle);
}

/// Whether `e` is computed as a whole before a fused pass that reads it
/// (rather than block by block inside it).
fn whole(e: &TExpr) -> bool {
    e.kind != Kind::Element
        || matches!(
            e.node,
            TNode::Reduce(..)
                | TNode::Axis(..)
                | TNode::MatMul(..)
                | TNode::Transpose(_)
                | TNode::Eye(_)
                | TNode::Draw(..)
        )
}

/// Whether `e` is element-wise arithmetic at its root (a name, an operator,
/// a function, a selection) giving numbers.
fn fusable(e: &TExpr) -> bool {
    e.kind == Kind::Element
        && e.ty == Ty::Num
        && matches!(
            e.node,
            TNode::Var(_)
                | TNode::Unary(..)
                | TNode::Binary(..)
                | TNode::Call(..)
                | TNode::Select(..)
        )
}

/// How many rows a block of rows `rows` reads of a variable of `r` rows:
/// one for a `[1, cols]` variable, which every row shares.
fn rows_read(r: usize, rows: &std::ops::Range<usize>) -> usize {
    if r == 1 {
        1
    } else {
        rows.len()
    }
}

/// By `let` index: whether `stmts` read it in more than one place (a name
/// read in a `repeat` counts as read twice).
fn shared_lets(stmts: &[TStmt], lets: usize) -> Vec<bool> {
    fn expr(e: &TExpr, weight: u32, counts: &mut [u32]) {
        match &e.node {
            TNode::Var(Var::Let(i)) => {
                if let Some(c) = counts.get_mut(*i) {
                    *c += weight;
                }
            }
            _ => e.children().for_each(|a| expr(a, weight, counts)),
        }
    }
    fn walk(stmts: &[TStmt], weight: u32, counts: &mut [u32]) {
        for s in stmts {
            match s {
                TStmt::Let { value, .. } | TStmt::Assign { value, .. } => {
                    expr(value, weight, counts)
                }
                TStmt::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    expr(cond, weight, counts);
                    walk(then, weight, counts);
                    walk(otherwise, weight, counts);
                }
                TStmt::Repeat { count, body } => {
                    expr(count, weight, counts);
                    walk(body, 2, counts);
                }
            }
        }
    }
    let mut counts = vec![0; lets];
    walk(stmts, 1, &mut counts);
    counts.into_iter().map(|c| c > 1).collect()
}

/// A reduction a fused pass computes: of `x`, along `axis` or over all.
struct Red<'e, F: Float> {
    axis: Option<Axis>,
    r: Reduction,
    x: &'e TExpr,
    pre: Pre<F>,
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
    lets: Vec<Slot<'s, F>>,
    /// `w` (0) and each buffer (`i + 1`): `op= number` updates not yet
    /// applied; the next pass over it applies them first.
    pending: Vec<Vec<(BinOp, F)>>,
    /// Reductions computed ahead in a shared pass: by node, the value and
    /// the statement that uses it (dropped when that statement is done).
    batched: HashMap<usize, (Val<'static, F>, usize)>,
    /// By `let`: whether the body reads it in more than one place.
    shared: Vec<bool>,
    /// Whether fused passes may run as compiled code ([`compiled`]).
    #[cfg_attr(not(feature = "jit"), allow(dead_code))]
    compiled: bool,
}

/// The element type's machine epsilon, `2^(1 - digits)`.
fn epsilon<F: Float>() -> f64 {
    (2.0f64).powi(1 - F::DIGITS as i32)
}

impl<'s, F: Float> Exec<'s, F> {
    fn stmts(&mut self, stmts: &'s [TStmt]) -> Result<()> {
        for (k, s) in stmts.iter().enumerate() {
            self.keep_reduced(s)?;
            self.batch(&stmts[k..])?;
            self.stmt(s)?;
            let done = s as *const TStmt as usize;
            self.batched.retain(|_, (_, owner)| *owner != done);
        }
        Ok(())
    }

    fn stmt(&mut self, s: &'s TStmt) -> Result<()> {
        match s {
            TStmt::Let { var, value } => self.bind(*var, value)?,
            TStmt::Assign { target, op, value } => {
                self.before_assign(*target)?;
                match (*target, op.bin_op()) {
                    (Var::Let(i), None) => self.bind(i, value)?,
                    (Var::Param | Var::Buffer(_), bin) => self.store(*target, bin, value)?,
                    (_, bin) => {
                        let v = owned(self.eval(value)?);
                        let v = match bin {
                            None => v,
                            Some(bin) => binary(bin, owned(self.var(*target)?), v),
                        };
                        self.assign(*target, v)?;
                    }
                }
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

    /// `let i = value` (or `i = value`): kept unevaluated where it is
    /// element-wise arithmetic that does not read `i` itself, else computed.
    fn bind(&mut self, i: usize, value: &'s TExpr) -> Result<()> {
        self.before_assign(Var::Let(i))?;
        let slot = if fusable(value) && !self.reads(value, &Pre::new(), Var::Let(i)) {
            let mut pre = Pre::new();
            self.prepare(value, &mut pre)?;
            Slot::Lazy(value, pre)
        } else {
            Slot::Val(owned(self.eval(value)?))
        };
        recycle_slot(std::mem::replace(&mut self.lets[i], slot));
        Ok(())
    }

    /// Before `target` changes: every unevaluated `let` that reads it is
    /// computed from its current value.
    fn before_assign(&mut self, target: Var) -> Result<()> {
        if !matches!(target, Var::Param | Var::Buffer(_) | Var::Let(_)) {
            return Ok(());
        }
        for i in 0..self.lets.len() {
            let v = match &self.lets[i] {
                Slot::Lazy(e, pre) if self.reads(e, pre, target) => {
                    owned(self.materialize_with(e, pre)?)
                }
                _ => continue,
            };
            recycle_slot(std::mem::replace(&mut self.lets[i], Slot::Val(v)));
        }
        Ok(())
    }

    /// Whether `e` (with its whole values `pre` already computed) reads
    /// `target`, through unevaluated `let`s too.
    fn reads(&self, e: &TExpr, pre: &Pre<F>, target: Var) -> bool {
        if pre.contains_key(&key(e)) {
            return false;
        }
        match &e.node {
            TNode::Var(v) if *v == target => true,
            TNode::Var(Var::Let(j)) => match &self.lets[*j] {
                Slot::Lazy(x, p) => self.reads(x, p, target),
                _ => false,
            },
            // `eye(x)` reads only `x`'s shape.
            TNode::Eye(_) => false,
            _ => e.children().any(|a| self.reads(a, pre, target)),
        }
    }

    /// Computes the whole values `e` reads (what [`whole`] names) into `pre`.
    fn prepare(&self, e: &TExpr, pre: &mut Pre<F>) -> Result<()> {
        match &e.node {
            TNode::Num(_) | TNode::Bool(_) => {}
            _ if whole(e) => {
                let v = owned(self.eval(e)?);
                pre.insert(key(e), v);
            }
            TNode::Var(_) => {}
            TNode::Unary(_, x) => self.prepare(x, pre)?,
            TNode::Binary(_, a, b) => {
                self.prepare(a, pre)?;
                self.prepare(b, pre)?;
            }
            TNode::Call(_, args) => {
                for a in args {
                    self.prepare(a, pre)?;
                }
            }
            TNode::Select(c, a, b) => {
                for x in [c, a, b] {
                    self.prepare(x, pre)?;
                }
            }
            _ => return Err(self.bug("an element-wise expression of an unknown form")),
        }
        Ok(())
    }

    /// Rows `rows` of element-wise `e`, its whole values in `pre`; `over`
    /// gives the numbers of the variable being written (this block's).
    fn block<'b>(
        &'b self,
        e: &'b TExpr,
        pre: &'b Pre<F>,
        rows: std::ops::Range<usize>,
        over: Option<(Var, &'b [F])>,
    ) -> Result<Val<'b, F>> {
        if let Some(v) = pre.get(&key(e)) {
            return Ok(rows_of(v, &rows));
        }
        Ok(match &e.node {
            TNode::Num(x) => Val::Num(*x),
            TNode::Bool(b) => Val::Bool(*b),
            TNode::Var(v) => self.block_var(*v, rows, over)?,
            TNode::Unary(op, x) => unary(*op, self.block(x, pre, rows, over)?),
            TNode::Binary(op, a, b) => {
                // `x^2` multiplies, as element-wise rules lower it.
                let square = *op == BinOp::Pow && matches!(b.node, TNode::Num(n) if n == 2.0);
                let x = self.block(a, pre, rows.clone(), over)?;
                if square {
                    let y = owned(borrow(&x));
                    binary(BinOp::Mul, x, y)
                } else {
                    binary(*op, x, self.block(b, pre, rows, over)?)
                }
            }
            TNode::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| self.block(a, pre, rows.clone(), over))
                    .collect::<Result<Vec<_>>>()?;
                func(*f, vals)
            }
            TNode::Select(c, a, b) => match self.block(c, pre, rows.clone(), over)? {
                // One number decides: only the branch taken is computed.
                Val::Bool(true) => self.block(a, pre, rows, over)?,
                Val::Bool(false) => self.block(b, pre, rows, over)?,
                c => select(
                    c,
                    self.block(a, pre, rows.clone(), over)?,
                    self.block(b, pre, rows, over)?,
                ),
            },
            _ => return Err(self.bug("a whole value was not computed before its pass")),
        })
    }

    /// What a pass over `numbers` numbers evaluating `exprs` reads and
    /// writes (`written`), for [`super::traffic`]: the arrays of that size
    /// its leaves name (both branches of a selection counted).
    fn pass_arrays(
        &self,
        exprs: &[(&TExpr, &Pre<F>)],
        numbers: usize,
        written: Option<&[F]>,
    ) -> super::traffic::Seen {
        let mut reads = Vec::new();
        for (e, pre) in exprs {
            self.arrays(e, pre, numbers, &mut reads);
        }
        super::traffic::Seen {
            numbers,
            reads,
            writes: written
                .map(|w| vec![(w.as_ptr() as usize, w.len())])
                .unwrap_or_default(),
        }
    }

    fn arrays(&self, e: &TExpr, pre: &Pre<F>, numbers: usize, out: &mut Vec<(usize, usize)>) {
        let mut push = |d: &[F]| {
            if d.len() == numbers {
                out.push((d.as_ptr() as usize, d.len()));
            }
        };
        if let Some(v) = pre.get(&key(e)) {
            if let Val::Arr(a) = v {
                push(&a.data);
            }
            return;
        }
        match &e.node {
            TNode::Var(v) => match v {
                Var::Param => push(self.w),
                Var::Grad => push(self.g),
                Var::Input(i) => push(self.inputs.get(*i).copied().unwrap_or(&[])),
                Var::Buffer(i) => push(&self.buffers[*i]),
                Var::Let(i) => match &self.lets[*i] {
                    Slot::Val(Val::Arr(a)) => push(&a.data),
                    Slot::Lazy(x, p) => self.arrays(x, p, numbers, out),
                    _ => {}
                },
                _ => {}
            },
            TNode::Unary(_, a) => self.arrays(a, pre, numbers, out),
            TNode::Binary(_, a, b) => {
                self.arrays(a, pre, numbers, out);
                self.arrays(b, pre, numbers, out);
            }
            TNode::Call(_, args) => {
                for a in args {
                    self.arrays(a, pre, numbers, out);
                }
            }
            TNode::Select(c, a, b) => {
                for x in [c, a, b] {
                    self.arrays(x, pre, numbers, out);
                }
            }
            _ => {}
        }
    }

    /// An array variable's numbers, shape and pending `op= number`
    /// updates; `None` for a `let` or a per-step value.
    #[allow(clippy::type_complexity)]
    fn array_var(&self, v: Var) -> Option<(&[F], (usize, usize), &[(BinOp, F)])> {
        let d = self.dims;
        Some(match v {
            Var::Param => (&*self.w, (d.rows, d.cols), &self.pending[0]),
            Var::Grad => (self.g, (d.rows, d.cols), &[]),
            Var::Input(i) => (
                self.inputs.get(i).copied().unwrap_or(&[]),
                (d.rows, d.cols),
                &[],
            ),
            Var::Buffer(i) => (&self.buffers[i], self.buffer_dims(i), &self.pending[i + 1]),
            _ => return None,
        })
    }

    /// Rows `rows` of an array variable's numbers `data` (`r x c`; all of
    /// a `[1, c]` one, which every row shares), and how many rows that is.
    fn rows_in<'d>(
        &self,
        data: &'d [F],
        (r, c): (usize, usize),
        rows: &std::ops::Range<usize>,
    ) -> Result<(&'d [F], usize)> {
        let span = if r == 1 {
            0..c
        } else {
            rows.start * c..rows.end * c
        };
        match data.get(span) {
            Some(data) => Ok((data, rows_read(r, rows))),
            None => Err(self.bug("a variable shorter than its shape")),
        }
    }

    /// Rows `rows` of variable `v` (with its pending updates applied).
    fn block_var<'b>(
        &'b self,
        v: Var,
        rows: std::ops::Range<usize>,
        over: Option<(Var, &'b [F])>,
    ) -> Result<Val<'b, F>> {
        let Some((data, (r, c), ops)) = self.array_var(v) else {
            return match v {
                Var::Let(i) => match &self.lets[i] {
                    Slot::Val(x) => Ok(rows_of(x, &rows)),
                    Slot::Lazy(x, pre) => self.block(x, pre, rows, over),
                    Slot::Unset => Ok(Val::Num(f64::NAN)),
                },
                other => Ok(owned(self.var(other)?)),
            };
        };
        let (data, rows) = match over {
            Some((t, block)) if t == v => (block, rows_read(r, &rows)),
            _ => self.rows_in(data, (r, c), &rows)?,
        };
        let mut data = Cow::Borrowed(data);
        if !ops.is_empty() && !matches!(over, Some((t, _)) if t == v) {
            apply_ops(data.to_mut(), ops);
        }
        Ok(Val::Arr(Arr {
            rows,
            cols: c,
            data,
            symmetric: false,
        }))
    }

    /// Writes element-wise `e` (whole values in `pre`) into `out`
    /// (`rows x cols`, `e` broadcast to it) in one pass, or combines it with
    /// `op`; where `target` names the variable `out` holds, its pending
    /// updates are applied first and `e` reads it from `out`.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        out: &mut [F],
        (rows, cols): (usize, usize),
        e: &TExpr,
        pre: &Pre<F>,
        op: Option<BinOp>,
        target: Option<(Var, &[(BinOp, F)])>,
    ) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        if out.len() != rows * cols {
            return Err(self.bug("an array written with another shape"));
        }
        let split = Split::new(rows, cols);
        super::traffic::note(|| self.pass_arrays(&[(e, pre)], rows * cols, Some(&*out)));
        split.each(out, |k, chunk| {
            let mut rest = &mut chunk[..];
            for (r0, nr) in split.blocks(k) {
                let (blk, tail) = std::mem::take(&mut rest).split_at_mut(nr * cols);
                rest = tail;
                if compiled::worth(rows * cols)
                    && self.block_compiled(e, pre, r0..r0 + nr, cols, target, op, blk, None)?
                {
                    continue;
                }
                if let Some((_, ops)) = target {
                    apply_ops(blk, ops);
                }
                let over = target.map(|(t, _)| (t, &*blk));
                let v = owned(self.block(e, pre, r0..r0 + nr, over)?);
                let n = nums(&v);
                match op {
                    None => update_in_place(blk, (nr, cols), &n, |_, y| y),
                    Some(bin) => per_op!(bin, |f| update_in_place(blk, (nr, cols), &n, f)),
                }
                recycle(v);
            }
            Ok(())
        })
    }

    /// Element-wise `e` computed into an array of its shape.
    fn materialize(&self, e: &TExpr) -> Result<Val<'static, F>> {
        let mut pre = Pre::new();
        self.prepare(e, &mut pre)?;
        let out = self.materialize_with(e, &pre);
        recycle_pre(pre);
        out
    }

    fn materialize_with(&self, e: &TExpr, pre: &Pre<F>) -> Result<Val<'static, F>> {
        let (rows, cols) = e.shape.dims(self.dims.rows, self.dims.cols);
        let mut out = super::pool::take::<F>(rows * cols);
        self.fill(&mut out, (rows, cols), e, pre, None, None)?;
        Ok(Val::Arr(Arr {
            rows,
            cols,
            data: Cow::Owned(out),
            symmetric: self.symmetric(e, pre),
        }))
    }

    /// Whether element-wise `e` is symmetric as the whole-array operations
    /// mark it (arithmetic of symmetric arrays and numbers).
    fn symmetric(&self, e: &TExpr, pre: &Pre<F>) -> bool {
        if let Some(v) = pre.get(&key(e)) {
            return sym(v);
        }
        match &e.node {
            TNode::Num(_) => true,
            TNode::Var(Var::Let(i)) => match &self.lets[*i] {
                Slot::Val(v) => sym(v),
                Slot::Lazy(x, p) => self.symmetric(x, p),
                Slot::Unset => true,
            },
            TNode::Unary(UnOp::Neg, x) => self.symmetric(x, pre),
            TNode::Binary(op, a, b) if op.is_arith() => {
                self.symmetric(a, pre) && self.symmetric(b, pre)
            }
            _ => false,
        }
    }

    /// `target op= value` or `target = value` on `w` or a buffer: a per-step
    /// number waits as a pending update; else one pass.
    fn store(&mut self, target: Var, bin: Option<BinOp>, value: &TExpr) -> Result<()> {
        let slot = match target {
            Var::Param => 0,
            Var::Buffer(i) => i + 1,
            _ => return Err(self.bug("a store to a variable that is not an array")),
        };
        if let (Some(bin), false) = (bin, value.kind == Kind::Element) {
            let x = match self.eval(value)? {
                Val::Num(x) => x,
                _ => return Err(self.bug("a per-step value that is not a number")),
            };
            self.pending[slot].push((bin, F::from_f64(x)));
            return Ok(());
        }
        let mut pre = Pre::new();
        self.prepare(value, &mut pre)?;
        let ops = std::mem::take(&mut self.pending[slot]);
        let out = match target {
            Var::Param => {
                let dims = (self.dims.rows, self.dims.cols);
                let w = std::mem::take(&mut self.w);
                let out = self.fill(w, dims, value, &pre, bin, Some((target, &ops)));
                self.w = w;
                out
            }
            Var::Buffer(i) => {
                let dims = self.buffer_dims(i);
                let mut b = std::mem::take(&mut self.buffers[i]);
                let out = self.fill(&mut b, dims, value, &pre, bin, Some((target, &ops)));
                self.buffers[i] = b;
                out
            }
            _ => Ok(()),
        };
        recycle_pre(pre);
        out
    }

    /// Applies every pending update (at the end of a step).
    fn flush(&mut self) -> Result<()> {
        use rayon::prelude::*;
        for slot in 0..self.pending.len() {
            let ops = std::mem::take(&mut self.pending[slot]);
            if ops.is_empty() {
                continue;
            }
            let data: &mut [F] = match slot {
                0 => &mut *self.w,
                i => &mut self.buffers[i - 1],
            };
            super::traffic::note(|| super::traffic::Seen {
                numbers: data.len(),
                reads: Vec::new(),
                writes: vec![(data.as_ptr() as usize, data.len())],
            });
            data.par_chunks_mut(BLOCK_NUMBERS)
                .for_each(|c| apply_ops(c, &ops));
        }
        Ok(())
    }

    /// Computes, in one pass over `rows x cols`, every reduction of `reds`
    /// (each operand of that shape); with `keep`, the numbers of the first
    /// one's operand are stored there too.
    fn reduce_all(
        &self,
        reds: &[Red<'_, F>],
        (rows, cols): (usize, usize),
        keep: Option<&mut [F]>,
    ) -> Result<Vec<Val<'static, F>>> {
        if rows == 0 || cols == 0 {
            // Nothing to walk: the whole-array reductions give the empty cases.
            return reds
                .iter()
                .map(|d| {
                    let x = self.materialize_with(d.x, &d.pre)?;
                    Ok(match d.axis {
                        None => Val::Num(reduce(d.r, &x)),
                        Some(axis) => owned(axis_reduce(axis, d.r, &x)),
                    })
                })
                .collect();
        }
        if keep.as_ref().is_some_and(|k| k.len() != rows * cols) {
            return Err(self.bug("an array kept with another shape"));
        }
        let split = Split::new(rows, cols);
        super::traffic::note(|| {
            let exprs: Vec<(&TExpr, &Pre<F>)> = reds.iter().map(|d| (d.x, &d.pre)).collect();
            self.pass_arrays(&exprs, rows * cols, keep.as_deref())
        });
        // A reduction along rows and one along columns of the same variable
        // (Adafactor's `row_norm(g)` and `col_norm(g)`) read its numbers in
        // one sweep: `partner[q]` is the column reduction read with row
        // reduction `q`.
        let mut partner: Vec<Option<usize>> = vec![None; reds.len()];
        for (q, d) in reds.iter().enumerate() {
            if d.axis != Some(Axis::Row) || !matches!(d.x.node, TNode::Var(_)) {
                continue;
            }
            partner[q] = (0..reds.len()).find(|&p| {
                let e = &reds[p];
                p > q
                    && !partner.contains(&Some(p))
                    && e.axis == Some(Axis::Col)
                    && e.r == d.r
                    && e.x.node == d.x.node
                    && (keep.is_none() || q != 0)
            });
        }
        let chunk = |k: usize, mut kept: Option<&mut [F]>| -> Result<Vec<Part<F>>> {
            let mut parts: Vec<Part<F>> = reds
                .iter()
                .map(|d| match d.axis {
                    None => Part::All(d.r.identity()),
                    Some(Axis::Row) => Part::Rows(Vec::new()),
                    Some(Axis::Col) => Part::Cols(vec![d.r.identity(); cols]),
                })
                .collect();
            for (r0, nr) in split.blocks(k) {
                for (q, d) in reds.iter().enumerate() {
                    if partner.contains(&Some(q)) {
                        continue; // read with its row reduction
                    }
                    let part = &mut parts[q];
                    if compiled::worth(rows * cols) && partner[q].is_none() {
                        // Compiled code writes the numbers straight into the
                        // kept array, or into a temporary, and they are
                        // accumulated from there (a whole-array sum, mean or
                        // norm as the code writes them).
                        let range = r0..r0 + nr;
                        let mut write = |out: &mut [F]| -> Result<bool> {
                            let fused = matches!(part, Part::All(_)) && d.r != Reduction::MaxAbs;
                            let mut lanes = [d.r.identity::<f64>(); 8];
                            let sum = fused.then_some((d.r, &mut lanes));
                            let done = self.block_compiled(
                                d.x,
                                &d.pre,
                                range.clone(),
                                cols,
                                None,
                                None,
                                out,
                                sum,
                            )?;
                            match &mut *part {
                                Part::All(total) if done && fused => add_lanes(total, d.r, &lanes),
                                _ if done => accumulate(part, d.r, out, cols),
                                _ => {}
                            }
                            Ok(done)
                        };
                        if let (0, Some(rest)) = (q, kept.as_deref_mut()) {
                            if write(&mut rest[..nr * cols])? {
                                kept = kept.take().map(|rest| &mut rest[nr * cols..]);
                                continue;
                            }
                        } else {
                            let mut tmp = super::pool::take::<F>(nr * cols);
                            let done = write(&mut tmp)?;
                            super::pool::give(tmp);
                            if done {
                                continue;
                            }
                        }
                    }
                    let v = self.block(d.x, &d.pre, r0..r0 + nr, None)?;
                    let data = broadcast_to(v, nr, cols)
                        .ok_or_else(|| self.bug("a reduction's operand of another shape"))?;
                    if let Some(p) = partner[q] {
                        let (head, tail) = parts.split_at_mut(p);
                        let (row, col) = (&mut head[q], &mut tail[0]);
                        if !accumulate_rows_cols(row, col, d.r, &data, cols) {
                            accumulate(row, d.r, &data, cols);
                            accumulate(col, d.r, &data, cols);
                        }
                    } else {
                        accumulate(part, d.r, &data, cols);
                    }
                    if let (0, Some(rest)) = (q, kept.take()) {
                        let (blk, tail) = rest.split_at_mut(nr * cols);
                        blk.copy_from_slice(&data);
                        kept = Some(tail);
                    }
                    if let Cow::Owned(d) = data {
                        super::pool::give(d);
                    }
                }
            }
            Ok(parts)
        };
        let parts = match keep {
            Some(out) => split.map_mut(out, |k, c| chunk(k, Some(c)))?,
            None => split.map(|k| chunk(k, None))?,
        };
        let mut out = Vec::with_capacity(reds.len());
        for (i, d) in reds.iter().enumerate() {
            let r = d.r;
            let parts = parts.iter().map(|p| &p[i]);
            out.push(match d.axis {
                None => {
                    let total = parts.fold(r.identity::<f64>(), |t, p| match p {
                        Part::All(x) => r.combine(t, *x),
                        _ => t,
                    });
                    Val::Num(r.finish(total, rows * cols))
                }
                Some(Axis::Row) => {
                    let mut data = Vec::with_capacity(rows);
                    for p in parts {
                        if let Part::Rows(x) = p {
                            data.extend_from_slice(x);
                        }
                    }
                    Val::Arr(Arr {
                        rows,
                        cols: 1,
                        data: Cow::Owned(data),
                        symmetric: false,
                    })
                }
                Some(Axis::Col) => {
                    let mut total = vec![r.identity::<f64>(); cols];
                    for p in parts {
                        if let Part::Cols(x) = p {
                            for (t, &x) in total.iter_mut().zip(x) {
                                *t = r.combine(*t, x);
                            }
                        }
                    }
                    Val::Arr(Arr {
                        rows: 1,
                        cols,
                        data: Cow::Owned(
                            total
                                .into_iter()
                                .map(|t| F::from_f64(r.finish(t, rows)))
                                .collect(),
                        ),
                        symmetric: false,
                    })
                }
            });
        }
        Ok(out)
    }

    /// A reduction of element-wise `x` (along `axis`, or over all) in one
    /// fused pass.
    fn reduce_fused(&self, axis: Option<Axis>, r: Reduction, x: &TExpr) -> Result<Val<'static, F>> {
        let mut pre = Pre::new();
        self.prepare(x, &mut pre)?;
        let red = Red { axis, r, x, pre };
        let dims = x.shape.dims(self.dims.rows, self.dims.cols);
        let out = self.reduce_all(std::slice::from_ref(&red), dims, None)?;
        recycle_pre(red.pre);
        out.into_iter()
            .next()
            .ok_or_else(|| self.bug("a reduction without a result"))
    }

    /// Before statement `s`: each reduction in it of a `let` that is still
    /// an unevaluated element-wise expression, costly to compute (a
    /// division, a square root, a power or a transcendental function) and
    /// read again elsewhere, is computed in a pass that also stores the
    /// `let`'s numbers, so the later reads load them instead of computing
    /// them a second time (the same operations, so the same bits).
    fn keep_reduced(&mut self, s: &'s TStmt) -> Result<()> {
        let value = match s {
            TStmt::Let { value, .. } | TStmt::Assign { value, .. } => value,
            _ => return Ok(()),
        };
        let mut found = Vec::new();
        self.kept_reductions(value, &mut found);
        let owner = s as *const TStmt as usize;
        for (node, axis, r, i) in found {
            if self.batched.contains_key(&key(node)) {
                continue;
            }
            let Slot::Lazy(e, pre) = std::mem::replace(&mut self.lets[i], Slot::Unset) else {
                return Err(self.bug("a kept `let` that is not unevaluated"));
            };
            let red = Red { axis, r, x: e, pre };
            let (rows, cols) = e.shape.dims(self.dims.rows, self.dims.cols);
            let mut out = super::pool::take::<F>(rows * cols);
            let vals = self.reduce_all(std::slice::from_ref(&red), (rows, cols), Some(&mut out));
            let symmetric = self.symmetric(e, &red.pre);
            recycle_pre(red.pre);
            let v = vals?
                .into_iter()
                .next()
                .ok_or_else(|| self.bug("a reduction without a result"))?;
            self.lets[i] = Slot::Val(Val::Arr(Arr {
                rows,
                cols,
                data: Cow::Owned(out),
                symmetric,
            }));
            self.batched.insert(key(node), (v, owner));
        }
        Ok(())
    }

    /// The reductions in `e` that [`Exec::keep_reduced`] computes: the
    /// node, its axis, its reduction and the `let` it reduces.
    #[allow(clippy::type_complexity)]
    fn kept_reductions(
        &self,
        e: &'s TExpr,
        found: &mut Vec<(&'s TExpr, Option<Axis>, Reduction, usize)>,
    ) {
        match &e.node {
            TNode::Reduce(r, x) | TNode::Axis(_, r, x) => {
                let axis = match &e.node {
                    TNode::Axis(a, ..) => Some(*a),
                    _ => None,
                };
                if let TNode::Var(Var::Let(i)) = x.node {
                    let keep = self.shared.get(i).copied().unwrap_or(false)
                        && matches!(&self.lets[i], Slot::Lazy(x, pre) if self.costly(x, pre))
                        && !found.iter().any(|f| f.3 == i);
                    if keep {
                        found.push((e, axis, *r, i));
                    }
                }
            }
            TNode::Unary(_, a) => self.kept_reductions(a, found),
            TNode::Binary(_, a, b) => {
                self.kept_reductions(a, found);
                self.kept_reductions(b, found);
            }
            TNode::Call(_, args) => args.iter().for_each(|a| self.kept_reductions(a, found)),
            TNode::Select(c, a, b) => {
                [c, a, b]
                    .iter()
                    .for_each(|x| self.kept_reductions(x, found));
            }
            _ => {}
        }
    }

    /// Whether element-wise `e` (whole values in `pre`) divides, takes a
    /// square root, raises to a power other than 2 or calls a
    /// transcendental function per element, through unevaluated `let`s.
    fn costly(&self, e: &TExpr, pre: &Pre<F>) -> bool {
        if pre.contains_key(&key(e)) {
            return false;
        }
        match &e.node {
            TNode::Var(Var::Let(j)) => match &self.lets[*j] {
                Slot::Lazy(x, p) => self.costly(x, p),
                _ => false,
            },
            TNode::Unary(_, a) => self.costly(a, pre),
            TNode::Binary(op, a, b) => {
                let square = *op == BinOp::Pow && matches!(b.node, TNode::Num(n) if n == 2.0);
                matches!(op, BinOp::Div | BinOp::Pow) && !square
                    || self.costly(a, pre)
                    || self.costly(b, pre)
            }
            TNode::Call(f, args) => {
                matches!(f, Func::Sqrt | Func::Exp | Func::Ln)
                    || args.iter().any(|a| self.costly(a, pre))
            }
            TNode::Select(c, a, b) => [c, a, b].iter().any(|x| self.costly(x, pre)),
            _ => false,
        }
    }

    /// Before the first of `stmts`: the reductions of it and of the
    /// statements after it whose operands are already final (nothing in
    /// between assigns what they read) are computed in one shared pass, when
    /// there are two or more of one shape.
    fn batch(&mut self, stmts: &'s [TStmt]) -> Result<()> {
        let mut dirty = Vec::new();
        let mut found = Vec::new();
        self.scan(stmts, &mut dirty, &mut found);
        let d = self.dims;
        let size = |e: &TExpr| {
            let (r, c) = e.shape.dims(d.rows, d.cols);
            r * c
        };
        let operand = |e: &'s TExpr| match &e.node {
            TNode::Reduce(_, x) | TNode::Axis(_, _, x) => Some(&**x),
            _ => None,
        };
        let Some(&(biggest, _)) = found.iter().max_by_key(|(e, _)| operand(e).map_or(0, size))
        else {
            return Ok(());
        };
        let Some(shape) = operand(biggest).map(|x| x.shape) else {
            return Ok(());
        };
        let dims = shape.dims(d.rows, d.cols);
        let picked: Vec<(&'s TExpr, usize)> = found
            .into_iter()
            .filter(|(e, _)| operand(e).is_some_and(|x| x.shape.dims(d.rows, d.cols) == dims))
            .collect();
        if picked.len() < 2 {
            return Ok(());
        }
        let mut reds = Vec::with_capacity(picked.len());
        for &(e, _) in &picked {
            let (axis, r, x) = match &e.node {
                TNode::Reduce(r, x) => (None, *r, &**x),
                TNode::Axis(a, r, x) => (Some(*a), *r, &**x),
                _ => return Err(self.bug("a batched node that is not a reduction")),
            };
            let mut pre = Pre::new();
            self.prepare(x, &mut pre)?;
            reds.push(Red { axis, r, x, pre });
        }
        let vals = self.reduce_all(&reds, dims, None)?;
        for ((e, owner), v) in picked.into_iter().zip(vals) {
            self.batched.insert(key(e), (v, owner));
        }
        reds.into_iter().for_each(|r| recycle_pre(r.pre));
        Ok(())
    }

    /// Collects the reductions `stmts` will compute whose operands are
    /// final, until a statement whose course is not known (a `repeat`, an
    /// `if` on a value); `dirty` gathers what the statements assign.
    fn scan(
        &self,
        stmts: &'s [TStmt],
        dirty: &mut Vec<Var>,
        found: &mut Vec<(&'s TExpr, usize)>,
    ) -> bool {
        for s in stmts {
            let owner = s as *const TStmt as usize;
            match s {
                TStmt::Let { var, value } => {
                    self.collect(value, owner, dirty, found);
                    dirty.push(Var::Let(*var));
                }
                TStmt::Assign { target, value, .. } => {
                    self.collect(value, owner, dirty, found);
                    dirty.push(*target);
                }
                TStmt::If {
                    cond,
                    then,
                    otherwise,
                } => match crate::shape::shape_condition(cond, &self.dims) {
                    Some(holds) => {
                        if !self.scan(if holds { then } else { otherwise }, dirty, found) {
                            return false;
                        }
                    }
                    None => return false,
                },
                TStmt::Repeat { .. } => return false,
            }
        }
        true
    }

    fn collect(
        &self,
        e: &'s TExpr,
        owner: usize,
        dirty: &[Var],
        found: &mut Vec<(&'s TExpr, usize)>,
    ) {
        match &e.node {
            TNode::Reduce(_, x) | TNode::Axis(_, _, x)
                if x.kind == Kind::Element
                    && !self.batched.contains_key(&key(e))
                    && self.clean(x, None, dirty) =>
            {
                found.push((e, owner));
            }
            // `eye(x)` computes nothing of `x`.
            TNode::Reduce(..) | TNode::Axis(..) | TNode::Eye(_) => {}
            _ => e
                .children()
                .for_each(|a| self.collect(a, owner, dirty, found)),
        }
    }

    /// Whether element-wise `x` can be computed now with the value it will
    /// have later: arithmetic on names none of `dirty` assigns (whole values
    /// of an unevaluated `let`, in its `pre`, are final already).
    fn clean(&self, x: &TExpr, pre: Option<&Pre<F>>, dirty: &[Var]) -> bool {
        if pre.is_some_and(|p| p.contains_key(&key(x))) {
            return true;
        }
        match &x.node {
            TNode::Num(_) | TNode::Bool(_) => true,
            TNode::Var(v) => {
                !dirty.contains(v)
                    && match v {
                        Var::Let(i) => match &self.lets[*i] {
                            Slot::Lazy(e, p) => self.clean(e, Some(p), dirty),
                            Slot::Val(_) => true,
                            Slot::Unset => false,
                        },
                        _ => true,
                    }
            }
            TNode::Unary(_, a) => self.clean(a, pre, dirty),
            TNode::Binary(_, a, b) => self.clean(a, pre, dirty) && self.clean(b, pre, dirty),
            TNode::Call(_, args) => args.iter().all(|a| self.clean(a, pre, dirty)),
            TNode::Select(c, a, b) => [c, a, b].iter().all(|e| self.clean(e, pre, dirty)),
            _ => false,
        }
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

    /// Stores `v` into a scalar state or a `let`.
    fn assign(&mut self, target: Var, v: Val<'static, F>) -> Result<()> {
        match target {
            Var::Scalar(i) => match v {
                Val::Num(x) => self.scalars[i] = x,
                _ => return Err(self.bug("a scalar state assigned an array")),
            },
            Var::Let(i) => recycle_slot(std::mem::replace(&mut self.lets[i], Slot::Val(v))),
            _ => return Err(self.bug("assignment to a read-only name")),
        }
        Ok(())
    }

    fn var(&self, v: Var) -> Result<Val<'_, F>> {
        let d = self.dims;
        fn arr<F: Float>(data: &[F], rows: usize, cols: usize) -> Val<'_, F> {
            Val::Arr(Arr {
                rows,
                cols,
                data: Cow::Borrowed(data),
                symmetric: false,
            })
        }
        // An array with pending updates is read with them applied.
        fn with_ops<'v, F: Float>(mut v: Val<'v, F>, ops: &[(BinOp, F)]) -> Val<'v, F> {
            if let (Val::Arr(a), false) = (&mut v, ops.is_empty()) {
                apply_ops(a.data.to_mut(), ops);
            }
            v
        }
        Ok(match v {
            Var::Param => with_ops(arr(self.w, d.rows, d.cols), &self.pending[0]),
            Var::Grad => arr(self.g, d.rows, d.cols),
            Var::Input(i) => arr(self.inputs.get(i).copied().unwrap_or(&[]), d.rows, d.cols),
            Var::Buffer(i) => {
                let (r, c) = self.buffer_dims(i);
                with_ops(arr(&self.buffers[i], r, c), &self.pending[i + 1])
            }
            Var::Step => Val::Num(self.t),
            Var::Hyper(i) => match self.hypers[i] {
                Default::Num(x) => Val::Num(x),
                Default::Bool(b) => Val::Bool(b),
            },
            Var::Scalar(i) => Val::Num(self.scalars[i]),
            Var::Let(i) => match &self.lets[i] {
                Slot::Val(v) => borrow(v),
                Slot::Lazy(e, pre) => self.materialize_with(e, pre)?,
                Slot::Unset => Val::Num(f64::NAN),
            },
            Var::Rows => Val::Num(d.rows as f64),
            Var::Cols => Val::Num(d.cols as f64),
            Var::Numel => Val::Num(d.numel as f64),
            Var::Matrix => Val::Bool(d.matrix),
            Var::Epsilon => Val::Num(epsilon::<F>()),
        })
    }

    fn eval(&self, e: &TExpr) -> Result<Val<'_, F>> {
        if let Some((v, _)) = self.batched.get(&key(e)) {
            return Ok(borrow(v));
        }
        Ok(match &e.node {
            TNode::Num(x) => Val::Num(*x),
            TNode::Bool(b) => Val::Bool(*b),
            TNode::Var(v) => self.var(*v)?,
            _ if fusable(e) => self.materialize(e)?,
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
            TNode::Select(c, a, b) => match self.eval(c)? {
                Val::Bool(true) => self.eval(a)?,
                Val::Bool(false) => self.eval(b)?,
                c => select(c, self.eval(a)?, self.eval(b)?),
            },
            TNode::Reduce(r, x) if x.kind == Kind::Element => self.reduce_fused(None, *r, x)?,
            TNode::Reduce(r, x) => Val::Num(reduce(*r, &self.eval(x)?)),
            TNode::Axis(axis, r, x) if x.kind == Kind::Element => {
                self.reduce_fused(Some(*axis), *r, x)?
            }
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
