//! The [`Trainer`]: a network, its optimizer and the run's counters in one
//! struct, and the loop of an epoch (shuffle, batch, gradient, step,
//! schedule, evaluate).

use super::config::TrainConfig;
use super::eval::{evaluate, evaluate_rows};
use super::history::{divergence, EpochRecord, History};
use super::inputs::{Computed, RuleInput};
use super::observer::Observer;
use super::strategy::{Alone, DataParallel};
use crate::data::{Batches, DataFingerprint, Dataset};
use crate::error::{Error, Result};
use crate::net::{NetFloat, Network, NetworkSpec, Workspace};
use crate::optim::Optimizer;
use crate::rng::{Generator, TorchGenerator};
use crate::rule::{DynRule, HyperValue};
use crate::schedule::{Clock, Schedule, ScheduleState};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use std::time::Instant;

/// Everything a run is at: the network, the optimizer (with its state), the
/// epoch and step counters, the shuffling generator and the schedule, plus
/// the buffers the passes reuse. One struct, so that a checkpoint can save it.
///
/// The optimizer has two groups, every weight matrix then every bias (the
/// network's buffer order), each with its own copy of the rule, so biases can
/// take other hyperparameters ([`Trainer::set_bias_hyper`]); one `step_flat`
/// updates the whole network.
#[derive(Debug, Clone)]
pub struct Trainer<F: NetFloat> {
    pub(super) net: Network<F>,
    pub(super) opt: Optimizer<F>,
    pub(super) config: TrainConfig,
    pub(super) lr_hyper: Option<&'static str>,
    pub(super) base_lrs: Vec<f64>,
    pub(super) epoch: usize,
    pub(super) step: u64,
    pub(super) rng: ChaCha8Rng,
    pub(super) torch_rng: Option<TorchGenerator>,
    pub(super) history: Vec<EpochRecord>,
    pub(super) ws: Workspace<F>,
    pub(super) eval_ws: Workspace<F>,
    pub(super) shard: Option<Range<usize>>,
    pub(super) input: RuleInput,
    /// The parameters before the last step, the last input (`g_prev` or
    /// `h`), this step's gradient.
    pub(super) prev_params: Vec<F>,
    pub(super) input_buf: Vec<F>,
    pub(super) grad_copy: Vec<F>,
    /// `g2` and `n_mb` for rules that take them.
    pub(super) squares_buf: Vec<F>,
    pub(super) rows_buf: Vec<F>,
    /// The training set's fingerprint, recorded on the first epoch.
    pub(super) train_data: Option<DataFingerprint>,
    /// The training set checked against `train_data` last (its buffers'
    /// addresses and row count), so that it is hashed once, not every epoch.
    pub(super) checked_data: Option<(usize, usize, usize)>,
    /// The schedule's memory between epochs (see [`ScheduleState`]).
    pub(super) schedule_state: ScheduleState,
}

impl<F: NetFloat> Trainer<F> {
    /// A trainer for `net` with `rule` (its hyperparameters as set) under
    /// `config`: `rule` steps the weight matrices (each of shape `[units,
    /// fan_in]`) and the biases, except that a rule that needs a matrix
    /// (Muon) leaves the biases to AdamW with its defaults, as PyTorch's
    /// documentation of Muon recommends ([`Trainer::with_bias_rule`] chooses
    /// another).
    pub fn new(net: Network<F>, rule: Box<dyn DynRule>, config: TrainConfig) -> Result<Self> {
        Self::with_bias_rule(net, rule, None, config)
    }

    /// The rule the biases get when none is given: `rule` itself, or AdamW
    /// for a rule that needs a matrix.
    pub fn default_bias_rule(rule: &dyn DynRule) -> Result<Box<dyn DynRule>> {
        let needs_matrix = rule
            .info()
            .program()
            .tensor
            .as_ref()
            .is_some_and(|t| t.needs_matrix);
        if needs_matrix {
            crate::builtin::builtin_rule("adamw")
        } else {
            Ok(rule.clone_box())
        }
    }

