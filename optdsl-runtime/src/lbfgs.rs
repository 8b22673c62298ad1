//! L-BFGS, `torch.optim.LBFGS` of torch 2.15 ported line by line
//! (`torch/optim/lbfgs.py`: `step`, `_strong_wolfe`, `_cubic_interpolate`):
//! every option (lr, max_iter, max_eval, tolerance_grad, tolerance_change,
//! history_size, line_search_fn `None` | `strong_wolfe`, maximize), the same
//! termination tests in the same order and the same number of objective
//! evaluations per step.
//!
//! This is plain Rust, not a rule of the language, and must be: one L-BFGS
//! step calls the objective up to `max_eval` times with control flow that
//! depends on the values it returns (the line search's bracketing and zoom,
//! five termination tests), and its direction is the two-loop recursion over
//! a history of up to `history_size` vector pairs, whose dot products feed
//! each other in sequence. A rule of the language is one fused pass per step
//! over one gradient with per-element state; it has neither a closure to call
//! nor state shaped `[history, n]`. The vector operations here are the same
//! plain loops the rules compile to; the dot products sum in order, in f64.
//!
//! ```
//! # extern crate optdsl_runtime as optdsl;
//! use optdsl::lbfgs::Lbfgs;
//! // f(w) = (w0 - 3)^2 + 10 (w1 + 1)^2
//! let lbfgs = Lbfgs::default();
//! let mut state = lbfgs.init::<f64>(2);
//! let mut w = vec![0.0f64, 0.0];
//! let report = lbfgs
//!     .step(&mut state, &mut w, |w, g| {
//!         g[0] = 2.0 * (w[0] - 3.0);
//!         g[1] = 20.0 * (w[1] + 1.0);
//!         Ok((w[0] - 3.0).powi(2) + 10.0 * (w[1] + 1.0).powi(2))
//!     })
//!     .unwrap();
//! assert_eq!(report.loss, 19.0);
//! assert!((w[0] - 3.0).abs() < 1e-6 && (w[1] + 1.0).abs() < 1e-6);
//! ```

use crate::error::{Error, Result};
use crate::float::Float;
use crate::rule::HyperValue;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// `torch.optim.LBFGS`'s options, PyTorch's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lbfgs {
    /// The step length (1): the fixed step without line search, the
    /// line search's first trial step with it.
    pub lr: f64,
    /// Iterations per `step` call at most (20).
    pub max_iter: usize,
    /// Objective evaluations per `step` call at most; `None`: `max_iter * 5 / 4`.
    pub max_eval: Option<usize>,
    /// Stop when the largest |gradient| is at most this (1e-7).
    pub tolerance_grad: f64,
    /// Stop when the step, the loss change or the directional derivative is
    /// below this (1e-9).
    pub tolerance_change: f64,
    /// Pairs (s, y) kept for the inverse Hessian (100).
    pub history_size: usize,
    /// `line_search_fn="strong_wolfe"` (false: a fixed step of `lr`).
    pub strong_wolfe: bool,
    /// Maximize the objective (negate its value and gradient).
    pub maximize: bool,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Lbfgs {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            strong_wolfe: false,
            maximize: false,
        }
    }
}

/// The names [`Lbfgs::set_hyper`] takes, in order, with their defaults as text
/// (for `optdsl list`).
pub const HYPERS: &[(&str, &str)] = &[
    ("lr", "1"),
    ("max_iter", "20"),
    ("max_eval", "max_iter*5/4"),
    ("tolerance_grad", "1e-7"),
    ("tolerance_change", "1e-9"),
    ("history_size", "100"),
    ("strong_wolfe", "false"),
    ("maximize", "false"),
];

/// What one [`Lbfgs::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LbfgsReport {
    /// The loss at the step's start, as the closure returned it (PyTorch's
    /// `step` returns this).
    pub loss: f64,
    /// How many times the step called the closure.
    pub evaluations: usize,
}

