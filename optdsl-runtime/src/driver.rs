//! The driver: how a pass of a step walks a tensor, for compiled and
//! interpreted rules alike. A tensor is split into super-blocks that threads
//! share ([`Plan`]), each super-block into blocks of [`BLOCK`] elements; in a
//! block, elements are peeled until the first slice is 64-byte aligned, then
//! walked in chunks of [`LANES`], then the tail one by one. Reductions
//! accumulate per lane in the element type (element `e` of a block adds to
//! lane `e mod LANES`, wherever the peel ends), lanes are summed in order in
//! f64, then blocks, then super-blocks, in order. The split depends only on
//! the tensor's length, so results are the same bit for bit on one thread or
//! many, at every SIMD level, compiled or interpreted.

use crate::exec::{level_for, Plan, Simd, BLOCK};
use crate::float::Float;
use crate::quant::{decode_bf16, decode_q8, encode_bf16, encode_q8, quantizer, Packed, Quantizer};
use optdsl_lang::random::Key;
use optdsl_lang::{Draw, Reduction, QBLOCK};
use std::cell::RefCell;

/// Elements per chunk of a kernel's vector loop (one AVX-512 register of f32
/// four times over).
pub const LANES: usize = 64;
/// The most slices one pass may touch.
pub const MAX_SLOTS: usize = 16;
/// The most reductions one pass may compute.
pub const MAX_REDUCTIONS: usize = 16;

/// How a kernel call walks its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    /// Chunks of [`LANES`] elements (the segment's length is a multiple);
    /// element `i` of a chunk adds to lane `i`.
    Chunks,
    /// One element at a time; element `k` adds to lane `lane0 + k`
    /// (the segment is shorter than `LANES - lane0`).
    Single {
        /// The first element's lane.
        lane0: usize,
    },
}

/// One pass's loop over a segment of every slice it touches: `reads` and
/// `writes` in the pass's slot order, all of one length; `acc[j]` the lane
/// accumulators of reduction `j`.
pub trait Kernel<F: Float>: Sync {
    /// Runs the pass over the segment whose first element is element `at`
    /// of the pass's slices (what keys its random draws: [`Draws`]).
    fn run(
        &self,
        at: usize,
        reads: &[&[F]],
        writes: &mut [&mut [F]],
        acc: &mut [[F; LANES]],
        walk: Walk,
    );
}

/// What a pass's random draws (`rand()`, `randn()`) are keyed by, as
/// [`optdsl_lang::random`] defines them: one Philox key per stream of the
/// rule, the step, and the index in the whole tensor of the first element
/// the draws are for. The driver tells a kernel where its segment starts;
/// the kernel adds that to `first`.
#[derive(Debug, Clone, Copy)]
pub struct Draws<'a> {
    /// The key of each stream ([`optdsl_lang::random::stream_key`]).
    pub keys: &'a [Key],
    /// The step (from 1).
    pub step: u64,
    /// The index, in the whole tensor, of element 0 (of the slices stepped,
    /// or of the segment once a kernel has added where it starts).
    pub first: u64,
}

impl Draws<'_> {
    /// No draws (a rule without `rand()` or `randn()`).
    pub const NONE: Draws<'static> = Draws {
        keys: &[],
        step: 0,
        first: 0,
    };

    /// These draws for the elements from `at` on.
    #[inline(always)]
    pub fn at(self, at: usize) -> Self {
        Draws {
            first: self.first.wrapping_add(at as u64),
            ..self
        }
    }

    /// Draw `d` of stream `stream` for element `k` (counted from `first`).
    /// A stream the keys do not cover (never, for keys made from the rule's
    /// program) draws with the all-zero key.
    #[inline(always)]
    pub fn sample<R: optdsl_lang::Real>(&self, d: Draw, stream: u32, k: usize) -> R {
        let key = self.keys.get(stream as usize).copied().unwrap_or_default();
        d.sample(key, self.step, self.first.wrapping_add(k as u64))
    }
}

/// A generated kernel: one copy of a pass's loop for a SIMD level and a
/// choice of per-step booleans; `draws` are keyed for the segment's first
/// element.
pub type KernelFn<F> = unsafe fn(
    cf: &[F],
    cb: &[bool],
    draws: Draws<'_>,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    acc: &mut [[F; LANES]],
    walk: Walk,
);

/// A generated kernel with the per-step values it reads.
pub struct FnKernel<'a, F> {
    f: KernelFn<F>,
    cf: &'a [F],
    cb: &'a [bool],
    draws: Draws<'a>,
}

impl<'a, F> FnKernel<'a, F> {
    /// `f` with its per-step numbers `cf` and booleans `cb` (and no draws:
    /// see [`FnKernel::with_draws`]).
    ///
    /// # Safety
    /// `f` must be compiled for a SIMD level this CPU has (the generated
    /// chooser picks from [`Simd`] levels that [`run_pass`] hands it, which
    /// never exceed the CPU's).
    pub unsafe fn new(f: KernelFn<F>, cf: &'a [F], cb: &'a [bool]) -> Self {
        FnKernel {
            f,
            cf,
            cb,
            draws: Draws::NONE,
        }
    }

    /// This kernel with its random draws keyed by `draws`.
    pub fn with_draws(self, draws: Draws<'a>) -> Self {
        FnKernel { draws, ..self }
    }
}

