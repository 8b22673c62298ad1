//! Any optdsl rule as a [`candle_nn::Optimizer`] (feature `candle`): candle `Var`s stepped in place.
//!
//! [`CandleOptimizer`] takes a rule compiled with `optimizer!`, a built-in by
//! name ([`crate::builtin_rule`]) or a rule read from text ([`crate::Rules`]),
//! as a `Box<dyn DynRule>`, and keeps one optdsl [`State`] per `Var`. Each
//! step runs the rule's fused loop directly on the `Var`'s CPU storage (a
//! candle in-place op, [`candle_core::InplaceOp2`]): the parameters are not
//! copied, and the gradient is read where `backward` left it (copied once only
//! when it is not contiguous). The learning rate candle's `Optimizer` trait
//! reads and sets is the rule's `lr` hyperparameter.
//!
//! f32 and f64 `Var`s on [`Device::Cpu`] are supported; another device or
//! element type is a [`CandleAdapterError`] from [`CandleOptimizer::try_new`]
//! (wrapped in a `candle_core::Error` by the trait's `new`). The state is saved
//! and loaded as safetensors, candle's own format.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use candle_nn::Optimizer;
//! use optdsl::candle::CandleOptimizer;
//!
//! let w = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
//! let mut opt = CandleOptimizer::new(vec![w.clone()], optdsl::builtin_rule("adam").unwrap()).unwrap();
//! opt.set_learning_rate(0.1);
//! let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
//! opt.backward_step(&loss).unwrap();
//! assert_eq!(opt.steps(), 1);
//! assert!(w.as_tensor().to_vec1::<f32>().unwrap()[0] < 1.0);
//! ```

use crate::{DynRule, Error as RuleError, HyperValue, State};
use candle_core::backend::BackendStorage;
use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, Device, Layout, Tensor, Var};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// What can go wrong in the candle adapter, with what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum CandleAdapterError {
    /// The rule has no `lr` hyperparameter for candle's learning rate.
    NoLearningRate {
        /// The rule's name.
        rule: String,
        /// The hyperparameters it has.
        hypers: Vec<String>,
    },
    /// The rule reads `input` slices beside the gradient, which candle's
    /// `step(&grads)` cannot supply.
    NeedsInputs {
        /// The rule's name.
        rule: String,
        /// The inputs it declares.
        inputs: Vec<String>,
    },
    /// A `Var` on a device other than the CPU.
    Device {
        /// The `Var`'s index in the list given to `new`.
        var: usize,
        /// Its device, as candle names it.
        device: String,
    },
    /// A `Var` (or its gradient) of an element type other than f32 and f64.
    DType {
        /// The `Var`'s index.
        var: usize,
        /// Its element type.
        dtype: DType,
        /// What it should be.
        expected: &'static str,
    },
    /// A `Var` whose storage is not contiguous (a view), which cannot be
    /// stepped in place.
    NotContiguous {
        /// The `Var`'s index.
        var: usize,
    },
    /// A saved state that does not fit this optimizer's rule or `Var`s.
    StateFile {
        /// The file.
        path: String,
        /// What does not fit.
        reason: String,
    },
    /// An error of the rule: a hyperparameter out of range (from
    /// `set_learning_rate`), a state of another rule or length.
    Rule(RuleError),
    /// An error candle returned.
    Candle(candle_core::Error),
}

impl fmt::Display for CandleAdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CandleAdapterError::NoLearningRate { rule, hypers } => write!(
                f,
                "{rule} has no `lr` hyperparameter for candle's learning rate (it has: {}); \
                 add `hyper lr = ...;` to the rule or use a rule that has one",
                hypers.join(", ")
            ),
            CandleAdapterError::NeedsInputs { rule, inputs } => write!(
                f,
                "{rule} reads input slices beside the gradient ({}), which candle's step(&grads) \
                 does not supply; step such a rule on slices with `rule.step_with`",
                inputs.join(", ")
            ),
            CandleAdapterError::Device { var, device } => write!(
                f,
                "var {var} is on {device}; the optdsl candle adapter steps CPU vars only: \
                 create the vars on Device::Cpu"
            ),
            CandleAdapterError::DType {
                var,
                dtype,
                expected,
            } => write!(
                f,
                "var {var} has element type {dtype:?}; expected {expected}: create the vars as f32 or f64"
            ),
            CandleAdapterError::NotContiguous { var } => write!(
                f,
                "var {var} is not contiguous and cannot be stepped in place; create it from a contiguous tensor"
            ),
            CandleAdapterError::StateFile { path, reason } => write!(
                f,
                "optimizer state {path}: {reason}; load a state saved by this rule for these vars"
            ),
            CandleAdapterError::Rule(e) => write!(f, "{e}"),
            CandleAdapterError::Candle(e) => write!(f, "candle: {e}"),
        }
    }
}

