//! Translation of one pass of a text rule into a Cranelift function: the
//! pass's element values in SSA form, once over 128-bit vectors (f32x4 or
//! f64x2, several per loop iteration) for the driver's chunked walk and once
//! over single elements for peels and tails. Every operation is the one the
//! compiled kernel computes (`optdsl_lang::Real`): IEEE arithmetic and square
//! roots, no fused multiply-add, numpy's NaN-propagating `min`/`max`,
//! `sign(0) = 0`; `exp`, `ln` and `^` call the same Rust functions lane by
//! lane. Reductions accumulate per lane exactly as the compiled kernel does
//! (element `e` of a chunk into lane `e`, in element order), so the bits are
//! the compiled rule's.
//!
//! On x86-64 machines with AVX2 and FMA, the same graph's vector loop is
//! also assembled at 256 bits ([`wide`]); [`Compiled::run`] runs it over the
//! leading elements and this function's code over the rest.

use crate::driver::MAX_SLOTS;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    types, AbiParam, Endianness, InstBuilder, MemFlags, SigRef, Signature, Type,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use optdsl_lang::ast::{BinOp, UnOp};
use optdsl_lang::eval::Scalar;
use optdsl_lang::ir::{Id, Kind, Op, Program, Slot, Ty};
use optdsl_lang::passes::Pass;
use optdsl_lang::{Func, Real, Reduction};
use std::collections::HashMap;

#[cfg(target_arch = "x86_64")]
pub(crate) mod wide;

/// Elements per reduction chunk (the driver's `LANES`).
const LANES: i64 = crate::driver::LANES as i64;

/// Vectors computed per iteration of the vector loop.
const UNROLL: i64 = 2;

/// Elements the vector loop takes per iteration, at most (f32: 2 x 4, f64:
/// 2 x 2): for a pass without reductions, any `nvec` that is a multiple of
/// it will do (the lanes only matter to reductions).
pub(crate) const VECTOR_STEP: usize = (UNROLL * 4) as usize;

/// The machine code's entry: per-step numbers, slice pointers read and
/// written, the reductions' lane accumulators (`[[F; 64]]` contiguous), the
/// segment's length, how many leading elements the vector loop takes (a
/// multiple of 64, or 0), and the lane of element 0 for the others.
pub(crate) type Entry = unsafe extern "C" fn(
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    acc: *mut u8,
    n: usize,
    nvec: usize,
    lane0: usize,
);

/// How many compiled passes of each rule (by name) have a 256-bit loop.
#[cfg(target_arch = "x86_64")]
pub(crate) fn wide_loops() -> &'static std::sync::Mutex<HashMap<String, usize>> {
    static WIDE: std::sync::OnceLock<std::sync::Mutex<HashMap<String, usize>>> =
        std::sync::OnceLock::new();
    WIDE.get_or_init(Default::default)
}

/// A pass compiled to machine code.
pub(crate) struct Compiled {
    /// Cranelift's function.
    entry: Entry,
    /// The per-step values it reads, in the order of its `cf` array (each
    /// repeated to fill 16 bytes).
    pub nums: Vec<Id>,
    /// The vector loop at 256 bits, where the machine has AVX2 (and the pass
    /// has at most `MAX_SLOTS` slices read and written).
    #[cfg(target_arch = "x86_64")]
    wide: Option<wide::Wide>,
    /// Whether the 256-bit loop adds the stored numbers to eight f64 lanes
    /// at `acc` (element `i` of its range into lane `i mod 8`).
    pub sums: bool,
    /// How many slices the pass reads and writes.
    reads: usize,
    writes: usize,
    /// Bytes per element.
    size: usize,
}