/// What L-BFGS keeps between `step` calls (PyTorch's `state` of the first
/// parameter): counters, the last direction and step length, the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "F: Float")]
pub struct LbfgsState<F> {
    /// The number of parameters.
    pub len: usize,
    /// Objective evaluations over all steps.
    pub func_evals: u64,
    /// Iterations over all steps.
    pub n_iter: u64,
    /// The last search direction (empty before the first iteration).
    pub d: Vec<F>,
    /// The last step length.
    pub t: f64,
    /// The gradient differences y, oldest first.
    pub old_dirs: VecDeque<Vec<F>>,
    /// The steps s, oldest first.
    pub old_stps: VecDeque<Vec<F>>,
    /// 1 / (y·s) of each pair.
    pub ro: VecDeque<f64>,
    /// The scale of the initial inverse Hessian, y·s / y·y.
    pub h_diag: f64,
    /// The gradient at the last iteration's start (empty before).
    pub prev_flat_grad: Vec<F>,
    /// The loss at the last iteration's start.
    pub prev_loss: f64,
}

impl Lbfgs {
    /// Sets an option by PyTorch's name; `strong_wolfe = true` is
    /// `line_search_fn="strong_wolfe"`. Counts take whole numbers; a typed
    /// error for an unknown name, a wrong type or a value PyTorch refuses.
    pub fn set_hyper(&mut self, name: &str, value: HyperValue) -> Result<()> {
        let num = || {
            value.as_f64().ok_or_else(|| Error::HyperType {
                rule: "Lbfgs".into(),
                name: name.into(),
                expected: "a number",
                got: value.to_string(),
            })
        };
        let count = |min: usize| -> Result<usize> {
            let x = num()?;
            if x.fract() != 0.0 || x < min as f64 || x > u32::MAX as f64 {
                return Err(Error::HyperRange {
                    rule: "Lbfgs".into(),
                    name: name.into(),
                    range: format!("{name} a whole number >= {min}"),
                    got: x,
                });
            }
            Ok(x as usize)
        };
        let real = |check: fn(f64) -> bool, range: &str| -> Result<f64> {
            let x = num()?;
            if !check(x) {
                return Err(Error::HyperRange {
                    rule: "Lbfgs".into(),
                    name: name.into(),
                    range: range.into(),
                    got: x,
                });
            }
            Ok(x)
        };
        let boolean = || {
            value.as_bool().ok_or_else(|| Error::HyperType {
                rule: "Lbfgs".into(),
                name: name.into(),
                expected: "true or false",
                got: value.to_string(),
            })
        };
        match name {
            "lr" => self.lr = real(|x| x >= 0.0 && x.is_finite(), "0 <= lr")?,
            "max_iter" => self.max_iter = count(0)?,
            "max_eval" => self.max_eval = Some(count(0)?),
            "tolerance_grad" => {
                self.tolerance_grad = real(|x| !x.is_nan(), "tolerance_grad not NaN")?
            }
            "tolerance_change" => {
                self.tolerance_change = real(|x| !x.is_nan(), "tolerance_change not NaN")?
            }
            "history_size" => self.history_size = count(1)?,
            "strong_wolfe" => self.strong_wolfe = boolean()?,
            "maximize" => self.maximize = boolean()?,
            _ => {
                return Err(Error::UnknownHyper {
                    rule: "Lbfgs".into(),
                    name: name.into(),
                    known: HYPERS.iter().map(|h| h.0.to_string()).collect(),
                })
            }
        }
        Ok(())
    }

    /// The option `name` as a [`HyperValue`] (`max_eval` resolved).
    pub fn hyper(&self, name: &str) -> Option<HyperValue> {
        Some(match name {
            "lr" => HyperValue::Num(self.lr),
            "max_iter" => HyperValue::Num(self.max_iter as f64),
            "max_eval" => HyperValue::Num(self.max_eval() as f64),
            "tolerance_grad" => HyperValue::Num(self.tolerance_grad),
            "tolerance_change" => HyperValue::Num(self.tolerance_change),
            "history_size" => HyperValue::Num(self.history_size as f64),
            "strong_wolfe" => HyperValue::Bool(self.strong_wolfe),
            "maximize" => HyperValue::Bool(self.maximize),
            _ => return None,
        })
    }

    /// `max_eval`, or PyTorch's default `max_iter * 5 // 4`.
    pub fn max_eval(&self) -> usize {
        self.max_eval.unwrap_or(self.max_iter * 5 / 4)
    }

