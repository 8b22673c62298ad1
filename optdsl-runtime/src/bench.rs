//! Step timing: a rule's fused step against the same-traffic bound (a loop
//! that moves the same bytes with trivial arithmetic, on the same threads),
//! against the machine's memory limit measured as STREAM measures it (copy
//! `a = b` and triad `a = b + s·c`, sized to move the bytes the rule's step
//! moves, counted as STREAM counts them), and against the reference
//! interpreter (ndarray operators, one temporary per operation). Reported as
//! medians and ratios, measured in one process, interleaved.

use crate::error::{Error, Result};
use crate::exec::Plan;
use crate::naive::naive_step_dyn;
use crate::rule::{DynFloat, DynRule, HyperValue, State};
use crate::stats::median;
use optdsl_lang::ir::Slot;
use optdsl_lang::{StateFormat, Storage, QBLOCK};
use rayon::prelude::*;
use std::time::Instant;

/// One measurement: medians in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The rule's name.
    pub name: String,
    /// `f32` or `f64`.
    pub dtype: &'static str,
    /// Parameters stepped.
    pub n: usize,
    /// Threads in the pool.
    pub threads: usize,
    /// Median time of one fused step.
    pub ours_ms: f64,
    /// Median time of the same-traffic loop.
    pub bound_ms: f64,
    /// The faster of STREAM copy's and triad's median times over the bytes
    /// one step moves.
    pub stream_ms: f64,
    /// Median time of the interpreted step, if measured.
    pub naive_ms: Option<f64>,
    /// The state's format.
    pub state: StateFormat,
    /// Bytes of state per parameter (block maxima included).
    pub state_bytes: f64,
}

impl BenchResult {
    /// `ours_ms / bound_ms`.
    pub fn ratio(&self) -> f64 {
        self.ours_ms / self.bound_ms
    }
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} n={} threads={} ours_ms={:.3} bound_ms={:.3} ratio={:.3} stream_ms={:.3} stream_ratio={:.3} naive_ms=",
            self.name,
            self.dtype,
            self.n,
            self.threads,
            self.ours_ms,
            self.bound_ms,
            self.ratio(),
            self.stream_ms,
            self.ours_ms / self.stream_ms
        )?;
        match self.naive_ms {
            Some(x) => write!(f, "{x:.3}")?,
            None => write!(f, "-")?,
        }
        write!(
            f,
            " state={} state_bytes={:.3}",
            self.state, self.state_bytes
        )
    }
}

fn time_ms(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1e3
}

/// One pass of the bound: the slices it writes and those it only reads, in
/// the element type and (for compressed buffers) as bytes.
struct BoundPass<F> {
    written: Vec<Span<F>>,
    read: Vec<Span<F>>,
    written_bytes: Vec<Bytes>,
    read_bytes: Vec<Bytes>,
}

/// A compressed buffer in the bound: `width` bytes per element (1 for
/// 8-bit, 2 for bfloat16) and, for 8-bit, one f32 maximum per block of
/// [`QBLOCK`] (`maxima`; null for bfloat16), moved as the step moves them.
#[derive(Clone, Copy)]
struct Bytes {
    ptr: *mut u8,
    width: usize,
    maxima: *mut f32,
}
// SAFETY: threads touch disjoint ranges (one super-block each).
unsafe impl Send for Bytes {}
// SAFETY: as above.
unsafe impl Sync for Bytes {}

/// Raw pointer to one slice, shared across the bound's threads; each thread
/// touches a disjoint super-block.
#[derive(Clone, Copy)]
struct Span<F>(*mut F);
// SAFETY: threads write disjoint ranges (one super-block each).
unsafe impl<F> Send for Span<F> {}
// SAFETY: as above.
unsafe impl<F> Sync for Span<F> {}

