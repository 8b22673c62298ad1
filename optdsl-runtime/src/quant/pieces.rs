//! The 8-bit encode without table loads. bitsandbytes' dynamic maps are a
//! few arithmetic progressions of codes (one per power of ten, linearly
//! spaced inside it), so a scaled value's code follows from its binade (two
//! small tables in registers say which progression it falls in), one
//! comparison and one fused multiply-add, `t = |s| * scale + offset`, whose
//! integer part is the code (`scale` is `±1 / step`, and `offset` folds in
//! the progression's first code). The values whose `t` lies too close to an
//! integer for that arithmetic to decide exactly (a boundary between two
//! codes; a few values in a million) are sent to the table
//! ([`super::Quantizer::code`]), so every code is the table's. The margin
//! that makes this exact is derived from the map when it is built: the
//! exact boundaries between neighbouring codes are found by bisection with
//! the exhaustive search, and `t` is evaluated on both sides of each in the
//! encode's own f32 arithmetic.
//!
//! Why by hand: no crate quantizes to a non-uniform map. This replaces a
//! 16-lane gather per 16 values from the table; on AMD's Zen 4 it is 1.3 to
//! 1.7 times as fast (`cargo bench --bench step -- encode_8bit`).

use super::nearest_reference;

/// Binades told apart by the encode: `e` in `1..31` holds the magnitudes
/// in `[2^(e - 31), 2^(e - 30))`, `0` everything below `2^-30`, `31` the
/// magnitudes from 1 (a scaled value passes 1 only by rounding, or is
/// infinite, whose exponent's low 5 bits are 31 too). One 32-entry table
/// of two 512-bit registers per field.
const BINADES: usize = 32;

/// The most progressions a map may be cut into: one 512-bit register of
/// f32 per sign and field.
const MAX_PIECES: usize = 16;

/// The biased exponent below binade 1's: `e = max(exponent - 96, 0)`.
const EXPONENT_FLOOR: u32 = 96;

/// A map cut into arithmetic progressions of codes, with what the encode
/// needs to find a value's code without a table load. The per-progression
/// fields hold 32 entries: `q` for positive values, `16 + q` for negative
/// ones (whose codes run downwards from the map's zero).
#[derive(Debug, Clone)]
pub(super) struct Pieces {
    /// Per binade, the progression that its least magnitude falls in.
    first: [i32; BINADES],
    /// Per binade, the magnitude above which the next progression starts
    /// (infinity where none starts inside the binade).
    split: [f32; BINADES],
    /// Per progression and sign, the greatest magnitude looked at: its last
    /// code (a value past it, up to where the next progression starts,
    /// takes that code).
    cap: [f32; 2 * MAX_PIECES],
    /// Per progression and sign, `±1 / step` (0 for one code).
    scale: [f32; 2 * MAX_PIECES],
    /// Per progression and sign, what makes `t = a * scale + offset` the
    /// code plus a fraction: `zero + base + 0.5 - start / step` for
    /// positive values, `zero - base + 0.5 + start / step` for negative
    /// ones.
    offset: [f32; 2 * MAX_PIECES],
    /// A value whose `t` lies closer than this to an integer is decided by
    /// the table.
    margin: f32,
    /// Whether negative values have codes (the negated positive ones below
    /// the map's zero); else they all take the code 0.
    signed: bool,
}

/// The binade of a non-negative `a` (or NaN), as the encode computes it:
/// the biased exponent less [`EXPONENT_FLOOR`], at least 0, its low 5 bits.
fn binade(a: f32) -> usize {
    ((a.to_bits() >> 23).saturating_sub(EXPONENT_FLOOR) & 31) as usize
}

/// The next f32 above a non-negative `a`.
fn next_up(a: f32) -> f32 {
    f32::from_bits(a.to_bits() + 1)
}

