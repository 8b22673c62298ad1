//! Hyperparameters: their values ([`HyperValue`]), declarations
//! ([`HyperSpec`]) and declared ranges, and the errors for a wrong name, type
//! or value.

use optdsl_lang::eval::Scalar;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A hyperparameter's value: a number or a boolean (`nesterov = false`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HyperValue {
    /// A real number (learning rate, decay, epsilon, ...).
    Num(f64),
    /// A switch (nesterov, amsgrad, maximize, ...).
    Bool(bool),
}

impl HyperValue {
    /// Parses `true`, `false` or a number, as the command line's `--set` does.
    pub fn parse(text: &str) -> Option<HyperValue> {
        match text.trim() {
            "true" => Some(HyperValue::Bool(true)),
            "false" => Some(HyperValue::Bool(false)),
            t => t.parse::<f64>().ok().map(HyperValue::Num),
        }
    }
    /// The number, or `None` for a boolean.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            HyperValue::Num(x) => Some(x),
            HyperValue::Bool(_) => None,
        }
    }
    /// The boolean, or `None` for a number.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            HyperValue::Bool(b) => Some(b),
            HyperValue::Num(_) => None,
        }
    }
}

impl fmt::Display for HyperValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HyperValue::Num(x) if *x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) => {
                write!(f, "{x:e}")
            }
            HyperValue::Num(x) => write!(f, "{x}"),
            HyperValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<f64> for HyperValue {
    fn from(x: f64) -> Self {
        HyperValue::Num(x)
    }
}

impl From<bool> for HyperValue {
    fn from(b: bool) -> Self {
        HyperValue::Bool(b)
    }
}

/// The values a hyperparameter accepts (`hyper b1 = 0.9 where 0 <= b1 < 1`).
pub use optdsl_lang::ast::{Bound, Range as HyperRange};

/// A hyperparameter's name, default and range, as declared by `hyper`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperSpec {
    /// The name, also the field of the generated type.
    pub name: &'static str,
    /// The default from the rule's text.
    pub default: HyperValue,
    /// The values it accepts, if the rule declares them.
    pub range: Option<HyperRange>,
}

/// The hyperparameters as the IR's per-step values.
pub fn scalars_of(hypers: &[HyperValue]) -> Vec<Scalar> {
    hypers
        .iter()
        .map(|h| match *h {
            HyperValue::Num(x) => Scalar::Num(x),
            HyperValue::Bool(b) => Scalar::Bool(b),
        })
        .collect()
}
