//! Training a network by mini-batches: the trainer's state in one struct,
//! per-epoch metrics, history files, progress callbacks, and the timing of
//! the bare matrix products an epoch needs.

use crate::data::{Batches, DataFingerprint, Dataset};
use crate::error::{Error, Result};
use crate::net::NetworkSpec;
use crate::net::{NetFloat, Network, Workspace};
use crate::optim::{Optimizer, OptimizerState};
use crate::parallel::{Alone, DataParallel};
use crate::rng::{Generator, TorchGenerator};
use crate::rule::{DynRule, HyperValue};
use crate::schedule::{Clock, LrSchedule, Schedule, ScheduleState};
use crate::stats::median;
use optdsl_lang::role::Role;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

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

/// An [`Error::Io`] for `path`.
fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file of its own in
/// the same directory, synced, then renamed over `path`; on failure the
/// temporary is removed and `path` left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.tmp-{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        // As `File::create`: read-write for all, less the umask.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let write = || -> std::io::Result<()> {
        let mut tmp = builder.tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| io_error(path, e))
}

/// Creates `dir` if missing and checks that a file can be written in it:
/// writes 4 KiB to a probe file, syncs it (where a full disk shows) and
/// removes it.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let probe = || -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".optdsl-probe-")
            .tempfile_in(dir)?;
        tmp.write_all(&[0u8; 4096])?;
        tmp.as_file().sync_all()?;
        tmp.close()
    };
    probe().map_err(|e| Error::Io {
        path: dir.display().to_string(),
        message: format!("cannot write a file here: {e}"),
    })
}

/// A [`Trainer`]'s whole state, serializable (serde) for checkpoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: NetFloat")]
pub struct TrainerState<F> {
    /// The network's shape.
    pub spec: NetworkSpec,
    /// The network's parameters, in its buffer layout.
    pub params: Vec<F>,
    /// The optimizer: step count, groups' rules and hyperparameters, tensor states.
    pub optimizer: OptimizerState<F>,
    /// The training settings (schedule included).
    pub config: TrainConfig,
    /// The learning rate each group's schedule starts from (weights, biases).
    pub base_lrs: Vec<f64>,
    /// Epochs finished.
    pub epoch: usize,
    /// Steps taken.
    pub step: u64,
    /// The shuffling generator, where it stands.
    pub rng: ChaCha8Rng,
    /// For runs shuffled by [`Generator::Torch`]: that generator, where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_rng: Option<TorchGenerator>,
    /// The records of the epochs finished.
    pub records: Vec<EpochRecord>,
    /// For rules that take an input: the parameters before the last step and
    /// the last input given (see [`Trainer`]); empty otherwise.
    #[serde(default)]
    pub input_buffers: Vec<Vec<F>>,
    /// The training set the run was trained on (recorded on its first
    /// epoch; absent in checkpoints written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_data: Option<DataFingerprint>,
    /// What the schedule remembers between epochs (reduce-on-plateau's best
    /// loss, bad epochs and cuts); absent while it remembers nothing.
    #[serde(default, skip_serializing_if = "ScheduleState::is_start")]
    pub schedule_state: ScheduleState,
}

/// The kind a trainer checkpoint of element type `F` is saved as.
fn checkpoint_kind<F: NetFloat>() -> String {
    format!("trainer-{}", F::DTYPE)
}

