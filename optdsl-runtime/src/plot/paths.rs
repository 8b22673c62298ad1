//! Pictures of optimizer paths on 2-D error surfaces: the traces of
//! [`tracer`](super::tracer) drawn over a pale heat map of f with contour
//! lines, one picture per surface of [`gallery`](super::gallery), each path
//! in its own color and marker shape. Drawing only: the maths, the optimizer
//! lists and the tracing live in the modules this one uses.

use super::clip::clip;
use super::contour::{geometric_levels, linear_levels, quadratic_levels, Grid};
use super::gallery::surfaces;
use super::output::{draw_error, file_in, prepare_dir, Format};
use super::style::{color, fmt_num, register_font, wrap, Marker, FONT};
use super::surface::{Levels, Surface};
use super::tracer::{trace, Stop, Trace};
use crate::error::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Picture size in pixels (PNG) or user units (SVG).
pub const PATHS_SIZE: (u32, u32) = (1280, 1120);

/// The grey of the other paths on an optimizer's own small chart (darker
/// than the curves' context grey: it lies on the heat map).
const PATH_GREY: RGBColor = RGBColor(120, 120, 120);

/// Traces every optimizer of every surface and writes `paths-<key>.png` (and
/// `.svg` when `formats` holds [`Format::Svg`]) into `dir`, which is created
/// if needed. `steps` replaces each surface's own step count. Returns the
/// files written, in order; no other file is touched.
pub fn plot_paths(dir: &Path, steps: Option<usize>, formats: &[Format]) -> Result<Vec<PathBuf>> {
    prepare_dir(dir)?;
    let mut written = Vec::new();
    for s in surfaces() {
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

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The marked point's star, outer radius about `r` pixels, centred at `c`.
fn star(c: (i32, i32), r: f64) -> Vec<(i32, i32)> {
    Marker::Star.at(c, r / 1.35)
}

/// Path `i`'s marker shape: the paths of one picture all differ.
fn marker(i: usize) -> Marker {
    Marker::nth(i)
}

/// The axes of a chart over a surface's window.
type SurfaceChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What every chart of one picture shares: the surface, a grid sample of f,
/// its contour levels and the heat map's scale.
struct Backdrop<'a> {
    s: &'a Surface,
    grid: Grid,
    levels: Vec<f64>,
    to_t: Box<dyn Fn(f64) -> f64>,
    /// The heat map's cell size in pixels.
    cell: i32,
}

impl Backdrop<'_> {
    /// Paints the pale heat map of f and the contour lines on `chart`.
    fn draw<DB: DrawingBackend>(&self, chart: &mut SurfaceChart<'_, DB>) -> DrawResult<DB> {
        let (s, cell) = (self.s, self.cell);
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
                    let c = heat((self.to_t)(s.f(x, y)), 0.78);
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
        for &level in &self.levels {
            let c = heat((self.to_t)(level), 0.25);
            let style = ShapeStyle::from(&c.mix(0.8)).stroke_width(1);
            chart.draw_series(
                self.grid
                    .iso_segments(level)
                    .into_iter()
                    .map(|[a, b]| PathElement::new(vec![a, b], style)),
            )?;
        }
        Ok(())
    }

    /// The start (a ringed white disc of radius `r`) and the marked point
    /// (a yellow star of radius about 1.45 `r`).
    fn marks<DB: DrawingBackend>(
        &self,
        chart: &mut SurfaceChart<'_, DB>,
        r: i32,
    ) -> DrawResult<DB> {
        let s = self.s;
        let start = (s.start[0], s.start[1]);
        chart.draw_series([
            Circle::new(start, r, WHITE.filled()),
            Circle::new(start, r, BLACK.stroke_width((r / 3).max(1) as u32)),
        ])?;
        let m = chart.backend_coord(&(s.mark.0[0], s.mark.0[1]));
        let pa = chart.plotting_area().strip_coord_spec();
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let m = (m.0 - xr.start, m.1 - yr.start);
        let size = 1.45 * f64::from(r);
        pa.draw(&Polygon::new(star(m, size), RGBColor(255, 200, 0).filled()))?;
        let mut outline = star(m, size);
        outline.push(outline[0]);
        pa.draw(&PathElement::new(outline, BLACK.stroke_width(2)))?;
        Ok(())
    }
}

