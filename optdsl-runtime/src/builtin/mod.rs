//! The built-in optimizers, each written with `optimizer!`, and the registry
//! that finds them by name.

use crate::error::{Error, Result};
use crate::rule::DynRule;

pub mod bnb;
pub mod course;
pub mod matrix;
pub mod noise;
pub mod optax;
pub mod secant;
pub mod slides;
pub mod torch;

/// A built-in rule's entry in the registry.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinInfo {
    /// Its lower-case name (`sgd`, `adam`, ...).
    pub name: &'static str,
    /// Its family (`sgd`, `adaptive`, `sign`, ...).
    pub family: &'static str,
    /// Where it comes from.
    pub reference: &'static str,
    /// A fresh rule with its defaults.
    pub make: fn() -> Box<dyn DynRule>,
}

/// Every built-in rule: the course's, PyTorch's, Optax's, those that draw
/// random numbers, bitsandbytes', the curvature-based ones, then the
/// slides' forms (family `slides`).
pub fn builtins() -> &'static [BuiltinInfo] {
    static ALL: std::sync::OnceLock<Vec<BuiltinInfo>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        [
            course::BUILTINS,
            torch::BUILTINS,
            optax::BUILTINS,
            noise::BUILTINS,
            bnb::BUILTINS,
            matrix::BUILTINS,
            secant::BUILTINS,
            slides::BUILTINS,
        ]
        .concat()
    })
}

/// The built-in rule called `name` (lower case), with its defaults.
pub fn builtin_rule(name: &str) -> Result<Box<dyn DynRule>> {
    let key = name.to_ascii_lowercase();
    builtins()
        .iter()
        .find(|b| b.name == key)
        .map(|b| (b.make)())
        .ok_or_else(|| Error::UnknownOptimizer {
            name: name.to_string(),
            known: builtins().iter().map(|b| b.name.to_string()).collect(),
        })
}
