//! Any optdsl rule as a burn optimizer (feature `burn`): burn's per-parameter `Optimizer` trait, made a module optimizer by `ModuleOptimizer`.
//!
//! [`BurnOptimizer`] takes a rule compiled with `optimizer!`, a built-in by
//! name ([`crate::builtin_rule`]) or a rule read from text ([`crate::Rules`]),
//! as a `Box<dyn DynRule>`, and implements [`burn::optim::Optimizer`], burn
//! 0.22's simple per-tensor optimizer trait; `ModuleOptimizer::from(opt)` (or
//! [`BurnOptimizer::init`]) makes it the optimizer of a whole module, with
//! burn's `to_record`/`load_record` (burnpack) checkpoints: each parameter's
//! optdsl [`State`] is a [`RecordState`].
//!
//! Burn hands an optimizer its parameter and gradient by value, with no access
//! to their buffers, so each step reads both with `into_data` and writes the
//! parameter back with `from_data`: one copy out and one copy in at most. On the
//! ndarray backend neither is a copy when burn holds the parameter's buffer
//! alone, as it does in `ModuleOptimizer::step` after `backward` (its
//! `into_data` moves the vector out, `from_data` adopts it; a test checks the
//! buffer's address stays the same from step to step), so the rule's fused loop
//! runs on the parameter's own memory; on another device they are the
//! transfers to and from the host.
//!
//! The learning rate burn passes to `step` is set as the rule's `lr`. burn's
//! `Optimizer::step` cannot return an error: a step that cannot be taken (a
//! parameter neither f32 nor f64, a loaded state of another rule or shape, a
//! learning rate out of the rule's range) leaves that parameter and its state
//! unchanged and is recorded in the [`ErrorLog`] of [`BurnOptimizer::errors`].
//!
//! ```
//! use burn::optim::GradientsParams;
//! use burn::nn::LinearConfig;
//! use burn::tensor::{Device, Tensor};
//! use optdsl::burn::BurnOptimizer;
//!
//! # #[allow(deprecated)]
//! let device = Device::ndarray().autodiff();
//! let layer = LinearConfig::new(3, 2).init(&device);
//! let opt = BurnOptimizer::new(optdsl::builtin_rule("adam").unwrap()).unwrap();
//! let errors = opt.errors();
//! let mut optim = opt.init();
//! let loss = layer.forward(Tensor::<2>::ones([4, 3], &device)).sum();
//! let grads = GradientsParams::from_grads(loss.backward(), &layer);
//! let before = layer.weight.val().into_data();
//! let layer = optim.step(0.01, layer, grads);
//! assert!(errors.take().is_none());
//! assert_ne!(layer.weight.val().into_data(), before);
//! ```

use crate::{DynRule, Error as RuleError, HyperValue, State};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource};
use burn::tensor::{DType, Device, Tensor, TensorData};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

/// What can go wrong in the burn adapter, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BurnAdapterError {
    /// The rule has no `lr` hyperparameter for burn's learning rate.
    NoLearningRate {
        /// The rule's name.
        rule: String,
        /// The hyperparameters it has.
        hypers: Vec<String>,
    },
    /// The rule reads `input` slices beside the gradient, which burn's
    /// optimizer step cannot supply.
    NeedsInputs {
        /// The rule's name.
        rule: String,
        /// The inputs it declares.
        inputs: Vec<String>,
    },
    /// A parameter (or its gradient) of an element type other than f32 and f64.
    DType {
        /// Its element type, as burn names it.
        dtype: String,
    },
    /// An error of the rule: a learning rate out of its range, a state of
    /// another rule, element type or length (e.g. a record loaded for another
    /// model).
    Rule(RuleError),
    /// burn could not read a tensor's data.
    Read(String),
}

