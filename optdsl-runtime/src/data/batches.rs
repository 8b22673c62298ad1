//! Mini-batches: a seeded shuffle of the row order each epoch, cut into
//! batches (a network's workspace copies a batch's rows in:
//! `net::Workspace::stage_rows`).

use crate::rng::TorchGenerator;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The row order of an epoch, cut into batches of `batch` rows (the last may be
/// shorter). `batch` = the whole set is gradient descent; 1 is SGD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batches {
    order: Vec<usize>,
    batch: usize,
}

impl Batches {
    /// Rows `0..rows` in order, in batches of `batch` (at least 1, at most `rows`).
    pub fn new(rows: usize, batch: usize) -> Self {
        Batches {
            order: (0..rows).collect(),
            batch: batch.clamp(1, rows.max(1)),
        }
    }

    /// Shuffles the order (Fisher-Yates, with `rng`).
    pub fn shuffle<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        self.order.shuffle(rng);
    }

    /// Reorders as `torch.randperm(rows)` drawn from `gen`.
    pub fn torch_shuffle(&mut self, gen: &mut TorchGenerator) {
        gen.randperm_into(&mut self.order);
    }

    /// The batch size.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The number of batches an epoch has.
    pub fn count(&self) -> usize {
        self.order.len().div_ceil(self.batch)
    }

    /// The batches of the current order, as row indices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch)
    }
}
