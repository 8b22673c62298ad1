//! Compressed state buffers: bitsandbytes' 8-bit block-wise quantization and
//! bfloat16, as data ([`Packed`]) and as the per-block conversions the
//! driver runs around a pass's kernel.
//!
//! 8-bit, as bitsandbytes' pure-PyTorch kernels compute it: a buffer is cut
//! into blocks of [`QBLOCK`] elements (the last may be shorter); a block keeps
//! `absmax = max |x|` (f32) and one byte per element, the index of the code
//! nearest to `clamp(x * (1 / absmax), -1, 1)` on the map (distances computed
//! in f32, ties to the lower index; a NaN, as from an all-zero block, takes
//! code 0, as `torch.argmin` does). Code `q` stands for `map[q] * absmax`.
//! f64 elements are rounded to f32 first.
//!
//! bfloat16: the upper half of the f32 bits, rounded to nearest even, or
//! stochastically (torchao's `bf16_stochastic_round`: 16 random bits added
//! below the kept half, then truncated) with bits drawn from a counter-based
//! hash of the seed, the step and the element's index, so the same on any
//! number of threads.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::qmaps;
use optdsl_lang::{Storage, QBLOCK};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::OnceLock;

mod pieces;

/// A compressed state buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Packed {
    /// bfloat16 bits, one per element.
    Bf16 {
        /// The elements' bits.
        bits: Vec<u16>,
        /// `Some(seed)`: stochastic rounding keyed by the seed; `None`: to
        /// nearest even.
        stochastic: Option<u64>,
    },
    /// One code per element and one f32 scale per block of [`QBLOCK`].
    Q8 {
        /// Whether the signed map is used (else the unsigned one).
        signed: bool,
        /// The codes.
        codes: Vec<u8>,
        /// Each block's largest magnitude.
        absmax: Vec<f32>,
    },
    /// A buffer not stored while no step needs it
    /// ([`crate::State::leave_out_idle`]): every element holds the same
    /// bytes, bfloat16 bits `code` (`signed: None`) or 8-bit `code` with
    /// `absmax` in every block (`Some(signed)`); stored in full again, with
    /// those bytes (and bfloat16's rounding), once a step needs it
    /// ([`Packed::allocate`]).
    Deferred {
        /// Its number of elements.
        len: usize,
        /// `None`: bfloat16; `Some(signed)`: 8-bit on the signed or the
        /// unsigned map.
        signed: Option<bool>,
        /// Each element's bits (bfloat16) or code (8-bit).
        code: u16,
        /// Each block's largest magnitude (8-bit).
        absmax: f32,
        /// bfloat16's rounding once stored, as [`Packed::Bf16`]'s
        /// `stochastic` (`None` for 8-bit, and in checkpoints written before
        /// this field).
        #[serde(default)]
        stochastic: Option<u64>,
    },
}

impl Packed {
    /// A buffer of `len` elements stored as `storage`, every element `init`
    /// (rounded or quantized as a step would); `None` for [`Storage::Full`].
    pub fn new(storage: Storage, len: usize, init: f64) -> Option<Packed> {
        match storage {
            Storage::Full => None,
            Storage::Bf16 => Some(Packed::Bf16 {
                bits: vec![bf16_nearest(init as f32); len],
                stochastic: None,
            }),
            Storage::Q8 { signed } => {
                let q = quantizer(signed);
                let x = init as f32;
                let mut block = [0u8; QBLOCK];
                let full = q.quantize(&[x; QBLOCK], &mut block);
                let blocks = len.div_ceil(QBLOCK);
                Some(Packed::Q8 {
                    signed,
                    codes: vec![block[0]; len],
                    absmax: vec![full; blocks],
                })
            }
        }
    }

    /// `values` stored as `storage` (rounded to nearest even for bfloat16,
    /// or stochastically with bits keyed by `stochastic` at step 0);
    /// `None` for [`Storage::Full`].
    pub fn from_values<F: Float>(
        storage: Storage,
        values: &[F],
        stochastic: Option<u64>,
    ) -> Option<Packed> {
        let n = values.len();
        let mut p = match storage {
            Storage::Full => return None,
            Storage::Bf16 => Packed::Bf16 {
                bits: vec![0; n],
                stochastic,
            },
            Storage::Q8 { signed } => Packed::Q8 {
                signed,
                codes: vec![0; n],
                absmax: vec![0.0; n.div_ceil(QBLOCK)],
            },
        };
        p.encode_from(values, 0);
        Some(p)
    }

    /// Stores `values` (as long as the buffer) in place of what it holds, as
    /// a step's encoding does at step `step` (which keys stochastic
    /// rounding).
    pub fn encode_from<F: Float>(&mut self, values: &[F], step: u64) {
        self.allocate();
        match self {
            Packed::Bf16 { bits, stochastic } => encode_bf16(bits, values, *stochastic, step, 0),
            Packed::Q8 {
                signed,
                codes,
                absmax,
            } => encode_q8(quantizer(*signed), codes, absmax, values),
            Packed::Deferred { .. } => unreachable!("allocated above"),
        }
    }

    /// A buffer whose elements all hold the same bytes, bfloat16 or 8-bit,
    /// as [`Packed::Deferred`]: the same contents, no storage; `None` for
    /// any other buffer.
    pub fn deferred(&self) -> Option<Packed> {
        let len = self.len();
        match self {
            Packed::Bf16 { bits, stochastic } => {
                let code = *bits.first()?;
                bits.iter().all(|&b| b == code).then_some(Packed::Deferred {
                    len,
                    signed: None,
                    code,
                    absmax: 0.0,
                    stochastic: *stochastic,
                })
            }
            Packed::Q8 {
                signed,
                codes,
                absmax,
            } => {
                let (code, scale) = (*codes.first()?, *absmax.first()?);
                let same = codes.iter().all(|&c| c == code)
                    && absmax.iter().all(|a| a.to_bits() == scale.to_bits());
                same.then_some(Packed::Deferred {
                    len,
                    signed: Some(*signed),
                    code: u16::from(code),
                    absmax: scale,
                    stochastic: None,
                })
            }
            _ => None,
        }
    }

    /// Stores a [`Packed::Deferred`] buffer in full (the same contents);
    /// any other is left as it is.
    pub fn allocate(&mut self) {
        if let Packed::Deferred {
            len,
            signed,
            code,
            absmax,
            stochastic,
        } = *self
        {
            *self = match signed {
                None => Packed::Bf16 {
                    bits: vec![code; len],
                    stochastic,
                },
                Some(signed) => Packed::Q8 {
                    signed,
                    codes: vec![code as u8; len],
                    absmax: vec![absmax; len.div_ceil(QBLOCK)],
                },
            };
        }
    }

    /// The seed of its stochastic rounding to bfloat16, stored or deferred
    /// (`None`: rounded to nearest even, or 8-bit).
    pub fn stochastic(&self) -> Option<u64> {
        match self {
            Packed::Bf16 { stochastic, .. } | Packed::Deferred { stochastic, .. } => *stochastic,
            Packed::Q8 { .. } => None,
        }
    }