impl fmt::Display for BurnAdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BurnAdapterError::NoLearningRate { rule, hypers } => write!(
                f,
                "{rule} has no `lr` hyperparameter for burn's learning rate (it has: {}); \
                 add `hyper lr = ...;` to the rule or use a rule that has one",
                hypers.join(", ")
            ),
            BurnAdapterError::NeedsInputs { rule, inputs } => write!(
                f,
                "{rule} reads input slices beside the gradient ({}), which burn's optimizer \
                 step does not supply; step such a rule on slices with `rule.step_with`",
                inputs.join(", ")
            ),
            BurnAdapterError::DType { dtype } => write!(
                f,
                "a parameter or gradient of element type {dtype}; the optdsl burn adapter steps \
                 f32 and f64 parameters: create the module with an f32 or f64 float type"
            ),
            BurnAdapterError::Rule(e) => write!(f, "{e}"),
            BurnAdapterError::Read(e) => write!(f, "burn could not read a tensor: {e}"),
        }
    }
}

impl std::error::Error for BurnAdapterError {}

impl From<RuleError> for BurnAdapterError {
    fn from(e: RuleError) -> Self {
        BurnAdapterError::Rule(e)
    }
}

/// The steps a [`BurnOptimizer`] could not take: shared by the optimizer and
/// its clones (the one inside a `ModuleOptimizer` included), read with
/// [`ErrorLog::take`].
#[derive(Debug, Clone, Default)]
pub struct ErrorLog(Arc<Mutex<LogInner>>);

#[derive(Debug, Default)]
struct LogInner {
    first: Option<BurnAdapterError>,
    count: u64,
}

impl ErrorLog {
    fn push(&self, e: BurnAdapterError) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.count += 1;
        log.first.get_or_insert(e);
    }

    /// The first error since the last `take`, if any, and clears the log.
    pub fn take(&self) -> Option<BurnAdapterError> {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.count = 0;
        log.first.take()
    }

    /// How many parameter steps were refused since the last `take`.
    pub fn count(&self) -> u64 {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).count
    }
}

/// Any optdsl rule as burn's per-parameter [`Optimizer`]; make it a module
/// optimizer with [`BurnOptimizer::init`] or `ModuleOptimizer::from`.
#[derive(Debug, Clone)]
pub struct BurnOptimizer {
    rule: Box<dyn DynRule>,
    log: ErrorLog,
}

impl BurnOptimizer {
    /// An optimizer stepping with `rule`; a typed error for a rule without an
    /// `lr` hyperparameter or with inputs beside the gradient.
    pub fn new(rule: Box<dyn DynRule>) -> Result<Self, BurnAdapterError> {
        let info = rule.info();
        if rule.hyper("lr").and_then(HyperValue::as_f64).is_none() {
            return Err(BurnAdapterError::NoLearningRate {
                rule: info.name.to_string(),
                hypers: info.hyper_names(),
            });
        }
        if !info.inputs.is_empty() {
            return Err(BurnAdapterError::NeedsInputs {
                rule: info.name.to_string(),
                inputs: info.inputs.iter().map(|s| s.to_string()).collect(),
            });
        }
        Ok(BurnOptimizer {
            rule,
            log: ErrorLog::default(),
        })
    }

    /// The rule, to read its hyperparameters.
    pub fn rule(&self) -> &dyn DynRule {
        self.rule.as_ref()
    }

    /// Sets one of the rule's hyperparameters other than `lr` (which burn
    /// passes to every step); a typed error for an unknown name or a value
    /// out of the rule's range.
    pub fn set_hyper(&mut self, name: &str, value: HyperValue) -> Result<(), BurnAdapterError> {
        Ok(self.rule.set_hyper(name, value)?)
    }

    /// The log of the steps this optimizer (and every clone of it) refused.
    pub fn errors(&self) -> ErrorLog {
        self.log.clone()
    }