    /// A trainer whose biases are stepped by `bias_rule` (`None`:
    /// [`Trainer::default_bias_rule`]) and whose weight matrices by `rule`.
    pub fn with_bias_rule(
        net: Network<F>,
        rule: Box<dyn DynRule>,
        bias_rule: Option<Box<dyn DynRule>>,
        config: TrainConfig,
    ) -> Result<Self> {
        if config.batch == 0 || config.epochs == 0 {
            return Err(Error::Invalid {
                what: "training settings".into(),
                reason: format!(
                    "{} epochs of batches of {}; both must be at least 1",
                    config.epochs, config.batch
                ),
            });
        }
        let lr_hyper = ["lr", "learning_rate"]
            .into_iter()
            .find(|n| rule.hyper(n).and_then(HyperValue::as_f64).is_some());
        if lr_hyper.is_none() && !config.schedule.is_constant() {
            return Err(Error::Invalid {
                what: "schedule".into(),
                reason: format!(
                    "{} has no `lr` or `learning_rate` hyperparameter to schedule; use the constant schedule",
                    rule.info().name
                ),
            });
        }
        let Some(input) = RuleInput::of(&rule.info().program().input_roles) else {
            return Err(Error::Invalid {
                what: "optimizer".into(),
                reason: format!(
                    "{} takes inputs {}; the trainer gives inputs by their declared role \
                     (`input h: curvature;`): `previous_grad` (the batch's gradient at the \
                     previous parameters) alone, or any of `curvature` (the Gauss-Newton \
                     diagonal of the batch loss), `grad_squares` (the batch's mean squared \
                     per-row gradient) and `batch_rows` (the batch's row count)",
                    rule.info().name,
                    RuleInput::describe(rule.info())
                ),
            });
        };
        let bias_rule = match bias_rule {
            Some(r) => r,
            None => Self::default_bias_rule(rule.as_ref())?,
        };
        if RuleInput::of(&bias_rule.info().program().input_roles) != Some(input.clone()) {
            return Err(Error::Invalid {
                what: "bias optimizer".into(),
                reason: format!(
                    "{} takes inputs {} and {} {}; the two groups must take the same inputs",
                    bias_rule.info().name,
                    RuleInput::describe(bias_rule.info()),
                    rule.info().name,
                    RuleInput::describe(rule.info())
                ),
            });
        }
        // The seed keys the rules' random draws too (`randn()`).
        let mut opt = Optimizer::new().with_seed(config.seed);
        opt.add_group_shaped(rule, &net.weight_shapes())?;
        let bias_shapes: Vec<Vec<usize>> = net.bias_lens().into_iter().map(|n| vec![n]).collect();
        opt.add_group_shaped(bias_rule, &bias_shapes)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(1);
        let torch_rng = match config.generator {
            Generator::ChaCha8 => None,
            Generator::Torch => {
                let mut gen = TorchGenerator::manual_seed(config.seed);
                gen.skip(Network::<F>::torch_init_draws(net.spec())?);
                Some(gen)
            }
        };
        let ws = Workspace::new(&net, config.batch);
        let eval_ws = Workspace::new(&net, config.eval_batch.max(1));
        let mut trainer = Trainer {
            net,
            opt,
            config,
            lr_hyper,
            base_lrs: vec![],
            epoch: 0,
            step: 0,
            rng,
            torch_rng,
            history: vec![],
            ws,
            eval_ws,
            shard: None,
            input,
            prev_params: Vec::new(),
            input_buf: Vec::new(),
            grad_copy: Vec::new(),
            squares_buf: Vec::new(),
            rows_buf: Vec::new(),
            train_data: None,
            checked_data: None,
            schedule_state: ScheduleState::default(),
        };
        trainer.read_base_lrs();
        Ok(trainer)
    }