    /// A fresh state for `len` parameters.
    pub fn init<F: Float>(&self, len: usize) -> LbfgsState<F> {
        LbfgsState {
            len,
            func_evals: 0,
            n_iter: 0,
            d: Vec::new(),
            t: 0.0,
            old_dirs: VecDeque::new(),
            old_stps: VecDeque::new(),
            ro: VecDeque::new(),
            h_diag: 1.0,
            prev_flat_grad: Vec::new(),
            prev_loss: 0.0,
        }
    }

    /// One `LBFGS.step(closure)`: `closure(w, g)` evaluates the objective
    /// at `w`, writes its gradient into `g` (as long as `w`) and returns the
    /// loss. Returns the loss at the start and the number of evaluations.
    ///
    /// Errors, typed: `params` not of the state's length, or `strong_wolfe`
    /// with `max_eval` 0 (on which PyTorch's line search fails), before
    /// anything is evaluated; a closure error, passed on, and a loss or
    /// gradient that is NaN or infinite ([`Error::NonFiniteObjective`],
    /// where PyTorch would go on with NaN), which end the step: `params`
    /// hold the point of the failing evaluation without line search, the
    /// last accepted point with it (the start, after an error at the first
    /// evaluation).
    pub fn step<F: Float, C>(
        &self,
        state: &mut LbfgsState<F>,
        params: &mut [F],
        mut closure: C,
    ) -> Result<LbfgsReport>
    where
        C: FnMut(&[F], &mut [F]) -> Result<f64>,
    {
        let n = params.len();
        if n != state.len {
            return Err(Error::LengthMismatch {
                what: "the L-BFGS state".into(),
                expected: n,
                got: state.len,
            });
        }
        let max_eval = self.max_eval();
        if self.strong_wolfe && max_eval == 0 {
            return Err(Error::Invalid {
                what: "L-BFGS max_eval".into(),
                reason: "0 with the strong-Wolfe line search, which needs one evaluation; \
                         give max_eval >= 1"
                    .into(),
            });
        }
        let mut eval = Evaluator {
            closure: &mut closure,
            maximize: self.maximize,
            count: 0,
            grad: vec![F::ZERO; n],
        };
        let tolerance_change = self.tolerance_change;

        // evaluate initial f(x) and df/dx
        let orig_loss = eval.at(params)?;
        let mut loss = if self.maximize { -orig_loss } else { orig_loss };
        let mut current_evals = 1usize;
        state.func_evals += 1;
        let mut flat_grad = eval.grad.clone();
        if abs_max(&flat_grad) <= self.tolerance_grad {
            return Ok(LbfgsReport {
                loss: orig_loss,
                evaluations: eval.count,
            });
        }

        let mut n_iter = 0usize;
        while n_iter < self.max_iter {
            n_iter += 1;
            state.n_iter += 1;

            // compute the descent direction
            if state.n_iter == 1 {
                state.d = flat_grad.iter().map(|&g| -g).collect();
                state.old_dirs.clear();
                state.old_stps.clear();
                state.ro.clear();
                state.h_diag = 1.0;
            } else {
                let y: Vec<F> = flat_grad
                    .iter()
                    .zip(&state.prev_flat_grad)
                    .map(|(&a, &b)| a - b)
                    .collect();
                let t = F::from_f64(state.t);
                let s: Vec<F> = state.d.iter().map(|&x| x * t).collect();
                let ys = dot(&y, &s);
                if ys > 1e-10 {
                    if state.old_dirs.len() == self.history_size {
                        state.old_dirs.pop_front();
                        state.old_stps.pop_front();
                        state.ro.pop_front();
                    }
                    let yy = dot(&y, &y);
                    state.old_dirs.push_back(y);
                    state.old_stps.push_back(s);
                    state.ro.push_back(1.0 / ys);
                    state.h_diag = ys / yy;
                }
                // the two-loop recursion, q and r in one buffer
                let num_old = state.old_dirs.len();
                let mut al = vec![0.0f64; num_old];
                let mut q: Vec<F> = flat_grad.iter().map(|&g| -g).collect();
                for i in (0..num_old).rev() {
                    al[i] = dot(&state.old_stps[i], &q) * state.ro[i];
                    axpy(&mut q, -al[i], &state.old_dirs[i]);
                }
                let h = F::from_f64(state.h_diag);
                q.iter_mut().for_each(|x| *x *= h);
                for (i, al_i) in al.iter().enumerate() {
                    let be_i = dot(&state.old_dirs[i], &q) * state.ro[i];
                    axpy(&mut q, al_i - be_i, &state.old_stps[i]);
                }
                state.d = q;
            }
            state.prev_flat_grad.clone_from(&flat_grad);
            state.prev_loss = loss;

            // the step length's first guess
            state.t = if state.n_iter == 1 {
                let sum: f64 = flat_grad.iter().map(|g| g.abs().to_f64()).sum();
                let inv = 1.0 / F::from_f64(sum).to_f64();
                py_min(1.0, inv) * self.lr
            } else {
                self.lr
            };
            // the directional derivative
            let gtd = dot(&flat_grad, &state.d);
            if gtd > -tolerance_change {
                break;
            }

            let mut ls_func_evals = 0usize;
            let opt_cond;
            if self.strong_wolfe {
                let x_init = params.to_vec();
                let max_ls = max_eval as i64 - current_evals as i64;
                let found = strong_wolfe(
                    &mut eval,
                    params,
                    &x_init,
                    state.t,
                    &state.d,
                    loss,
                    &flat_grad,
                    gtd,
                    tolerance_change,
                    max_ls,
                )?;
                loss = found.f;
                flat_grad = found.g;
                state.t = found.t;
                ls_func_evals = found.evals;
                add_scaled(params, state.t, &state.d);
                opt_cond = abs_max(&flat_grad) <= self.tolerance_grad;
            } else {
                add_scaled(params, state.t, &state.d);
                if n_iter != self.max_iter {
                    let l = eval.at(params)?;
                    loss = if self.maximize { -l } else { l };
                    flat_grad.copy_from_slice(&eval.grad);
                    opt_cond = abs_max(&flat_grad) <= self.tolerance_grad;
                    ls_func_evals = 1;
                } else {
                    opt_cond = false;
                }
            }
            current_evals += ls_func_evals;
            state.func_evals += ls_func_evals as u64;

            // the termination tests, in PyTorch's order
            if n_iter == self.max_iter || current_evals >= max_eval || opt_cond {
                break;
            }
            let t = F::from_f64(state.t);
            let step_max = state
                .d
                .iter()
                .map(|&x| (x * t).abs().to_f64())
                .fold(0.0f64, nan_max);
            if step_max <= tolerance_change {
                break;
            }
            if (loss - state.prev_loss).abs() < tolerance_change {
                break;
            }
        }
        Ok(LbfgsReport {
            loss: orig_loss,
            evaluations: eval.count,
        })
    }
}