/// One pass of the same-traffic loop: `g`, if given, is read, every written
/// slice gets `+= g` (`+= 1` without `g`), every other read slice is summed,
/// tile by tile in one pass over memory.
fn bound_pass<F: DynFloat>(pass: &BoundPass<F>, g: Option<&[F]>, lo: usize, hi: usize) -> F {
    const TILE: usize = QBLOCK;
    let (written, read) = (&pass.written, &pass.read);
    let mut acc = [F::ZERO; 16];
    let mut byte_sum = 0u32;
    let mut start = lo;
    while start < hi {
        let end = (start + TILE).min(hi);
        let gt = g.map(|g| &g[start..end]);
        for b in &pass.written_bytes {
            // SAFETY: [start, end) elements lie in this thread's super-block.
            let t = unsafe {
                std::slice::from_raw_parts_mut(b.ptr.add(start * b.width), (end - start) * b.width)
            };
            for x in t.iter_mut() {
                *x = x.wrapping_add(1);
            }
            if !b.maxima.is_null() {
                // SAFETY: the tile is one block of QBLOCK (TILE == QBLOCK,
                // super-blocks start at multiples of it), in this thread's
                // super-block.
                unsafe { *b.maxima.add(start / QBLOCK) += 1.0 };
            }
        }
        for b in &pass.read_bytes {
            // SAFETY: as above; read only.
            let t = unsafe {
                std::slice::from_raw_parts(b.ptr.add(start * b.width), (end - start) * b.width)
            };
            byte_sum = t
                .iter()
                .fold(byte_sum, |s, &x| s.wrapping_add(u32::from(x)));
            if !b.maxima.is_null() {
                // SAFETY: as above; read only.
                byte_sum = byte_sum.wrapping_add(unsafe { *b.maxima.add(start / QBLOCK) } as u32);
            }
        }
        for s in written {
            // SAFETY: [start, end) lies in this thread's super-block.
            let t = unsafe { std::slice::from_raw_parts_mut(s.0.add(start), end - start) };
            match gt {
                Some(gt) => t.iter_mut().zip(gt).for_each(|(x, &y)| *x += y),
                None => t.iter_mut().for_each(|x| *x += F::ONE),
            }
        }
        for s in read {
            // SAFETY: as above; read only.
            let t = unsafe { std::slice::from_raw_parts(s.0.add(start), end - start) };
            let mut chunks = t.chunks_exact(16);
            for c in &mut chunks {
                for (a, &x) in acc.iter_mut().zip(c) {
                    *a += x;
                }
            }
            for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
                *a += x;
            }
        }
        start = end;
    }
    std::hint::black_box(byte_sum);
    acc.iter().fold(F::ZERO, |a, &b| a + b)
}

/// [`bound_pass`] over `n` numbers, split among threads as the driver
/// splits a tensor.
fn bound_step<F: DynFloat>(pass: &BoundPass<F>, g: Option<&[F]>, n: usize) -> F {
    let plan = Plan::new(n);
    if plan.parallel {
        (0..plan.count)
            .into_par_iter()
            .map(|k| bound_pass(pass, g, k * plan.size, ((k + 1) * plan.size).min(n)))
            .reduce(|| F::ZERO, |a, b| a + b)
    } else {
        bound_pass(pass, g, 0, n)
    }
}

/// STREAM's kernels over `a`, `b`, `c`: copy moves `a.len()` elements twice
/// (read `b`, write `a`), triad `c.len()` three times (read `b`, `c`, write
/// `a`), split among threads as the driver splits a tensor.
struct Stream<F> {
    a: Vec<F>,
    b: Vec<F>,
    c: Vec<F>,
}

impl<F: DynFloat> Stream<F> {
    /// Arrays sized so that copy and triad each move `bytes`.
    fn new(bytes: usize) -> Self {
        let size = std::mem::size_of::<F>();
        let copy = (bytes / (2 * size)).max(1);
        let triad = (bytes / (3 * size)).max(1);
        Stream {
            a: vec![F::ONE; copy],
            b: vec![F::from_f64(0.5); copy],
            c: vec![F::from_f64(0.25); triad],
        }
    }

