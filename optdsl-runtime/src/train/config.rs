//! A training run's settings ([`TrainConfig`]).

use crate::rng::Generator;
use crate::schedule::LrSchedule;
use serde::{Deserialize, Serialize};

/// How to train: epochs, batch size, seed and learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Rows per mini-batch (the whole set: gradient descent; 1: SGD).
    pub batch: usize,
    /// Seeds the shuffling (ChaCha8, stream 1) and the optimizer's random
    /// draws ([`crate::Optimizer::with_seed`]); the network's init takes its
    /// own seed.
    pub seed: u64,
    /// The generator each epoch's order is drawn from: ChaCha8, or PyTorch's
    /// (`torch.randperm` after `torch.manual_seed(seed)` and the network's
    /// init, see [`Generator::Torch`]).
    #[serde(default, skip_serializing_if = "Generator::is_default")]
    pub generator: Generator,
    /// The learning rate over time, from the rule's `lr` (or `learning_rate`).
    pub schedule: LrSchedule,
    /// Rows per forward pass when measuring (no effect on the result).
    pub eval_batch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            batch: 32,
            seed: 0,
            generator: Generator::ChaCha8,
            schedule: LrSchedule::Constant,
            eval_batch: 512,
        }
    }
}
