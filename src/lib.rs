//! optdsl: optimizer update rules written as papers write them, compiled by
//! `optimizer!` into fused, vectorized, multi-threaded loops. This crate is the
//! facade users depend on; it re-exports `optdsl-runtime`.

#![warn(missing_docs)]

pub use optdsl_runtime::*;

#[cfg(feature = "candle")]
pub mod candle;

#[cfg(feature = "burn")]
pub mod burn;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
