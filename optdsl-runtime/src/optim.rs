//! `Optimizer`: parameter groups of tensors, each group with its own rule and
//! hyperparameters, each tensor with its own state; counts steps and checks
//! every length before it changes anything.

use crate::error::{Error, Result};
use crate::rule::{DrawSeed, DynFloat, DynRule, HyperValue, State};
use optdsl_lang::StateFormat;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// One parameter group: a rule (with its hyperparameters) and the states of the
/// tensors it updates.
#[derive(Debug, Clone)]
pub struct ParamGroup<F: DynFloat> {
    rule: Box<dyn DynRule>,
    states: Vec<State<F>>,
}

impl<F: DynFloat> ParamGroup<F> {
    /// The group's rule.
    pub fn rule(&self) -> &dyn DynRule {
        self.rule.as_ref()
    }
    /// The states of the group's tensors, in order.
    pub fn states(&self) -> &[State<F>] {
        &self.states
    }
    /// The lengths of the group's tensors.
    pub fn lens(&self) -> Vec<usize> {
        self.states.iter().map(|s| s.len).collect()
    }
}

/// A set of parameter tensors in groups, stepped together.
///
/// Tensors are numbered across groups in the order they were added; `step`
/// takes one parameter slice and one gradient slice per tensor in that order,
/// `step_flat` one buffer holding all tensors back to back (a network's layout).
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::{builtin_rule, Optimizer, HyperValue};
/// let mut opt = Optimizer::<f32>::new();
/// // weights with weight decay, biases without (two groups, as in PyTorch)
/// let mut sgd = builtin_rule("sgd").unwrap();
/// sgd.set_hyper("lr", HyperValue::Num(0.1)).unwrap();
/// let mut no_decay = sgd.clone();
/// sgd.set_hyper("weight_decay", HyperValue::Num(0.01)).unwrap();
/// opt.add_group(sgd, &[4]);
/// opt.add_group(no_decay, &[2]);
/// let mut params = vec![1.0f32; 6];
/// let grads = vec![0.5f32; 6];
/// opt.step_flat(&mut params, &grads).unwrap();
/// assert_eq!(opt.steps(), 1);
/// assert!(opt.step_flat(&mut params, &grads[..5]).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Optimizer<F: DynFloat> {
    groups: Vec<ParamGroup<F>>,
    steps: u64,
    guard: Option<FiniteGuard>,
    compression: Compression,
    seed: u64,
}

/// How compressed an [`Optimizer`] keeps its tensors' state.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::{builtin_rule, Optimizer, StateFormat};
/// let mut opt = Optimizer::<f32>::new().with_state_format(StateFormat::Q8);
/// opt.add_group(builtin_rule("adam").unwrap(), &[10_000, 100]);
/// let states = opt.groups()[0].states();
/// // Adam's moments in 8 bits (the second on the unsigned map) for the
/// // large tensor, with a maximum per block of 256; AMSGrad's buffer, with
/// // `amsgrad` false, is not stored. The small tensor keeps f32 (all three
/// // buffers), as bitsandbytes does under 4,096 elements.
/// assert_eq!(states[0].bytes_per_element(), 2.0 * (1.0 + 4.0 / 256.0));
/// assert_eq!(states[1].bytes_per_element(), 3.0 * 4.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The format of every buffer (a rule's own declarations win).
    pub format: StateFormat,
    /// Tensors with fewer elements keep the element type (bitsandbytes'
    /// `min_8bit_size`, 4,096).
    pub min_elements: usize,
    /// `Some(seed)`: round to bfloat16 stochastically (torchao's
    /// `bf16_stochastic_round`), each tensor's bits keyed by the seed and
    /// the tensor's number.
    pub stochastic_bf16: Option<u64>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            format: StateFormat::Full,
            min_elements: 4096,
            stochastic_bf16: None,
        }
    }
}