    fn copy(&mut self) {
        let chunk = Plan::new(self.a.len()).size;
        self.a
            .par_chunks_mut(chunk)
            .zip(self.b.par_chunks(chunk))
            .for_each(|(a, b)| a.copy_from_slice(b));
    }

    fn triad(&mut self, s: F) {
        let m = self.c.len();
        let chunk = Plan::new(m).size;
        self.a[..m]
            .par_chunks_mut(chunk)
            .zip(self.b[..m].par_chunks(chunk))
            .zip(self.c.par_chunks(chunk))
            .for_each(|((a, b), c)| {
                for ((x, &y), &z) in a.iter_mut().zip(b).zip(c) {
                    *x = y + s * z;
                }
            });
    }
}

/// The bench's numbers for `n` elements from `seed`: small values in
/// [-0.01, 0.01] that depend on the index (the same for every rule, so runs
/// compare).
fn filled<F: DynFloat>(n: usize, seed: usize) -> Vec<F> {
    (0..n)
        .map(|i| F::from_f64((((i * 7919 + seed) % 2001) as f64 / 1000.0 - 1.0) * 1e-2))
        .collect()
}

/// Measures `rule` on `n` parameters in `F` with a pool of `threads` threads:
/// `reps` fused steps and bound passes, interleaved, and `naive_reps`
/// interpreted steps (0 to skip).
pub fn bench_rule<F: DynFloat>(
    rule: &dyn DynRule,
    n: usize,
    threads: usize,
    reps: usize,
    naive_reps: usize,
) -> Result<BenchResult> {
    bench_rule_with::<F>(rule, n, threads, reps, naive_reps, StateFormat::Full)
}

