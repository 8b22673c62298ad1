//! How generated steps run: the SIMD level chosen once at run time, and the
//! split of a tensor into super-blocks that threads share.
//!
//! A generated pass walks a tensor in super-blocks of [`Plan::size`] elements,
//! each in blocks of 16384; reductions are summed per block, per super-block,
//! then across super-blocks in order. The split depends only on the tensor's
//! length, so results are the same bit for bit on one thread or many.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction sets generated loops are compiled for, one copy each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Whatever the build targets (SSE2 on generic x86-64).
    Portable,
    /// AVX2 (with FMA).
    Avx2,
    /// AVX-512 (foundation, with FMA).
    Avx512,
}

impl Simd {
    /// The name used by `OPTDSL_SIMD` and printed by the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }
}

/// The best level this CPU supports.
pub fn detected() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        // Both levels' copies are compiled with FMA too (for `fma()`, which
        // rounds once; nothing else is contracted).
        if !std::arch::is_x86_feature_detected!("fma") {
            return Simd::Portable;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Portable
}

/// The level in force: `u8::MAX` until first read, then a choice (bits 0-1)
/// and whether it was asked for (bit 2: `OPTDSL_SIMD` or [`force`]).
static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
const ASKED: u8 = 4;

fn decode(x: u8) -> Simd {
    match x & 3 {
        2 => Simd::Avx512,
        1 => Simd::Avx2,
        _ => Simd::Portable,
    }
}

fn state() -> u8 {
    let cached = LEVEL.load(Ordering::Relaxed);
    if cached != u8::MAX {
        return cached;
    }
    let best = detected();
    let value = match std::env::var("OPTDSL_SIMD").as_deref() {
        Ok("portable") => Simd::Portable as u8 | ASKED,
        Ok("avx2") => Simd::Avx2.min(best) as u8 | ASKED,
        Ok("avx512") => Simd::Avx512.min(best) as u8 | ASKED,
        Ok("") | Err(std::env::VarError::NotPresent) => best as u8,
        Ok(other) => {
            warn_unknown(other);
            best as u8
        }
        Err(std::env::VarError::NotUnicode(raw)) => {
            warn_unknown(&raw.to_string_lossy());
            best as u8
        }
    };
    LEVEL.store(value, Ordering::Relaxed);
    value
}

/// The accepted values of `OPTDSL_SIMD`.
const SIMD_VALUES: [&str; 3] = ["portable", "avx2", "avx512"];

/// The warning printed (once) for an `OPTDSL_SIMD` value that is not one of
/// [`SIMD_VALUES`].
fn unknown_simd_warning(value: &str) -> String {
    format!(
        "warning: OPTDSL_SIMD=`{value}` is not one of {}; choosing the level automatically",
        SIMD_VALUES.join(", ")
    )
}

/// Prints [`unknown_simd_warning`] on stderr, the first time only.
fn warn_unknown(value: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| eprintln!("{}", unknown_simd_warning(value)));
}

/// The level for a pass: the one asked for (`OPTDSL_SIMD=portable|avx2|avx512`
/// or [`force`]) if any, never above what the CPU has; otherwise (another
/// value of `OPTDSL_SIMD` is warned about once on stderr) the CPU's
/// best for `heavy` passes (two or more divisions, roots, powers,
/// exponentials or logarithms per element, such as Adam's) and at most AVX2
/// for the others.
///
/// A light step is a stream through memory, and on the AMD EPYC (AVX-512)
/// machines this project is measured on, 512-bit loads and stores streamed
/// slower than 256-bit ones (`w -= 0.1 * g` over 10^7 f32: 4.4 ms with
/// AVX-512 against 3.8 ms with AVX2, `cargo run --release --example
/// simd_stream`), while Adam's step, with two divisions and a root per
/// element, ran faster with AVX-512 (`optdsl bench`). The code generator
/// counts the heavy operations of each pass.
pub fn level_for(heavy: bool) -> Simd {
    let value = state();
    let chosen = decode(value);
    if value & ASKED != 0 || heavy {
        chosen
    } else {
        chosen.min(Simd::Avx2)
    }
}

/// The level a light pass uses ([`level_for`]`(false)`).
pub fn level() -> Simd {
    level_for(false)
}

/// Uses `wanted` (or the best level below it this CPU has) for every pass from
/// now on; returns the level in force. For tests and benchmarks that compare
/// the paths.
pub fn force(wanted: Simd) -> Simd {
    let chosen = wanted.min(detected());
    LEVEL.store(chosen as u8 | ASKED, Ordering::Relaxed);
    chosen
}

/// Elements per block of a generated pass.
pub const BLOCK: usize = 16384;
/// The most super-blocks a tensor is split into.
pub const MAX_SUPERS: usize = 1024;
/// Smallest super-block, in elements.
pub const MIN_SUPER: usize = 4 * BLOCK;
/// Tensors shorter than this are stepped on the calling thread.
pub const PARALLEL_MIN: usize = 1 << 17;

/// How a tensor of a given length is split: super-blocks of `size` elements
/// (the last may be shorter), `count` of them, run in parallel or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Elements per super-block, a multiple of [`BLOCK`].
    pub size: usize,
    /// Number of super-blocks.
    pub count: usize,
    /// Whether rayon shares them among threads.
    pub parallel: bool,
}

impl Plan {
    /// The split for a tensor of `n` elements on the current rayon pool.
    pub fn new(n: usize) -> Plan {
        let per = n.div_ceil(MAX_SUPERS).div_ceil(BLOCK) * BLOCK;
        let size = per.max(MIN_SUPER);
        let count = n.div_ceil(size);
        let parallel = count > 1 && n >= PARALLEL_MIN && rayon::current_num_threads() > 1;
        Plan {
            size,
            count,
            parallel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_tensor_within_the_super_limit() {
        for n in [
            0,
            1,
            100,
            BLOCK,
            MIN_SUPER + 1,
            1 << 20,
            10_000_000,
            1 << 30,
        ] {
            let p = Plan::new(n);
            assert_eq!(p.size % BLOCK, 0);
            assert!(p.count <= MAX_SUPERS, "{n}: {p:?}");
            assert!(p.count * p.size >= n);
            assert!(n == 0 || (p.count - 1) * p.size < n);
        }
        assert!(!Plan::new(100_000).parallel);
    }

    #[test]
    fn forcing_never_goes_above_the_cpu() {
        let before = level();
        assert!(force(Simd::Avx512) <= detected());
        assert_eq!(force(Simd::Portable), Simd::Portable);
        force(before);
    }
}