impl Compiled {
    /// Runs the code over `n` elements, as [`Entry`] says: the leading
    /// `nvec` (a multiple of 64, or of [`VECTOR_STEP`] for a pass without
    /// reductions) in vectors, reductions into lane `(lane0 + i) mod 64`
    /// for element `i` (`lane0` is 0 when `nvec > 0`). Where there is a
    /// 256-bit loop, it takes the leading multiple of its step and
    /// Cranelift's function the rest, from there. Returns how many leading
    /// elements the 256-bit loop took (with [`Compiled::sums`], those it
    /// added to `acc`'s f64 lanes).
    ///
    /// # Safety
    ///
    /// As for [`Entry`]: `cf` as compiled, the pass's slices of at least
    /// `n` elements behind `reads` and `writes`, `acc` with 64 lanes per
    /// reduction.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run(
        &self,
        cf: *const u8,
        reads: *const *const u8,
        writes: *const *mut u8,
        acc: *mut u8,
        n: usize,
        nvec: usize,
        lane0: usize,
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let Some(w) = &self.wide {
            let nv = nvec / w.step * w.step;
            if nv > 0 {
                // SAFETY: the loop reads and writes the slices' first
                // `nv <= n` elements and the lanes of `acc`.
                unsafe { (w.entry)(cf, reads, writes, acc, nv) };
                if nv == n {
                    return nv;
                }
                let skip = nv * self.size;
                let mut r = [std::ptr::null::<u8>(); MAX_SLOTS];
                let mut wr = [std::ptr::null_mut::<u8>(); MAX_SLOTS];
                for (k, dst) in r.iter_mut().enumerate().take(self.reads) {
                    // SAFETY: slice `k` holds `n > nv` elements.
                    *dst = unsafe { (*reads.add(k)).add(skip) };
                }
                for (k, dst) in wr.iter_mut().enumerate().take(self.writes) {
                    // SAFETY: as above.
                    *dst = unsafe { (*writes.add(k)).add(skip) };
                }
                // SAFETY: the rest of the same slices; `nv` is a multiple
                // of 64 where there are reductions (the step divides 64 and
                // `nvec` is one), so the lanes go on where the loop left them.
                unsafe {
                    (self.entry)(
                        cf,
                        r.as_ptr(),
                        wr.as_ptr(),
                        acc,
                        n - nv,
                        nvec - nv,
                        lane0 + nv,
                    )
                };
                return nv;
            }
        }
        // SAFETY: the caller's contract is the function's.
        unsafe { (self.entry)(cf, reads, writes, acc, n, nvec, lane0) };
        0
    }
}

/// Why a pass was not compiled (the interpreter runs it instead).
#[derive(Debug)]
pub(crate) struct JitError(pub String);

fn err(e: impl std::fmt::Display) -> JitError {
    JitError(e.to_string())
}

/// The element type's description for code generation.
#[derive(Clone, Copy)]
struct Elem {
    /// f32 or f64.
    scalar: Type,
    /// f32x4 or f64x2.
    vector: Type,
    /// Masks of vector comparisons: i32x4 or i64x2.
    mask: Type,
    /// The integer type of one mask lane.
    mask_lane: Type,
    /// Bytes per element.
    size: i64,
    /// Elements per vector.
    width: i64,
}

impl Elem {
    fn new(f64: bool) -> Elem {
        if f64 {
            Elem {
                scalar: types::F64,
                vector: types::F64X2,
                mask: types::I64X2,
                mask_lane: types::I64,
                size: 8,
                width: 2,
            }
        } else {
            Elem {
                scalar: types::F32,
                vector: types::F32X4,
                mask: types::I32X4,
                mask_lane: types::I32,
                size: 4,
                width: 4,
            }
        }
    }
}

extern "C" fn exp_f32(x: f32) -> f32 {
    Real::exp(x)
}
extern "C" fn exp_f64(x: f64) -> f64 {
    Real::exp(x)
}
extern "C" fn ln_f32(x: f32) -> f32 {
    Real::ln(x)
}
extern "C" fn ln_f64(x: f64) -> f64 {
    Real::ln(x)
}
extern "C" fn pow_f32(x: f32, p: f32) -> f32 {
    Real::powf(x, p)
}
extern "C" fn pow_f64(x: f64, p: f64) -> f64 {
    Real::powf(x, p)
}

/// The Rust functions generated code calls, with their arity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Shim {
    Exp,
    Ln,
    Pow,
}

impl Shim {
    fn address(self, f64: bool) -> usize {
        match (self, f64) {
            (Shim::Exp, false) => exp_f32 as extern "C" fn(f32) -> f32 as usize,
            (Shim::Exp, true) => exp_f64 as extern "C" fn(f64) -> f64 as usize,
            (Shim::Ln, false) => ln_f32 as extern "C" fn(f32) -> f32 as usize,
            (Shim::Ln, true) => ln_f64 as extern "C" fn(f64) -> f64 as usize,
            (Shim::Pow, false) => pow_f32 as extern "C" fn(f32, f32) -> f32 as usize,
            (Shim::Pow, true) => pow_f64 as extern "C" fn(f64, f64) -> f64 as usize,
        }
    }
    fn arity(self) -> usize {
        match self {
            Shim::Pow => 2,
            _ => 1,
        }
    }
}

/// One step of a pass's body, in the order the code does them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Compute an element value (a slice load is emitted here; arithmetic is
    /// placed by Cranelift just before its first use).
    Value(Id),
    /// Store `stores[k]`.
    Store(usize),
    /// Accumulate `reductions[j]`.
    Reduce(usize),
}

