//! optdsl: optimizer update rules written as papers write them, compiled by
//! `optimizer!` into fused, vectorized, multi-threaded loops. This crate is the
//! facade users depend on; it re-exports `optdsl-runtime`.

#![warn(missing_docs)]

pub use optdsl_runtime::*;

#[cfg(feature = "mpi")]
pub mod dist;

#[cfg(feature = "candle")]
pub mod candle;

#[cfg(feature = "burn")]
pub mod burn;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The Rust examples of `docs/language.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/language.md")]
pub struct LanguageDoctests;

/// The Rust examples of `docs/text-rules.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/text-rules.md")]
pub struct TextRulesDoctests;

/// The Rust examples of `docs/builtins.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/builtins.md")]
pub struct BuiltinsDoctests;

/// The Rust examples of `docs/matrices.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/matrices.md")]
pub struct MatricesDoctests;

/// The Rust examples of `docs/compressed-state.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/compressed-state.md")]
pub struct CompressedStateDoctests;

/// The Rust examples of `docs/training.md` (networks and the trainer: feature
/// `train`), compiled and run as doc tests.
#[cfg(all(doctest, feature = "train"))]
#[doc = include_str!("../docs/training.md")]
pub struct TrainingDoctests;

/// The Rust examples of `docs/checkpoints.md`, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/checkpoints.md")]
pub struct CheckpointsDoctests;