impl<F: Float> Kernel<F> for FnKernel<'_, F> {
    #[inline]
    fn run(
        &self,
        at: usize,
        reads: &[&[F]],
        writes: &mut [&mut [F]],
        acc: &mut [[F; LANES]],
        walk: Walk,
    ) {
        let draws = self.draws.at(at);
        // SAFETY: `FnKernel::new`'s contract: the level is one the CPU has.
        unsafe { (self.f)(self.cf, self.cb, draws, reads, writes, acc, walk) }
    }
}

/// Pointers to the slices of a pass, shareable across threads; each task
/// rebuilds slices over its own disjoint range.
struct Slices<F> {
    reads: [*const F; MAX_SLOTS],
    writes: [*mut F; MAX_SLOTS],
    nr: usize,
    nw: usize,
}

// SAFETY: the pointers come from `&[F]` and `&mut [F]` borrowed for the whole
// pass; tasks touch disjoint ranges of the written slices.
unsafe impl<F: Send> Send for Slices<F> {}
// SAFETY: as above.
unsafe impl<F: Sync> Sync for Slices<F> {}

fn empty_writes<'a, F>() -> [&'a mut [F]; MAX_SLOTS] {
    std::array::from_fn(|_| &mut [][..])
}

impl<F> Slices<F> {
    /// Pointers to `reads` and `writes` (at most [`MAX_SLOTS`] each).
    fn of(reads: &[&[F]], writes: &mut [&mut [F]]) -> Self {
        let mut slices = Slices {
            reads: [std::ptr::null(); MAX_SLOTS],
            writes: [std::ptr::null_mut(); MAX_SLOTS],
            nr: reads.len(),
            nw: writes.len(),
        };
        // An empty slice stays null: its ranges are empty (see `range`).
        for (k, r) in reads.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            slices.reads[k] = r.as_ptr();
        }
        for (k, w) in writes.iter_mut().enumerate().filter(|(_, w)| !w.is_empty()) {
            slices.writes[k] = w.as_mut_ptr();
        }
        slices
    }

    /// The address of element `at` of the first written slice that is not
    /// empty, or else of the first such read one (`None` without one): what
    /// [`peel`] aligns.
    fn first_ptr(&self, at: usize) -> Option<*const F> {
        // The first slice that is not empty (an empty one is null).
        let first = self.writes[..self.nw]
            .iter()
            .map(|p| p.cast_const())
            .chain(self.reads[..self.nr].iter().copied())
            .find(|p| !p.is_null())?;
        Some(first.wrapping_add(at))
    }

    /// The slices' elements `lo..hi`.
    ///
    /// # Safety
    /// No other live slice may overlap `lo..hi` of a written slice.
    unsafe fn range<'a>(
        &self,
        lo: usize,
        hi: usize,
    ) -> ([&'a [F]; MAX_SLOTS], [&'a mut [F]; MAX_SLOTS]) {
        let mut r: [&'a [F]; MAX_SLOTS] = [&[]; MAX_SLOTS];
        let mut w = empty_writes();
        for (dst, &p) in r.iter_mut().zip(&self.reads[..self.nr]) {
            if !p.is_null() {
                // SAFETY: in bounds (lo <= hi <= len, checked by run_pass).
                *dst = unsafe { std::slice::from_raw_parts(p.add(lo), hi - lo) };
            }
        }
        for (dst, &p) in w.iter_mut().zip(&self.writes[..self.nw]) {
            if !p.is_null() {
                // SAFETY: in bounds, and disjoint by the caller's contract.
                *dst = unsafe { std::slice::from_raw_parts_mut(p.add(lo), hi - lo) };
            }
        }
        (r, w)
    }
}

/// Why a pass cannot run: more slices or reductions than the driver holds,
/// or slices of different lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassShapeError(pub String);

/// Runs one pass over `n` elements: `select` gives the kernel for a SIMD
/// level (the CPU's best for `heavy` passes, at most AVX2 otherwise, or the
/// one `OPTDSL_SIMD` asks for); `out[j]` receives reduction `j`'s combined
/// partial result (before [`Reduction::finish`]).
pub fn run_pass<F: Float, K: Kernel<F>>(
    select: impl Fn(Simd) -> K,
    heavy: bool,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    reductions: &[Reduction],
    out: &mut [f64],
) -> Result<(), PassShapeError> {
    let n = writes
        .first()
        .map(|w| w.len())
        .or_else(|| reads.first().map(|r| r.len()))
        .unwrap_or(0);
    let lengths_ok = reads.iter().all(|r| r.len() == n) && writes.iter().all(|w| w.len() == n);
    check_pass(
        (reads.len(), writes.len()),
        (reductions.len(), out.len()),
        lengths_ok,
    )?;
    let kernel = select(level_for(heavy));
    let slices = Slices::of(reads, writes);
    over_supers(n, reductions, out, |lo, hi| {
        // SAFETY: super-blocks are disjoint ranges of every slice.
        let (r, mut w) = unsafe { slices.range(lo, hi) };
        super_block(
            &kernel,
            lo,
            &r[..slices.nr],
            &mut w[..slices.nw],
            reductions,
        )
    });
    Ok(())
}

/// The one check of a pass's shape, for every kind of pass: the driver's
/// limits (at most [`MAX_SLOTS`] slices read and written, [`MAX_REDUCTIONS`]
/// reductions), slices of one length (`lengths_ok`, as the caller's layout
/// defines it) and a result for every reduction (`nout` of them).
fn check_pass(
    (nr, nw): (usize, usize),
    (nred, nout): (usize, usize),
    lengths_ok: bool,
) -> Result<(), PassShapeError> {
    if nr > MAX_SLOTS || nw > MAX_SLOTS || nred > MAX_REDUCTIONS {
        return Err(PassShapeError(format!(
            "a pass touches {} slices and computes {nred} reductions; the driver holds at most {MAX_SLOTS} and {MAX_REDUCTIONS}",
            nr + nw
        )));
    }
    if !lengths_ok {
        return Err(PassShapeError(
            "the slices of a pass differ in length".into(),
        ));
    }
    if nout < nred {
        return Err(PassShapeError(format!(
            "{nred} reductions need {nred} results, {nout} given"
        )));
    }
    Ok(())
}