impl std::error::Error for CandleAdapterError {}

impl From<candle_core::Error> for CandleAdapterError {
    fn from(e: candle_core::Error) -> Self {
        CandleAdapterError::Candle(e)
    }
}

impl From<RuleError> for CandleAdapterError {
    fn from(e: RuleError) -> Self {
        CandleAdapterError::Rule(e)
    }
}

impl From<CandleAdapterError> for candle_core::Error {
    fn from(e: CandleAdapterError) -> Self {
        match e {
            CandleAdapterError::Candle(e) => e,
            other => candle_core::Error::wrap(other),
        }
    }
}

/// `s` with every buffer in the element type: the adapter's state files hold
/// full-precision buffers, so a rule that declares compressed state runs
/// with full-precision state here.
fn full<F: crate::Float>(mut s: State<F>) -> State<F> {
    s.decompress();
    s
}

/// One `Var`'s optdsl state, in its element type.
#[derive(Debug, Clone, PartialEq)]
pub enum VarState {
    /// The state of an f32 `Var`.
    F32(State<f32>),
    /// The state of an f64 `Var`.
    F64(State<f64>),
}

impl VarState {
    fn t(&self) -> u64 {
        match self {
            VarState::F32(s) => s.t,
            VarState::F64(s) => s.t,
        }
    }
    fn check(&self, rule: &dyn DynRule, len: usize) -> Result<(), RuleError> {
        match self {
            VarState::F32(s) => s.check_step(rule.info(), len, len, &[]),
            VarState::F64(s) => s.check_step(rule.info(), len, len, &[]),
        }
    }
}

/// Any optdsl rule as a [`candle_nn::Optimizer`] over `Var`s: one optdsl
/// [`State`] per `Var`, each step done in place on the CPU storage.
///
/// The trait's `Config` is the rule, a `Box<dyn DynRule>`: `Box::new(MyRule::default())`
/// for an `optimizer!` rule, [`crate::builtin_rule`]`("adam")?` for a built-in,
/// `Box::new(rules.remove(0))` for a rule from [`crate::Rules::parse`].
#[derive(Debug)]
pub struct CandleOptimizer {
    rule: Box<dyn DynRule>,
    vars: Vec<Var>,
    states: Vec<VarState>,
    steps: u64,
    /// A learning rate the rule refused in `set_learning_rate` (which cannot
    /// return an error): returned by every step until a valid one is set.
    refused_lr: Option<RuleError>,
}