/// What [`Optimizer::skip_non_finite`] keeps: how many steps were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FiniteGuard {
    max_consecutive: u64,
    skipped: u64,
    consecutive: u64,
}

impl<F: DynFloat> Default for Optimizer<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// An optimizer's state in a form that can be saved and loaded (like PyTorch's
/// `state_dict`): the step count, each group's rule and hyperparameters, each
/// tensor's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: DynFloat")]
pub struct OptimizerState<F> {
    /// Steps taken.
    pub steps: u64,
    /// Per group: the rule's name, its hyperparameters, and its tensors' states.
    pub groups: Vec<GroupState<F>>,
    /// The seed of the rules' random draws ([`Optimizer::with_seed`];
    /// `None` in states saved before draws: loading one keeps the
    /// optimizer's seed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// One group of an [`OptimizerState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: DynFloat")]
pub struct GroupState<F> {
    /// The rule's name.
    pub rule: String,
    /// The hyperparameters, by name.
    pub hypers: Vec<(String, HyperValue)>,
    /// The states of the group's tensors.
    pub states: Vec<State<F>>,
}

impl<F: DynFloat> Optimizer<F> {
    /// An optimizer with no parameters yet.
    pub fn new() -> Self {
        Optimizer {
            groups: Vec::new(),
            steps: 0,
            guard: None,
            compression: Compression::default(),
            seed: 0,
        }
    }

    /// This optimizer, its rules' random draws (`rand()`, `randn()`) seeded
    /// with `seed` (see [`Optimizer::set_seed`]).
    ///
    /// ```
    /// # extern crate optdsl_runtime as optdsl;
    /// use optdsl::{builtin_rule, Optimizer};
    /// let run = |seed: u64| {
    ///     let mut opt = Optimizer::<f32>::with_rule(builtin_rule("sgld").unwrap(), &[4])
    ///         .with_seed(seed);
    ///     let mut w = vec![0.0f32; 4];
    ///     opt.step_flat(&mut w, &[0.0; 4]).unwrap();
    ///     w
    /// };
    /// assert_eq!(run(7), run(7));
    /// assert_ne!(run(7), run(8));
    /// ```
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.set_seed(seed);
        self
    }