/// Runs `run_super(lo, hi)` on every super-block of a tensor of `n`
/// elements ([`Plan`]: in parallel when the plan says so) and combines
/// their reductions into `out`, in super-block order.
fn over_supers(
    n: usize,
    reductions: &[Reduction],
    out: &mut [f64],
    run_super: impl Fn(usize, usize) -> [f64; MAX_REDUCTIONS] + Sync,
) {
    let out = &mut out[..reductions.len()];
    out.fill(0.0);
    let plan = Plan::new(n);
    let part = |s: usize| run_super(s * plan.size, ((s + 1) * plan.size).min(n));
    let mut combine = |part: &[f64; MAX_REDUCTIONS]| {
        for (j, r) in reductions.iter().enumerate() {
            out[j] = r.combine(out[j], part[j]);
        }
    };
    if plan.parallel {
        use rayon::prelude::*;
        let parts: Vec<[f64; MAX_REDUCTIONS]> = (0..plan.count).into_par_iter().map(part).collect();
        parts.iter().for_each(&mut combine);
    } else {
        for s in 0..plan.count {
            combine(&part(s));
        }
    }
}

/// Elements a staged pass decodes at a time: a whole block of [`BLOCK`] (a
/// multiple of [`QBLOCK`] and of [`LANES`]), so that each block pays the
/// per-stage calls once. With a few buffers the area stays in L2. Against
/// stages of 1,024 (in L1), Adam with 8-bit state measured 7% less time in
/// cache and 8% less at 10^7 parameters on 2 threads (`cargo run --release
/// --example state_speed`, docs/compressed-state.md).
pub const STAGE: usize = BLOCK;
const _: () = assert!(
    STAGE.is_multiple_of(QBLOCK) && STAGE.is_multiple_of(LANES) && BLOCK.is_multiple_of(STAGE)
);

/// A generated kernel whose buffer slices are bfloat16 bits, converted in
/// registers as it loads and stores them ([`optdsl_lang::Real::from_bf16`],
/// [`optdsl_lang::Real::to_bf16`]): `hreads` and `hwrites` are the pass's
/// buffers among its reads and writes, in order; `reads` and `writes` the
/// rest.
pub type KernelFnHalf<F> = unsafe fn(
    cf: &[F],
    cb: &[bool],
    draws: Draws<'_>,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    hreads: &[&[u16]],
    hwrites: &mut [&mut [u16]],
    acc: &mut [[F; LANES]],
    walk: Walk,
);

/// The bfloat16 bits of a buffer kept as bfloat16 rounded to nearest even
/// (what [`run_pass_half`] takes; empty otherwise).
pub fn bf16_bits(p: Option<&Packed>) -> &[u16] {
    match p {
        Some(Packed::Bf16 {
            bits,
            stochastic: None,
        }) => bits,
        _ => &[],
    }
}

/// [`bf16_bits`], to be written.
pub fn bf16_bits_mut(p: Option<&mut Packed>) -> &mut [u16] {
    match p {
        Some(Packed::Bf16 {
            bits,
            stochastic: None,
        }) => bits,
        _ => &mut [],
    }
}

/// Whether every one of a pass's buffers (each with whether the running
/// variant leaves it alone) is kept as bfloat16 rounded to nearest even, or
/// is a deferred bfloat16 buffer rounded to nearest that the variant leaves
/// alone ([`Packed::Deferred`]): then [`run_pass_half`] can run it.
pub fn all_bf16(ps: &[(Option<&Packed>, bool)]) -> bool {
    ps.iter().all(|&(p, idle)| match p {
        Some(Packed::Bf16 {
            stochastic: None, ..
        }) => true,
        Some(Packed::Deferred {
            signed: None,
            stochastic: None,
            ..
        }) => idle,
        _ => false,
    })
}