    /// Refuses, before anything is allocated, a run of `rule` on a network
    /// of shape `spec` under `config` that needs more memory than is
    /// available ([`NetworkSpec::check_memory`]): the parameters, the
    /// gradients of the training and the evaluation passes, the rule's
    /// state buffers and the inputs the trainer keeps for it, and the
    /// activations of a batch and of an evaluation batch.
    pub fn check_memory(
        spec: &NetworkSpec,
        rule: &dyn DynRule,
        config: &TrainConfig,
    ) -> Result<()> {
        let info = rule.info();
        let inputs = match RuleInput::of(&info.program().input_roles) {
            Some(RuleInput::None) => 0,
            // The previous parameters, the input, a copy of the gradient.
            Some(RuleInput::GradPrev) => 3,
            // Each input, and a scratch buffer up to the largest weight matrix.
            _ => info.inputs.len() + 1,
        };
        let per_param = 3 + info.buffers.len() + inputs;
        spec.check_memory(
            F::DTYPE,
            std::mem::size_of::<F>(),
            per_param,
            config.batch,
            config.eval_batch,
        )
    }

    fn read_base_lrs(&mut self) {
        self.base_lrs = match self.lr_hyper {
            Some(name) => (0..2)
                .map(|g| {
                    let rule = self.opt.rule(g).expect("two groups");
                    rule.hyper(name).and_then(HyperValue::as_f64).unwrap_or(0.0)
                })
                .collect(),
            None => vec![],
        };
    }

    /// Sets a hyperparameter of the bias group only (e.g. `weight_decay` 0);
    /// the learning rate set here is where the biases' schedule starts.
    pub fn set_bias_hyper(&mut self, name: &str, value: HyperValue) -> Result<()> {
        self.opt.set_group_hyper(1, name, value)?;
        if Some(name) == self.lr_hyper {
            self.base_lrs[1] = value.as_f64().expect("set_hyper checked the type");
        }
        Ok(())
    }

    /// The network.
    pub fn network(&self) -> &Network<F> {
        &self.net
    }
    /// The optimizer.
    pub fn optimizer(&self) -> &Optimizer<F> {
        &self.opt
    }
    /// Keeps the optimizer's state as `c` says (8-bit or bfloat16 for
    /// tensors of at least `c.min_elements`), converting it now; a state
    /// loaded by [`Trainer::resume`] keeps the layout it was saved with.
    pub fn set_compression(&mut self, c: crate::Compression) {
        self.opt.set_compression(c);
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    /// Epochs finished.
    pub fn epoch(&self) -> usize {
        self.epoch
    }
    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }
    /// The records of the epochs finished.
    pub fn records(&self) -> &[EpochRecord] {
        &self.history
    }

    /// A warning if the run has diverged ([`divergence`]), saying what to
    /// change: the learning rate it started from, or for a rule without
    /// one, its hyperparameters.
    pub fn divergence(&self) -> Option<String> {
        let spec = self.net.spec();
        let info = self.opt.rule(0).ok()?.info();
        let change = match (self.lr_hyper, self.base_lrs.first()) {
            (Some(name), Some(&lr)) => format!(
                "lower the learning rate ({name}={} now; try a tenth of it or less) or let it \
                 decay with a schedule",
                HyperValue::Num(lr)
            ),
            _ => format!(
                "{} has no learning rate: try other values of its hyperparameters ({})",
                info.name,
                info.hyper_names().join(", ")
            ),
        };
        divergence(&self.history, spec.loss.chance(spec.outputs()))
            .map(|what| format!("training diverged: {what}; {change}"))
    }

    /// The run's history so far, described with `data`'s name.
    pub fn history(&self, data: &str) -> History {
        History {
            optimizer: self.opt.rule(0).expect("a group").info().name.to_string(),
            hypers: self
                .opt
                .state()
                .groups
                .into_iter()
                .map(|g| g.hypers)
                .collect(),
            network: self.net.spec().describe(),
            data: data.to_string(),
            dtype: F::DTYPE.to_string(),
            config: self.config.clone(),
            epochs: self.history.clone(),
        }
    }

