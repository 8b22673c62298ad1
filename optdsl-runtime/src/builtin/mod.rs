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
    /// Its family.
    pub family: Family,
    /// Where it comes from.
    pub reference: &'static str,
    /// A fresh rule with its defaults.
    pub make: fn() -> Box<dyn DynRule>,
}

/// The families `optdsl list` groups the built-ins by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Gradient descent with or without momentum (and noisy variants).
    Sgd,
    /// Steps by the sign of the gradient or of a momentum (RProp, Lion).
    Sign,
    /// Per-element rates from accumulated squares (Adagrad, RMSProp, ...).
    Adaptive,
    /// Adam and its descendants.
    Adam,
    /// Rules on whole weight matrices (Muon).
    Matrix,
    /// Rules that estimate curvature (vSGD, AdaSecant; L-BFGS in the list).
    Curvature,
    /// The slides' forms of the course's rules.
    Slides,
}

impl Family {
    /// Every family, in the order `optdsl list` shows them.
    pub const ALL: [Family; 7] = [
        Family::Sgd,
        Family::Sign,
        Family::Adaptive,
        Family::Adam,
        Family::Matrix,
        Family::Curvature,
        Family::Slides,
    ];

    /// Its name (`sgd`, `adam`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Family::Sgd => "sgd",
            Family::Sign => "sign",
            Family::Adaptive => "adaptive",
            Family::Adam => "adam",
            Family::Matrix => "matrix",
            Family::Curvature => "curvature",
            Family::Slides => "slides",
        }
    }

    /// The family called `name`.
    ///
    /// ```
    /// # extern crate optdsl_runtime as optdsl;
    /// use optdsl::builtin::Family;
    /// assert_eq!(Family::parse("matrix"), Some(Family::Matrix));
    /// assert!(Family::ALL.iter().all(|f| Family::parse(f.name()) == Some(*f)));
    /// ```
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
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
