//! The divisions and square roots of one sub-block, for the JIT's hybrid
//! code (`codegen/hybrid.rs`): the generated code spills their operands to
//! scratch arrays and calls [`run_f32`] or [`run_f64`], which run each
//! division or root of a layer as one loop over the sub-block in the widest
//! vectors this CPU has (AVX-512, else AVX2, else the build's own; the level
//! [`crate::exec::level_for`] gives a heavy pass, as compiled rules choose).
//!
//! Why by hand: Cranelift 0.114 emits only 128-bit vectors on x86-64, and a
//! 128-bit `vdivpd`/`vsqrtpd` costs the divider as much as a 256-bit one, so
//! these loops are compiled by rustc (LLVM) instead, once per SIMD level.
//! IEEE division and square root are correctly rounded: the lane width does
//! not change a bit of the results.

use crate::exec::{level_for, Simd};
use optdsl_lang::Real;

/// Where an operand of a division or root is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// Scratch array `k` (the sub-block's values, from element 0).
    Scratch(usize),
    /// The per-step number at place `k` of the code's `cf` array (16 bytes
    /// a place).
    Num(usize),
    /// Slice `k` of those the pass only reads, from the sub-block's start.
    Read(usize),
    /// Slice `k` of those the pass writes, from the sub-block's start (read
    /// before any segment stores it).
    Written(usize),
}

/// A division `a / b` or a root `sqrt(a)` (`b` unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// `a / b`.
    Div,
    /// `sqrt(a)`.
    Sqrt,
}

/// One division or root over a sub-block, into scratch array `out` (never
/// one of the operands' arrays).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchOp {
    /// Division or root.
    pub what: What,
    /// The first operand.
    pub a: Src,
    /// The second operand (divisions).
    pub b: Src,
    /// The scratch array written.
    pub out: usize,
}

/// The divisions and roots of one layer, and the elements between scratch
/// arrays.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Independent operations, run in order.
    pub ops: Vec<BatchOp>,
    /// Elements per scratch array (the sub-block length the code was
    /// compiled for, and some padding).
    pub stride: usize,
    /// The sub-block length.
    pub k: usize,
    /// The slices whose elements of a later sub-block this call prefetches
    /// (see [`prefetch`]): read slices first, then written ones.
    pub prefetch: Vec<Src>,
    /// Bytes per element.
    pub size: usize,
}

/// The signature the generated code calls: the batch, the scratch, the
/// per-step numbers, the read and written slices' pointers, the sub-block's
/// first element and its length.
pub(crate) type BatchFn = unsafe extern "C" fn(
    batch: *const Batch,
    scratch: *mut u8,
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    start: usize,
    n: usize,
);

/// An operand as the loops read it.
#[derive(Clone, Copy)]
enum Arg<'a, F> {
    Vector(&'a [F]),
    Scalar(F),
}

/// [`BatchFn`] for f32.
///
/// # Safety
/// `batch` is a live [`Batch`]; `scratch` holds `stride` f32 per array it
/// names (and is aligned for f32); `cf`, `reads` and `writes` are the
/// pointers the generated code was called with, covering elements
/// `start..start + n`; `n <= stride`.
pub(crate) unsafe extern "C" fn run_f32(
    batch: *const Batch,
    scratch: *mut u8,
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    start: usize,
    n: usize,
) {
    // SAFETY: as this function's contract says.
    unsafe { dispatch::<f32>(&*batch, scratch.cast(), cf, reads, writes, start, n) }
}

/// [`BatchFn`] for f64.
///
/// # Safety
/// As [`run_f32`], with f64.
pub(crate) unsafe extern "C" fn run_f64(
    batch: *const Batch,
    scratch: *mut u8,
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    start: usize,
    n: usize,
) {
    // SAFETY: as this function's contract says.
    unsafe { dispatch::<f64>(&*batch, scratch.cast(), cf, reads, writes, start, n) }
}