/// [`bench_rule`] with the state kept in `format` (the bound moves the
/// compressed buffers' bytes).
pub fn bench_rule_with<F: DynFloat>(
    rule: &dyn DynRule,
    n: usize,
    threads: usize,
    reps: usize,
    naive_reps: usize,
    format: StateFormat,
) -> Result<BenchResult> {
    if n == 0 || reps == 0 {
        return Err(Error::Invalid {
            what: "benchmark size".into(),
            reason: "n and the repetitions must be positive".into(),
        });
    }
    // The global pool when it already has `threads` threads (how a step runs in
    // a program), a pool of its own otherwise.
    let own_pool = if threads == rayon::current_num_threads() {
        None
    } else {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| Error::Invalid {
                    what: "threads".into(),
                    reason: e.to_string(),
                })?,
        )
    };
    let install = |f: &mut (dyn FnMut() -> Result<BenchResult> + Send)| match &own_pool {
        Some(pool) => pool.install(f),
        None => f(),
    };
    let info = rule.info();
    install(&mut || {
        let fill = |seed: usize| filled::<F>(n, seed);
        let mut w = fill(1);
        let g = fill(2);
        let inputs: Vec<Vec<F>> = info
            .inputs
            .iter()
            .map(|_| fill(3).iter().map(|x| x.abs() + F::ONE).collect())
            .collect();
        let input_refs: Vec<&[F]> = inputs.iter().map(|v| v.as_slice()).collect();
        let mut state: State<F> = F::dyn_init(rule, n);
        state.set_format(info, format, None);
        state.leave_out_idle(info, &crate::optim::bool_hypers(rule));
        let storage = state.storage();
        // The bound's slices: as many as the rule's, touched pass by pass as
        // the rule's step touches them with these hyperparameters.
        let hypers: Vec<HyperValue> = info
            .hypers
            .iter()
            .map(|h| rule.hyper(h.name).unwrap_or(h.default))
            .collect();
        let passes = info.traffic(&hypers, 2);
        let mut bw = fill(1);
        let mut bufs: Vec<Vec<F>> = info.buffers.iter().map(|_| fill(4)).collect();
        let mut byte_bufs: Vec<Vec<u8>> = storage
            .iter()
            .map(|s| match s {
                Storage::Full => Vec::new(),
                Storage::Bf16 => vec![1u8; 2 * n],
                Storage::Q8 { .. } => vec![1u8; n],
            })
            .collect();
        let mut maxima_bufs: Vec<Vec<f32>> = storage
            .iter()
            .map(|s| match s {
                Storage::Q8 { .. } => vec![1.0; n.div_ceil(QBLOCK)],
                _ => Vec::new(),
            })
            .collect();
        let byte_spans: Vec<Bytes> = byte_bufs
            .iter_mut()
            .zip(&mut maxima_bufs)
            .map(|(b, m)| Bytes {
                ptr: b.as_mut_ptr(),
                width: b.len() / n,
                maxima: if m.is_empty() {
                    std::ptr::null_mut()
                } else {
                    m.as_mut_ptr()
                },
            })
            .collect();
        let compressed = |slot: Slot| match slot {
            Slot::Buffer(b) => byte_spans[b].width > 0,
            _ => false,
        };
        let mut bin = inputs.clone();
        let mut bg = g.clone();
        let ptr = |slot: Slot,
                   bw: &mut Vec<F>,
                   bufs: &mut Vec<Vec<F>>,
                   bin: &mut Vec<Vec<F>>,
                   bg: &mut Vec<F>| match slot {
            Slot::W => Span(bw.as_mut_ptr()),
            Slot::G => Span(bg.as_mut_ptr()),
            Slot::Buffer(b) => Span(bufs[b].as_mut_ptr()),
            Slot::Input(k) => Span(bin[k].as_mut_ptr()),
        };
        let byte_span = |s: Slot| match s {
            Slot::Buffer(b) => byte_spans[b],
            _ => unreachable!("only buffers are compressed"),
        };
        let plans: Vec<BoundPass<F>> = passes
            .iter()
            .map(|p| {
                let only_read = |s: &&Slot| !p.writes.contains(s) && **s != Slot::G;
                BoundPass {
                    written: p
                        .writes
                        .iter()
                        .filter(|s| !compressed(**s))
                        .map(|&s| ptr(s, &mut bw, &mut bufs, &mut bin, &mut bg))
                        .collect(),
                    read: p
                        .reads
                        .iter()
                        .filter(only_read)
                        .filter(|s| !compressed(**s))
                        .map(|&s| ptr(s, &mut bw, &mut bufs, &mut bin, &mut bg))
                        .collect(),
                    written_bytes: p
                        .writes
                        .iter()
                        .filter(|s| compressed(**s))
                        .map(|&s| byte_span(s))
                        .collect(),
                    read_bytes: p
                        .reads
                        .iter()
                        .filter(only_read)
                        .filter(|s| compressed(**s))
                        .map(|&s| byte_span(s))
                        .collect(),
                }
            })
            .collect();
        // Bytes one step moves per element, the compressed buffers at their
        // own width.
        let elem = std::mem::size_of::<F>();
        let width = |s: &Slot| match s {
            Slot::Buffer(b) if compressed(*s) => byte_spans[*b].width,
            _ => elem,
        };
        // The 8-bit blocks' maxima: 4 bytes per block of each such buffer
        // touched (and again if written).
        let maxima = |s: &Slot| match s {
            Slot::Buffer(b) if !byte_spans[*b].maxima.is_null() => 4,
            _ => 0,
        };
        let maxima_moved: usize = passes.iter().map(|p| p.bytes_with(|s| maxima(&s))).sum();
        let bytes_moved: usize = passes
            .iter()
            .map(|p| p.bytes_with(|s| width(&s)))
            .sum::<usize>()
            * n
            + maxima_moved * n.div_ceil(QBLOCK);
        let mut stream = Stream::<F>::new(bytes_moved.max(n));
        let mut ours = Vec::with_capacity(reps);
        let mut bound = Vec::with_capacity(reps);
        let mut copy = Vec::with_capacity(reps);
        let mut triad = Vec::with_capacity(reps);
        let mut sink = F::ZERO;
        for rep in 0..reps + 2 {
            let c = time_ms(|| stream.copy());
            let t = time_ms(|| stream.triad(F::from_f64(0.5)));
            if rep >= 2 {
                copy.push(c);
                triad.push(t);
            }
            let a = time_ms(|| {
                F::dyn_step(rule, &mut state, &mut w, &g, &input_refs).expect("lengths match");
            });
            let b = time_ms(|| {
                for pass in &plans {
                    sink += bound_step(pass, Some(&g), g.len());
                }
            });
            if rep >= 2 {
                ours.push(a);
                bound.push(b);
            }
        }
        std::hint::black_box(sink);
        std::hint::black_box((&bw, &bufs, &bin, &bg, &stream.a, &byte_bufs, &maxima_bufs));
        let naive_ms = (naive_reps > 0).then(|| {
            let mut s = state.clone();
            let times: Vec<f64> = (0..naive_reps)
                .map(|_| {
                    time_ms(|| {
                        naive_step_dyn(rule, &mut s, &mut w, &g, &input_refs)
                            .expect("lengths match")
                    })
                })
                .collect();
            median(times)
        });
        Ok(BenchResult {
            name: info.name.to_string(),
            dtype: F::DTYPE,
            n,
            threads,
            ours_ms: median(ours),
            bound_ms: median(bound),
            stream_ms: median(copy).min(median(triad)),
            naive_ms,
            state: format,
            state_bytes: state.bytes_per_element(),
        })
    })
}