/// [`run_pass_packed_idle`] for a pass whose buffers are all bfloat16 rounded
/// to nearest even, with a kernel that converts them in registers
/// ([`KernelFnHalf`]): no staging, one pass over memory. The walk is
/// [`run_pass`]'s (blocks of [`BLOCK`] from each super-block's start, a peel
/// until the plain slices are 64-byte aligned, chunks of [`LANES`], the
/// block's tail one by one), its reductions summed per lane by the
/// element's position in its block as the staged walk sums them, and the
/// conversions are the staged ones, so the bits are the same; the kernel
/// skips the stores of buffers its variant leaves alone, as the staged pass
/// skips their encoding. An empty bfloat16 slice (of a tensor that is not)
/// stands for a deferred buffer the variant leaves alone ([`all_bf16`]): the
/// kernel is handed scratch in its place.
#[allow(clippy::too_many_arguments)]
pub fn run_pass_half<F: Float>(
    select: impl Fn(Simd) -> KernelFnHalf<F>,
    (cf, cb, draws): (&[F], &[bool], Draws<'_>),
    heavy: bool,
    n: usize,
    (reads, writes): (&[&[F]], &mut [&mut [F]]),
    (hreads, hwrites): (&[&[u16]], &mut [&mut [u16]]),
    reductions: &[Reduction],
    out: &mut [f64],
) -> Result<(), PassShapeError> {
    let lengths_ok = reads.iter().all(|r| r.len() == n)
        && writes.iter().all(|w| w.len() == n)
        && hreads.iter().all(|r| r.len() == n || r.is_empty())
        && hwrites.iter().all(|w| w.len() == n || w.is_empty());
    check_pass(
        (reads.len() + hreads.len(), writes.len() + hwrites.len()),
        (reductions.len(), out.len()),
        lengths_ok,
    )?;
    let f = select(level_for(heavy));
    let plain = Slices::of(reads, writes);
    let absent_reads: Vec<usize> = (0..hreads.len())
        .filter(|&k| hreads[k].is_empty())
        .collect();
    let absent_writes: Vec<usize> = (0..hwrites.len())
        .filter(|&k| hwrites[k].is_empty())
        .collect();
    let half = Slices::of(hreads, hwrites);
    over_supers(n, reductions, out, |lo, hi| {
        with_half_scratch(absent_writes.len() * BLOCK, |scratch| {
            half_super(
                f,
                (cf, cb, draws),
                (&plain, &half),
                (&absent_reads, &absent_writes, scratch),
                (lo, hi),
                reductions,
            )
        })
    });
    Ok(())
}

/// Zeros that stand for absent bfloat16 slices the kernel only reads.
static HALF_ZEROS: [u16; BLOCK] = [0; BLOCK];

thread_local! {
    /// Per thread, the scratch that stands for absent bfloat16 slices the
    /// kernel may write ([`run_pass_half`]); grown once, kept.
    static HALF_SCRATCH: std::cell::RefCell<Vec<u16>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's half scratch, at least `len` long.
fn with_half_scratch<R>(len: usize, f: impl FnOnce(&mut [u16]) -> R) -> R {
    HALF_SCRATCH.with(|cell| {
        let mut v = cell.borrow_mut();
        if v.len() < len {
            v.resize(len, 0);
        }
        f(&mut v[..len])
    })
}

/// One super-block `lo..hi` of [`run_pass_half`].
#[allow(clippy::type_complexity)]
fn half_super<F: Float>(
    f: KernelFnHalf<F>,
    (cf, cb, draws): (&[F], &[bool], Draws<'_>),
    (plain, half): (&Slices<F>, &Slices<u16>),
    (absent_reads, absent_writes, scratch): (&[usize], &[usize], &mut [u16]),
    (lo, hi): (usize, usize),
    reductions: &[Reduction],
) -> [f64; MAX_REDUCTIONS] {
    let nred = reductions.len();
    let mut red = [0.0f64; MAX_REDUCTIONS];
    let mut block = lo;
    while block < hi {
        let block_end = (block + BLOCK).min(hi);
        let mut acc = [[F::ZERO; LANES]; MAX_REDUCTIONS];
        let acc = &mut acc[..nred];
        // The plain slices' peel, as `super_block`'s: the same lanes by
        // position in the block, so the same bits as the staged walk.
        let head = plain
            .first_ptr(block)
            .map_or(0, |p| peel(p, block_end - block));
        for (a, b, walk) in segments(block, block_end, head) {
            if a == b {
                continue;
            }
            // SAFETY: super-blocks are disjoint ranges of every slice,
            // and a..b lies in this one.
            let ((r, mut w), (mut hr, mut hw)) = unsafe { (plain.range(a, b), half.range(a, b)) };
            for &k in absent_reads {
                hr[k] = &HALF_ZEROS[..b - a];
            }
            for (&k, part) in absent_writes.iter().zip(scratch.chunks_mut(BLOCK)) {
                hw[k] = &mut part[..b - a];
            }
            // SAFETY: `select` gives kernels for levels this CPU has (the
            // generated chooser, handed the level `level_for` allows).
            unsafe {
                f(
                    cf,
                    cb,
                    draws.at(a),
                    &r[..plain.nr],
                    &mut w[..plain.nw],
                    &hr[..half.nr],
                    &mut hw[..half.nw],
                    acc,
                    walk,
                )
            };
        }
        for (j, r) in reductions.iter().enumerate() {
            red[j] = r.combine(red[j], finish_block(*r, &acc[j], head));
        }
        block = block_end;
    }
    red
}

/// A compressed buffer's parts, shareable across threads; tasks touch
/// disjoint blocks.
#[derive(Clone, Copy)]
enum RawPacked {
    Bf16 {
        bits: *mut u16,
        stochastic: Option<u64>,
    },
    Q8 {
        codes: *mut u8,
        absmax: *mut f32,
        q: &'static Quantizer,
    },
    /// [`Packed::Deferred`]: every element the same bytes, nothing stored
    /// (a pass that writes it stores it in full first).
    Deferred {
        signed: Option<bool>,
        code: u16,
        absmax: f32,
    },
}

impl RawPacked {
    fn of(p: &Packed) -> RawPacked {
        // Only `encode` writes through the pointers, and only for buffers
        // the pass holds as `&mut Packed` (see `run_pass_packed`).
        match p {
            Packed::Bf16 { bits, stochastic } => RawPacked::Bf16 {
                bits: bits.as_ptr().cast_mut(),
                stochastic: *stochastic,
            },
            Packed::Q8 {
                signed,
                codes,
                absmax,
            } => RawPacked::Q8 {
                codes: codes.as_ptr().cast_mut(),
                absmax: absmax.as_ptr().cast_mut(),
                q: quantizer(*signed),
            },
            Packed::Deferred {
                signed,
                code,
                absmax,
                ..
            } => RawPacked::Deferred {
                signed: *signed,
                code: *code,
                absmax: *absmax,
            },
        }
    }

    /// Elements `lo..lo + out.len()` decoded.
    ///
    /// # Safety
    /// In bounds, and no task writes them meanwhile.
    unsafe fn decode<F: Float>(self, lo: usize, out: &mut [F]) {
        let n = out.len();
        match self {
            RawPacked::Bf16 { bits, .. } => {
                // SAFETY: the caller's contract.
                let src = unsafe { std::slice::from_raw_parts(bits.add(lo), n) };
                decode_bf16(src, out);
            }
            RawPacked::Q8 { codes, absmax, q } => {
                // SAFETY: the caller's contract; the maxima of the blocks
                // that `lo..lo + n` touches.
                let (src, scales) = unsafe {
                    (
                        std::slice::from_raw_parts(codes.add(lo), n),
                        std::slice::from_raw_parts(
                            absmax.add(lo / QBLOCK),
                            (lo + n).div_ceil(QBLOCK) - lo / QBLOCK,
                        ),
                    )
                };
                decode_q8(q, src, scales, lo, out);
            }
            RawPacked::Deferred {
                signed,
                code,
                absmax,
            } => out.fill(Packed::deferred_value(signed, code, absmax)),
        }
    }

    /// Stores `xs` as elements `lo..lo + xs.len()` (whole blocks for 8-bit:
    /// `lo` at a block boundary, `xs` ending at one or at the buffer's end).
    ///
    /// # Safety
    /// In bounds, and no other task touches those blocks.
    unsafe fn encode<F: Float>(self, lo: usize, xs: &[F], step: u64) {
        let n = xs.len();
        match self {
            RawPacked::Bf16 { bits, stochastic } => {
                // SAFETY: the caller's contract.
                let dst = unsafe { std::slice::from_raw_parts_mut(bits.add(lo), n) };
                encode_bf16(dst, xs, stochastic, step, lo);
            }
            RawPacked::Q8 { codes, absmax, q } => {
                // SAFETY: the caller's contract: this task owns the blocks
                // from `lo / QBLOCK` that `xs` covers.
                let (dst, scales) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(codes.add(lo), n),
                        std::slice::from_raw_parts_mut(absmax.add(lo / QBLOCK), n.div_ceil(QBLOCK)),
                    )
                };
                encode_q8(q, dst, scales, xs);
            }
            RawPacked::Deferred { .. } => {
                unreachable!("a pass stores a deferred buffer in full before it writes it")
            }
        }
    }
}

/// 64 bytes of a staging area, aligned to a cache line (so that every part
/// of [`STAGE`] elements starts on one: full-width loads and stores never
/// split a line).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f64; 8]);

thread_local! {
    /// Each thread's staging area for decoded buffers (as f64 words in
    /// cache lines, so that f32 and f64 elements are both aligned).
    static STAGING: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `len` elements of this thread's staging area.
fn with_staging<F: Float, R>(len: usize, f: impl FnOnce(&mut [F]) -> R) -> R {
    const { assert!(std::mem::align_of::<F>() <= std::mem::align_of::<Line>()) };
    STAGING.with(|cell| {
        let mut v = cell.borrow_mut();
        let lines = (len * std::mem::size_of::<F>()).div_ceil(std::mem::size_of::<Line>());
        if v.len() < lines {
            v.resize(lines, Line([0.0; 8]));
        }
        // SAFETY: `F` is f32 or f64 (plain data, any bits valid), the area
        // holds `len` of them and is aligned for them (checked above).
        let area = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<F>(), len) };
        f(area)
    })
}

