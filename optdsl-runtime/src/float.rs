//! `Float`: the element types an update rule runs in (f32 and f64). What
//! each operation computes is defined once, by `optdsl_lang::Real` (numpy's
//! and PyTorch's semantics where Rust's std differs); `Float` adds what the
//! runtime needs beside it (serialization, printing, the type's name).

use serde::{de::DeserializeOwned, Serialize};
use std::fmt::{Debug, Display};

pub use optdsl_lang::Real;

/// The element type of parameters, gradients and state: `f32` or `f64`.
///
/// The operations come from [`Real`]: `sign` of zero is zero, `minimum` and
/// `maximum` propagate NaN.
pub trait Float: Real + Debug + Display + Default + Serialize + DeserializeOwned {
    /// The type's name, `"f32"` or `"f64"`.
    const DTYPE: &'static str;
    /// Whether this is neither NaN nor infinite.
    fn is_finite(self) -> bool;
    /// `xs` as f32 elements when `Self` is f32, else `None` (lets the
    /// compressed-state conversions skip a widening copy).
    #[inline(always)]
    fn as_f32s(xs: &[Self]) -> Option<&[f32]> {
        let _ = xs;
        None
    }
    /// [`Float::as_f32s`] for a mutable slice.
    #[inline(always)]
    fn as_f32s_mut(xs: &mut [Self]) -> Option<&mut [f32]> {
        let _ = xs;
        None
    }
    /// `xs` as f64 elements when `Self` is f64, else `None` (lets matrix
    /// products call a library's f64 kernels).
    #[inline(always)]
    fn as_f64s(xs: &[Self]) -> Option<&[f64]> {
        let _ = xs;
        None
    }
}

impl Float for f32 {
    const DTYPE: &'static str = "f32";
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn as_f32s(xs: &[f32]) -> Option<&[f32]> {
        Some(xs)
    }
    #[inline(always)]
    fn as_f32s_mut(xs: &mut [f32]) -> Option<&mut [f32]> {
        Some(xs)
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "f64";
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn as_f64s(xs: &[f64]) -> Option<&[f64]> {
        Some(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_name_their_type() {
        assert_eq!(<f32 as Float>::DTYPE, "f32");
        assert_eq!(<f64 as Float>::DTYPE, "f64");
        assert!(!Float::is_finite(f64::NAN));
    }
}
