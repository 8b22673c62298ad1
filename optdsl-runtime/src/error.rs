//! The runtime's typed errors: what went wrong and what to do about it.

use thiserror::Error;

/// Every error the runtime returns instead of panicking.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A gradient, parameter or state slice has the wrong length.
    #[error("length mismatch: {what} has {got} elements but the parameters have {expected}; pass slices of equal length")]
    LengthMismatch {
        /// Which slice was wrong (e.g. "gradient of tensor 2").
        what: String,
        /// The length the parameters have.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A hyperparameter name that the rule does not have.
    #[error("unknown hyperparameter `{name}` for {rule}; {}known: {}", did_you_mean(name, known), known.join(", "))]
    UnknownHyper {
        /// The rule's name.
        rule: String,
        /// The name that was asked for.
        name: String,
        /// The names the rule has.
        known: Vec<String>,
    },
    /// A hyperparameter value of the wrong type (a number for a boolean or back).
    #[error("hyperparameter `{name}` of {rule} takes {expected}, got `{got}`")]
    HyperType {
        /// The rule's name.
        rule: String,
        /// The hyperparameter.
        name: String,
        /// What it takes ("a number", "true or false").
        expected: &'static str,
        /// What was given, as text.
        got: String,
    },
    /// An optimizer name that is not built in.
    #[error("unknown optimizer `{name}`; {}known: {}", did_you_mean(name, known), known.join(", "))]
    UnknownOptimizer {
        /// The name that was asked for.
        name: String,
        /// The built-in names.
        known: Vec<String>,
    },
    /// Optimizer state that belongs to another rule or another shape.
    #[error("state mismatch: {0}; create the state with this rule's init() for these parameters")]
    StateMismatch(String),
    /// A parameter group or tensor index that does not exist.
    #[error("no {what} with index {index}; there are {count}")]
    NoSuchIndex {
        /// "group" or "tensor".
        what: &'static str,
        /// The index asked for.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// An error in a checkpoint file: truncated, corrupt, or from another run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Input data that cannot be read.
    #[error("data {source_name}: {reason}")]
    Data {
        /// The file or data set.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A loss or gradient that became NaN or infinite.
    #[error("non-finite {what} at epoch {epoch}, step {step} (learning rate {lr}); lower the learning rate or clip gradients")]
    NonFinite {
        /// "loss" or "gradient".
        what: String,
        /// Epoch, from 1.
        epoch: usize,
        /// Global step, from 1.
        step: u64,
        /// The learning rate in force.
        lr: f64,
    },
    /// A loss that became NaN or infinite under a rule with no learning rate.
    #[error("non-finite {what} at epoch {epoch}, step {step}; {rule} has no learning rate: its step diverged; try other values of its hyperparameters ({}; `optdsl list` shows them)", hypers.join(", "))]
    NonFiniteStep {
        /// "loss".
        what: String,
        /// Epoch, from 1.
        epoch: usize,
        /// Global step, from 1.
        step: u64,
        /// The rule's name.
        rule: String,
        /// The rule's hyperparameters, by name.
        hypers: Vec<String>,
    },
    /// A loss that became NaN or infinite under a hyperparameter that is not
    /// a finite number (e.g. a learning rate of NaN given to one group).
    #[error("non-finite {what} at epoch {epoch}, step {step}: the {group}' {hyper} is {value}; give it a finite value")]
    NonFiniteHyper {
        /// "loss".
        what: String,
        /// Epoch, from 1.
        epoch: usize,
        /// Global step, from 1.
        step: u64,
        /// The parameter group: "weights" or "biases".
        group: String,
        /// The hyperparameter.
        hyper: String,
        /// Its value.
        value: f64,
    },
    /// A closure-driven step's objective returned a NaN or infinite loss
    /// or gradient (L-BFGS stops instead of stepping on it, where PyTorch
    /// would go on with NaN).
    #[error("the objective returned a non-finite {what} ({value}) at evaluation {evaluation} of the step; check the objective at these parameters, or lower lr")]
    NonFiniteObjective {
        /// "loss" or "gradient".
        what: String,
        /// Which evaluation of the step (from 1).
        evaluation: usize,
        /// The value, as text.
        value: String,
    },
    /// A rule that cannot step only some rows of a tensor (row-sparse
    /// gradients): its update is not row-local.
    #[error("{rule} cannot take a row-sparse step: {reason}; step it with the dense gradient (Optimizer::step), or use sparse_adam")]
    NotRowLocal {
        /// The rule.
        rule: String,
        /// Why not.
        reason: String,
    },
    /// Too many steps in a row had a NaN or infinite gradient.
    #[error("non-finite gradient at step {step}, {consecutive} steps in a row; lower the learning rate, clip gradients, or check the data")]
    NonFiniteGradient {
        /// The step that was refused (from 1).
        step: u64,
        /// How many in a row had a non-finite gradient.
        consecutive: u64,
    },
    /// A rule that needs a matrix, given a vector.
    #[error("{rule} needs a matrix, and {what} has the shape {shape:?}; step vectors (biases, norms' scales) with another rule, as PyTorch does for Muon (a second group, such as AdamW)")]
    NeedsMatrix {
        /// The rule.
        rule: String,
        /// Which tensor.
        what: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A value out of its allowed range or a malformed option.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why.
        reason: String,
    },
    /// A hyperparameter value outside the range its rule declares.
    #[error("hyperparameter `{name}` of {rule} must satisfy {range}; got {got}")]
    HyperRange {
        /// The rule.
        rule: String,
        /// The hyperparameter.
        name: String,
        /// The range, as the rule writes it (`0 <= beta1 < 1`).
        range: String,
        /// The value given.
        got: f64,
    },
    /// Rules from text that do not compile: the rendered diagnostics
    /// (`FILE:LINE:COL`, the line, a caret under the token).
    #[error("{0}")]
    Rule(String),
    /// An I/O error, with the path it concerns.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

/// The runtime's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `did you mean X? ` for the name of `known` closest to `name` (edit
/// distance with transpositions, ignoring case) if it is close: at most 2
/// edits, and fewer than `name` has characters; else empty.
pub fn did_you_mean(name: &str, known: &[String]) -> String {
    let name = name.trim().to_lowercase();
    let most = 2.min(name.chars().count().saturating_sub(1));
    known
        .iter()
        .map(|k| (edit_distance(&name, &k.to_lowercase()), k))
        .filter(|&(d, _)| d <= most)
        .min_by_key(|&(d, _)| d)
        .map_or_else(String::new, |(_, k)| format!("did you mean {k}? "))
}

/// The edit distance of names (`optdsl_lang::check::distance`).
pub use optdsl_lang::check::distance as edit_distance;

/// `text` with its control characters other than newline and tab written
/// as escapes (`\u{1b}`), so that bytes from a damaged file cannot drive
/// the terminal an error is printed on.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_close_name_and_escapes_controls() {
        let known: Vec<String> = ["sgd", "adam", "adamw", "nadam"].map(String::from).into();
        assert_eq!(did_you_mean("adma", &known), "did you mean adam? ");
        assert_eq!(did_you_mean("SDG", &known), "did you mean sgd? ");
        assert_eq!(did_you_mean("zzzz", &known), "");
        assert_eq!(did_you_mean("x", &known), "");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            escape_controls("a\u{1b}[2Jb\n\u{7}"),
            "a\\u{1b}[2Jb\n\\u{7}"
        );
    }
}
