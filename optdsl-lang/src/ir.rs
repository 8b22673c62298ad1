//! The IR: a rule lowered to SSA values with shared subexpressions, each
//! tagged with its type, its kind and its stage (how many reduction passes
//! must run before it can be computed). The only definition: the macro
//! generates code from it, the runtime interprets it and measures its
//! traffic.

use crate::ast::{BinOp, Name, UnOp};
use crate::functions::{Draw, Func, Reduction};
pub use crate::typed::{Default, Kind, Ty};

/// An SSA value's index.
pub type Id = usize;

/// What a value computes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// A number literal (its f64 bits).
    Num(u64),
    /// A boolean literal.
    Bool(bool),
    /// Hyperparameter `i`.
    Hyper(usize),
    /// The step count `t` (from 1).
    Step,
    /// Scalar state `i` as it was before this step.
    ScalarState(usize),
    /// `w` as it was before this step.
    Param,
    /// `g`.
    Grad,
    /// State buffer `i` as it was before this step.
    Buffer(usize),
    /// Input slice `i`.
    Input(usize),
    /// `-x`, `!b`.
    Unary(UnOp, Id),
    /// `a op b`.
    Binary(BinOp, Id, Id),
    /// A built-in function of numbers.
    Func(Func, Vec<Id>),
    /// `if c { a } else { b }`: both computed, one chosen.
    Select(Id, Id, Id),
    /// A reduction of an element value over the tensor.
    Reduce(Reduction, Id),
    /// A random draw per element from stream `k` (the call's number among
    /// the rule's draws, in text order; see [`crate::random`]).
    Draw(Draw, u32),
}

impl Op {
    /// The values this op reads.
    pub fn operands(&self) -> Vec<Id> {
        match self {
            Op::Unary(_, a) | Op::Reduce(_, a) => vec![*a],
            Op::Binary(_, a, b) => vec![*a, *b],
            Op::Select(c, a, b) => vec![*c, *a, *b],
            Op::Func(_, args) => args.clone(),
            _ => Vec::new(),
        }
    }

    /// The draw and its stream, if this is a draw.
    pub fn draw(&self) -> Option<(Draw, u32)> {
        match *self {
            Op::Draw(d, k) => Some((d, k)),
            _ => None,
        }
    }

    /// The slice an element load reads, if it is one.
    pub fn slot(&self) -> Option<Slot> {
        match *self {
            Op::Param => Some(Slot::W),
            Op::Grad => Some(Slot::G),
            Op::Buffer(i) => Some(Slot::Buffer(i)),
            Op::Input(i) => Some(Slot::Input(i)),
            _ => None,
        }
    }
}

/// A slice a pass reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The parameters.
    W,
    /// The gradient.
    G,
    /// State buffer `i`.
    Buffer(usize),
    /// Input `i`.
    Input(usize),
}

/// One SSA value.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What it computes.
    pub op: Op,
    /// Number or boolean.
    pub ty: Ty,
    /// Constant, per-step scalar, or per-element.
    pub kind: Kind,
    /// Reduction passes needed before it (0: none).
    pub stage: usize,
}

/// A lowered hyperparameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    /// Its name and where it was declared.
    pub name: Name,
    /// Its default.
    pub default: Default,
    /// The values it accepts, if declared (`where 0 <= b1 < 1`).
    pub range: Option<crate::ast::Range>,
}

/// A lowered state (buffer or scalar) with the value that initializes it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSlot {
    /// Its name.
    pub name: String,
    /// The value it starts with.
    pub init: Id,
}

/// A lowered rule: everything code generation and the interpreter need.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The rule's name and where it is written.
    pub name: Name,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Visibility as written.
    pub vis: Option<String>,
    /// The rule's text.
    pub source: String,
    /// Hyperparameters in order.
    pub hypers: Vec<Hyper>,
    /// Per-element state buffers in order.
    pub buffers: Vec<StateSlot>,
    /// How each buffer is stored, as declared (not part of the fingerprint:
    /// a state records its own layout).
    pub storage: Vec<crate::storage::Storage>,
    /// Per-tensor scalar states in order.
    pub scalars: Vec<StateSlot>,
    /// Input names in order.
    pub inputs: Vec<String>,
    /// Each input's declared role (what a trainer computes for it); not part
    /// of the fingerprint, as it does not change a step.
    pub input_roles: Vec<Option<crate::role::Role>>,
    /// The SSA values, each after its operands.
    pub values: Vec<Value>,
    /// The new `w`, if the rule assigns it.
    pub w_out: Option<Id>,
    /// The new value of each buffer, if assigned.
    pub buffer_out: Vec<Option<Id>>,
    /// The new value of each scalar state, if assigned.
    pub scalar_out: Vec<Option<Id>>,
    /// How many reduction passes run before the update pass.
    pub stages: usize,
    /// A hash of what the program computes and keeps ([`Program::fingerprint_of`]).
    pub fingerprint: u64,
    /// For a rule with shapes: its checked body, run by the runtime's tensor
    /// executor (`values` then holds only the state's initial values).
    pub tensor: Option<crate::shaped::TensorBody>,
}

impl Program {
    /// Every value that `roots` need, in order, including the roots.
    pub fn closure(&self, roots: impl IntoIterator<Item = Id>) -> Vec<Id> {
        let mut need = vec![false; self.values.len()];
        let mut stack: Vec<Id> = roots.into_iter().collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut need[id], true) {
                continue;
            }
            stack.extend(self.values[id].op.operands());
        }
        (0..self.values.len()).filter(|&i| need[i]).collect()
    }

    /// How many random streams the program draws from (one per `rand()` or
    /// `randn()` in its text; 0 for a rule without draws).
    pub fn streams(&self) -> u32 {
        self.values
            .iter()
            .filter_map(|v| v.op.draw())
            .map(|(_, k)| k + 1)
            .max()
            .unwrap_or(0)
    }

    /// A hash of the program's values, outputs, state layout, inputs and
    /// hyperparameters (names and defaults, not positions): two rules with the
    /// same name but other programs have other fingerprints, and a rule read
    /// from text has the fingerprint of the same rule compiled.
    pub fn fingerprint_of(&self) -> u64 {
        let hypers: Vec<(&str, Default)> = self
            .hypers
            .iter()
            .map(|h| (h.name.text.as_str(), h.default))
            .collect();
        let tensor = self
            .tensor
            .as_ref()
            .map(|t| t.canonical())
            .unwrap_or_default();
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}{tensor}",
            self.values,
            self.w_out,
            self.buffer_out,
            self.scalar_out,
            self.buffers,
            self.scalars,
            self.inputs,
            hypers
        );
        crate::fnv1a(text.as_bytes())
    }
}
