//! The block interpreter of the IR, for rules read from text at run time.
//! A pass is a tape of element operations; the driver hands the interpreter
//! the same segments it hands a compiled kernel, and the interpreter runs the
//! tape over sub-blocks of [`SUB`] elements that stay in cache, one
//! operation at a time over the sub-block (as numexpr evaluates array
//! expressions). Every operation is the language's own definition
//! (`optdsl_lang::functions`) in the element type, in the same order as the
//! compiled kernel, with no fused multiply-add: the bits are the compiled
//! rule's.

use crate::driver::{Draws, Kernel, Walk, LANES};
use crate::exec::Simd;
use crate::float::Float;
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::eval::Scalar;
use optdsl_lang::ir::{Id, Kind, Op, Program, Slot, Ty};
use optdsl_lang::passes::Pass;
use optdsl_lang::random::Key;
use optdsl_lang::{Draw, Func, Reduction};
use std::any::{Any, TypeId};
use std::cell::RefCell;

/// Elements per sub-block: a multiple of [`LANES`], small enough that a
/// rule's temporaries stay in the first-level cache.
pub const SUB: usize = 256;

/// Elements between the starts of two temporaries: a sub-block and a little
/// more, so that temporaries do not start at the same offset within a 4 KiB
/// page (loads that look like they alias a recent store wait for it).
const STRIDE: usize = SUB + 48;

/// Where an operand of the tape lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    /// Read slice `k` of the pass.
    Read(usize),
    /// Written slice `k` (its value before this element's store).
    Write(usize),
    /// Number temporary `k`.
    Num(usize),
    /// Boolean temporary `k`.
    Bool(usize),
}

/// One operation over a sub-block.
#[derive(Debug, Clone, Copy)]
enum Instr {
    Neg(usize, Src),
    Not(usize, Src),
    Arith(BinOp, usize, Src, Src),
    /// `a op c` (or `c op a` when the flag is set) with `c` a per-step value.
    ArithScalar(BinOp, usize, Src, usize, bool),
    /// `Arith` whose result goes straight into written slice `k`.
    ArithTo(BinOp, usize, Src, Src),
    /// `ArithScalar` whose result goes straight into written slice `k`.
    ArithScalarTo(BinOp, usize, Src, usize, bool),
    /// Written slice `k` updated in place: `k op b` (or `b op k` when the
    /// flag is clear).
    ArithInto(BinOp, usize, Src, bool),
    /// Written slice `k` updated in place with a per-step value: `k op c`
    /// (or `c op k` when the flag is set).
    ArithScalarInto(BinOp, usize, usize, bool),
    Compare(BinOp, usize, Src, Src),
    Logic(BinOp, usize, Src, Src),
    Func(Func, usize, [Src; 3]),
    Select(usize, Src, Src, Src),
    SelectBool(usize, Src, Src, Src),
    Copy(usize, Src),
    /// Number temporary `k` drawn from a stream: `(draw, stream, k)`.
    Draw(Draw, u32, usize),
}

/// A pass ready to run this step: the tape with per-step values resolved.
pub struct Tape<F> {
    instrs: Vec<Instr>,
    /// Number temporaries holding a per-step value, broadcast once per run.
    num_consts: Vec<(usize, F)>,
    /// The per-step values arithmetic reads as scalars.
    scalars: Vec<F>,
    bool_consts: Vec<(usize, bool)>,
    nums: usize,
    bools: usize,
    stores: Vec<(usize, Src)>,
    reductions: Vec<(Reduction, Src)>,
    /// What the draws are keyed by ([`Tape::with_draws`]): each stream's
    /// key, the step, and the whole tensor's index of element 0.
    keys: Vec<Key>,
    step: u64,
    first: u64,
}