    /// Trains the remaining epochs on `train`, measuring on `test` after each.
    pub fn fit(&mut self, train: &Dataset, test: &Dataset, obs: &mut dyn Observer) -> Result<()> {
        while self.epoch < self.config.epochs {
            self.run_epoch(train, test, obs)?;
        }
        Ok(())
    }

    fn check_data(&self, data: &Dataset) -> Result<()> {
        if !F::from_f64(f64::MAX).is_finite() {
            // An element type narrower than the data's f64 (f32).
            data.check_f32_range()?;
        }
        let spec = self.net.spec();
        if data.dim() != spec.inputs || data.classes() > spec.outputs() {
            return Err(Error::Data {
                source_name: data.name().to_string(),
                reason: format!(
                    "rows of {} values in {} classes, for a network of {} inputs and {} outputs",
                    data.dim(),
                    data.classes(),
                    spec.inputs,
                    spec.outputs()
                ),
            });
        }
        Ok(())
    }

    /// Records `train`'s fingerprint on the first epoch; later (and after a
    /// resume) refuses a training set with other rows than the recorded one.
    /// A set already checked is not hashed again.
    fn check_train_data(&mut self, train: &Dataset) -> Result<()> {
        let key = (
            train.inputs().as_ptr() as usize,
            train.labels().as_ptr() as usize,
            train.len(),
        );
        if self.checked_data == Some(key) {
            return Ok(());
        }
        let this = train.fingerprint();
        match &self.train_data {
            None => self.train_data = Some(this),
            Some(recorded) if recorded.same_data(&this) => {}
            Some(recorded) => {
                return Err(Error::Data {
                    source_name: train.name().to_string(),
                    reason: format!(
                        "this run was trained on {recorded}, not on these rows {this}; \
                         continue it on the data it started with (the same data source, seed, \
                         test fraction, label column and scale) or start a new run"
                    ),
                })
            }
        }
        self.checked_data = Some(key);
        Ok(())
    }

    /// The error for a non-finite `what` at the coming step: with the
    /// learning rate in force, or for a rule without one, naming the
    /// hyperparameters that shape its step.
    fn non_finite(&self, what: &str, lr: Option<f64>) -> Error {
        let (epoch, step) = (self.epoch + 1, self.step + 1);
        // A hyperparameter that is not a finite number, in either group.
        for (g, group) in ["weights", "biases"].into_iter().enumerate() {
            let Ok(rule) = self.opt.rule(g) else { continue };
            for h in rule.info().hypers {
                let value = rule.hyper(h.name).and_then(HyperValue::as_f64);
                if let Some(value) = value.filter(|v| !v.is_finite()) {
                    return Error::NonFiniteHyper {
                        what: what.into(),
                        epoch,
                        step,
                        group: group.into(),
                        hyper: h.name.to_string(),
                        value,
                    };
                }
            }
        }
        match lr {
            Some(lr) => Error::NonFinite {
                what: what.into(),
                epoch,
                step,
                lr,
            },
            None => {
                let rule = self.opt.rule(0).expect("a group");
                Error::NonFiniteStep {
                    what: what.into(),
                    epoch,
                    step,
                    rule: rule.info().name.to_string(),
                    hypers: rule
                        .info()
                        .hypers
                        .iter()
                        .map(|h| h.name.to_string())
                        .collect(),
                }
            }
        }
    }

    /// One epoch: shuffle, a step per mini-batch, then the test-set pass.
    pub fn run_epoch(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        obs: &mut dyn Observer,
    ) -> Result<EpochRecord> {
        self.run_epoch_with(train, test, obs, &mut Alone)
    }