impl<F: NetFloat> TrainerState<F> {
    /// Saves this state to a checkpoint file at `path` (atomically; see
    /// [`crate::checkpoint`]), timings left out of the records, so the file
    /// depends only on what was computed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut state = self.clone();
        for r in &mut state.records {
            r.seconds = 0.0;
            r.eval_seconds = 0.0;
        }
        crate::checkpoint::save(path, &checkpoint_kind::<F>(), &state)
    }

    /// Reads the checkpoint at `path` (an [`Error::Checkpoint`] if it is not
    /// a trainer checkpoint of this element type or is damaged).
    pub fn load(path: &Path) -> Result<Self> {
        crate::checkpoint::load(path, &checkpoint_kind::<F>())
    }

    /// Decodes the bytes of a checkpoint file read from `path` (e.g. read by
    /// one process and sent to the others), checked as [`TrainerState::load`]
    /// checks a file.
    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        crate::checkpoint::decode(path, &checkpoint_kind::<F>(), bytes)
    }
}

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
    net: Network<F>,
    opt: Optimizer<F>,
    config: TrainConfig,
    lr_hyper: Option<&'static str>,
    base_lrs: Vec<f64>,
    epoch: usize,
    step: u64,
    rng: ChaCha8Rng,
    torch_rng: Option<TorchGenerator>,
    history: Vec<EpochRecord>,
    ws: Workspace<F>,
    eval_ws: Workspace<F>,
    shard: Option<Range<usize>>,
    input: RuleInput,
    /// The parameters before the last step, the last input (`g_prev` or
    /// `h`), this step's gradient.
    prev_params: Vec<F>,
    input_buf: Vec<F>,
    grad_copy: Vec<F>,
    /// `g2` and `n_mb` for rules that take them.
    squares_buf: Vec<F>,
    rows_buf: Vec<F>,
    /// The training set's fingerprint, recorded on the first epoch.
    train_data: Option<DataFingerprint>,
    /// The training set checked against `train_data` last (its buffers'
    /// addresses and row count), so that it is hashed once, not every epoch.
    checked_data: Option<(usize, usize, usize)>,
    /// The schedule's memory between epochs (see [`ScheduleState`]).
    schedule_state: ScheduleState,
}

/// What a rule with an `input` is given by the trainer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleInput {
    /// No input.
    None,
    /// `g_prev`: the mini-batch's gradient at the previous parameters
    /// (a second backward pass over the same rows).
    GradPrev,
    /// Inputs computed with the gradient, in the rule's order.
    Computed(Vec<Computed>),
}

/// An input the trainer computes with the mini-batch's gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Computed {
    /// `h`: the Gauss-Newton diagonal of the mini-batch's mean loss, by
    /// bbprop ([`Network::staged_loss_grad_and_curvature`]).
    Curvature,
    /// `g2`: the mean over the mini-batch's rows of the squared per-row
    /// gradient ([`Network::staged_loss_grad_and_squares`]).
    SquaredGrads,
    /// `n_mb`: the mini-batch's row count, at every element.
    BatchRows,
}