impl<F: Float> Tape<F> {
    /// The tape of `pass` of `p`, with `known[id]` the per-step values of
    /// this step: selections on per-step conditions follow their branch,
    /// operations nothing needs are dropped, and a buffer written with its own
    /// value is not touched.
    pub fn new(p: &Program, pass: &Pass, known: &[Option<Scalar>]) -> Tape<F> {
        let resolve = |mut id: Id| loop {
            match p.values[id].op {
                Op::Select(c, a, b) if p.values[c].kind != Kind::Element => {
                    id = if known[c].is_some_and(Scalar::truth) {
                        a
                    } else {
                        b
                    };
                }
                _ => return id,
            }
        };
        let reads: Vec<Slot> = pass.reads().collect();
        let written: Vec<Slot> = pass.written().collect();
        let stores_wanted: Vec<(usize, Id)> = pass
            .writes
            .iter()
            .map(|&(slot, id)| {
                (
                    written.iter().position(|&s| s == slot).unwrap_or(0),
                    resolve(id),
                )
            })
            .filter(|&(k, id)| p.values[id].op.slot() != Some(written[k]))
            .collect();
        let roots: Vec<Id> = stores_wanted
            .iter()
            .map(|s| s.1)
            .chain(pass.reductions.iter().map(|r| resolve(r.2)))
            .collect();
        // What the roots need, through resolved selections.
        let mut need = vec![false; p.values.len()];
        let mut stack = roots.clone();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut need[id], true) || p.values[id].kind != Kind::Element {
                continue;
            }
            stack.extend(p.values[id].op.operands().into_iter().map(resolve));
        }
        let mut tape = Tape {
            instrs: Vec::new(),
            num_consts: Vec::new(),
            scalars: Vec::new(),
            bool_consts: Vec::new(),
            nums: 0,
            bools: 0,
            stores: Vec::new(),
            reductions: Vec::new(),
            keys: Vec::new(),
            step: 0,
            first: 0,
        };
        let mut src: Vec<Option<Src>> = vec![None; p.values.len()];
        let operand = |tape: &mut Tape<F>, src: &mut Vec<Option<Src>>, id: Id| -> Src {
            let id = resolve(id);
            if let Some(s) = src[id] {
                return s;
            }
            // A per-step value (or constant): broadcast into a temporary.
            let s = match known[id].unwrap_or(Scalar::Num(f64::NAN)) {
                Scalar::Num(x) => {
                    tape.num_consts.push((tape.nums, F::from_f64(x)));
                    tape.nums += 1;
                    Src::Num(tape.nums - 1)
                }
                Scalar::Bool(b) => {
                    tape.bool_consts.push((tape.bools, b));
                    tape.bools += 1;
                    Src::Bool(tape.bools - 1)
                }
            };
            src[id] = Some(s);
            s
        };
        for &id in &pass.elements {
            if !need[id] || resolve(id) != id {
                continue;
            }
            let v = &p.values[id];
            if let Some(slot) = v.op.slot() {
                src[id] = Some(match written.iter().position(|&s| s == slot) {
                    Some(k) => Src::Write(k),
                    None => Src::Read(reads.iter().position(|&s| s == slot).unwrap_or(0)),
                });
                continue;
            }
            let ops: Vec<Src> =
                v.op.operands()
                    .into_iter()
                    .map(|a| operand(&mut tape, &mut src, a))
                    .collect();
            let is_bool = v.ty == Ty::Bool;
            let out = if is_bool {
                tape.bools += 1;
                tape.bools - 1
            } else {
                tape.nums += 1;
                tape.nums - 1
            };
            let at = |i: usize| ops[i.min(ops.len() - 1)];
            let instr = match &v.op {
                Op::Unary(UnOp::Neg, _) => Instr::Neg(out, at(0)),
                Op::Unary(UnOp::Not, _) => Instr::Not(out, at(0)),
                Op::Binary(op, a, b) => {
                    let scalar_of = |id: Id| {
                        let id = resolve(id);
                        match (p.values[id].kind, known[id]) {
                            (Kind::Const | Kind::Scalar, Some(Scalar::Num(x))) => {
                                Some(F::from_f64(x))
                            }
                            _ => None,
                        }
                    };
                    if op.is_arith() && *op != BinOp::Pow {
                        match (scalar_of(*a), scalar_of(*b)) {
                            (None, Some(c)) => {
                                tape.scalars.push(c);
                                Instr::ArithScalar(*op, out, at(0), tape.scalars.len() - 1, false)
                            }
                            (Some(c), None) => {
                                tape.scalars.push(c);
                                Instr::ArithScalar(*op, out, at(1), tape.scalars.len() - 1, true)
                            }
                            _ => Instr::Arith(*op, out, at(0), at(1)),
                        }
                    } else if op.is_arith() {
                        Instr::Arith(*op, out, at(0), at(1))
                    } else if op.is_logic() || p.values[*a].ty == Ty::Bool {
                        Instr::Logic(*op, out, at(0), at(1))
                    } else {
                        Instr::Compare(*op, out, at(0), at(1))
                    }
                }
                Op::Func(f, _) => Instr::Func(*f, out, [at(0), at(1), at(2)]),
                Op::Select(..) if is_bool => Instr::SelectBool(out, at(0), at(1), at(2)),
                Op::Select(..) => Instr::Select(out, at(0), at(1), at(2)),
                Op::Draw(d, stream) => Instr::Draw(*d, *stream, out),
                _ => continue,
            };
            tape.instrs.push(instr);
            src[id] = Some(if is_bool {
                Src::Bool(out)
            } else {
                Src::Num(out)
            });
        }
        for &(k, id) in &stores_wanted {
            let mut s = operand(&mut tape, &mut src, id);
            // A store of another written slice's old value: keep a copy, for
            // that slice may be stored first.
            if matches!(s, Src::Write(j) if j != k) {
                tape.nums += 1;
                tape.instrs.push(Instr::Copy(tape.nums - 1, s));
                s = Src::Num(tape.nums - 1);
            }
            tape.stores.push((k, s));
        }
        for &(r, _, arg) in &pass.reductions {
            let s = operand(&mut tape, &mut src, arg);
            tape.reductions.push((r, s));
        }
        tape.store_in_place();
        tape.reuse_temporaries();
        tape
    }

    /// This tape with its random draws keyed by `draws`.
    pub fn with_draws(mut self, draws: Draws<'_>) -> Self {
        self.keys = draws.keys.to_vec();
        self.step = draws.step;
        self.first = draws.first;
        self
    }

    /// The draws of the elements from `at` on.
    fn draws(&self, at: usize) -> Draws<'_> {
        Draws {
            keys: &self.keys,
            step: self.step,
            first: self.first,
        }
        .at(at)
    }

    /// Gives temporaries whose last reader has run to later instructions:
    /// a rule of a hundred operations then computes in a few temporaries
    /// that stay in the first-level cache, instead of a hundred sub-blocks
    /// that do not (AdaSecant: 94 temporaries of 304 elements, 228 KiB in
    /// f64, against 32 KiB of L1). An instruction's result never takes the
    /// place of one of its own operands (no slice is read and written at
    /// once); broadcast per-step values keep theirs (filled once per run);
    /// what the stores and reductions read lives to the end.
    fn reuse_temporaries(&mut self) {
        let end = self.instrs.len();
        let (mut last_num, mut last_bool) = (vec![0; self.nums], vec![0; self.bools]);
        let mut note = |s: Src, at: usize| match s {
            Src::Num(k) => last_num[k] = last_num[k].max(at),
            Src::Bool(k) => last_bool[k] = last_bool[k].max(at),
            _ => {}
        };
        for (at, i) in self.instrs.iter().enumerate() {
            for s in reads_of(i) {
                note(s, at);
            }
        }
        for &(_, s) in &self.stores {
            note(s, end);
        }
        for &(_, s) in &self.reductions {
            note(s, end);
        }
        let mut num_map: Vec<Option<usize>> = vec![None; self.nums];
        let mut bool_map: Vec<Option<usize>> = vec![None; self.bools];
        let (mut nums, mut bools) = (0usize, 0usize);
        for c in &mut self.num_consts {
            num_map[c.0] = Some(nums);
            c.0 = nums;
            nums += 1;
        }
        for c in &mut self.bool_consts {
            bool_map[c.0] = Some(bools);
            c.0 = bools;
            bools += 1;
        }
        let (mut free_nums, mut free_bools): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for at in 0..end {
            let ins = reads_of(&self.instrs[at]);
            if let Some(s) = out_of_mut(&mut self.instrs[at]) {
                match s {
                    Out::Num(k) => {
                        let slot = free_nums.pop().unwrap_or_else(|| {
                            nums += 1;
                            nums - 1
                        });
                        num_map[*k] = Some(slot);
                        *k = slot;
                    }
                    Out::Bool(k) => {
                        let slot = free_bools.pop().unwrap_or_else(|| {
                            bools += 1;
                            bools - 1
                        });
                        bool_map[*k] = Some(slot);
                        *k = slot;
                    }
                }
            }
            // Operands read for the last time free their places, after
            // the result took its own.
            let mut freed = Vec::new();
            for s in ins {
                if freed.contains(&s) {
                    continue;
                }
                freed.push(s);
                match s {
                    Src::Num(k)
                        if last_num[k] == at
                            && !self.num_consts.iter().any(|c| Some(c.0) == num_map[k]) =>
                    {
                        free_nums.extend(num_map[k]);
                    }
                    Src::Bool(k)
                        if last_bool[k] == at
                            && !self.bool_consts.iter().any(|c| Some(c.0) == bool_map[k]) =>
                    {
                        free_bools.extend(bool_map[k]);
                    }
                    _ => {}
                }
            }
            map_reads(&mut self.instrs[at], |s| rename(s, &num_map, &bool_map));
        }
        for st in &mut self.stores {
            rename(&mut st.1, &num_map, &bool_map);
        }
        for r in &mut self.reductions {
            rename(&mut r.1, &num_map, &bool_map);
        }
        self.nums = nums;
        self.bools = bools;
    }

    /// Lets the arithmetic that computes a stored value write it straight
    /// into its slice, where nothing after it reads that slice's old value:
    /// one pass over the sub-block fewer per such store.
    fn store_in_place(&mut self) {
        let mut kept = Vec::new();
        let stores = std::mem::take(&mut self.stores);
        for (n, &(k, value)) in stores.iter().enumerate() {
            let Src::Num(t) = value else {
                kept.push((k, value));
                continue;
            };
            let producer = self.instrs.iter().position(|i| match *i {
                Instr::Arith(_, o, _, _) | Instr::ArithScalar(_, o, _, _, _) => o == t,
                _ => false,
            });
            let other_stores_read = stores
                .iter()
                .enumerate()
                .any(|(m, &(_, v))| m != n && (v == value || v == Src::Write(k)));
            let Some(at) = producer else {
                kept.push((k, value));
                continue;
            };
            let later_reads_old = self.instrs[at + 1..]
                .iter()
                .flat_map(reads_of)
                .chain(self.reductions.iter().map(|r| r.1))
                .any(|s| s == Src::Write(k));
            if other_stores_read || later_reads_old {
                kept.push((k, value));
                continue;
            }
            let slot = Src::Write(k);
            // The slice as an operand of its own producer: updated in place
            // (once; a slice read twice by its producer keeps its store).
            let replaced = match self.instrs[at] {
                Instr::Arith(op, _, a, b) if a == slot && b != slot => {
                    Some(Instr::ArithInto(op, k, b, true))
                }
                Instr::Arith(op, _, a, b) if b == slot && a != slot => {
                    Some(Instr::ArithInto(op, k, a, false))
                }
                Instr::Arith(op, _, a, b) if a != slot && b != slot => {
                    Some(Instr::ArithTo(op, k, a, b))
                }
                Instr::ArithScalar(op, _, a, c, sw) if a == slot => {
                    Some(Instr::ArithScalarInto(op, k, c, sw))
                }
                Instr::ArithScalar(op, _, a, c, sw) => Some(Instr::ArithScalarTo(op, k, a, c, sw)),
                _ => None,
            };
            let Some(replaced) = replaced else {
                kept.push((k, value));
                continue;
            };
            self.instrs[at] = replaced;
            let rename = |x: &mut Src| {
                if *x == value {
                    *x = Src::Write(k);
                }
            };
            for i in &mut self.instrs[at + 1..] {
                map_reads(i, &rename);
            }
            for r in &mut self.reductions {
                rename(&mut r.1);
            }
        }
        self.stores = kept;
    }
}

