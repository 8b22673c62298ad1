//! The trainer's extension point for data-parallel training
//! ([`DataParallel`]): which rows of a batch are this process's, how
//! gradients and metrics are combined and the step applied; [`Alone`] is
//! one process training alone (`crate::parallel::Replicas` is the
//! data-parallel one).

use crate::error::Result;
use crate::net::NetFloat;
use crate::optim::Optimizer;

/// How a [`Trainer`](super::Trainer) shares its steps with other processes: which rows of a
/// global batch are this process's, how gradients are combined, how the
/// optimizer step is applied, how metrics are summed.
pub trait DataParallel<F: NetFloat> {
    /// This process's rows of a global batch (or of the test set).
    fn share<'a>(&self, rows: &'a [usize]) -> &'a [usize];
    /// Combines this process's gradient `grads` (of its rows' summed loss
    /// over the global batch size) and its rows' summed `loss` with the
    /// other processes'; returns the global batch's summed loss.
    fn reduce(&mut self, grads: &[F], loss: f64) -> Result<f64>;
    /// Applies the step of the combined gradient to `params` with `opt`
    /// (`grads` is this process's gradient, as given to `reduce`).
    fn apply(&mut self, opt: &mut Optimizer<F>, params: &mut [F], grads: &[F]) -> Result<()>;
    /// Sums `values` element-wise over the processes, in place.
    fn sum(&mut self, values: &mut [f64]) -> Result<()>;
    /// Whether this is one process training alone.
    fn alone(&self) -> bool {
        true
    }
}

/// One process training alone: every row, its own gradient, one step.
#[derive(Debug, Default, Clone, Copy)]
pub struct Alone;

impl<F: NetFloat> DataParallel<F> for Alone {
    fn share<'a>(&self, rows: &'a [usize]) -> &'a [usize] {
        rows
    }
    fn reduce(&mut self, _grads: &[F], loss: f64) -> Result<f64> {
        Ok(loss)
    }
    fn apply(&mut self, opt: &mut Optimizer<F>, params: &mut [F], grads: &[F]) -> Result<()> {
        opt.step_flat(params, grads)
    }
    fn sum(&mut self, _values: &mut [f64]) -> Result<()> {
        Ok(())
    }
}
