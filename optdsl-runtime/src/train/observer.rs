//! Progress callbacks of a run ([`Observer`]).

use super::history::EpochRecord;

/// Told what training does, to show progress.
pub trait Observer {
    /// An epoch (from 1) of `steps` steps begins.
    fn epoch_start(&mut self, _epoch: usize, _steps: u64) {}
    /// A step of the epoch finished with this mini-batch loss.
    fn step(&mut self, _loss: f64) {}
    /// An epoch finished.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
}

/// An observer that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {}