    /// [`Trainer::run_epoch`] as one of the processes of a data-parallel run:
    /// every process shuffles alike and walks the same global mini-batches;
    /// `par` says which rows of each batch are this process's, combines the
    /// processes' gradients (each the gradient of its rows' summed loss over
    /// the global batch size) and applies the optimizer step; the epoch's
    /// metrics are summed over the processes, so every process records the
    /// same epoch. With [`Alone`] this is the single-process epoch.
    pub fn run_epoch_with(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        obs: &mut dyn Observer,
        par: &mut dyn DataParallel<F>,
    ) -> Result<EpochRecord> {
        self.check_data(train)?;
        self.check_data(test)?;
        self.check_train_data(train)?;
        let start = Instant::now();
        let batches = shuffled_batches(
            &mut self.rng,
            self.torch_rng.as_mut(),
            train.len(),
            self.config.batch,
        );
        let steps_per_epoch = batches.count() as u64;
        obs.epoch_start(self.epoch + 1, steps_per_epoch);
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        let mut lr = self.base_lrs.first().copied();
        for indices in batches.iter() {
            lr = self.apply_schedule(steps_per_epoch)?;
            let rows = self.ws.stage_rows(train, par.share(indices));
            let local = if matches!(self.input, RuleInput::Computed(_)) && par.alone() {
                let n = self.net.params().len();
                let curvature = self.input.computes(Computed::Curvature).then(|| {
                    self.input_buf.resize(n, F::ZERO);
                    &mut self.input_buf[..]
                });
                let squares = self.input.computes(Computed::SquaredGrads).then(|| {
                    self.squares_buf.resize(n, F::ZERO);
                    &mut self.squares_buf[..]
                });
                self.net
                    .staged_loss_grad_with(&mut self.ws, rows, curvature, squares)?
            } else {
                self.net
                    .staged_share_loss_and_grad(&mut self.ws, rows, indices.len())?
            };
            let loss = par.reduce(self.ws.grads(), local)? / indices.len() as f64;
            if !loss.is_finite() {
                return Err(self.non_finite("loss", lr));
            }
            correct += self.ws.staged_correct();
            if self.input == RuleInput::None {
                par.apply(&mut self.opt, self.net.params_mut(), self.ws.grads())?;
            } else {
                if !par.alone() {
                    return Err(Error::Invalid {
                        what: "data-parallel training".into(),
                        reason:
                            "rules that take an input (the vSGD rules) train on one process only"
                                .into(),
                    });
                }
                self.step_with_input(rows, indices.len())?;
            }
            self.step += 1;
            loss_sum += local;
            obs.step(loss);
        }
        let seconds = start.elapsed().as_secs_f64();
        let eval_start = Instant::now();
        let order: Vec<usize> = (0..test.len()).collect();
        let (test_loss, test_correct) =
            evaluate_rows(&self.net, &mut self.eval_ws, test, par.share(&order))?;
        let mut sums = [loss_sum, correct as f64, test_loss, test_correct as f64];
        par.sum(&mut sums)?;
        self.epoch += 1;
        let record = EpochRecord {
            epoch: self.epoch,
            steps: self.step,
            lr,
            train_loss: sums[0] / train.len() as f64,
            train_accuracy: sums[1] / train.len() as f64,
            test_loss: sums[2] / test.len() as f64,
            test_accuracy: sums[3] / test.len() as f64,
            seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
        };
        obs.epoch_end(&record);
        // Reduce-on-plateau watches the epoch's training loss (the trainer
        // has no validation set; its held-out set is the test set).
        self.schedule_state
            .observe(&self.config.schedule, record.train_loss);
        self.history.push(record.clone());
        Ok(record)
    }

    /// The row order the next epoch will train in on a set of `rows` rows
    /// (its mini-batches are consecutive runs of `config().batch` rows, the
    /// last possibly shorter), without moving the shuffling generator. For
    /// replaying a run elsewhere, e.g. in PyTorch.
    pub fn next_epoch_order(&self, rows: usize) -> Vec<usize> {
        let batches = shuffled_batches(
            &mut self.rng.clone(),
            self.torch_rng.clone().as_mut(),
            rows,
            self.config.batch,
        );
        batches.iter().flatten().copied().collect()
    }

