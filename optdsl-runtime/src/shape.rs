//! A tensor's dimensions as a rule with shapes sees them ([`Dims`]): a
//! tensor of shape `[d0, d1, ..., dk]` is the matrix `[d0, d1 * ... * dk]`
//! (row-major, as PyTorch stores it); a vector `[n]` has `rows = n`,
//! `cols = 1` and `matrix = false`.

use crate::error::{Error, Result};
use crate::info::RuleInfo;
use optdsl_lang::ast::UnOp;
use optdsl_lang::eval::Scalar;
use optdsl_lang::typed::{TExpr, TNode, Var};
use optdsl_lang::Program;

/// A tensor's dimensions as a rule with shapes sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// The first dimension (the length of a vector).
    pub rows: usize,
    /// The product of the others (1 for a vector).
    pub cols: usize,
    /// Whether the tensor has two or more dimensions.
    pub matrix: bool,
    /// The number of elements.
    pub numel: usize,
}

impl Dims {
    /// The dimensions of a tensor of `shape`; an empty shape is a vector of
    /// `len`. A shape whose element count overflows is a typed error.
    pub fn from_shape(shape: &[usize], len: usize) -> Result<Dims> {
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let Some(numel) = numel else {
            return Err(Error::Invalid {
                what: format!("tensor shape {shape:?}"),
                reason: "its element count overflows".into(),
            });
        };
        Ok(match shape {
            [] => Dims {
                rows: len,
                cols: 1,
                matrix: false,
                numel: len,
            },
            [n] => Dims {
                rows: *n,
                cols: 1,
                matrix: false,
                numel,
            },
            [r, rest @ ..] => Dims {
                rows: *r,
                cols: rest.iter().product(),
                matrix: true,
                numel,
            },
        })
    }

    /// The dimensions of a tensor of `shape` for `info`'s rule: a rule that
    /// needs a matrix refuses a vector with [`Error::NeedsMatrix`].
    pub fn of(info: &RuleInfo, shape: &[usize]) -> Result<Dims> {
        let dims = Dims::from_shape(shape, shape.first().copied().unwrap_or(0))?;
        let needs = info
            .program()
            .tensor
            .as_ref()
            .is_some_and(|t| t.needs_matrix);
        if needs && !dims.matrix {
            return Err(Error::NeedsMatrix {
                rule: info.name.to_string(),
                what: "the tensor".into(),
                shape: shape.to_vec(),
            });
        }
        Ok(dims)
    }

    /// How many numbers buffer `i` of `p` holds for a tensor of these
    /// dimensions: its declared shape's size, or 0 where its condition fails.
    pub fn buffer_len(&self, p: &Program, i: usize) -> usize {
        let Some(t) = &p.tensor else {
            return self.numel;
        };
        let exists = t.when.get(i).is_none_or(|conds| {
            conds
                .iter()
                .all(|(c, holds)| shape_condition(c, self) == Some(*holds))
        });
        match (exists, t.shapes.get(i)) {
            (true, Some(s)) => s.len(self.rows, self.cols),
            (true, None) => self.numel,
            (false, _) => 0,
        }
    }
}

/// The value of a condition on the tensor's shape alone (for buffers that
/// exist where it holds); `None` if it is not one.
pub fn shape_condition(c: &TExpr, d: &Dims) -> Option<bool> {
    match shape_scalar(c, d)? {
        Scalar::Bool(b) => Some(b),
        Scalar::Num(_) => None,
    }
}

fn shape_scalar(e: &TExpr, d: &Dims) -> Option<Scalar> {
    Some(match &e.node {
        TNode::Num(x) => Scalar::Num(*x),
        TNode::Bool(b) => Scalar::Bool(*b),
        TNode::Var(Var::Rows) => Scalar::Num(d.rows as f64),
        TNode::Var(Var::Cols) => Scalar::Num(d.cols as f64),
        TNode::Var(Var::Numel) => Scalar::Num(d.numel as f64),
        TNode::Var(Var::Matrix) => Scalar::Bool(d.matrix),
        TNode::Unary(UnOp::Not, x) => match shape_scalar(x, d)? {
            Scalar::Bool(b) => Scalar::Bool(!b),
            Scalar::Num(_) => return None,
        },
        TNode::Unary(UnOp::Neg, x) => match shape_scalar(x, d)? {
            Scalar::Num(v) => Scalar::Num(-v),
            Scalar::Bool(_) => return None,
        },
        TNode::Binary(op, a, b) => match (shape_scalar(a, d)?, shape_scalar(b, d)?) {
            (Scalar::Num(a), Scalar::Num(b)) if op.is_arith() => Scalar::Num(op.arith(a, b)),
            (Scalar::Num(a), Scalar::Num(b)) => Scalar::Bool(op.compare(a, b)),
            (Scalar::Bool(a), Scalar::Bool(b)) => Scalar::Bool(op.logic(a, b)),
            _ => return None,
        },
        _ => return None,
    })
}
