//! A fused pass's block compiled to machine code: the element-wise
//! expression the tree walk ([`Exec::block`]) would evaluate one operation
//! at a time over block-sized temporaries is lowered, node for node, into
//! the IR of element-wise rules and compiled by the text rules' JIT
//! ([`crate::jit::codegen`], Cranelift), so each number is loaded once and
//! its whole expression computed in registers. The operations are those of
//! the tree walk in the same order (IEEE arithmetic and roots in the element
//! type, no fused multiply-add, `x^2` as `x * x`, per-step numbers computed
//! in f64 by the tree walk's own functions and rounded once where they meet
//! elements, per-step selections taking one branch), so the bits are the
//! same; `tests/matrix_rules.rs` and this file's tests compare them.
//!
//! Operands are whole rows of the block, one row of numbers shared by
//! every row (a `[1, cols]` value), one number per row (a `[rows, 1]`
//! value, fed to the code as a per-step number row by row) or one number.
//! What the lowering does not cover (boolean per-step values meeting
//! masks, masks computed whole) returns `None`, and the tree walk runs.
//! The code is cached by the lowered expression's form, so a rule compiles
//! each of its passes once per process; `OPTDSL_JIT=0` turns it off.

use super::{key, rows_of, Exec, Pre, Slot};
use crate::float::Float;
use crate::jit::codegen::{self, Compiled, VECTOR_STEP};
use crate::jit::Lanes;
use crate::tensor::ops::{accumulate_lanes, binary, func, unary, Arr, Val};
use optdsl_lang::ast::{BinOp, Name};
use optdsl_lang::ir::{Id, Op, Slot as IrSlot, Value};
use optdsl_lang::passes::{Pass, PassKind};
use optdsl_lang::typed::{Kind, TExpr, TNode, Ty, Var};
use optdsl_lang::{Program, Reduction};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// Passes over fewer numbers than this run on the tree walk (the code would
/// cost more to compile than it saves).
const MIN_NUMBERS: usize = 1 << 14;

/// Whether a pass over `numbers` numbers is worth compiling.
pub(super) fn worth(numbers: usize) -> bool {
    numbers >= MIN_NUMBERS
}

/// An array operand of the block, as the code reads it.
#[derive(Clone, Copy)]
enum Leaf<F> {
    /// The block's `nr x cols` numbers, row-major.
    Full(*const F),
    /// `cols` numbers, the same for every row.
    Col(*const F),
}

/// A per-step number of the code.
#[derive(Clone, Copy)]
enum Num<F> {
    /// One number.
    One(F),
    /// One number per row of the block (`nr` of them).
    Row(*const F),
}

/// What a node lowers to.
#[derive(Clone, Copy)]
enum Low {
    /// A per-step number, in f64, not yet rounded to the element type.
    Num(f64),
    /// A per-step boolean.
    Bool(bool),
    /// An element value of the code.
    El(Id),
}

/// The block a pass writes, when the pass also reads the variable it holds.
#[derive(Clone)]
struct Target<F> {
    /// The variable.
    var: Var,
    /// The block's numbers.
    block: *const F,
    /// Its pending `op= number` updates, applied by the code as it reads it.
    ops: Vec<(BinOp, F)>,
}

/// An expression lowered for one block.
struct Lowered<F> {
    values: Vec<Value>,
    reads: Vec<Leaf<F>>,
    nums: Vec<Num<F>>,
    /// The block's rows and columns.
    rows: usize,
    cols: usize,
    /// The block being written, where the pass reads what it holds.
    target: Option<Target<F>>,
    /// The target's value with its pending updates, once lowered.
    target_id: Option<Id>,
}

impl<F: Float> Lowered<F> {
    fn push(&mut self, op: Op, ty: Ty, kind: Kind) -> Id {
        self.values.push(Value {
            op,
            ty,
            kind,
            stage: 0,
        });
        self.values.len() - 1
    }

    /// A per-step number of the element type.
    fn num(&mut self, n: Num<F>) -> Id {
        self.nums.push(n);
        self.push(Op::Hyper(self.nums.len() - 1), Ty::Num, Kind::Scalar)
    }

