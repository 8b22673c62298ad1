//! Mini-batches: a seeded shuffle of the row order each epoch, cut into
//! batches, and the copy of a batch's rows into a network's workspace.

use super::Dataset;
use crate::net::{NetFloat, Workspace};
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

/// Copies the rows `indices` of `data` (inputs converted to `F`) and their
/// labels into `ws`'s staging buffers; returns the number of rows.
///
/// # Panics
/// If there are more indices than the workspace's capacity, or the data's
/// width is not the network's input width.
pub fn stage_rows<F: NetFloat>(ws: &mut Workspace<F>, data: &Dataset, indices: &[usize]) -> usize {
    let dim = data.dim();
    let inputs = F::inputs_of(data);
    let (x, y) = ws.stage(indices.len());
    assert_eq!(
        x.len(),
        indices.len() * dim,
        "data width differs from the network's"
    );
    for ((row, label), &i) in x.chunks_exact_mut(dim).zip(y.iter_mut()).zip(indices) {
        row.copy_from_slice(&inputs[i * dim..(i + 1) * dim]);
        *label = data.labels()[i];
    }
    indices.len()
}
