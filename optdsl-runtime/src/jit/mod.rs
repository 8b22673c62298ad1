//! The JIT of text rules: each pass compiled to machine code by Cranelift
//! (`codegen.rs`) the first time it runs with a given choice of per-step
//! booleans, then run by the driver like a compiled rule's kernel (same
//! blocks, peel, thread split and reduction order, so the same bits). A pass
//! that cannot be compiled, or any pass when `OPTDSL_JIT=0`, runs on the
//! block interpreter ([`crate::interp`]) instead.
//!
//! A pass with two or more divisions and square roots per element runs in
//! hybrid form (`codegen/hybrid.rs`): its vector loop walks sub-blocks of
//! [`subblock`] elements, and the divisions and roots of each sub-block are
//! done layer by layer by loops compiled for the CPU's widest vectors
//! (`batch.rs`: Cranelift 0.114 has only 128-bit vectors on x86-64, where
//! the divider does half or a quarter of an AVX-512 loop's elements per
//! cycle). `OPTDSL_JIT_SUBBLOCK=0` turns it off, `=K` sets the sub-block
//! (a multiple of 64 up to 16384).
//!
//! `OPTDSL_JIT_LOG=1` prints each compilation (pass, element type, time, or
//! why it fell back) to stderr; `OPTDSL_JIT_LOG=asm` also the machine code.

mod batch;
mod codegen;

use crate::driver::{Kernel, Walk, LANES, MAX_SLOTS};
use crate::float::Float;
use codegen::{Compiled, Entry};
use optdsl_lang::eval::Scalar;
use optdsl_lang::ir::{Kind, Program, Ty};
use optdsl_lang::passes::{Pass, PassKind};
use std::any::TypeId;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

static COMPILED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// How many passes this process has compiled, and how many it could not
/// compile (those run on the interpreter).
pub fn counts() -> (usize, usize) {
    (
        COMPILED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    )
}

/// Whether text rules are compiled: on x86-64 (the target the JIT's code is
/// tested on), unless `OPTDSL_JIT` is `0` (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::env::var("OPTDSL_JIT").map_or(true, |v| v.trim() != "0")
    })
}

/// The sub-block of the hybrid form when neither [`set_subblock`] nor
/// `OPTDSL_JIT_SUBBLOCK` chooses one: 256 elements (f64: 2 KiB an array).
pub const DEFAULT_SUBBLOCK: usize = 256;

/// [`set_subblock`]'s choice: `usize::MAX` until set or read from the
/// environment, 0 for off.
static SUBBLOCK: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Why a sub-block length was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSubblock(pub usize);

impl std::fmt::Display for BadSubblock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sub-block of {} elements: give a multiple of 64 from 64 to 16384, or 0 for none",
            self.0
        )
    }
}

impl std::error::Error for BadSubblock {}

/// Sets the hybrid form's sub-block for passes compiled from now on: `Some(k)`
/// (a multiple of 64 from 64 to 16384) or `None` (every pass in plain form).
/// Either form gives the same bits; this is for tests and measurements.
pub fn set_subblock(k: Option<usize>) -> Result<(), BadSubblock> {
    let k = k.unwrap_or(0);
    if k != 0 && (k % crate::driver::LANES != 0 || k > crate::exec::BLOCK) {
        return Err(BadSubblock(k));
    }
    SUBBLOCK.store(k, Ordering::Relaxed);
    Ok(())
}

/// The hybrid form's sub-block (see the module's description), or `None`
/// when it is off: [`set_subblock`]'s choice, else `OPTDSL_JIT_SUBBLOCK`
/// (a bad value is warned about once and the default taken), else
/// [`DEFAULT_SUBBLOCK`].
pub fn subblock() -> Option<usize> {
    let mut k = SUBBLOCK.load(Ordering::Relaxed);
    if k == usize::MAX {
        k = match std::env::var("OPTDSL_JIT_SUBBLOCK") {
            Err(_) => DEFAULT_SUBBLOCK,
            Ok(v) => match v.trim().parse::<usize>().map_err(|_| v.clone()) {
                Ok(k) if set_subblock(Some(k).filter(|&k| k > 0)).is_ok() => k,
                _ => {
                    eprintln!(
                        "warning: OPTDSL_JIT_SUBBLOCK=`{v}`: give a multiple of 64 from 64 to 16384, or 0; using {DEFAULT_SUBBLOCK}"
                    );
                    DEFAULT_SUBBLOCK
                }
            },
        };
        // A concurrent `set_subblock` wins.
        let _ = SUBBLOCK.compare_exchange(usize::MAX, k, Ordering::Relaxed, Ordering::Relaxed);
        k = SUBBLOCK.load(Ordering::Relaxed);
    }
    (k != 0).then_some(k)
}