impl RuleInput {
    /// The inputs the trainer gives a rule, by the roles its inputs declare
    /// (`input h: curvature`), or `None` if it cannot give them (an input
    /// without a role, or `previous_grad` beside others).
    fn of(roles: &[Option<Role>]) -> Option<RuleInput> {
        match roles {
            [] => Some(RuleInput::None),
            [Some(Role::PreviousGrad)] => Some(RuleInput::GradPrev),
            _ => roles
                .iter()
                .map(|role| match role {
                    Some(Role::Curvature) => Some(Computed::Curvature),
                    Some(Role::GradSquares) => Some(Computed::SquaredGrads),
                    Some(Role::BatchRows) => Some(Computed::BatchRows),
                    Some(Role::PreviousGrad) | None => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(RuleInput::Computed),
        }
    }

    /// `[h: curvature, g2]`: a rule's inputs with their roles, for messages.
    fn describe(info: &crate::RuleInfo) -> String {
        format!("[{}]", info.input_decls().join(", "))
    }

    /// Whether the inputs include `kind`.
    fn computes(&self, kind: Computed) -> bool {
        matches!(self, RuleInput::Computed(kinds) if kinds.contains(&kind))
    }
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

    /// Everything the run is at, to save: the network's shape and parameters,
    /// the optimizer's state (rules, hyperparameters, per-tensor buffers), the
    /// settings, the epoch and step counters, the shuffling generator (the
    /// schedule's position follows from the counters and its memory,
    /// [`ScheduleState`]) and the records so far.
    /// A trainer with a sharded optimizer ([`Trainer::shard_optimizer`])
    /// gives its shard's optimizer state only.
    pub fn state(&self) -> TrainerState<F> {
        TrainerState {
            spec: self.net.spec().clone(),
            params: self.net.params().to_vec(),
            optimizer: self.opt.state(),
            config: self.config.clone(),
            base_lrs: self.base_lrs.clone(),
            epoch: self.epoch,
            step: self.step,
            rng: self.rng.clone(),
            torch_rng: self.torch_rng.clone(),
            records: self.history.clone(),
            input_buffers: if self.prev_params.is_empty() {
                Vec::new()
            } else {
                vec![self.prev_params.clone(), self.input_buf.clone()]
            },
            train_data: self.train_data.clone(),
            schedule_state: self.schedule_state.clone(),
        }
    }

    /// Resumes from a saved [`TrainerState`]. The trainer must have been made
    /// with the same rule and a network of the same shape; otherwise a typed
    /// error, and nothing changes. Training on from here continues the saved
    /// run exactly (bit for bit).
    pub fn restore(&mut self, saved: TrainerState<F>) -> Result<()> {
        if &saved.spec != self.net.spec() {
            return Err(Error::StateMismatch(spec_difference(
                &saved.spec,
                self.net.spec(),
            )));
        }
        if saved.base_lrs.len() != self.base_lrs.len() {
            return Err(Error::StateMismatch(format!(
                "the saved run schedules {} learning rates, this trainer {}",
                saved.base_lrs.len(),
                self.base_lrs.len()
            )));
        }
        if (saved.config.generator == Generator::Torch) != saved.torch_rng.is_some() {
            return Err(Error::StateMismatch(format!(
                "the saved run shuffles with {} but {} a PyTorch generator state",
                saved.config.generator,
                if saved.torch_rng.is_some() {
                    "holds"
                } else {
                    "lacks"
                }
            )));
        }
        let net = Network::from_params(saved.spec, saved.params)?;
        let mut opt = self.opt.clone();
        let optimizer = match &self.shard {
            Some(range) if saved.optimizer.lens() == self.optimizer_lens() => {
                saved.optimizer.slice(range.clone())?
            }
            _ => saved.optimizer,
        };
        opt.load_state(optimizer)?;
        if saved.config.batch != self.ws.capacity() {
            self.ws = Workspace::new(&net, saved.config.batch);
        }
        self.net = net;
        self.opt = opt;
        self.config = saved.config;
        self.epoch = saved.epoch;
        self.step = saved.step;
        self.rng = saved.rng;
        self.torch_rng = saved.torch_rng;
        self.history = saved.records;
        self.base_lrs = saved.base_lrs;
        let mut buffers = saved.input_buffers.into_iter();
        self.prev_params = buffers.next().unwrap_or_default();
        self.input_buf = buffers.next().unwrap_or_default();
        self.train_data = saved.train_data;
        self.schedule_state = saved.schedule_state;
        self.checked_data = None;
        Ok(())
    }

    /// Saves the run to a checkpoint file at `path` (atomically; see
    /// [`crate::checkpoint`]). Timings are left out of the saved records, so
    /// the file depends only on what was computed: a run saved after 3 epochs
    /// and one saved after 2 and resumed to 3 write the same bytes.
    ///
    /// A trainer whose optimizer holds one shard ([`Trainer::shard_optimizer`])
    /// cannot save alone: [`crate::parallel::Replicas::save`] gathers the shards.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(range) = &self.shard {
            return Err(Error::Invalid {
                what: "checkpoint".into(),
                reason: format!(
                    "this trainer keeps the optimizer state of elements {}..{} only; \
                     save through parallel::Replicas::save, which gathers every shard",
                    range.start, range.end
                ),
            });
        }
        self.state().save(path)
    }

