//! Random draws in the language, defined once: `rand()` (uniform on
//! `[0, 1)`) and `randn()` (standard normal), one value per element, from
//! the counter-based generator Philox4x32-10 (Salmon, Moraes, Dror and Shaw,
//! "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator of
//! PyTorch's CUDA and `torch.randn` on accelerators, and of Random123).
//!
//! A draw is a pure function of where it is, never of the order elements are
//! visited in, so results are the same bits on any number of threads, at
//! every SIMD level, interpreted or compiled, and after a resumed
//! checkpoint:
//!
//! - each call in a rule's text is a *stream*, numbered in text order from 0
//!   (two calls are two independent draws; a `let` of one call is one draw);
//! - the stream's 64-bit Philox key is [`stream_key`]`(seed, tensor, stream)`:
//!   Philox4x32-10 of the counter `(tensor_lo, tensor_hi, stream,
//!   0x5eed_d1ce)` under the key `(seed_lo, seed_hi)`, the first two words
//!   (the run's seed, the tensor's number in its optimizer);
//! - element `index` (its index in the whole tensor) at step `t` (from 1)
//!   draws the four words [`words`]`(key, t, index)`: Philox4x32-10 of the
//!   counter `(index_lo, index_hi, t_lo, t_hi)` under the stream's key.
//!
//! From the four words `w0..w3`:
//!
//! - `rand()` in f32: `(w0 >> 8) · 2^-24` (24 bits); in f64:
//!   `U53(w0, w1) = ((w0 << 21) | (w1 >> 11)) · 2^-53` (53 bits). Both are
//!   exact in their type and lie in `[0, 1)`.
//! - `randn()`: Box–Muller's cosine branch, in f64 whatever the element type,
//!   then rounded to it: `u1 = 1 - U53(w0, w1)` (in `(0, 1]`, so the
//!   logarithm is finite), `u2 = U53(w2, w3)`,
//!   `z = sqrt(-2 ln u1) · cos(2π u2)` (Rust's `f64::ln` and `f64::cos`:
//!   the platform's libm, the same call at every SIMD level). `|z|` is at
//!   most `sqrt(2 · 53 ln 2) ≈ 8.57`. An f32 run draws the f64 run's values
//!   rounded to f32.

use crate::real::Real;

/// A random draw per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Draw {
    /// `rand()`: uniform on `[0, 1)`.
    Uniform,
    /// `randn()`: standard normal (mean 0, variance 1).
    Normal,
}

/// A stream's Philox key (two 32-bit words).
pub type Key = [u32; 2];

/// Philox4x32's multipliers and key increments (Random123's `PHILOX_M4x32_0`,
/// `PHILOX_M4x32_1`, `PHILOX_W32_0`, `PHILOX_W32_1`).
const M0: u32 = 0xd251_1f53;
const M1: u32 = 0xcd9e_8d57;
const W0: u32 = 0x9e37_79b9;
const W1: u32 = 0xbb67_ae85;

/// The last counter word of a stream key's derivation (a tag that keeps
/// those counters apart from nothing else in particular; documented so the
/// keys can be rederived).
const STREAM_TAG: u32 = 0x5eed_d1ce;

/// Philox4x32 with 10 rounds: four 32-bit words of output from a 128-bit
/// counter and a 64-bit key (Random123's `philox4x32_R(10, ctr, key)`).
///
/// ```
/// use optdsl_lang::random::philox4x32_10;
/// // Random123's known-answer test (kat_vectors).
/// assert_eq!(
///     philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
///     [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
/// );
/// ```
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: Key) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    [c0, c1, c2, c3]
}

/// The key of stream `stream` (a draw's number in its rule's text) of tensor
/// `tensor` in a run seeded `seed`.
#[inline]
pub fn stream_key(seed: u64, tensor: u64, stream: u32) -> Key {
    let out = philox4x32_10(
        [tensor as u32, (tensor >> 32) as u32, stream, STREAM_TAG],
        [seed as u32, (seed >> 32) as u32],
    );
    [out[0], out[1]]
}