    /// Seeds the rules' random draws: element `i` of tensor `k` (tensors
    /// numbered across groups in the order they were added) draws at step
    /// `t` a number that depends on `(seed, k, i, t)` and the draw's place
    /// in the rule only (Philox4x32-10, `optdsl_lang::random`), so the same
    /// on any number of threads, at every SIMD level, compiled or
    /// interpreted, and after [`Optimizer::load_state`] of a saved state
    /// (which keeps the seed). The default seed is 0. Draws already taken
    /// are not redone; the steps from now on draw with `seed`.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        for s in self.groups.iter_mut().flat_map(|g| g.states.iter_mut()) {
            if let Some(d) = &mut s.draws {
                d.seed = seed;
            }
        }
    }

    /// The seed of the rules' random draws ([`Optimizer::set_seed`]).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// This optimizer, keeping its state in `format` (see
    /// [`Optimizer::set_compression`]).
    pub fn with_state_format(mut self, format: StateFormat) -> Self {
        self.set_compression(Compression {
            format,
            ..self.compression
        });
        self
    }

    /// Keeps every tensor's state as `c` says, converting the states there
    /// are (their values rounded or quantized) and those of groups added
    /// later.
    pub fn set_compression(&mut self, c: Compression) {
        self.compression = c;
        let mut index = 0u64;
        for g in &mut self.groups {
            for s in &mut g.states {
                apply_compression(&c, g.rule.as_ref(), s, index);
                index += 1;
            }
        }
    }

    /// How the state is kept.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// An optimizer with one group: `rule` over tensors of the given lengths.
    pub fn with_rule(rule: Box<dyn DynRule>, lens: &[usize]) -> Self {
        let mut opt = Self::new();
        opt.add_group(rule, lens);
        opt
    }

    /// Adds a group: `rule` over tensors of the given lengths; returns its index.
    pub fn add_group(&mut self, rule: Box<dyn DynRule>, lens: &[usize]) -> usize {
        let mut index = self.tensor_count() as u64;
        let states = lens
            .iter()
            .map(|&n| {
                let mut s = F::dyn_init(rule.as_ref(), n);
                s.draws = Some(DrawSeed {
                    seed: self.seed,
                    tensor: index,
                    offset: 0,
                });
                apply_compression(&self.compression, rule.as_ref(), &mut s, index);
                index += 1;
                s
            })
            .collect();
        self.groups.push(ParamGroup { rule, states });
        self.groups.len() - 1
    }

    /// Adds a group: `rule` over tensors of the given shapes (row-major, as
    /// PyTorch stores them: a linear layer's weight is `[out, in]`); returns
    /// its index. Rules with shapes size their state by each shape; a shape
    /// the rule cannot take (a vector given to Muon) is a typed error naming
    /// the tensor, and the optimizer is left as it was.
    pub fn add_group_shaped(
        &mut self,
        rule: Box<dyn DynRule>,
        shapes: &[Vec<usize>],
    ) -> Result<usize> {
        let first = self.tensor_count() as u64;
        let group = self.groups.len();
        let mut states = Vec::with_capacity(shapes.len());
        for (index, (ti, shape)) in (first..).zip(shapes.iter().enumerate()) {
            let mut s = F::dyn_init_shaped(rule.as_ref(), shape).map_err(|e| match e {
                Error::NeedsMatrix { rule, shape, .. } => Error::NeedsMatrix {
                    rule,
                    what: format!("tensor {ti} of group {group}"),
                    shape,
                },
                other => other,
            })?;
            s.draws = Some(DrawSeed {
                seed: self.seed,
                tensor: index,
                offset: 0,
            });
            apply_compression(&self.compression, rule.as_ref(), &mut s, index);
            states.push(s);
        }
        self.groups.push(ParamGroup { rule, states });
        Ok(group)
    }

    /// The groups, in order.
    pub fn groups(&self) -> &[ParamGroup<F>] {
        &self.groups
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The number of tensors across all groups.
    pub fn tensor_count(&self) -> usize {
        self.groups.iter().map(|g| g.states.len()).sum()
    }

    /// The total number of parameters.
    pub fn param_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| g.states.iter())
            .map(|s| s.len)
            .sum()
    }

    /// The rule of group `group`, to read its hyperparameters.
    pub fn rule(&self, group: usize) -> Result<&dyn DynRule> {
        self.groups
            .get(group)
            .map(|g| g.rule.as_ref())
            .ok_or(Error::NoSuchIndex {
                what: "group",
                index: group,
                count: self.groups.len(),
            })
    }

    /// Sets hyperparameter `name` in every group (a schedule's learning rate).
    pub fn set_hyper(&mut self, name: &str, value: HyperValue) -> Result<()> {
        // All groups or none: set on copies, keep them only if every group
        // takes the value.
        let mut rules: Vec<Box<dyn DynRule>> = self.groups.iter().map(|g| g.rule.clone()).collect();
        for r in &mut rules {
            r.set_hyper(name, value)?;
        }
        for (g, r) in self.groups.iter_mut().zip(rules) {
            g.rule = r;
        }
        Ok(())
    }

    /// Sets hyperparameter `name` in group `group` only.
    pub fn set_group_hyper(&mut self, group: usize, name: &str, value: HyperValue) -> Result<()> {
        let count = self.groups.len();
        self.groups
            .get_mut(group)
            .ok_or(Error::NoSuchIndex {
                what: "group",
                index: group,
                count,
            })?
            .rule
            .set_hyper(name, value)
    }

    /// Skips steps whose gradient holds a NaN or an infinity instead of taking
    /// them (optax's `apply_if_finite`): such a step changes neither the
    /// parameters nor the state nor the step count, and is counted in
    /// [`Optimizer::skipped_steps`]. After `max_consecutive` skips in a row the
    /// next one is an error ([`Error::NonFiniteGradient`]). Without this,
    /// a non-finite gradient is stepped as PyTorch steps it and spreads into
    /// the parameters.
    ///
    /// ```
    /// # extern crate optdsl_runtime as optdsl;
    /// use optdsl::{builtin_rule, Optimizer};
    /// let mut opt = Optimizer::<f32>::with_rule(builtin_rule("sgd").unwrap(), &[2]);
    /// opt.skip_non_finite(3);
    /// let mut w = vec![1.0f32, 1.0];
    /// opt.step_flat(&mut w, &[f32::NAN, 1.0]).unwrap();
    /// assert_eq!((w[0], opt.skipped_steps(), opt.steps()), (1.0, 1, 0));
    /// ```
    pub fn skip_non_finite(&mut self, max_consecutive: u64) {
        self.guard = Some(FiniteGuard {
            max_consecutive,
            skipped: 0,
            consecutive: 0,
        });
    }

    /// Steps skipped for a non-finite gradient (0 unless
    /// [`Optimizer::skip_non_finite`] is on).
    pub fn skipped_steps(&self) -> u64 {
        self.guard.map_or(0, |g| g.skipped)
    }

    /// Whether to skip this step; counts it, or errs after too many in a row.
    fn skip<'a>(&mut self, grads: impl IntoIterator<Item = &'a [F]>) -> Result<bool> {
        let Some(guard) = &mut self.guard else {
            return Ok(false);
        };
        // x - x is 0 for finite x and NaN otherwise; the sum vectorizes.
        #[allow(clippy::eq_op)]
        let finite = grads
            .into_iter()
            .all(|g| g.iter().fold(F::ZERO, |acc, &x| acc + (x - x)) == F::ZERO);
        if finite {
            guard.consecutive = 0;
            return Ok(false);
        }
        if guard.consecutive >= guard.max_consecutive {
            return Err(Error::NonFiniteGradient {
                step: self.steps + 1,
                consecutive: guard.consecutive + 1,
            });
        }
        guard.consecutive += 1;
        guard.skipped += 1;
        Ok(true)
    }

    /// One step over every tensor: `params[i]` updated from `grads[i]`. Every
    /// length is checked first; on an error nothing has changed.
    pub fn step(&mut self, params: &mut [&mut [F]], grads: &[&[F]]) -> Result<()> {
        let n = self.tensor_count();
        if params.len() != n || grads.len() != n {
            return Err(Error::LengthMismatch {
                what: if params.len() != n {
                    "the list of parameter tensors".into()
                } else {
                    "the list of gradient tensors".into()
                },
                expected: n,
                got: if params.len() != n {
                    params.len()
                } else {
                    grads.len()
                },
            });
        }
        let states = self.groups.iter().flat_map(|g| g.states.iter());
        for (i, ((p, g), state)) in params.iter().zip(grads).zip(states).enumerate() {
            let len = state.len;
            check_len(&format!("parameter tensor {i}"), len, p.len())?;
            check_len(&format!("gradient of tensor {i}"), len, g.len())?;
        }
        if self.skip(grads.iter().copied())? {
            return Ok(());
        }
        let mut i = 0;
        for group in &mut self.groups {
            for state in &mut group.states {
                F::dyn_step(group.rule.as_ref(), state, params[i], grads[i], &[])?;
                i += 1;
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// One step over one buffer holding every tensor back to back, in order
    /// (the layout of a network's parameters).
    pub fn step_flat(&mut self, params: &mut [F], grads: &[F]) -> Result<()> {
        self.step_flat_with(params, grads, &[])
    }

    /// [`Optimizer::step_flat`] for rules that declare `input`s: each of
    /// `inputs` is a buffer laid out like `params` (e.g. a curvature estimate).
    pub fn step_flat_with(&mut self, params: &mut [F], grads: &[F], inputs: &[&[F]]) -> Result<()> {
        let total = self.param_count();
        check_len("the parameter buffer", total, params.len())?;
        check_len("the gradient buffer", total, grads.len())?;
        for (k, input) in inputs.iter().enumerate() {
            check_len(&format!("input buffer {k}"), total, input.len())?;
        }
        // Every group is checked before any is stepped, so a refused step
        // changes nothing.
        for g in &self.groups {
            g.rule.info().check_input_count(inputs.len())?;
        }
        if self.skip([grads])? {
            return Ok(());
        }
        let mut offset = 0;
        let mut seg: Vec<&[F]> = Vec::with_capacity(inputs.len());
        for group in &mut self.groups {
            for state in &mut group.states {
                let end = offset + state.len;
                seg.clear();
                seg.extend(inputs.iter().map(|i| &i[offset..end]));
                F::dyn_step(
                    group.rule.as_ref(),
                    state,
                    &mut params[offset..end],
                    &grads[offset..end],
                    &seg,
                )?;
                offset = end;
            }
        }
        self.steps += 1;
        Ok(())
    }

    /// An optimizer over the elements `range` of the flat buffer only: the
    /// same groups and rules, each tensor cut to its overlap with `range`
    /// (see [`OptimizerState::slice`]); its `step_flat` takes
    /// `params[range]` and `grads[range]`.
    pub fn slice(&self, range: Range<usize>) -> Result<Self> {
        let state = self.state().slice(range)?;
        let mut opt = Optimizer::new();
        for (group, lens) in self.groups.iter().zip(state.lens()) {
            opt.add_group(group.rule.clone(), &lens);
        }
        opt.guard = self.guard;
        opt.seed = self.seed;
        opt.load_state(state)?;
        Ok(opt)
    }

    /// The optimizer's state, to save (PyTorch's `state_dict`).
    pub fn state(&self) -> OptimizerState<F> {
        OptimizerState {
            steps: self.steps,
            seed: Some(self.seed),
            groups: self
                .groups
                .iter()
                .map(|g| GroupState {
                    rule: g.rule.info().name.to_string(),
                    hypers: g
                        .rule
                        .info()
                        .hypers
                        .iter()
                        .filter_map(|h| Some((h.name.to_string(), g.rule.hyper(h.name)?)))
                        .collect(),
                    states: g.states.clone(),
                })
                .collect(),
        }
    }

    /// Loads a saved state. It must come from an optimizer with the same rules
    /// over tensors of the same lengths; otherwise a typed error, and nothing
    /// changes.
    pub fn load_state(&mut self, saved: OptimizerState<F>) -> Result<()> {
        if saved.groups.len() != self.groups.len() {
            return Err(Error::StateMismatch(format!(
                "the saved state has {} groups, this optimizer {}",
                saved.groups.len(),
                self.groups.len()
            )));
        }
        let mut rules = Vec::with_capacity(self.groups.len());
        for (gi, (mine, theirs)) in self.groups.iter().zip(&saved.groups).enumerate() {
            let info = mine.rule.info();
            if theirs.rule != info.name {
                return Err(Error::StateMismatch(format!(
                    "group {gi} was saved with `{}`, this optimizer uses `{}`",
                    theirs.rule, info.name
                )));
            }
            if theirs.states.len() != mine.states.len() {
                return Err(Error::StateMismatch(format!(
                    "group {gi} was saved with {} tensors, this optimizer has {}",
                    theirs.states.len(),
                    mine.states.len()
                )));
            }
            for (ti, (a, b)) in mine.states.iter().zip(&theirs.states).enumerate() {
                b.check(info, a.len, a.len)
                    .map_err(|e| Error::StateMismatch(format!("group {gi}, tensor {ti}: {e}")))?;
            }
            let mut rule = mine.rule.clone();
            for (name, value) in &theirs.hypers {
                rule.set_hyper(name, *value)?;
            }
            rules.push(rule);
        }
        let seed = saved.seed.unwrap_or(self.seed);
        let mut index = 0u64;
        for ((group, theirs), rule) in self.groups.iter_mut().zip(saved.groups).zip(rules) {
            group.rule = rule;
            group.states = theirs.states;
            // States saved before draws were keyed: numbered as added.
            for s in &mut group.states {
                s.draws.get_or_insert(DrawSeed {
                    seed,
                    tensor: index,
                    offset: 0,
                });
                index += 1;
            }
        }
        self.steps = saved.steps;
        self.seed = seed;
        Ok(())
    }
}

impl<F: DynFloat> OptimizerState<F> {
    /// The lengths of the tensors, group by group.
    pub fn lens(&self) -> Vec<Vec<usize>> {
        self.groups
            .iter()
            .map(|g| g.states.iter().map(|s| s.len).collect())
            .collect()
    }

    /// The state of the elements `range` of the flat buffer (every tensor back
    /// to back, group after group, as [`Optimizer::step_flat`] lays them out;
    /// every tensor non-empty): each tensor overlapping `range` keeps the overlapping piece of its
    /// buffers with its step count and scalars; the others are left out, and
    /// every group stays (perhaps with no tensor). A rule whose per-tensor
    /// scalars do not depend on the elements (no reduction such as `norm`)
    /// steps such a piece exactly as it steps those elements of the whole
    /// tensor, which is what sharding optimizer state across processes needs.
    pub fn slice(&self, range: Range<usize>) -> Result<Self> {
        let total: usize = self.lens().iter().flatten().sum();
        if range.start > range.end || range.end > total {
            return Err(Error::Invalid {
                what: "optimizer state slice".into(),
                reason: format!(
                    "elements {}..{} of a buffer of {total}",
                    range.start, range.end
                ),
            });
        }
        let mut offset = 0;
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let mut states = Vec::new();
            for s in &g.states {
                if s.len == 0 {
                    return Err(Error::Invalid {
                        what: "optimizer state slice".into(),
                        reason: "a tensor has no elements; slice only states of non-empty tensors"
                            .into(),
                    });
                }
                let (lo, hi) = (range.start.max(offset), range.end.min(offset + s.len));
                if lo < hi {
                    states.push(s.slice((lo - offset)..(hi - offset))?);
                }
                offset += s.len;
            }
            groups.push(GroupState {
                rule: g.rule.clone(),
                hypers: g.hypers.clone(),
                states,
            });
        }
        Ok(OptimizerState {
            steps: self.steps,
            groups,
            seed: self.seed,
        })
    }

    /// Joins the states of consecutive slices ([`OptimizerState::slice`] of
    /// ranges that cover the buffer in order) into the state of tensors of
    /// the lengths `lens` (group by group). The pieces of a tensor must agree
    /// on its step count and scalars, and the parts on the step count and
    /// hyperparameters; otherwise a [`Error::StateMismatch`].
    pub fn join(parts: Vec<Self>, lens: &[Vec<usize>]) -> Result<Self> {
        let mismatch = |m: String| Error::StateMismatch(format!("joining sliced states: {m}"));
        let first = parts.first().ok_or_else(|| mismatch("no parts".into()))?;
        let (steps, mut out) = (first.steps, Vec::with_capacity(lens.len()));
        for (gi, group_lens) in lens.iter().enumerate() {
            let mut pieces = Vec::new();
            let mut head: Option<GroupState<F>> = None;
            for part in &parts {
                let g = part.groups.get(gi).ok_or_else(|| {
                    mismatch(format!(
                        "a part has {} groups, not {}",
                        part.groups.len(),
                        lens.len()
                    ))
                })?;
                if part.steps != steps || head.as_ref().is_some_and(|h| h.hypers != g.hypers) {
                    return Err(mismatch(format!(
                        "the parts of group {gi} are at different steps or hyperparameters"
                    )));
                }
                head.get_or_insert_with(|| GroupState {
                    rule: g.rule.clone(),
                    hypers: g.hypers.clone(),
                    states: vec![],
                });
                pieces.extend(g.states.iter().cloned());
            }
            let mut group = head.expect("at least one part");
            let mut pieces = pieces.into_iter();
            for (ti, &len) in group_lens.iter().enumerate() {
                let short = || {
                    mismatch(format!(
                        "group {gi}, tensor {ti}: pieces end before {len} elements"
                    ))
                };
                let mut whole = pieces.next().ok_or_else(short)?;
                while whole.len < len {
                    let piece = pieces.next().ok_or_else(short)?;
                    if (&whole.rule, whole.t, &whole.scalars)
                        != (&piece.rule, piece.t, &piece.scalars)
                        || whole.buffers.len() != piece.buffers.len()
                    {
                        return Err(mismatch(format!(
                            "group {gi}, tensor {ti}: its pieces differ in step count or scalars"
                        )));
                    }
                    whole.append(piece)?;
                }
                if whole.len != len {
                    return Err(mismatch(format!(
                        "group {gi}, tensor {ti}: pieces of {} elements for a tensor of {len}",
                        whole.len
                    )));
                }
                group.states.push(whole);
            }
            if pieces.next().is_some() {
                return Err(mismatch(format!(
                    "group {gi} has more pieces than its tensors hold"
                )));
            }
            out.push(group);
        }
        Ok(OptimizerState {
            steps,
            groups: out,
            seed: first.seed,
        })
    }
}

/// Converts tensor `index`'s state `s` as `c` says.
fn apply_compression<F: DynFloat>(
    c: &Compression,
    rule: &dyn DynRule,
    s: &mut State<F>,
    index: u64,
) {
    let info = rule.info();
    let format = if s.len < c.min_elements {
        StateFormat::Full
    } else {
        c.format
    };
    let seed = c
        .stochastic_bf16
        .map(|seed| seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    s.set_format(info, format, seed);
    s.leave_out_idle(info, &bool_hypers(rule));
}

/// Each hyperparameter of `rule`, as a boolean where it is one (what
/// [`State::leave_out_idle`] takes).
pub(crate) fn bool_hypers(rule: &dyn DynRule) -> Vec<Option<bool>> {
    let info = rule.info();
    info.hypers
        .iter()
        .map(|h| rule.hyper(h.name).and_then(HyperValue::as_bool))
        .collect()
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: what.to_string(),
            expected,
            got,
        })
    }
}

