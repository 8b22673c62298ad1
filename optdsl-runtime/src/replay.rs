//! Reference trajectories (the JSON fixtures of tests/golden): loading, the
//! mapping of PyTorch's and Optax's optimizer and hyperparameter names to the
//! built-ins', and the replay of a fixture through a [`DynRule`] in the
//! fixture's dtype.

use crate::builtin::{builtin_rule, builtins};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::quant::{quantizer, Packed};
use crate::rule::{DynFloat, DynRule, HyperValue, State};
use optdsl_lang::QBLOCK;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A fixture's pass criterion: `|ours − ref| <= abs + rel · |ref|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute part.
    pub abs: f64,
}

/// One reference run (format in tests/golden/README.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    /// The fixture's name.
    pub name: String,
    /// The reference's class or function name (`Adam`, `lion`, `seed-adam`).
    pub optimizer: String,
    /// Where the reference comes from.
    #[serde(default)]
    pub source: String,
    /// Hyperparameters, in the reference's names; absent ones take its defaults.
    #[serde(default)]
    pub hyper: BTreeMap<String, serde_json::Value>,
    /// `"f32"` or `"f64"`: the type the whole step runs in.
    pub dtype: String,
    /// The pass criterion.
    pub tolerance: Tolerance,
    /// Notes on the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The parameters before step 1.
    pub params0: Vec<f64>,
    /// `grads[k]`: the gradient fed at step k + 1 (absent in closure-driven
    /// and row-sparse fixtures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grads: Vec<Vec<f64>>,
    /// Per-step values of the rule's `input`s (e.g. `h` for vSGD), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Vec<Vec<f64>>>,
    /// `params[k]`: the parameters after step k + 1.
    pub params: Vec<Vec<f64>>,
    /// A closure-driven fixture's objective (L-BFGS: the replay evaluates
    /// it instead of feeding gradients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// `losses[k]`: what step k + 1 returned (closure-driven fixtures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<f64>,
    /// `evaluations[k]`: how many times step k + 1 called the objective.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<usize>,
    /// A row-sparse fixture's table shape, `[rows, cols]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// `sparse_grads[k]`: the row-sparse gradient of step k + 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_grads: Vec<SparseStep>,
    /// 8-bit fixtures: elements per quantization block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    /// 8-bit fixtures: the signed map the reference used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qmap_signed: Option<Vec<f64>>,
    /// 8-bit fixtures: the unsigned map the reference used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qmap_unsigned: Option<Vec<f64>>,
    /// 8-bit fixtures: the compressed state after the last step
    /// (`state1`/`absmax1` for the rule's first buffer, `state2`/`absmax2`
    /// for its second), which a replay must reproduce exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub final_state: BTreeMap<String, Vec<f64>>,
}

/// A closure-driven fixture's objective, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// `quadratic-rosenbrock-12`: 1/2 Σᵢ sᵢ (wᵢ − 1)² + (1 − w₈)² + 10 (w₉ − w₈²)²
    /// over 12 parameters (0-based indices); `neg-quadratic-rosenbrock-12`:
    /// its negation (for `maximize`).
    pub kind: String,
    /// The 12 scales sᵢ.
    #[serde(default)]
    pub scales: Vec<f64>,
    /// The formula, as text.
    #[serde(default)]
    pub formula: String,
}

impl Objective {
    /// Checks the kind and the scales.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !matches!(
            self.kind.as_str(),
            "quadratic-rosenbrock-12" | "neg-quadratic-rosenbrock-12"
        ) {
            return Err(format!(
                "objective kind `{}`: the known kinds are quadratic-rosenbrock-12 and neg-quadratic-rosenbrock-12 (its negation, for maximize)",
                self.kind
            ));
        }
        if self.scales.len() != 12 {
            return Err(format!(
                "quadratic-rosenbrock-12 takes 12 scales, got {}",
                self.scales.len()
            ));
        }
        Ok(())
    }

    /// The objective at `w` (12 numbers); its gradient into `g`.
    pub fn eval(&self, w: &[f64], g: &mut [f64]) -> f64 {
        let mut quad = 0.0;
        for ((&wi, gi), &s) in w.iter().zip(g.iter_mut()).zip(&self.scales) {
            quad += s * (wi - 1.0) * (wi - 1.0);
            *gi = s * (wi - 1.0);
        }
        let (a, b) = (w[8], w[9]);
        let r = b - a * a;
        g[8] += -2.0 * (1.0 - a) - 40.0 * a * r;
        g[9] += 20.0 * r;
        let f = 0.5 * quad + (1.0 - a) * (1.0 - a) + 10.0 * r * r;
        if self.kind.starts_with("neg-") {
            g.iter_mut().for_each(|x| *x = -*x);
            -f
        } else {
            f
        }
    }
}