/// What a compiled pass is cached under: the program (text rules' programs
/// live as long as the process, so the address names one), the pass, the
/// per-step booleans the code was specialized for, the element type and
/// the hybrid form's sub-block.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    program: usize,
    pass: (u8, usize),
    bools: Vec<bool>,
    f64: bool,
    sub: Option<usize>,
}

type Cache = Mutex<HashMap<Key, Option<Arc<Compiled>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// 16 bytes, aligned to 16: one per-step number's copies, as the code
/// reads them (aligned, so that x86 folds the load into the operation).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Lanes([u8; 16]);

/// A pass compiled for this step: the code and the per-step numbers it reads.
pub struct JitPass<F> {
    code: Arc<Compiled>,
    cf: Vec<Lanes>,
    _f: std::marker::PhantomData<F>,
}

impl<F: Float> JitPass<F> {
    /// `pass` of `p` compiled for this step's per-step values `known`
    /// (compiled on first use and cached), or `None` when the JIT is off, the
    /// element type is neither f32 nor f64, the pass draws random numbers
    /// (`rand()`, `randn()`: the interpreter computes them, by the one
    /// definition in `optdsl_lang::random`), or compilation failed (the
    /// interpreter then runs the pass).
    pub fn new(p: &'static Program, pass: &Pass, known: &[Option<Scalar>]) -> Option<JitPass<F>> {
        if !enabled()
            || pass
                .elements
                .iter()
                .any(|&id| p.values[id].op.draw().is_some())
        {
            return None;
        }
        let f64 = if TypeId::of::<F>() == TypeId::of::<f64>() {
            true
        } else if TypeId::of::<F>() == TypeId::of::<f32>() {
            false
        } else {
            return None;
        };
        let bools: Vec<bool> = p
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.ty == Ty::Bool && v.kind != Kind::Element)
            .map(|(id, _)| known[id].is_some_and(Scalar::truth))
            .collect();
        let key = Key {
            program: p as *const Program as usize,
            pass: match pass.kind {
                PassKind::Init => (0, 0),
                PassKind::Reduce(k) => (1, k),
                PassKind::Update => (2, 0),
            },
            bools,
            f64,
            sub: subblock(),
        };
        let sub = key.sub;
        let code = {
            let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry(key)
                .or_insert_with(|| {
                    // Cranelift reports what it cannot compile as errors; a
                    // panic inside it is caught too, and the pass interpreted.
                    let started = std::time::Instant::now();
                    let compiled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        codegen::compile(p, pass, known, f64, sub)
                    }))
                    .unwrap_or_else(|_| Err(codegen::JitError("Cranelift panicked".into())));
                    match &compiled {
                        Ok(_) => COMPILED.fetch_add(1, Ordering::Relaxed),
                        Err(_) => FAILED.fetch_add(1, Ordering::Relaxed),
                    };
                    if std::env::var_os("OPTDSL_JIT_LOG").is_some() {
                        match &compiled {
                            Ok(c) => eprintln!(
                                "jit: {} {:?} {} compiled in {:.2} ms{}",
                                p.name.text,
                                pass.kind,
                                if f64 { "f64" } else { "f32" },
                                started.elapsed().as_secs_f64() * 1e3,
                                if c.scratch_bytes > 0 { " (hybrid)" } else { "" }
                            ),
                            Err(e) => eprintln!(
                                "jit: {} {:?} interpreted: {}",
                                p.name.text, pass.kind, e.0
                            ),
                        }
                    }
                    compiled.ok().map(Arc::new)
                })
                .clone()?
        };
        let size = std::mem::size_of::<F>();
        let cf = code
            .nums
            .iter()
            .map(|&id| {
                let x = F::from_f64(known[id].map_or(f64::NAN, Scalar::num));
                let mut lanes = Lanes([0; 16]);
                for k in 0..16 / size {
                    // SAFETY: `k * size + size <= 16`; `F` is plain data.
                    unsafe {
                        std::ptr::write_unaligned(lanes.0.as_mut_ptr().add(k * size).cast::<F>(), x)
                    };
                }
                lanes
            })
            .collect();
        Some(JitPass {
            code,
            cf,
            _f: std::marker::PhantomData,
        })
    }

    /// The pass as a driver kernel.
    pub fn kernel(&self) -> JitKernel<'_, F> {
        JitKernel {
            entry: self.code.entry,
            cf: &self.cf,
            scratch_bytes: self.code.scratch_bytes,
            _f: std::marker::PhantomData,
        }
    }
}