/// A temporary an instruction writes.
enum Out<'a> {
    Num(&'a mut usize),
    Bool(&'a mut usize),
}

/// The temporary `i` writes (none when it writes a slice).
fn out_of_mut(i: &mut Instr) -> Option<Out<'_>> {
    match i {
        Instr::Neg(k, _)
        | Instr::Arith(_, k, _, _)
        | Instr::ArithScalar(_, k, _, _, _)
        | Instr::Func(_, k, _)
        | Instr::Select(k, _, _, _)
        | Instr::Copy(k, _)
        | Instr::Draw(_, _, k) => Some(Out::Num(k)),
        Instr::Not(k, _)
        | Instr::Compare(_, k, _, _)
        | Instr::Logic(_, k, _, _)
        | Instr::SelectBool(k, _, _, _) => Some(Out::Bool(k)),
        Instr::ArithTo(..)
        | Instr::ArithScalarTo(..)
        | Instr::ArithInto(..)
        | Instr::ArithScalarInto(..) => None,
    }
}

/// The operands `i` reads (a slice updated in place included).
fn reads_of(i: &Instr) -> Vec<Src> {
    match *i {
        Instr::Neg(_, a) | Instr::Not(_, a) | Instr::Copy(_, a) => vec![a],
        Instr::ArithScalar(_, _, a, _, _) | Instr::ArithScalarTo(_, _, a, _, _) => vec![a],
        Instr::ArithInto(_, k, b, _) => vec![Src::Write(k), b],
        Instr::ArithScalarInto(_, k, _, _) => vec![Src::Write(k)],
        Instr::Arith(_, _, a, b)
        | Instr::ArithTo(_, _, a, b)
        | Instr::Compare(_, _, a, b)
        | Instr::Logic(_, _, a, b) => vec![a, b],
        Instr::Func(_, _, abc) => abc.to_vec(),
        Instr::Select(_, c, a, b) | Instr::SelectBool(_, c, a, b) => vec![c, a, b],
        Instr::Draw(..) => Vec::new(),
    }
}