/// Runs `batch` at the heavy passes' SIMD level.
///
/// # Safety
/// As [`run_f32`].
unsafe fn dispatch<F: Real>(
    batch: &Batch,
    scratch: *mut F,
    cf: *const u8,
    reads: *const *const u8,
    writes: *const *mut u8,
    start: usize,
    n: usize,
) {
    let n = n.min(batch.stride);
    // SAFETY (of each slice): the contract gives `stride` elements per
    // array and `start..start + n` of each slice; an operation's output
    // array is none of its operands' (the plan allocates it so), and the
    // slices are disjoint from the scratch.
    let arg = |s: Src| -> Arg<'_, F> {
        unsafe {
            match s {
                Src::Scratch(k) => {
                    Arg::Vector(std::slice::from_raw_parts(scratch.add(k * batch.stride), n))
                }
                Src::Num(k) => Arg::Scalar(std::ptr::read(cf.add(16 * k).cast::<F>())),
                Src::Read(k) => Arg::Vector(std::slice::from_raw_parts(
                    (*reads.add(k)).cast::<F>().add(start),
                    n,
                )),
                Src::Written(k) => Arg::Vector(std::slice::from_raw_parts(
                    (*writes.add(k)).cast::<F>().cast_const().add(start),
                    n,
                )),
            }
        }
    };
    prefetch(batch, reads, writes, start);
    let level = level_for(true);
    for op in &batch.ops {
        // SAFETY: as above.
        let out = unsafe { std::slice::from_raw_parts_mut(scratch.add(op.out * batch.stride), n) };
        let (a, b) = (arg(op.a), arg(op.b));
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `level_for` gives only levels this CPU has.
            match level {
                Simd::Avx512 => {
                    unsafe { avx512::one(op.what, out, a, b) };
                    continue;
                }
                Simd::Avx2 => {
                    unsafe { avx2::one(op.what, out, a, b) };
                    continue;
                }
                Simd::Portable => {}
            }
        }
        let _ = level;
        // SAFETY: no CPU feature is needed.
        unsafe { portable::one(op.what, out, a, b) };
    }
}

/// Sub-blocks ahead that [`prefetch`] reads (the default of
/// `OPTDSL_JIT_PREFETCH`).
const AHEAD: usize = 2;

/// Asks the CPU to bring `batch.prefetch`'s slices' elements of the
/// sub-block [`AHEAD`] sub-blocks after the one at `start` into the cache:
/// the hybrid form's segments that first read a sub-block do little
/// arithmetic, so without it they wait on memory while the calls' loops wait
/// on the divider, one after the other, where the plain form's loop overlaps
/// both. (A prefetch past a slice's end does not fault.)
fn prefetch(batch: &Batch, reads: *const *const u8, writes: *const *mut u8, start: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        static AT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let ahead = *AT.get_or_init(|| {
            std::env::var("OPTDSL_JIT_PREFETCH")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(AHEAD)
        });
        if ahead == 0 {
            return;
        }
        let from = (start + ahead * batch.k) * batch.size;
        let bytes = batch.k * batch.size;
        for &s in &batch.prefetch {
            // SAFETY: the pointer arrays hold as many pointers as the pass
            // has slices, which `s` indexes.
            let base = unsafe {
                match s {
                    Src::Read(k) => *reads.add(k),
                    Src::Written(k) => (*writes.add(k)).cast_const(),
                    _ => continue,
                }
            };
            for off in (0..bytes).step_by(64) {
                let p = base.wrapping_add(from + off).cast::<i8>();
                // SAFETY: a prefetch reads nothing and never faults.
                unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (batch, reads, writes, start);
}

/// One module of loops per SIMD level. Each loop is a function of its own
/// taking slices (`&mut` is `noalias` to LLVM, which then vectorizes it
/// without runtime overlap checks; loops inlined over raw pointers were not
/// vectorized).
macro_rules! level {
    ($name:ident $(, $feature:literal)?) => {
        mod $name {
            use super::{Arg, What};
            use optdsl_lang::Real;

            /// `out = a / b` or `sqrt(a)`.
            ///
            /// # Safety
            /// The CPU has the module's features.
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn one<F: Real>(what: What, out: &mut [F], a: Arg<'_, F>, b: Arg<'_, F>) {
                // SAFETY: the same features.
                unsafe {
                    match (what, a, b) {
                        (What::Div, Arg::Vector(a), Arg::Vector(b)) => vv(out, a, b),
                        (What::Div, Arg::Scalar(x), Arg::Vector(b)) => sv(out, x, b),
                        (What::Div, Arg::Vector(a), Arg::Scalar(y)) => vs(out, a, y),
                        (What::Div, Arg::Scalar(x), Arg::Scalar(y)) => out.fill(x / y),
                        (What::Sqrt, Arg::Vector(a), _) => sq(out, a),
                        (What::Sqrt, Arg::Scalar(x), _) => out.fill(x.sqrt()),
                    }
                }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline(never)]
            unsafe fn vv<F: Real>(out: &mut [F], a: &[F], b: &[F]) {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = x / y;
                }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline(never)]
            unsafe fn sv<F: Real>(out: &mut [F], x: F, b: &[F]) {
                for (o, &y) in out.iter_mut().zip(b) {
                    *o = x / y;
                }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline(never)]
            unsafe fn vs<F: Real>(out: &mut [F], a: &[F], y: F) {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = x / y;
                }
            }

            $(#[target_feature(enable = $feature)])?
            #[inline(never)]
            unsafe fn sq<F: Real>(out: &mut [F], a: &[F]) {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = x.sqrt();
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
level!(avx512, "avx512f");
#[cfg(target_arch = "x86_64")]
level!(avx2, "avx2");
level!(portable);