    /// Whether it is [`Packed::Deferred`].
    pub fn is_deferred(&self) -> bool {
        matches!(self, Packed::Deferred { .. })
    }

    /// The one value every element of a [`Packed::Deferred`] buffer decodes
    /// to, as [`Packed::decode`] gives it.
    pub(crate) fn deferred_value<F: Float>(signed: Option<bool>, code: u16, absmax: f32) -> F {
        let mut out = [F::ZERO];
        match signed {
            None => decode_bf16(&[code], &mut out),
            Some(signed) => decode_q8(quantizer(signed), &[code as u8], &[absmax], 0, &mut out),
        }
        out[0]
    }

    /// The storage this buffer has.
    pub fn storage(&self) -> Storage {
        match self {
            Packed::Bf16 { .. } => Storage::Bf16,
            Packed::Q8 { signed, .. } => Storage::Q8 { signed: *signed },
            Packed::Deferred { signed: None, .. } => Storage::Bf16,
            Packed::Deferred {
                signed: Some(signed),
                ..
            } => Storage::Q8 { signed: *signed },
        }
    }

    /// Its number of elements.
    pub fn len(&self) -> usize {
        match self {
            Packed::Bf16 { bits, .. } => bits.len(),
            Packed::Q8 { codes, .. } => codes.len(),
            Packed::Deferred { len, .. } => *len,
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether its parts have consistent lengths (as a loaded file may not).
    pub fn is_consistent(&self) -> bool {
        match self {
            Packed::Bf16 { .. } | Packed::Deferred { .. } => true,
            Packed::Q8 { codes, absmax, .. } => absmax.len() == codes.len().div_ceil(QBLOCK),
        }
    }

    /// Bytes it keeps (none while [`Packed::Deferred`]).
    pub fn bytes(&self) -> usize {
        match self {
            Packed::Deferred { .. } => 0,
            Packed::Bf16 { bits, .. } => 2 * bits.len(),
            Packed::Q8 { codes, absmax, .. } => codes.len() + 4 * absmax.len(),
        }
    }

    /// Elements `lo..lo + out.len()` decoded into `out` (those past the
    /// buffer's end as NaN).
    pub fn decode<F: Float>(&self, lo: usize, out: &mut [F]) {
        let have = self.len().saturating_sub(lo).min(out.len());
        let (inside, past) = out.split_at_mut(have);
        past.fill(F::from_f64(f64::NAN));
        match self {
            Packed::Bf16 { bits, .. } => decode_bf16(&bits[lo..lo + have], inside),
            Packed::Q8 {
                signed,
                codes,
                absmax,
            } => decode_q8(
                quantizer(*signed),
                &codes[lo..lo + have],
                absmax.get(lo / QBLOCK..).unwrap_or(&[]),
                lo,
                inside,
            ),
            Packed::Deferred {
                signed,
                code,
                absmax,
                ..
            } => inside.fill(Self::deferred_value(*signed, *code, *absmax)),
        }
    }

    /// Every element decoded.
    pub fn to_vec<F: Float>(&self) -> Vec<F> {
        let mut out = vec![F::ZERO; self.len()];
        self.decode(0, &mut out);
        out
    }

    /// Elements `range`, which must start at a block boundary and end at one
    /// or at the end (typed error otherwise).
    pub fn slice(&self, range: Range<usize>) -> Result<Packed> {
        let n = self.len();
        if range.start > range.end || range.end > n {
            return Err(Error::Invalid {
                what: "a slice of a compressed state buffer".into(),
                reason: format!("{range:?} is outside its {n} elements"),
            });
        }
        let q8 = matches!(self.storage(), Storage::Q8 { .. });
        if q8
            && (!range.start.is_multiple_of(QBLOCK)
                || (!range.end.is_multiple_of(QBLOCK) && range.end != n))
        {
            return Err(Error::Invalid {
                what: "a slice of an 8-bit state buffer".into(),
                reason: format!(
                    "{range:?} does not fall on its blocks of {QBLOCK} elements; split 8-bit state at multiples of {QBLOCK}"
                ),
            });
        }
        Ok(match self {
            Packed::Bf16 { bits, stochastic } => Packed::Bf16 {
                bits: bits[range].to_vec(),
                stochastic: *stochastic,
            },
            Packed::Deferred {
                signed,
                code,
                absmax,
                stochastic,
                ..
            } => Packed::Deferred {
                len: range.len(),
                signed: *signed,
                code: *code,
                absmax: *absmax,
                stochastic: *stochastic,
            },
            Packed::Q8 {
                signed,
                codes,
                absmax,
            } => Packed::Q8 {
                signed: *signed,
                codes: codes[range.clone()].to_vec(),
                absmax: absmax[range.start / QBLOCK..range.end.div_ceil(QBLOCK)].to_vec(),
            },
        })
    }

    /// Appends `other` (of the same storage; for 8-bit, `self` must end at a
    /// block boundary).
    pub fn append(&mut self, other: &Packed) -> Result<()> {
        let n = self.len();
        if let (
            Packed::Deferred {
                len,
                signed,
                code,
                absmax,
                stochastic,
            },
            Packed::Deferred {
                len: more,
                signed: s2,
                code: c2,
                absmax: a2,
                stochastic: r2,
            },
        ) = (&mut *self, other)
        {
            let aligned = signed.is_none() || n.is_multiple_of(QBLOCK);
            let same =
                (*signed, *code, absmax.to_bits(), *stochastic) == (*s2, *c2, a2.to_bits(), *r2);
            if same && aligned {
                *len += more;
                return Ok(());
            }
        }
        self.allocate();
        let mut other = std::borrow::Cow::Borrowed(other);
        if other.is_deferred() {
            other.to_mut().allocate();
        }
        match (self, other.as_ref()) {
            (Packed::Bf16 { bits, .. }, Packed::Bf16 { bits: more, .. }) => {
                bits.extend_from_slice(more);
                Ok(())
            }
            (
                Packed::Q8 {
                    signed,
                    codes,
                    absmax,
                },
                Packed::Q8 {
                    signed: s2,
                    codes: c2,
                    absmax: a2,
                },
            ) if signed == s2 && n.is_multiple_of(QBLOCK) => {
                codes.extend_from_slice(c2);
                absmax.extend_from_slice(a2);
                Ok(())
            }
            _ => Err(Error::Invalid {
                what: "joining compressed state".into(),
                reason:
                    "the parts differ in storage, or an 8-bit part does not end at a block boundary"
                        .into(),
            }),
        }
    }
}

/// `xs` as bfloat16 into `dst`, element `k` being the buffer's element
/// `first + k` (which, with `step`, keys stochastic rounding).
#[inline]
pub(crate) fn encode_bf16<F: Float>(
    dst: &mut [u16],
    xs: &[F],
    stochastic: Option<u64>,
    step: u64,
    first: usize,
) {
    match stochastic {
        None => match F::as_f32s(xs) {
            Some(xs) => encode_bf16_nearest(dst, xs),
            None => {
                for (d, x) in dst.iter_mut().zip(xs) {
                    *d = bf16_nearest(x.to_f64() as f32);
                }
            }
        },
        Some(seed) => {
            for (k, (d, x)) in dst.iter_mut().zip(xs).enumerate() {
                *d = bf16_stochastic(x.to_f64() as f32, round_bits(seed, step, first + k));
            }
        }
    }
}

/// `xs`, starting at a block boundary, quantized block by block into
/// `codes` and `absmax` (one per block of [`QBLOCK`], the last perhaps
/// shorter).
#[inline]
pub(crate) fn encode_q8<F: Float>(q: &Quantizer, codes: &mut [u8], absmax: &mut [f32], xs: &[F]) {
    if let Some(xs) = F::as_f32s(xs) {
        for ((x, c), a) in xs
            .chunks(QBLOCK)
            .zip(codes.chunks_mut(QBLOCK))
            .zip(absmax.iter_mut())
        {
            *a = q.quantize(x, c);
        }
        return;
    }
    let mut block = [0.0f32; QBLOCK];
    for ((x, c), a) in xs
        .chunks(QBLOCK)
        .zip(codes.chunks_mut(QBLOCK))
        .zip(absmax.iter_mut())
    {
        for (b, v) in block.iter_mut().zip(x) {
            *b = v.to_f64() as f32;
        }
        *a = q.quantize(&block[..x.len()], c);
    }
}

/// bfloat16 bits decoded into `out`.
#[inline]
pub(crate) fn decode_bf16<F: Float>(src: &[u16], out: &mut [F]) {
    if let Some(out) = F::as_f32s_mut(out) {
        return decode_bf16_f32(src, out);
    }
    for (o, &b) in out.iter_mut().zip(src) {
        *o = optdsl_lang::Real::from_bf16(b);
    }
}

/// Copies of a loop over f32 for each SIMD level (the same scalar code,
/// so the same bits; the CPU's best level for heavy passes, as the
/// quantizer's): `$name(args)` chooses, `$any` is the portable body.
macro_rules! per_level {
    ($(#[$doc:meta])* fn $name:ident / $any:ident ($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// # Safety
                /// The CPU must have AVX-512 F and BW.
                #[target_feature(enable = "avx512f,avx512bw")]
                unsafe fn avx512($($arg: $ty),*) {
                    $any($($arg),*)
                }
                /// # Safety
                /// The CPU must have AVX2.
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    $any($($arg),*)
                }
                use crate::exec::Simd;
                match crate::exec::level_for(true) {
                    // SAFETY: the level is one this CPU has (AVX-512 BW is
                    // checked as well).
                    Simd::Avx512 if std::arch::is_x86_feature_detected!("avx512bw") => {
                        return unsafe { avx512($($arg),*) }
                    }
                    // SAFETY: the level is one this CPU has.
                    Simd::Avx512 | Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    Simd::Portable => {}
                }
            }
            $any($($arg),*)
        }
        #[inline(always)]
        fn $any($($arg: $ty),*) $body
    };
}