/// Applies `f` to each operand `i` reads from a temporary or a slice (not
/// to a slice it updates in place).
fn map_reads(i: &mut Instr, mut f: impl FnMut(&mut Src)) {
    match i {
        Instr::Neg(_, a) | Instr::Not(_, a) | Instr::Copy(_, a) => f(a),
        Instr::ArithScalar(_, _, a, _, _) | Instr::ArithScalarTo(_, _, a, _, _) => f(a),
        Instr::ArithInto(_, _, b, _) => f(b),
        Instr::ArithScalarInto(..) | Instr::Draw(..) => {}
        Instr::Arith(_, _, a, b)
        | Instr::ArithTo(_, _, a, b)
        | Instr::Compare(_, _, a, b)
        | Instr::Logic(_, _, a, b) => {
            f(a);
            f(b);
        }
        Instr::Func(_, _, abc) => abc.iter_mut().for_each(f),
        Instr::Select(_, c, a, b) | Instr::SelectBool(_, c, a, b) => {
            f(c);
            f(a);
            f(b);
        }
    }
}

/// A temporary operand under its new place.
fn rename(s: &mut Src, nums: &[Option<usize>], bools: &[Option<usize>]) {
    match s {
        Src::Num(k) => *k = nums[*k].unwrap_or(*k),
        Src::Bool(k) => *k = bools[*k].unwrap_or(*k),
        _ => {}
    }
}