/// The closure with its evaluation count and gradient buffer.
struct Evaluator<'c, F, C> {
    closure: &'c mut C,
    maximize: bool,
    count: usize,
    grad: Vec<F>,
}

impl<F: Float, C: FnMut(&[F], &mut [F]) -> Result<f64>> Evaluator<'_, F, C> {
    /// The loss at `w` (as the closure returns it); the gradient, negated
    /// when maximizing, in `self.grad`.
    fn at(&mut self, w: &[F]) -> Result<f64> {
        self.count += 1;
        let loss = (self.closure)(w, &mut self.grad)?;
        if !loss.is_finite() {
            return Err(Error::NonFiniteObjective {
                what: "loss".into(),
                evaluation: self.count,
                value: loss.to_string(),
            });
        }
        if let Some(bad) = self.grad.iter().find(|g| !Float::is_finite(**g)) {
            return Err(Error::NonFiniteObjective {
                what: "gradient".into(),
                evaluation: self.count,
                value: bad.to_string(),
            });
        }
        if self.maximize {
            self.grad.iter_mut().for_each(|g| *g = -*g);
        }
        Ok(loss)
    }

    /// PyTorch's `_directional_evaluate`: the loss (negated when
    /// maximizing) and gradient at `x + t d`; `w` holds `x` again after.
    fn directional(&mut self, w: &mut [F], x: &[F], t: f64, d: &[F]) -> Result<(f64, Vec<F>)> {
        add_scaled(w, t, d);
        let loss = self.at(w);
        w.copy_from_slice(x);
        let loss = loss?;
        Ok((if self.maximize { -loss } else { loss }, self.grad.clone()))
    }
}

/// The sum of `a[i] * b[i]` in order, in f64.
fn dot<F: Float>(a: &[F], b: &[F]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |acc, (&x, &y)| acc + x.to_f64() * y.to_f64())
}