/// f32 elements rounded to bfloat16, to nearest even: under AVX-512 BW
/// written out ([`encode_bf16_avx512`]), else the portable loop compiled per
/// level.
fn encode_bf16_nearest(dst: &mut [u16], xs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::exec::level_for(true) == crate::exec::Simd::Avx512
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // SAFETY: the CPU has AVX-512 F (the level) and BW (checked).
        return unsafe { encode_bf16_avx512(dst, xs) };
    }
    encode_bf16_nearest_level(dst, xs)
}

/// [`bf16_nearest`] 32 elements at a time: the compiler's loop narrows
/// with `vpmovdw` to memory, which AMD's Zen 4 runs at a fraction of the
/// speed of one two-source word permute (`vpermt2w`) and a full store.
///
/// # Safety
/// The CPU must have AVX-512 F and BW.
// AVX-512 intrinsics are stable from Rust 1.89; `#[target_feature(enable
// = "avx512f")]` is too, and this crate has needed it since its first
// AVX-512 copies (rustc 1.80.1 rejects them: E0658), whatever
// `rust-version` says.
#[allow(clippy::incompatible_msrv)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn encode_bf16_avx512(dst: &mut [u16], xs: &[f32]) {
    use std::arch::x86_64::*;
    let n = dst.len().min(xs.len());
    let mut i = 0;
    // SAFETY: the CPU features are the caller's contract; loads read
    // `xs[i..i + 32]`, stores write `dst[i..i + 32]` (i + 32 <= n).
    unsafe {
        // Words 1, 3, 5, ... of a then b: the upper halves of 32 dwords.
        let high: [u16; 32] = std::array::from_fn(|k| (2 * k + 1) as u16);
        let high = _mm512_loadu_si512(high.as_ptr().cast());
        let bias = _mm512_set1_epi32(0x7fff);
        let one = _mm512_set1_epi32(1);
        let quiet = _mm512_set1_epi32(0x0040_0000);
        let round = |x: __m512| {
            let b = _mm512_castps_si512(x);
            // b + 0x7fff + ((b >> 16) & 1), or for a NaN b | quiet bit: the
            // upper halves are bf16_nearest's.
            let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(b), one);
            let r = _mm512_add_epi32(_mm512_add_epi32(b, bias), odd);
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            _mm512_mask_or_epi32(r, nan, b, quiet)
        };
        while i + 32 <= n {
            let a = round(_mm512_loadu_ps(xs.as_ptr().add(i)));
            let b = round(_mm512_loadu_ps(xs.as_ptr().add(i + 16)));
            let words = _mm512_permutex2var_epi16(a, high, b);
            _mm512_storeu_si512(dst.as_mut_ptr().add(i).cast(), words);
            i += 32;
        }
    }
    for (d, &x) in dst[i..n].iter_mut().zip(&xs[i..n]) {
        *d = bf16_nearest(x);
    }
}

per_level! {
    /// f32 elements rounded to bfloat16, to nearest even.
    fn encode_bf16_nearest_level / encode_bf16_nearest_any(dst: &mut [u16], xs: &[f32]) {
        for (d, &x) in dst.iter_mut().zip(xs) {
            *d = bf16_nearest(x);
        }
    }
}

per_level! {
    /// bfloat16 bits widened to f32.
    fn decode_bf16_f32 / decode_bf16_f32_any(src: &[u16], out: &mut [f32]) {
        // `Real::from_bf16` widened in place: the bits moved up, no rounding.
        for (o, &b) in out.iter_mut().zip(src) {
            *o = f32::from_bits(u32::from(b) << 16);
        }
    }
}

/// `codes`, the buffer's elements from `first` on, decoded into `out`;
/// `absmax[k]` is the maximum of the `k`-th block they touch (a missing
/// one, from a damaged file, decodes as NaN).
#[inline]
pub(crate) fn decode_q8<F: Float>(
    q: &Quantizer,
    codes: &[u8],
    absmax: &[f32],
    first: usize,
    out: &mut [F],
) {
    let head = first % QBLOCK;
    let mut a = 0;
    while a < codes.len() {
        let b = (a + QBLOCK - (head + a) % QBLOCK).min(codes.len());
        let scale = absmax.get((head + a) / QBLOCK).copied().unwrap_or(f32::NAN);
        match F::as_f32s_mut(&mut out[a..b]) {
            Some(out) => q.dequantize_f32(&codes[a..b], scale, out),
            None => q.dequantize(&codes[a..b], scale, &mut out[a..b]),
        }
        a = b;
    }
}