/// The interpreter as a driver kernel, at one SIMD level.
pub struct Interp<'a, F> {
    tape: &'a Tape<F>,
    simd: Simd,
}

impl<'a, F> Interp<'a, F> {
    /// `tape` run with instructions of `simd` (or below).
    pub fn new(tape: &'a Tape<F>, simd: Simd) -> Self {
        Interp { tape, simd }
    }
}

impl<F: Float> Kernel<F> for Interp<'_, F> {
    fn run(
        &self,
        at: usize,
        reads: &[&[F]],
        writes: &mut [&mut [F]],
        acc: &mut [[F; LANES]],
        walk: Walk,
    ) {
        let tape = self.tape;
        // The scratch is fetched here, outside the SIMD copies: code inside
        // the thread-local's closure would be compiled without their features.
        with_scratch::<F, _>(tape.nums * STRIDE, tape.bools * STRIDE, |nums, bools| {
            #[cfg(target_arch = "x86_64")]
            {
                if self.simd >= Simd::Avx512 {
                    // SAFETY: the driver hands out only levels this CPU has.
                    return unsafe { run_avx512(tape, at, reads, writes, acc, walk, nums, bools) };
                }
                if self.simd >= Simd::Avx2 {
                    // SAFETY: the driver hands out only levels this CPU has.
                    return unsafe { run_avx2(tape, at, reads, writes, acc, walk, nums, bools) };
                }
            }
            run(tape, at, reads, writes, acc, walk, nums, bools)
        })
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_avx2<F: Float>(
    tape: &Tape<F>,
    at: usize,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    acc: &mut [[F; LANES]],
    walk: Walk,
    nums: &mut [F],
    bools: &mut [bool],
) {
    run(tape, at, reads, writes, acc, walk, nums, bools)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_avx512<F: Float>(
    tape: &Tape<F>,
    at: usize,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    acc: &mut [[F; LANES]],
    walk: Walk,
    nums: &mut [F],
    bools: &mut [bool],
) {
    run(tape, at, reads, writes, acc, walk, nums, bools)
}

/// The operand arrays of one sub-block.
struct Arrays<'a, F> {
    reads: &'a [&'a [F]],
    writes: [*mut F; crate::driver::MAX_SLOTS],
    nums: *mut F,
    bools: *mut bool,
    at: usize,
    len: usize,
}

impl<F: Copy> Arrays<'_, F> {
    #[inline(always)]
    fn num(&self, s: Src) -> &[F] {
        match s {
            Src::Read(k) => &self.reads[k][self.at..self.at + self.len],
            // SAFETY: written slice k has at least at + len elements; while it
            // is read here no instruction writes it (see `store_in_place`).
            Src::Write(k) => unsafe {
                std::slice::from_raw_parts(self.writes[k].add(self.at), self.len)
            },
            // SAFETY: temporary k is SUB elements at k * SUB; no &mut to it is
            // live while an operand is read (each instruction writes its own).
            Src::Num(k) => unsafe {
                std::slice::from_raw_parts(self.nums.add(k * STRIDE), self.len)
            },
            Src::Bool(_) => &[],
        }
    }
    #[inline(always)]
    fn truth(&self, s: Src) -> &[bool] {
        match s {
            // SAFETY: as above.
            Src::Bool(k) => unsafe {
                std::slice::from_raw_parts(self.bools.add(k * STRIDE), self.len)
            },
            _ => &[],
        }
    }
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn out_num(&self, k: usize) -> &mut [F] {
        // SAFETY: temporary k is written by one instruction, and never read by it.
        unsafe { std::slice::from_raw_parts_mut(self.nums.add(k * STRIDE), self.len) }
    }
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn out_slot(&self, k: usize) -> &mut [F] {
        // SAFETY: the instruction writing slice k reads neither it nor a
        // value aliasing it (see `store_in_place`).
        unsafe { std::slice::from_raw_parts_mut(self.writes[k].add(self.at), self.len) }
    }
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn out_bool(&self, k: usize) -> &mut [bool] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.bools.add(k * STRIDE), self.len) }
    }
}

#[inline(always)]
fn map1<F: Copy>(out: &mut [F], a: &[F], f: impl Fn(F) -> F) {
    for (o, &x) in out.iter_mut().zip(a) {
        *o = f(x);
    }
}

#[inline(always)]
fn map2<F: Copy, T>(out: &mut [T], a: &[F], b: &[F], f: impl Fn(F, F) -> T) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

/// Runs `$body` with `$f` bound to a closure computing `op` (the language's
/// definition, `BinOp::arith`), one closure per arithmetic operator so each
/// loop is compiled, and vectorized, for its operator.
macro_rules! by_op {
    ($op:expr, $f:ident => $body:expr) => {
        match $op {
            BinOp::Add => {
                let $f = |x, y| BinOp::Add.arith(x, y);
                $body
            }
            BinOp::Sub => {
                let $f = |x, y| BinOp::Sub.arith(x, y);
                $body
            }
            BinOp::Mul => {
                let $f = |x, y| BinOp::Mul.arith(x, y);
                $body
            }
            BinOp::Div => {
                let $f = |x, y| BinOp::Div.arith(x, y);
                $body
            }
            op => {
                let $f = |x, y| op.arith(x, y);
                $body
            }
        }
    };
}

