//! The optimizer state of one tensor ([`State`]): step count, buffers (plain,
//! or compressed to 8 bits or bfloat16), scalars, the keys of its random
//! draws ([`DrawSeed`]) and, for rules with shapes, the tensor's shape.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::info::RuleInfo;
use crate::quant::Packed;
use crate::shape::Dims;
use optdsl_lang::{StateFormat, Storage};
use serde::{Deserialize, Serialize};

/// The optimizer state of one tensor: the step count, the per-element buffers
/// and the per-tensor scalars a rule declares.
///
/// `t` counts the steps taken (0 before the first). Buffers are in the order of
/// the rule's `state` declaration ([`RuleInfo::buffers`]); scalars are kept in
/// f64 whatever the element type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: Float")]
pub struct State<F> {
    /// The rule this state belongs to.
    pub rule: String,
    /// The fingerprint of the rule's program (0 in states saved before
    /// fingerprints: then only the name is checked).
    #[serde(default)]
    pub fingerprint: u64,
    /// Steps taken so far.
    pub t: u64,
    /// The tensor's length.
    pub len: usize,
    /// The per-element buffers, each `len` long (empty where the buffer is
    /// compressed: see `packed`).
    pub buffers: Vec<Vec<F>>,
    /// The per-tensor scalar states.
    pub scalars: Vec<f64>,
    /// The compressed buffers (8-bit or bfloat16), one entry per buffer
    /// (`None`: kept in `buffers`); empty when none is compressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packed: Vec<Option<Packed>>,
    /// What the rule's random draws (`rand()`, `randn()`) are keyed by:
    /// set by [`crate::Optimizer`] for each of its tensors (`None`, as in a
    /// state made by [`UpdateRule::init`](crate::UpdateRule::init) alone, draws as
    /// [`DrawSeed::default`]: seed 0, tensor 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draws: Option<DrawSeed>,
    /// The tensor's shape, for rules with shapes (`[rows, cols]`, `[n]`);
    /// empty for element-wise rules, which see a flat vector of `len`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shape: Vec<usize>,
}

/// What a tensor's random draws are keyed by (`optdsl_lang::random`): the
/// run's seed, the tensor's number in its optimizer, and where this state's
/// elements start in the whole tensor (non-zero for a [`State::slice`]), so
/// that element `i` of the tensor draws the same number however the tensor
/// is cut, threaded or resumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawSeed {
    /// The run's seed ([`crate::Optimizer::with_seed`]).
    pub seed: u64,
    /// The tensor's number in its optimizer (across groups, in order).
    pub tensor: u64,
    /// The index, in the whole tensor, of this state's element 0.
    pub offset: u64,
}

impl DrawSeed {
    /// The key of each of `p`'s random streams
    /// ([`optdsl_lang::random::stream_key`]); empty for a rule without draws.
    pub fn keys(&self, p: &optdsl_lang::Program) -> Vec<optdsl_lang::random::Key> {
        (0..p.streams())
            .map(|k| optdsl_lang::random::stream_key(self.seed, self.tensor, k))
            .collect()
    }

    /// The draws of a step at step `step` (after the step count's increment)
    /// with these stream keys.
    pub fn draws<'a>(
        &self,
        keys: &'a [optdsl_lang::random::Key],
        step: u64,
    ) -> crate::driver::Draws<'a> {
        crate::driver::Draws {
            keys,
            step,
            first: self.offset,
        }
    }
}

impl<F: Float> State<F> {
    /// A state for `info`'s rule over `len` elements, with each buffer filled with
    /// its initial value and each scalar set to its initial value.
    ///
    /// Buffers the rule declares compressed (`state m: q8 = 0`) are
    /// compressed.
    pub fn new(info: &RuleInfo, len: usize, buffer_init: &[f64], scalar_init: &[f64]) -> Self {
        Self::with_shape(info, len, Vec::new(), buffer_init, scalar_init)
    }

