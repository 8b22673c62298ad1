//! What a run records: one [`EpochRecord`] an epoch, the [`History`] written
//! as CSV and JSON, and the divergence warning read from the records.

use super::config::TrainConfig;
use super::files::{check_writable_dir, io_error, write_atomically};
use crate::error::{Error, Result};
use crate::rule::HyperValue;
use crate::stats::median;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Steps taken so far, all epochs.
    pub steps: u64,
    /// The learning rate of the epoch's last step (first group); `None` for
    /// rules without an `lr` or `learning_rate` hyperparameter.
    pub lr: Option<f64>,
    /// The mean over the epoch's samples of the mini-batch loss each was
    /// trained with (the parameters moving during the epoch, as PyTorch
    /// scripts usually report it).
    pub train_loss: f64,
    /// The share of the epoch's samples the network got right in their
    /// mini-batch's forward pass.
    pub train_accuracy: f64,
    /// The mean loss on the test set after the epoch.
    pub test_loss: f64,
    /// The share of the test set right after the epoch.
    pub test_accuracy: f64,
    /// Seconds of the training pass (shuffle, forward, backward, steps).
    pub seconds: f64,
    /// Seconds of the test-set pass.
    pub eval_seconds: f64,
}

/// A run's description and its epochs, written as CSV or JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The rule's name.
    pub optimizer: String,
    /// The hyperparameters of each group (weights, biases) at the start.
    pub hypers: Vec<Vec<(String, HyperValue)>>,
    /// The network, e.g. `256-128-64-10 sigmoid/softmax cross_entropy`.
    pub network: String,
    /// The data's name.
    pub data: String,
    /// `f32` or `f64`.
    pub dtype: String,
    /// The training settings.
    pub config: TrainConfig,
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// The records as CSV, one line per epoch after a header.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "epoch,steps,lr,train_loss,train_accuracy,test_loss,test_accuracy,seconds,eval_seconds\n",
        );
        for r in &self.epochs {
            out += &format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.epoch,
                r.steps,
                r.lr.map_or(String::new(), |lr| lr.to_string()),
                r.train_loss,
                r.train_accuracy,
                r.test_loss,
                r.test_accuracy,
                r.seconds,
                r.eval_seconds
            );
        }
        out
    }

    /// Writes `STEM.csv` and `STEM.json` into `dir` (created if missing),
    /// each atomically ([`write_atomically`]): a failed write leaves the
    /// file as it was, never a truncated one.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        write_atomically(&dir.join(format!("{stem}.csv")), self.to_csv().as_bytes())?;
        let text = serde_json::to_string_pretty(self).expect("history serializes");
        write_atomically(&dir.join(format!("{stem}.json")), (text + "\n").as_bytes())
    }

    /// Checks, before training, that [`History::write`] can write `STEM.csv`
    /// and `STEM.json` into `dir`: creates the directory, writes, syncs and
    /// removes a probe file in it (a read-only or full disk fails here), and
    /// refuses a directory in the place of either file.
    pub fn check_writable(dir: &Path, stem: &str) -> Result<()> {
        check_writable_dir(dir)?;
        for ext in ["csv", "json"] {
            let path = dir.join(format!("{stem}.{ext}"));
            if path.is_dir() {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    message: "is a directory; the history is written to a file of that name".into(),
                });
            }
        }
        Ok(())
    }

    /// The median of the epochs' training-pass seconds.
    /// (Epochs restored from a checkpoint carry no timing and are left out.)
    pub fn median_epoch_seconds(&self) -> f64 {
        let timed: Vec<f64> = self
            .epochs
            .iter()
            .map(|r| r.seconds)
            .filter(|&s| s > 0.0)
            .collect();
        if timed.is_empty() {
            return 0.0;
        }
        median(timed)
    }
}

/// Whether the epochs of `records` show a diverged run, and how: the last
/// epoch's training loss more than 10 times `chance` (the loss of an output
/// that guesses every class alike, where training starts; see
/// [`crate::net::Loss::chance`]), or more than 10 times the first epoch's.
pub fn divergence(records: &[EpochRecord], chance: f64) -> Option<String> {
    let (first, last) = (records.first()?.train_loss, records.last()?.train_loss);
    if last > 10.0 * chance {
        Some(format!(
            "the training loss ended at {last:.4e}, {:.0} times the {chance:.3} of guessing \
             every class alike (test accuracy {:.4})",
            last / chance,
            records.last()?.test_accuracy
        ))
    } else if records.len() > 1 && last > 10.0 * first {
        Some(format!(
            "the training loss rose from {first:.4} in epoch 1 to {last:.4e} in epoch {}",
            records.len()
        ))
    } else {
        None
    }
}
