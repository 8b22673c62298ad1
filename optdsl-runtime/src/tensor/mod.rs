//! The tensor executor: how rules with shapes run (Adafactor's row and
//! column factors, Muon's Newton-Schulz products). Such a rule is kept as
//! its checked body ([`optdsl_lang::shaped::TensorBody`]) and run statement
//! by statement over whole arrays: element-wise arithmetic with numpy's
//! broadcasting, reductions along an axis, and matrix products through the
//! `gemm` crate (symmetric ones, `x @ x^T`, computed by halves). Rules
//! compiled by `optimizer!` and rules read from text both run here, so they
//! give the same bits.
//!
//! A tensor of shape `[d0, d1, ..., dk]` is viewed as the matrix
//! `[d0, d1 * ... * dk]` (row-major, as PyTorch stores it); a vector `[n]`
//! has `rows = n`, `cols = 1` and `matrix = false`.

mod exec;
mod gemm;
mod pool;

pub use gemm::{gram, matmul, recording, Product};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::rule::{HyperValue, RuleInfo, State};
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
                .all(|(c, holds)| exec::shape_condition(c, self) == Some(*holds))
        });
        match (exists, t.shapes.get(i)) {
            (true, Some(s)) => s.len(self.rows, self.cols),
            (true, None) => self.numel,
            (false, _) => 0,
        }
    }
}

/// A fresh state of `info`'s rule with shapes for a tensor of `shape`.
pub fn init<F: Float>(info: &RuleInfo, hypers: &[HyperValue], shape: &[usize]) -> Result<State<F>> {
    let p = info.program();
    let (bufs, scalars) = exec::initial_values::<F>(p, hypers);
    State::new_shaped(info, shape, &bufs, &scalars)
}

/// One step of `info`'s rule with shapes; `hypers` in declaration order.
pub fn step<F: Float>(
    info: &RuleInfo,
    hypers: &[HyperValue],
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
) -> Result<()> {
    // The check refuses a vector for a rule that needs a matrix.
    state.check_step(info, w.len(), g.len(), inputs)?;
    let dims = Dims::from_shape(&state.shape, w.len())?;
    exec::run(info, hypers, dims, state, w, g, inputs)
}

/// `UpdateRule::apply` of a rule with shapes compiled by `optimizer!`: the
/// state and lengths were checked by `try_step`, and a `repeat` count is a
/// constant or a hyperparameter whose declared range bounds it, so the step
/// cannot fail; a failure here is a defect of optdsl and is reported as one.
#[doc(hidden)]
pub fn apply<F: Float>(
    info: &RuleInfo,
    hypers: &[HyperValue],
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
) {
    if let Err(e) = step(info, hypers, state, w, g, inputs) {
        panic!(
            "optdsl: a checked step of {} failed: {e}; please report this",
            info.name
        );
    }
}
