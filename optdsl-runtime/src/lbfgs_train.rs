//! Full-batch training with L-BFGS: one `LBFGS.step(closure)` per epoch,
//! the closure the network's mean loss over the whole training set and its
//! gradient, as a PyTorch script trains a small network with L-BFGS.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::lbfgs::{Lbfgs, LbfgsState};
use crate::net::{NetFloat, Network, Workspace};
use crate::train::{evaluate_rows, EpochRecord, History, Observer, TrainConfig};
use std::time::Instant;

/// A network trained full-batch by L-BFGS: the network, the options, the
/// L-BFGS state and the epochs so far.
#[derive(Debug, Clone)]
pub struct LbfgsTrainer<F: NetFloat> {
    net: Network<F>,
    lbfgs: Lbfgs,
    state: LbfgsState<F>,
    epoch: usize,
    evaluations: u64,
    history: Vec<EpochRecord>,
    config: TrainConfig,
}

impl<F: NetFloat> LbfgsTrainer<F> {
    /// A trainer of `net` with `lbfgs`'s options for `config.epochs` epochs
    /// (`config.batch` is ignored: every epoch sees the whole set).
    pub fn new(net: Network<F>, lbfgs: Lbfgs, config: TrainConfig) -> Result<Self> {
        if config.epochs == 0 {
            return Err(Error::Invalid {
                what: "training settings".into(),
                reason: "0 epochs; give at least 1".into(),
            });
        }
        let state = lbfgs.init(net.params().len());
        Ok(LbfgsTrainer {
            net,
            lbfgs,
            state,
            epoch: 0,
            evaluations: 0,
            history: Vec::new(),
            config,
        })
    }

    /// The network.
    pub fn network(&self) -> &Network<F> {
        &self.net
    }

    /// Epochs trained.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Objective evaluations (full-batch forward and backward passes) so far.
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// The L-BFGS state.
    pub fn state(&self) -> &LbfgsState<F> {
        &self.state
    }

    /// One epoch: one L-BFGS step over the whole of `train` (up to
    /// `max_eval` forward and backward passes), then the test-set pass.
    /// The record's training loss and accuracy are the network's at the
    /// step's start; its `steps` count the objective evaluations so far.
    pub fn run_epoch(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        obs: &mut dyn Observer,
    ) -> Result<EpochRecord> {
        if train.is_empty() || test.is_empty() {
            return Err(Error::Data {
                source_name: if train.is_empty() {
                    train.name().to_string()
                } else {
                    test.name().to_string()
                },
                reason: "no rows; L-BFGS trains and measures on non-empty sets".into(),
            });
        }
        if train.dim() != self.net.spec().widths()[0] || test.dim() != train.dim() {
            return Err(Error::Data {
                source_name: train.name().to_string(),
                reason: format!(
                    "{} inputs per row, the network takes {}",
                    train.dim(),
                    self.net.spec().widths()[0]
                ),
            });
        }
        let start = Instant::now();
        obs.epoch_start(self.epoch + 1, self.lbfgs.max_eval() as u64);
        let rows: Vec<usize> = (0..train.len()).collect();
        let mut ws = Workspace::new(&self.net, train.len());
        let staged = ws.stage_rows(train, &rows);
        let mut w = self.net.params().to_vec();
        let net = &mut self.net;
        let mut first_correct = None;
        let report = self.lbfgs.step(&mut self.state, &mut w, |w, g| {
            net.params_mut().copy_from_slice(w);
            let loss = net.staged_loss_and_grad(&mut ws, staged)?;
            g.copy_from_slice(ws.grads());
            first_correct.get_or_insert(ws.staged_correct());
            obs.step(loss);
            Ok(loss)
        })?;
        self.net.params_mut().copy_from_slice(&w);
        self.evaluations += report.evaluations as u64;
        let seconds = start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let mut eval_ws = Workspace::new(&self.net, self.config.eval_batch.max(1));
        let order: Vec<usize> = (0..test.len()).collect();
        let (test_loss, test_correct) = evaluate_rows(&self.net, &mut eval_ws, test, &order)?;
        self.epoch += 1;
        let record = EpochRecord {
            epoch: self.epoch,
            steps: self.evaluations,
            lr: Some(self.lbfgs.lr),
            train_loss: report.loss,
            train_accuracy: first_correct.unwrap_or(0) as f64 / train.len() as f64,
            test_loss: test_loss / test.len() as f64,
            test_accuracy: test_correct as f64 / test.len() as f64,
            seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        obs.epoch_end(&record);
        self.history.push(record.clone());
        Ok(record)
    }

    /// The run so far as a [`History`] (optimizer `Lbfgs`, its options as
    /// the one group's hyperparameters), described with `data`'s name.
    pub fn history(&self, data: &str) -> History {
        History {
            optimizer: "Lbfgs".into(),
            hypers: vec![crate::lbfgs::HYPERS
                .iter()
                .filter_map(|(name, _)| Some((name.to_string(), self.lbfgs.hyper(name)?)))
                .collect()],
            network: self.net.spec().describe(),
            data: data.to_string(),
            dtype: F::DTYPE.to_string(),
            config: self.config.clone(),
            epochs: self.history.clone(),
        }
    }
}
