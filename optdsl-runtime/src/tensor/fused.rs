//! A fused pass's element-wise expression as a flat program over short
//! spans (at most [`SPAN`] numbers, so every temporary stays in the first
//! level of cache): the executor's tree walk over whole blocks wrote and
//! read a block-sized temporary per operator, which made the passes
//! CPU-bound. The program is built once per pass by `Exec::compile`
//! (exec.rs), which mirrors `Exec::block` node for node: per-step numbers
//! are folded in f64 when it is built, and each operator, function and
//! selection runs element by element with the same maths (`BinOp::arith`,
//! `Func::apply`, `per_op!`/`per_func!`, the same `zip_into` and
//! `update_in_place` loops), so every number has the bits the tree walk
//! gives it. Rules compiled by `optimizer!` and rules read from text both
//! run it.

use super::ops::{flat, update_in_place, zip_into, Nums};
use crate::float::Float;
use optdsl_lang::ast::BinOp;
use optdsl_lang::functions::Func;

/// The most numbers a span holds: a few registers of this many `f64`
/// stay in a 32 KiB first-level cache.
pub(super) const SPAN: usize = 1024;

/// How a leaf's numbers lie against the output's `rows x cols`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Lay {
    /// One number per output number.
    Full,
    /// One row (`[1, cols]`), the same for every row.
    Row,
    /// One number per row (`[rows, 1]`).
    Col,
    /// One number (`[1, 1]`).
    One,
}

/// An array a program reads: its numbers and how they lie. The target of
/// a store (`over`) has no numbers here: it is read from the block being
/// written.
#[derive(Debug, Clone, Copy)]
pub(super) struct Leaf<'a, F> {
    pub data: &'a [F],
    pub lay: Lay,
    pub target: bool,
}

/// An operand of numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Src<F> {
    /// A per-step number rounded to the element type.
    Imm(F),
    /// A leaf, by index.
    Leaf(usize),
    /// A register, by index.
    Reg(usize),
}

/// An operand of booleans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum MSrc {
    /// A per-step boolean.
    Imm(bool),
    /// A mask register, by index.
    Reg(usize),
}

/// One instruction; `dst` names a register (a mask register for masks).
#[derive(Debug, Clone)]
pub(super) enum Ins<F> {
    /// `dst = a`, then each pending `op= y` in order (an array read with
    /// updates not yet applied, or the value of a store that reads only
    /// its target).
    Copy {
        a: Src<F>,
        ops: Vec<(BinOp, F)>,
        dst: usize,
    },
    /// `dst = -a`.
    Neg { a: Src<F>, dst: usize },
    /// `dst = a op b` (`BinOp::arith`).
    Bin {
        op: BinOp,
        a: Src<F>,
        b: Src<F>,
        dst: usize,
    },
    /// `dst = f(a, b)` for a function of at most two arguments.
    Func2 {
        f: Func,
        a: Src<F>,
        b: Src<F>,
        dst: usize,
    },
    /// `dst = f(a, b, c)`.
    Func3 {
        f: Func,
        a: Src<F>,
        b: Src<F>,
        c: Src<F>,
        dst: usize,
    },
    /// `dst = a op b` for a comparison (`BinOp::compare`).
    Cmp {
        op: BinOp,
        a: Src<F>,
        b: Src<F>,
        dst: usize,
    },
    /// `dst = a op b` on booleans (`BinOp::logic`).
    Logic {
        op: BinOp,
        a: MSrc,
        b: MSrc,
        dst: usize,
    },
    /// `dst = !a`.
    Not { a: usize, dst: usize },
    /// `dst = m ? a : b`.
    Select {
        m: usize,
        a: Src<F>,
        b: Src<F>,
        dst: usize,
    },
}

/// A compiled expression: its leaves, its instructions, its result, and
/// the registers it needs.
#[derive(Debug)]
pub(super) struct Prog<'a, F> {
    pub leaves: Vec<Leaf<'a, F>>,
    pub code: Vec<Ins<F>>,
    pub result: Src<F>,
    pub regs: usize,
    pub masks: usize,
    /// Whether every leaf is [`Lay::Full`] or [`Lay::One`], so spans run
    /// across rows.
    pub flat: bool,
}

/// Registers of one thread.
pub(super) struct Regs<F> {
    num: Vec<Vec<F>>,
    mask: Vec<Vec<bool>>,
}

