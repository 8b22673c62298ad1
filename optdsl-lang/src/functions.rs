//! The table of the language's functions, in one place: each is an enum
//! variant with its name, aliases from other languages, arity, what kinds it
//! accepts and what it computes. A name that is not in the table is an error
//! at the call; nothing falls through to another function.

use crate::ast::BinOp;
pub use crate::random::Draw;
use crate::real::Real;

/// An element-wise function of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
    /// `sign(x)`: numpy's, `sign(0) = 0`.
    Sign,
    /// `exp(x)`
    Exp,
    /// `ln(x)`
    Ln,
    /// `min(a, b)`: NaN-propagating.
    Min,
    /// `max(a, b)`: NaN-propagating.
    Max,
    /// `clamp(x, lo, hi)`
    Clamp,
    /// `fma(a, b, c)`: `a * b + c` rounded once, as PyTorch's vectorized CPU
    /// kernels compute `add_(x, alpha=)`, `addcmul_` and `lerp_` (the one
    /// place a rule asks for fused multiply-add; nothing else is contracted).
    Fma,
    /// `float(x)`: a per-step scalar rounded to the element type (per element
    /// it is the value itself).
    Float,
}

/// A reduction of a per-element value over the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Σx
    Sum,
    /// Σx / n
    Mean,
    /// sqrt(Σx²)
    Norm,
    /// max |x|
    MaxAbs,
}

/// The axis a per-row or per-column reduction runs along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// `row_*(x)`: one value per row, over its columns (`[rows, 1]`).
    Row,
    /// `col_*(x)`: one value per column, over its rows (`[1, cols]`).
    Col,
}

/// What a call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Callee {
    /// An element-wise function.
    Func(Func),
    /// A reduction over the tensor.
    Reduce(Reduction),
    /// `select(c, a, b)`: `if c { a } else { b }`.
    Select,
    /// A random draw per element (`rand()`, `randn()`; no arguments), see
    /// [`crate::random`].
    Draw(Draw),
    /// A reduction along an axis: `row_sum`, `col_mean`, ...
    Axis(Axis, Reduction),
    /// `transpose(x)`: `x^T`.
    Transpose,
    /// `eye(x)`: the identity matrix of square `x`'s shape.
    Eye,
}

/// Every callable, in the order the docs list them.
pub const CALLEES: &[Callee] = &[
    Callee::Func(Func::Sqrt),
    Callee::Func(Func::Abs),
    Callee::Func(Func::Sign),
    Callee::Func(Func::Exp),
    Callee::Func(Func::Ln),
    Callee::Func(Func::Min),
    Callee::Func(Func::Max),
    Callee::Func(Func::Clamp),
    Callee::Func(Func::Fma),
    Callee::Func(Func::Float),
    Callee::Select,
    Callee::Draw(Draw::Uniform),
    Callee::Draw(Draw::Normal),
    Callee::Reduce(Reduction::Sum),
    Callee::Reduce(Reduction::Mean),
    Callee::Reduce(Reduction::Norm),
    Callee::Reduce(Reduction::MaxAbs),
    Callee::Axis(Axis::Row, Reduction::Sum),
    Callee::Axis(Axis::Row, Reduction::Mean),
    Callee::Axis(Axis::Row, Reduction::Norm),
    Callee::Axis(Axis::Row, Reduction::MaxAbs),
    Callee::Axis(Axis::Col, Reduction::Sum),
    Callee::Axis(Axis::Col, Reduction::Mean),
    Callee::Axis(Axis::Col, Reduction::Norm),
    Callee::Axis(Axis::Col, Reduction::MaxAbs),
    Callee::Transpose,
    Callee::Eye,
];

/// Other languages' names for the built-in functions.
pub const ALIASES: &[(&str, &str)] = &[
    ("sgn", "sign"),
    ("signum", "sign"),
    ("log", "ln"),
    ("fabs", "abs"),
    ("minimum", "min"),
    ("maximum", "max"),
    ("clip", "clamp"),
    ("where", "select"),
    ("amax", "max_abs"),
    ("l2norm", "norm"),
    ("average", "mean"),
    ("random", "rand"),
    ("uniform", "rand"),
    ("normal", "randn"),
    ("gauss", "randn"),
    ("identity", "eye"),
];

impl Callee {
    /// The callable named `name`.
    pub fn lookup(name: &str) -> Option<Callee> {
        CALLEES.iter().copied().find(|c| c.name() == name)
    }

    /// Its name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Callee::Func(f) => f.name(),
            Callee::Reduce(r) => r.name(),
            Callee::Select => "select",
            Callee::Draw(d) => d.name(),
            Callee::Transpose => "transpose",
            Callee::Eye => "eye",
            Callee::Axis(a, r) => match (a, r) {
                (Axis::Row, Reduction::Sum) => "row_sum",
                (Axis::Row, Reduction::Mean) => "row_mean",
                (Axis::Row, Reduction::Norm) => "row_norm",
                (Axis::Row, Reduction::MaxAbs) => "row_max_abs",
                (Axis::Col, Reduction::Sum) => "col_sum",
                (Axis::Col, Reduction::Mean) => "col_mean",
                (Axis::Col, Reduction::Norm) => "col_norm",
                (Axis::Col, Reduction::MaxAbs) => "col_max_abs",
            },
        }
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Callee::Func(f) => f.arity(),
            Callee::Reduce(_) | Callee::Axis(..) | Callee::Transpose | Callee::Eye => 1,
            Callee::Select => 3,
            Callee::Draw(_) => 0,
        }
    }
}

