//! The typed tree: what the checker hands to lowering. Every name is
//! resolved to what it refers to, every call to a function of the table,
//! every expression carries its type and kind, every node its position.

use crate::ast::{AssignOp, BinOp, Name, UnOp};
use crate::functions::{Draw, Func, Reduction};
use crate::span::Span;

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A real number.
    Num,
    /// A boolean.
    Bool,
}

/// When a value is known: at compile time, once per step, or per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A literal, or arithmetic on literals.
    Const,
    /// Once per step: hyperparameters, `t`, scalar state, reductions.
    Scalar,
    /// Per element: `w`, `g`, state buffers and what uses them.
    Element,
}

/// What a name refers to, resolved once by the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// `w`: the parameter.
    Param,
    /// `g`: its gradient.
    Grad,
    /// `t`: the step count, from 1.
    Step,
    /// Hyperparameter `i`.
    Hyper(usize),
    /// Per-element state buffer `i`.
    Buffer(usize),
    /// Per-tensor scalar state `i`.
    Scalar(usize),
    /// Input slice `i`.
    Input(usize),
    /// The `i`-th `let` of the rule (in text order).
    Let(usize),
}

/// A checked expression.
#[derive(Debug, Clone)]
pub struct TExpr {
    /// What it computes.
    pub node: TNode,
    /// Number or boolean.
    pub ty: Ty,
    /// Constant, per-step scalar or per-element.
    pub kind: Kind,
    /// Where it is.
    pub span: Span,
}

/// The forms of a checked expression.
#[derive(Debug, Clone)]
pub enum TNode {
    /// A number literal.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A resolved name.
    Var(Var),
    /// `-x` or `!b`.
    Unary(UnOp, Box<TExpr>),
    /// `a op b`.
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    /// An element-wise function.
    Call(Func, Vec<TExpr>),
    /// A reduction over the tensor.
    Reduce(Reduction, Box<TExpr>),
    /// A random draw per element, with its stream: the call's number among
    /// the rule's draws, in text order (see [`crate::random`]).
    Draw(Draw, u32),
    /// `if c { a } else { b }` or `select(c, a, b)`.
    Select(Box<TExpr>, Box<TExpr>, Box<TExpr>),
}

/// A checked statement.
#[derive(Debug, Clone)]
pub enum TStmt {
    /// `let name = value;` (the `let`'s index in [`Var::Let`]).
    Let {
        /// Which `let`.
        var: usize,
        /// Its value.
        value: TExpr,
    },
    /// `target op value;`
    Assign {
        /// What is assigned.
        target: Var,
        /// `=`, `+=`, ...
        op: AssignOp,
        /// The right-hand side.
        value: TExpr,
    },
    /// `if cond { .. } else { .. }`.
    If {
        /// The condition.
        cond: TExpr,
        /// Where it holds.
        then: Vec<TStmt>,
        /// Elsewhere.
        otherwise: Vec<TStmt>,
    },
}

/// A hyperparameter's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

/// A checked hyperparameter.
#[derive(Debug, Clone)]
pub struct THyper {
    /// Its name and position.
    pub name: Name,
    /// Its default.
    pub default: Default,
    /// The values it accepts, if declared.
    pub range: Option<crate::ast::Range>,
}

/// A checked state declaration.
#[derive(Debug, Clone)]
pub struct TState {
    /// Its name and position.
    pub name: Name,
    /// The value it starts with.
    pub init: TExpr,
    /// How it is stored (buffers only), and where the declaration says so.
    pub storage: (crate::storage::Storage, Option<crate::span::Span>),
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct TypedRule {
    /// The rule's name.
    pub name: Name,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Visibility as written.
    pub vis: Option<String>,
    /// The rule's text.
    pub source: String,
    /// Hyperparameters in order.
    pub hypers: Vec<THyper>,
    /// Per-element state in order.
    pub buffers: Vec<TState>,
    /// Per-tensor scalar state in order.
    pub scalars: Vec<TState>,
    /// Inputs in order.
    pub inputs: Vec<Name>,
    /// How many `let`s the body has.
    pub lets: usize,
    /// The statements.
    pub body: Vec<TStmt>,
}