    /// An element value from a lowered node (a per-step number rounded to
    /// the element type here, where it meets elements).
    fn el(&mut self, l: Low) -> Option<Id> {
        match l {
            Low::El(id) => Some(id),
            Low::Num(x) => Some(self.num(Num::One(F::from_f64(x)))),
            Low::Bool(_) => None,
        }
    }

    /// An array operand of `rows x cols` numbers at `data`, broadcast to the
    /// block; `None` for a shape the code does not read.
    fn array(&mut self, data: &[F], (rows, cols): (usize, usize)) -> Option<Id> {
        if data.len() != rows * cols {
            return None;
        }
        let (nr, nc) = (self.rows, self.cols);
        let p = data.as_ptr();
        if (rows, cols) == (nr, nc) {
            Some(self.push_read(Leaf::Full(p)))
        } else if (rows, cols) == (1, 1) {
            Some(self.num(Num::One(data[0])))
        } else if (rows, cols) == (nr, 1) {
            Some(self.num(Num::Row(p)))
        } else if (rows, cols) == (1, nc) {
            Some(self.push_read(Leaf::Col(p)))
        } else {
            None
        }
    }

    /// The block being written, with its pending updates applied.
    fn target(&mut self) -> Option<Id> {
        if let Some(id) = self.target_id {
            return Some(id);
        }
        let Target { block, ops, .. } = self.target.clone()?;
        let mut id = self.push_read(Leaf::Full(block));
        for (op, y) in ops {
            let y = self.num(Num::One(y));
            id = self.push(Op::Binary(op, id, y), Ty::Num, Kind::Element);
        }
        self.target_id = Some(id);
        Some(id)
    }

    fn push_read(&mut self, leaf: Leaf<F>) -> Id {
        self.reads.push(leaf);
        self.push(Op::Input(self.reads.len() - 1), Ty::Num, Kind::Element)
    }

    /// A whole value (already cut to the block's rows).
    fn val(&mut self, v: &Val<'_, F>) -> Option<Low> {
        match v {
            Val::Num(x) => Some(Low::Num(*x)),
            Val::Bool(b) => Some(Low::Bool(*b)),
            Val::Arr(a) => self.array(&a.data, (a.rows, a.cols)).map(Low::El),
            Val::Mask(..) => None,
        }
    }
}

/// Compiled code by the lowered expression's form, element type and fused sum.
type Cache =
    Mutex<HashMap<(Vec<(Op, bool, bool)>, bool, Option<Reduction>), Option<Arc<Compiled>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The code for `low` writing `root`, compiled on first use.
fn code<F: Float>(low: &Lowered<F>, root: Id, sum: Option<Reduction>) -> Option<Arc<Compiled>> {
    let f64 = match F::DTYPE {
        "f64" => true,
        "f32" => false,
        _ => return None,
    };
    let form: Vec<(Op, bool, bool)> = low
        .values
        .iter()
        .map(|v| (v.op.clone(), v.ty == Ty::Bool, v.kind == Kind::Element))
        .chain(std::iter::once((Op::Num(root as u64), false, false)))
        .collect();
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry((form, f64, sum))
        .or_insert_with(|| {
            let program = program(low, root);
            let pass = Pass {
                kind: PassKind::Update,
                elements: (0..low.values.len())
                    .filter(|&i| low.values[i].kind == Kind::Element)
                    .collect(),
                inputs: (0..low.values.len())
                    .filter(|&i| low.values[i].kind != Kind::Element)
                    .collect(),
                writes: vec![(IrSlot::Buffer(0), root)],
                reductions: Vec::new(),
                slots: (0..low.reads.len())
                    .map(|k| (IrSlot::Input(k), false))
                    .chain(std::iter::once((IrSlot::Buffer(0), true)))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                heavy: false,
            };
            let known = vec![None; program.values.len()];
            let started = std::time::Instant::now();
            let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                codegen::compile(&program, &pass, &known, f64, sum)
            }))
            .unwrap_or_else(|_| Err(codegen::JitError("Cranelift panicked".into())));
            if std::env::var_os("OPTDSL_JIT_LOG").is_some() {
                match &compiled {
                    Ok(_) => eprintln!(
                        "jit: tensor block of {} values {} compiled in {:.2} ms",
                        low.values.len(),
                        F::DTYPE,
                        started.elapsed().as_secs_f64() * 1e3
                    ),
                    Err(e) => eprintln!("jit: tensor block walked: {}", e.0),
                }
            }
            compiled.ok().map(Arc::new)
        })
        .clone()
}