/// Closure-driven and row-sparse steps.
impl<F: DynFloat> Optimizer<F> {
    /// A step driven by a closure, as PyTorch's `optimizer.step(closure)`:
    /// `closure(params, grads)` evaluates the objective at `params` (the flat
    /// buffer of every tensor), writes its gradient into `grads` (zeroed
    /// before, as long as `params`) and returns the loss; then the rules step
    /// `params` from that gradient ([`Optimizer::step_flat`]). Returns the
    /// loss. For L-BFGS, which evaluates the closure several times a step,
    /// see [`crate::lbfgs::Lbfgs::step`].
    ///
    /// A NaN or infinite loss is [`Error::NonFiniteObjective`] and nothing
    /// changes; a non-finite gradient is stepped or skipped as `step_flat`
    /// does.
    ///
    /// ```
    /// # extern crate optdsl_runtime as optdsl;
    /// use optdsl::{builtin_rule, Optimizer, HyperValue};
    /// let mut sgd = builtin_rule("sgd").unwrap();
    /// sgd.set_hyper("lr", HyperValue::Num(0.25)).unwrap();
    /// let mut opt = Optimizer::<f64>::with_rule(sgd, &[1]);
    /// let mut w = vec![3.0];
    /// // f(w) = w^2
    /// let loss = opt.step_with_closure(&mut w, |w, g| { g[0] = 2.0 * w[0]; Ok(w[0] * w[0]) }).unwrap();
    /// assert_eq!((loss, w[0]), (9.0, 1.5));
    /// ```
    pub fn step_with_closure<C>(&mut self, params: &mut [F], mut closure: C) -> Result<f64>
    where
        C: FnMut(&[F], &mut [F]) -> Result<f64>,
    {
        let total = self.param_count();
        check_len("the parameter buffer", total, params.len())?;
        let mut grads = vec![F::ZERO; total];
        let loss = closure(params, &mut grads)?;
        if !loss.is_finite() {
            return Err(Error::NonFiniteObjective {
                what: "loss".into(),
                evaluation: 1,
                value: loss.to_string(),
            });
        }
        self.step_flat(params, &grads)?;
        Ok(loss)
    }