impl CandleOptimizer {
    /// An optimizer stepping `vars` with `rule`; a typed error for a rule
    /// without `lr` or with inputs, and for a `Var` off the CPU, of an element
    /// type other than f32/f64, or not contiguous.
    pub fn try_new(vars: Vec<Var>, rule: Box<dyn DynRule>) -> Result<Self, CandleAdapterError> {
        let info = rule.info();
        if rule.hyper("lr").and_then(HyperValue::as_f64).is_none() {
            return Err(CandleAdapterError::NoLearningRate {
                rule: info.name.to_string(),
                hypers: info.hyper_names(),
            });
        }
        if !info.inputs.is_empty() {
            return Err(CandleAdapterError::NeedsInputs {
                rule: info.name.to_string(),
                inputs: info.inputs.iter().map(|s| s.to_string()).collect(),
            });
        }
        let mut states = Vec::with_capacity(vars.len());
        for (i, var) in vars.iter().enumerate() {
            if !var.device().is_cpu() {
                return Err(CandleAdapterError::Device {
                    var: i,
                    device: format!("{:?}", var.device().location()),
                });
            }
            if !var.as_tensor().is_contiguous() {
                return Err(CandleAdapterError::NotContiguous { var: i });
            }
            // The `Var`'s shape, for rules with shapes (a linear layer's
            // weight is `[out, in]`); element-wise rules see it flat.
            let dims = var.shape().dims();
            states.push(match var.dtype() {
                DType::F32 => VarState::F32(full(
                    rule.init_shaped_f32(dims)
                        .map_err(CandleAdapterError::Rule)?,
                )),
                DType::F64 => VarState::F64(full(
                    rule.init_shaped_f64(dims)
                        .map_err(CandleAdapterError::Rule)?,
                )),
                dtype => {
                    return Err(CandleAdapterError::DType {
                        var: i,
                        dtype,
                        expected: "f32 or f64",
                    })
                }
            });
        }
        Ok(CandleOptimizer {
            rule,
            vars,
            states,
            steps: 0,
            refused_lr: None,
        })
    }

    /// The rule, to read its hyperparameters.
    pub fn rule(&self) -> &dyn DynRule {
        self.rule.as_ref()
    }

    /// Sets one of the rule's hyperparameters (`lr` included); a typed error
    /// for an unknown name or a value out of the rule's range.
    pub fn set_hyper(&mut self, name: &str, value: HyperValue) -> Result<(), CandleAdapterError> {
        self.rule.set_hyper(name, value)?;
        if name == "lr" {
            self.refused_lr = None;
        }
        Ok(())
    }

    /// The `Var`s stepped, in order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The optdsl state of each `Var`, in order.
    pub fn states(&self) -> &[VarState] {
        &self.states
    }

    /// Steps taken: the calls of `step` that succeeded (saved and loaded with the state).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One step of every `Var` that has a gradient in `grads`, in place; a
    /// typed error (and nothing changed) if a gradient does not fit its `Var`,
    /// a state does not fit its rule, or `set_learning_rate` was refused.
    pub fn try_step(&mut self, grads: &GradStore) -> Result<(), CandleAdapterError> {
        if let Some(e) = &self.refused_lr {
            return Err(CandleAdapterError::Rule(e.clone()));
        }
        // Check everything before changing anything.
        let mut work = Vec::with_capacity(self.vars.len());
        for (i, (var, state)) in self.vars.iter().zip(&self.states).enumerate() {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            if grad.dtype() != var.dtype() {
                return Err(CandleAdapterError::DType {
                    var: i,
                    dtype: grad.dtype(),
                    expected: "the var's own element type for its gradient",
                });
            }
            if !grad.device().is_cpu() {
                return Err(CandleAdapterError::Device {
                    var: i,
                    device: format!("{:?} (its gradient)", grad.device().location()),
                });
            }
            if grad.elem_count() != var.elem_count() {
                return Err(RuleError::LengthMismatch {
                    what: format!("the gradient of var {i}"),
                    expected: var.elem_count(),
                    got: grad.elem_count(),
                }
                .into());
            }
            state.check(self.rule.as_ref(), var.elem_count())?;
            // A contiguous gradient is read where it is; another is copied once.
            let grad = if grad.is_contiguous() {
                grad.clone()
            } else {
                grad.contiguous()?
            };
            work.push((i, grad));
        }
        for (i, grad) in work {
            let op = StepOp {
                rule: self.rule.as_ref(),
                state: RefCell::new(&mut self.states[i]),
                error: RefCell::new(None),
            };
            let done = self.vars[i].as_tensor().inplace_op2(&grad, &op);
            if let Some(e) = op.error.into_inner() {
                return Err(e);
            }
            done?;
        }
        self.steps += 1;
        Ok(())
    }