/// `y += alpha * x` (PyTorch's `y.add_(x, alpha=alpha)`).
fn axpy<F: Float>(y: &mut [F], alpha: f64, x: &[F]) {
    let a = F::from_f64(alpha);
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += a * x);
}

/// `w += t * d` (PyTorch's `_add_grad(t, d)`).
fn add_scaled<F: Float>(w: &mut [F], t: f64, d: &[F]) {
    axpy(w, t, d);
}

/// max(|x|), NaN if any is NaN (as `tensor.abs().max()`).
fn abs_max<F: Float>(x: &[F]) -> f64 {
    x.iter().map(|v| v.abs().to_f64()).fold(0.0, nan_max)
}

fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's `max(a, b)`: `a` unless `b > a`.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// PyTorch's `_cubic_interpolate`: the minimizer of the cubic through two
/// points with their values and slopes, clamped to `bounds` (default the
/// interval between the points); the bounds' midpoint when the cubic has no
/// minimizer.
pub fn cubic_interpolate(
    (x1, f1, g1): (f64, f64, f64),
    (x2, f2, g2): (f64, f64, f64),
    bounds: Option<(f64, f64)>,
) -> f64 {
    let (xmin_bound, xmax_bound) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        py_min(py_max(min_pos, xmin_bound), xmax_bound)
    } else {
        (xmin_bound + xmax_bound) / 2.0
    }
}

/// What the line search found.
struct Found<F> {
    f: f64,
    g: Vec<F>,
    t: f64,
    evals: usize,
}