impl Pieces {
    /// The progressions of `map` (ascending), or `None` when it is not made
    /// of at most [`MAX_PIECES`] of them, one boundary at most per binade,
    /// that the arithmetic decides with a margin under 1/4.
    pub(super) fn build(map: &[f32; 256]) -> Option<Pieces> {
        if !map.windows(2).all(|w| w[0] < w[1]) {
            return None;
        }
        let zero = map.iter().position(|&c| c == 0.0)?;
        let pos = &map[zero..];
        let signed = zero > 0;
        if signed && (zero >= pos.len() || (1..=zero).any(|r| map[zero - r] != -pos[r])) {
            return None;
        }
        // A magnitude's code by the exhaustive search, for a positive or a
        // negative value, and its place among `pos`.
        let code = |a: f32, negative: bool| -> i64 {
            i64::from(nearest_reference(map, if negative { -a } else { a }))
        };
        let place = |a: f32, negative: bool| -> i64 {
            if negative {
                zero as i64 - code(a, true)
            } else {
                code(a, false) - zero as i64
            }
        };
        // The largest magnitude in `[pos[k - 1], pos[k]]` whose place is
        // below `k`: codes are monotone in the value there, so bisection.
        let boundary = |k: usize, negative: bool| -> Option<f32> {
            let (lo, hi) = (pos[k - 1], pos[k]);
            if place(lo, negative) != k as i64 - 1 || place(hi, negative) != k as i64 {
                return None;
            }
            let (mut lo, mut hi) = (lo.to_bits(), hi.to_bits());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if place(f32::from_bits(mid), negative) < k as i64 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            Some(f32::from_bits(lo))
        };

        // The fewest progressions covering `pos`: runs of codes whose
        // neighbours' gaps agree to 1e-3 of the first gap, and (so that `t`
        // stays above the first code's integer down to the boundary below
        // it) with a gap below the run under 1.9 of its own.
        let n = pos.len();
        let arithmetic = |i: usize, j: usize| {
            if j - i == 1 {
                return true;
            }
            let gap = |k: usize| f64::from(pos[k + 1]) - f64::from(pos[k]);
            let step = gap(i);
            (i == 0 || gap(i - 1) < 1.9 * step)
                && (i + 1..j - 1).all(|k| (gap(k) - step).abs() <= 1e-3 * step)
        };
        let mut best = vec![(usize::MAX, 0usize); n + 1];
        best[0] = (0, 0);
        for j in 1..=n {
            for i in 0..j {
                if best[i].0 != usize::MAX && best[i].0 + 1 < best[j].0 && arithmetic(i, j) {
                    best[j] = (best[i].0 + 1, i);
                }
            }
        }
        let mut starts = Vec::new();
        let mut j = n;
        while j > 0 {
            j = best[j].1;
            starts.push(j);
        }
        starts.reverse();
        if starts.len() > MAX_PIECES {
            return None;
        }
        let end = |q: usize| starts.get(q + 1).copied().unwrap_or(n);

        let mut pieces = Pieces {
            first: [0; BINADES],
            split: [f32::INFINITY; BINADES],
            cap: [1.0; 2 * MAX_PIECES],
            scale: [0.0; 2 * MAX_PIECES],
            offset: [0.5; 2 * MAX_PIECES],
            margin: 0.0,
            signed,
        };
        let z = zero as f64;
        for (q, &i) in starts.iter().enumerate() {
            let j = end(q);
            // `1 / step` and `start / step`; 0 for one code.
            let (scale, shift) = if j - i > 1 {
                let step = (f64::from(pos[j - 1]) - f64::from(pos[i])) / (j - 1 - i) as f64;
                (1.0 / step, f64::from(pos[i]) / step)
            } else {
                (0.0, 0.0)
            };
            let i_f = i as f64;
            pieces.cap[q] = pos[j - 1];
            pieces.scale[q] = scale as f32;
            pieces.offset[q] = (z + i_f + 0.5 - shift) as f32;
            // Negative values: codes `zero - place`, down to 0 (no place
            // beyond `zero`): `ceil(zero - base - t0) = trunc(zero - base +
            // 1 - t0)` off the integers.
            let m = MAX_PIECES + q;
            if i <= zero {
                pieces.cap[m] = pos[(j - 1).min(zero)];
                pieces.scale[m] = -pieces.scale[q];
                pieces.offset[m] = (z - i_f + 0.5 + shift) as f32;
            } else {
                // Past every negative code: all take code 0.
                pieces.offset[m] = 0.5;
            }
        }

        // Where each progression after the first starts: the positive
        // boundary below its first code. A negative value takes the upper
        // code at a tie, so its boundary may lie one f32 lower; the encode
        // sends a magnitude equal to a split of a signed map to the table.
        let mut splits = Vec::new();
        for &k in &starts[1..] {
            let at = boundary(k, false)?;
            if signed && k <= zero {
                let below = boundary(k, true)?;
                if below != at && next_up(below) != at {
                    return None;
                }
            }
            let e = binade(at);
            if pieces.split[e] != f32::INFINITY {
                return None;
            }
            pieces.split[e] = at;
            splits.push(at);
        }
        for (e, first) in pieces.first.iter_mut().enumerate() {
            let least = if e == 0 {
                0.0
            } else {
                f32::from_bits((e as u32 + EXPONENT_FLOOR) << 23)
            };
            *first = splits.iter().filter(|&&s| s < least).count() as i32;
        }

        // Each progression's least and greatest magnitude must give its
        // first and last code, and each boundary inside it a margin on both
        // of its sides, for either sign.
        let mut margin = 0.0f32;
        for (q, &i) in starts.iter().enumerate() {
            let j = end(q);
            for negative in [false, true] {
                if negative && !(signed && i <= zero) {
                    continue;
                }
                let slot = q + if negative { MAX_PIECES } else { 0 };
                let t = |a: f32| pieces.t(slot, a);
                let lo = if q == 0 { 0.0 } else { next_up(splits[q - 1]) };
                let hi = pieces.cap[slot];
                // (Values capped at the last code must not be left to the
                // table: its `t` is a half from the integers.)
                let (tl, th) = (t(lo), t(hi));
                if tl.trunc() as i64 != code(lo, negative)
                    || th.trunc() as i64 != code(hi, negative)
                    || (th - th.round()).abs() < 0.25
                {
                    return None;
                }
                for k in i + 1..j {
                    if negative && k > zero {
                        continue;
                    }
                    let at = boundary(k, negative)?;
                    let (below, above) = (code(at, negative), code(next_up(at), negative));
                    let (tb, ta) = (t(at), t(next_up(at)));
                    // The integer `t` crosses between the two codes.
                    let m = below.max(above) as f32;
                    margin = margin.max(if above > below {
                        (tb - m).max(m - ta)
                    } else {
                        (m - tb).max(ta - m)
                    });
                }
            }
        }
        pieces.margin = 2.0 * margin + 1e-6;
        (pieces.margin < 0.25).then_some(pieces)
    }