    /// This optimizer over a whole module (`ModuleOptimizer::from(self)`).
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// One step of `w` in place; `state` is created on the first step and
    /// changed only by a step that is taken.
    fn step_data(
        &self,
        lr: LearningRate,
        w: &mut TensorData,
        g: &TensorData,
        state: &mut Option<ParamState>,
    ) -> Result<(), BurnAdapterError> {
        let with_lr;
        let rule: &dyn DynRule = if self.rule.hyper("lr") == Some(HyperValue::Num(lr)) {
            self.rule.as_ref()
        } else {
            let mut r = self.rule.clone();
            r.set_hyper("lr", HyperValue::Num(lr))?;
            with_lr = r;
            with_lr.as_ref()
        };
        if g.dtype() != w.dtype() {
            return Err(BurnAdapterError::DType {
                dtype: format!(
                    "{:?} (a gradient of a {:?} parameter)",
                    g.dtype(),
                    w.dtype()
                ),
            });
        }
        // Rules with shapes (Muon, Adafactor) size their state by the
        // parameter's shape; element-wise rules see its length.
        let shape = w.shape().to_vec();
        let read = |e: burn::tensor::DataError| BurnAdapterError::Read(format!("{e:?}"));
        match w.dtype() {
            DType::F32 => {
                let (w, g) = (
                    w.as_mut_slice::<f32>().map_err(read)?,
                    g.as_slice::<f32>().map_err(read)?,
                );
                match state {
                    Some(ParamState::F32(s)) => rule.step_f32(s, w, g, &[])?,
                    Some(ParamState::F64(_)) => return Err(state_dtype("f64", "f32")),
                    None => {
                        let mut s = rule.init_shaped_f32(&shape)?;
                        s.decompress();
                        rule.step_f32(&mut s, w, g, &[])?;
                        *state = Some(ParamState::F32(s));
                    }
                }
            }
            DType::F64 => {
                let (w, g) = (
                    w.as_mut_slice::<f64>().map_err(read)?,
                    g.as_slice::<f64>().map_err(read)?,
                );
                match state {
                    Some(ParamState::F64(s)) => rule.step_f64(s, w, g, &[])?,
                    Some(ParamState::F32(_)) => return Err(state_dtype("f32", "f64")),
                    None => {
                        let mut s = rule.init_shaped_f64(&shape)?;
                        s.decompress();
                        rule.step_f64(&mut s, w, g, &[])?;
                        *state = Some(ParamState::F64(s));
                    }
                }
            }
            other => {
                return Err(BurnAdapterError::DType {
                    dtype: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }
}

fn state_dtype(state: &str, param: &str) -> BurnAdapterError {
    BurnAdapterError::Rule(RuleError::StateMismatch(format!(
        "the state holds {state} values, the parameter is {param}"
    )))
}

/// One parameter's optdsl state, in its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamState {
    /// The state of an f32 parameter.
    F32(State<f32>),
    /// The state of an f64 parameter.
    F64(State<f64>),
}

/// The state burn keeps for one parameter of rank `D`: its optdsl [`State`],
/// recorded as the tensors `b0`, `b1`, ... (the rule's buffers, in
/// declaration order), the rule's name as bytes (`rule`) and the scalars `t`,
/// `len`, `f64`, `fingerprint`, `buffers`, `scalars` and `s0`, `s1`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct BurnState<const D: usize> {
    /// The optdsl state.
    pub state: ParamState,
    _rank: PhantomData<[(); D]>,
}

impl<const D: usize> BurnState<D> {
    fn new(state: ParamState) -> Self {
        BurnState {
            state,
            _rank: PhantomData,
        }
    }
}

impl<const D: usize> RecordState for BurnState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        fn put<F: crate::Float + burn::tensor::Element>(
            s: &State<F>,
            f64: bool,
            prefix: &str,
            out: &mut StateSink,
        ) {
            out.push_scalar(prefix, "f64", f64.into());
            let name = s.rule.as_bytes().to_vec();
            let n = name.len();
            out.push_tensor(prefix, "rule", TensorData::new(name, [n]));
            out.push_scalar(prefix, "t", s.t.into());
            out.push_scalar(prefix, "len", s.len.into());
            out.push_scalar(prefix, "fingerprint", s.fingerprint.into());
            out.push_scalar(prefix, "buffers", s.buffers.len().into());
            out.push_scalar(prefix, "scalars", s.scalars.len().into());
            for (i, x) in s.scalars.iter().enumerate() {
                out.push_scalar(prefix, &format!("s{i}"), (*x).into());
            }
            for (i, b) in s.buffers.iter().enumerate() {
                out.push_tensor(
                    prefix,
                    &format!("b{i}"),
                    // Its own length: a rule with shapes keeps buffers
                    // of other sizes (Adafactor's `r`, `c`).
                    TensorData::new(b.clone(), [b.len()]),
                );
            }
        }
        match &self.state {
            ParamState::F32(s) => put(s, false, prefix, out),
            ParamState::F64(s) => put(s, true, prefix, out),
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, _device: &Device) -> Option<Self> {
        let rule = src.take_tensor(prefix, "rule")?;
        let rule = String::from_utf8(rule.as_slice::<u8>().ok()?.to_vec()).ok()?;
        let t = u64::try_from(src.take_scalar(prefix, "t")?).ok()?;
        let len = usize::try_from(src.take_scalar(prefix, "len")?).ok()?;
        let fingerprint = u64::try_from(src.take_scalar(prefix, "fingerprint")?).ok()?;
        let nb = usize::try_from(src.take_scalar(prefix, "buffers")?).ok()?;
        let ns = usize::try_from(src.take_scalar(prefix, "scalars")?).ok()?;
        let scalars = (0..ns)
            .map(|i| f64::try_from(src.take_scalar(prefix, &format!("s{i}"))?).ok())
            .collect::<Option<Vec<f64>>>()?;
        let buffers = (0..nb)
            .map(|i| src.take_tensor(prefix, &format!("b{i}")))
            .collect::<Option<Vec<TensorData>>>()?;
        fn build<F: crate::Float + burn::tensor::Element>(
            rule: String,
            fingerprint: u64,
            t: u64,
            len: usize,
            scalars: Vec<f64>,
            buffers: &[TensorData],
        ) -> Option<State<F>> {
            let buffers = buffers
                .iter()
                .map(|b| b.as_slice::<F>().ok().map(<[F]>::to_vec))
                .collect::<Option<Vec<Vec<F>>>>()?;
            Some(State {
                rule,
                fingerprint,
                t,
                len,
                buffers,
                scalars,
                packed: Vec::new(),
                shape: Vec::new(),
                draws: None,
            })
        }
        let state = match bool::try_from(src.take_scalar(prefix, "f64")?).ok()? {
            true => ParamState::F64(build(rule, fingerprint, t, len, scalars, &buffers)?),
            false => ParamState::F32(build(rule, fingerprint, t, len, scalars, &buffers)?),
        };
        Some(BurnState::new(state))
    }
}

impl Optimizer for BurnOptimizer {
    type State<const D: usize> = BurnState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<BurnState<D>>,
    ) -> (Tensor<D>, Option<BurnState<D>>) {
        let device = tensor.device();
        let dtype = tensor.dtype();
        // Moved out (not copied) on ndarray when the buffer is burn's alone.
        let mut w = tensor.into_data();
        let g = grad.into_data();
        let mut state = state.map(|s| s.state);
        if let Err(e) = self.step_data(lr, &mut w, &g, &mut state) {
            self.log.push(e);
        }
        (
            Tensor::from_data(w, (&device, dtype)),
            state.map(BurnState::new),
        )
    }

    /// The state lives in host memory whatever the device.
    fn to_device<const D: usize>(state: BurnState<D>, _device: &Device) -> BurnState<D> {
        state
    }
}