/// The IR program the code generator reads: only its values matter.
fn program<F: Float>(low: &Lowered<F>, root: Id) -> Program {
    Program {
        name: Name {
            text: "tensor block".into(),
            span: Default::default(),
        },
        docs: Vec::new(),
        vis: None,
        source: String::new(),
        hypers: Vec::new(),
        buffers: Vec::new(),
        storage: Vec::new(),
        scalars: Vec::new(),
        inputs: Vec::new(),
        input_roles: Vec::new(),
        values: low.values.clone(),
        w_out: None,
        buffer_out: vec![Some(root)],
        scalar_out: Vec::new(),
        stages: 0,
        fingerprint: 0,
        tensor: None,
    }
}

impl<'s, F: Float> Exec<'s, F> {
    /// Writes element-wise `e` (whole values in `pre`) for rows `rows` into
    /// `out` (`rows.len() x cols`), or `out op= e` with `op`, by compiled
    /// code; where `target` names the variable `out` holds and its pending
    /// updates (not applied yet), the code applies them as it reads `out`,
    /// and `e` reads that variable from `out`, as [`Exec::block`] reads its
    /// `over`. With `sum`, also adds the numbers written to the eight f64
    /// lanes of whole-array reduction `r` (a sum, mean or norm; element `i`
    /// of `out` into lane `i mod 8`, in order), as
    /// [`accumulate`](crate::tensor::ops::accumulate) adds a block: in the
    /// code's 256-bit loop where it can, the rest here. `Ok(false)` where
    /// the code does not cover `e` (nothing written or added).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn block_compiled(
        &self,
        e: &TExpr,
        pre: &Pre<F>,
        rows: Range<usize>,
        cols: usize,
        target: Option<(Var, &[(BinOp, F)])>,
        op: Option<BinOp>,
        out: &mut [F],
        sum: Option<(Reduction, &mut [f64; 8])>,
    ) -> crate::error::Result<bool> {
        if !self.compiled || out.len() != rows.len() * cols || out.is_empty() {
            return Ok(false);
        }
        // One pointer for the code's reads of `out` and its writes.
        let base = out.as_mut_ptr();
        let mut low = Lowered {
            values: Vec::new(),
            reads: Vec::new(),
            nums: Vec::new(),
            rows: rows.len(),
            cols,
            target: target.map(|(var, ops)| Target {
                var,
                block: base.cast_const(),
                ops: ops.to_vec(),
            }),
            target_id: None,
        };
        let Some(value) = self.lower(&mut low, e, pre, &rows)? else {
            return Ok(false);
        };
        let Low::El(value) = value else {
            return Ok(false);
        };
        let root = match op {
            // A bare array: the tree walk reads it where it lies, uncopied.
            None if matches!(low.values[value].op, Op::Input(_)) => return Ok(false),
            None => value,
            Some(bin) => {
                let o = if low.target.is_some() {
                    low.target()
                } else {
                    // SAFETY: `base` points at `out.len()` numbers, only
                    // read here, before the code writes through `base`.
                    let block = unsafe { std::slice::from_raw_parts(base, out.len()) };
                    low.array(block, (rows.len(), cols))
                };
                let Some(o) = o else {
                    return Ok(false);
                };
                low.push(Op::Binary(bin, o, value), Ty::Num, Kind::Element)
            }
        };
        if low.values[root].ty != Ty::Num {
            return Ok(false);
        }
        let Some(code) = code(&low, root, sum.as_ref().map(|s| s.0)) else {
            return Ok(false);
        };
        run(&code, &low, base, sum);
        Ok(true)
    }

    /// `e` lowered into `low` for the block's rows, as [`Exec::block`]
    /// evaluates it; `None` where the code does not cover it.
    fn lower(
        &self,
        low: &mut Lowered<F>,
        e: &TExpr,
        pre: &Pre<F>,
        rows: &Range<usize>,
    ) -> crate::error::Result<Option<Low>> {
        if let Some(v) = pre.get(&key(e)) {
            return Ok(low.val(&rows_of(v, rows)));
        }
        macro_rules! sub {
            ($x:expr) => {
                match self.lower(low, $x, pre, rows)? {
                    Some(l) => l,
                    None => return Ok(None),
                }
            };
        }
        macro_rules! el {
            ($l:expr) => {
                match low.el($l) {
                    Some(id) => id,
                    None => return Ok(None),
                }
            };
        }
        Ok(Some(match &e.node {
            TNode::Num(x) => Low::Num(*x),
            TNode::Bool(b) => Low::Bool(*b),
            TNode::Var(v) => return self.lower_var(low, *v, rows),
            TNode::Unary(op, x) => match sub!(x) {
                Low::El(id) => {
                    let ty = low.values[id].ty;
                    Low::El(low.push(Op::Unary(*op, id), ty, Kind::Element))
                }
                Low::Num(x) => scalar(unary::<F>(*op, Val::Num(x))),
                Low::Bool(b) => scalar(unary::<F>(*op, Val::Bool(b))),
            },
            TNode::Binary(op, a, b) => {
                // `x^2` multiplies, as the tree walk does.
                let square = *op == BinOp::Pow && matches!(b.node, TNode::Num(n) if n == 2.0);
                let x = sub!(a);
                let y = if square { x } else { sub!(b) };
                let op = if square { BinOp::Mul } else { *op };
                match (x, y) {
                    (Low::Num(x), Low::Num(y)) => scalar(binary::<F>(op, Val::Num(x), Val::Num(y))),
                    (Low::Bool(x), Low::Bool(y)) => {
                        scalar(binary::<F>(op, Val::Bool(x), Val::Bool(y)))
                    }
                    (x, y) => {
                        let (x, y) = (el!(x), el!(y));
                        let ty = if op.is_arith() { Ty::Num } else { Ty::Bool };
                        Low::El(low.push(Op::Binary(op, x, y), ty, Kind::Element))
                    }
                }
            }
            TNode::Call(f, args) => {
                let mut lowered = Vec::with_capacity(args.len());
                for a in args {
                    lowered.push(sub!(a));
                }
                if lowered.iter().all(|l| matches!(l, Low::Num(_))) {
                    let vals = lowered
                        .iter()
                        .map(|l| match l {
                            Low::Num(x) => Val::Num(*x),
                            _ => Val::Num(f64::NAN),
                        })
                        .collect();
                    scalar(func::<F>(*f, vals))
                } else {
                    let mut ids = Vec::with_capacity(lowered.len());
                    for l in lowered {
                        ids.push(el!(l));
                    }
                    Low::El(low.push(Op::Func(*f, ids), Ty::Num, Kind::Element))
                }
            }
            TNode::Select(c, a, b) => match sub!(c) {
                // One number decides: only the branch taken is lowered.
                Low::Bool(true) => sub!(a),
                Low::Bool(false) => sub!(b),
                Low::Num(_) => return Ok(None),
                Low::El(mask) => {
                    let (x, y) = (sub!(a), sub!(b));
                    let (x, y) = (el!(x), el!(y));
                    if low.values[x].ty != Ty::Num || low.values[y].ty != Ty::Num {
                        return Ok(None);
                    }
                    Low::El(low.push(Op::Select(mask, x, y), Ty::Num, Kind::Element))
                }
            },
            _ => return Ok(None),
        }))
    }

    /// Variable `v` for the block's rows, as [`Exec::block_var`] reads it
    /// (pending `op= number` updates applied, as operations of the code).
    fn lower_var(
        &self,
        low: &mut Lowered<F>,
        v: Var,
        rows: &Range<usize>,
    ) -> crate::error::Result<Option<Low>> {
        if low.target.as_ref().is_some_and(|t| t.var == v) {
            return Ok(low.target().map(Low::El));
        }
        let Some((data, (r, c), ops)) = self.array_var(v) else {
            return match v {
                Var::Let(i) => match &self.lets[i] {
                    Slot::Val(x) => Ok(low.val(&rows_of(x, rows))),
                    Slot::Lazy(x, pre) => self.lower(low, x, pre, rows),
                    Slot::Unset => Ok(Some(Low::Num(f64::NAN))),
                },
                other => Ok(match self.var(other)? {
                    Val::Num(x) => Some(Low::Num(x)),
                    Val::Bool(b) => Some(Low::Bool(b)),
                    _ => None,
                }),
            };
        };
        let (data, nr) = self.rows_in(data, (r, c), rows)?;
        let Some(mut id) = low.array(data, (nr, c)) else {
            return Ok(None);
        };
        for &(op, y) in ops {
            let y = low.num(Num::One(y));
            id = low.push(Op::Binary(op, id, y), Ty::Num, Kind::Element);
        }
        Ok(Some(Low::El(id)))
    }
}