/// One measurement of a rule with shapes on one tensor: medians in
/// milliseconds of its step, of the matrix products that step runs done by
/// the GEMM alone, of its same-traffic bound (the passes over whole arrays
/// the executor makes, as recorded by [`crate::tensor::passes`], each
/// replayed as one streaming pass reading what it reads and reading and
/// writing what it writes) and of the least traffic any step must move
/// (each tensor it touches read once, those it writes written once), in
/// one run.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedBench {
    /// The rule's name.
    pub name: String,
    /// `f32` or `f64`.
    pub dtype: &'static str,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// Threads in the pool.
    pub threads: usize,
    /// Median time of one step.
    pub ours_ms: f64,
    /// Median time of the step's matrix products alone (`None`: it runs none).
    pub gemm_ms: Option<f64>,
    /// The step's matrix products.
    pub products: Vec<crate::tensor::Product>,
    /// Median time of the same-traffic loop (the executor's passes).
    pub bound_ms: f64,
    /// The executor's passes over whole arrays in one step.
    pub passes: usize,
    /// Bytes those passes move per number of the tensor.
    pub bytes_per_number: f64,
    /// Median time of the least-traffic loop.
    pub least_ms: f64,
}

impl std::fmt::Display for ShapedBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        write!(
            f,
            "{} {} shape={} threads={} ours_ms={:.3} bound_ms={:.3} ratio={:.3} passes={} bytes_per_number={:.1} least_ms={:.3} least_ratio={:.3}",
            self.name,
            self.dtype,
            shape.join("x"),
            self.threads,
            self.ours_ms,
            self.bound_ms,
            self.ours_ms / self.bound_ms,
            self.passes,
            self.bytes_per_number,
            self.least_ms,
            self.ours_ms / self.least_ms
        )?;
        if let Some(gemm) = self.gemm_ms {
            let madds: usize = self.products.iter().map(|p| p.multiply_adds()).sum();
            write!(
                f,
                " gemm_ms={gemm:.3} gemm_ratio={:.3} products={} gflop={:.2}",
                self.ours_ms / gemm,
                self.products.len(),
                2.0 * madds as f64 / 1e9
            )?;
        }
        Ok(())
    }
}

