//! A trainer's state in a checkpoint ([`TrainerState`]): saved, loaded and
//! restored, with the checks that a saved run is the one being resumed
//! (network, rule and hyperparameters, storage of the optimizer's state,
//! data, generator, schedule), and the sharding of the optimizer state
//! across processes.

use super::config::TrainConfig;
use super::history::EpochRecord;
use super::trainer::Trainer;
use crate::data::DataFingerprint;
use crate::error::{Error, Result};
use crate::net::{NetFloat, Network, NetworkSpec, Workspace};
use crate::optim::OptimizerState;
use crate::rng::{Generator, TorchGenerator};
use crate::rule::{HyperValue, State};
use crate::schedule::ScheduleState;
use optdsl_lang::Storage;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;

/// The optimizer's groups in words, for errors.
const GROUPS: [&str; 2] = ["weights", "biases"];

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

/// Saving and resuming: the state a checkpoint keeps, and the checks that
/// a saved run fits this one.
impl<F: NetFloat> Trainer<F> {
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
    /// with the same rule, a network of the same shape and the same storage
    /// of the optimizer's state ([`crate::Compression`]); otherwise a typed
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
        self.check_saved_storage(&optimizer)?;
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
    /// type, is damaged, or was made for another network or optimizer (its
    /// rule, hyperparameters, or the storage of its state: set the saved
    /// run's [`crate::Compression`] with [`Trainer::set_compression`] first)
    /// is an [`Error::Checkpoint`] saying what is wrong; the trainer and the
    /// file are left as they were.
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

    /// Refuses a saved run whose optimizer keeps a tensor's state in other
    /// storage than this trainer does (another format, minimum size for
    /// compression or rounding, [`crate::Compression`]): resumed, the run
    /// would go on in the saved storage, not in the one it asks for. `saved`
    /// is laid out as this trainer's optimizer (one shard of it when it
    /// keeps one); a saved state of another rule is left to
    /// [`Optimizer::load_state`](crate::Optimizer::load_state) to refuse.
    fn check_saved_storage(&self, saved: &OptimizerState<F>) -> Result<()> {
        for (g, (mine, theirs)) in self.opt.groups().iter().zip(&saved.groups).enumerate() {
            if theirs.rule != mine.rule().info().name {
                continue;
            }
            for (t, (a, b)) in mine.states().iter().zip(&theirs.states).enumerate() {
                if a.storage() == b.storage() && stochastic(a) == stochastic(b) {
                    continue;
                }
                let group = GROUPS.get(g).copied().unwrap_or("group");
                return Err(Error::StateMismatch(format!(
                    "it keeps the optimizer state of tensor {t} of the {group} ({} elements) \
                     in {}, this run would keep it in {}; give it the state format, minimum \
                     size and rounding it was saved with to resume it, or start a new run",
                    b.len,
                    describe_storage::<F>(b),
                    describe_storage::<F>(a)
                )));
            }
        }
        Ok(())
    }

    /// Refuses a saved run whose rule has other hyperparameters than this
    /// trainer's (as configured: the learning rates compared are where each
    /// group's schedule starts). A saved state of another rule is left to
    /// [`Trainer::restore`] to refuse.
    fn check_saved_hypers(&self, saved: &TrainerState<F>) -> Result<()> {
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
}

/// Whether a state rounds any bfloat16 buffer stochastically.
fn stochastic<F: NetFloat>(s: &State<F>) -> bool {
    s.packed.iter().flatten().any(|p| p.stochastic().is_some())
}

/// A state's storage in words, for errors: its buffers' storages in order,
/// each once (`f32` or `f64` for the element type, else the language's
/// name, bfloat16 with `rounded stochastically` where it is), joined by
/// "and".
fn describe_storage<F: NetFloat>(s: &State<F>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for st in s.storage() {
        let name = match st {
            Storage::Full => F::DTYPE,
            Storage::Bf16 if stochastic(s) => "bf16 rounded stochastically",
            other => other.name(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        names.push(F::DTYPE);
    }
    names.join(" and ")
}