/// One step of a row-sparse fixture: the touched rows and their gradient
/// rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseStep {
    /// The touched rows.
    pub rows: Vec<usize>,
    /// One gradient row per touched row.
    pub values: Vec<Vec<f64>>,
}

/// What a fixture feeds its optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureKind {
    /// A dense gradient per step (`grads`).
    Dense,
    /// An objective evaluated by the optimizer (`objective`, L-BFGS).
    Closure,
    /// A row-sparse gradient per step (`shape`, `sparse_grads`).
    RowSparse,
}

impl Fixture {
    /// Reads and checks a fixture file.
    pub fn load(path: &Path) -> Result<Fixture> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let fixture: Fixture = serde_json::from_str(&text).map_err(|e| Error::Data {
            source_name: path.display().to_string(),
            reason: format!("not a fixture (see tests/golden/README.md): {e}"),
        })?;
        fixture.validate()?;
        Ok(fixture)
    }

    /// What the fixture feeds its optimizer: an `objective` makes it
    /// closure-driven, a `shape` row-sparse, otherwise dense.
    pub fn kind(&self) -> FixtureKind {
        if self.objective.is_some() {
            FixtureKind::Closure
        } else if !self.sparse_grads.is_empty() {
            FixtureKind::RowSparse
        } else {
            FixtureKind::Dense
        }
    }

    /// Checks that the lengths agree and the dtype is known.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Error::Data {
            source_name: self.name.clone(),
            reason,
        };
        if self.dtype != "f32" && self.dtype != "f64" {
            return Err(bad(format!(
                "dtype `{}`: use \"f32\" or \"f64\"",
                self.dtype
            )));
        }
        let n = self.params0.len();
        if let Some(row) = self.params.iter().find(|r| r.len() != n) {
            return Err(bad(format!(
                "a row of params has {} numbers, params0 has {n}",
                row.len()
            )));
        }
        match self.kind() {
            FixtureKind::Dense => {}
            FixtureKind::Closure => {
                let objective = self.objective.as_ref().expect("closure kind");
                objective.validate().map_err(bad)?;
                if n != 12 {
                    return Err(bad(format!("params0 has {n} numbers, the objective 12")));
                }
                let steps = self.params.len();
                if self.losses.len() != steps || self.evaluations.len() != steps {
                    return Err(bad(format!(
                        "{steps} parameter vectors, {} losses and {} evaluation counts; give one of each per step",
                        self.losses.len(),
                        self.evaluations.len()
                    )));
                }
                return Ok(());
            }
            FixtureKind::RowSparse => {
                let shape = self.shape.as_deref().unwrap_or_default();
                let &[rows, cols] = shape else {
                    return Err(bad(format!(
                        "shape {shape:?}: give [rows, cols] of the table"
                    )));
                };
                if rows.checked_mul(cols) != Some(n) || cols == 0 {
                    return Err(bad(format!(
                        "shape [{rows}, {cols}] but params0 has {n} numbers"
                    )));
                }
                if self.sparse_grads.len() != self.params.len() {
                    return Err(bad(format!(
                        "{} sparse gradients but {} parameter vectors; give one of each per step",
                        self.sparse_grads.len(),
                        self.params.len()
                    )));
                }
                for (k, step) in self.sparse_grads.iter().enumerate() {
                    if step.values.len() != step.rows.len()
                        || step.values.iter().any(|v| v.len() != cols)
                    {
                        return Err(bad(format!(
                            "sparse_grads[{k}]: give one row of {cols} values per row in `rows`"
                        )));
                    }
                }
                return Ok(());
            }
        }
        if self.grads.len() != self.params.len() {
            return Err(bad(format!(
                "{} gradients but {} parameter vectors; give one of each per step",
                self.grads.len(),
                self.params.len()
            )));
        }
        let n = self.params0.len();
        let rows = self
            .grads
            .iter()
            .chain(&self.params)
            .chain(self.inputs.values().flatten());
        if let Some(row) = rows.into_iter().find(|r| r.len() != n) {
            return Err(bad(format!(
                "a row has {} numbers, params0 has {n}",
                row.len()
            )));
        }
        if let Some((name, v)) = self
            .inputs
            .iter()
            .find(|(_, v)| v.len() != self.grads.len())
        {
            return Err(bad(format!(
                "input `{name}` has {} steps, grads {}",
                v.len(),
                self.grads.len()
            )));
        }
        Ok(())
    }
}

