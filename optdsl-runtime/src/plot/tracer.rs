//! Running optimizers over a surface: each [`PathSpec`]'s built-in is
//! stepped in f64 from the surface's start, and the points it visits are
//! kept. The pictures draw these traces; nothing here draws.

use super::spec::PathSpec;
use super::surface::Surface;
use crate::builtin::builtin_rule;
use crate::error::{Error, Result};
use crate::rule::HyperValue;

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

/// The extra inputs a rule may declare that a surface can give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SurfaceInput {
    /// `h`: the diagonal curvature at the current point.
    H,
    /// `g_prev`: the gradient at the previous point.
    GPrev,
    /// `g2`: the squared gradient of the one sample.
    G2,
    /// `n_mb`: the mini-batch size, 1.
    NMb,
}

impl SurfaceInput {
    /// The input a rule calls `name`, if a surface provides it.
    fn named(name: &str) -> Option<Self> {
        match name {
            "h" => Some(SurfaceInput::H),
            "g_prev" => Some(SurfaceInput::GPrev),
            "g2" => Some(SurfaceInput::G2),
            "n_mb" => Some(SurfaceInput::NMb),
            _ => None,
        }
    }
}

/// Runs `spec` on `surface` for `steps` steps from the surface's start, in f64.
///
/// Rules with an `input h` get the surface's diagonal curvature at the current
/// point; rules with `input g_prev` get the gradient at the previous point (at
/// the start: the current gradient); `g2` and `n_mb` are those of one sample,
/// the gradient squared and 1. The trace stops early when the point
/// leaves the window by more than half its size or stops being finite.
pub fn trace(surface: &Surface, spec: &PathSpec, steps: usize) -> Result<Trace> {
    let mut rule = builtin_rule(&spec.rule)?;
    for (name, value) in &spec.hypers {
        rule.set_hyper(name, HyperValue::Num(*value))?;
    }
    let inputs = rule
        .info()
        .inputs
        .iter()
        .map(|name| {
            SurfaceInput::named(name).ok_or_else(|| Error::Invalid {
                what: format!("optimizer `{}` for a path picture", spec.rule),
                reason: format!("it needs the input `{name}`, which a 2-D surface does not provide; only h (curvature), g_prev, g2 and n_mb are"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
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
            .map(|n| match n {
                SurfaceInput::H => &h[..],
                SurfaceInput::G2 => &g2[..],
                SurfaceInput::NMb => &[1.0, 1.0][..],
                SurfaceInput::GPrev => &g_prev[..],
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
