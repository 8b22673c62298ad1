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

/// One dimension of a shape: symbolic, as the checker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    /// 1: broadcast along this axis.
    One,
    /// The tensor's rows (its first dimension).
    Rows,
    /// The tensor's columns (the product of the others).
    Cols,
}

impl Dim {
    /// As written in the language.
    pub fn name(self) -> &'static str {
        match self {
            Dim::One => "1",
            Dim::Rows => "rows",
            Dim::Cols => "cols",
        }
    }
}

/// A value's shape: `[1, 1]` for scalars, `[rows, cols]` for the tensor's
/// elements, `[rows, 1]` for a value per row, `[rows, rows]` for a Gram
/// matrix, and so on. Shapes broadcast as numpy's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape(pub Dim, pub Dim);

impl Shape {
    /// A number: once per step, or a constant.
    pub const SCALAR: Shape = Shape(Dim::One, Dim::One);
    /// The parameter's own shape.
    pub const TENSOR: Shape = Shape(Dim::Rows, Dim::Cols);

    /// numpy's broadcast of two shapes, if they broadcast.
    pub fn broadcast(self, other: Shape) -> Option<Shape> {
        let one = |a: Dim, b: Dim| match (a, b) {
            (Dim::One, x) | (x, Dim::One) => Some(x),
            (x, y) if x == y => Some(x),
            _ => None,
        };
        Some(Shape(one(self.0, other.0)?, one(self.1, other.1)?))
    }

    /// The shape of `self @ other`, if the inner dimensions agree.
    pub fn matmul(self, other: Shape) -> Option<Shape> {
        (self.1 == other.0).then_some(Shape(self.0, other.1))
    }

    /// The transpose's shape.
    pub fn t(self) -> Shape {
        Shape(self.1, self.0)
    }

    /// The number of elements for a tensor of `rows` x `cols`.
    pub fn len(self, rows: usize, cols: usize) -> usize {
        self.dims(rows, cols).0 * self.dims(rows, cols).1
    }

    /// The concrete dimensions for a tensor of `rows` x `cols`.
    pub fn dims(self, rows: usize, cols: usize) -> (usize, usize) {
        let d = |x: Dim| match x {
            Dim::One => 1,
            Dim::Rows => rows,
            Dim::Cols => cols,
        };
        (d(self.0), d(self.1))
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}]", self.0.name(), self.1.name())
    }
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
    /// `rows`: the tensor's first dimension (its length for a vector).
    Rows,
    /// `cols`: the product of the other dimensions (1 for a vector).
    Cols,
    /// `numel`: the number of elements.
    Numel,
    /// `matrix`: whether the tensor has two or more dimensions.
    Matrix,
    /// `epsilon`: the element type's machine epsilon.
    Epsilon,
}

/// A checked expression.
#[derive(Debug, Clone, PartialEq)]
pub struct TExpr {
    /// What it computes.
    pub node: TNode,
    /// Number or boolean.
    pub ty: Ty,
    /// Constant, per-step scalar or per-element.
    pub kind: Kind,
    /// Its shape (`[1, 1]` unless per element).
    pub shape: Shape,
    /// Where it is.
    pub span: Span,
}

impl TExpr {
    /// Its operands, in order: none for a literal, a name or a draw; the
    /// operand of `eye(x)` too, though only its shape is read.
    pub fn children(&self) -> impl Iterator<Item = &TExpr> {
        let none: &[TExpr] = &[];
        let (a, b, c, args): (Option<&TExpr>, Option<&TExpr>, Option<&TExpr>, &[TExpr]) =
            match &self.node {
                TNode::Num(_) | TNode::Bool(_) | TNode::Var(_) | TNode::Draw(..) => {
                    (None, None, None, none)
                }
                TNode::Unary(_, x)
                | TNode::Reduce(_, x)
                | TNode::Axis(_, _, x)
                | TNode::Transpose(x)
                | TNode::Eye(x) => (Some(x), None, None, none),
                TNode::Binary(_, x, y) | TNode::MatMul(x, y) => (Some(x), Some(y), None, none),
                TNode::Select(x, y, z) => (Some(x), Some(y), Some(z), none),
                TNode::Call(_, args) => (None, None, None, args),
            };
        a.into_iter().chain(b).chain(c).chain(args)
    }
}