/// A per-step value of the tree walk's scalar arithmetic, lowered.
fn scalar<F: Float>(v: Val<'_, F>) -> Low {
    match v {
        Val::Num(x) => Low::Num(x),
        Val::Bool(b) => Low::Bool(b),
        // Not produced by per-step operands.
        Val::Arr(Arr { .. }) | Val::Mask(..) => Low::Num(f64::NAN),
    }
}

/// Runs `code` over the block into `out` (`rows x cols` numbers): in one
/// call where every operand covers the block, else row by row (the per-row
/// numbers set in the code's per-step numbers, the shared row read again for
/// each row). With `sum`, adds the numbers written to the eight lanes
/// (element `i` of the block into lane `i mod 8`): those the code's 256-bit
/// loop added where it adds them from lane 0, the others here, in order.
fn run<F: Float>(
    code: &Compiled,
    low: &Lowered<F>,
    out: *mut F,
    mut sum: Option<(Reduction, &mut [f64; 8])>,
) {
    // The code's per-step numbers, in its order; which of them change by row.
    let hyper = |id: Id| match low.values[id].op {
        Op::Hyper(k) => low.nums.get(k).copied(),
        _ => None,
    };
    let mut cf: Vec<Lanes> = Vec::with_capacity(code.nums.len());
    let mut by_row: Vec<(usize, *const F)> = Vec::new();
    for (at, &id) in code.nums.iter().enumerate() {
        cf.push(match hyper(id) {
            Some(Num::One(x)) => Lanes::of(x),
            Some(Num::Row(p)) => {
                by_row.push((at, p));
                Lanes::of(F::ZERO)
            }
            None => Lanes::of(F::from_f64(f64::NAN)),
        });
    }
    let per_row = !by_row.is_empty() || low.reads.iter().any(|l| matches!(l, Leaf::Col(_)));
    let (calls, n) = if per_row {
        (low.rows, low.cols)
    } else {
        (1, low.rows * low.cols)
    };
    #[cfg(test)]
    tests::RUNS.with(|r| r.set(r.get() + 1));
    let mut reads: Vec<*const u8> = vec![std::ptr::null(); low.reads.len()];
    let mut acc = [F::ZERO; crate::driver::LANES];
    // The code's loop adds to the lanes it is given from lane 0: the real
    // ones where each call starts at a multiple of 8, else a scratch copy.
    let fused = code.sums && (calls == 1 || n % 8 == 0);
    for i in 0..calls {
        for &(at, p) in &by_row {
            // SAFETY: a per-row operand has `low.rows` numbers (checked by
            // `Lowered::array`), and `i < low.rows`.
            cf[at] = Lanes::of(unsafe { *p.add(i) });
        }
        for (dst, leaf) in reads.iter_mut().zip(&low.reads) {
            *dst = match *leaf {
                // SAFETY: a full operand has `rows x cols` numbers; row `i`
                // starts at `i * n` (`n = cols` here, or `i = 0`).
                Leaf::Full(p) => unsafe { p.add(i * n) }.cast(),
                Leaf::Col(p) => p.cast(),
            };
        }
        // SAFETY: as for the full operands: `out` holds `rows x cols` numbers.
        let writes = [unsafe { out.add(i * n) }.cast::<u8>()];
        let lanes_at = match &mut sum {
            Some((_, lanes)) if fused => lanes.as_mut_ptr().cast::<u8>(),
            _ => acc.as_mut_ptr().cast::<u8>(),
        };
        // SAFETY: the code reads `cf` (one 16-byte entry per use of a per-step
        // number, as compiled), `n` numbers from each read pointer (each
        // operand holds them: checked by `Lowered::array`) and writes `n`
        // numbers through `writes[0]`, into `out`'s row `i`. A read pointer
        // may be `out` itself (the block being written): each number is
        // read before the number at its place is written. No reductions,
        // so any `nvec` that is a multiple of `VECTOR_STEP` takes whole
        // iterations; `acc` is touched only by a fused sum, eight f64
        // lanes (64 bytes: `acc` holds at least 256).
        let taken = unsafe {
            code.run(
                cf.as_ptr().cast(),
                reads.as_ptr(),
                writes.as_ptr(),
                lanes_at,
                n,
                n / VECTOR_STEP * VECTOR_STEP,
                0,
            )
        };
        if let (Some((r, lanes)), true) = (&mut sum, fused) {
            // The row's numbers past the loop's, from lane 0 again (the
            // loop's step and the row's start are multiples of 8).
            // SAFETY: the code wrote row `i`'s `n` numbers at `out + i * n`.
            let row = unsafe { std::slice::from_raw_parts(out.add(i * n), n) };
            accumulate_lanes(lanes, *r, &row[taken..]);
        }
    }
    if let (Some((r, lanes)), false) = (sum, fused) {
        // SAFETY: the code wrote the block's `rows x cols` numbers at `out`.
        let block = unsafe { std::slice::from_raw_parts(out, low.rows * low.cols) };
        accumulate_lanes(lanes, r, block);
    }
}

