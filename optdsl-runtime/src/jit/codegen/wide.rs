//! A compiled pass's vector loop at 256 bits (AVX2 and FMA), on x86-64
//! machines that have them. Cranelift 0.114's x86 back end lowers no vector
//! wider than 128 bits, and a loop bound by its divisions and roots runs
//! about twice as fast at 256 bits on cores whose divider takes a 256-bit
//! vector at the 128-bit rate (`tools/simd_width.c` and docs/matrices.md
//! measure it). No crate on the registry compiles an IR to 256-bit code in
//! process without LLVM, so this file assembles the loop itself, with
//! iced-x86's assembler, from the same [`Graph`] and in the same order as
//! [`super::Gen`]: IEEE arithmetic and roots in the element type, no fused
//! multiply-add but `fma`, numpy's NaN-propagating `min`/`max` (`minps`
//! then a blend where the first operand is NaN), the same operand order
//! wherever the NaN kept could differ, and reductions into the same lanes
//! (element `e` of a 64-element chunk into lane `e`). So the bits are
//! Cranelift's; `tests/jit.rs` compares them with the rules `optimizer!`
//! compiles.
//!
//! The loop takes 64 bytes of each slice an iteration (two vectors, their
//! work interleaved as Cranelift's loop interleaves its copies), or 32
//! where two would need more than the 16 vector registers; the tail
//! and the single elements stay Cranelift's ([`super::Compiled::run`]
//! splits the range). What it does not cover keeps Cranelift's loop: calls
//! (`exp`, `ln`, `^`), random draws, more values live at once in one
//! vector's work than the 16 vector registers (nothing is spilled).
//! `OPTDSL_WIDE=0` turns it off (read once).

use super::{err, Graph, JitError, Step};
use iced_x86::code_asm as x86;
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::eval::Scalar;
use optdsl_lang::ir::{Id, Kind, Op, Ty};
use optdsl_lang::{Func, Reduction};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The loop's entry: per-step numbers (`cf`, laid out as for Cranelift's
/// function), slice pointers read and written, the reductions' lane
/// accumulators (for a fused sum, its eight f64 lanes), and how many
/// elements to take (a positive multiple of [`Wide::step`]).
pub(crate) type WideEntry = unsafe extern "C" fn(
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    acc: *mut u8,
    nv: usize,
);

/// A pass's vector loop at 256 bits.
pub(crate) struct Wide {
    /// The function.
    pub entry: WideEntry,
    /// Elements per iteration (two vectors, or one: f32 16 or 8, f64 8 or 4).
    pub step: usize,
}

/// The slices' pointer registers, the first slices' (then rax and r10 too
/// where the loop has no reductions; the other slices' pointers are read
/// from the arrays, kept on the stack, where they are used). The others:
/// rdi = `cf`, rcx = `acc`, r8 = the end, r9 = the loop's byte offset, r11
/// scratch, rax and r10 the two copies' lane offsets.
const PTRS: [x86::AsmRegister64; 8] = [
    x86::rbx,
    x86::rbp,
    x86::r12,
    x86::r13,
    x86::r14,
    x86::r15,
    x86::rsi,
    x86::rdx,
];

/// Whether this machine runs the wide loops: x86-64 with AVX2 and FMA,
/// unless `OPTDSL_WIDE` is `0`.
pub(crate) fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::env::var("OPTDSL_WIDE").map_or(true, |v| v.trim() != "0")
    })
}

/// A virtual vector register.
type V = usize;

/// A lane-wise operation of two vectors.
#[derive(Clone, Copy)]
enum Ar {
    Add,
    Sub,
    Mul,
    Div,
    /// `a < b ? a : b` (`minps`).
    Min,
    /// `a > b ? a : b` (`maxps`).
    Max,
    And,
    Or,
    Xor,
    /// Integer equality of mask lanes.
    IntEq,
}