/// Where a span lies: output row `i`, columns `j0..j0 + len`, at flat index
/// `at` (row `i` of a flat span is unused), `base` the flat index of the
/// block's first number (the target's numbers are the block's).
#[derive(Debug, Clone, Copy)]
struct Spot {
    i: usize,
    j0: usize,
    at: usize,
    len: usize,
    base: usize,
}

impl<'a, F: Float> Prog<'a, F> {
    /// Fresh registers for one thread.
    pub fn regs(&self) -> Regs<F> {
        Regs {
            num: (0..self.regs).map(|_| vec![F::ZERO; SPAN]).collect(),
            mask: (0..self.masks).map(|_| vec![false; SPAN]).collect(),
        }
    }

    /// The program is a leaf of the output's shape read as it is: its
    /// numbers, to use without copying.
    pub fn direct(&self) -> Option<&'a [F]> {
        match (self.result, self.code.is_empty()) {
            (Src::Leaf(k), true) => {
                let l = self.leaves[k];
                (l.lay == Lay::Full && !l.target).then_some(l.data)
            }
            _ => None,
        }
    }

    /// Evaluates the block of rows `r0..r0 + nr` (`cols` wide) span by span,
    /// handing each span's flat range within the block and its value to
    /// `put`; the target's numbers are `target` (the block's).
    pub fn run_block(
        &self,
        regs: &mut Regs<F>,
        (r0, nr, cols): (usize, usize, usize),
        target: &mut [F],
        mut put: impl FnMut(&mut [F], std::ops::Range<usize>, &Nums<'_, F>),
    ) {
        let base = r0 * cols;
        let mut spot = |at: usize, i: usize, j0: usize, len: usize| {
            let s = Spot {
                i,
                j0,
                at,
                len,
                base,
            };
            self.run_span(regs, s, target);
            let res = operand(self.result, &regs.num, &self.leaves, s, &[]);
            put(target, at - base..at - base + len, &res);
        };
        if self.flat {
            let n = nr * cols;
            let mut k = 0;
            while k < n {
                let len = SPAN.min(n - k);
                spot(base + k, 0, 0, len);
                k += len;
            }
        } else {
            for i in r0..r0 + nr {
                let mut j0 = 0;
                while j0 < cols {
                    let len = SPAN.min(cols - j0);
                    spot(i * cols + j0, i, j0, len);
                    j0 += len;
                }
            }
        }
    }

    fn run_span(&self, regs: &mut Regs<F>, s: Spot, target: &[F]) {
        let len = s.len;
        let leaves = &self.leaves[..];
        for ins in &self.code {
            match ins {
                Ins::Copy { a, ops, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    let x = operand(*a, &regs.num, leaves, s, target);
                    zip_into(&mut out[..len], (1, len), &x, &Nums::One(F::ZERO), |x, _| x);
                    super::exec::apply_ops(&mut out[..len], ops);
                    regs.num[*dst] = out;
                }
                Ins::Neg { a, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    if *a == Src::Reg(*dst) {
                        out[..len].iter_mut().for_each(|v| *v = -*v);
                    } else {
                        let x = operand(*a, &regs.num, leaves, s, target);
                        zip_into(
                            &mut out[..len],
                            (1, len),
                            &x,
                            &Nums::One(F::ZERO),
                            |x, _| -x,
                        );
                    }
                    regs.num[*dst] = out;
                }
                Ins::Bin { op, a, b, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    let o = &mut out[..len];
                    if *a == Src::Reg(*dst) {
                        let y = operand(*b, &regs.num, leaves, s, target);
                        per_op!(*op, |f| update_in_place(o, (1, len), &y, f));
                    } else if *b == Src::Reg(*dst) {
                        let x = operand(*a, &regs.num, leaves, s, target);
                        per_op!(*op, |f| update_in_place(o, (1, len), &x, |o, x| f(x, o)));
                    } else {
                        let x = operand(*a, &regs.num, leaves, s, target);
                        let y = operand(*b, &regs.num, leaves, s, target);
                        per_op!(*op, |f| zip_into(o, (1, len), &x, &y, f));
                    }
                    regs.num[*dst] = out;
                }
                Ins::Func2 { f, a, b, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    let o = &mut out[..len];
                    let y = operand(*b, &regs.num, leaves, s, target);
                    if *a == Src::Reg(*dst) {
                        per_func!(*f, |g| update_in_place(o, (1, len), &y, g));
                    } else {
                        let x = operand(*a, &regs.num, leaves, s, target);
                        per_func!(*f, |g| zip_into(o, (1, len), &x, &y, g));
                    }
                    regs.num[*dst] = out;
                }
                Ins::Func3 { f, a, b, c, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    let x = operand(*a, &regs.num, leaves, s, target);
                    let y = operand(*b, &regs.num, leaves, s, target);
                    let z = operand(*c, &regs.num, leaves, s, target);
                    for (k, o) in out[..len].iter_mut().enumerate() {
                        *o = match f {
                            Func::Float => x.at(k),
                            f => f.apply(x.at(k), y.at(k), z.at(k)),
                        };
                    }
                    regs.num[*dst] = out;
                }
                Ins::Cmp { op, a, b, dst } => {
                    let x = operand(*a, &regs.num, leaves, s, target);
                    let y = operand(*b, &regs.num, leaves, s, target);
                    let op = *op;
                    zip_into(&mut regs.mask[*dst][..len], (1, len), &x, &y, |x, y| {
                        op.compare(x, y)
                    });
                }
                Ins::Logic { op, a, b, dst } => {
                    let mut out = std::mem::take(&mut regs.mask[*dst]);
                    let get = |m: &MSrc, k: usize| match m {
                        MSrc::Imm(b) => *b,
                        MSrc::Reg(r) => regs.mask[*r][k],
                    };
                    for (k, o) in out[..len].iter_mut().enumerate() {
                        *o = op.logic(get(a, k), get(b, k));
                    }
                    regs.mask[*dst] = out;
                }
                Ins::Not { a, dst } => {
                    let mut out = std::mem::take(&mut regs.mask[*dst]);
                    for (k, o) in out[..len].iter_mut().enumerate() {
                        *o = !regs.mask[*a][k];
                    }
                    regs.mask[*dst] = out;
                }
                Ins::Select { m, a, b, dst } => {
                    let mut out = std::mem::take(&mut regs.num[*dst]);
                    let x = operand(*a, &regs.num, leaves, s, target);
                    let y = operand(*b, &regs.num, leaves, s, target);
                    let mask = &regs.mask[*m];
                    for (k, o) in out[..len].iter_mut().enumerate() {
                        *o = if mask[k] { x.at(k) } else { y.at(k) };
                    }
                    regs.num[*dst] = out;
                }
            }
        }
    }
}