/// `out = a op b` for a comparison, one loop per operator (so that each is
/// compiled, and vectorized, for its operator rather than choosing it per
/// element).
#[inline(always)]
fn compare<F: Float>(op: BinOp, out: &mut [bool], a: &[F], b: &[F]) {
    match op {
        BinOp::Lt => map2(out, a, b, |x, y| BinOp::Lt.compare(x, y)),
        BinOp::Le => map2(out, a, b, |x, y| BinOp::Le.compare(x, y)),
        BinOp::Gt => map2(out, a, b, |x, y| BinOp::Gt.compare(x, y)),
        BinOp::Ge => map2(out, a, b, |x, y| BinOp::Ge.compare(x, y)),
        BinOp::Eq => map2(out, a, b, |x, y| BinOp::Eq.compare(x, y)),
        op => map2(out, a, b, |x, y| op.compare(x, y)),
    }
}

/// `out = a op b`.
#[inline(always)]
fn arith<F: Float>(op: BinOp, out: &mut [F], a: &[F], b: &[F]) {
    by_op!(op, f => map2(out, a, b, f))
}

/// `out = a op c` (or `c op a`) with a per-step value.
#[inline(always)]
fn arith_scalar<F: Float>(op: BinOp, out: &mut [F], a: &[F], c: F, swapped: bool) {
    by_op!(op, f => if swapped {
        map1(out, a, |x| f(c, x))
    } else {
        map1(out, a, |x| f(x, c))
    })
}

/// `x = x op b` (or `b op x`) over a slice updated in place.
#[inline(always)]
fn arith_into<F: Float>(op: BinOp, x: &mut [F], b: &[F], slot_left: bool) {
    by_op!(op, f => if slot_left {
        x.iter_mut().zip(b).for_each(|(o, &y)| *o = f(*o, y))
    } else {
        x.iter_mut().zip(b).for_each(|(o, &y)| *o = f(y, *o))
    })
}

/// `x = x op c` (or `c op x`) with a per-step value, in place.
#[inline(always)]
fn arith_scalar_into<F: Float>(op: BinOp, x: &mut [F], c: F, swapped: bool) {
    by_op!(op, f => if swapped {
        x.iter_mut().for_each(|o| *o = f(c, *o))
    } else {
        x.iter_mut().for_each(|o| *o = f(*o, c))
    })
}

#[inline(always)]
fn func<F: Float>(f: Func, out: &mut [F], a: &[F], b: &[F], c: &[F]) {
    match f {
        Func::Sqrt => map1(out, a, |x| Func::Sqrt.apply(x, x, x)),
        Func::Abs => map1(out, a, |x| Func::Abs.apply(x, x, x)),
        Func::Sign => map1(out, a, |x| Func::Sign.apply(x, x, x)),
        Func::Min => map2(out, a, b, |x, y| Func::Min.apply(x, y, y)),
        Func::Max => map2(out, a, b, |x, y| Func::Max.apply(x, y, y)),
        Func::Float => map1(out, a, |x| x),
        Func::Clamp => {
            for (((o, &x), &lo), &hi) in out.iter_mut().zip(a).zip(b).zip(c) {
                *o = Func::Clamp.apply(x, lo, hi);
            }
        }
        Func::Fma => {
            for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
                *o = x.mul_add(y, z);
            }
        }
        f => map1(out, a, |x| f.apply(x, x, x)),
    }
}

#[inline(always)]
fn accumulate<F: Float>(r: Reduction, acc: &mut [F; LANES], x: &[F], walk: Walk) {
    match walk {
        Walk::Chunks => {
            let mut go = |f: &dyn Fn(F, F) -> F| {
                for c in x.chunks_exact(LANES) {
                    for l in 0..LANES {
                        acc[l] = f(acc[l], c[l]);
                    }
                }
            };
            match r {
                Reduction::Sum | Reduction::Mean => go(&|a, v| Reduction::Sum.accumulate(a, v)),
                Reduction::Norm => go(&|a, v| Reduction::Norm.accumulate(a, v)),
                Reduction::MaxAbs => go(&|a, v| Reduction::MaxAbs.accumulate(a, v)),
            }
        }
        Walk::Single { lane0 } => {
            for (k, &v) in x.iter().enumerate() {
                acc[lane0 + k] = r.accumulate(acc[lane0 + k], v);
            }
        }
    }
}

/// How far ahead of the sub-block being computed the slices are fetched.
const AHEAD: usize = 2 * SUB;