    /// [`State::new`] with the tensor's shape (empty: a vector of `len`);
    /// each buffer is allocated once, at its size ([`State::buffer_len`]).
    fn with_shape(
        info: &RuleInfo,
        len: usize,
        shape: Vec<usize>,
        buffer_init: &[f64],
        scalar_init: &[f64],
    ) -> Self {
        let storage = &info.program().storage;
        let mut state = State {
            rule: info.name.to_string(),
            fingerprint: info.program().fingerprint,
            t: 0,
            len,
            buffers: Vec::new(),
            scalars: scalar_init.to_vec(),
            packed: Vec::new(),
            draws: None,
            shape,
        };
        state.buffers = buffer_init
            .iter()
            .enumerate()
            .map(|(i, &x)| vec![F::from_f64(x); state.buffer_len(info, i)])
            .collect();
        for (i, &st) in storage.iter().enumerate() {
            state.store(i, st, None);
        }
        state
    }

    /// A state for `info`'s rule over a tensor of `shape` (row-major, as
    /// PyTorch stores it): a rule with shapes sizes each buffer by its
    /// declared shape (`r: [rows]` holds one number a row) and leaves out
    /// buffers whose shape condition fails (`if matrix { state ... }` on a
    /// vector); an element-wise rule gets [`State::new`]'s buffers. A shape
    /// the rule cannot take is a typed error naming it.
    pub fn new_shaped(
        info: &RuleInfo,
        shape: &[usize],
        buffer_init: &[f64],
        scalar_init: &[f64],
    ) -> Result<Self> {
        let dims = Dims::of(info, shape)?;
        let shape = match info.program().tensor {
            Some(_) => shape.to_vec(),
            None => Vec::new(),
        };
        Ok(Self::with_shape(
            info,
            dims.numel,
            shape,
            buffer_init,
            scalar_init,
        ))
    }

    /// How many numbers buffer `i` holds: `len` for element-wise rules, its
    /// declared shape's size for rules with shapes.
    pub fn buffer_len(&self, info: &RuleInfo, i: usize) -> usize {
        if info.program().tensor.is_none() {
            return self.len;
        }
        Dims::from_shape(&self.shape, self.len)
            .map_or(self.len, |d| d.buffer_len(info.program(), i))
    }

    /// Stores buffer `i` as `storage` (`stochastic`: a seed for stochastic
    /// rounding to bfloat16), converting what it holds.
    fn store(&mut self, i: usize, storage: Storage, stochastic: Option<u64>) {
        if i >= self.buffers.len() {
            return;
        }
        let now = self.packed.get(i).and_then(Option::as_ref);
        if now.map_or(Storage::Full, Packed::storage) == storage {
            return;
        }
        let values: Vec<F> = match now {
            Some(p) => p.to_vec(),
            None => std::mem::take(&mut self.buffers[i]),
        };
        if self.packed.len() < self.buffers.len() {
            self.packed.resize(self.buffers.len(), None);
        }
        self.packed[i] = Packed::from_values(storage, &values, stochastic);
        if self.packed[i].is_none() {
            self.buffers[i] = values;
        } else {
            self.buffers[i] = Vec::new();
        }
        if self.packed.iter().all(Option::is_none) {
            self.packed.clear();
        }
    }

    /// Keeps the buffers in `format` (`Full`: as the rule declares them; `Q8`
    /// takes the unsigned map for buffers the compiler proves never negative,
    /// the signed one elsewhere; a buffer the rule declares compressed keeps
    /// its declaration). `stochastic`: a seed, to round to bfloat16
    /// stochastically. The values held are converted.
    ///
    /// Rules with shapes keep their state in the element type (their
    /// factored or matrix state is small, or feeds matrix products).
    pub fn set_format(&mut self, info: &RuleInfo, format: StateFormat, stochastic: Option<u64>) {
        if info.program().tensor.is_some() {
            return;
        }
        let plan = optdsl_lang::storage::storage_for(info.program(), format);
        for (i, &st) in plan.iter().enumerate() {
            let seed = (st == Storage::Bf16).then_some(stochastic).flatten();
            self.store(i, st, seed);
        }
    }