#[cfg(test)]
mod tests {
    use super::super::WALK_ONLY;
    use crate::rule::DynRule;
    use crate::state::State;
    use crate::text::Rules;
    use std::cell::Cell;

    std::thread_local! {
        /// Blocks this thread ran as compiled code.
        pub(super) static RUNS: Cell<usize> = const { Cell::new(0) };
    }

    /// A rule with shapes reading per-row and per-column state, masks
    /// combined with `&&`, selections by element and by a per-step boolean,
    /// powers, functions of one, two and three arguments, and whole-array
    /// reductions of element-wise values (added as the code writes them).
    const BROADCASTS: &str = "
        Broadcasts {
            hyper lr = 0.05 where lr >= 0, cap = 0.5, flip = false;
            state m: [rows] = 0, s: [cols] = 1, v = 0;
            m = m + 0.5 * (row_mean(g) - m);
            s = max(s * 0.9, col_norm(g)^2 / rows);
            v = 0.9 * v + abs(g) ^ 1.5;
            let z = if g > m { g * m + s } else { -abs(g) / sqrt(s + 1e-3) };
            let y = clamp(z, -cap, cap) + min(w, 0.25) * exp(-abs(g)) - sign(g) * fma(g, m, s)
                + ln(1 + v);
            let x = if flip { -y } else { y };
            w *= 0.999;
            w -= lr * select(x > 0 && w < 1 || g == 0, x, x * 0.5) + max_abs(x) * 1e-3
                + (norm(y) * 1e-4 - mean(z) * 1e-3);
        }";