/// The loop body's instructions over virtual registers.
#[derive(Clone, Copy)]
enum Ins {
    /// A vector of a slice (pointer register `ptr`) at the loop's offset plus `off`.
    Load {
        d: V,
        ptr: usize,
        off: i32,
    },
    /// A per-step number from `cf` at byte `at`, in every lane.
    Num {
        d: V,
        at: i32,
    },
    /// Constant `k` of the function's table, in every lane.
    Const {
        d: V,
        k: usize,
    },
    /// All bits set.
    Ones {
        d: V,
    },
    Arith {
        op: Ar,
        d: V,
        a: V,
        b: V,
    },
    /// `vcmpps` with predicate `pred`.
    Cmp {
        d: V,
        a: V,
        b: V,
        pred: i32,
    },
    Sqrt {
        d: V,
        a: V,
    },
    /// `m ? t : f`, lane by lane (masks are all ones or all zeros).
    Blend {
        d: V,
        f: V,
        t: V,
        m: V,
    },
    /// `a * b + c`, rounded once.
    Fma {
        d: V,
        a: V,
        b: V,
        c: V,
    },
    /// Stores `s` to a slice at the loop's offset plus `off`.
    Store {
        s: V,
        ptr: usize,
        off: i32,
    },
    /// Reduction `j`'s lanes for copy `copy`.
    AccLoad {
        d: V,
        copy: usize,
        j: usize,
    },
    AccStore {
        s: V,
        copy: usize,
        j: usize,
    },
}

impl Ins {
    /// The register the instruction defines.
    fn def(&self) -> Option<V> {
        match *self {
            Ins::Load { d, .. }
            | Ins::Num { d, .. }
            | Ins::Const { d, .. }
            | Ins::Ones { d }
            | Ins::Arith { d, .. }
            | Ins::Cmp { d, .. }
            | Ins::Sqrt { d, .. }
            | Ins::Blend { d, .. }
            | Ins::Fma { d, .. }
            | Ins::AccLoad { d, .. } => Some(d),
            Ins::Store { .. } | Ins::AccStore { .. } => None,
        }
    }

    /// The registers it reads.
    fn uses(&self) -> Vec<V> {
        match *self {
            Ins::Arith { a, b, .. } | Ins::Cmp { a, b, .. } => vec![a, b],
            Ins::Sqrt { a, .. } => vec![a],
            Ins::Blend { f, t, m, .. } => vec![f, t, m],
            Ins::Fma { a, b, c, .. } => vec![a, b, c],
            Ins::Store { s, .. } | Ins::AccStore { s, .. } => vec![s],
            _ => Vec::new(),
        }
    }
}

/// `vcmpps` predicates, as Cranelift's `FloatCC` (ordered, quiet; `!=` is
/// unordered or not equal).
const EQ_OQ: i32 = 0x00;
const UNORD_Q: i32 = 0x03;
const NEQ_UQ: i32 = 0x04;
const LT_OQ: i32 = 0x11;
const LE_OQ: i32 = 0x12;
const GE_OQ: i32 = 0x1D;
const GT_OQ: i32 = 0x1E;

/// The body being built.
struct Build<'g, 'a> {
    g: &'g Graph<'a>,
    f64: bool,
    /// The per-step number each 16-byte place of `cf` holds.
    nums: &'g [Id],
    ins: Vec<Ins>,
    next: V,
    /// The constants' bits.
    consts: Vec<u64>,
    /// The slices the loop touches: (written?, index), by pointer register.
    ptrs: Vec<(bool, usize)>,
}

impl Build<'_, '_> {
    fn fresh(&mut self) -> V {
        self.next += 1;
        self.next - 1
    }

    fn push(&mut self, make: impl FnOnce(V) -> Ins) -> V {
        let d = self.fresh();
        self.ins.push(make(d));
        d
    }

    fn ptr(&mut self, slot: (bool, usize)) -> usize {
        match self.ptrs.iter().position(|&s| s == slot) {
            Some(p) => p,
            None => {
                self.ptrs.push(slot);
                self.ptrs.len() - 1
            }
        }
    }

    /// `x` in every lane.
    fn number(&mut self, x: f64) -> V {
        let bits = if self.f64 {
            x.to_bits()
        } else {
            u64::from((x as f32).to_bits())
        };
        self.bits(bits)
    }