    /// `t` of magnitude `a` in slot `q` (progression and sign): `a` capped
    /// at the progression's last code (NaN stays NaN), times `scale`, plus
    /// `offset`, in one rounding.
    #[inline(always)]
    fn t(&self, q: usize, a: f32) -> f32 {
        let a = if a > self.cap[q] { self.cap[q] } else { a };
        a.mul_add(self.scale[q], self.offset[q])
    }

    /// The code of `s` (a scaled value) as the vector encode finds it, one
    /// lane at a time; `None` where the encode asks the table.
    #[cfg(test)]
    fn code(&self, s: f32) -> Option<u8> {
        let negative = s.is_sign_negative();
        if negative && !self.signed {
            return Some(0);
        }
        let a = s.abs();
        let e = binade(a);
        let split = self.split[e];
        let q = (self.first[e] + i32::from(a > split)) as usize % MAX_PIECES;
        let t = self.t(q + if negative { MAX_PIECES } else { 0 }, a);
        // Near, or NaN (as the encode's unordered comparison).
        let off = (t - t.round_ties_even()).abs();
        let near = off.is_nan() || off < self.margin;
        if near || (self.signed && a == split) {
            return None;
        }
        Some(t as i32 as u8)
    }

    /// `codes[k]` for each `xs[k] * inv` (clamped to `[-1, 1]`), 64 values
    /// at a time, and the rest 16 at a time and one by one, as
    /// `Pieces::code` (the tests' model of it) finds them; `table` gives the
    /// codes it leaves open.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, DQ and BW.
    // AVX-512 intrinsics are stable from Rust 1.89; `#[target_feature(enable
    // = "avx512f")]` is too, and this crate has needed it since its first
    // AVX-512 copies (rustc 1.80.1 rejects them: E0658), whatever
    // `rust-version` says.
    #[allow(clippy::incompatible_msrv)]
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw")]
    pub(super) unsafe fn encode(
        &self,
        xs: &[f32],
        codes: &mut [u8],
        inv: f32,
        table: impl Fn(f32) -> u8,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            if self.signed {
                self.encode_as::<true>(xs, codes, inv, table)
            } else {
                self.encode_as::<false>(xs, codes, inv, table)
            }
        }
    }

    /// [`Pieces::encode`] for a signed map or not.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, DQ and BW.
    #[allow(clippy::incompatible_msrv)]
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512bw")]
    unsafe fn encode_as<const SIGNED: bool>(
        &self,
        xs: &[f32],
        codes: &mut [u8],
        inv: f32,
        table: impl Fn(f32) -> u8,
    ) {
        use std::arch::x86_64::*;
        let n = xs.len().min(codes.len());
        let x = xs.as_ptr();
        let out = codes.as_mut_ptr();
        // SAFETY: the CPU features are the caller's contract; loads read
        // `xs[i..i + 16]` and stores write `codes[i..i + 64]` or
        // `codes[i..i + 16]` within `n`; the tables are arrays of 32.
        unsafe {
            let vinv = _mm512_set1_ps(inv);
            let magnitude = _mm512_set1_epi32(0x7fff_ffff);
            let one = _mm512_set1_epi32(1);
            let sign_slots = _mm512_set1_epi32(MAX_PIECES as i32);
            let floor = _mm512_set1_epi32(EXPONENT_FLOOR as i32);
            let margin = _mm512_set1_ps(self.margin);
            let two = |t: &[i32; 32]| {
                [
                    _mm512_loadu_si512(t.as_ptr().cast()),
                    _mm512_loadu_si512(t.as_ptr().add(16).cast()),
                ]
            };
            let two_ps = |t: &[f32; 32]| {
                [
                    _mm512_loadu_ps(t.as_ptr()),
                    _mm512_loadu_ps(t.as_ptr().add(16)),
                ]
            };
            let first = two(&self.first);
            let split = two_ps(&self.split);
            let cap = two_ps(&self.cap);
            let scale = two_ps(&self.scale);
            let offset = two_ps(&self.offset);
            // 16 values' codes (as i32) and the lanes left to the table.
            let lanes = |at: usize| -> (__m512i, u16) {
                let s = _mm512_mul_ps(_mm512_loadu_ps(x.add(at)), vinv);
                let negative = _mm512_movepi32_mask(_mm512_castps_si512(s));
                let a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(s), magnitude));
                let e = _mm512_subs_epu16(_mm512_srli_epi32::<23>(_mm512_castps_si512(a)), floor);
                let from = _mm512_permutex2var_epi32(first[0], e, first[1]);
                let at_split = _mm512_permutex2var_ps(split[0], e, split[1]);
                let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, at_split);
                // Only negative values can fall on the other side of a
                // split at a tie (`build`), but the comparison costs less
                // than telling them apart.
                let tie = if SIGNED {
                    _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, at_split)
                } else {
                    0
                };
                let q = _mm512_mask_add_epi32(from, above, from, one);
                let q = if SIGNED {
                    _mm512_mask_add_epi32(q, negative, q, sign_slots)
                } else {
                    q
                };
                // The cap first: a NaN magnitude stays NaN.
                let a = _mm512_min_ps(_mm512_permutex2var_ps(cap[0], q, cap[1]), a);
                let t = _mm512_fmadd_ps(
                    a,
                    _mm512_permutex2var_ps(scale[0], q, scale[1]),
                    _mm512_permutex2var_ps(offset[0], q, offset[1]),
                );
                let c = _mm512_cvttps_epi32(t);
                // t - round(t), NaN for NaN: near unless at least the margin.
                let off = _mm512_reduce_ps::<0x08>(t);
                let off = _mm512_and_si512(_mm512_castps_si512(off), magnitude);
                let near = _mm512_cmp_ps_mask::<_CMP_NGE_UQ>(_mm512_castsi512_ps(off), margin);
                if SIGNED {
                    (c, near | tie)
                } else {
                    (_mm512_maskz_mov_epi32(!negative, c), near & !negative)
                }
            };
            // Element `k`'s code from the table.
            let by_table = |k: usize| {
                *out.add(k) = table((*x.add(k) * inv).clamp(-1.0, 1.0));
            };
            let fix = |at: usize, open: u16| {
                let mut open = open;
                while open != 0 {
                    by_table(at + open.trailing_zeros() as usize);
                    open &= open - 1;
                }
            };
            // Dword `4l + v` of the packed bytes holds lane group `l` of
            // vector `v`; this puts vector `v`'s 16 bytes at dwords `4v..`.
            let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            let mut i = 0;
            while i + 64 <= n {
                let (c0, o0) = lanes(i);
                let (c1, o1) = lanes(i + 16);
                let (c2, o2) = lanes(i + 32);
                let (c3, o3) = lanes(i + 48);
                let w01 = _mm512_packus_epi32(c0, c1);
                let w23 = _mm512_packus_epi32(c2, c3);
                let b = _mm512_packus_epi16(w01, w23);
                _mm512_storeu_si512(out.add(i).cast(), _mm512_permutexvar_epi32(order, b));
                if (o0 | o1 | o2 | o3) != 0 {
                    fix(i, o0);
                    fix(i + 16, o1);
                    fix(i + 32, o2);
                    fix(i + 48, o3);
                }
                i += 64;
            }
            while i + 16 <= n {
                let (c, open) = lanes(i);
                _mm_storeu_si128(out.add(i).cast(), _mm512_cvtepi32_epi8(c));
                fix(i, open);
                i += 16;
            }
            (i..n).for_each(by_table);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::quantizer;
    use super::*;

    /// Both of bitsandbytes' maps are cut into progressions, with a margin
    /// that leaves few values to the table (8.6e-6 and 1.6e-5 of a code
    /// when this was written).
    #[test]
    fn both_maps_are_few_progressions() {
        for (signed, pieces) in [(true, 8), (false, 9)] {
            let q = quantizer(signed);
            let p = Pieces::build(&q.map).expect("the map's progressions");
            let count = p.first.iter().max().map_or(0, |&m| m + 1)
                + i32::from(p.split[BINADES - 1] != f32::INFINITY);
            assert_eq!(count, pieces, "signed {signed}: {p:?}");
            assert!(p.margin < 1e-3, "signed {signed}: margin {}", p.margin);
        }
    }

    /// A map that is not a few progressions gets none (the encode then
    /// gathers from the table).
    #[test]
    fn a_map_of_many_progressions_gets_none() {
        let mut map = [0f32; 256];
        for (k, c) in map.iter_mut().enumerate() {
            *c = (k as f32 / 255.0).powi(3);
        }
        assert!(Pieces::build(&map).is_none());
    }

    /// Checks the progressions' code of `s` against the table's; whether
    /// it was left to the table.
    fn left_open(p: &Pieces, q: &super::super::Quantizer, s: f32) -> bool {
        match p.code(s) {
            Some(c) => {
                assert_eq!(c, q.code(s.clamp(-1.0, 1.0)), "{:#x}", s.to_bits());
                false
            }
            None => true,
        }
    }

    /// The f32 within 4,096 of every boundary between neighbouring codes
    /// (either sign), every 61st f32 of magnitude at most 1, infinities and
    /// NaN: the progressions give the table's code or leave it to the
    /// table, for under 1 value in 100,000 of the sweep (89 and 90 of its
    /// 34.9 million when this was written).
    #[test]
    fn values_near_every_boundary_take_the_tables_code() {
        for signed in [true, false] {
            let q = quantizer(signed);
            let p = Pieces::build(&q.map).expect("the map's progressions");
            for w in q.map.windows(2) {
                let mid = (w[0] + w[1]) / 2.0;
                let bits = mid.to_bits();
                for d in 0..8192u32 {
                    let s = f32::from_bits(
                        (bits & 0x8000_0000) | ((bits & 0x7fff_ffff) + d).wrapping_sub(4096),
                    );
                    left_open(&p, q, s);
                }
            }
            let (mut open, mut seen) = (0u64, 0u64);
            for sign in [0u32, 0x8000_0000] {
                for bits in (0..=0x3f80_0000u32).step_by(61) {
                    seen += 1;
                    open += u64::from(left_open(&p, q, f32::from_bits(sign | bits)));
                }
            }
            for s in [
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                -f32::NAN,
                1.5,
                -1.5,
            ] {
                left_open(&p, q, s);
            }
            assert!(
                open * 1000 < seen,
                "signed {signed}: {open} of {seen} left to the table"
            );
        }
    }

    /// Every f32 of magnitude at most 1 (each sign's 0x3f80_0001 bit
    /// patterns): the progressions give the table's code or leave it to the
    /// table. About twenty seconds in a release build: `cargo test
    /// --release -p optdsl-runtime --lib every_f32_up_to_one_takes -- --ignored`.
    #[test]
    #[ignore]
    fn every_f32_up_to_one_takes_the_tables_code() {
        for signed in [true, false] {
            let q = quantizer(signed);
            let p = Pieces::build(&q.map).expect("the map's progressions");
            for sign in [0u32, 0x8000_0000] {
                for bits in 0..=0x3f80_0000u32 {
                    left_open(&p, q, f32::from_bits(sign | bits));
                }
            }
        }
    }
}