/// PyTorch's `_strong_wolfe` (c1 = 1e-4, c2 = 0.9): a step length along
/// `d` from `x` satisfying the strong Wolfe conditions, by bracketing then
/// zooming with cubic interpolation; at most `max_ls` iterations.
#[allow(clippy::too_many_arguments)]
fn strong_wolfe<F: Float, C: FnMut(&[F], &mut [F]) -> Result<f64>>(
    eval: &mut Evaluator<'_, F, C>,
    w: &mut [F],
    x: &[F],
    mut t: f64,
    d: &[F],
    f: f64,
    g: &[F],
    gtd: f64,
    tolerance_change: f64,
    max_ls: i64,
) -> Result<Found<F>> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let d_norm = abs_max(d);
    let (mut f_new, mut g_new) = eval.directional(w, x, t, d)?;
    let mut ls_func_evals = 1usize;
    let mut gtd_new = dot(&g_new, d);

    let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0f64, f, g.to_vec(), gtd);
    let mut done = false;
    let mut ls_iter = 0i64;
    // bracket: points, values, gradients, slopes; one point when `single`
    let mut bracket = [0.0f64; 2];
    let mut bracket_f = [0.0f64; 2];
    let mut bracket_g: [Vec<F>; 2] = [Vec::new(), Vec::new()];
    let mut bracket_gtd = [f64::NAN; 2];
    let mut single = false;
    let mut set = false;
    while ls_iter < max_ls {
        if f_new > (f + C1 * t * gtd) || (ls_iter > 1 && f_new >= f_prev) {
            bracket = [t_prev, t];
            bracket_f = [f_prev, f_new];
            bracket_g = [g_prev.clone(), g_new.clone()];
            bracket_gtd = [gtd_prev, gtd_new];
            set = true;
            break;
        }
        if gtd_new.abs() <= -C2 * gtd {
            bracket = [t, t];
            bracket_f = [f_new, f_new];
            bracket_g = [g_new.clone(), g_new.clone()];
            single = true;
            done = true;
            set = true;
            break;
        }
        if gtd_new >= 0.0 {
            bracket = [t_prev, t];
            bracket_f = [f_prev, f_new];
            bracket_g = [g_prev.clone(), g_new.clone()];
            bracket_gtd = [gtd_prev, gtd_new];
            set = true;
            break;
        }
        // interpolate
        let min_step = t + 0.01 * (t - t_prev);
        let max_step = t * 10.0;
        let tmp = t;
        t = cubic_interpolate(
            (t_prev, f_prev, gtd_prev),
            (t, f_new, gtd_new),
            Some((min_step, max_step)),
        );
        // next step
        t_prev = tmp;
        f_prev = f_new;
        g_prev = g_new;
        gtd_prev = gtd_new;
        let (f2, g2) = eval.directional(w, x, t, d)?;
        f_new = f2;
        g_new = g2;
        ls_func_evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;
    }
    // reached max number of iterations?
    if ls_iter == max_ls {
        bracket = [0.0, t];
        bracket_f = [f, f_new];
        bracket_g = [g.to_vec(), g_new.clone()];
        set = true;
    }
    debug_assert!(set, "max_ls >= 0 sets the bracket");

    // zoom
    let mut insuf_progress = false;
    let (mut low, mut high) = if single || bracket_f[0] <= bracket_f[1] {
        (0usize, 1usize)
    } else {
        (1, 0)
    };
    while !done && ls_iter < max_ls {
        if (bracket[1] - bracket[0]).abs() * d_norm < tolerance_change {
            break;
        }
        t = cubic_interpolate(
            (bracket[0], bracket_f[0], bracket_gtd[0]),
            (bracket[1], bracket_f[1], bracket_gtd[1]),
            None,
        );
        let (bmax, bmin) = (
            py_max(bracket[0], bracket[1]),
            py_min(bracket[0], bracket[1]),
        );
        let eps = 0.1 * (bmax - bmin);
        if py_min(bmax - t, t - bmin) < eps {
            if insuf_progress || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() {
                    bmax - eps
                } else {
                    bmin + eps
                };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        let (f2, g2) = eval.directional(w, x, t, d)?;
        f_new = f2;
        g_new = g2;
        ls_func_evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;

        if f_new > (f + C1 * t * gtd) || f_new >= bracket_f[low] {
            bracket[high] = t;
            bracket_f[high] = f_new;
            bracket_g[high] = g_new;
            bracket_gtd[high] = gtd_new;
            (low, high) = if bracket_f[0] <= bracket_f[1] {
                (0, 1)
            } else {
                (1, 0)
            };
        } else {
            if gtd_new.abs() <= -C2 * gtd {
                done = true;
            } else if gtd_new * (bracket[high] - bracket[low]) >= 0.0 {
                bracket[high] = bracket[low];
                bracket_f[high] = bracket_f[low];
                bracket_g[high] = bracket_g[low].clone();
                bracket_gtd[high] = bracket_gtd[low];
            }
            bracket[low] = t;
            bracket_f[low] = f_new;
            bracket_g[low] = g_new;
            bracket_gtd[low] = gtd_new;
        }
    }
    Ok(Found {
        f: bracket_f[low],
        g: std::mem::take(&mut bracket_g[low]),
        t: bracket[low],
        evals: ls_func_evals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_interpolation_finds_a_quadratics_minimum() {
        // f(x) = (x - 2)^2: f(0) = 4, f'(0) = -4; f(3) = 1, f'(3) = 2
        let x = cubic_interpolate((0.0, 4.0, -4.0), (3.0, 1.0, 2.0), None);
        assert!((x - 2.0).abs() < 1e-12, "{x}");
        // clamped to the bounds
        let x = cubic_interpolate((0.0, 4.0, -4.0), (3.0, 1.0, 2.0), Some((2.5, 5.0)));
        assert_eq!(x, 2.5);
        // rising with slope 1 at both ends by less than 1: no minimizer,
        // the midpoint of the bounds
        let x = cubic_interpolate((0.0, 0.0, 1.0), (1.0, 0.5, 1.0), Some((0.0, 4.0)));
        assert_eq!(x, 2.0);
    }

    #[test]
    fn options_are_checked_as_pytorch_checks_them() {
        let mut l = Lbfgs::default();
        assert!(l.set_hyper("lr", HyperValue::Num(-1.0)).is_err());
        assert!(l.set_hyper("history_size", HyperValue::Num(0.0)).is_err());
        assert!(l.set_hyper("max_iter", HyperValue::Num(2.5)).is_err());
        assert!(l.set_hyper("maximize", HyperValue::Num(1.0)).is_err());
        let e = l
            .set_hyper("histroy_size", HyperValue::Num(3.0))
            .unwrap_err();
        assert!(e.to_string().contains("did you mean history_size"), "{e}");
        l.set_hyper("max_iter", HyperValue::Num(8.0)).unwrap();
        assert_eq!(l.max_eval(), 10);
        l.set_hyper("max_eval", HyperValue::Num(3.0)).unwrap();
        assert_eq!(l.hyper("max_eval"), Some(HyperValue::Num(3.0)));
    }
}