/// A compiled pass as a driver kernel (the same code at every SIMD level:
/// 128-bit vectors).
pub struct JitKernel<'a, F> {
    entry: Entry,
    cf: &'a [Lanes],
    scratch_bytes: usize,
    _f: std::marker::PhantomData<F>,
}

/// 64 bytes, aligned to 64: the unit of the hybrid form's scratch.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u8; 64]);

thread_local! {
    /// This thread's scratch for the hybrid form (grown, never shrunk).
    static SCRATCH: std::cell::RefCell<Vec<Line>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<F: Float> Kernel<F> for JitKernel<'_, F> {
    fn run(
        &self,
        _at: usize,
        reads: &[&[F]],
        writes: &mut [&mut [F]],
        acc: &mut [[F; LANES]],
        walk: Walk,
    ) {
        let n = writes
            .first()
            .map(|w| w.len())
            .or_else(|| reads.first().map(|r| r.len()))
            .unwrap_or(0);
        let mut r = [std::ptr::null::<u8>(); MAX_SLOTS];
        let mut w = [std::ptr::null_mut::<u8>(); MAX_SLOTS];
        for (dst, s) in r.iter_mut().zip(reads) {
            *dst = s.as_ptr().cast();
        }
        for (dst, s) in w.iter_mut().zip(writes.iter_mut()) {
            *dst = s.as_mut_ptr().cast();
        }
        let (nvec, lane0) = match walk {
            Walk::Chunks => (n / LANES * LANES, 0),
            Walk::Single { lane0 } => (0, lane0),
        };
        let accp: *mut u8 = acc.as_mut_ptr().cast();
        let call = |scratch: *mut u8| {
            // SAFETY: the code reads `cf` (16 bytes, aligned to 16, per use
            // of a per-step number it was compiled for), the slices' first
            // `n` elements through the pointer arrays (as many as the pass
            // reads and writes: the driver checked their lengths), `acc`'s
            // lanes `(lane0 + i) mod 64` of each reduction, and in hybrid
            // form `scratch_bytes` of scratch (aligned to 64); the slices
            // written are disjoint from all others and from the scratch.
            unsafe {
                (self.entry)(
                    self.cf.as_ptr().cast(),
                    r.as_ptr(),
                    w.as_ptr(),
                    accp,
                    n,
                    nvec,
                    lane0,
                    scratch,
                )
            }
        };
        if self.scratch_bytes == 0 || nvec == 0 {
            return call(std::ptr::null_mut());
        }
        SCRATCH.with(|s| {
            // Taken out while in use: a thread runs one kernel at a time, but
            // a nested use (none today) then gets a buffer of its own.
            let mut buf = std::mem::take(&mut *s.borrow_mut());
            let lines = self.scratch_bytes.div_ceil(64);
            if buf.len() < lines {
                buf.resize(lines, Line([0; 64]));
            }
            call(buf.as_mut_ptr().cast());
            *s.borrow_mut() = buf;
        })
    }
}