/// The forms of a checked expression.
#[derive(Debug, Clone, PartialEq)]
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
    /// A reduction along one axis (`row_sum(x)`: over each row's columns).
    Axis(crate::functions::Axis, Reduction, Box<TExpr>),
    /// `a @ b`.
    MatMul(Box<TExpr>, Box<TExpr>),
    /// `x^T`.
    Transpose(Box<TExpr>),
    /// `eye(x)`: the identity of square `x`'s shape (`x` is not computed).
    Eye(Box<TExpr>),
}

/// A checked statement.
#[derive(Debug, Clone, PartialEq)]
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
    /// `repeat count { body }` (shaped rules).
    Repeat {
        /// How many times: a per-step number, rounded down, at least 0.
        count: TExpr,
        /// The statements repeated.
        body: Vec<TStmt>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct TState {
    /// Its name and position.
    pub name: Name,
    /// The value it starts with.
    pub init: TExpr,
    /// How it is stored (buffers only), and where the declaration says so.
    pub storage: (crate::storage::Storage, Option<crate::span::Span>),
    /// Its shape (buffers only; the parameter's shape unless declared).
    pub shape: Shape,
    /// The shape conditions under which it exists (a buffer declared inside
    /// `if matrix { ... }` exists for matrices only): each condition and
    /// whether it must hold (`true`) or fail (`false`).
    pub when: Vec<(TExpr, bool)>,
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
    /// Each input's declared role.
    pub input_roles: Vec<Option<crate::role::Role>>,
    /// How many `let`s the body has.
    pub lets: usize,
    /// The statements.
    pub body: Vec<TStmt>,
    /// Whether the rule uses shapes (rows, cols, axis reductions, `@`, `^T`,
    /// `repeat`, shaped state): then it runs on the tensor executor.
    pub shaped: bool,
    /// Whether it needs a matrix (it uses a shape feature outside
    /// `if matrix { ... }`): a vector is then refused at run time.
    pub needs_matrix: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> TExpr {
        TExpr {
            node: TNode::Num(x),
            ty: Ty::Num,
            kind: Kind::Const,
            shape: Shape::SCALAR,
            span: Span::default(),
        }
    }

    fn of(node: TNode) -> TExpr {
        TExpr { node, ..num(0.0) }
    }

    /// The numbers of `e`'s children, in order.
    fn children(e: &TExpr) -> Vec<f64> {
        e.children()
            .map(|c| match c.node {
                TNode::Num(x) => x,
                _ => f64::NAN,
            })
            .collect()
    }

    #[test]
    fn children_are_each_nodes_operands_in_order() {
        let b = |x: f64| Box::new(num(x));
        let cases: Vec<(TNode, Vec<f64>)> = vec![
            (TNode::Num(7.0), vec![]),
            (TNode::Bool(true), vec![]),
            (TNode::Var(Var::Grad), vec![]),
            (TNode::Draw(Draw::Uniform, 0), vec![]),
            (TNode::Unary(UnOp::Neg, b(1.0)), vec![1.0]),
            (TNode::Binary(BinOp::Sub, b(1.0), b(2.0)), vec![1.0, 2.0]),
            (
                TNode::Call(Func::Clamp, vec![num(1.0), num(2.0), num(3.0)]),
                vec![1.0, 2.0, 3.0],
            ),
            (TNode::Reduce(Reduction::Sum, b(4.0)), vec![4.0]),
            (TNode::Select(b(1.0), b(2.0), b(3.0)), vec![1.0, 2.0, 3.0]),
            (
                TNode::Axis(crate::functions::Axis::Row, Reduction::Mean, b(5.0)),
                vec![5.0],
            ),
            (TNode::MatMul(b(6.0), b(7.0)), vec![6.0, 7.0]),
            (TNode::Transpose(b(8.0)), vec![8.0]),
            (TNode::Eye(b(9.0)), vec![9.0]),
        ];
        for (node, want) in cases {
            let what = format!("{node:?}");
            assert_eq!(children(&of(node)), want, "{what}");
        }
    }
}