/// A state's compressed buffers one by one (`None` for a buffer kept in the
/// element type, and for every buffer when `packed` is empty), for generated
/// steps to hand [`run_pass_packed`].
pub fn packed_views<const N: usize>(packed: &mut [Option<Packed>]) -> [Option<&mut Packed>; N] {
    let mut it = packed.iter_mut();
    std::array::from_fn(|_| it.next().and_then(Option::as_mut))
}

/// [`run_pass`] for a pass that may touch compressed buffers: `packed_reads[k]`
/// (`packed_writes[k]`) stands for `reads[k]` (`writes[k]`) when it is
/// `Some`, and that plain slice is then empty. With none compressed, this is
/// [`run_pass`]. Otherwise every block of [`STAGE`] elements is decoded into
/// the thread's staging area, the kernel runs over it, and the written
/// buffers are encoded back from it: one pass over memory. `n` is the
/// tensor's length; `step` keys stochastic rounding. Reductions sum in the
/// same order as [`run_pass`]'s (per lane by the element's position in its
/// block), so a compressed state changes results only by its rounding.
#[allow(clippy::too_many_arguments)]
pub fn run_pass_packed<F: Float, K: Kernel<F>>(
    select: impl Fn(Simd) -> K,
    heavy: bool,
    n: usize,
    step: u64,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    packed_reads: &[Option<&Packed>],
    packed_writes: &mut [Option<&mut Packed>],
    reductions: &[Reduction],
    out: &mut [f64],
) -> Result<(), PassShapeError> {
    run_pass_packed_idle(
        select,
        heavy,
        n,
        step,
        (reads, writes),
        (packed_reads, packed_writes),
        Idle::NONE,
        reductions,
        out,
    )
}