/// A map with a table that finds the nearest code in a few operations.
///
/// The 65,536 f32 values that share their upper 16 bits `k` (a "group", as
/// bfloat16 rounds them) take at most two neighbouring codes, the second
/// above a threshold (codes are monotone in the value; built from the
/// reference search [`nearest_reference`] at each group's ends, the
/// threshold by bisection, and checked when building). `lut[k]` packs the
/// group's least code (bits 16..24) and the last rank within the group, in
/// value order, that still takes it (bits 0..16; `0xffff` when the group
/// does not split): a code is one load and an integer comparison.
///
/// Under AVX-512 F, DQ and BW the encode finds codes without that load,
/// from the map's arithmetic progressions (`quant/pieces.rs`), and asks
/// the table only for the few values next to a boundary between two codes.
///
/// Decoding to f32 under AVX-512 VBMI looks codes up in registers instead
/// of memory: the map's f32 bits cut into four byte planes of 256 entries,
/// each looked up 64 codes at a time by two `vpermi2b` and a blend.
pub struct Quantizer {
    /// The 256 codes, ascending.
    pub map: [f32; 256],
    lut: Box<[u32; 1 << 16]>,
    /// Byte `p` of each code's f32 bits, plane by plane.
    planes: Box<Planes>,
    /// Whether this CPU has AVX-512 BW and VBMI (the register decode).
    vbmi: bool,
    /// The map as arithmetic progressions, for the encode without table
    /// loads ([`pieces`]): `Some` only where this CPU has AVX-512 DQ and BW
    /// (which that encode needs besides F) and the map is made of few.
    pieces: Option<pieces::Pieces>,
}

/// The map's f32 bits as four planes of bytes (plane `p`: bits `8p..8p+8`),
/// aligned for 512-bit loads.
#[repr(C, align(64))]
struct Planes([[u8; 256]; 4]);

/// The order in which the register decode reads a chunk of 64 codes: the
/// byte unpacks that assemble f32 words work within 128-bit lanes, so code
/// `16q + 4l + t` is put at position `16l + 4q + t` (`l`, `q`, `t` < 4) for
/// word register `q` to come out holding codes `16q..16q + 16` in order.
#[cfg(target_arch = "x86_64")]
const DECODE_ORDER: [u8; 64] = {
    let mut order = [0u8; 64];
    let mut p = 0;
    while p < 64 {
        let (l, q, t) = (p / 16, p / 4 % 4, p % 4);
        order[p] = (16 * q + 4 * l + t) as u8;
        p += 1;
    }
    order
};

/// The nearest code to `s` by exhaustive search, bitsandbytes' definition:
/// the first index of the least `|s - map[k]|` in f32; NaN takes 0.
pub fn nearest_reference(map: &[f32; 256], s: f32) -> u8 {
    if s.is_nan() {
        return 0;
    }
    let mut best = 0usize;
    let mut dist = f32::INFINITY;
    for (k, &c) in map.iter().enumerate() {
        let d = (s - c).abs();
        if d < dist {
            dist = d;
            best = k;
        }
    }
    best as u8
}

/// Rank of the low 16 bits in value order within their group (negative
/// groups run downwards in value as the bits increase), without a branch.
#[inline(always)]
fn rank(bits: u32) -> u32 {
    let negative = ((bits as i32) >> 31) as u32;
    (bits ^ negative) & 0xffff
}

/// The f32 of group `k` at `rank` in value order.
fn group_value(k: u32, rank: u32) -> f32 {
    let low = if k & 0x8000 != 0 { 0xffff - rank } else { rank };
    f32::from_bits(k << 16 | low)
}

/// A group's entry when it does not split: no rank lies above the threshold.
const NO_SPLIT: u32 = 0xffff;

impl Quantizer {
    fn build(map: [f32; 256]) -> Quantizer {
        // NaN groups (and infinities beside them) keep code 0.
        let mut lut: Box<[u32; 1 << 16]> = vec![NO_SPLIT; 1 << 16]
            .into_boxed_slice()
            .try_into()
            .expect("65,536 entries");
        for k in 0..1u32 << 16 {
            let lo_v = group_value(k, 0);
            let hi_v = group_value(k, 0xffff);
            if lo_v.is_nan() || hi_v.is_nan() {
                continue;
            }
            let a = nearest_reference(&map, lo_v);
            let b = nearest_reference(&map, hi_v);
            let mut entry = u32::from(a) << 16 | NO_SPLIT;
            if b != a {
                // Bisect for the last rank that still takes `a`.
                let (mut l, mut h) = (0u32, 0xffffu32);
                while h - l > 1 {
                    let mid = (l + h) / 2;
                    if nearest_reference(&map, group_value(k, mid)) == a {
                        l = mid;
                    } else {
                        h = mid;
                    }
                }
                if b == a + 1 && nearest_reference(&map, group_value(k, h)) == b {
                    entry = u32::from(a) << 16 | l;
                } else {
                    // More than two codes in one group happens only for
                    // magnitudes far above 1 (where f32 distances lose
                    // monotonicity), which the clamp to [-1, 1] never lets
                    // through: those groups take the code of ±1.
                    assert!(lo_v.abs() > 1.0, "the map splits a group below 1");
                    entry = u32::from(nearest_reference(&map, lo_v.signum())) << 16 | NO_SPLIT;
                }
            }
            lut[k as usize] = entry;
        }
        let mut planes = Box::new(Planes([[0; 256]; 4]));
        for (k, c) in map.iter().enumerate() {
            for (p, plane) in planes.0.iter_mut().enumerate() {
                plane[k] = (c.to_bits() >> (8 * p)) as u8;
            }
        }
        #[cfg(target_arch = "x86_64")]
        let vbmi = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vbmi");
        #[cfg(not(target_arch = "x86_64"))]
        let vbmi = false;
        #[cfg(target_arch = "x86_64")]
        let dq_bw = std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512bw");
        #[cfg(not(target_arch = "x86_64"))]
        let dq_bw = false;
        Quantizer {
            // Built only where the encode that uses it can run.
            pieces: if dq_bw {
                pieces::Pieces::build(&map)
            } else {
                None
            },
            map,
            lut,
            planes,
            vbmi,
        }
    }

    /// The nearest code to `s` (a value in `[-1, 1]`, or NaN; larger
    /// magnitudes take the code of ±1): one load, no branch.
    #[inline(always)]
    pub fn code(&self, s: f32) -> u8 {
        let bits = s.to_bits();
        let e = self.lut[(bits >> 16) as usize];
        ((e >> 16) as u8).wrapping_add(u8::from(rank(bits) > (e & 0xffff)))
    }

    /// Quantizes one block: returns its absmax and writes each element's
    /// code (`xs` and `codes` of one length, at most [`QBLOCK`]). Compiled
    /// for AVX-512 and AVX2 too, the copy chosen by the CPU: under AVX-512
    /// F, DQ and BW the codes come from the map's progressions, else from
    /// the table (gathered under AVX-512 F, loaded one by one under AVX2).
    pub fn quantize(&self, xs: &[f32], codes: &mut [u8]) -> f32 {
        self.quantize_with(xs, codes, false)
    }