    /// A lane of bits `bits` in every lane.
    fn bits(&mut self, bits: u64) -> V {
        let k = match self.consts.iter().position(|&c| c == bits) {
            Some(k) => k,
            None => {
                self.consts.push(bits);
                self.consts.len() - 1
            }
        };
        self.push(|d| Ins::Const { d, k })
    }

    fn sign_bit(&self) -> u64 {
        if self.f64 {
            1 << 63
        } else {
            1 << 31
        }
    }

    fn ar(&mut self, op: Ar, a: V, b: V) -> V {
        self.push(|d| Ins::Arith { op, d, a, b })
    }

    fn cmp(&mut self, a: V, b: V, pred: i32) -> V {
        self.push(|d| Ins::Cmp { d, a, b, pred })
    }

    fn blend(&mut self, m: V, t: V, f: V) -> V {
        self.push(|d| Ins::Blend { d, f, t, m })
    }

    fn truth(&mut self, x: bool) -> V {
        if x {
            self.push(|d| Ins::Ones { d })
        } else {
            self.bits(0)
        }
    }

    /// numpy's `minimum` (`less`) or `maximum`: `a` if it is NaN or wins,
    /// as [`super::Gen::min_max`] computes it for vectors.
    fn min_max(&mut self, a: V, x: V, less: bool) -> V {
        let m = self.ar(if less { Ar::Min } else { Ar::Max }, a, x);
        let nan = self.cmp(a, a, UNORD_Q);
        self.blend(nan, a, m)
    }

    /// Whether `id` (resolved) is a per-step number of the pass.
    fn is_num(&self, id: Id) -> bool {
        let v = &self.g.p.values[id];
        v.kind != Kind::Element && v.ty == Ty::Num
    }

    /// The value of operand `id`, as [`super::Gen::operand`] gives it.
    fn operand(&mut self, vals: &HashMap<Id, V>, id: Id) -> V {
        let id = self.g.resolved[id];
        if let Some(&v) = vals.get(&id) {
            return v;
        }
        if self.g.p.values[id].ty == Ty::Bool {
            let x = self.g.known[id].is_some_and(Scalar::truth);
            return self.truth(x);
        }
        match self.nums.iter().position(|&n| n == id) {
            Some(place) if self.is_num(id) => {
                let at = (place * 16) as i32;
                self.push(|d| Ins::Num { d, at })
            }
            _ => self.number(f64::NAN),
        }
    }