/// A pass's element graph after per-step selections are resolved: what the
/// function computes, independent of vector or scalar form.
struct Graph<'a> {
    p: &'a Program,
    /// Element values to compute, in order.
    order: Vec<Id>,
    /// The body's steps: each store or reduction preceded by the values it
    /// needs that are not computed yet (see [`schedule`]).
    schedule: Vec<Step>,
    /// Stores: written slice index and the value stored.
    stores: Vec<(usize, Id)>,
    /// Reductions and their (resolved) arguments.
    reductions: Vec<(Reduction, Id)>,
    /// Where each slot load reads: (written?, index).
    slot_of: HashMap<Slot, (bool, usize)>,
    /// Resolved ids of selections on per-step conditions.
    resolved: Vec<Id>,
    known: &'a [Option<Scalar>],
}

impl<'a> Graph<'a> {
    fn new(p: &'a Program, pass: &Pass, known: &'a [Option<Scalar>]) -> Graph<'a> {
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
        let resolved: Vec<Id> = (0..p.values.len()).map(resolve).collect();
        let reads: Vec<Slot> = pass.reads().collect();
        let written: Vec<Slot> = pass.written().collect();
        let mut slot_of = HashMap::new();
        for (k, &s) in reads.iter().enumerate() {
            slot_of.insert(s, (false, k));
        }
        for (k, &s) in written.iter().enumerate() {
            slot_of.insert(s, (true, k));
        }
        let stores: Vec<(usize, Id)> = pass
            .writes
            .iter()
            .filter_map(|&(slot, id)| {
                let k = written.iter().position(|&s| s == slot)?;
                let id = resolved[id];
                (p.values[id].op.slot() != Some(slot)).then_some((k, id))
            })
            .collect();
        let reductions: Vec<(Reduction, Id)> = pass
            .reductions
            .iter()
            .map(|&(r, _, arg)| (r, resolved[arg]))
            .collect();
        let mut need = vec![false; p.values.len()];
        let mut stack: Vec<Id> = stores
            .iter()
            .map(|s| s.1)
            .chain(reductions.iter().map(|r| r.1))
            .collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut need[id], true) || p.values[id].kind != Kind::Element {
                continue;
            }
            stack.extend(p.values[id].op.operands().into_iter().map(|a| resolved[a]));
        }
        let order: Vec<Id> = pass
            .elements
            .iter()
            .copied()
            .filter(|&id| need[id] && resolved[id] == id)
            .collect();
        let schedule = schedule(p, &order, &resolved, &stores, &reductions, &written);
        Graph {
            p,
            order,
            schedule,
            stores,
            reductions,
            slot_of,
            resolved,
            known,
        }
    }
}