    fn data(n: usize, seed: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f64 / 1000.0 - 1.0) * 0.5)
            .collect()
    }

    /// Three steps of `rule` on `shape`, on the tree walk or not, on
    /// `threads` threads: `w`'s and the state's bits, and how many blocks
    /// ran as compiled code on the thread that stepped (all of them, on one
    /// thread).
    fn run<F: crate::float::Float>(
        rule: &dyn DynRule,
        shape: &[usize],
        threads: usize,
        walk: bool,
        init: impl Fn(&dyn DynRule, &[usize]) -> State<F> + Sync,
        step: impl Fn(&dyn DynRule, &mut State<F>, &mut [F], &[F]) + Sync,
    ) -> ((Vec<u64>, State<F>), usize) {
        let n: usize = shape.iter().product();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            WALK_ONLY.with(|w| w.set(walk));
            let before = RUNS.with(Cell::get);
            let mut state = init(rule, shape);
            let mut w: Vec<F> = data(n, 3).into_iter().map(F::from_f64).collect();
            for k in 0..3 {
                let mut g: Vec<F> = data(n, 20 + k).into_iter().map(F::from_f64).collect();
                g[n / 3] = F::ZERO;
                step(rule, &mut state, &mut w, &g);
            }
            WALK_ONLY.with(|w| w.set(false));
            let bits = w.iter().map(|x| x.to_f64().to_bits()).collect();
            ((bits, state), RUNS.with(Cell::get) - before)
        })
    }

    #[test]
    fn compiled_blocks_give_the_tree_walks_bits() {
        if !crate::jit::enabled() {
            return;
        }
        let mut rules: Vec<Box<dyn DynRule>> = vec![
            crate::builtin_rule("adafactor").unwrap(),
            crate::builtin_rule("muon").unwrap(),
        ];
        rules.extend(
            Rules::parse(BROADCASTS)
                .unwrap()
                .into_iter()
                .map(|r| Box::new(r) as Box<dyn DynRule>),
        );
        let mut maximizing = crate::builtin_rule("adafactor").unwrap();
        maximizing
            .set_hyper("maximize", crate::hyper::HyperValue::Bool(true))
            .unwrap();
        maximizing
            .set_hyper("weight_decay", crate::hyper::HyperValue::Num(0.1))
            .unwrap();
        rules.push(maximizing);
        // Rows of a multiple of 16 numbers, and of 8, have their whole-array
        // sums added by the 256-bit loops; the others, here.
        let shapes: [&[usize]; 8] = [
            &[130, 131],
            &[40, 512],
            &[66, 264],
            &[261, 300],
            &[5, 70, 90],
            &[1, 20011],
            &[20011, 1],
            &[20011],
        ];
        for rule in &rules {
            let name = rule.info().name;
            for shape in shapes {
                if rule.init_shaped_f32(shape).is_err() {
                    continue;
                }
                let mut w0 = vec![0.0f32; shape.iter().product()];
                let g0 = vec![1.0f32; w0.len()];
                let mut s0 = rule.init_shaped_f32(shape).unwrap();
                if rule.step_f32(&mut s0, &mut w0, &g0, &[]).is_err() {
                    continue; // a rule that needs a matrix, given a vector
                }
                for threads in [1, 2] {
                    let f32s = |walk| {
                        run::<f32>(
                            rule.as_ref(),
                            shape,
                            threads,
                            walk,
                            |r, s| r.init_shaped_f32(s).unwrap(),
                            |r, s, w, g| r.step_f32(s, w, g, &[]).unwrap(),
                        )
                    };
                    let f64s = |walk| {
                        run::<f64>(
                            rule.as_ref(),
                            shape,
                            threads,
                            walk,
                            |r, s| r.init_shaped_f64(s).unwrap(),
                            |r, s, w, g| r.step_f64(s, w, g, &[]).unwrap(),
                        )
                    };
                    let what = format!("{name} {shape:?} {threads} threads");
                    let (walk32, none32) = f32s(true);
                    let (code32, ran32) = f32s(false);
                    let (walk64, none64) = f64s(true);
                    let (code64, ran64) = f64s(false);
                    assert_eq!(walk32, code32, "f32 {what}");
                    assert_eq!(walk64, code64, "f64 {what}");
                    assert_eq!((none32, none64), (0, 0), "{what}: walked, yet compiled");
                    if threads == 1 {
                        assert!(ran32 > 0 && ran64 > 0, "{what}: no compiled block ran");
                    }
                }
            }
        }
    }
}