    /// One step of the body for copy `copy` (its vectors `copy * 32` bytes
    /// on), as [`super::Gen::step`] emits it.
    fn step(&mut self, copy: usize, vals: &mut HashMap<Id, V>, step: Step) -> Result<(), JitError> {
        let g = self.g;
        let off = copy as i32 * 32;
        let id = match step {
            Step::Value(id) => id,
            Step::Store(k) => {
                let (w, id) = g.stores[k];
                let s = self.operand(vals, id);
                let ptr = self.ptr((true, w));
                self.ins.push(Ins::Store { s, ptr, off });
                return Ok(());
            }
            Step::Reduce(j) => {
                let (r, arg) = g.reductions[j];
                let x = self.operand(vals, arg);
                let a = self.push(|d| Ins::AccLoad { d, copy, j });
                let s = match r {
                    Reduction::Sum | Reduction::Mean => self.ar(Ar::Add, a, x),
                    Reduction::Norm => {
                        let sq = self.ar(Ar::Mul, x, x);
                        self.ar(Ar::Add, a, sq)
                    }
                    Reduction::MaxAbs => {
                        let ax = self.abs(x);
                        self.min_max(a, ax, false)
                    }
                };
                self.ins.push(Ins::AccStore { s, copy, j });
                return Ok(());
            }
        };
        let v = &g.p.values[id];
        if let Some(slot) = v.op.slot() {
            let slot = g.slot_of.get(&slot).copied().unwrap_or((false, 0));
            let ptr = self.ptr(slot);
            let d = self.push(|d| Ins::Load { d, ptr, off });
            vals.insert(id, d);
            return Ok(());
        }
        let ops: Vec<V> =
            v.op.operands()
                .into_iter()
                .map(|a| self.operand(vals, a))
                .collect();
        let at = |i: usize| ops[i.min(ops.len().saturating_sub(1))];
        let x = match &v.op {
            Op::Unary(UnOp::Neg, _) => {
                let sign = self.bits(self.sign_bit());
                self.ar(Ar::Xor, at(0), sign)
            }
            Op::Unary(UnOp::Not, _) => {
                let ones = self.truth(true);
                self.ar(Ar::Xor, at(0), ones)
            }
            Op::Binary(op, a, _) => {
                let (x, y) = (at(0), at(1));
                let bool_operands = g.p.values[*a].ty == Ty::Bool;
                // Cranelift's operand order, which decides the NaN kept
                // when both are NaN.
                let (cx, cy) = if self.is_num(g.resolved[*a]) {
                    (y, x)
                } else {
                    (x, y)
                };
                match op {
                    BinOp::Add => self.ar(Ar::Add, cx, cy),
                    BinOp::Sub => self.ar(Ar::Sub, x, y),
                    BinOp::Mul => self.ar(Ar::Mul, cx, cy),
                    BinOp::Div => self.ar(Ar::Div, x, y),
                    BinOp::Pow => return Err(JitError("`^` calls a function".into())),
                    BinOp::And => self.ar(Ar::And, x, y),
                    BinOp::Or => self.ar(Ar::Or, x, y),
                    BinOp::Eq if bool_operands => self.ar(Ar::IntEq, x, y),
                    BinOp::Ne if bool_operands => {
                        let eq = self.ar(Ar::IntEq, x, y);
                        let ones = self.truth(true);
                        self.ar(Ar::Xor, eq, ones)
                    }
                    BinOp::Lt => self.cmp(x, y, LT_OQ),
                    BinOp::Le => self.cmp(x, y, LE_OQ),
                    BinOp::Gt => self.cmp(x, y, GT_OQ),
                    BinOp::Ge => self.cmp(x, y, GE_OQ),
                    BinOp::Eq => self.cmp(x, y, EQ_OQ),
                    BinOp::Ne => self.cmp(x, y, NEQ_UQ),
                }
            }
            Op::Func(f, _) => match f {
                Func::Sqrt => {
                    let a = at(0);
                    self.push(|d| Ins::Sqrt { d, a })
                }
                Func::Abs => self.abs(at(0)),
                Func::Sign => {
                    let x = at(0);
                    let zero = self.number(0.0);
                    let one = self.number(1.0);
                    let minus = self.number(-1.0);
                    let gt = self.cmp(x, zero, GT_OQ);
                    let lt = self.cmp(x, zero, LT_OQ);
                    let neg = self.blend(lt, minus, x);
                    self.blend(gt, one, neg)
                }
                Func::Exp | Func::Ln => return Err(JitError("a call of exp or ln".into())),
                Func::Min => self.min_max(at(0), at(1), true),
                Func::Max => self.min_max(at(0), at(1), false),
                Func::Clamp => {
                    let lo = self.min_max(at(0), at(1), false);
                    self.min_max(lo, at(2), true)
                }
                Func::Fma => {
                    let (a, b, c) = (at(0), at(1), at(2));
                    self.push(|d| Ins::Fma { d, a, b, c })
                }
                Func::Float => at(0),
            },
            Op::Select(..) => self.blend(at(0), at(1), at(2)),
            Op::Draw(..) => return Err(JitError("a random draw".into())),
            // Leaves other than loads are per-step values.
            _ => return Ok(()),
        };
        vals.insert(id, x);
        Ok(())
    }

    /// `|x|`: the sign bit cleared.
    fn abs(&mut self, x: V) -> V {
        let lane = if self.f64 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let mask = self.bits(!self.sign_bit() & lane);
        self.ar(Ar::And, x, mask)
    }
}

