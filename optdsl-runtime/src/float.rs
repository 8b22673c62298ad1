//! `Float`: the element types an update rule runs in (f32 and f64), with
//! numpy/PyTorch semantics where Rust's std differs.

use serde::{de::DeserializeOwned, Serialize};
use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// The element type of parameters, gradients and state: `f32` or `f64`.
///
/// The operations follow numpy and PyTorch where Rust's std differs:
/// [`Float::sign`] of zero is zero, [`Float::minimum`] and [`Float::maximum`]
/// propagate NaN.
pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + Display
    + Default
    + PartialOrd
    + PartialEq
    + Serialize
    + DeserializeOwned
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
    /// The type's name, `"f32"` or `"f64"`.
    const DTYPE: &'static str;
    /// Converts from f64, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to f64 exactly.
    fn to_f64(self) -> f64;
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
    /// Whether this is neither NaN nor infinite.
    fn is_finite(self) -> bool;
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = stringify!($t);
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
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

/// Scalar (per-step) arithmetic in f64 with the same semantics as [`Float`].
#[doc(hidden)]
pub mod scalar {
    use super::Float;
    /// numpy's sign in f64.
    #[inline]
    pub fn sign(x: f64) -> f64 {
        Float::sign(x)
    }
    /// NaN-propagating minimum in f64.
    #[inline]
    pub fn minimum(a: f64, b: f64) -> f64 {
        Float::minimum(a, b)
    }
    /// NaN-propagating maximum in f64.
    #[inline]
    pub fn maximum(a: f64, b: f64) -> f64 {
        Float::maximum(a, b)
    }
    /// NaN-propagating clamp in f64.
    #[inline]
    pub fn clip(x: f64, lo: f64, hi: f64) -> f64 {
        Float::clip(x, lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_of_zero_is_zero_and_nan_stays_nan() {
        assert_eq!(Float::sign(0.0f32), 0.0);
        assert_eq!(Float::sign(-3.0f64), -1.0);
        assert_eq!(Float::sign(2.5f32), 1.0);
        assert!(Float::sign(f64::NAN).is_nan());
    }

    #[test]
    fn minimum_and_maximum_propagate_nan() {
        assert!(Float::minimum(f64::NAN, 1.0).is_nan());
        assert!(Float::minimum(1.0, f64::NAN).is_nan());
        assert!(Float::maximum(f32::NAN, 1.0).is_nan());
        assert!(Float::maximum(1.0f32, f32::NAN).is_nan());
        assert_eq!(Float::maximum(1.0, 2.0), 2.0);
        assert_eq!(Float::clip(5.0, 0.0, 1.0), 1.0);
    }
}