    /// [`Quantizer::quantize`] through the table alone, as CPUs without
    /// AVX-512 DQ and BW run it (under AVX-512 F a gather per 16 values):
    /// the same absmax and codes. For comparisons (`cargo bench --bench
    /// step`) and tests.
    pub fn quantize_table(&self, xs: &[f32], codes: &mut [u8]) -> f32 {
        self.quantize_with(xs, codes, true)
    }

    /// [`Quantizer::quantize`], or with `table` the table alone.
    fn quantize_with(&self, xs: &[f32], codes: &mut [u8], table: bool) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::exec::Simd;
            match crate::exec::level_for(true) {
                // SAFETY: the level is one this CPU has.
                Simd::Avx512 => return unsafe { self.quantize_avx512(xs, codes, table) },
                // SAFETY: as above.
                Simd::Avx2 => return unsafe { self.quantize_avx2(xs, codes) },
                Simd::Portable => {}
            }
        }
        self.quantize_any(xs, codes)
    }

    /// [`Quantizer::quantize`] written out for AVX-512: the largest
    /// magnitude as the unsigned maximum of the magnitudes' bits (the order
    /// of non-negative floats; above infinity's bits is a NaN, and then the
    /// block's scale is NaN), then the codes: from the map's progressions
    /// ([`pieces`]) where the CPU has AVX-512 DQ and BW too and `table` is
    /// false, else per 16 elements the scaled, clamped value (`max`/`min`
    /// with the value second, so that NaN stays NaN as `f32::clamp` keeps
    /// it), one gather of its group's entry and the comparison of its rank,
    /// as [`Quantizer::code`] does.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F.
    // AVX-512 intrinsics are stable from Rust 1.89; `#[target_feature(enable
    // = "avx512f")]` is too, and this crate has needed it since its first
    // AVX-512 copies (rustc 1.80.1 rejects them: E0658), whatever
    // `rust-version` says.
    #[allow(clippy::incompatible_msrv)]
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn quantize_avx512(&self, xs: &[f32], codes: &mut [u8], table: bool) -> f32 {
        use std::arch::x86_64::*;
        let n = xs.len().min(codes.len());
        let x = xs.as_ptr();
        // SAFETY: the CPU feature is the caller's contract; loads read
        // `xs[i..i + 16]` and stores write `codes[i..i + 16]` (i + 16 <= n);
        // gathers read `lut` at indices below 65,536 (a shift by 16 of u32).
        unsafe {
            let magnitude = _mm512_set1_epi32(0x7fff_ffff);
            let mut most = _mm512_setzero_si512();
            let mut i = 0;
            while i + 16 <= n {
                let v = _mm512_loadu_si512(x.add(i).cast());
                most = _mm512_max_epu32(most, _mm512_and_si512(v, magnitude));
                i += 16;
            }
            let absmax = absmax_of(_mm512_reduce_max_epu32(most) as u32, &xs[i..n]);
            let inv = 1.0 / absmax;
            if let (Some(pieces), false) = (&self.pieces, table) {
                if absmax == 0.0 || absmax.is_nan() {
                    // Every scaled value is NaN (0 times infinity, or NaN).
                    codes[..n].fill(self.code(f32::NAN));
                } else {
                    // SAFETY: AVX-512 F is the caller's contract, DQ and BW
                    // are checked (`pieces` is built only then).
                    pieces.encode(&xs[..n], &mut codes[..n], inv, |s| self.code(s));
                }
                return absmax;
            }
            let vinv = _mm512_set1_ps(inv);
            let (lower, upper) = (_mm512_set1_ps(-1.0), _mm512_set1_ps(1.0));
            let low16 = _mm512_set1_epi32(0xffff);
            let one = _mm512_set1_epi32(1);
            let lut = self.lut.as_ptr();
            let mut i = 0;
            while i + 16 <= n {
                let v = _mm512_mul_ps(_mm512_loadu_ps(x.add(i)), vinv);
                let v = _mm512_min_ps(upper, _mm512_max_ps(lower, v));
                let bits = _mm512_castps_si512(v);
                let e = _mm512_i32gather_epi32::<4>(_mm512_srli_epi32::<16>(bits), lut.cast());
                let rank =
                    _mm512_and_si512(_mm512_xor_si512(bits, _mm512_srai_epi32::<31>(bits)), low16);
                let above = _mm512_cmpgt_epu32_mask(rank, _mm512_and_si512(e, low16));
                let c = _mm512_srli_epi32::<16>(e);
                let c = _mm512_mask_add_epi32(c, above, c, one);
                _mm_storeu_si128(codes.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi8(c));
                i += 16;
            }
            for (c, &v) in codes[i..n].iter_mut().zip(&xs[i..n]) {
                *c = self.code((v * inv).clamp(-1.0, 1.0));
            }
            absmax
        }
    }

    /// [`Quantizer::quantize`] written out for AVX2, as
    /// [`Quantizer::quantize_avx512`] computes it: the largest magnitude as
    /// the unsigned maximum of the magnitudes' bits, then per 8 elements the
    /// scaled, clamped value, its group's entry loaded element by element
    /// (on AMD's Zen 2 eight scalar loads beat `vpgatherdd`, and both beat
    /// the compiler's loop), and the comparison of its rank.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn quantize_avx2(&self, xs: &[f32], codes: &mut [u8]) -> f32 {
        use std::arch::x86_64::*;
        let n = xs.len().min(codes.len());
        let x = xs.as_ptr();
        // SAFETY: the CPU feature is the caller's contract; loads read
        // `xs[i..i + 8]` (or `i + 16`) and stores write `codes[i..i + 8]`
        // within `n`; table loads read `lut` at indices below 65,536 (a
        // shift by 16 of u32).
        unsafe {
            let magnitude = _mm256_set1_epi32(0x7fff_ffff);
            let (mut m0, mut m1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            let mut i = 0;
            while i + 16 <= n {
                let a = _mm256_loadu_si256(x.add(i).cast());
                let b = _mm256_loadu_si256(x.add(i + 8).cast());
                m0 = _mm256_max_epu32(m0, _mm256_and_si256(a, magnitude));
                m1 = _mm256_max_epu32(m1, _mm256_and_si256(b, magnitude));
                i += 16;
            }
            let m = _mm256_max_epu32(m0, m1);
            let m = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256::<1>(m));
            let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b01_00_11_10>(m));
            let m = _mm_max_epu32(m, _mm_shuffle_epi32::<0b10_11_00_01>(m));
            let absmax = absmax_of(_mm_cvtsi128_si32(m) as u32, &xs[i..n]);
            let inv = 1.0 / absmax;
            let vinv = _mm256_set1_ps(inv);
            let (lower, upper) = (_mm256_set1_ps(-1.0), _mm256_set1_ps(1.0));
            let low16 = _mm256_set1_epi32(0xffff);
            // Byte 0 of each dword, per 128-bit lane.
            let bytes = _mm256_setr_epi8(
                0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1,
                -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
            );
            let lut = self.lut.as_ptr();
            let mut group = [0u32; 8];
            let mut i = 0;
            while i + 8 <= n {
                let v = _mm256_mul_ps(_mm256_loadu_ps(x.add(i)), vinv);
                let v = _mm256_min_ps(upper, _mm256_max_ps(lower, v));
                let bits = _mm256_castps_si256(v);
                _mm256_storeu_si256(group.as_mut_ptr().cast(), _mm256_srli_epi32::<16>(bits));
                let at = |k: usize| *lut.add(group[k] as usize) as i32;
                let e = _mm256_setr_epi32(at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7));
                let rank =
                    _mm256_and_si256(_mm256_xor_si256(bits, _mm256_srai_epi32::<31>(bits)), low16);
                // Both below 2^16: the signed comparison is the unsigned one.
                let above = _mm256_cmpgt_epi32(rank, _mm256_and_si256(e, low16));
                let c = _mm256_sub_epi32(_mm256_srli_epi32::<16>(e), above);
                let c = _mm256_shuffle_epi8(c, bytes);
                let c =
                    _mm_unpacklo_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256::<1>(c));
                _mm_storel_epi64(codes.as_mut_ptr().add(i).cast(), c);
                i += 8;
            }
            for (c, &v) in codes[i..n].iter_mut().zip(&xs[i..n]) {
                *c = self.code((v * inv).clamp(-1.0, 1.0));
            }
            absmax
        }
    }

    /// `out[i] = map[codes[i]] * scale`, in f32, converted to `F` (the
    /// same copies per SIMD level as [`Quantizer::quantize`]).
    pub fn dequantize<F: Float>(&self, codes: &[u8], scale: f32, out: &mut [F]) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::exec::Simd;
            match crate::exec::level_for(true) {
                // SAFETY: the level is one this CPU has.
                Simd::Avx512 => return unsafe { self.dequantize_avx512(codes, scale, out) },
                // SAFETY: as above.
                Simd::Avx2 => return unsafe { self.dequantize_avx2(codes, scale, out) },
                Simd::Portable => {}
            }
        }
        self.dequantize_any(codes, scale, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    unsafe fn dequantize_avx512<F: Float>(&self, codes: &[u8], scale: f32, out: &mut [F]) {
        self.dequantize_any(codes, scale, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dequantize_avx2<F: Float>(&self, codes: &[u8], scale: f32, out: &mut [F]) {
        self.dequantize_any(codes, scale, out)
    }

    /// [`Quantizer::dequantize`] into f32: under AVX-512 with VBMI, codes are
    /// looked up in registers (64 at a time) instead of gathered from
    /// memory; the same bits at every level.
    pub fn dequantize_f32(&self, codes: &[u8], scale: f32, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::exec::Simd;
            if self.vbmi && crate::exec::level_for(true) == Simd::Avx512 {
                // SAFETY: `vbmi` says this CPU has AVX-512 F, BW and VBMI.
                return unsafe { self.dequantize_vbmi(codes, scale, out) };
            }
        }
        self.dequantize(codes, scale, out)
    }

    /// The register decode: per 64 codes, each of the four bytes of
    /// `map[c]` by two `vpermi2b` (codes below and from 128) and a blend on
    /// the code's top bit, then byte and word unpacks assemble the f32 words
    /// (in [`DECODE_ORDER`]) and one multiply scales them, as
    /// [`Quantizer::dequantize`] does element by element.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI.
    // AVX-512 intrinsics are stable from Rust 1.89; `#[target_feature(enable
    // = "avx512f")]` is too, and this crate has needed it since its first
    // AVX-512 copies (rustc 1.80.1 rejects them: E0658), whatever
    // `rust-version` says.
    #[allow(clippy::incompatible_msrv)]
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn dequantize_vbmi(&self, codes: &[u8], scale: f32, out: &mut [f32]) {
        use std::arch::x86_64::*;
        let n = codes.len().min(out.len());
        let mut i = 0;
        // SAFETY: the CPU features are the caller's contract; every load
        // reads 64 bytes inside `planes` (256-byte planes), `DECODE_ORDER`
        // or `codes[i..i + 64]`, and every store writes `out[i..i + 64]`
        // (i + 64 <= n).
        unsafe {
            let plane =
                |p: usize, h: usize| _mm512_loadu_si512(self.planes.0[p][64 * h..].as_ptr().cast());
            let t: [[__m512i; 4]; 4] =
                std::array::from_fn(|p| std::array::from_fn(|h| plane(p, h)));
            let order = _mm512_loadu_si512(DECODE_ORDER.as_ptr().cast());
            let s = _mm512_set1_ps(scale);
            while i + 64 <= n {
                let c = _mm512_loadu_si512(codes.as_ptr().add(i).cast());
                let c = _mm512_permutexvar_epi8(order, c);
                let high = _mm512_movepi8_mask(c);
                let b: [__m512i; 4] = std::array::from_fn(|p| {
                    let lo = _mm512_permutex2var_epi8(t[p][0], c, t[p][1]);
                    let hi = _mm512_permutex2var_epi8(t[p][2], c, t[p][3]);
                    _mm512_mask_blend_epi8(high, lo, hi)
                });
                let w01l = _mm512_unpacklo_epi8(b[0], b[1]);
                let w01h = _mm512_unpackhi_epi8(b[0], b[1]);
                let w23l = _mm512_unpacklo_epi8(b[2], b[3]);
                let w23h = _mm512_unpackhi_epi8(b[2], b[3]);
                let words = [
                    _mm512_unpacklo_epi16(w01l, w23l),
                    _mm512_unpackhi_epi16(w01l, w23l),
                    _mm512_unpacklo_epi16(w01h, w23h),
                    _mm512_unpackhi_epi16(w01h, w23h),
                ];
                for (q, w) in words.into_iter().enumerate() {
                    let v = _mm512_mul_ps(_mm512_castsi512_ps(w), s);
                    _mm512_storeu_ps(out.as_mut_ptr().add(i + 16 * q), v);
                }
                i += 64;
            }
        }
        self.dequantize_any(&codes[i..n], scale, &mut out[i..n]);
    }

    #[inline(always)]
    fn dequantize_any<F: Float>(&self, codes: &[u8], scale: f32, out: &mut [F]) {
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = F::from_f64((self.map[c as usize] * scale) as f64);
        }
    }

    #[inline(always)]
    fn quantize_any(&self, xs: &[f32], codes: &mut [u8]) -> f32 {
        // The largest magnitude and whether any is NaN (then the block's
        // scale is NaN, as torch's max), per lane so that the compiler
        // vectorizes it (max is exact in any order).
        const L: usize = 16;
        let mut most = [0.0f32; L];
        let mut nan = [false; L];
        let mut chunks = xs.chunks_exact(L);
        for c in &mut chunks {
            for j in 0..L {
                let a = c[j].abs();
                most[j] = if a > most[j] { a } else { most[j] };
                nan[j] |= c[j].is_nan();
            }
        }
        for (j, &x) in chunks.remainder().iter().enumerate() {
            let a = x.abs();
            most[j] = if a > most[j] { a } else { most[j] };
            nan[j] |= x.is_nan();
        }
        let largest = most.iter().fold(0.0f32, |m, &a| if a > m { a } else { m });
        let absmax = if nan.iter().any(|&b| b) {
            f32::NAN
        } else {
            largest
        };
        let inv = 1.0 / absmax;
        for (c, &x) in codes.iter_mut().zip(xs) {
            *c = self.code((x * inv).clamp(-1.0, 1.0));
        }
        absmax
    }
}