/// Physical registers (of the first `registers`) for the virtual ones, each taken at its definition
/// and given back after its last use (a definition never shares a
/// register with its own operands).
fn allocate(ins: &[Ins], count: usize, registers: u8) -> Result<Vec<u8>, JitError> {
    let mut last = vec![None; count];
    for (i, x) in ins.iter().enumerate() {
        for u in x.uses() {
            last[u] = Some(i);
        }
    }
    let mut reg = vec![0u8; count];
    let mut held = vec![false; count];
    let mut free: Vec<u8> = (0..registers).rev().collect();
    for (i, x) in ins.iter().enumerate() {
        let d = x.def();
        if let Some(d) = d {
            reg[d] = free
                .pop()
                .ok_or_else(|| JitError("more live values than vector registers".into()))?;
            held[d] = true;
        }
        for u in x.uses() {
            if last[u] == Some(i) && std::mem::replace(&mut held[u], false) {
                free.push(reg[u]);
            }
        }
        if let Some(d) = d {
            if last[d].is_none() && std::mem::replace(&mut held[d], false) {
                free.push(reg[d]);
            }
        }
    }
    Ok(reg)
}

/// The body of `copies` vectors an iteration.
fn body<'g, 'a>(
    g: &'g Graph<'a>,
    nums: &'g [Id],
    f64: bool,
    copies: usize,
) -> Result<Build<'g, 'a>, JitError> {
    let mut b = Build {
        g,
        f64,
        nums,
        ins: Vec::new(),
        next: 0,
        consts: Vec::new(),
        ptrs: Vec::new(),
    };
    let mut vals: Vec<HashMap<Id, V>> = vec![HashMap::new(); copies];
    for &step in &g.schedule {
        for (copy, vals) in vals.iter_mut().enumerate() {
            b.step(copy, vals, step)?;
        }
    }
    Ok(b)
}

/// Compiles the vector loop of `g` for the per-step numbers at `nums`' places
/// of `cf`, in f64 or f32; `reads` and `writes` slices. With `sum`, the
/// loop also adds the pass's one stored value (squared for a norm) to eight
/// f64 lanes at `acc`, element `i` into lane `i mod 8` in order, as
/// `tensor::ops::accumulate` adds a block's numbers to a whole-array
/// reduction (a sum, mean or norm).
pub(super) fn compile(
    g: &Graph<'_>,
    nums: &[Id],
    f64: bool,
    reads: usize,
    writes: usize,
    sum: Option<Reduction>,
) -> Result<Wide, JitError> {
    if let Some(r) = sum {
        if r == Reduction::MaxAbs || g.stores.len() != 1 || !g.reductions.is_empty() {
            return Err(JitError("a fused sum of another kind".into()));
        }
    }
    // Two vectors an iteration, their work interleaved; one where two
    // would need more registers than there are.
    let mut built = Err(JitError("no body".into()));
    // An f64 vector is four lanes: the sum's lanes stay fixed with two.
    let choices: &[usize] = if sum.is_some() && f64 { &[2] } else { &[2, 1] };
    for &copies in choices {
        built = body(g, nums, f64, copies).and_then(|b| {
            if b.ptrs
                .iter()
                .any(|&(w, k)| k >= if w { writes } else { reads })
            {
                return Err(JitError("a slice the pass does not have".into()));
            }
            let regs = allocate(&b.ins, b.next, if sum.is_some() { 12 } else { 16 })?;
            Ok((b, regs, copies))
        });
        if built.is_ok() {
            break;
        }
    }
    let (b, regs, copies) = built?;
    let code = assemble(&b, &regs, copies, sum).map_err(err)?;
    let mut map = memmap2::MmapMut::map_anon(code.len()).map_err(err)?;
    map.copy_from_slice(&code);
    let map = map.make_exec().map_err(err)?;
    // SAFETY: the bytes are a function of this signature in the System V
    // calling convention (x86-64 Linux and macOS), assembled above.
    let entry = unsafe { std::mem::transmute::<*const u8, WideEntry>(map.as_ptr()) };
    // The code lives as long as the process, like Cranelift's.
    std::mem::forget(map);
    Ok(Wide {
        entry,
        step: copies * 32 / if f64 { 8 } else { 4 },
    })
}