/// The order of a body: stores and reductions one at a time, each preceded
/// by the element values it needs that earlier ones did not (depth first).
/// Cranelift places each arithmetic value just before its first use, so this
/// order decides how long values live: the next store is the one that needs
/// the fewest values not computed yet, among those whose slice no other
/// pending store or reduction still has to read (else its old value is
/// loaded before the store, and held). A slice's old value is always loaded
/// before the slice is stored, so the bits are those of any other order.
fn schedule(
    p: &Program,
    order: &[Id],
    resolved: &[Id],
    stores: &[(usize, Id)],
    reductions: &[(Reduction, Id)],
    written: &[Slot],
) -> Vec<Step> {
    use std::collections::HashSet;
    let in_order: HashSet<Id> = order.iter().copied().collect();
    let args = |id: Id| -> Vec<Id> {
        p.values[id]
            .op
            .operands()
            .into_iter()
            .map(|a| resolved[a])
            .filter(|a| in_order.contains(a))
            .collect()
    };
    // The values of `root`'s cone not computed yet.
    let remaining = |root: Id, done: &HashSet<Id>| -> HashSet<Id> {
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        while let Some(v) = stack.pop() {
            if in_order.contains(&v) && !done.contains(&v) && seen.insert(v) {
                stack.extend(args(v));
            }
        }
        seen
    };
    // Sinks: (step, value, the slice it overwrites), stores first.
    let sinks: Vec<(Step, Id, Option<Slot>)> = stores
        .iter()
        .enumerate()
        .map(|(k, &(w, id))| (Step::Store(k), resolved[id], written.get(w).copied()))
        .chain(
            reductions
                .iter()
                .enumerate()
                .map(|(j, &(_, id))| (Step::Reduce(j), resolved[id], None)),
        )
        .collect();
    let loads_of = |slot: Option<Slot>| -> Vec<Id> {
        order
            .iter()
            .copied()
            .filter(|&v| slot.is_some() && p.values[v].op.slot() == slot)
            .collect()
    };
    let mut done: HashSet<Id> = HashSet::new();
    let mut out = Vec::new();
    // Post-order depth-first emission of `root`'s cone, without recursion.
    let emit = |root: Id, out: &mut Vec<Step>, done: &mut HashSet<Id>| {
        let mut stack = vec![(root, false)];
        while let Some((v, expanded)) = stack.pop() {
            if !in_order.contains(&v) || done.contains(&v) {
                continue;
            }
            if expanded {
                done.insert(v);
                out.push(Step::Value(v));
            } else {
                stack.push((v, true));
                stack.extend(args(v).into_iter().rev().map(|a| (a, false)));
            }
        }
    };
    let mut pending: Vec<usize> = (0..sinks.len()).collect();
    while !pending.is_empty() {
        let cones: Vec<HashSet<Id>> = pending
            .iter()
            .map(|&i| remaining(sinks[i].1, &done))
            .collect();
        // Old values of sink `k`'s slice that its own values do not load
        // and another pending sink still needs once they are computed.
        let held = |k: usize| -> Vec<Id> {
            let loads: Vec<Id> = loads_of(sinks[pending[k]].2)
                .into_iter()
                .filter(|v| !done.contains(v) && !cones[k].contains(v))
                .collect();
            if loads.is_empty() {
                return loads;
            }
            let after: HashSet<Id> = done.union(&cones[k]).copied().collect();
            loads
                .into_iter()
                .filter(|&v| {
                    (0..pending.len())
                        .any(|j| j != k && remaining(sinks[pending[j]].1, &after).contains(&v))
                })
                .collect()
        };
        let at = (0..pending.len())
            .min_by_key(|&k| (!held(k).is_empty(), cones[k].len(), k))
            .unwrap_or(0);
        let early = held(at);
        let (step, id, _) = sinks[pending.remove(at)];
        emit(id, &mut out, &mut done);
        for v in early {
            emit(v, &mut out, &mut done);
        }
        out.push(step);
    }
    out
}

/// Vector or single-element code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Vector,
    Scalar,
}

/// Code generation state of one function.
struct Gen<'g, 'a> {
    g: &'g Graph<'a>,
    e: Elem,
    f64: bool,
    ptr: Type,
    /// The per-step numbers the pass reads.
    num_ids: std::collections::HashSet<Id>,
    /// The per-step number each 16-byte place of `cf` holds (copies): one
    /// place per use, so that each load has one user and x86 folds it into
    /// that operation (a shared load would be one value held in a register,
    /// or spilled, across the body), and `cf` itself.
    nums: Vec<Id>,
    cf: cranelift_codegen::ir::Value,
    read_ptrs: Vec<cranelift_codegen::ir::Value>,
    write_ptrs: Vec<cranelift_codegen::ir::Value>,
    acc: cranelift_codegen::ir::Value,
    sigs: HashMap<Shim, SigRef>,
}

fn fconst(b: &mut FunctionBuilder, e: Elem, x: f64) -> cranelift_codegen::ir::Value {
    if e.size == 8 {
        b.ins().f64const(Ieee64::with_bits(x.to_bits()))
    } else {
        b.ins().f32const(Ieee32::with_bits((x as f32).to_bits()))
    }
}

impl Gen<'_, '_> {
    fn fty(&self, s: Shape) -> Type {
        match s {
            Shape::Vector => self.e.vector,
            Shape::Scalar => self.e.scalar,
        }
    }

    /// A number constant in shape `s`.
    fn splat(&self, b: &mut FunctionBuilder, s: Shape, x: f64) -> cranelift_codegen::ir::Value {
        let c = fconst(b, self.e, x);
        match s {
            Shape::Vector => b.ins().splat(self.e.vector, c),
            Shape::Scalar => c,
        }
    }

    /// A boolean constant in shape `s` (a mask, or 0/1).
    fn truth(&self, b: &mut FunctionBuilder, s: Shape, x: bool) -> cranelift_codegen::ir::Value {
        match s {
            Shape::Vector => {
                let c = b.ins().iconst(self.e.mask_lane, if x { -1 } else { 0 });
                b.ins().splat(self.e.mask, c)
            }
            Shape::Scalar => b.ins().iconst(types::I8, i64::from(x)),
        }
    }