    /// One step from row-sparse gradients (see [`crate::sparse`]):
    /// `params[i]` is tensor i (row-major), `grads[i]` its touched rows and
    /// their values. Only those rows of the tensor and of its state change;
    /// every tensor's step count advances, as PyTorch's SparseAdam counts a
    /// step for every parameter with a gradient. Every check comes first
    /// (the rules are row-local, the lengths, the rows in range); on an
    /// error nothing has changed.
    ///
    /// ```
    /// # extern crate optdsl_runtime as optdsl;
    /// use optdsl::sparse::SparseGrad;
    /// use optdsl::{builtin_rule, Optimizer};
    /// let mut opt = Optimizer::<f32>::with_rule(builtin_rule("sparse_adam").unwrap(), &[8]);
    /// let mut table = vec![1.0f32; 8]; // 4 rows of 2
    /// let g = SparseGrad { cols: 2, rows: &[3], values: &[0.5, -0.5] };
    /// opt.step_sparse(&mut [&mut table], &[g]).unwrap();
    /// assert_eq!(&table[..6], &[1.0; 6]);
    /// assert!(table[6] < 1.0 && table[7] > 1.0);
    /// let bad = SparseGrad { cols: 2, rows: &[4], values: &[0.5, -0.5] };
    /// assert!(opt.step_sparse(&mut [&mut table], &[bad]).is_err());
    /// ```
    pub fn step_sparse(
        &mut self,
        params: &mut [&mut [F]],
        grads: &[crate::sparse::SparseGrad<'_, F>],
    ) -> Result<()> {
        let n = self.tensor_count();
        check_len("the list of parameter tensors", n, params.len())?;
        check_len("the list of sparse gradients", n, grads.len())?;
        for g in &self.groups {
            crate::sparse::check_row_local(g.rule.info())?;
        }
        let states = self.groups.iter().flat_map(|g| g.states.iter());
        let mut coalesced = Vec::with_capacity(n);
        for (i, ((p, g), state)) in params.iter().zip(grads).zip(states).enumerate() {
            check_len(&format!("parameter tensor {i}"), state.len, p.len())?;
            coalesced.push(crate::sparse::coalesce(state.len, g)?);
        }
        for g in &self.groups {
            for state in &g.states {
                crate::sparse::check_uncompressed(g.rule.info(), state)?;
            }
        }
        if self.skip(coalesced.iter().map(|c| c.1.as_slice()))? {
            return Ok(());
        }
        let mut i = 0;
        for group in &mut self.groups {
            for state in &mut group.states {
                let (rows, values) = &coalesced[i];
                crate::sparse::step_coalesced(
                    group.rule.as_ref(),
                    state,
                    params[i],
                    grads[i].cols,
                    rows,
                    values,
                )?;
                i += 1;
            }
        }
        self.steps += 1;
        Ok(())
    }
}