/// Hints the cache lines of `from..from + len` of every slice.
#[inline(always)]
fn prefetch<'a, F: 'a>(slices: impl Iterator<Item = &'a [F]>, from: usize, len: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let end = (from + len).min(n);
        if from >= end {
            return;
        }
        let step = (64 / std::mem::size_of::<F>().max(1)).max(1);
        for s in slices {
            let mut i = from;
            while i < end {
                // SAFETY: a prefetch hint of an address inside the slice.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        s.as_ptr().add(i).cast(),
                    )
                };
                i += step;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slices, from, len, n);
}

/// Each thread's temporaries, one pair of buffers per element type, kept
/// from one call to the next (a kernel runs once per block segment: no
/// allocation there).
type Scratch = Vec<(TypeId, Box<dyn Any>)>;

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's temporaries: `nums` numbers and `bools`
/// booleans (their contents are whatever the last run left).
fn with_scratch<F: Float, R>(
    nums: usize,
    bools: usize,
    f: impl FnOnce(&mut [F], &mut [bool]) -> R,
) -> R {
    SCRATCH.with(|cell| {
        let mut all = cell.borrow_mut();
        let at = match all.iter().position(|(t, _)| *t == TypeId::of::<F>()) {
            Some(at) => at,
            None => {
                let fresh: (Vec<F>, Vec<bool>) = (Vec::new(), Vec::new());
                all.push((TypeId::of::<F>(), Box::new(fresh)));
                all.len() - 1
            }
        };
        let Some((vn, vb)) = all[at].1.downcast_mut::<(Vec<F>, Vec<bool>)>() else {
            unreachable!("stored under its own TypeId")
        };
        if vn.len() < nums {
            vn.resize(nums, F::ZERO);
        }
        if vb.len() < bools {
            vb.resize(bools, false);
        }
        f(&mut vn[..nums], &mut vb[..bools])
    })
}