/// Our built-in's name for a reference optimizer name: PyTorch's class names
/// (`SGD`, `AdamW`, `RMSprop`, ...) and Optax's function names (`lion`, `lamb`,
/// `adabelief`) are our names in lower case (or, failing that, with `_`
/// and `-` ignored: `SparseAdam` is `sparse_adam`); `seed-*` names are the
/// slides' rules.
pub fn builtin_name(reference: &str) -> Result<&'static str> {
    let key = reference
        .trim()
        .trim_start_matches("torch.optim.")
        .trim_start_matches("optax.")
        .to_ascii_lowercase();
    builtins()
        .iter()
        .find(|b| b.name == key)
        .or_else(|| {
            builtins()
                .iter()
                .find(|b| name_key(b.name) == name_key(&key))
        })
        .map(|b| b.name)
        .ok_or_else(|| Error::UnknownOptimizer {
            name: reference.to_string(),
            known: builtins().iter().map(|b| b.name.to_string()).collect(),
        })
}

/// Reference hyperparameter names that are tuples: each splits into several
/// of ours (a tuple only when the value is a list: Adam's `eps` is a number,
/// Adafactor's the pair `[eps1, eps2]`). A `null` entry is PyTorch's `None`,
/// which our rules write as 0 (Adafactor's `eps1`: the machine epsilon).
const TUPLES: &[(&str, &[&str])] = &[
    ("betas", &["beta1", "beta2"]),
    ("etas", &["etaminus", "etaplus"]),
    ("step_sizes", &["step_min", "step_max"]),
    ("eps", &["eps1", "eps2"]),
    ("ns_coefficients", &["ns_a", "ns_b", "ns_c"]),
];

/// A reference option that names a choice (its name, our boolean, and what
/// each choice sets it to).
type Choice = (&'static str, &'static str, &'static [(&'static str, bool)]);

/// Reference options that name a choice: each choice sets one boolean of
/// ours (Muon's `adjust_lr_fn`).
const CHOICES: &[Choice] = &[(
    "adjust_lr_fn",
    "match_rms_adamw",
    &[("original", false), ("match_rms_adamw", true)],
)];

/// Reference names that are ours under another name (Optax's).
const RENAMES: &[(&str, &str)] = &[("learning_rate", "lr"), ("b1", "beta1"), ("b2", "beta2")];

fn value(rule: &str, name: &str, v: &serde_json::Value) -> Result<HyperValue> {
    match v {
        serde_json::Value::Bool(b) => Ok(HyperValue::Bool(*b)),
        serde_json::Value::Number(n) => {
            n.as_f64()
                .map(HyperValue::Num)
                .ok_or_else(|| Error::Invalid {
                    what: format!("hyperparameter `{name}` of {rule}"),
                    reason: format!("{n} is not a finite number"),
                })
        }
        other => Err(Error::HyperType {
            rule: rule.to_string(),
            name: name.to_string(),
            expected: "a number or true/false",
            got: other.to_string(),
        }),
    }
}

