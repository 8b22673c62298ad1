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

#[macro_use]
mod macros;
mod exec;
mod gemm;
mod ops;
mod pool;
mod traffic;

pub use gemm::{gram, matmul, recording, Product};
pub use traffic::{passes, Pass, Traffic};

use crate::error::Result;
use crate::float::Float;
use crate::hyper::HyperValue;
use crate::info::RuleInfo;
pub use crate::shape::Dims;
use crate::state::State;

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