    /// Leaves out the compressed buffers that no step needs while the
    /// rule's boolean hyperparameters hold `hypers` (`hypers[k]` for
    /// hyperparameter `k`, `None` for a number;
    /// [`optdsl_lang::passes::switched_off`]) and whose elements all hold
    /// the same bytes, as a fresh state's do: they become
    /// [`Packed::Deferred`], the same contents in no storage, until a step
    /// with other values needs them ([`State::restore_needed`]). Adam's
    /// AMSGrad buffer, with `amsgrad` false, is not stored, as PyTorch does
    /// not allocate it. Buffers in the element type stay as they are.
    pub fn leave_out_idle(&mut self, info: &RuleInfo, hypers: &[Option<bool>]) {
        if self.packed.iter().all(Option::is_none) {
            return;
        }
        let off = switched_off(info, hypers);
        for (p, _) in self.packed.iter_mut().zip(off.iter()).filter(|(_, &o)| o) {
            if let Some(d) = p.as_ref().and_then(Packed::deferred) {
                *p = Some(d);
            }
        }
    }

    /// Stores in full again each deferred buffer ([`State::leave_out_idle`])
    /// that a step may need with these values of the boolean
    /// hyperparameters; every step calls it first.
    pub fn restore_needed(&mut self, info: &RuleInfo, hypers: &[Option<bool>]) {
        if !self.packed.iter().flatten().any(Packed::is_deferred) {
            return;
        }
        let off = switched_off(info, hypers);
        for (k, p) in self.packed.iter_mut().enumerate() {
            if let Some(p) = p.as_mut().filter(|_| !off.get(k).copied().unwrap_or(false)) {
                p.allocate();
            }
        }
    }