    /// Keeps the optimizer state of the elements `range` of the parameter
    /// buffer only, and steps only them (ZeRO stage 1: each process of a
    /// data-parallel run owns one slice; see [`crate::parallel`]). From here
    /// [`Trainer::state`] holds that slice of the optimizer state, and
    /// [`Trainer::restore`] cuts a whole saved state to it.
    pub fn shard_optimizer(&mut self, range: Range<usize>) -> Result<()> {
        if self.shard.is_some() {
            return Err(Error::Invalid {
                what: "optimizer shard".into(),
                reason: "the optimizer is sharded already".into(),
            });
        }
        self.opt = self.opt.slice(range.clone())?;
        self.shard = Some(range);
        Ok(())
    }

    /// The elements of the parameter buffer whose optimizer state this
    /// trainer keeps, if it keeps only a shard.
    pub fn shard(&self) -> Option<Range<usize>> {
        self.shard.clone()
    }

    /// The lengths of the whole optimizer's tensors, group by group (weights,
    /// biases): the layout a saved [`OptimizerState`] has.
    pub fn optimizer_lens(&self) -> Vec<Vec<usize>> {
        vec![self.net.weight_lens(), self.net.bias_lens()]
    }

    /// Resumes from the checkpoint at `path` and makes the run `epochs`
    /// epochs long in all. A file that is not a checkpoint of this element
    /// type, is damaged, or was made for another network or optimizer is an
    /// [`Error::Checkpoint`] saying what is wrong; the trainer and the file
    /// are left as they were.
    pub fn resume(&mut self, path: &Path, epochs: usize) -> Result<()> {
        let saved = TrainerState::load(path)?;
        self.resume_from(saved, path, epochs)
    }

    /// [`Trainer::resume`] from a state already read from the file at `path`
    /// (named in the errors).
    pub fn resume_from(
        &mut self,
        saved: TrainerState<F>,
        path: &Path,
        epochs: usize,
    ) -> Result<()> {
        let wrap = |e: Error| Error::Checkpoint {
            path: path.display().to_string(),
            reason: match e {
                Error::StateMismatch(m) => format!("does not fit this run: {m}"),
                other => other.to_string(),
            },
        };
        if saved.epoch >= epochs {
            return Err(wrap(Error::StateMismatch(format!(
                "it is at epoch {} already; ask for more than {} epochs",
                saved.epoch, saved.epoch
            ))));
        }
        if saved.config.batch != self.config.batch || saved.config.seed != self.config.seed {
            return Err(wrap(Error::StateMismatch(format!(
                "it was made with batch {} and seed {}, this run asks for batch {} and seed {}",
                saved.config.batch, saved.config.seed, self.config.batch, self.config.seed
            ))));
        }
        if saved.config.generator != self.config.generator {
            return Err(wrap(Error::StateMismatch(format!(
                "it was made with the {} generator, this run asks for the {} generator",
                saved.config.generator, self.config.generator
            ))));
        }
        let schedule = self.config.schedule.clone();
        if saved.config.schedule != schedule {
            return Err(wrap(Error::StateMismatch(format!(
                "it was made with schedule {}, this run asks for {schedule}",
                saved.config.schedule
            ))));
        }
        self.check_saved_hypers(&saved).map_err(wrap)?;
        self.restore(saved).map_err(wrap)?;
        self.config.epochs = epochs;
        Ok(())
    }