    /// Saves every `Var`'s state to a safetensors file at `path`: the rule's
    /// name and fingerprint, and per var `i` its step count `var{i}.t`, its
    /// scalar states `var{i}.scalars` and its buffers `var{i}.<name>` (shaped
    /// as the `Var`, in its element type).
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<(), CandleAdapterError> {
        let cpu = Device::Cpu;
        let info = self.rule.info();
        let mut map: HashMap<String, Tensor> = HashMap::new();
        map.insert(
            "optdsl.rule".into(),
            Tensor::from_slice(info.name.as_bytes(), info.name.len(), &cpu)?,
        );
        map.insert(
            "optdsl.fingerprint".into(),
            Tensor::from_slice(&[info.program().fingerprint as i64], 1, &cpu)?,
        );
        map.insert(
            "optdsl.steps".into(),
            Tensor::from_slice(&[self.steps as i64], 1, &cpu)?,
        );
        for (i, (var, state)) in self.vars.iter().zip(&self.states).enumerate() {
            let shape = var.shape();
            map.insert(
                format!("var{i}.t"),
                Tensor::from_slice(&[state.t() as i64], 1, &cpu)?,
            );
            let (scalars, buffers) = match state {
                // A buffer of the parameter's size takes its shape; a rule
                // with shapes keeps others (`r: [rows]`) flat.
                VarState::F32(s) => (
                    &s.scalars,
                    s.buffers
                        .iter()
                        .map(|b| match b.len() == shape.elem_count() {
                            true => Tensor::from_slice(b, shape, &cpu),
                            false => Tensor::from_slice(b, b.len(), &cpu),
                        })
                        .collect::<candle_core::Result<Vec<_>>>()?,
                ),
                VarState::F64(s) => (
                    &s.scalars,
                    s.buffers
                        .iter()
                        .map(|b| match b.len() == shape.elem_count() {
                            true => Tensor::from_slice(b, shape, &cpu),
                            false => Tensor::from_slice(b, b.len(), &cpu),
                        })
                        .collect::<candle_core::Result<Vec<_>>>()?,
                ),
            };
            map.insert(
                format!("var{i}.scalars"),
                Tensor::from_slice(scalars, scalars.len(), &cpu)?,
            );
            for (name, b) in info.buffers.iter().zip(buffers) {
                map.insert(format!("var{i}.{name}"), b);
            }
        }
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Loads a state saved by [`CandleOptimizer::save_state`]: a typed error,
    /// and nothing changed, if it was saved by another rule or for other
    /// `Var`s (count, shape or element type).
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<(), CandleAdapterError> {
        let path = path.as_ref();
        let fail = |reason: String| CandleAdapterError::StateFile {
            path: path.display().to_string(),
            reason,
        };
        let map = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |key: &str| {
            map.get(key)
                .ok_or_else(|| fail(format!("no tensor `{key}`")))
        };
        let info = self.rule.info();
        let name = get("optdsl.rule")?.to_vec1::<u8>()?;
        if name != info.name.as_bytes() {
            return Err(fail(format!(
                "it was saved by `{}`, this optimizer's rule is `{}`",
                String::from_utf8_lossy(&name),
                info.name
            )));
        }
        let fingerprint = get("optdsl.fingerprint")?.to_vec1::<i64>()?;
        if fingerprint != [info.program().fingerprint as i64] {
            return Err(fail(format!(
                "it was saved by another rule named `{}` (its program differs)",
                info.name
            )));
        }
        let steps = scalar_i64(get("optdsl.steps")?)?;
        let mut states = Vec::with_capacity(self.vars.len());
        for (i, var) in self.vars.iter().enumerate() {
            let t = scalar_i64(get(&format!("var{i}.t"))?)?;
            let scalars = get(&format!("var{i}.scalars"))?.to_vec1::<f64>()?;
            if scalars.len() != info.scalars.len() {
                return Err(fail(format!(
                    "var {i} has {} scalar states, the rule keeps {}",
                    scalars.len(),
                    info.scalars.len()
                )));
            }
            let mut buffers = Vec::with_capacity(info.buffers.len());
            for b in info.buffers {
                let tensor = get(&format!("var{i}.{b}"))?;
                if tensor.shape() != var.shape() || tensor.dtype() != var.dtype() {
                    return Err(fail(format!(
                        "buffer `{b}` of var {i} is {:?} {:?}, the var is {:?} {:?}",
                        tensor.dtype(),
                        tensor.shape(),
                        var.dtype(),
                        var.shape()
                    )));
                }
                buffers.push(tensor.flatten_all()?);
            }
            let len = var.elem_count();
            let state = match var.dtype() {
                DType::F32 => {
                    VarState::F32(loaded_state(self.rule.as_ref(), t, len, &buffers, scalars)?)
                }
                _ => VarState::F64(loaded_state(self.rule.as_ref(), t, len, &buffers, scalars)?),
            };
            states.push(state);
        }
        if map
            .keys()
            .any(|k| k.starts_with(&format!("var{}.", self.vars.len())))
        {
            return Err(fail(format!(
                "it holds more vars than the {} of this optimizer",
                self.vars.len()
            )));
        }
        self.states = states;
        self.steps = steps;
        Ok(())
    }
}

fn scalar_i64(t: &Tensor) -> Result<u64, CandleAdapterError> {
    match t.to_vec1::<i64>()?.as_slice() {
        [x] if *x >= 0 => Ok(*x as u64),
        other => Err(CandleAdapterError::Candle(candle_core::Error::msg(
            format!("expected one count, found {other:?}"),
        ))),
    }
}

fn loaded_state<F: crate::DynFloat + candle_core::WithDType>(
    rule: &dyn DynRule,
    t: u64,
    len: usize,
    buffers: &[Tensor],
    scalars: Vec<f64>,
) -> Result<State<F>, CandleAdapterError> {
    let mut state = F::dyn_init(rule, 0);
    state.decompress();
    state.t = t;
    state.len = len;
    state.scalars = scalars;
    state.buffers = buffers
        .iter()
        .map(|b| b.to_vec1::<F>())
        .collect::<candle_core::Result<_>>()?;
    state.check(rule.info(), len, len)?;
    Ok(state)
}

/// The in-place step of one `Var`: candle hands its CPU storage to
/// `cpu_fwd` under the `Var`'s write lock.
struct StepOp<'a> {
    rule: &'a dyn DynRule,
    state: RefCell<&'a mut VarState>,
    error: RefCell<Option<CandleAdapterError>>,
}

