//! The JIT of text rules: each pass compiled to machine code by Cranelift
//! (`codegen.rs`), with its vector loop also at 256 bits where the machine
//! has AVX2 (`codegen/wide.rs`), the first time it runs with a given choice
//! of per-step booleans, then run by the driver like a compiled rule's
//! kernel (same blocks, peel, thread split and reduction order, so the same
//! bits). A pass that cannot be compiled, or any pass when `OPTDSL_JIT=0`,
//! runs on the block interpreter ([`crate::interp`]) instead.
//!
//! `OPTDSL_JIT_LOG=1` prints each compilation (pass, element type, time, or
//! why it fell back) to stderr; `OPTDSL_JIT_LOG=asm` also the machine code.

pub(crate) mod codegen;

use crate::driver::{Kernel, Walk, LANES, MAX_SLOTS};
use crate::float::Float;
use codegen::Compiled;
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

/// How many of rule `name`'s compiled passes this process gave a 256-bit
/// loop (on x86-64 machines with AVX2 and FMA, unless `OPTDSL_WIDE=0`;
/// each element type and choice of per-step booleans counts once).
pub fn wide_loops(name: &str) -> usize {
    #[cfg(target_arch = "x86_64")]
    let n = codegen::wide_loops()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .copied()
        .unwrap_or(0);
    #[cfg(not(target_arch = "x86_64"))]
    let n = 0;
    n
}

/// Whether this machine gives compiled passes 256-bit loops: x86-64 with
/// AVX2 and FMA, unless `OPTDSL_WIDE` is `0` (read once).
pub fn wide_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return codegen::wide::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
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

/// What a compiled pass is cached under: the program (text rules' programs
/// live as long as the process, so the address names one), the pass, the
/// per-step booleans the code was specialized for, and the element type.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    program: usize,
    pass: (u8, usize),
    bools: Vec<bool>,
    f64: bool,
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
pub(crate) struct Lanes([u8; 16]);

impl Lanes {
    /// `x` repeated to fill the 16 bytes.
    pub(crate) fn of<F: Float>(x: F) -> Lanes {
        let size = std::mem::size_of::<F>();
        let mut lanes = Lanes([0; 16]);
        for k in 0..16 / size {
            // SAFETY: `k * size + size <= 16`; `F` is plain data.
            unsafe { std::ptr::write_unaligned(lanes.0.as_mut_ptr().add(k * size).cast::<F>(), x) };
        }
        lanes
    }
}

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
        };
        let code = {
            let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
            cache
                .entry(key)
                .or_insert_with(|| {
                    // Cranelift reports what it cannot compile as errors; a
                    // panic inside it is caught too, and the pass interpreted.
                    let started = std::time::Instant::now();
                    let compiled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        codegen::compile(p, pass, known, f64, None)
                    }))
                    .unwrap_or_else(|_| Err(codegen::JitError("Cranelift panicked".into())));
                    match &compiled {
                        Ok(_) => COMPILED.fetch_add(1, Ordering::Relaxed),
                        Err(_) => FAILED.fetch_add(1, Ordering::Relaxed),
                    };
                    if std::env::var_os("OPTDSL_JIT_LOG").is_some() {
                        match &compiled {
                            Ok(_) => eprintln!(
                                "jit: {} {:?} {} compiled in {:.2} ms",
                                p.name.text,
                                pass.kind,
                                if f64 { "f64" } else { "f32" },
                                started.elapsed().as_secs_f64() * 1e3
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
        let cf = code
            .nums
            .iter()
            .map(|&id| Lanes::of(F::from_f64(known[id].map_or(f64::NAN, Scalar::num))))
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
            code: &self.code,
            cf: &self.cf,
            _f: std::marker::PhantomData,
        }
    }
}

/// A compiled pass as a driver kernel (the same code at every SIMD level:
/// Cranelift's 128-bit vectors, and 256-bit loops where the machine has
/// AVX2).
pub struct JitKernel<'a, F> {
    code: &'a Compiled,
    cf: &'a [Lanes],
    _f: std::marker::PhantomData<F>,
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
        // SAFETY: the code reads `cf` (16 bytes, aligned to 16, per use of a
        // per-step number it was compiled for), the slices' first `n` elements through the pointer
        // arrays (as many as the pass reads and writes: the driver checked
        // their lengths), and `acc`'s lanes `(lane0 + i) mod 64` of each
        // reduction; the slices written are disjoint from all others.
        unsafe {
            let _ = self.code.run(
                self.cf.as_ptr().cast(),
                r.as_ptr(),
                w.as_ptr(),
                acc.as_mut_ptr().cast(),
                n,
                nvec,
                lane0,
            );
        }
    }
}