/// The four random words of element `index` at step `step` of a stream.
#[inline(always)]
pub fn words(key: Key, step: u64, index: u64) -> [u32; 4] {
    philox4x32_10(
        [
            index as u32,
            (index >> 32) as u32,
            step as u32,
            (step >> 32) as u32,
        ],
        key,
    )
}

/// `((a << 21) | (b >> 11)) · 2^-53`: 53 random bits as an f64 in `[0, 1)`.
#[inline(always)]
fn u53(a: u32, b: u32) -> f64 {
    let bits = (u64::from(a) << 21) | u64::from(b >> 11);
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

impl Draw {
    /// Its name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Draw::Uniform => "rand",
            Draw::Normal => "randn",
        }
    }

    /// The value drawn from four random words, in the element type `R`.
    #[inline(always)]
    pub fn from_words<R: Real>(self, w: [u32; 4]) -> R {
        match self {
            Draw::Uniform if R::DIGITS <= 24 => {
                R::from_f64(f64::from(w[0] >> 8) * (1.0 / (1u32 << 24) as f64))
            }
            Draw::Uniform => R::from_f64(u53(w[0], w[1])),
            Draw::Normal => {
                let u1 = 1.0 - u53(w[0], w[1]);
                let u2 = u53(w[2], w[3]);
                R::from_f64((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
            }
        }
    }

    /// The value element `index` draws at step `step` from the stream keyed
    /// `key` ([`stream_key`]).
    #[inline(always)]
    pub fn sample<R: Real>(self, key: Key, step: u64, index: u64) -> R {
        self.from_words(words(key, step, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123s_known_answers() {
        // Random123 1.14, tests/kat_vectors, "philox4x32 10" lines.
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniforms_use_24_and_53_bits_and_stay_below_one() {
        let top = [u32::MAX; 4];
        let u32top: f32 = Draw::Uniform.from_words(top);
        let u64top: f64 = Draw::Uniform.from_words(top);
        assert_eq!(u32top, 1.0 - 2f32.powi(-24));
        assert_eq!(u64top, 1.0 - 2f64.powi(-53));
        assert_eq!(Draw::Uniform.from_words::<f64>([0; 4]), 0.0);
        // f32's uniform is f64's truncated to 24 bits.
        let w = [0x89ab_cdef, 0x0123_4567, 7, 9];
        let (a, b): (f32, f64) = (Draw::Uniform.from_words(w), Draw::Uniform.from_words(w));
        assert_eq!(f64::from(a), (b * 2f64.powi(24)).floor() * 2f64.powi(-24));
    }

    #[test]
    fn normals_are_finite_at_the_ends_and_f32_rounds_f64() {
        // u1 = 1 (all-zero words) gives 0; u1 = 2^-53 the largest magnitude.
        assert_eq!(Draw::Normal.from_words::<f64>([0; 4]).abs(), 0.0);
        let most: f64 = Draw::Normal.from_words([u32::MAX, u32::MAX, 0, 0]);
        assert!(
            (most - (2.0 * 53.0 * 2f64.ln()).sqrt()).abs() < 1e-12,
            "{most}"
        );
        let w = words(stream_key(1, 2, 3), 4, 5);
        let (a, b): (f32, f64) = (Draw::Normal.from_words(w), Draw::Normal.from_words(w));
        assert_eq!(a, b as f32);
    }

    #[test]
    fn keys_differ_by_seed_tensor_and_stream() {
        let k = stream_key(0, 0, 0);
        assert_ne!(k, stream_key(1, 0, 0));
        assert_ne!(k, stream_key(0, 1, 0));
        assert_ne!(k, stream_key(0, 0, 1));
        assert_ne!(words(k, 1, 0), words(k, 2, 0));
        assert_ne!(words(k, 1, 0), words(k, 1, 1 << 32));
    }
}