/// Draws trace `i` on `chart`: its line (`width` pixels, clipped to the
/// window), its marker at up to `dots` points along it, and a larger marker
/// of radius `end` where it ends.
fn draw_trace<DB: DrawingBackend>(
    chart: &mut SurfaceChart<'_, DB>,
    s: &Surface,
    t: &Trace,
    i: usize,
    (width, dots, end): (u32, usize, f64),
) -> DrawResult<DB> {
    let c = color(i);
    let line = c.stroke_width(width);
    chart.draw_series(
        t.points
            .windows(2)
            .filter_map(|p| clip(p[0], p[1], s.x, s.y))
            .map(|(a, b)| PathElement::new(vec![(a[0], a[1]), (b[0], b[1])], line)),
    )?;
    let every = (t.points.len() / dots.max(1)).max(1);
    let dot = marker(i).outline(end * 4.0 / 7.0);
    chart.draw_series(
        t.points
            .iter()
            .enumerate()
            .filter(|(k, p)| k % every == 0 && s.contains(**p))
            .map(|(_, p)| EmptyElement::at((p[0], p[1])) + Polygon::new(dot.clone(), c.filled())),
    )?;
    let last = t.last();
    if s.contains(last) {
        let at = (last[0], last[1]);
        chart.draw_series([
            EmptyElement::at(at) + Polygon::new(marker(i).outline(end + 2.0), WHITE.filled()),
            EmptyElement::at(at) + Polygon::new(marker(i).outline(end), c.filled()),
        ])?;
    }
    Ok(())
}

/// The height of the strip of small pictures, one per optimizer, under the
/// main one.
const STRIP_H: u32 = 300;

/// Draws the whole picture on `root`: the title and caption, every path on
/// one chart with the legend beside it, and under them one small chart per
/// optimizer showing its path alone in color, the others in grey (where
/// paths run together on the main chart, each stays visible there). `cell`
/// is the heat map's cell size in pixels.
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
    let (_, body_h) = body.dim_in_pixel();
    let (top, strip) = body.split_vertically(body_h.saturating_sub(STRIP_H));
    let legend_w = 345;
    let (left, legend) = top.split_horizontally(w - legend_w);

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
    let grid = Grid::sample(|x, y| s.f(x, y), s.x, s.y, 401, 401);
    let (levels, to_t) = levels(s, &grid);
    let backdrop = Backdrop {
        s,
        grid,
        levels,
        to_t,
        cell,
    };
    backdrop.draw(&mut chart)?;

    // Earlier paths are drawn wider, so that where paths coincide each one
    // still shows as a band around the later ones.
    let width = |i: usize| (2 + traces.len().saturating_sub(i + 1)).min(6) as u32;
    for (i, t) in traces.iter().enumerate() {
        draw_trace(&mut chart, s, t, i, (width(i), 80, 7.0))?;
    }
    backdrop.marks(&mut chart, 9)?;

    // One small chart per path: that path in color over the others in grey.
    let small_cell = if cell == 1 { 2 } else { cell };
    let small = Backdrop {
        cell: small_cell,
        ..backdrop
    };
    for (area, (i, t)) in strip
        .split_evenly((1, traces.len().max(1)))
        .iter()
        .zip(traces.iter().enumerate())
    {
        let title = (FONT, 18).into_font().color(&color(i));
        let mut chart = ChartBuilder::on(area)
            .caption(&t.spec.label, title)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(36)
            .build_cartesian_2d(s.x.0..s.x.1, s.y.0..s.y.1)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(5)
            .y_labels(5)
            .label_style((FONT, 13))
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .draw()?;
        small.draw(&mut chart)?;
        let grey = PATH_GREY.stroke_width(1);
        for (_, other) in traces.iter().enumerate().filter(|&(j, _)| j != i) {
            chart.draw_series(
                other
                    .points
                    .windows(2)
                    .filter_map(|p| clip(p[0], p[1], s.x, s.y))
                    .map(|(a, b)| PathElement::new(vec![(a[0], a[1]), (b[0], b[1])], grey)),
            )?;
        }
        draw_trace(&mut chart, s, t, i, (2, 40, 5.0))?;
        small.marks(&mut chart, 5)?;
    }

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
        legend.draw(&Polygon::new(
            marker(i).at((30, y + 10), 8.0),
            WHITE.filled(),
        ))?;
        legend.draw(&Polygon::new(marker(i).at((30, y + 10), 6.5), c.filled()))?;
        legend.draw_text(&t.spec.label, &big, (60, y))?;
        y += 24;
        legend.draw_text(&t.spec.describe(), &small, (60, y))?;
        y += 20;
        let outcome = match t.stop {
            Some(Stop::Left(k)) => format!("left the picture at step {k}, stopped"),
            Some(Stop::Diverged(k)) => format!("diverged at step {k}"),
            None if s.contains(t.last()) => {
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
    fn heat_runs_from_dark_to_light_and_pales() {
        let lo = heat(0.0, 0.0);
        let hi = heat(1.0, 0.0);
        assert_eq!(lo, RGBColor(68, 1, 84));
        assert_eq!(hi, RGBColor(253, 231, 37));
        assert_eq!(heat(0.3, 1.0), RGBColor(255, 255, 255));
        assert_eq!(heat(f64::NAN, 0.0), hi);
    }
}