/// Which of a pass's slices the running variant of its kernel neither needs
/// nor changes (`optdsl_lang::passes::Pass::idle_slots`): bit `k` of `reads`
/// (`writes`) for `reads[k]` (`writes[k]`). A compressed buffer that is idle
/// is neither decoded nor encoded (its bytes stay as they are); the kernel
/// sees scratch values in its place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Idle {
    /// Idle slices among the reads, one bit each.
    pub reads: u32,
    /// Idle slices among the writes, one bit each.
    pub writes: u32,
}

impl Idle {
    /// No slice idle.
    pub const NONE: Idle = Idle {
        reads: 0,
        writes: 0,
    };

    /// The slices `pass` leaves alone in its variant for `bools`
    /// ([`optdsl_lang::passes::Pass::idle_masks`]).
    pub fn of_pass(
        pass: &optdsl_lang::passes::Pass,
        p: &optdsl_lang::Program,
        bools: &[bool],
    ) -> Idle {
        let (reads, writes) = pass.idle_masks(p, bools);
        Idle { reads, writes }
    }
}

/// [`run_pass_packed`] knowing which slices the kernel's variant leaves
/// alone ([`Idle`]): those that are compressed are not decoded or encoded.
#[allow(clippy::too_many_arguments)]
pub fn run_pass_packed_idle<F: Float, K: Kernel<F>>(
    select: impl Fn(Simd) -> K,
    heavy: bool,
    n: usize,
    step: u64,
    (reads, writes): (&[&[F]], &mut [&mut [F]]),
    (packed_reads, packed_writes): (&[Option<&Packed>], &mut [Option<&mut Packed>]),
    idle: Idle,
    reductions: &[Reduction],
    out: &mut [f64],
) -> Result<(), PassShapeError> {
    if packed_reads.iter().all(Option::is_none) && packed_writes.iter().all(Option::is_none) {
        return run_pass(select, heavy, reads, writes, reductions, out);
    }
    let fits = |len: usize, p: Option<&Packed>| match p {
        Some(p) => len == 0 && p.len() == n && p.is_consistent(),
        None => len == n,
    };
    let ok = reads.len() == packed_reads.len()
        && writes.len() == packed_writes.len()
        && reads
            .iter()
            .zip(packed_reads)
            .all(|(r, p)| fits(r.len(), *p))
        && writes
            .iter()
            .zip(packed_writes.iter())
            .all(|(w, p)| fits(w.len(), p.as_deref()));
    check_pass(
        (reads.len(), writes.len()),
        (reductions.len(), out.len()),
        ok,
    )?;
    let kernel = select(level_for(heavy));
    let slices = Slices::of(reads, writes);
    let mut packs = Packs {
        reads: [None; MAX_SLOTS],
        writes: [None; MAX_SLOTS],
        idle_reads: [false; MAX_SLOTS],
        idle_writes: [false; MAX_SLOTS],
    };
    for (k, p) in packed_reads.iter().enumerate() {
        packs.reads[k] = p.map(RawPacked::of);
        packs.idle_reads[k] = p.is_some() && idle.reads >> k & 1 == 1;
    }
    for (k, p) in packed_writes.iter_mut().enumerate() {
        packs.idle_writes[k] = p.is_some() && idle.writes >> k & 1 == 1;
        if let Some(p) = p.as_deref_mut().filter(|_| !packs.idle_writes[k]) {
            // A deferred buffer this variant changes is stored in full, once.
            p.allocate();
        }
        packs.writes[k] = p.as_deref().map(RawPacked::of);
    }
    over_supers(n, reductions, out, |lo, hi| {
        // SAFETY: super-blocks are disjoint ranges (whole 8-bit blocks: the
        // super-block size is a multiple of BLOCK, itself of QBLOCK).
        unsafe { staged_super(&kernel, &slices, &packs, lo, hi, step, reductions) }
    });
    Ok(())
}

/// The compressed buffers of a pass, by position among its reads and writes.
struct Packs {
    reads: [Option<RawPacked>; MAX_SLOTS],
    writes: [Option<RawPacked>; MAX_SLOTS],
    /// Compressed buffers the kernel leaves alone ([`Idle`]).
    idle_reads: [bool; MAX_SLOTS],
    idle_writes: [bool; MAX_SLOTS],
}

// SAFETY: as for `Slices`: the pointers come from buffers borrowed for the
// whole pass, and tasks touch disjoint blocks of the written ones.
unsafe impl Send for Packs {}
// SAFETY: as above.
unsafe impl Sync for Packs {}