/// The numbers of `src` over span `s`.
fn operand<'x, F: Float>(
    src: Src<F>,
    regs: &'x [Vec<F>],
    leaves: &[Leaf<'x, F>],
    s: Spot,
    target: &'x [F],
) -> Nums<'x, F> {
    match src {
        Src::Imm(x) => Nums::One(x),
        Src::Reg(r) => flat(&regs[r][..s.len]),
        Src::Leaf(k) => {
            let l = leaves[k];
            let (data, at) = if l.target {
                (target, s.at - s.base)
            } else {
                (l.data, s.at)
            };
            match l.lay {
                Lay::Full => flat(&data[at..at + s.len]),
                Lay::Row => flat(&data[s.j0..s.j0 + s.len]),
                Lay::Col => Nums::One(data[s.i]),
                Lay::One => Nums::One(data[0]),
            }
        }
    }
}

/// A value while a program is built: a per-step number or boolean (folded
/// in f64 as the tree walk folds it), numbers or booleans per element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Opd<F> {
    Num(f64),
    Bool(bool),
    Nums(Src<F>),
    Mask(usize),
}

/// A program being built for an output of `dims`; each method mirrors the
/// function of ops.rs the tree walk calls (named in its comment) and gives
/// `None` where the program does not cover a case (the tree walk runs).
pub(super) struct Build<'a, F> {
    dims: (usize, usize),
    leaves: Vec<Leaf<'a, F>>,
    code: Vec<Ins<F>>,
    regs: usize,
    free: Vec<usize>,
    masks: usize,
    free_masks: Vec<usize>,
    flat: bool,
}