    fn select(
        &self,
        b: &mut FunctionBuilder,
        s: Shape,
        c: cranelift_codegen::ir::Value,
        x: cranelift_codegen::ir::Value,
        y: cranelift_codegen::ir::Value,
    ) -> cranelift_codegen::ir::Value {
        match s {
            Shape::Vector => {
                // A mask lane is all ones or all zeros: select bit by bit,
                // in the selected values' type.
                let ty = b.func.dfg.value_type(x);
                let c = if b.func.dfg.value_type(c) == ty {
                    c
                } else {
                    b.ins()
                        .bitcast(ty, MemFlags::new().with_endianness(Endianness::Little), c)
                };
                b.ins().bitselect(c, x, y)
            }
            Shape::Scalar => b.ins().select(c, x, y),
        }
    }

    /// numpy's `minimum` (`less`) or `maximum`: `a` if it is NaN or wins.
    fn min_max(
        &self,
        b: &mut FunctionBuilder,
        s: Shape,
        a: cranelift_codegen::ir::Value,
        x: cranelift_codegen::ir::Value,
        less: bool,
    ) -> cranelift_codegen::ir::Value {
        let nan = b.ins().fcmp(FloatCC::Unordered, a, a);
        if s == Shape::Vector {
            // `a < x ? a : x` (or `x < a ? a : x`) in this form is one
            // `minps` (`maxps`), which gives `x` when either is NaN; then
            // `a` where `a` is NaN (one blend).
            let wins = if less {
                b.ins().fcmp(FloatCC::LessThan, a, x)
            } else {
                b.ins().fcmp(FloatCC::LessThan, x, a)
            };
            let m = self.select(b, s, wins, a, x);
            return self.select(b, s, nan, a, m);
        }
        let cc = if less {
            FloatCC::LessThan
        } else {
            FloatCC::GreaterThan
        };
        let wins = b.ins().fcmp(cc, a, x);
        let pick = b.ins().bor(nan, wins);
        self.select(b, s, pick, a, x)
    }

    /// A call of a Rust function, lane by lane for vectors.
    fn call(
        &mut self,
        b: &mut FunctionBuilder,
        s: Shape,
        shim: Shim,
        args: &[cranelift_codegen::ir::Value],
    ) -> cranelift_codegen::ir::Value {
        let sig = match self.sigs.get(&shim) {
            Some(&sig) => sig,
            None => {
                let mut sig = Signature::new(b.func.signature.call_conv);
                for _ in 0..shim.arity() {
                    sig.params.push(AbiParam::new(self.e.scalar));
                }
                sig.returns.push(AbiParam::new(self.e.scalar));
                let sig = b.import_signature(sig);
                self.sigs.insert(shim, sig);
                sig
            }
        };
        let addr = b
            .ins()
            .iconst(self.ptr, shim.address(self.f64) as u64 as i64);
        let one = |b: &mut FunctionBuilder, lanes: &[cranelift_codegen::ir::Value]| {
            let call = b.ins().call_indirect(sig, addr, lanes);
            b.inst_results(call)[0]
        };
        match s {
            Shape::Scalar => one(b, args),
            Shape::Vector => {
                let mut out = args[0];
                for lane in 0..self.e.width as u8 {
                    let lanes: Vec<_> =
                        args.iter().map(|&v| b.ins().extractlane(v, lane)).collect();
                    let r = one(b, &lanes);
                    out = b.ins().insertlane(out, r, lane);
                }
                out
            }
        }
    }

    /// The value of operand `id` (resolved) in shape `s`.
    fn operand(
        &mut self,
        b: &mut FunctionBuilder,
        s: Shape,
        vals: &HashMap<Id, cranelift_codegen::ir::Value>,
        id: Id,
    ) -> cranelift_codegen::ir::Value {
        let id = self.g.resolved[id];
        if let Some(&v) = vals.get(&id) {
            return v;
        }
        let v = &self.g.p.values[id];
        if v.ty == Ty::Bool {
            let x = self.g.known[id].is_some_and(Scalar::truth);
            return self.truth(b, s, x);
        }
        match self.num_ids.contains(&id) {
            // Loaded where it is used, from a place of its own: x86 folds
            // the load into the operation, with no register held across the
            // loop. (The offset's overflow is checked once compiled.)
            true => {
                let at = (self.nums.len() * 16) as i32;
                self.nums.push(id);
                let flags = MemFlags::new().with_notrap().with_readonly().with_aligned();
                b.ins().load(self.fty(s), flags, self.cf, at)
            }
            // Not a per-step input of the pass (never happens for a planned
            // pass): NaN, as the interpreter reads an unknown value.
            false => self.splat(b, s, f64::NAN),
        }
    }

