//! optdsl's runtime: the update-rule traits the `optimizer!` macro implements,
//! the `Optimizer` that steps parameter groups, the built-in rules, networks
//! (`network!`), data sets and the trainer.

extern crate self as optdsl;

pub mod bench;
pub mod builtin;
pub mod checkpoint;
pub mod data;
#[cfg(feature = "mpi")]
pub mod dist;
pub mod driver;
pub mod error;
pub mod exec;
pub mod float;
pub mod interp;
pub mod ir;
#[cfg(feature = "jit")]
pub mod jit;
pub mod lbfgs;
pub mod lbfgs_train;
pub mod memory;
pub mod net;
pub mod optim;
pub mod parallel;
pub mod plot;
pub mod qmaps;
pub mod quant;
pub mod replay;
pub mod rng;
pub mod rule;
pub mod schedule;
pub mod sparse;
pub mod stats;
pub mod tensor;
pub mod text;
pub mod train;

pub use builtin::{builtin_rule, builtins, BuiltinInfo};
pub use error::{Error, Result};
pub use float::Float;
pub use optdsl_lang::storage::storage_for;
pub use optdsl_lang::{StateFormat, Storage};
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
        packed_views, run_pass, run_pass_packed, Draws, FnKernel, KernelFn, Walk,
    };
    pub use crate::error::Result;
    pub use crate::exec::Simd;
    pub use crate::float::{Float, Real};
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