/// A block's largest magnitude from `largest`, the unsigned maximum of the
/// magnitudes' bits of its vector part, and `rest`, its remaining elements
/// (the order of non-negative floats; above infinity's bits is a NaN, and
/// then the block's scale is NaN, as torch's max gives it).
#[inline(always)]
fn absmax_of(largest: u32, rest: &[f32]) -> f32 {
    let largest = rest
        .iter()
        .fold(largest, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    if largest > 0x7f80_0000 {
        f32::NAN
    } else {
        f32::from_bits(largest)
    }
}

/// The quantizer of the signed or the unsigned map, built on first use.
pub fn quantizer(signed: bool) -> &'static Quantizer {
    static SIGNED: OnceLock<Quantizer> = OnceLock::new();
    static UNSIGNED: OnceLock<Quantizer> = OnceLock::new();
    let (cell, bits) = if signed {
        (&SIGNED, &qmaps::SIGNED)
    } else {
        (&UNSIGNED, &qmaps::UNSIGNED)
    };
    cell.get_or_init(|| Quantizer::build(bits.map(f32::from_bits)))
}

/// `x` rounded to bfloat16, to nearest even (NaN stays a quiet NaN): the
/// one definition, [`optdsl_lang::Real::to_bf16`], which compiled kernels
/// also use when they convert in registers.
#[inline(always)]
pub fn bf16_nearest(x: f32) -> u16 {
    optdsl_lang::Real::to_bf16(x)
}