    /// The state of elements `range` of its tensor: the same step count and
    /// scalars, the buffers' pieces. A compressed 8-bit buffer splits only at
    /// its blocks of 256 elements (a typed error elsewhere).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<State<F>> {
        if !self.shape.is_empty() {
            return Err(Error::Invalid {
                what: "a slice of an optimizer state".into(),
                reason: format!("the state of `{}` has a shape ({:?}): a rule with shapes steps whole tensors, so its state is not cut into pieces (shard element-wise rules only)", self.rule, self.shape),
            });
        }
        if range.start > range.end || range.end > self.len {
            return Err(Error::Invalid {
                what: "a slice of an optimizer state".into(),
                reason: format!("{range:?} is outside its {} elements", self.len),
            });
        }
        let mut packed = Vec::with_capacity(self.packed.len());
        for p in &self.packed {
            packed.push(p.as_ref().map(|p| p.slice(range.clone())).transpose()?);
        }
        Ok(State {
            rule: self.rule.clone(),
            fingerprint: self.fingerprint,
            t: self.t,
            len: range.len(),
            buffers: self
                .buffers
                .iter()
                .map(|b| {
                    if b.is_empty() {
                        Vec::new()
                    } else {
                        b[range.clone()].to_vec()
                    }
                })
                .collect(),
            scalars: self.scalars.clone(),
            packed,
            draws: self.draws.map(|d| DrawSeed {
                offset: d.offset.wrapping_add(range.start as u64),
                ..d
            }),
            shape: Vec::new(),
        })
    }

    /// Appends the state of the elements that follow (as [`State::slice`]
    /// cut them): it must be of the same rule, step count, scalars and
    /// storage.
    pub fn append(&mut self, next: State<F>) -> Result<()> {
        if (
            &self.rule,
            self.t,
            &self.scalars,
            self.buffers.len(),
            self.storage(),
        ) != (
            &next.rule,
            next.t,
            &next.scalars,
            next.buffers.len(),
            next.storage(),
        ) {
            return Err(Error::StateMismatch(
                "joining pieces of a state: they differ in rule, step count, scalars or storage"
                    .into(),
            ));
        }
        let (mine, theirs) = (
            self.draws.unwrap_or_default(),
            next.draws.unwrap_or_default(),
        );
        let next_offset = mine.offset.wrapping_add(self.len as u64);
        if (mine.seed, mine.tensor, next_offset) != (theirs.seed, theirs.tensor, theirs.offset) {
            return Err(Error::StateMismatch(format!(
                "joining pieces of a state: the next piece draws as tensor {} from element {} with seed {}, not as tensor {} from element {} with seed {}; join the pieces in order, as State::slice cut them",
                theirs.tensor,
                theirs.offset,
                theirs.seed,
                mine.tensor,
                next_offset,
                mine.seed
            )));
        }
        for (b, p) in self.buffers.iter_mut().zip(next.buffers) {
            b.extend(p);
        }
        for (b, p) in self.packed.iter_mut().zip(&next.packed) {
            if let (Some(b), Some(p)) = (b, p) {
                b.append(p)?;
            }
        }
        self.len += next.len;
        Ok(())
    }

    /// Keeps every buffer in the element type, declared compressed or not
    /// (for code that reads and writes `buffers` directly, such as the
    /// framework adapters' state files).
    pub fn decompress(&mut self) {
        for i in 0..self.buffers.len() {
            self.store(i, Storage::Full, None);
        }
    }

    /// How each buffer is stored.
    pub fn storage(&self) -> Vec<Storage> {
        (0..self.buffers.len())
            .map(|i| {
                self.packed
                    .get(i)
                    .and_then(Option::as_ref)
                    .map_or(Storage::Full, Packed::storage)
            })
            .collect()
    }

    /// Bytes the buffers keep per element (block maxima included; none for
    /// a buffer left out, [`State::leave_out_idle`]).
    pub fn bytes_per_element(&self) -> f64 {
        self.storage()
            .iter()
            .enumerate()
            .filter(|&(k, _)| !matches!(self.packed.get(k), Some(Some(p)) if p.is_deferred()))
            .map(|(_, s)| s.bytes_per_element(std::mem::size_of::<F>()))
            .sum()
    }

    /// The buffer called `name` in `info`'s declaration order, if it is kept
    /// in the element type (`None` for a compressed one: see
    /// [`State::buffer_values`]).
    pub fn buffer(&self, info: &RuleInfo, name: &str) -> Option<&[F]> {
        let i = info.buffers.iter().position(|b| *b == name)?;
        if self.packed.get(i).is_some_and(Option::is_some) {
            return None;
        }
        self.buffers.get(i).map(|b| b.as_slice())
    }

    /// The values of the buffer called `name`, decoded if it is compressed.
    pub fn buffer_values(&self, info: &RuleInfo, name: &str) -> Option<Vec<F>> {
        let i = info.buffers.iter().position(|b| *b == name)?;
        match self.packed.get(i).and_then(Option::as_ref) {
            Some(p) => Some(p.to_vec()),
            None => self.buffers.get(i).cloned(),
        }
    }

    /// The scalar state called `name`.
    pub fn scalar(&self, info: &RuleInfo, name: &str) -> Option<f64> {
        let i = info.scalars.iter().position(|b| *b == name)?;
        self.scalars.get(i).copied()
    }

    /// Checks that this state fits `info`'s rule, that `w` and `g` have its
    /// length, and that the rule's inputs are there with that length too; every
    /// step does this before touching memory.
    pub fn check_step(&self, info: &RuleInfo, w: usize, g: usize, inputs: &[&[F]]) -> Result<()> {
        self.check(info, w, g)?;
        info.check_input_count(inputs.len())?;
        for (name, input) in info.inputs.iter().zip(inputs) {
            if input.len() != w {
                return Err(Error::LengthMismatch {
                    what: format!("input `{name}`"),
                    expected: w,
                    got: input.len(),
                });
            }
        }
        Ok(())
    }

    /// Checks that this state fits `info`'s rule and that `w` and `g` have its
    /// length.
    pub fn check(&self, info: &RuleInfo, w: usize, g: usize) -> Result<()> {
        if self.rule != info.name {
            return Err(Error::StateMismatch(format!(
                "the state was made by `{}`, not `{}`",
                self.rule, info.name
            )));
        }
        if self.fingerprint != 0 && self.fingerprint != info.program().fingerprint {
            return Err(Error::StateMismatch(format!(
                "the state was made by another rule named `{}` (its program differs: fingerprint {:016x}, this rule's {:016x})",
                info.name,
                self.fingerprint,
                info.program().fingerprint
            )));
        }
        if info.program().tensor.is_some() {
            // A flat state is a vector of `len`; Dims::of refuses it for a
            // rule that needs a matrix.
            match self.shape.is_empty() {
                true => Dims::of(info, &[self.len])?,
                false => Dims::of(info, &self.shape)?,
            };
        }
        if self.buffers.len() != info.buffers.len() || self.scalars.len() != info.scalars.len() {
            return Err(Error::StateMismatch(format!(
                "`{}` keeps {} buffers and {} scalars, the state has {} and {}",
                info.name,
                info.buffers.len(),
                info.scalars.len(),
                self.buffers.len(),
                self.scalars.len()
            )));
        }
        if !self.packed.is_empty() && self.packed.len() != self.buffers.len() {
            return Err(Error::StateMismatch(format!(
                "the state has {} buffers and {} compressed-buffer entries",
                self.buffers.len(),
                self.packed.len()
            )));
        }
        let packed = |i: usize| self.packed.get(i).and_then(Option::as_ref);
        if let Some((i, p)) = (0..self.buffers.len())
            .filter_map(|i| packed(i).map(|p| (i, p)))
            .find(|(i, p)| {
                p.len() != self.len || !p.is_consistent() || !self.buffers[*i].is_empty()
            })
        {
            return Err(Error::LengthMismatch {
                what: format!("compressed state buffer `{}`", info.buffers[i]),
                expected: self.len,
                got: p.len(),
            });
        }
        if let Some((i, b)) = self
            .buffers
            .iter()
            .enumerate()
            .find(|(i, b)| packed(*i).is_none() && b.len() != self.buffer_len(info, *i))
        {
            return Err(Error::LengthMismatch {
                what: format!("state buffer `{}`", info.buffers[i]),
                expected: self.buffer_len(info, i),
                got: b.len(),
            });
        }
        if w != self.len {
            return Err(Error::LengthMismatch {
                what: "the optimizer state".into(),
                expected: w,
                got: self.len,
            });
        }
        if g != w {
            return Err(Error::LengthMismatch {
                what: "the gradient".into(),
                expected: w,
                got: g,
            });
        }
        Ok(())
    }
}

/// [`optdsl_lang::passes::switched_off`] for `info`'s rule, planned once
/// per program and kept per choice of the boolean hyperparameters.
fn switched_off(info: &RuleInfo, hypers: &[Option<bool>]) -> std::sync::Arc<[bool]> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Key = (usize, Vec<Option<bool>>);
    static SEEN: OnceLock<Mutex<HashMap<Key, Arc<[bool]>>>> = OnceLock::new();
    let p = info.program();
    let key = (std::ptr::from_ref(p) as usize, hypers.to_vec());
    let seen = SEEN.get_or_init(Default::default);
    if let Some(off) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return off.clone();
    }
    let plan = optdsl_lang::passes::plan(p);
    let off: Arc<[bool]> = optdsl_lang::passes::switched_off(p, &plan, hypers).into();
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, off.clone());
    off
}