impl candle_core::InplaceOp2 for StepOp<'_> {
    fn name(&self) -> &'static str {
        "optdsl-step"
    }

    fn cpu_fwd(
        &self,
        w: &mut CpuStorage,
        wl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((w0, w1)), Some((g0, g1))) = (wl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            candle_core::bail!("optdsl-step: the var or its gradient is not contiguous");
        };
        let mut state = self.state.borrow_mut();
        let done = match (w, g, &mut **state) {
            (CpuStorage::F32(w), CpuStorage::F32(g), VarState::F32(s)) => {
                self.rule.step_f32(s, &mut w[w0..w1], &g[g0..g1], &[])
            }
            (CpuStorage::F64(w), CpuStorage::F64(g), VarState::F64(s)) => {
                self.rule.step_f64(s, &mut w[w0..w1], &g[g0..g1], &[])
            }
            (w, _, _) => {
                candle_core::bail!(
                    "optdsl-step: a {:?} var with a state of another element type",
                    w.dtype()
                )
            }
        };
        done.map_err(|e| {
            let message = e.to_string();
            *self.error.borrow_mut() = Some(CandleAdapterError::Rule(e));
            candle_core::Error::msg(message)
        })
    }
}

impl candle_nn::Optimizer for CandleOptimizer {
    type Config = Box<dyn DynRule>;

    fn new(vars: Vec<Var>, rule: Box<dyn DynRule>) -> candle_core::Result<Self> {
        Ok(Self::try_new(vars, rule)?)
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        Ok(self.try_step(grads)?)
    }

    /// The rule's `lr`.
    fn learning_rate(&self) -> f64 {
        self.rule
            .hyper("lr")
            .and_then(HyperValue::as_f64)
            .unwrap_or(f64::NAN)
    }

    /// Sets the rule's `lr`. A value the rule refuses (outside its declared
    /// range) cannot be returned here: every following step returns it as an
    /// error, and changes nothing, until a valid learning rate is set.
    fn set_learning_rate(&mut self, lr: f64) {
        self.refused_lr = self.rule.set_hyper("lr", HyperValue::Num(lr)).err();
    }
}
