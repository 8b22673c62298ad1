//! Running optimizers over a surface: each [`PathSpec`]'s built-in is
//! stepped in f64 from the surface's start, and the points it visits are
//! kept. The pictures draw these traces; nothing here draws.

use super::spec::PathSpec;
use super::surface::Surface;
use crate::builtin::builtin_rule;
use crate::error::{Error, Result};
use crate::rule::HyperValue;
use optdsl_lang::role::Role;

/// Why a trace ended before its last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The point left the drawn window by more than half its size, at this step.
    Left(usize),
    /// f or the point became NaN or infinite at this step.
    Diverged(usize),
}

/// The points an optimizer visited on a surface.
#[derive(Clone, Debug)]
pub struct Trace {
    /// What was run.
    pub spec: PathSpec,
    /// `points[0]` is the start, `points[k]` the point after step k.
    pub points: Vec<[f64; 2]>,
    /// f at each point.
    pub values: Vec<f64>,
    /// Set when the trace ended early.
    pub stop: Option<Stop>,
}

impl Trace {
    /// The last point reached.
    pub fn last(&self) -> [f64; 2] {
        *self.points.last().expect("a trace holds its start")
    }
    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.points.len() - 1
    }
}

/// Runs `spec` on `surface` for `steps` steps from the surface's start, in f64.
///
/// A rule's inputs are given by their declared roles: `curvature` is the
/// surface's diagonal curvature at the current point, `previous_grad` the
/// gradient at the previous point (at the start: the current gradient),
/// `grad_squares` and `batch_rows` those of one sample, the gradient squared
/// and 1. The trace stops early when the point
/// leaves the window by more than half its size or stops being finite.
pub fn trace(surface: &Surface, spec: &PathSpec, steps: usize) -> Result<Trace> {
    let mut rule = builtin_rule(&spec.rule)?;
    for (name, value) in &spec.hypers {
        rule.set_hyper(name, HyperValue::Num(*value))?;
    }
    let info = rule.info();
    let inputs = info
        .inputs
        .iter()
        .zip(&info.program().input_roles)
        .map(|(name, role)| {
            role.ok_or_else(|| Error::Invalid {
                what: format!("optimizer `{}` for a path picture", spec.rule),
                reason: format!(
                    "its input `{name}` declares no role, so a 2-D surface cannot give it; \
                     declare one of: curvature, previous_grad, grad_squares, batch_rows"
                ),
            })
        })
        .collect::<Result<Vec<Role>>>()?;
    let mut state = rule.init_f64(2);
    let mut w = surface.start;
    let mut points = vec![w];
    let mut values = vec![surface.f(w[0], w[1])];
    let mut g_prev = surface.grad(w[0], w[1]);
    let (wx, wy) = (surface.x.1 - surface.x.0, surface.y.1 - surface.y.0);
    let mut stop = None;
    for k in 1..=steps {
        let g = surface.grad(w[0], w[1]);
        let h = surface.curvature(w[0], w[1]);
        let g2 = [g[0] * g[0], g[1] * g[1]];
        let slices: Vec<&[f64]> = inputs
            .iter()
            .map(|role| match role {
                Role::Curvature => &h[..],
                Role::GradSquares => &g2[..],
                Role::BatchRows => &[1.0, 1.0][..],
                Role::PreviousGrad => &g_prev[..],
            })
            .collect();
        rule.step_f64(&mut state, &mut w, &g, &slices)?;
        g_prev = g;
        let f = surface.f(w[0], w[1]);
        if !(w[0].is_finite() && w[1].is_finite() && f.is_finite()) {
            stop = Some(Stop::Diverged(k));
            break;
        }
        points.push(w);
        values.push(f);
        if w[0] < surface.x.0 - wx / 2.0
            || w[0] > surface.x.1 + wx / 2.0
            || w[1] < surface.y.0 - wy / 2.0
            || w[1] > surface.y.1 + wy / 2.0
        {
            stop = Some(Stop::Left(k));
            break;
        }
    }
    Ok(Trace {
        spec: spec.clone(),
        points,
        values,
        stop,
    })
}