    /// The pass's body for the elements at `index` (a pointer-sized element
    /// offset), with reductions into lane `lane` onwards.
    fn body(
        &mut self,
        b: &mut FunctionBuilder,
        s: Shape,
        index: cranelift_codegen::ir::Value,
        copies: &[(i32, cranelift_codegen::ir::Value)],
    ) {
        let g = self.g;
        let byte = b.ins().imul_imm(index, self.e.size);
        let mut vals: Vec<HashMap<Id, cranelift_codegen::ir::Value>> =
            vec![HashMap::new(); copies.len()];
        for &step in &g.schedule {
            for (c, &(off, lane)) in copies.iter().enumerate() {
                self.step(b, s, byte, off, lane, &mut vals[c], step);
            }
        }
    }

    /// One step of the body for the elements at byte offset `byte + off`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        b: &mut FunctionBuilder,
        s: Shape,
        byte: cranelift_codegen::ir::Value,
        off: i32,
        lane: cranelift_codegen::ir::Value,
        vals: &mut HashMap<Id, cranelift_codegen::ir::Value>,
        step: Step,
    ) {
        let flags = MemFlags::new().with_notrap();
        let fty = self.fty(s);
        let g = self.g;
        {
            let id = match step {
                Step::Value(id) => id,
                Step::Store(k) => {
                    let (w, id) = g.stores[k];
                    let x = self.operand(b, s, vals, id);
                    let addr = b.ins().iadd(self.write_ptrs[w], byte);
                    b.ins().store(flags, x, addr, off);
                    return;
                }
                Step::Reduce(j) => {
                    let (r, arg) = g.reductions[j];
                    self.reduce(b, s, vals, lane, j, r, arg);
                    return;
                }
            };
            let v = &g.p.values[id];
            let x = if let Some(slot) = v.op.slot() {
                let (w, k) = g.slot_of.get(&slot).copied().unwrap_or((false, 0));
                let base = if w {
                    self.write_ptrs[k]
                } else {
                    self.read_ptrs[k]
                };
                let addr = b.ins().iadd(base, byte);
                b.ins().load(fty, flags, addr, off)
            } else {
                let mut ops = Vec::new();
                for a in v.op.operands() {
                    ops.push(self.operand(b, s, vals, a));
                }
                let at = |i: usize| ops[i.min(ops.len().saturating_sub(1))];
                match &v.op {
                    Op::Unary(UnOp::Neg, _) => b.ins().fneg(at(0)),
                    Op::Unary(UnOp::Not, _) => {
                        let t = self.truth(b, s, true);
                        b.ins().bxor(at(0), t)
                    }
                    Op::Binary(op, a, _) => {
                        let (x, y) = (at(0), at(1));
                        let bool_operands = g.p.values[*a].ty == Ty::Bool;
                        // x86 folds a load into an operation's second
                        // operand only: a per-step number goes second where
                        // the operation commutes (the same result; when both
                        // are NaN, the NaN kept may differ, as LLVM's may).
                        let (cx, cy) = if self.num_ids.contains(&g.resolved[*a]) {
                            (y, x)
                        } else {
                            (x, y)
                        };
                        match op {
                            BinOp::Add => b.ins().fadd(cx, cy),
                            BinOp::Sub => b.ins().fsub(x, y),
                            BinOp::Mul => b.ins().fmul(cx, cy),
                            BinOp::Div => b.ins().fdiv(x, y),
                            BinOp::Pow => self.call(b, s, Shim::Pow, &[x, y]),
                            BinOp::And => b.ins().band(x, y),
                            BinOp::Or => b.ins().bor(x, y),
                            BinOp::Eq if bool_operands => b.ins().icmp(IntCC::Equal, x, y),
                            BinOp::Ne if bool_operands => b.ins().icmp(IntCC::NotEqual, x, y),
                            BinOp::Lt => b.ins().fcmp(FloatCC::LessThan, x, y),
                            BinOp::Le => b.ins().fcmp(FloatCC::LessThanOrEqual, x, y),
                            BinOp::Gt => b.ins().fcmp(FloatCC::GreaterThan, x, y),
                            BinOp::Ge => b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, y),
                            BinOp::Eq => b.ins().fcmp(FloatCC::Equal, x, y),
                            BinOp::Ne => b.ins().fcmp(FloatCC::NotEqual, x, y),
                        }
                    }
                    Op::Func(f, _) => match f {
                        Func::Sqrt => b.ins().sqrt(at(0)),
                        Func::Abs => b.ins().fabs(at(0)),
                        Func::Sign => {
                            let x = at(0);
                            let zero = self.splat(b, s, 0.0);
                            let one = self.splat(b, s, 1.0);
                            let minus = self.splat(b, s, -1.0);
                            let gt = b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                            let lt = b.ins().fcmp(FloatCC::LessThan, x, zero);
                            let neg = self.select(b, s, lt, minus, x);
                            self.select(b, s, gt, one, neg)
                        }
                        Func::Exp => self.call(b, s, Shim::Exp, &[at(0)]),
                        Func::Ln => self.call(b, s, Shim::Ln, &[at(0)]),
                        Func::Min => self.min_max(b, s, at(0), at(1), true),
                        Func::Max => self.min_max(b, s, at(0), at(1), false),
                        Func::Clamp => {
                            let lo = self.min_max(b, s, at(0), at(1), false);
                            self.min_max(b, s, lo, at(2), true)
                        }
                        // One rounding, as `f32::mul_add` (Cranelift lowers
                        // it to the FMA instruction, which the CPU has when
                        // the SIMD levels are in use; a failure falls back
                        // to the interpreter).
                        Func::Fma => b.ins().fma(at(0), at(1), at(2)),
                        Func::Float => at(0),
                    },
                    Op::Select(..) => self.select(b, s, at(0), at(1), at(2)),
                    // Leaves other than loads are per-step values.
                    _ => return,
                }
            };
            vals.insert(id, x);
        }
    }

    /// Accumulates reduction `j` (`r` of `arg`) into lane `lane` onwards.
    #[allow(clippy::too_many_arguments)]
    fn reduce(
        &mut self,
        b: &mut FunctionBuilder,
        s: Shape,
        vals: &HashMap<Id, cranelift_codegen::ir::Value>,
        lane: cranelift_codegen::ir::Value,
        j: usize,
        r: Reduction,
        arg: Id,
    ) {
        let flags = MemFlags::new().with_notrap();
        let fty = self.fty(s);
        let x = self.operand(b, s, vals, arg);
        let off = b.ins().imul_imm(lane, self.e.size);
        let base = b.ins().iadd_imm(self.acc, j as i64 * LANES * self.e.size);
        let addr = b.ins().iadd(base, off);
        let a = b.ins().load(fty, flags, addr, 0);
        let y = match r {
            Reduction::Sum | Reduction::Mean => b.ins().fadd(a, x),
            Reduction::Norm => {
                let sq = b.ins().fmul(x, x);
                b.ins().fadd(a, sq)
            }
            Reduction::MaxAbs => {
                let ax = b.ins().fabs(x);
                self.min_max(b, s, a, ax, false)
            }
        };
        b.ins().store(flags, y, addr, 0);
    }
}

