//! Optimizer paths on 2-D error surfaces: each built-in named in a
//! [`PathSpec`] is stepped from the surface's start, and the points are drawn
//! over a pale heat map of f with contour lines, one picture per surface.

use super::contour::{geometric_levels, linear_levels, quadratic_levels, Grid};
use super::surface::{Levels, Surface};
use super::{color, draw_error, file_in, fmt_num, prepare_dir, register_font, wrap, Format, FONT};
use crate::builtin::builtin_rule;
use crate::error::{Error, Result};
use crate::rule::HyperValue;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One optimizer to draw: a legend label, a built-in's name and the
/// hyperparameters set on it (the others keep their defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct PathSpec {
    /// The legend's name for it ("GD", "Momentum").
    pub label: String,
    /// The built-in rule (`optdsl list`).
    pub rule: String,
    /// Hyperparameters set before the first step.
    pub hypers: Vec<(String, f64)>,
}

impl PathSpec {
    /// A spec from borrowed parts.
    pub fn new(label: &str, rule: &str, hypers: &[(&str, f64)]) -> Self {
        PathSpec {
            label: label.into(),
            rule: rule.into(),
            hypers: hypers.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    /// "momentum: lr 0.012, momentum 0.9" (the rule and the hypers that were
    /// set), or "vsgd: defaults".
    pub fn describe(&self) -> String {
        let hypers: Vec<String> = self
            .hypers
            .iter()
            .map(|(n, v)| format!("{n} {}", fmt_num(*v)))
            .collect();
        if hypers.is_empty() {
            format!("{}: defaults", self.rule)
        } else {
            format!("{}: {}", self.rule, hypers.join(", "))
        }
    }
}

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
    let inputs = rule.info().inputs;
    for name in inputs {
        if !["h", "g_prev", "g2", "n_mb"].contains(name) {
            return Err(Error::Invalid {
                what: format!("optimizer `{}` for a path picture", spec.rule),
                reason: format!("it needs the input `{name}`, which a 2-D surface does not provide; only h (curvature), g_prev, g2 and n_mb are"),
            });
        }
    }
    let mut state = rule.init_f64(2);
    let mut w = surface.start;
    let mut points = vec![w];
    let mut values = vec![(surface.f)(w[0], w[1])];
    let mut g_prev = (surface.grad)(w[0], w[1]);
    let (wx, wy) = (surface.x.1 - surface.x.0, surface.y.1 - surface.y.0);
    let mut stop = None;
    for k in 1..=steps {
        let g = (surface.grad)(w[0], w[1]);
        let h = (surface.curvature)(w[0], w[1]);
        let g2 = [g[0] * g[0], g[1] * g[1]];
        let slices: Vec<&[f64]> = inputs
            .iter()
            .map(|n| match *n {
                "h" => &h[..],
                "g2" => &g2[..],
                "n_mb" => &[1.0, 1.0][..],
                _ => &g_prev[..],
            })
            .collect();
        rule.step_f64(&mut state, &mut w, &g, &slices)?;
        g_prev = g;
        let f = (surface.f)(w[0], w[1]);
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

/// Picture size in pixels (PNG) or user units (SVG).
pub const PATHS_SIZE: (u32, u32) = (1280, 820);

/// Traces every optimizer of every surface and writes `paths-<key>.png` (and
/// `.svg` when `formats` holds [`Format::Svg`]) into `dir`, which is created
/// if needed. `steps` replaces each surface's own step count. Returns the
/// files written, in order; no other file is touched.
pub fn plot_paths(dir: &Path, steps: Option<usize>, formats: &[Format]) -> Result<Vec<PathBuf>> {
    prepare_dir(dir)?;
    let mut written = Vec::new();
    for s in super::surfaces() {
        let n = steps.unwrap_or(s.steps);
        let traces = s
            .paths
            .iter()
            .map(|p| trace(&s, p, n))
            .collect::<Result<Vec<_>>>()?;
        for &format in formats {
            let path = file_in(dir, &format!("paths-{}", s.key), format);
            draw_paths(&s, &traces, &path, format)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Draws `traces` over `surface`'s contours into the file `path`.
pub fn draw_paths(surface: &Surface, traces: &[Trace], path: &Path, format: Format) -> Result<()> {
    register_font()?;
    match format {
        Format::Png => {
            let root = BitMapBackend::new(path, PATHS_SIZE).into_drawing_area();
            paint(&root, surface, traces, 1).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, PATHS_SIZE).into_drawing_area();
            paint(&root, surface, traces, 8).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
    }
}

/// The heat map's color for t ∈ [0, 1]: a 5-stop viridis, blended with white
/// by `pale` (1 = white) so that the paths stand out.
pub(crate) fn heat(t: f64, pale: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    } * 4.0;
    let k = (t.floor() as usize).min(3);
    let u = t - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |p: f64, q: f64| {
        let c = p + (q - p) * u;
        (c + (255.0 - c) * pale).round() as u8
    };
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The contour levels of a surface over the sampled window, and the map from
/// f to the heat map's t ∈ [0, 1].
fn levels(surface: &Surface, grid: &Grid) -> (Vec<f64>, Box<dyn Fn(f64) -> f64>) {
    let (lo, hi) = grid.range();
    match surface.levels {
        Levels::Quadratic => {
            let top = hi * 0.9;
            (
                quadratic_levels(top, 12),
                Box::new(move |f: f64| (f.max(0.0) / top).sqrt()),
            )
        }
        Levels::Log { lo: a, hi: b } => {
            let n = ((b / a).log10() * 2.0).round() as usize + 1;
            let (la, lb) = (a.ln(), b.ln());
            (
                geometric_levels(a, b, n),
                Box::new(move |f: f64| (f.max(a * 1e-3).ln() - la) / (lb - la)),
            )
        }
        Levels::Linear => (
            linear_levels(lo, hi, 15),
            Box::new(move |f: f64| (f - lo) / (hi - lo)),
        ),
    }
}

/// Clips the segment a–b to the box; None when it lies outside.
fn clip(a: [f64; 2], b: [f64; 2], x: (f64, f64), y: (f64, f64)) -> Option<([f64; 2], [f64; 2])> {
    // Liang–Barsky.
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a[0] - x.0),
        (dx, x.1 - a[0]),
        (-dy, a[1] - y.0),
        (dy, y.1 - a[1]),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then(|| {
        (
            [a[0] + t0 * dx, a[1] + t0 * dy],
            [a[0] + t1 * dx, a[1] + t1 * dy],
        )
    })
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn inside(p: [f64; 2], s: &Surface) -> bool {
    s.x.0 <= p[0] && p[0] <= s.x.1 && s.y.0 <= p[1] && p[1] <= s.y.1
}

/// A five-pointed star centred at `c`, outer radius `r` pixels.
fn star(c: (i32, i32), r: f64) -> Vec<(i32, i32)> {
    (0..10)
        .map(|k| {
            let rad = if k % 2 == 0 { r } else { r * 0.45 };
            let a = std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::PI / 5.0;
            (
                c.0 + (rad * a.cos()).round() as i32,
                c.1 - (rad * a.sin()).round() as i32,
            )
        })
        .collect()
}

/// Draws the whole picture on `root`; `cell` is the heat map's cell size in pixels.
fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Surface,
    traces: &[Trace],
    cell: i32,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let caption_font = (FONT, 18).into_font().color(&RGBColor(70, 70, 70));
    let caption = wrap(s.caption, w - 40, |t| {
        root.estimate_text_size(t, &caption_font)
            .map(|(w, _)| w)
            .unwrap_or(u32::MAX)
    });
    let (head, body) = root.split_vertically(52 + 24 * caption.len() as u32 + 4);
    head.draw_text(s.title, &(FONT, 28).into_font().color(&BLACK), (20, 10))?;
    for (k, line) in caption.iter().enumerate() {
        head.draw_text(line, &caption_font, (20, 48 + 24 * k as i32))?;
    }
    let legend_w = 345;
    let (left, legend) = body.split_horizontally(w - legend_w);

    let mut chart = ChartBuilder::on(&left)
        .margin_left(10)
        .margin_right(20)
        .margin_top(10)
        .margin_bottom(10)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(s.x.0..s.x.1, s.y.0..s.y.1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .axis_desc_style((FONT, 22))
        .label_style((FONT, 18))
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .draw()?;

    // Heat map and contours from one grid sample.
    let grid = Grid::sample(s.f, s.x, s.y, 401, 401);
    let (lv, to_t) = levels(s, &grid);
    {
        let area = chart.plotting_area();
        let (xr, yr) = area.get_pixel_range();
        let (pw, ph) = (xr.end - xr.start, yr.end - yr.start);
        let px = area.strip_coord_spec();
        let mut cy = 0;
        while cy < ph {
            let mut cx = 0;
            while cx < pw {
                let x = s.x.0 + (s.x.1 - s.x.0) * (cx as f64 + cell as f64 / 2.0) / pw as f64;
                let y = s.y.1 - (s.y.1 - s.y.0) * (cy as f64 + cell as f64 / 2.0) / ph as f64;
                let c = heat(to_t((s.f)(x, y)), 0.78);
                if cell == 1 {
                    px.draw_pixel((cx, cy), &c)?;
                } else {
                    px.draw(&Rectangle::new(
                        [(cx, cy), ((cx + cell).min(pw), (cy + cell).min(ph))],
                        c.filled(),
                    ))?;
                }
                cx += cell;
            }
            cy += cell;
        }
    }
    for &level in &lv {
        let c = heat(to_t(level), 0.25);
        let style = ShapeStyle::from(&c.mix(0.8)).stroke_width(1);
        chart.draw_series(
            grid.iso_segments(level)
                .into_iter()
                .map(|[a, b]| PathElement::new(vec![a, b], style)),
        )?;
    }

    // The marked point and the paths.
    // Earlier paths are drawn wider, so that where paths coincide each one
    // still shows as a band around the later ones.
    let width = |i: usize| (2 + traces.len().saturating_sub(i + 1)).min(6) as u32;
    for (i, t) in traces.iter().enumerate() {
        let c = color(i);
        let line = c.stroke_width(width(i));
        let segs: Vec<_> = t
            .points
            .windows(2)
            .filter_map(|p| clip(p[0], p[1], s.x, s.y))
            .collect();
        chart.draw_series(
            segs.iter()
                .map(|(a, b)| PathElement::new(vec![(a[0], a[1]), (b[0], b[1])], line)),
        )?;
        let every = (t.points.len() / 80).max(1);
        chart.draw_series(
            t.points
                .iter()
                .enumerate()
                .filter(|(k, p)| k % every == 0 && inside(**p, s))
                .map(|(_, p)| Circle::new((p[0], p[1]), 3, c.filled())),
        )?;
        let end = t.last();
        if inside(end, s) {
            chart.draw_series([
                Circle::new((end[0], end[1]), 7, WHITE.filled()),
                Circle::new((end[0], end[1]), 6, c.filled()),
            ])?;
        }
    }
    let start = (s.start[0], s.start[1]);
    chart.draw_series([
        Circle::new(start, 9, WHITE.filled()),
        Circle::new(start, 9, BLACK.stroke_width(3)),
    ])?;
    let m = chart.backend_coord(&(s.mark.0[0], s.mark.0[1]));
    let pa = chart.plotting_area().strip_coord_spec();
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let m = (m.0 - xr.start, m.1 - yr.start);
    pa.draw(&Polygon::new(star(m, 13.0), RGBColor(255, 200, 0).filled()))?;
    let mut outline = star(m, 13.0);
    outline.push(outline[0]);
    pa.draw(&PathElement::new(outline, BLACK.stroke_width(2)))?;

    // The legend, beside the chart.
    let big = (FONT, 20).into_font().color(&BLACK);
    let small = (FONT, 16).into_font().color(&RGBColor(80, 80, 80));
    let mut y = 20;
    let n = traces.iter().map(Trace::steps).max().unwrap_or(0);
    legend.draw_text(
        &format!("Optimizers, {n} steps"),
        &(FONT, 20).into_font().color(&BLACK),
        (10, y),
    )?;
    y += 34;
    for (i, t) in traces.iter().enumerate() {
        let c = color(i);
        legend.draw(&PathElement::new(
            vec![(10, y + 10), (50, y + 10)],
            c.stroke_width(width(i)),
        ))?;
        legend.draw(&Circle::new((30, y + 10), 6, c.filled()))?;
        legend.draw_text(&t.spec.label, &big, (60, y))?;
        y += 24;
        legend.draw_text(&t.spec.describe(), &small, (60, y))?;
        y += 20;
        let outcome = match t.stop {
            Some(Stop::Left(k)) => format!("left the picture at step {k}, stopped"),
            Some(Stop::Diverged(k)) => format!("diverged at step {k}"),
            None if inside(t.last(), s) => {
                format!(
                    "f = {} at the end",
                    fmt_num(*t.values.last().unwrap_or(&f64::NAN))
                )
            }
            None => format!(
                "ended off the picture, f = {}",
                fmt_num(*t.values.last().unwrap_or(&f64::NAN))
            ),
        };
        legend.draw_text(&outcome, &small, (60, y))?;
        y += 30;
    }
    y += 6;
    legend.draw(&Circle::new((30, y + 10), 9, WHITE.filled()))?;
    legend.draw(&Circle::new((30, y + 10), 9, BLACK.stroke_width(3)))?;
    legend.draw_text(
        &format!("start ({}, {})", fmt_num(s.start[0]), fmt_num(s.start[1])),
        &big,
        (60, y),
    )?;
    y += 32;
    legend.draw(&Polygon::new(
        star((30, y + 10), 13.0),
        RGBColor(255, 200, 0).filled(),
    ))?;
    let mut outline = star((30, y + 10), 13.0);
    outline.push(outline[0]);
    legend.draw(&PathElement::new(outline, BLACK.stroke_width(2)))?;
    legend.draw_text(s.mark.1, &big, (60, y))?;
    y += 32;
    legend.draw(&Circle::new((30, y + 10), 7, WHITE.filled()))?;
    legend.draw(&Circle::new(
        (30, y + 10),
        6,
        RGBColor(110, 110, 110).filled(),
    ))?;
    legend.draw_text("where each path ends", &big, (60, y))?;
    y += 40;
    let contour_note = match s.levels {
        Levels::Quadratic => "contours: equally spaced ellipses".to_string(),
        Levels::Log { lo, hi } => format!(
            "contours: f from {} to {}, log-spaced",
            fmt_num(lo),
            fmt_num(hi)
        ),
        Levels::Linear => "contours: evenly spaced values of f".to_string(),
    };
    legend.draw_text(&contour_note, &small, (10, y))?;
    legend.draw_text("shading: darker = lower f", &small, (10, y + 20))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_the_inside_part() {
        let (x, y) = ((0.0, 1.0), (0.0, 1.0));
        let (a, b) = clip([0.5, 0.5], [1.5, 0.5], x, y).unwrap();
        assert_eq!(a, [0.5, 0.5]);
        assert!((b[0] - 1.0).abs() < 1e-12 && (b[1] - 0.5).abs() < 1e-12);
        assert!(clip([2.0, 2.0], [3.0, 3.0], x, y).is_none());
        let (a, b) = clip([-1.0, 0.5], [2.0, 0.5], x, y).unwrap();
        assert!((a[0]).abs() < 1e-12 && (b[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn heat_runs_from_dark_to_light_and_pales() {
        let lo = heat(0.0, 0.0);
        let hi = heat(1.0, 0.0);
        assert_eq!(lo, RGBColor(68, 1, 84));
        assert_eq!(hi, RGBColor(253, 231, 37));
        assert_eq!(heat(0.3, 1.0), RGBColor(255, 255, 255));
        assert_eq!(heat(f64::NAN, 0.0), hi);
    }
}