/// The tape over one segment (element `seg` of the pass's slices on),
/// sub-block by sub-block, with this thread's temporaries.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run<F: Float>(
    tape: &Tape<F>,
    seg: usize,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    acc: &mut [[F; LANES]],
    walk: Walk,
    nums: &mut [F],
    bools: &mut [bool],
) {
    let n = writes
        .first()
        .map(|w| w.len())
        .or_else(|| reads.first().map(|r| r.len()))
        .unwrap_or(0);
    for &(k, x) in &tape.num_consts {
        nums[k * STRIDE..k * STRIDE + SUB].fill(x);
    }
    for &(k, b) in &tape.bool_consts {
        bools[k * STRIDE..k * STRIDE + SUB].fill(b);
    }
    let mut at = 0;
    while at < n {
        let len = SUB.min(n - at);
        // The slices stream from memory one operation at a time: ask for
        // the sub-blocks ahead now, so their loads overlap this one's work.
        prefetch(reads.iter().map(|r| &r[..]), at + AHEAD, len, n);
        prefetch(writes.iter().map(|w| &w[..]), at + AHEAD, len, n);
        let sub_walk = match walk {
            Walk::Chunks => Walk::Chunks,
            Walk::Single { lane0 } => Walk::Single { lane0: lane0 + at },
        };
        {
            let mut write_ptrs = [std::ptr::null_mut(); crate::driver::MAX_SLOTS];
            for (p, w) in write_ptrs.iter_mut().zip(writes.iter_mut()) {
                *p = w.as_mut_ptr();
            }
            let arrays = Arrays {
                reads,
                writes: write_ptrs,
                nums: nums.as_mut_ptr(),
                bools: bools.as_mut_ptr(),
                at,
                len,
            };
            for instr in &tape.instrs {
                match *instr {
                    Instr::Neg(k, a) => map1(arrays.out_num(k), arrays.num(a), |x| -x),
                    Instr::Not(k, a) => {
                        for (o, &x) in arrays.out_bool(k).iter_mut().zip(arrays.truth(a)) {
                            *o = !x;
                        }
                    }
                    Instr::ArithScalar(op, k, a, c, swapped) => arith_scalar(
                        op,
                        arrays.out_num(k),
                        arrays.num(a),
                        tape.scalars[c],
                        swapped,
                    ),
                    Instr::ArithScalarTo(op, k, a, c, swapped) => arith_scalar(
                        op,
                        arrays.out_slot(k),
                        arrays.num(a),
                        tape.scalars[c],
                        swapped,
                    ),
                    Instr::ArithInto(op, k, b, slot_left) => {
                        arith_into(op, arrays.out_slot(k), arrays.num(b), slot_left)
                    }
                    Instr::ArithScalarInto(op, k, c, swapped) => {
                        arith_scalar_into(op, arrays.out_slot(k), tape.scalars[c], swapped)
                    }
                    Instr::ArithTo(op, k, a, b) => {
                        arith(op, arrays.out_slot(k), arrays.num(a), arrays.num(b))
                    }
                    Instr::Arith(op, k, a, b) => {
                        arith(op, arrays.out_num(k), arrays.num(a), arrays.num(b))
                    }
                    Instr::Compare(op, k, a, b) => {
                        compare(op, arrays.out_bool(k), arrays.num(a), arrays.num(b))
                    }
                    Instr::Logic(op, k, a, b) => {
                        let (out, x, y) = (arrays.out_bool(k), arrays.truth(a), arrays.truth(b));
                        // One loop per operator; `&` and `|` on booleans are
                        // `&&` and `||` without the branch.
                        match op {
                            BinOp::And => map2(out, x, y, |x, y| x & y),
                            BinOp::Or => map2(out, x, y, |x, y| x | y),
                            op => map2(out, x, y, |x, y| op.logic(x, y)),
                        }
                    }
                    Instr::Func(f, k, [a, b, c]) => func(
                        f,
                        arrays.out_num(k),
                        arrays.num(a),
                        arrays.num(b),
                        arrays.num(c),
                    ),
                    Instr::Select(k, c, a, b) => {
                        let (cc, x, y) = (arrays.truth(c), arrays.num(a), arrays.num(b));
                        for (((o, &c), &x), &y) in
                            arrays.out_num(k).iter_mut().zip(cc).zip(x).zip(y)
                        {
                            *o = if c { x } else { y };
                        }
                    }
                    Instr::SelectBool(k, c, a, b) => {
                        let (cc, x, y) = (arrays.truth(c), arrays.truth(a), arrays.truth(b));
                        for (((o, &c), &x), &y) in
                            arrays.out_bool(k).iter_mut().zip(cc).zip(x).zip(y)
                        {
                            *o = if c { x } else { y };
                        }
                    }
                    Instr::Copy(k, a) => arrays.out_num(k).copy_from_slice(arrays.num(a)),
                    Instr::Draw(d, stream, k) => {
                        let draws = tape.draws(seg + at);
                        for (j, o) in arrays.out_num(k).iter_mut().enumerate() {
                            *o = draws.sample(d, stream, j);
                        }
                    }
                }
            }
            for (j, &(r, s)) in tape.reductions.iter().enumerate() {
                accumulate(r, &mut acc[j], arrays.num(s), sub_walk);
            }
        }
        for &(k, s) in &tape.stores {
            let value: &[F] = match s {
                Src::Read(j) => &reads[j][at..at + len],
                Src::Num(j) => &nums[j * STRIDE..j * STRIDE + len],
                Src::Write(j) if j == k => continue,
                // Copied into a temporary when the tape was made.
                Src::Write(_) | Src::Bool(_) => continue,
            };
            writes[k][at..at + len].copy_from_slice(value);
        }
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tape of `len` instructions, each reading the one before (and
    /// read slice 0), stored into written slice 0, with a comparison and a
    /// selection on the way: the temporaries are reused, and the stored
    /// values are those of the same operations done here element by element.
    #[test]
    fn a_chain_reuses_its_temporaries_with_the_same_values() {
        let len = 40;
        let mut instrs = vec![Instr::Arith(BinOp::Add, 0, Src::Read(0), Src::Read(0))];
        for k in 1..len {
            let op = [BinOp::Mul, BinOp::Sub, BinOp::Div, BinOp::Add][k % 4];
            instrs.push(Instr::Arith(op, k, Src::Num(k - 1), Src::Read(0)));
        }
        instrs.push(Instr::Compare(
            BinOp::Gt,
            0,
            Src::Num(len - 1),
            Src::Num(len - 2),
        ));
        instrs.push(Instr::Select(
            len,
            Src::Bool(0),
            Src::Num(len - 1),
            Src::Num(0),
        ));
        let mut tape = Tape::<f64> {
            instrs,
            num_consts: Vec::new(),
            scalars: Vec::new(),
            bool_consts: Vec::new(),
            nums: len + 1,
            bools: 1,
            stores: vec![(0, Src::Num(len))],
            reductions: Vec::new(),
            keys: Vec::new(),
            step: 0,
            first: 0,
        };
        tape.reuse_temporaries();
        // Num(0) lives to the selection, beside the chain's last two.
        assert!(tape.nums <= 4, "{} temporaries", tape.nums);
        let n = 3 * SUB + 64;
        let x: Vec<f64> = (0..n).map(|i| 0.5 + i as f64 / 7.0).collect();
        let mut w = vec![0.0; n];
        {
            let mut writes: [&mut [f64]; 1] = [&mut w];
            Interp::new(&tape, Simd::Portable).run(0, &[&x], &mut writes, &mut [], Walk::Chunks);
        }
        for (i, (&xi, &wi)) in x.iter().zip(&w).enumerate() {
            let mut t = vec![xi + xi];
            for k in 1..len {
                let op = [BinOp::Mul, BinOp::Sub, BinOp::Div, BinOp::Add][k % 4];
                t.push(op.arith(t[k - 1], xi));
            }
            let want = if t[len - 1] > t[len - 2] {
                t[len - 1]
            } else {
                t[0]
            };
            assert_eq!(wi.to_bits(), want.to_bits(), "element {i}");
        }
    }
}
