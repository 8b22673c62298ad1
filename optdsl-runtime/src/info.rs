//! What a rule declares ([`RuleInfo`]): name, docs, hyperparameters, state,
//! inputs, source text and its lowered program, with the questions asked of
//! the program (its traffic, whether it reduces).

use crate::error::{Error, Result};
use crate::hyper::{scalars_of, HyperSpec, HyperValue};
use optdsl_lang::ir::Op;
use optdsl_lang::traffic::PassTraffic;

/// What a rule declares: its name, docs, hyperparameters and state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleInfo {
    /// The type's name (e.g. `"Adam"`).
    pub name: &'static str,
    /// The rule's doc comment.
    pub doc: &'static str,
    /// The `hyper` declarations, in order.
    pub hypers: &'static [HyperSpec],
    /// The per-element `state` buffers, in order.
    pub buffers: &'static [&'static str],
    /// The per-tensor `scalar` states, in order.
    pub scalars: &'static [&'static str],
    /// The per-element `input` slices the caller passes beside the gradient
    /// (e.g. a curvature estimate), in order.
    pub inputs: &'static [&'static str],
    /// The rule's source text, as written in `optimizer!` or a rule file.
    pub source: &'static str,
    /// The lowered program (the IR of `optdsl_lang`), for the interpreters
    /// and the traffic analysis.
    pub program: ProgramRef,
}

/// Where a rule's lowered program comes from.
#[derive(Debug, Clone, Copy)]
pub enum ProgramRef {
    /// A rule compiled by `optimizer!`: its text compiled again by
    /// `optdsl_lang` on first use, then kept.
    Compiled(fn() -> &'static optdsl_lang::Program),
    /// A rule read from text at run time.
    Text(&'static optdsl_lang::Program),
}

impl PartialEq for ProgramRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.get(), other.get())
    }
}

impl ProgramRef {
    /// The program.
    pub fn get(&self) -> &'static optdsl_lang::Program {
        match *self {
            ProgramRef::Compiled(f) => f(),
            ProgramRef::Text(p) => p,
        }
    }
}

/// The program of a rule's text as `optimizer!` saw it (for
/// [`ProgramRef::Compiled`]); the macro compiled the same text, so it compiles.
#[doc(hidden)]
pub fn compile_one(source: &str) -> optdsl_lang::Program {
    match optdsl_lang::compile(source) {
        Ok(mut programs) if programs.len() == 1 => programs.remove(0),
        other => unreachable!("optimizer! compiled this rule: {other:?}"),
    }
}

impl RuleInfo {
    /// Checks that `given` input slices (or buffers) are what the rule
    /// declares: the one check of the count, for a state's step and an
    /// optimizer's alike.
    pub fn check_input_count(&self, given: usize) -> Result<()> {
        if given == self.inputs.len() {
            return Ok(());
        }
        Err(Error::Invalid {
            what: format!("inputs of {}", self.name),
            reason: format!(
                "the rule takes {} input slice(s) [{}] beside the gradient, {given} were given; pass them to step_with (a tensor) or step_flat_with (an optimizer's flat buffer)",
                self.inputs.len(),
                self.inputs.join(", "),
            ),
        })
    }

    /// The rule's lowered program.
    pub fn program(&self) -> &'static optdsl_lang::Program {
        self.program.get()
    }

    /// The hyperparameter names, in order.
    pub fn hyper_names(&self) -> Vec<String> {
        self.hypers.iter().map(|h| h.name.to_string()).collect()
    }

    /// The passes of one step at step `t` with these hyperparameters, and the
    /// slices each touches (`optdsl_lang::traffic`).
    pub fn traffic(&self, hypers: &[HyperValue], t: u64) -> Vec<PassTraffic> {
        optdsl_lang::traffic::traffic(self.program(), &scalars_of(hypers), t)
    }

    /// The inputs as declared, with their roles: `["h: curvature", "x"]`.
    pub fn input_decls(&self) -> Vec<String> {
        let roles = &self.program().input_roles;
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, name)| match roles.get(i).copied().flatten() {
                Some(role) => format!("{name}: {role}"),
                None => name.to_string(),
            })
            .collect()
    }

    /// Whether the rule reduces over the tensor (`sum`, `norm`, ...).
    pub fn has_reduction(&self) -> bool {
        self.program()
            .values
            .iter()
            .any(|v| matches!(v.op, Op::Reduce(..)))
    }
}

/// Checks `value` against the range `info` declares for `name`: a typed
/// error naming the hyperparameter and its range, as PyTorch's constructors
/// refuse `Adam(betas=(1.5, 0.999))`.
pub fn check_range(info: &RuleInfo, name: &str, value: f64) -> Result<()> {
    let range = info
        .hypers
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| h.range);
    match range {
        Some(r) if !r.contains(value) => Err(Error::HyperRange {
            rule: info.name.to_string(),
            name: name.to_string(),
            range: r.describe(name),
            got: value,
        }),
        _ => Ok(()),
    }
}

/// Helpers the generated `set_hyper` calls to report a wrong name or type.
#[doc(hidden)]
pub fn unknown_hyper(info: &RuleInfo, name: &str) -> Error {
    Error::UnknownHyper {
        rule: info.name.to_string(),
        name: name.to_string(),
        known: info.hyper_names(),
    }
}

/// The error for a value of the wrong type given to hyperparameter `name`.
#[doc(hidden)]
pub fn hyper_type(info: &RuleInfo, name: &str, want_bool: bool, got: HyperValue) -> Error {
    Error::HyperType {
        rule: info.name.to_string(),
        name: name.to_string(),
        expected: if want_bool {
            "true or false"
        } else {
            "a number"
        },
        got: got.to_string(),
    }
}
