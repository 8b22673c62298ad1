//! What a per-step scalar evaluates to: in f64, with the semantics of
//! [`crate::functions`] (the generated code computes the same operations in
//! the same order).

use crate::ast::UnOp;
use crate::ir::{Id, Op, Program};
use crate::real::Real;
use crate::typed::Default;

/// A per-step value: a number (in f64) or a boolean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

impl From<Default> for Scalar {
    fn from(d: Default) -> Scalar {
        match d {
            Default::Num(x) => Scalar::Num(x),
            Default::Bool(b) => Scalar::Bool(b),
        }
    }
}

impl Scalar {
    /// The number (NaN for a boolean, which the checker never lets through).
    pub fn num(self) -> f64 {
        match self {
            Scalar::Num(x) => x,
            Scalar::Bool(_) => f64::NAN,
        }
    }

    /// The boolean (false for a number, which the checker never lets through).
    pub fn truth(self) -> bool {
        matches!(self, Scalar::Bool(true))
    }
}

/// What the per-step leaves of a program are this step.
pub struct Leaves<'a> {
    /// The hyperparameters, in declaration order.
    pub hypers: &'a [Scalar],
    /// The step count (from 1).
    pub t: f64,
    /// The scalar states before this step.
    pub scalars: &'a [f64],
}

/// The value of per-step value `id` from the values before it (`known[a]`
/// for each operand `a`), with `R` the element type (for `float`).
/// `None` if it is per element or a reduction (computed by a pass).
pub fn scalar<R: Real>(
    p: &Program,
    id: Id,
    known: &[Option<Scalar>],
    leaves: &Leaves,
) -> Option<Scalar> {
    let k = |a: Id| known.get(a).copied().flatten();
    Some(match &p.values[id].op {
        Op::Num(bits) => Scalar::Num(f64::from_bits(*bits)),
        Op::Bool(b) => Scalar::Bool(*b),
        Op::Hyper(i) => *leaves.hypers.get(*i)?,
        Op::Step => Scalar::Num(leaves.t),
        Op::ScalarState(i) => Scalar::Num(*leaves.scalars.get(*i)?),
        Op::Unary(UnOp::Neg, a) => Scalar::Num(-k(*a)?.num()),
        Op::Unary(UnOp::Not, a) => Scalar::Bool(!k(*a)?.truth()),
        Op::Binary(op, a, b) => match (k(*a)?, k(*b)?) {
            (Scalar::Num(x), Scalar::Num(y)) if op.is_arith() => Scalar::Num(op.arith(x, y)),
            (Scalar::Num(x), Scalar::Num(y)) => Scalar::Bool(op.compare(x, y)),
            (Scalar::Bool(x), Scalar::Bool(y)) => Scalar::Bool(op.logic(x, y)),
            _ => return None,
        },
        Op::Func(f, args) => {
            let v: Vec<f64> = args
                .iter()
                .map(|&a| k(a).map(Scalar::num))
                .collect::<Option<_>>()?;
            let at = |i: usize| v.get(i).copied().unwrap_or(f64::NAN);
            Scalar::Num(f.apply_scalar::<R>(at(0), at(1), at(2)))
        }
        Op::Select(c, a, b) => {
            if k(*c)?.truth() {
                k(*a)?
            } else {
                k(*b)?
            }
        }
        Op::Param | Op::Grad | Op::Buffer(_) | Op::Input(_) | Op::Reduce(..) | Op::Draw(..) => {
            return None
        }
    })
}