    /// One step of a rule that takes an input: `h` (the curvature) and `g2`
    /// (the mean squared per-row gradient), computed with the gradient, and
    /// `n_mb`, the batch's row count; or `g_prev`, from a second backward
    /// pass over the staged rows at the previous parameters (`g` itself on
    /// the first step).
    fn step_with_input(&mut self, rows: usize, batch: usize) -> Result<()> {
        if let RuleInput::Computed(kinds) = &self.input {
            let n = F::from_f64(batch as f64);
            let len = self.net.params().len();
            if kinds.contains(&Computed::BatchRows)
                && (self.rows_buf.len() != len || self.rows_buf.first() != Some(&n))
            {
                self.rows_buf.clear();
                self.rows_buf.resize(len, n);
            }
            // `input_buf` and `squares_buf` hold this batch's curvature and
            // squared gradients, computed with the gradient.
            let slices: Vec<&[F]> = kinds
                .iter()
                .map(|kind| match kind {
                    Computed::Curvature => &self.input_buf[..],
                    Computed::SquaredGrads => &self.squares_buf[..],
                    Computed::BatchRows => &self.rows_buf[..],
                })
                .collect();
            return self
                .opt
                .step_flat_with(self.net.params_mut(), self.ws.grads(), &slices);
        }
        self.grad_copy.clear();
        self.grad_copy.extend_from_slice(self.ws.grads());
        if self.prev_params.is_empty() {
            // The first step: no previous parameters.
            self.input_buf = self.grad_copy.clone();
        } else {
            self.net.params_mut().swap_with_slice(&mut self.prev_params);
            let done = self
                .net
                .staged_share_loss_and_grad(&mut self.ws, rows, batch);
            self.net.params_mut().swap_with_slice(&mut self.prev_params);
            done?;
            self.input_buf.copy_from_slice(self.ws.grads());
        }
        self.prev_params.clear();
        self.prev_params.extend_from_slice(self.net.params());
        self.opt
            .step_flat_with(self.net.params_mut(), &self.grad_copy, &[&self.input_buf])
    }

    /// Sets each group's rate for the coming step; returns the first group's
    /// (`None` for a rule without a learning rate).
    fn apply_schedule(&mut self, steps_per_epoch: u64) -> Result<Option<f64>> {
        let Some(name) = self.lr_hyper else {
            return Ok(None);
        };
        if self.config.schedule.is_constant() {
            return Ok(Some(self.base_lrs[0]));
        }
        let clock = Clock {
            step: self.step,
            epoch: self.epoch,
            steps_per_epoch,
            total_steps: steps_per_epoch.saturating_mul(self.config.epochs as u64),
            cuts: self.schedule_state.cuts,
        };
        for g in 0..self.base_lrs.len() {
            let lr = self.config.schedule.value(self.base_lrs[g], clock);
            self.opt.set_group_hyper(g, name, HyperValue::Num(lr))?;
        }
        Ok(Some(self.config.schedule.value(self.base_lrs[0], clock)))
    }

    /// The mean loss and the accuracy of the network on `data`.
    pub fn evaluate(&mut self, data: &Dataset) -> Result<(f64, f64)> {
        self.check_data(data)?;
        evaluate(&self.net, &mut self.eval_ws, data)
    }
}

/// An epoch's batches: rows `0..rows` shuffled by `torch` if given (as
/// `torch.randperm(rows)`), else by `rng`, in batches of `batch`.
fn shuffled_batches(
    rng: &mut ChaCha8Rng,
    torch: Option<&mut TorchGenerator>,
    rows: usize,
    batch: usize,
) -> Batches {
    let mut batches = Batches::new(rows, batch);
    match torch {
        Some(gen) => batches.torch_shuffle(gen),
        None => batches.shuffle(rng),
    }
    batches
}