/// Compiles `pass` of `p` for this step's per-step booleans (`known`), in
/// f64 or f32. With `sum` (a pass with one store and no reductions), the
/// 256-bit loop, where there is one, also adds the stored numbers to eight
/// f64 lanes at `acc` ([`Compiled::sums`]).
pub(crate) fn compile(
    p: &Program,
    pass: &Pass,
    known: &[Option<Scalar>],
    f64: bool,
    sum: Option<Reduction>,
) -> Result<Compiled, JitError> {
    let graph = Graph::new(p, pass, known);
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(err)?;
    flags.set("is_pic", "false").map_err(err)?;
    let isa = cranelift_native::builder()
        .map_err(err)?
        .finish(settings::Flags::new(flags))
        .map_err(err)?;
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let ptr = module.target_config().pointer_type();
    let mut ctx = module.make_context();
    for _ in 0..7 {
        ctx.func.signature.params.push(AbiParam::new(ptr));
    }
    let e = Elem::new(f64);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let params = b.block_params(entry).to_vec();
    let [cf, rp, wp, acc, n, nvec, lane0] = params[..] else {
        return Err(JitError("signature".into()));
    };
    let flags = MemFlags::new().with_notrap();
    let nr = pass.reads().count();
    let nw = pass.written().count();
    let read_ptrs: Vec<_> = (0..nr)
        .map(|k| {
            b.ins()
                .load(ptr, flags, rp, (k * ptr.bytes() as usize) as i32)
        })
        .collect();
    let write_ptrs: Vec<_> = (0..nw)
        .map(|k| {
            b.ins()
                .load(ptr, flags, wp, (k * ptr.bytes() as usize) as i32)
        })
        .collect();
    // The per-step numbers the graph reads.
    let num_ids = graph
        .order
        .iter()
        .flat_map(|&id| p.values[id].op.operands())
        .chain(graph.stores.iter().map(|s| s.1))
        .chain(graph.reductions.iter().map(|r| r.1))
        .map(|a| graph.resolved[a])
        .filter(|&a| p.values[a].kind != Kind::Element && p.values[a].ty == Ty::Num)
        .collect();
    let mut gen = Gen {
        g: &graph,
        e,
        f64,
        ptr,
        num_ids,
        nums: Vec::new(),
        cf,
        read_ptrs,
        write_ptrs,
        acc,
        sigs: HashMap::new(),
    };
    let i = Variable::from_u32(0);
    b.declare_var(i, ptr);
    let zero = b.ins().iconst(ptr, 0);
    b.def_var(i, zero);
    // Vector loop: UNROLL vectors per iteration while i < nvec.
    let vhead = b.create_block();
    let vbody = b.create_block();
    let thead = b.create_block();
    let tbody = b.create_block();
    let exit = b.create_block();
    b.ins().jump(vhead, &[]);
    b.switch_to_block(vhead);
    let iv = b.use_var(i);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, iv, nvec);
    b.ins().brif(more, vbody, &[], thead, &[]);
    b.switch_to_block(vbody);
    let iv = b.use_var(i);
    // The copies' steps interleaved: the loop is bound by the latency of
    // its divisions and roots more than by their throughput, and the
    // out-of-order window then holds work of both copies.
    let copies: Vec<_> = (0..UNROLL)
        .map(|u| {
            let at = b.ins().iadd_imm(iv, u * e.width);
            (
                (u * e.width * e.size) as i32,
                b.ins().band_imm(at, LANES - 1),
            )
        })
        .collect();
    gen.body(&mut b, Shape::Vector, iv, &copies);
    let next = b.ins().iadd_imm(iv, UNROLL * e.width);
    b.def_var(i, next);
    b.ins().jump(vhead, &[]);
    // Single elements: lane (lane0 + i) mod 64.
    b.switch_to_block(thead);
    let iv = b.use_var(i);
    let more = b.ins().icmp(IntCC::UnsignedLessThan, iv, n);
    b.ins().brif(more, tbody, &[], exit, &[]);
    b.switch_to_block(tbody);
    let iv = b.use_var(i);
    let l = b.ins().iadd(iv, lane0);
    let lane = b.ins().band_imm(l, LANES - 1);
    gen.body(&mut b, Shape::Scalar, iv, &[(0, lane)]);
    let next = b.ins().iadd_imm(iv, 1);
    b.def_var(i, next);
    b.ins().jump(thead, &[]);
    b.switch_to_block(exit);
    b.ins().return_(&[]);
    let nums = std::mem::take(&mut gen.nums);
    i32::try_from(nums.len() * 16).map_err(err)?;
    b.seal_all_blocks();
    b.finalize();
    let id = module
        .declare_function("pass", Linkage::Export, &ctx.func.signature)
        .map_err(err)?;
    let disasm = std::env::var("OPTDSL_JIT_LOG").is_ok_and(|v| v == "asm");
    ctx.set_disasm(disasm);
    module.define_function(id, &mut ctx).map_err(err)?;
    if disasm {
        if let Some(code) = ctx.compiled_code().and_then(|c| c.vcode.clone()) {
            eprintln!("{code}");
        }
    }
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(err)?;
    let code = module.get_finalized_function(id);
    // The code lives as long as the process, like text rules' descriptions.
    Box::leak(Box::new(module));
    // SAFETY: the function was declared with this signature (seven
    // pointer-sized parameters, no result) in the host's calling convention.
    let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
    #[cfg(target_arch = "x86_64")]
    // The tail's pointer arrays (`Compiled::run`) hold `MAX_SLOTS`.
    let wide = match wide::available() && nr <= MAX_SLOTS && nw <= MAX_SLOTS {
        true => match wide::compile(&graph, &nums, f64, nr, nw, sum) {
            Ok(w) => {
                let mut wide = wide_loops().lock().unwrap_or_else(|e| e.into_inner());
                *wide.entry(p.name.text.clone()).or_default() += 1;
                Some(w)
            }
            Err(e) => {
                if std::env::var_os("OPTDSL_JIT_LOG").is_some() {
                    eprintln!(
                        "jit: {} {:?}: no 256-bit loop: {}",
                        p.name.text, pass.kind, e.0
                    );
                }
                None
            }
        },
        false => None,
    };
    #[cfg(target_arch = "x86_64")]
    let sums = sum.is_some() && wide.is_some();
    #[cfg(not(target_arch = "x86_64"))]
    let sums = false;
    Ok(Compiled {
        entry,
        nums,
        #[cfg(target_arch = "x86_64")]
        wide,
        sums,
        reads: nr,
        writes: nw,
        size: e.size as usize,
    })
}