impl Func {
    /// Its name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Func::Sqrt => "sqrt",
            Func::Abs => "abs",
            Func::Sign => "sign",
            Func::Exp => "exp",
            Func::Ln => "ln",
            Func::Min => "min",
            Func::Max => "max",
            Func::Clamp => "clamp",
            Func::Fma => "fma",
            Func::Float => "float",
        }
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            Func::Min | Func::Max => 2,
            Func::Clamp | Func::Fma => 3,
            _ => 1,
        }
    }

    /// Whether it costs as much as a division per element (square roots,
    /// exponentials, logarithms): what makes a pass compute-bound.
    pub fn is_heavy(self) -> bool {
        matches!(self, Func::Sqrt | Func::Exp | Func::Ln)
    }

    /// The value per element, in the element type (unused arguments are
    /// ignored). `float` is the identity here: the value is in `R` already.
    #[inline(always)]
    pub fn apply<R: Real>(self, a: R, b: R, c: R) -> R {
        match self {
            Func::Sqrt => a.sqrt(),
            Func::Abs => a.abs(),
            Func::Sign => a.sign(),
            Func::Exp => a.exp(),
            Func::Ln => a.ln(),
            Func::Min => a.minimum(b),
            Func::Max => a.maximum(b),
            Func::Clamp => a.clip(b, c),
            Func::Fma => a.mul_add(b, c),
            Func::Float => a,
        }
    }

    /// The value of a per-step scalar, computed in f64; `float` rounds to
    /// the element type `R` and back.
    #[inline]
    pub fn apply_scalar<R: Real>(self, a: f64, b: f64, c: f64) -> f64 {
        match self {
            Func::Float => R::from_f64(a).to_f64(),
            f => f.apply(a, b, c),
        }
    }
}

impl Reduction {
    /// Its name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::Norm => "norm",
            Reduction::MaxAbs => "max_abs",
        }
    }

    /// What an accumulator starts at.
    pub fn identity<R: Real>(self) -> R {
        R::ZERO
    }

    /// Adds one element to an accumulator, in the element type.
    #[inline(always)]
    pub fn accumulate<R: Real>(self, acc: R, x: R) -> R {
        match self {
            Reduction::Sum | Reduction::Mean => acc + x,
            Reduction::Norm => acc + x * x,
            Reduction::MaxAbs => acc.maximum(x.abs()),
        }
    }

    /// Combines two partial results, in f64 (blocks, super-blocks).
    #[inline(always)]
    pub fn combine(self, a: f64, b: f64) -> f64 {
        match self {
            Reduction::MaxAbs => Real::maximum(a, b),
            _ => a + b,
        }
    }

    /// The reduction's value from the combined partial results of `n` elements.
    #[inline]
    pub fn finish(self, total: f64, n: usize) -> f64 {
        match self {
            Reduction::Sum | Reduction::MaxAbs => total,
            Reduction::Mean => total / n as f64,
            Reduction::Norm => total.sqrt(),
        }
    }
}

impl BinOp {
    /// The value of an arithmetic operator (`+ - * / ^`) on numbers.
    #[inline(always)]
    pub fn arith<R: Real>(self, a: R, b: R) -> R {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Pow => a.powf(b),
            // Not arithmetic: the checker gives these booleans.
            _ => R::ZERO,
        }
    }

    /// The value of a comparison on numbers.
    #[inline(always)]
    pub fn compare<R: Real>(self, a: R, b: R) -> bool {
        match self {
            BinOp::Lt => a < b,
            BinOp::Le => a <= b,
            BinOp::Gt => a > b,
            BinOp::Ge => a >= b,
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            _ => false,
        }
    }

    /// The value of `&&`, `||`, `==` or `!=` on booleans.
    #[inline(always)]
    pub fn logic(self, a: bool, b: bool) -> bool {
        match self {
            BinOp::And => a && b,
            BinOp::Or => a || b,
            BinOp::Eq => a == b,
            BinOp::Ne => a != b,
            _ => false,
        }
    }

    /// Whether it is `+ - * / ^`.
    pub fn is_arith(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_callee_is_found_by_its_name_and_nothing_else_is() {
        for &c in CALLEES {
            assert_eq!(Callee::lookup(c.name()), Some(c));
        }
        assert_eq!(Callee::lookup("sgn"), None);
        for (alias, target) in ALIASES {
            assert!(Callee::lookup(alias).is_none());
            assert!(Callee::lookup(target).is_some(), "{target}");
        }
    }

    #[test]
    fn float_rounds_scalars_only() {
        let x = 0.1f64;
        assert_eq!(Func::Float.apply_scalar::<f32>(x, 0.0, 0.0), 0.1f32 as f64);
        assert_eq!(Func::Float.apply_scalar::<f64>(x, 0.0, 0.0), x);
        assert_eq!(Func::Float.apply(0.1f32, 0.0, 0.0), 0.1f32);
    }

    #[test]
    fn reductions_accumulate_and_finish() {
        let xs = [3.0f64, -4.0];
        let acc = |r: Reduction| xs.iter().fold(r.identity(), |a, &x| r.accumulate(a, x));
        assert_eq!(Reduction::Norm.finish(acc(Reduction::Norm), 2), 5.0);
        assert_eq!(Reduction::Mean.finish(acc(Reduction::Mean), 2), -0.5);
        assert_eq!(Reduction::MaxAbs.finish(acc(Reduction::MaxAbs), 2), 4.0);
    }
}