impl<'a, F: Float> Build<'a, F> {
    /// An empty program for an output of `rows x cols`.
    pub fn new(dims: (usize, usize)) -> Self {
        Build {
            dims,
            leaves: Vec::new(),
            code: Vec::new(),
            regs: 0,
            free: Vec::new(),
            masks: 0,
            free_masks: Vec::new(),
            flat: true,
        }
    }

    /// The output's rows and columns.
    pub fn dims(&self) -> (usize, usize) {
        self.dims
    }

    /// The program giving `result`.
    pub fn finish(mut self, result: Opd<F>) -> Option<Prog<'a, F>> {
        let result = match result {
            Opd::Num(x) => Src::Imm(F::from_f64(x)),
            Opd::Nums(Src::Leaf(k)) if self.leaves[k].target => {
                // The value is the target itself: copied, as the target's
                // numbers are overwritten with it.
                let dst = self.reg();
                self.code.push(Ins::Copy {
                    a: Src::Leaf(k),
                    ops: Vec::new(),
                    dst,
                });
                Src::Reg(dst)
            }
            Opd::Nums(s) => s,
            Opd::Bool(_) | Opd::Mask(_) => return None,
        };
        Some(Prog {
            leaves: self.leaves,
            code: self.code,
            result,
            regs: self.regs,
            masks: self.masks,
            flat: self.flat,
        })
    }

    fn reg(&mut self) -> usize {
        self.free.pop().unwrap_or_else(|| {
            self.regs += 1;
            self.regs - 1
        })
    }

    fn mask(&mut self) -> usize {
        self.free_masks.pop().unwrap_or_else(|| {
            self.masks += 1;
            self.masks - 1
        })
    }

    fn release(&mut self, s: Src<F>) {
        if let Src::Reg(r) = s {
            if !self.free.contains(&r) {
                self.free.push(r);
            }
        }
    }

    fn release_mask(&mut self, m: MSrc) {
        if let MSrc::Reg(r) = m {
            if !self.free_masks.contains(&r) {
                self.free_masks.push(r);
            }
        }
    }

    /// An array of `rows x cols` (`data`, with pending updates `ops`), or
    /// the target of the store (`target`, read from the block written).
    pub fn leaf(
        &mut self,
        data: &'a [F],
        (r, c): (usize, usize),
        ops: &[(BinOp, F)],
        target: bool,
    ) -> Option<Opd<F>> {
        let (rows, cols) = self.dims;
        let lay = if (r, c) == (rows, cols) {
            Lay::Full
        } else if (r, c) == (1, cols) {
            Lay::Row
        } else if (r, c) == (rows, 1) {
            Lay::Col
        } else if (r, c) == (1, 1) {
            Lay::One
        } else {
            return None;
        };
        if !target && data.len() < r * c {
            return None;
        }
        if !target && matches!(lay, Lay::Row | Lay::Col) {
            self.flat = false;
        }
        let leaf = Leaf { data, lay, target };
        let same =
            |l: &Leaf<'a, F>| l.lay == lay && l.target == target && std::ptr::eq(l.data, data);
        let k = match self.leaves.iter().position(same) {
            Some(k) => k,
            None => {
                self.leaves.push(leaf);
                self.leaves.len() - 1
            }
        };
        if ops.is_empty() || target {
            return Some(Opd::Nums(Src::Leaf(k)));
        }
        let dst = self.reg();
        self.code.push(Ins::Copy {
            a: Src::Leaf(k),
            ops: ops.to_vec(),
            dst,
        });
        Some(Opd::Nums(Src::Reg(dst)))
    }

    /// Numbers of `x` as ops.rs's `nums` reads them (a per-step number
    /// rounded to the element type).
    fn nums(x: Opd<F>) -> Option<Src<F>> {
        match x {
            Opd::Num(v) => Some(Src::Imm(F::from_f64(v))),
            Opd::Nums(s) => Some(s),
            Opd::Bool(_) | Opd::Mask(_) => None,
        }
    }

    /// ops.rs's `unary`.
    pub fn unary(&mut self, op: optdsl_lang::ast::UnOp, x: Opd<F>) -> Option<Opd<F>> {
        use optdsl_lang::ast::UnOp;
        Some(match (op, x) {
            (UnOp::Neg, Opd::Num(v)) => Opd::Num(-v),
            (UnOp::Not, Opd::Bool(b)) => Opd::Bool(!b),
            (UnOp::Neg, Opd::Nums(a)) => {
                let dst = match a {
                    Src::Reg(r) => r,
                    _ => self.reg(),
                };
                self.code.push(Ins::Neg { a, dst });
                Opd::Nums(Src::Reg(dst))
            }
            (UnOp::Not, Opd::Mask(a)) => {
                let dst = self.mask();
                self.code.push(Ins::Not { a, dst });
                self.release_mask(MSrc::Reg(a));
                Opd::Mask(dst)
            }
            (_, other) => other,
        })
    }

    /// ops.rs's `binary` (the caller has turned `x^2` into `x * x`).
    pub fn binary(&mut self, op: BinOp, x: Opd<F>, y: Opd<F>) -> Option<Opd<F>> {
        match (x, y) {
            (Opd::Num(a), Opd::Num(b)) => {
                return Some(if op.is_arith() {
                    Opd::Num(op.arith(a, b))
                } else {
                    Opd::Bool(op.compare(a, b))
                })
            }
            (Opd::Bool(a), Opd::Bool(b)) => return Some(Opd::Bool(op.logic(a, b))),
            _ => {}
        }
        if op.is_logic() {
            let m = |v: Opd<F>| match v {
                Opd::Bool(b) => Some(MSrc::Imm(b)),
                Opd::Mask(r) => Some(MSrc::Reg(r)),
                _ => None,
            };
            let (a, b) = (m(x)?, m(y)?);
            let dst = self.mask();
            self.code.push(Ins::Logic { op, a, b, dst });
            self.release_mask(a);
            self.release_mask(b);
            return Some(Opd::Mask(dst));
        }
        let (a, b) = (Self::nums(x)?, Self::nums(y)?);
        if op.is_arith() {
            // In place where an operand is a register, as `binary` writes
            // into an owned temporary (the same numbers either way).
            let dst = match (a, b) {
                (Src::Reg(r), _) if a != b => r,
                (_, Src::Reg(r)) if a != b => r,
                _ => self.reg(),
            };
            self.code.push(Ins::Bin { op, a, b, dst });
            for s in [a, b] {
                if s != Src::Reg(dst) {
                    self.release(s);
                }
            }
            return Some(Opd::Nums(Src::Reg(dst)));
        }
        let dst = self.mask();
        self.code.push(Ins::Cmp { op, a, b, dst });
        self.release(a);
        self.release(b);
        Some(Opd::Mask(dst))
    }

    /// ops.rs's `func`.
    pub fn func(&mut self, f: Func, args: &[Opd<F>]) -> Option<Opd<F>> {
        if args.iter().all(|a| matches!(a, Opd::Num(_))) {
            let at = |i: usize| match args.get(i) {
                Some(Opd::Num(x)) => *x,
                _ => 0.0,
            };
            return Some(Opd::Num(f.apply_scalar::<F>(at(0), at(1), at(2))));
        }
        let arg = |i: usize| {
            args.get(i)
                .map_or(Some(Src::Imm(F::ZERO)), |&a| Self::nums(a))
        };
        let (a, b) = (arg(0)?, arg(1)?);
        let ins = if f.arity() <= 2 {
            let dst = match a {
                Src::Reg(r) if a != b => r,
                _ => self.reg(),
            };
            self.release(b);
            Ins::Func2 { f, a, b, dst }
        } else {
            let c = arg(2)?;
            let dst = self.reg();
            for s in [a, b, c] {
                self.release(s);
            }
            Ins::Func3 { f, a, b, c, dst }
        };
        let dst = match ins {
            Ins::Func2 { dst, .. } | Ins::Func3 { dst, .. } => dst,
            _ => return None,
        };
        self.code.push(ins);
        // A register freed above is only reused by later instructions.
        self.free.retain(|&r| r != dst);
        Some(Opd::Nums(Src::Reg(dst)))
    }

    /// ops.rs's `select` for a condition per element.
    pub fn select(&mut self, m: usize, x: Opd<F>, y: Opd<F>) -> Option<Opd<F>> {
        let (a, b) = (Self::nums(x)?, Self::nums(y)?);
        let dst = self.reg();
        self.code.push(Ins::Select { m, a, b, dst });
        self.release(a);
        self.release(b);
        self.release_mask(MSrc::Reg(m));
        Some(Opd::Nums(Src::Reg(dst)))
    }
}
