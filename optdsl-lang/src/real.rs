//! `Real`: the number types rules compute in (f32, f64), with numpy's and
//! PyTorch's semantics where Rust's std differs. The one definition of what
//! every operator and function of the language computes: generated code
//! calls these methods, the interpreters call them through
//! [`crate::functions`], per-step scalars use them in f64.

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point type a rule computes in.
///
/// [`Real::sign`] of zero is zero; [`Real::minimum`] and [`Real::maximum`]
/// propagate NaN; no operation fuses a multiply and an add, so every SIMD
/// level and the interpreter give the same bits.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Bits of precision (the significand's, with the implicit one): 24 for
    /// f32, 53 for f64 (how many random bits a uniform draw takes).
    const DIGITS: u32;
    /// Converts from f64, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to f64 exactly.
    fn to_f64(self) -> f64;
    /// The bfloat16 with bits `b` (exact: widened to f32, then to `Self`).
    #[inline(always)]
    fn from_bf16(b: u16) -> Self {
        Self::from_f64(f32::from_bits(u32::from(b) << 16) as f64)
    }
    /// Rounded to f32, then to bfloat16 to nearest even (a NaN keeps its
    /// upper bits, made quiet): how compressed state stores a value.
    #[inline(always)]
    fn to_bf16(self) -> u16 {
        let x = self.to_f64() as f32;
        let b = x.to_bits();
        // Without a branch, so that loops over it vectorize.
        let quiet = (b >> 16) | 0x40;
        let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
        (if x.is_nan() { quiet } else { rounded }) as u16
    }
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// self^p.
    fn powf(self, p: Self) -> Self;
    /// `self * a + b` rounded once (IEEE fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// numpy's sign: -1, 0 or 1 (and NaN for NaN); `sign(0) = 0`.
    #[inline(always)]
    fn sign(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else if self < Self::ZERO {
            -Self::ONE
        } else {
            self
        }
    }
    /// numpy's `minimum`: the smaller, NaN if either is NaN.
    #[inline(always)]
    fn minimum(self, other: Self) -> Self {
        if self.is_nan() || self < other {
            self
        } else {
            other
        }
    }
    /// numpy's `maximum`: the larger, NaN if either is NaN.
    #[inline(always)]
    fn maximum(self, other: Self) -> Self {
        if self.is_nan() || self > other {
            self
        } else {
            other
        }
    }
    /// `min(max(self, lo), hi)` with NaN propagated.
    #[inline(always)]
    fn clip(self, lo: Self, hi: Self) -> Self {
        self.maximum(lo).minimum(hi)
    }
    /// Whether this is NaN.
    #[inline(always)]
    #[allow(clippy::eq_op)]
    fn is_nan(self) -> bool {
        self != self
    }
}

macro_rules! impl_real {
    ($t:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DIGITS: u32 = $t::MANTISSA_DIGITS;
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_of_zero_is_zero_and_nan_stays_nan() {
        assert_eq!(Real::sign(0.0f64), 0.0);
        assert_eq!(Real::sign(-3.0f32), -1.0);
        assert!(Real::sign(f64::NAN).is_nan());
    }

    #[test]
    fn minimum_and_maximum_propagate_nan() {
        assert!(Real::minimum(f64::NAN, 1.0).is_nan());
        assert!(Real::minimum(1.0, f64::NAN).is_nan());
        assert!(Real::maximum(2.0f32, f32::NAN).is_nan());
        assert_eq!(Real::clip(5.0f64, 0.0, 1.0), 1.0);
    }
}
