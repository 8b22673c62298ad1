//! optdsl's runtime: the update-rule traits the `optimizer!` macro implements,
//! the `Optimizer` that steps parameter groups, the built-in rules, schedules
//! and rules read from text; with features, networks (`network!`), data sets
//! and the trainer (`train`), the bundled digits (`datasets`), pictures
//! (`plot`), the bench (`bench`), fixtures (`replay`) and MPI (`mpi`).

#![warn(missing_docs)]

extern crate self as optdsl;

#[cfg(feature = "bench")]
pub mod bench;
pub mod builtin;
#[cfg(feature = "train")]
pub mod checkpoint;
#[cfg(feature = "train")]
pub mod data;
pub mod driver;
pub mod error;
pub mod exec;
pub mod float;
pub mod hyper;
pub mod info;
pub mod interp;
#[cfg(feature = "jit")]
pub mod jit;
pub mod lbfgs;
#[cfg(feature = "train")]
pub mod lbfgs_train;
#[cfg(feature = "train")]
pub mod memory;
#[cfg(feature = "bench")]
pub mod naive;
#[cfg(feature = "train")]
pub mod net;
pub mod optim;
#[cfg(feature = "train")]
pub mod parallel;
#[cfg(feature = "plot")]
pub mod plot;
pub mod qmaps;
pub mod quant;
#[cfg(feature = "replay")]
pub mod replay;
pub mod rng;
pub mod rule;
pub mod schedule;
pub mod shape;
pub mod sparse;
pub mod state;
pub mod stats;
pub mod tensor;
pub mod text;
#[cfg(feature = "train")]
pub mod train;

pub use builtin::{builtin_rule, builtins, BuiltinInfo, Family};
pub use error::{Error, Result};
pub use float::Float;
pub use optdsl_lang::role::Role;
pub use optdsl_lang::storage::storage_for;
pub use optdsl_lang::{StateFormat, Storage, QBLOCK};
pub use optdsl_macros::{network, optimizer};
pub use optim::{Compression, GroupState, Optimizer, OptimizerState, ParamGroup};
pub use quant::Packed;
pub use rule::{
    DrawSeed, DynFloat, DynRule, HyperRange, HyperSpec, HyperValue, RuleInfo, State, UpdateRule,
};
pub use schedule::{LrSchedule, Schedule};
pub use text::{RuleErrors, Rules, TextRule};

/// What generated code names, by absolute path; not a public interface.
#[doc(hidden)]
pub mod __private {
    pub use crate::driver::{
        all_bf16, bf16_bits, bf16_bits_mut, packed_views, run_pass, run_pass_half, run_pass_packed,
        run_pass_packed_idle, Draws, FnKernel, Idle, KernelFn, KernelFnHalf, Walk,
    };
    pub use crate::error::Result;
    pub use crate::exec::Simd;
    pub use crate::float::{Float, Real};
    #[cfg(feature = "train")]
    pub use crate::net;
    pub use crate::quant::Packed;
    pub use crate::rng;
    pub use crate::rule::{
        check_range, compile_one, hyper_type, unknown_hyper, Bound, HyperRange, HyperSpec,
        HyperValue, ProgramRef, RuleInfo, State, UpdateRule,
    };
    pub use crate::tensor::apply as tensor_apply;
    pub use core;
    pub use optdsl_lang::ast::BinOp;
    pub use optdsl_lang::random::{stream_key, Key};
    pub use optdsl_lang::{Draw, Func, Program, Reduction};
}