/// Measures `rule` (one with shapes, or any rule) on one tensor of `shape`
/// in `F` with a pool of `threads` threads: `reps` steps, the same matrix
/// products alone and the least-traffic loop, interleaved.
pub fn bench_shaped<F: DynFloat>(
    rule: &dyn DynRule,
    shape: &[usize],
    threads: usize,
    reps: usize,
) -> Result<ShapedBench> {
    let n = crate::tensor::Dims::from_shape(shape, 0)?.numel;
    if n == 0 || reps == 0 {
        return Err(Error::Invalid {
            what: "benchmark size".into(),
            reason: "the shape's element count and the repetitions must be positive".into(),
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid {
            what: "threads".into(),
            reason: e.to_string(),
        })?;
    pool.install(|| {
        let fill = |seed: usize| filled::<F>(n, seed);
        let mut w = fill(1);
        let g = fill(2);
        let mut state = F::dyn_init_shaped(rule, shape)?;
        let ((first, products), traffic) = crate::tensor::passes(|| {
            crate::tensor::recording(|| F::dyn_step(rule, &mut state, &mut w, &g, &[]))
        });
        first?;
        // The same-traffic loop's arrays: one per array the step touched.
        let mut arrays: Vec<Vec<F>> = traffic
            .arrays
            .iter()
            .enumerate()
            .map(|(k, &len)| filled::<F>(len, k + 3))
            .collect();
        let spans: Vec<Span<F>> = arrays.iter_mut().map(|a| Span(a.as_mut_ptr())).collect();
        let replay: Vec<BoundPass<F>> = traffic
            .passes
            .iter()
            .map(|p| {
                let pick = |ids: &[usize]| ids.iter().map(|&i| spans[i]).collect();
                BoundPass {
                    written: pick(&p.writes),
                    read: pick(&p.reads),
                    written_bytes: Vec::new(),
                    read_bytes: Vec::new(),
                }
            })
            .collect();
        let mut sink = F::ZERO;
        let mut least = Vec::new();
        let mut bw = fill(1);
        let mut bufs: Vec<Vec<F>> = state.buffers.clone();
        let s = F::from_f64(1e-3);
        // The products' operands, made once: the GEMM alone is timed.
        let operands: Vec<(Vec<F>, Vec<F>)> = products.iter().map(|p| p.operands()).collect();
        let (mut ours, mut gemm, mut bound) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let mut out = Ok(());
            ours.push(time_ms(|| {
                out = F::dyn_step(rule, &mut state, &mut w, &g, &[])
            }));
            out?;
            if !products.is_empty() {
                gemm.push(time_ms(|| {
                    for (p, ab) in products.iter().zip(&operands) {
                        std::hint::black_box(p.run::<F>(ab));
                    }
                }));
            }
            bound.push(time_ms(|| {
                for (p, recorded) in replay.iter().zip(&traffic.passes) {
                    sink += bound_step(p, None, recorded.numbers);
                }
            }));
            least.push(time_ms(|| {
                let chunk = Plan::new(n).size;
                bw.par_chunks_mut(chunk)
                    .zip(g.par_chunks(chunk))
                    .for_each(|(w, g)| w.iter_mut().zip(g).for_each(|(w, &g)| *w += s * g));
                for b in &mut bufs {
                    let chunk = Plan::new(b.len()).size.max(1);
                    b.par_chunks_mut(chunk)
                        .for_each(|b| b.iter_mut().for_each(|x| *x += s));
                }
            }));
            std::hint::black_box((&bw, &bufs));
        }
        std::hint::black_box((sink, &arrays));
        Ok(ShapedBench {
            name: rule.info().name.to_string(),
            dtype: F::DTYPE,
            shape: shape.to_vec(),
            threads,
            ours_ms: median(ours),
            gemm_ms: (!gemm.is_empty()).then(|| median(gemm)),
            products,
            bound_ms: median(bound),
            passes: traffic.passes.len(),
            bytes_per_number: traffic.bytes(std::mem::size_of::<F>()) as f64 / n as f64,
            least_ms: median(least),
        })
    })
}