/// The function's machine code.
fn assemble(
    b: &Build<'_, '_>,
    regs: &[u8],
    copies: usize,
    sum: Option<Reduction>,
) -> Result<Vec<u8>, x86::IcedError> {
    use x86::*;
    // The fused sum's eight lanes (ymm14: lanes 0-3, ymm15: 4-7) and two
    // temporaries, above the allocated registers.
    let (lanes, temps, high) = ([ymm14, ymm15], [ymm12, ymm13], xmm13);
    const XMM: [AsmRegisterXmm; 16] = [
        xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13,
        xmm14, xmm15,
    ];
    const YMM: [AsmRegisterYmm; 16] = [
        ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12, ymm13,
        ymm14, ymm15,
    ];
    const SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];
    const LANE: [AsmRegister64; 2] = [rax, r10];
    let size: i32 = if b.f64 { 8 } else { 4 };
    let y = |v: V| YMM[usize::from(regs[v])];
    let mut a = CodeAssembler::new(64)?;
    let mut labels: Vec<CodeLabel> = b.consts.iter().map(|_| a.create_label()).collect();
    for &r in &SAVED {
        a.push(r)?;
    }
    // The arrays of pointers: reads at [rsp + 8], writes at [rsp].
    a.push(rsi)?;
    a.push(rdx)?;
    let reduces = b.ins.iter().any(|x| matches!(x, Ins::AccLoad { .. }));
    let mut held: Vec<AsmRegister64> = PTRS.to_vec();
    if !reduces {
        held.extend([rax, r10]);
    }
    held.truncate(b.ptrs.len());
    for (p, &reg) in held.iter().enumerate() {
        let (w, k) = b.ptrs[p];
        a.mov(r11, qword_ptr(rsp + if w { 0 } else { 8 }))?;
        a.mov(reg, qword_ptr(r11 + (k as i32) * 8))?;
    }
    // Slice `p`'s pointer: its register, or read into r11.
    let base = |a: &mut CodeAssembler, p: usize| -> Result<AsmRegister64, IcedError> {
        if let Some(&reg) = held.get(p) {
            return Ok(reg);
        }
        let (w, k) = b.ptrs[p];
        a.mov(r11, qword_ptr(rsp + if w { 0 } else { 8 }))?;
        a.mov(r11, qword_ptr(r11 + (k as i32) * 8))?;
        Ok(r11)
    };
    a.shl(r8, if b.f64 { 3 } else { 2 })?;
    a.xor(r9, r9)?;
    if sum.is_some() {
        a.vmovupd(lanes[0], ymmword_ptr(rcx))?;
        a.vmovupd(lanes[1], ymmword_ptr(rcx + 32))?;
    }
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    if reduces {
        for (copy, &lane) in LANE.iter().enumerate().take(copies) {
            a.lea(lane, qword_ptr(r9 + copy as i32 * 32))?;
            a.and(lane, 64 * size - 1)?;
        }
    }
    for x in &b.ins {
        match *x {
            Ins::Load { d, ptr, off } => {
                let at = base(&mut a, ptr)?;
                a.vmovups(y(d), ymmword_ptr(at + r9 + off))?
            }
            Ins::Store { s, ptr, off } => {
                let at = base(&mut a, ptr)?;
                a.vmovups(ymmword_ptr(at + r9 + off), y(s))?;
                if let Some(r) = sum {
                    // f32: this copy's eight numbers are lanes 0-7; f64:
                    // copy 0's four are lanes 0-3, copy 1's lanes 4-7.
                    let parts: &[(AsmRegisterYmm, AsmRegisterYmm)] = if b.f64 {
                        a.vmovapd(temps[0], y(s))?;
                        &[(temps[0], lanes[(off / 32) as usize])]
                    } else {
                        a.vcvtps2pd(temps[0], XMM[usize::from(regs[s])])?;
                        a.vextractf128(high, y(s), 1)?;
                        a.vcvtps2pd(temps[1], high)?;
                        &[(temps[0], lanes[0]), (temps[1], lanes[1])]
                    };
                    for &(t, lane) in parts {
                        if r == Reduction::Norm {
                            a.vmulpd(t, t, t)?;
                        }
                        a.vaddpd(lane, lane, t)?;
                    }
                }
            }
            Ins::Num { d, at } => match b.f64 {
                true => a.vbroadcastsd(y(d), qword_ptr(rdi + at))?,
                false => a.vbroadcastss(y(d), dword_ptr(rdi + at))?,
            },
            Ins::Const { d, k } => match b.f64 {
                true => a.vbroadcastsd(y(d), qword_ptr(labels[k]))?,
                false => a.vbroadcastss(y(d), dword_ptr(labels[k]))?,
            },
            Ins::Ones { d } => a.vpcmpeqd(y(d), y(d), y(d))?,
            Ins::Arith { op, d, a: p, b: q } => {
                let (d, p, q) = (y(d), y(p), y(q));
                match (op, b.f64) {
                    (Ar::Add, false) => a.vaddps(d, p, q)?,
                    (Ar::Add, true) => a.vaddpd(d, p, q)?,
                    (Ar::Sub, false) => a.vsubps(d, p, q)?,
                    (Ar::Sub, true) => a.vsubpd(d, p, q)?,
                    (Ar::Mul, false) => a.vmulps(d, p, q)?,
                    (Ar::Mul, true) => a.vmulpd(d, p, q)?,
                    (Ar::Div, false) => a.vdivps(d, p, q)?,
                    (Ar::Div, true) => a.vdivpd(d, p, q)?,
                    (Ar::Min, false) => a.vminps(d, p, q)?,
                    (Ar::Min, true) => a.vminpd(d, p, q)?,
                    (Ar::Max, false) => a.vmaxps(d, p, q)?,
                    (Ar::Max, true) => a.vmaxpd(d, p, q)?,
                    (Ar::And, _) => a.vandps(d, p, q)?,
                    (Ar::Or, _) => a.vorps(d, p, q)?,
                    (Ar::Xor, _) => a.vxorps(d, p, q)?,
                    (Ar::IntEq, false) => a.vpcmpeqd(d, p, q)?,
                    (Ar::IntEq, true) => a.vpcmpeqq(d, p, q)?,
                }
            }
            Ins::Cmp {
                d,
                a: p,
                b: q,
                pred,
            } => match b.f64 {
                true => a.vcmppd(y(d), y(p), y(q), pred)?,
                false => a.vcmpps(y(d), y(p), y(q), pred)?,
            },
            Ins::Sqrt { d, a: p } => match b.f64 {
                true => a.vsqrtpd(y(d), y(p))?,
                false => a.vsqrtps(y(d), y(p))?,
            },
            Ins::Blend { d, f, t, m } => match b.f64 {
                true => a.vblendvpd(y(d), y(f), y(t), y(m))?,
                false => a.vblendvps(y(d), y(f), y(t), y(m))?,
            },
            Ins::Fma { d, a: p, b: q, c } => {
                a.vmovaps(y(d), y(p))?;
                match b.f64 {
                    true => a.vfmadd213pd(y(d), y(q), y(c))?,
                    false => a.vfmadd213ps(y(d), y(q), y(c))?,
                }
            }
            Ins::AccLoad { d, copy, j } => {
                let at = j as i32 * 64 * size;
                a.vmovups(y(d), ymmword_ptr(rcx + LANE[copy] + at))?
            }
            Ins::AccStore { s, copy, j } => {
                let at = j as i32 * 64 * size;
                a.vmovups(ymmword_ptr(rcx + LANE[copy] + at), y(s))?
            }
        }
    }
    a.add(r9, copies as i32 * 32)?;
    a.cmp(r9, r8)?;
    a.jb(top)?;
    if sum.is_some() {
        a.vmovupd(ymmword_ptr(rcx), lanes[0])?;
        a.vmovupd(ymmword_ptr(rcx + 32), lanes[1])?;
    }
    a.add(rsp, 16)?;
    a.vzeroupper()?;
    for &r in SAVED.iter().rev() {
        a.pop(r)?;
    }
    a.ret()?;
    for (k, &c) in b.consts.iter().enumerate() {
        a.set_label(&mut labels[k])?;
        match b.f64 {
            true => a.dq(&[c])?,
            false => a.dd(&[c as u32])?,
        }
    }
    a.assemble(0)
}