    /// Refuses a saved run whose rule has other hyperparameters than this
    /// trainer's (as configured: the learning rates compared are where each
    /// group's schedule starts). A saved state of another rule is left to
    /// [`Trainer::restore`] to refuse.
    fn check_saved_hypers(&self, saved: &TrainerState<F>) -> Result<()> {
        const GROUPS: [&str; 2] = ["weights", "biases"];
        for (g, theirs) in saved.optimizer.groups.iter().enumerate() {
            let Ok(mine) = self.opt.rule(g) else {
                return Ok(());
            };
            if theirs.rule != mine.info().name {
                return Ok(());
            }
            let group = GROUPS.get(g).copied().unwrap_or("group");
            for (name, value) in &theirs.hypers {
                let (saved_value, asked) = if Some(name.as_str()) == self.lr_hyper {
                    match (saved.base_lrs.get(g), self.base_lrs.get(g)) {
                        (Some(&a), Some(&b)) => (HyperValue::Num(a), HyperValue::Num(b)),
                        _ => continue,
                    }
                } else {
                    match mine.hyper(name) {
                        Some(asked) => (*value, asked),
                        None => continue,
                    }
                };
                if saved_value != asked {
                    return Err(Error::StateMismatch(format!(
                        "it was made with {name}={saved_value} for the {group}, this run asks \
                         for {name}={asked}; set {name}={saved_value} for the {group} to resume \
                         it, or start a new run"
                    )));
                }
            }
        }
        Ok(())
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

/// What differs between a saved network's shape and this run's: the
/// widths, activations or loss (their descriptions), else each layer's
/// initialization.
fn spec_difference(saved: &NetworkSpec, mine: &NetworkSpec) -> String {
    let (a, b) = (saved.describe(), mine.describe());
    if a != b {
        return format!("the saved network is {a}, this one {b}");
    }
    let init = |spec: &NetworkSpec| -> Vec<String> {
        spec.layers
            .iter()
            .map(|l| {
                l.init
                    .map_or_else(|| "auto".to_string(), |i| i.name().to_string())
            })
            .collect()
    };
    let (ia, ib) = (init(saved), init(mine));
    if ia != ib {
        let one = |v: &[String]| v.iter().all(|x| *x == v[0]).then(|| v[0].clone());
        return match (one(&ia), one(&ib)) {
            (Some(x), Some(y)) => format!(
                "the network {a} was saved with init {x}, this run asks for init {y}; give \
                 it init {x} to resume it"
            ),
            _ => format!(
                "the network {a} was saved with the layers' inits {}, this run asks for {}",
                ia.join(", "),
                ib.join(", ")
            ),
        };
    }
    format!("the saved network {a} differs from this one: {saved:?}, this one {mine:?}")
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

/// The mean loss and the accuracy of `net` on `data`, in batches of `ws`'s capacity.
pub fn evaluate<F: NetFloat>(
    net: &Network<F>,
    ws: &mut Workspace<F>,
    data: &Dataset,
) -> Result<(f64, f64)> {
    let order: Vec<usize> = (0..data.len()).collect();
    let (loss, correct) = evaluate_rows(net, ws, data, &order)?;
    let n = data.len() as f64;
    Ok((loss / n, correct as f64 / n))
}

/// The summed loss and the number right of `net` on the rows `rows` of
/// `data`, in batches of `ws`'s capacity.
pub fn evaluate_rows<F: NetFloat>(
    net: &Network<F>,
    ws: &mut Workspace<F>,
    data: &Dataset,
    rows: &[usize],
) -> Result<(f64, usize)> {
    let (mut loss, mut correct) = (0.0, 0);
    for chunk in rows.chunks(ws.capacity()) {
        let staged = ws.stage_rows(data, chunk);
        let (l, c) = net.staged_loss(ws, staged)?;
        loss += l;
        correct += c;
    }
    Ok((loss, correct))
}

/// Seconds the bare matrix products of one training epoch take: the forward
/// and backward `general_mat_mul` calls of every mini-batch of `rows` rows in
/// batches of `batch` (same shapes, same count, same buffers), without
/// activations, loss, bias terms, optimizer or shuffling. The median of
/// `repeats` epochs, after one warm-up epoch.
pub fn matmul_epoch_seconds<F: NetFloat>(
    net: &Network<F>,
    data: &Dataset,
    batch: usize,
    repeats: usize,
) -> Result<f64> {
    let mut ws = Workspace::new(net, batch);
    let rows = data.len();
    let batches = Batches::new(rows, batch);
    // Real rows and one real pass, so the buffers hold realistic values.
    let first: Vec<usize> = batches.iter().next().expect("a batch").to_vec();
    let staged = ws.stage_rows(data, &first);
    net.staged_loss_and_grad(&mut ws, staged)?;
    let mut times = Vec::with_capacity(repeats);
    for rep in 0..=repeats {
        let start = Instant::now();
        for chunk in batches.iter() {
            net.staged_matmuls_only(&mut ws, chunk.len())?;
        }
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(median(times))
}