/// Converts reference hyperparameters (`betas: [0.9, 0.99]`, `learning_rate`,
/// ...) to ours (`beta1`, `beta2`, `lr`, ...), in order.
pub fn map_hypers(
    rule: &str,
    hyper: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<(String, HyperValue)>> {
    let mut out = Vec::new();
    for (name, v) in hyper {
        let tuple = TUPLES
            .iter()
            .find(|t| t.0 == name && (v.is_array() || t.0 != "eps"));
        if let Some(&(_, ours)) = tuple {
            let items = v
                .as_array()
                .filter(|p| p.len() == ours.len())
                .ok_or_else(|| Error::Invalid {
                    what: format!("hyperparameter `{name}` of {rule}"),
                    reason: format!("takes a list [{}], got {v}", ours.join(", ")),
                })?;
            for (a, x) in ours.iter().zip(items) {
                let x = if x.is_null() {
                    HyperValue::Num(0.0)
                } else {
                    value(rule, a, x)?
                };
                out.push((a.to_string(), x));
            }
        } else if let Some(&(_, ours, choices)) = CHOICES.iter().find(|c| c.0 == name) {
            let pick = v
                .as_str()
                .and_then(|s| choices.iter().find(|c| c.0 == s))
                .ok_or_else(|| Error::Invalid {
                    what: format!("hyperparameter `{name}` of {rule}"),
                    reason: format!(
                        "takes one of {}, got {v}",
                        choices
                            .iter()
                            .map(|c| format!("\"{}\"", c.0))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?;
            out.push((ours.to_string(), HyperValue::Bool(pick.1)));
        } else {
            let ours = RENAMES
                .iter()
                .find(|r| r.0 == name)
                .map_or(name.as_str(), |r| r.1);
            out.push((ours.to_string(), value(rule, ours, v)?));
        }
    }
    Ok(out)
}

/// The built-in a fixture names, with the fixture's hyperparameters set; an
/// unknown optimizer or hyperparameter is an error listing the known ones.
pub fn fixture_rule(fixture: &Fixture) -> Result<Box<dyn DynRule>> {
    let name = builtin_name(&fixture.optimizer)?;
    let mut rule = builtin_rule(name)?;
    for (h, v) in map_hypers(name, &fixture.hyper)? {
        rule.set_hyper(&h, v)?;
    }
    Ok(rule)
}

/// A rule's or an optimizer's name as fixtures and rule files are matched:
/// lower case, without `_` and `-` (`optimistic_gradient_descent` is the
/// rule `OptimisticGradientDescent`).
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The rule of `rules` that a fixture names (its `optimizer`, or `force`),
/// with the fixture's `hyper` entries set by their own names: a name the
/// rule does not declare is an error naming it and the rule's names.
pub fn fixture_rule_from(
    fixture: &Fixture,
    rules: &[&dyn DynRule],
    force: Option<&str>,
) -> Result<Box<dyn DynRule>> {
    let wanted = force.unwrap_or(&fixture.optimizer);
    let key = name_key(
        wanted
            .trim_start_matches("torch.optim.")
            .trim_start_matches("optax."),
    );
    let rule = rules
        .iter()
        .find(|r| name_key(r.info().name) == key)
        .ok_or_else(|| Error::UnknownOptimizer {
            name: wanted.to_string(),
            known: rules.iter().map(|r| r.info().name.to_string()).collect(),
        })?;
    let mut rule = rule.clone_box();
    let name = rule.info().name;
    for (h, v) in &fixture.hyper {
        let value = value(name, h, v)?;
        rule.set_hyper(h, value)?;
    }
    Ok(rule)
}

/// Replays `fixture` through `rule` in the fixture's dtype.
pub fn replay_with(rule: &dyn DynRule, fixture: &Fixture) -> Result<Outcome> {
    match fixture.dtype.as_str() {
        "f32" => replay_as::<f32>(rule, fixture),
        _ => replay_as::<f64>(rule, fixture),
    }
}

/// The result of replaying one fixture.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step within tolerance; the largest relative error seen,
    /// `|ours − ref| / max(|ref|, abs/rel)`.
    Pass {
        /// The largest relative error.
        max_rel_err: f64,
    },
    /// The parameters passed, but the final compressed state differs from
    /// the reference's.
    StateFail {
        /// What differs, first.
        what: String,
    },
    /// The first value out of tolerance.
    Fail {
        /// The step (from 1).
        step: usize,
        /// The coordinate.
        coord: usize,
        /// Our value.
        ours: f64,
        /// The reference's value.
        reference: f64,
    },
    /// A per-step number other than a parameter out of tolerance: the
    /// loss a closure-driven step returned, or (exactly) its number of
    /// objective evaluations.
    Mismatch {
        /// The step (from 1).
        step: usize,
        /// `loss` or `evaluations`.
        what: &'static str,
        /// Our value.
        ours: f64,
        /// The reference's value.
        reference: f64,
    },
}

impl Outcome {
    /// Whether the fixture passed.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass { .. })
    }

    /// The CLI's line for fixture `name`: `PASS <name> max_rel_err=<x>` or
    /// `FAIL <name> step=<k> coord=<i> ours=<a> ref=<b>`.
    pub fn line(&self, name: &str) -> String {
        match self {
            Outcome::Pass { max_rel_err } => format!("PASS {name} max_rel_err={max_rel_err:.3e}"),
            Outcome::StateFail { what } => format!("FAIL {name} final state: {what}"),
            Outcome::Fail {
                step,
                coord,
                ours,
                reference,
            } => format!("FAIL {name} step={step} coord={coord} ours={ours:e} ref={reference:e}"),
            Outcome::Mismatch {
                step,
                what,
                ours,
                reference,
            } => format!("FAIL {name} step={step} {what} ours={ours:e} ref={reference:e}"),
        }
    }
}

/// The pass criterion and the largest relative error seen so far.
struct Checker {
    tol: Tolerance,
    floor: f64,
    max_rel_err: f64,
}

impl Checker {
    fn new(tol: Tolerance) -> Self {
        let floor = if tol.rel > 0.0 {
            tol.abs / tol.rel
        } else {
            tol.abs
        };
        Checker {
            tol,
            floor,
            max_rel_err: 0.0,
        }
    }

    /// Whether `ours` is within tolerance of `reference` (NaN is not).
    fn within(&mut self, ours: f64, reference: f64) -> bool {
        let diff = (ours - reference).abs();
        if diff.is_nan() || diff > self.tol.abs + self.tol.rel * reference.abs() {
            return false;
        }
        self.max_rel_err = self
            .max_rel_err
            .max(diff / reference.abs().max(self.floor).max(f64::MIN_POSITIVE));
        true
    }

    /// The first parameter of step `step` (from 1) out of tolerance.
    fn params<F: DynFloat>(&mut self, step: usize, w: &[F], want: &[f64]) -> Option<Outcome> {
        for (i, (&ours, &reference)) in w.iter().zip(want).enumerate() {
            let ours = ours.to_f64();
            if !self.within(ours, reference) {
                return Some(Outcome::Fail {
                    step,
                    coord: i,
                    ours,
                    reference,
                });
            }
        }
        None
    }
}

/// Replays a row-sparse fixture through `rule` in element type `F`: each
/// step's `sparse_grads` given to [`crate::sparse::step_rows`].
fn replay_sparse_as<F: DynFloat>(rule: &dyn DynRule, fixture: &Fixture) -> Result<Outcome> {
    let cols = fixture.shape.as_deref().map_or(1, |s| s[1]);
    let mut w: Vec<F> = fixture.params0.iter().map(|&x| F::from_f64(x)).collect();
    let mut state = F::dyn_init(rule, w.len());
    let mut check = Checker::new(fixture.tolerance);
    for (k, (step, want)) in fixture.sparse_grads.iter().zip(&fixture.params).enumerate() {
        let values: Vec<F> = step
            .values
            .iter()
            .flatten()
            .map(|&x| F::from_f64(x))
            .collect();
        let grad = crate::sparse::SparseGrad {
            cols,
            rows: &step.rows,
            values: &values,
        };
        crate::sparse::step_rows(rule, &mut state, &mut w, &grad)?;
        if let Some(fail) = check.params(k + 1, &w, want) {
            return Ok(fail);
        }
    }
    Ok(Outcome::Pass {
        max_rel_err: check.max_rel_err,
    })
}

/// The L-BFGS options of a closure-driven fixture's `hyper` (PyTorch's
/// names; `line_search_fn` `"strong_wolfe"` or null).
pub fn fixture_lbfgs(fixture: &Fixture) -> Result<crate::lbfgs::Lbfgs> {
    let mut lbfgs = crate::lbfgs::Lbfgs::default();
    for (name, v) in &fixture.hyper {
        if name == "line_search_fn" {
            lbfgs.strong_wolfe = match v {
                serde_json::Value::Null => false,
                serde_json::Value::String(s) if s == "strong_wolfe" => true,
                other => {
                    return Err(Error::Invalid {
                        what: "hyperparameter `line_search_fn` of LBFGS".into(),
                        reason: format!("{other}: only \"strong_wolfe\" or null (as in PyTorch)"),
                    })
                }
            };
        } else if name == "max_eval" && v.is_null() {
            lbfgs.max_eval = None;
        } else {
            lbfgs.set_hyper(name, value("Lbfgs", name, v)?)?;
        }
    }
    Ok(lbfgs)
}

/// Replays a closure-driven fixture through L-BFGS in element type `F`:
/// each step's returned loss, its number of objective evaluations (exactly)
/// and the parameters after it.
pub fn replay_closure_as<F: DynFloat>(fixture: &Fixture) -> Result<Outcome> {
    fixture.validate()?;
    let objective = fixture.objective.as_ref().ok_or_else(|| Error::Data {
        source_name: fixture.name.clone(),
        reason: "no `objective`: a closure-driven fixture names its objective".into(),
    })?;
    let lbfgs = fixture_lbfgs(fixture)?;
    let mut w: Vec<F> = fixture.params0.iter().map(|&x| F::from_f64(x)).collect();
    let mut state = lbfgs.init::<F>(w.len());
    let mut check = Checker::new(fixture.tolerance);
    let (mut w64, mut g64) = (vec![0.0; w.len()], vec![0.0; w.len()]);
    for (k, want) in fixture.params.iter().enumerate() {
        let report = lbfgs.step(&mut state, &mut w, |w, g| {
            w64.iter_mut().zip(w).for_each(|(a, &b)| *a = b.to_f64());
            let loss = objective.eval(&w64, &mut g64);
            g.iter_mut()
                .zip(&g64)
                .for_each(|(a, &b)| *a = F::from_f64(b));
            Ok(loss)
        })?;
        let step = k + 1;
        if report.evaluations != fixture.evaluations[k] {
            return Ok(Outcome::Mismatch {
                step,
                what: "evaluations",
                ours: report.evaluations as f64,
                reference: fixture.evaluations[k] as f64,
            });
        }
        if !check.within(report.loss, fixture.losses[k]) {
            return Ok(Outcome::Mismatch {
                step,
                what: "loss",
                ours: report.loss,
                reference: fixture.losses[k],
            });
        }
        if let Some(fail) = check.params(step, &w, want) {
            return Ok(fail);
        }
    }
    Ok(Outcome::Pass {
        max_rel_err: check.max_rel_err,
    })
}

/// Replays `fixture` through `rule` in element type `F`: a dense fixture
/// by `step`, a row-sparse one by row-sparse steps; a closure-driven one
/// is an error (it replays through L-BFGS: [`replay`]).
pub fn replay_as<F: DynFloat>(rule: &dyn DynRule, fixture: &Fixture) -> Result<Outcome> {
    fixture.validate()?;
    match fixture.kind() {
        FixtureKind::Dense => {}
        FixtureKind::RowSparse => return replay_sparse_as::<F>(rule, fixture),
        FixtureKind::Closure => {
            return Err(Error::Invalid {
                what: format!("fixture {}", fixture.name),
                reason: format!(
                    "it is closure-driven (an objective, not gradients) and replays through L-BFGS, not {}; replay it through the built-in lbfgs",
                    rule.info().name
                ),
            })
        }
    }
    let info = rule.info();
    let inputs: Vec<&Vec<Vec<f64>>> = info
        .inputs
        .iter()
        .map(|name| {
            fixture.inputs.get(*name).ok_or_else(|| Error::Data {
                source_name: fixture.name.clone(),
                reason: format!(
                    "{} takes input `{name}` beside the gradient; the fixture has no `inputs.{name}`",
                    info.name
                ),
            })
        })
        .collect::<Result<_>>()?;
    let conv = |v: &[f64]| -> Vec<F> { v.iter().map(|&x| F::from_f64(x)).collect() };
    let mut w = conv(&fixture.params0);
    let mut state = match &fixture.shape {
        Some(shape) => F::dyn_init_shaped(rule, shape)?,
        None => F::dyn_init(rule, w.len()),
    };
    let mut check = Checker::new(fixture.tolerance);
    for (k, (g, want)) in fixture.grads.iter().zip(&fixture.params).enumerate() {
        let g = conv(g);
        let step_inputs: Vec<Vec<F>> = inputs.iter().map(|v| conv(&v[k])).collect();
        let refs: Vec<&[F]> = step_inputs.iter().map(|v| v.as_slice()).collect();
        F::dyn_step(rule, &mut state, &mut w, &g, &refs)?;
        if let Some(fail) = check.params(k + 1, &w, want) {
            return Ok(fail);
        }
    }
    if let Some(what) = compressed_state_differs(fixture, &state)? {
        return Ok(Outcome::StateFail { what });
    }
    Ok(Outcome::Pass {
        max_rel_err: check.max_rel_err,
    })
}

/// For an 8-bit fixture: the first difference between its maps and final
/// state and ours (`None` when they agree bit for bit, or the fixture has
/// none), or an error if the fixture's block size is not ours.
fn compressed_state_differs<F: Float>(
    fixture: &Fixture,
    state: &State<F>,
) -> Result<Option<String>> {
    if let Some(b) = fixture.block_size {
        if b != QBLOCK {
            return Err(Error::Data {
                source_name: fixture.name.clone(),
                reason: format!("block_size {b}: optdsl quantizes in blocks of {QBLOCK}"),
            });
        }
    }
    for (name, map, signed) in [
        ("qmap_signed", &fixture.qmap_signed, true),
        ("qmap_unsigned", &fixture.qmap_unsigned, false),
    ] {
        if let Some(map) = map {
            let ours = &quantizer(signed).map;
            if map.len() != 256 || map.iter().zip(ours).any(|(a, b)| *a as f32 != *b) {
                return Ok(Some(format!(
                    "the fixture's {name} is not bitsandbytes' map optdsl uses"
                )));
            }
        }
    }
    for k in 1..=2usize {
        let (codes_key, absmax_key) = (format!("state{k}"), format!("absmax{k}"));
        let (Some(want_codes), Some(want_absmax)) = (
            fixture.final_state.get(&codes_key),
            fixture.final_state.get(&absmax_key),
        ) else {
            continue;
        };
        let Some(Some(Packed::Q8 { codes, absmax, .. })) = state.packed.get(k - 1) else {
            return Ok(Some(format!(
                "the fixture has an 8-bit {codes_key}; the rule's buffer {k} is not 8-bit"
            )));
        };
        if let Some(i) = (0..want_codes.len().max(codes.len()))
            .find(|&i| want_codes.get(i).map(|&c| c as u8) != codes.get(i).copied())
        {
            return Ok(Some(format!(
                "{codes_key}[{i}]: ours {:?}, reference {:?}",
                codes.get(i),
                want_codes.get(i)
            )));
        }
        if let Some(i) = (0..want_absmax.len().max(absmax.len()))
            .find(|&i| want_absmax.get(i).map(|&a| a as f32) != absmax.get(i).copied())
        {
            return Ok(Some(format!(
                "{absmax_key}[{i}]: ours {:?}, reference {:?}",
                absmax.get(i),
                want_absmax.get(i)
            )));
        }
    }
    Ok(None)
}

/// Replays `fixture` through the built-in it names, in its dtype (a
/// closure-driven fixture through L-BFGS).
pub fn replay(fixture: &Fixture) -> Result<Outcome> {
    if fixture.kind() == FixtureKind::Closure {
        if name_key(fixture.optimizer.trim().trim_start_matches("torch.optim.")) != "lbfgs" {
            return Err(Error::UnknownOptimizer {
                name: fixture.optimizer.clone(),
                known: vec!["LBFGS".into()],
            });
        }
        return match fixture.dtype.as_str() {
            "f32" => replay_closure_as::<f32>(fixture),
            _ => replay_closure_as::<f64>(fixture),
        };
    }
    let rule = fixture_rule(fixture)?;
    match fixture.dtype.as_str() {
        "f32" => replay_as::<f32>(rule.as_ref(), fixture),
        _ => replay_as::<f64>(rule.as_ref(), fixture),
    }
}

/// Loads and replays one fixture file.
pub fn replay_file(path: &Path) -> Result<(Fixture, Outcome)> {
    let fixture = Fixture::load(path)?;
    let outcome = replay(&fixture)?;
    Ok((fixture, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(optimizer: &str, hyper: serde_json::Value) -> Fixture {
        Fixture {
            name: "t".into(),
            optimizer: optimizer.into(),
            source: String::new(),
            hyper: serde_json::from_value(hyper).unwrap(),
            dtype: "f64".into(),
            tolerance: Tolerance {
                rel: 1e-9,
                abs: 1e-12,
            },
            note: None,
            params0: vec![1.0, -1.0],
            grads: vec![vec![0.5, 0.0]],
            inputs: BTreeMap::new(),
            params: vec![vec![0.95, -1.0]],
            objective: None,
            losses: vec![],
            evaluations: vec![],
            shape: None,
            sparse_grads: vec![],
            block_size: None,
            qmap_signed: None,
            qmap_unsigned: None,
            final_state: BTreeMap::new(),
        }
    }

    #[test]
    fn reference_names_map_to_ours() {
        assert_eq!(builtin_name("RMSprop").unwrap(), "rmsprop");
        assert_eq!(builtin_name("torch.optim.AdamW").unwrap(), "adamw");
        assert_eq!(builtin_name("lion").unwrap(), "lion");
        assert_eq!(builtin_name("seed-adam").unwrap(), "seed-adam");
        let e = builtin_name("Shampoo").unwrap_err().to_string();
        assert!(
            e.contains("unknown optimizer `Shampoo`") && e.contains("adabelief"),
            "{e}"
        );
    }

    #[test]
    fn tuples_split_and_optax_names_rename() {
        let h = serde_json::from_value(serde_json::json!(
            {"betas": [0.8, 0.9], "learning_rate": 0.1, "b2": 0.5, "step_sizes": [1e-6, 5]}
        ))
        .unwrap();
        let m = map_hypers("x", &h).unwrap();
        let names: Vec<&str> = m.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(
            names,
            ["beta2", "beta1", "beta2", "lr", "step_min", "step_max"]
        );
        assert_eq!(m[1].1, HyperValue::Num(0.8));
        let bad = serde_json::from_value(serde_json::json!({"betas": 0.9})).unwrap();
        assert!(map_hypers("adam", &bad).is_err());
    }

    #[test]
    fn unknown_hyper_lists_the_known_ones() {
        let e = fixture_rule(&fixture("SGD", serde_json::json!({"momentun": 0.9})))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`momentun`") && e.contains("momentum, dampening"),
            "{e}"
        );
    }

    #[test]
    fn pass_and_fail_are_decided_per_coordinate() {
        let f = fixture("SGD", serde_json::json!({"lr": 0.1}));
        assert!(replay(&f).unwrap().passed());
        let mut wrong = f.clone();
        wrong.params[0][1] = -1.1;
        let out = replay(&wrong).unwrap();
        assert_eq!(
            out,
            Outcome::Fail {
                step: 1,
                coord: 1,
                ours: -1.0,
                reference: -1.1
            }
        );
        assert!(out.line("t").starts_with("FAIL t step=1 coord=1"));
    }

    #[test]
    fn a_rule_with_inputs_needs_them_in_the_fixture() {
        let f = fixture("vsgd", serde_json::json!({}));
        assert!(replay(&f).unwrap_err().to_string().contains("inputs.h"));
    }
}