/// One super-block `lo..hi` of a staged pass: blocks of [`BLOCK`] for the
/// reductions (as [`super_block`], without a peel), each walked in stages of
/// [`STAGE`] elements.
///
/// # Safety
/// `lo..hi` is disjoint from every other task's range, and begins at a
/// multiple of [`BLOCK`].
unsafe fn staged_super<F: Float, K: Kernel<F>>(
    kernel: &K,
    slices: &Slices<F>,
    packs: &Packs,
    lo: usize,
    hi: usize,
    step: u64,
    reductions: &[Reduction],
) -> [f64; MAX_REDUCTIONS] {
    let (nr, nw) = (slices.nr, slices.nw);
    let nred = reductions.len();
    let staged = packs.reads[..nr].iter().filter(|p| p.is_some()).count()
        + packs.writes[..nw].iter().filter(|p| p.is_some()).count();
    let mut red = [0.0f64; MAX_REDUCTIONS];
    with_staging::<F, _>(staged * STAGE, |area| {
        let mut block = lo;
        while block < hi {
            let block_end = (block + BLOCK).min(hi);
            let mut acc = [[F::ZERO; LANES]; MAX_REDUCTIONS];
            let acc = &mut acc[..nred];
            let mut a = block;
            while a < block_end {
                let b = (a + STAGE).min(block_end);
                let len = b - a;
                // SAFETY: the caller's contract (this task owns a..b).
                let (mut r, mut w) = unsafe { slices.range(a, b) };
                let mut parts = area.chunks_mut(STAGE);
                let mut staged_writes: [Option<(RawPacked, usize)>; MAX_SLOTS] = [None; MAX_SLOTS];
                for (k, (slot, p)) in r[..nr].iter_mut().zip(&packs.reads[..nr]).enumerate() {
                    if let Some(p) = p {
                        let part =
                            &mut parts.next().expect("staging sized for every buffer")[..len];
                        // An idle buffer's part holds scratch values: the
                        // kernel neither needs them nor changes them.
                        if !packs.idle_reads[k] {
                            // SAFETY: in bounds; no task writes a read buffer.
                            unsafe { p.decode(a, part) };
                        }
                        *slot = part;
                    }
                }
                for k in 0..nw {
                    if let Some(p) = packs.writes[k] {
                        let part =
                            &mut parts.next().expect("staging sized for every buffer")[..len];
                        // An idle buffer is neither decoded nor encoded: it
                        // keeps its bytes.
                        if !packs.idle_writes[k] {
                            // SAFETY: this task owns a..b of the buffer.
                            unsafe { p.decode(a, part) };
                            staged_writes[k] = Some((p, k));
                        }
                        w[k] = part;
                    }
                }
                let m = len / LANES * LANES;
                if m > 0 {
                    let mut rc: [&[F]; MAX_SLOTS] = [&[]; MAX_SLOTS];
                    for (dst, src) in rc.iter_mut().zip(&r[..nr]) {
                        *dst = &src[..m];
                    }
                    let mut wc = empty_writes();
                    for (dst, src) in wc.iter_mut().zip(w[..nw].iter_mut()) {
                        *dst = &mut src[..m];
                    }
                    kernel.run(a, &rc[..nr], &mut wc[..nw], acc, Walk::Chunks);
                }
                if m < len {
                    let mut rc: [&[F]; MAX_SLOTS] = [&[]; MAX_SLOTS];
                    for (dst, src) in rc.iter_mut().zip(&r[..nr]) {
                        *dst = &src[m..];
                    }
                    let mut wc = empty_writes();
                    for (dst, src) in wc.iter_mut().zip(w[..nw].iter_mut()) {
                        *dst = &mut src[m..];
                    }
                    let walk = Walk::Single { lane0: 0 };
                    kernel.run(a + m, &rc[..nr], &mut wc[..nw], acc, walk);
                }
                for (p, k) in staged_writes.iter().flatten() {
                    // SAFETY: this task owns a..b, whole 8-bit blocks (a is a
                    // multiple of STAGE, b one or the tensor's end).
                    unsafe { p.encode(a, &w[*k][..len], step) };
                }
                a = b;
            }
            for (j, r) in reductions.iter().enumerate() {
                red[j] = r.combine(red[j], finish_block(*r, &acc[j], 0));
            }
            block = block_end;
        }
    });
    red
}

/// Where the peel of a block ends: elements before it are walked one by one
/// so that the rest starts 64-byte aligned (buffers of one tensor share their
/// offset from the page, so aligning the first aligns all).
pub fn peel<F>(first: *const F, len: usize) -> usize {
    let size = std::mem::size_of::<F>();
    let bytes = (64 - first as usize % 64) % 64;
    if size > 0 && bytes.is_multiple_of(size) {
        (bytes / size).min(len)
    } else {
        0
    }
}

/// A block `lo..hi` as the kernel walks it: the `head` elements of the peel
/// one at a time (in the lanes the block's chunks would give them), whole
/// chunks of `LANES`, then the tail one at a time. Empty segments are kept;
/// callers skip them.
fn segments(lo: usize, hi: usize, head: usize) -> [(usize, usize, Walk); 3] {
    let m = lo + head + (hi - lo - head) / LANES * LANES;
    [
        (
            lo,
            lo + head,
            Walk::Single {
                lane0: LANES - head,
            },
        ),
        (lo + head, m, Walk::Chunks),
        (m, hi, Walk::Single { lane0: 0 }),
    ]
}

/// The lane sum of one block's accumulators, in the order of its elements.
fn finish_block<F: Float>(r: Reduction, acc: &[F; LANES], head: usize) -> f64 {
    match r {
        Reduction::MaxAbs => acc
            .iter()
            .fold(0.0f64, |m, &x| optdsl_lang::Real::maximum(m, x.to_f64())),
        _ => (0..LANES)
            .map(|l| acc[(l + LANES - head % LANES) % LANES].to_f64())
            .sum::<f64>(),
    }
}