/// `x` rounded to bfloat16 stochastically with 16 random bits `r`
/// (torchao's `bf16_stochastic_round`).
#[inline(always)]
pub fn bf16_stochastic(x: f32, r: u16) -> u16 {
    let b = x.to_bits();
    if !x.is_finite() {
        return bf16_nearest(x);
    }
    (b.wrapping_add(u32::from(r)) >> 16) as u16
}

/// 16 random bits for element `index` at step `t` of a buffer seeded `seed`
/// (SplitMix64's finalizer over the three: counter-based, so the same on
/// any number of threads).
#[inline(always)]
pub fn round_bits(seed: u64, t: u64, index: usize) -> u16 {
    let mut z = seed
        ^ t.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (index as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_agrees_with_the_exhaustive_search() {
        for signed in [true, false] {
            let q = quantizer(signed);
            // Every code, the values around each midpoint, the special
            // values and a sweep.
            let probes = probes(q, 200_000);
            for &x in &probes {
                let x = x.clamp(-1.0, 1.0);
                assert_eq!(q.code(x), nearest_reference(&q.map, x), "{x:e}");
            }
        }
    }

    /// Values that probe every code's neighbourhood: each code, the 9
    /// floats around each midpoint between neighbouring codes, zeros,
    /// infinities, NaN, subnormals, and a sweep of `count` values in
    /// `[-1, 1]`.
    fn probes(q: &Quantizer, count: usize) -> Vec<f32> {
        let mut probes: Vec<f32> = Vec::new();
        for w in q.map.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            let mut x = mid;
            for _ in 0..4 {
                x = f32::from_bits(x.to_bits().wrapping_sub(1));
            }
            for _ in 0..9 {
                probes.push(x);
                x = if x >= 0.0 {
                    f32::from_bits(x.to_bits() + 1)
                } else {
                    f32::from_bits(x.to_bits() - 1)
                };
            }
            probes.push(w[0]);
            probes.push(w[1]);
        }
        let mut s = 0x1234_5678u64;
        for _ in 0..count {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            probes.push(((s >> 40) as f32 / (1u64 << 23) as f32) * 2.0 - 1.0);
        }
        probes.extend([
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            -1e-30,
            f32::from_bits(1),
            f32::from_bits(0x8000_0001),
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
            f32::MAX,
            f32::MIN,
        ]);
        probes
    }

    /// Every level's block quantization gives the portable one's codes and
    /// absmax bits, for blocks of probe values at several scales and of
    /// every length up to a block (so every tail length).
    #[test]
    fn every_level_quantizes_blocks_alike() {
        for signed in [true, false] {
            let q = quantizer(signed);
            let xs = probes(q, 40_000);
            let scales = [1.0f32, 0.5, 3.0e-3, 7.5e12, 1.0e-40, 0.0, f32::INFINITY];
            let mut lens = (1..=QBLOCK).cycle();
            for &scale in &scales {
                let mut at = 0;
                while at < xs.len() {
                    let len = lens.next().unwrap().min(xs.len() - at);
                    let block: Vec<f32> = xs[at..at + len].iter().map(|x| x * scale).collect();
                    let (mut want, mut got) = (vec![0u8; len], vec![0u8; len]);
                    let a = q.quantize_any(&block, &mut want);
                    let b = q.quantize(&block, &mut got);
                    assert_eq!((a.to_bits(), &want), (b.to_bits(), &got), "{block:?}");
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        for table in [false, true] {
                            // SAFETY: checked just above.
                            let c = unsafe { q.quantize_avx512(&block, &mut got, table) };
                            assert_eq!((a.to_bits(), &want), (c.to_bits(), &got), "{block:?}");
                        }
                    }
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2") {
                        // SAFETY: checked just above.
                        let c = unsafe { q.quantize_avx2(&block, &mut got) };
                        assert_eq!((a.to_bits(), &want), (c.to_bits(), &got), "{block:?}");
                    }
                    at += len;
                }
            }
        }
    }

    /// Every f32 of magnitude at most 1 (every value the clamp lets
    /// through, each sign's 0x3f80_0001 bit patterns), as an element of a
    /// block whose absmax is 1 (so that it is quantized as it is): the
    /// AVX-512 encodes (from the progressions, and through the table) and
    /// the AVX2 one give [`Quantizer::code`]'s codes. About twenty seconds
    /// in a release build: `cargo test --release -p optdsl-runtime --lib
    /// every_f32 -- --ignored`.
    #[test]
    #[ignore]
    fn every_f32_up_to_one_quantizes_as_the_table_says() {
        #[cfg(target_arch = "x86_64")]
        let levels = [
            std::arch::is_x86_feature_detected!("avx512f"),
            std::arch::is_x86_feature_detected!("avx512f"),
            std::arch::is_x86_feature_detected!("avx2"),
        ];
        #[cfg(target_arch = "x86_64")]
        for (level, have) in levels.into_iter().enumerate() {
            if !have {
                continue;
            }
            for signed in [true, false] {
                let q = quantizer(signed);
                let mut block = [0f32; QBLOCK];
                let mut codes = [0u8; QBLOCK];
                block[QBLOCK - 1] = 1.0;
                for sign in [0u32, 0x8000_0000] {
                    let mut bits = 0u32;
                    while bits <= 0x3f80_0000 {
                        let len = (0x3f80_0001 - bits).min(QBLOCK as u32 - 1) as usize;
                        for (k, x) in block[..len].iter_mut().enumerate() {
                            *x = f32::from_bits(sign | (bits + k as u32));
                        }
                        block[len] = 1.0;
                        // SAFETY: the level's feature is checked above.
                        let a = unsafe {
                            match level {
                                0 => q.quantize_avx512(&block[..=len], &mut codes, false),
                                1 => q.quantize_avx512(&block[..=len], &mut codes, true),
                                _ => q.quantize_avx2(&block[..=len], &mut codes),
                            }
                        };
                        assert_eq!(a, 1.0);
                        for (x, &c) in block[..=len].iter().zip(&codes) {
                            assert_eq!(c, q.code(*x), "{:#x}", x.to_bits());
                        }
                        bits += len as u32;
                    }
                }
            }
        }
    }

    /// The register decode gives the portable decode's bits: every code at
    /// several scales (NaN, infinities, zero, subnormal), every length up
    /// to 300 (so every tail), and all 256 codes in every position of a
    /// chunk of 64.
    #[test]
    fn every_level_decodes_alike() {
        for signed in [true, false] {
            let q = quantizer(signed);
            let mut codes: Vec<u8> = (0..=255u8).collect();
            codes.extend((0..=255u8).rev());
            codes.extend((0..256u32).map(|k| (k * 97 % 256) as u8));
            let scales = [
                1.0f32,
                0.37,
                -2.5,
                0.0,
                -0.0,
                f32::NAN,
                f32::INFINITY,
                f32::from_bits(3),
                3.0e38,
            ];
            for &scale in &scales {
                for len in (0..=300).chain([codes.len()]) {
                    let c = &codes[codes.len() - len..];
                    let mut want = vec![0f32; len];
                    q.dequantize_any(c, scale, &mut want);
                    let mut got = vec![0f32; len];
                    q.dequantize_f32(c, scale, &mut got);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&want), bits(&got), "scale {scale} len {len}");
                    #[cfg(target_arch = "x86_64")]
                    if q.vbmi {
                        got.fill(0.0);
                        // SAFETY: `vbmi` says the CPU has the features.
                        unsafe { q.dequantize_vbmi(c, scale, &mut got) };
                        assert_eq!(bits(&want), bits(&got), "scale {scale} len {len}");
                    }
                }
            }
        }
    }

    /// bfloat16 at the chosen level against the portable loop: decoding
    /// every one of the 65,536 patterns, and rounding f32 patterns `start`,
    /// `start + stride`, ... (with the edges: zeros, infinities, NaNs,
    /// subnormals, ties).
    fn bf16_levels_agree(start: u64, stride: u64) {
        let all: Vec<u16> = (0..=u16::MAX).collect();
        let (mut want, mut got) = (vec![0f32; all.len()], vec![0f32; all.len()]);
        decode_bf16_f32_any(&all, &mut want);
        decode_bf16_f32(&all, &mut got);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&want), bits(&got));
        let mut xs: Vec<f32> = [
            0u32,
            0x8000_0000,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0xffc0_0001,
            0x7f80_0001,
            1,
            0x8000_7fff,
            0x3f80_8000,
            0x3f81_8000,
            0x7f7f_ffff,
        ]
        .map(f32::from_bits)
        .to_vec();
        let mut b = start;
        while b < 1 << 32 {
            xs.push(f32::from_bits(b as u32));
            b += stride;
            if xs.len() == 1 << 16 || b >= 1 << 32 {
                let (mut want, mut got) = (vec![0u16; xs.len()], vec![0u16; xs.len()]);
                encode_bf16_nearest_any(&mut want, &xs);
                encode_bf16_nearest(&mut got, &xs);
                assert_eq!(want, got);
                xs.clear();
            }
        }
    }

    #[test]
    fn every_level_converts_bf16_alike() {
        bf16_levels_agree(12_345, 4_099);
    }

    /// [`bf16_levels_agree`] over every f32 pattern (seconds in a release
    /// build): `cargo test --release -p optdsl-runtime --lib every_f32 --
    /// --ignored`.
    #[test]
    #[ignore]
    fn every_f32_rounds_to_bf16_alike() {
        bf16_levels_agree(0, 1);
    }

    /// A deferred buffer from a checkpoint written before `stochastic` was
    /// a field loads, rounding to nearest as it did then.
    #[cfg(feature = "train")]
    #[test]
    fn a_deferred_buffer_saved_without_its_rounding_loads() {
        let old = r#"{"Deferred":{"len":3,"signed":null,"code":16256,"absmax":0.0}}"#;
        let p: Packed = serde_json::from_str(old).unwrap();
        let want = Packed::Deferred {
            len: 3,
            signed: None,
            code: 16256,
            absmax: 0.0,
            stochastic: None,
        };
        assert_eq!(p, want);
    }

    #[test]
    fn blocks_round_trip_within_a_code() {
        let q = quantizer(true);
        let xs: Vec<f32> = (0..QBLOCK).map(|i| (i as f32 - 100.0) * 0.013).collect();
        let mut codes = vec![0u8; QBLOCK];
        let absmax = q.quantize(&xs, &mut codes);
        assert_eq!(absmax, 155.0 * 0.013);
        let back: Vec<f32> = codes.iter().map(|&c| q.map[c as usize] * absmax).collect();
        let idx = xs.iter().position(|&x| x.abs() == absmax).unwrap();
        assert_eq!(back[idx], absmax);
        for (x, b) in xs.iter().zip(&back) {
            assert!((x - b).abs() <= 0.02 * absmax, "{x} {b}");
        }
        // An all-zero block: NaN scale, code 0, decoded as zero.
        let z = q.quantize(&[0.0; 4], &mut codes[..4]);
        assert_eq!((z, codes[0]), (0.0, 0));
        assert_eq!(q.map[0] * z, 0.0);
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_stochastically_in_between() {
        assert_eq!(bf16_nearest(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(bf16_nearest(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(bf16_nearest(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert!(f32::from_bits(u32::from(bf16_nearest(f32::NAN)) << 16).is_nan());
        let x = 1.0 + 2f32.powi(-9); // a quarter of the way up
        let ups = (0..4096)
            .filter(|&i| bf16_stochastic(x, round_bits(7, 1, i)) == 0x3f81)
            .count();
        assert!((800..1250).contains(&ups), "{ups}");
    }

    #[test]
    fn slices_fall_on_blocks() {
        let p = Packed::new(Storage::Q8 { signed: true }, 1000, 0.5).unwrap();
        assert!(p.slice(0..512).is_ok());
        assert!(p.slice(256..1000).is_ok());
        assert!(p.slice(100..512).is_err());
        let mut a = p.slice(0..512).unwrap();
        a.append(&p.slice(512..1000).unwrap()).unwrap();
        assert_eq!(a, p);
        assert_eq!(p.to_vec::<f32>()[999], 0.5);
    }
}