/// One super-block of a pass: its slices start at element `start` of the
/// pass's.
fn super_block<F: Float, K: Kernel<F>>(
    kernel: &K,
    start: usize,
    reads: &[&[F]],
    writes: &mut [&mut [F]],
    reductions: &[Reduction],
) -> [f64; MAX_REDUCTIONS] {
    let nred = reductions.len();
    let len = writes
        .first()
        .map(|w| w.len())
        .or_else(|| reads.first().map(|r| r.len()))
        .unwrap_or(0);
    let (nr, nw) = (reads.len(), writes.len());
    let mut red = [0.0f64; MAX_REDUCTIONS];
    let mut lo = 0;
    while lo < len {
        let hi = (lo + BLOCK).min(len);
        let first = writes
            .first()
            .map(|w| w[lo..].as_ptr())
            .or_else(|| reads.first().map(|r| r[lo..].as_ptr()))
            .unwrap_or(std::ptr::null());
        let head = peel(first, hi - lo);
        let mut acc = [[F::ZERO; LANES]; MAX_REDUCTIONS];
        let acc = &mut acc[..nred];
        for (a, b, walk) in segments(lo, hi, head) {
            if a == b {
                continue;
            }
            let mut r: [&[F]; MAX_SLOTS] = [&[]; MAX_SLOTS];
            for (dst, src) in r.iter_mut().zip(reads) {
                *dst = &src[a..b];
            }
            let mut w = empty_writes();
            for (dst, src) in w.iter_mut().zip(writes.iter_mut()) {
                *dst = &mut src[a..b];
            }
            kernel.run(start + a, &r[..nr], &mut w[..nw], acc, walk);
        }
        for (j, r) in reductions.iter().enumerate() {
            red[j] = r.combine(red[j], finish_block(*r, &acc[j], head));
        }
        lo = hi;
    }
    red
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `w -= 0.5 * g` and `Σ g`, `max |g|`, as a hand-written kernel.
    struct Descent;
    impl Kernel<f64> for Descent {
        fn run(
            &self,
            _at: usize,
            r: &[&[f64]],
            w: &mut [&mut [f64]],
            acc: &mut [[f64; LANES]],
            walk: Walk,
        ) {
            let lane = |k: usize| match walk {
                Walk::Chunks => k % LANES,
                Walk::Single { lane0 } => lane0 + k,
            };
            for k in 0..r[0].len() {
                w[0][k] -= 0.5 * r[0][k];
                acc[0][lane(k)] += r[0][k];
                acc[1][lane(k)] = optdsl_lang::Real::maximum(acc[1][lane(k)], r[0][k].abs());
            }
        }
    }

    fn run(w: &mut [f64], g: &[f64]) -> [f64; 2] {
        let mut out = [0.0; 2];
        run_pass(
            |_| Descent,
            false,
            &[g],
            &mut [w],
            &[Reduction::Sum, Reduction::MaxAbs],
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn every_element_is_visited_once_and_reductions_are_exact_sums() {
        for n in [
            0,
            1,
            63,
            64,
            65,
            BLOCK - 1,
            BLOCK + 7,
            3 * BLOCK + 100,
            300_001,
        ] {
            let g: Vec<f64> = (0..n).map(|i| (i % 7) as f64 - 3.0).collect();
            let mut w = vec![1.0; n];
            let [sum, max] = run(&mut w, &g);
            assert!(w.iter().zip(&g).all(|(w, g)| *w == 1.0 - 0.5 * g), "{n}");
            assert_eq!(sum, g.iter().sum::<f64>(), "{n}");
            assert_eq!(max, if n == 0 { 0.0 } else { 3.0 });
        }
    }

    #[test]
    fn sums_do_not_depend_on_alignment_or_threads() {
        let n = 3 * BLOCK + 777;
        let g: Vec<f64> = (0..n + 8)
            .map(|i| ((i * 7919) % 1000) as f64 * 1e-3 + 1e-9)
            .collect();
        let mut reference = None;
        for off in 0..8 {
            let mut w = vec![0.0; n];
            let sum = run(&mut w, &g[off..off + n])[0];
            let mut w2 = vec![0.0; n];
            let one = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let sum1 = one.install(|| run(&mut w2, &g[off..off + n])[0]);
            assert_eq!(sum.to_bits(), sum1.to_bits());
            if off == 0 {
                reference = Some(sum);
            }
        }
        assert!(reference.is_some());
    }

    /// `w[k] = at + k`: where the driver says each segment starts.
    struct Index;
    impl Kernel<f64> for Index {
        fn run(
            &self,
            at: usize,
            _r: &[&[f64]],
            w: &mut [&mut [f64]],
            _acc: &mut [[f64; LANES]],
            _walk: Walk,
        ) {
            for (k, x) in w[0].iter_mut().enumerate() {
                *x = (at + k) as f64;
            }
        }
    }

    #[test]
    fn every_segment_is_told_where_it_starts() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for n in [1, 65, BLOCK + 3, 3 * BLOCK + 100, 300_001] {
                let want: Vec<f64> = (0..n).map(|i| i as f64).collect();
                let mut w = vec![-1.0; n + 1];
                // Offset by one element, so that blocks start with a peel.
                let (_, tail) = w.split_at_mut(1);
                pool.install(|| run_pass(|_| Index, false, &[], &mut [tail], &[], &mut []))
                    .unwrap();
                assert_eq!(&w[1..], &want[..], "n={n} threads={threads}");
                // Staged: a compressed buffer read beside w.
                let packed = Packed::new(optdsl_lang::Storage::Bf16, n, 0.0).unwrap();
                let mut w = vec![-1.0; n];
                pool.install(|| {
                    run_pass_packed(
                        |_| Index,
                        false,
                        n,
                        1,
                        &[&[]],
                        &mut [&mut w],
                        &[Some(&packed)],
                        &mut [None],
                        &[],
                        &mut [],
                    )
                })
                .unwrap();
                assert_eq!(w, want, "staged n={n} threads={threads}");
            }
        }
    }

    #[test]
    fn slices_of_other_lengths_are_refused() {
        let mut w = vec![0.0; 3];
        let mut out = [0.0; 0];
        assert!(run_pass(
            |_| Descent,
            false,
            &[&[1.0, 2.0]],
            &mut [&mut w],
            &[],
            &mut out
        )
        .is_err());
    }
}
