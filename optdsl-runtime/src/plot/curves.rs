//! Training curves: train loss, test loss and test accuracy per epoch for
//! several optimizers as small multiples. Each row of the picture is one
//! family of optimizers (as `optdsl list` groups the built-ins; rules from
//! files form a row of their own), drawn in color with a marker per
//! optimizer, over the other rows' optimizers in faint grey; each row has its
//! own legend. The value axes are shared down each column.

use super::clip::clip;
use super::family::{looks, panels, Group, Look, Panel};
use super::output::{draw_error, file_in, prepare_dir, Format};
use super::style::{fmt_num, register_font, CONTEXT_GREY, FONT};
use crate::error::{Error, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// What one epoch of training measured.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochPoint {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Loss on the test set after the epoch.
    pub test_loss: f64,
    /// Fraction of the test set classified correctly after the epoch, in [0, 1].
    pub test_accuracy: f64,
}

impl From<&crate::train::EpochRecord> for EpochPoint {
    /// The numbers of a trainer's epoch record that the curves show.
    fn from(r: &crate::train::EpochRecord) -> Self {
        EpochPoint {
            epoch: r.epoch,
            train_loss: r.train_loss,
            test_loss: r.test_loss,
            test_accuracy: r.test_accuracy,
        }
    }
}

/// The picture's file stem: `curves.png`, `curves.svg`.
pub const CURVES_STEM: &str = "curves";

/// Picture size in pixels (PNG) or user units (SVG); the rows share the
/// height, one per family present.
pub const CURVES_SIZE: (u32, u32) = (1800, 2000);

/// One optimizer's curves: its legend label, the panel it goes in, and its
/// epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The legend's name for it.
    pub label: String,
    /// The row it is drawn in color in.
    pub group: Group,
    /// Its epochs.
    pub points: Vec<EpochPoint>,
}

/// Draws train loss, test loss and test accuracy per epoch of every named
/// history into `dir/curves.png` (creating `dir` if needed) and returns the
/// file written. A name that is a built-in's goes in that built-in's family
/// row, any other in the row of rules from files. Non-finite values (a
/// diverged run) are left out of the lines and noted in the legend.
pub fn plot_curves(histories: &[(String, Vec<EpochPoint>)], dir: &Path) -> Result<Vec<PathBuf>> {
    plot_curves_as(histories, dir, &[Format::Png])
}

/// [`plot_curves`] in each of `formats` (`curves.png`, `curves.svg`).
pub fn plot_curves_as(
    histories: &[(String, Vec<EpochPoint>)],
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    let curves: Vec<Curve> = histories
        .iter()
        .map(|(label, points)| Curve {
            label: label.clone(),
            group: Group::of_name(label),
            points: points.clone(),
        })
        .collect();
    plot_grouped_curves(&curves, dir, formats)
}

/// [`plot_curves_as`] with each optimizer's row given by the caller (a
/// comparison knows which rows ran rules from files, whatever their names).
pub fn plot_grouped_curves(
    curves: &[Curve],
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    if curves.iter().all(|c| c.points.is_empty()) {
        return Err(Error::Invalid {
            what: "training curves".into(),
            reason: "no epochs to draw; train for at least one epoch".into(),
        });
    }
    register_font()?;
    prepare_dir(dir)?;
    let mut written = Vec::new();
    for &format in formats {
        let path = file_in(dir, CURVES_STEM, format);
        match format {
            Format::Png => {
                let root = BitMapBackend::new(&path, CURVES_SIZE).into_drawing_area();
                paint(&root, curves).map_err(|e| draw_error(&path, e))?;
                root.present().map_err(|e| draw_error(&path, e))?;
            }
            Format::Svg => {
                let root = SVGBackend::new(&path, CURVES_SIZE).into_drawing_area();
                paint(&root, curves).map_err(|e| draw_error(&path, e))?;
                root.present().map_err(|e| draw_error(&path, e))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Which number a column shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    TrainLoss,
    TestLoss,
    TestAccuracy,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::TrainLoss, Metric::TestLoss, Metric::TestAccuracy];

    fn value(self, p: &EpochPoint) -> f64 {
        match self {
            Metric::TrainLoss => p.train_loss,
            Metric::TestLoss => p.test_loss,
            Metric::TestAccuracy => 100.0 * p.test_accuracy,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::TrainLoss => "Training loss (mean over the epoch)",
            Metric::TestLoss => "Test loss",
            Metric::TestAccuracy => "Test accuracy (% correct)",
        }
    }
}

/// A column's value axis, shared by every row: its range, and whether it is
/// logarithmic (losses spanning more than a factor 100).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    /// The range of `metric` over the curves. A loss axis stops at 1.5 times
    /// the highest first-epoch loss when some run climbs past 3 times it (a
    /// diverging run would otherwise squash every other curve); that run's
    /// line leaves the chart at the top.
    fn of(curves: &[Curve], metric: Metric) -> Axis {
        fn finite(c: &Curve, metric: Metric) -> impl Iterator<Item = f64> + '_ {
            c.points
                .iter()
                .map(move |p| metric.value(p))
                .filter(|v| v.is_finite())
        }
        let (mut lo, mut hi) = curves
            .iter()
            .flat_map(|c| finite(c, metric))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if metric != Metric::TestAccuracy {
            let start = curves
                .iter()
                .filter_map(|c| finite(c, metric).next())
                .fold(f64::NEG_INFINITY, f64::max);
            if start.is_finite() && hi > 3.0 * start && start > lo {
                hi = 1.5 * start;
            }
        }
        let log = metric != Metric::TestAccuracy && lo > 0.0 && hi / lo > 100.0;
        if log {
            return Axis {
                lo: lo / 1.2,
                hi: hi * 1.2,
                log,
            };
        }
        let pad = if hi > lo {
            (hi - lo) * 0.06
        } else {
            lo.abs().max(1.0) * 0.05
        };
        Axis {
            lo: lo - pad,
            hi: hi + pad,
            log,
        }
    }

    /// Whether the curve has a finite value above the axis.
    fn exceeded_by(self, c: &Curve, metric: Metric) -> bool {
        c.points.iter().any(|p| {
            let v = metric.value(p);
            v.is_finite() && v > self.hi
        })
    }

    /// The value as placed along the axis: its logarithm on a log axis.
    fn place(self, v: f64) -> f64 {
        if self.log {
            v.ln()
        } else {
            v
        }
    }

    /// The inverse of [`Axis::place`].
    fn value_at(self, t: f64) -> f64 {
        if self.log {
            t.exp()
        } else {
            t
        }
    }
}

/// The epochs drawn: the first and the last of any curve.
fn epoch_span(curves: &[Curve]) -> (usize, usize) {
    let epochs = || curves.iter().flat_map(|c| c.points.iter().map(|p| p.epoch));
    let first = epochs().min().unwrap_or(1);
    (first, epochs().max().unwrap_or(1).max(first))
}

/// The width of each row's legend.
const LEGEND_W: u32 = 330;
/// Where a row legend's entries start, below its heading.
const LEGEND_TOP: u32 = 36;
/// The picture's title band.
const HEAD_H: u32 = 76;
/// The column titles' band.
const COLUMN_TITLE_H: u32 = 34;

fn paint<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, curves: &[Curve]) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let (first, last) = epoch_span(curves);
    let groups: Vec<Group> = curves.iter().map(|c| c.group).collect();
    let rows = panels(&groups);
    let look = looks(&rows, curves.len());
    let axes = Metric::ALL.map(|m| Axis::of(curves, m));

    let (head, rest) = root.split_vertically(HEAD_H);
    head.draw_text(
        &format!(
            "Training curves: {} optimizer{}, {} epoch{}, one row per family",
            curves.len(),
            if curves.len() == 1 { "" } else { "s" },
            last,
            if last == 1 { "" } else { "s" }
        ),
        &(FONT, 30).into_font().color(&BLACK),
        (20, 10),
    )?;
    head.draw_text(
        "Each row draws its family in color (one color and marker per optimizer); \
         grey lines are the other rows' optimizers, for comparison.",
        &(FONT, 18).into_font().color(&RGBColor(80, 80, 80)),
        (20, 48),
    )?;
    let (titles, body) = rest.split_vertically(COLUMN_TITLE_H);
    let (title_cols, _) = titles.split_horizontally(w - LEGEND_W);
    for ((area, metric), axis) in title_cols
        .split_evenly((1, 3))
        .iter()
        .zip(Metric::ALL)
        .zip(axes)
    {
        let style = (FONT, 22)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        let (aw, _) = area.dim_in_pixel();
        let title = if axis.log {
            format!("{}, log scale", metric.title())
        } else {
            metric.title().to_string()
        };
        area.draw_text(&title, &style, (aw as i32 / 2, 4))?;
    }
    let row_h = (h - HEAD_H - COLUMN_TITLE_H) / rows.len().max(1) as u32;
    let mut rest = body;
    for (r, row) in rows.iter().enumerate() {
        let (area, below) = rest.split_vertically(row_h);
        rest = below;
        let bottom = r + 1 == rows.len();
        let (charts, legend) = area.split_horizontally(w - LEGEND_W);
        for (chart, (metric, axis)) in charts
            .split_evenly((1, 3))
            .iter()
            .zip(Metric::ALL.into_iter().zip(axes))
        {
            let cell = Cell {
                curves,
                row,
                look: &look,
                metric,
                axis,
                epochs: (first, last),
                bottom,
            };
            cell.draw(chart)?;
        }
        draw_legend(&legend, curves, row, &look, &axes)?;
    }
    Ok(())
}

/// One chart of the grid: a row's family against one metric.
struct Cell<'a> {
    curves: &'a [Curve],
    row: &'a Panel,
    look: &'a [Look],
    metric: Metric,
    axis: Axis,
    epochs: (usize, usize),
    bottom: bool,
}

impl Cell<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (first, last) = self.epochs;
        let (x0, x1) = (first as f64 - 0.15, last.max(first + 1) as f64 + 0.15);
        let mut builder = ChartBuilder::on(area);
        builder
            .margin_left(8)
            .margin_right(14)
            .margin_top(8)
            .margin_bottom(4)
            .x_label_area_size(if self.bottom { 50 } else { 28 })
            .y_label_area_size(64);
        if self.axis.log {
            let mut chart =
                builder.build_cartesian_2d(x0..x1, (self.axis.lo..self.axis.hi).log_scale())?;
            self.lines(&mut chart, |v| v > 0.0)
        } else {
            let mut chart = builder.build_cartesian_2d(x0..x1, self.axis.lo..self.axis.hi)?;
            self.lines(&mut chart, |_| true)
        }
    }

    /// Draws the grid, the other rows' curves in grey and this row's in
    /// color, keeping the values `keep` accepts (a log axis shows positive
    /// values only).
    fn lines<DB: DrawingBackend, Y>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
        keep: impl Fn(f64) -> bool,
    ) -> DrawResult<DB>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let (first, last) = self.epochs;
        let ticks = (last - first + 1).min(10);
        let epoch_label = |v: &f64| {
            if (v - v.round()).abs() < 1e-6 {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(ticks + 1)
            .y_labels(6)
            .x_label_formatter(&epoch_label)
            .y_label_formatter(&|v| fmt_num(*v))
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 16))
            .max_light_lines(1)
            .light_line_style(RGBColor(244, 244, 244))
            .bold_line_style(RGBColor(225, 225, 225));
        if self.bottom {
            mesh.x_desc("epoch");
        }
        mesh.draw()?;
        let (x0, x1) = (first as f64 - 0.15, last.max(first + 1) as f64 + 0.15);
        let window = (self.axis.place(self.axis.lo), self.axis.place(self.axis.hi));
        // The curve's points in axis units, clipped to the window.
        let segments = |c: &Curve| -> Vec<Vec<(f64, f64)>> {
            let pts: Vec<[f64; 2]> = c
                .points
                .iter()
                .map(|p| (p.epoch as f64, self.metric.value(p)))
                .filter(|&(_, v)| v.is_finite() && keep(v))
                .map(|(e, v)| [e, self.axis.place(v)])
                .collect();
            pts.windows(2)
                .filter_map(|w| clip(w[0], w[1], (x0, x1), window))
                .map(|(a, b)| {
                    vec![
                        (a[0], self.axis.value_at(a[1])),
                        (b[0], self.axis.value_at(b[1])),
                    ]
                })
                .collect()
        };
        for (i, c) in self.curves.iter().enumerate() {
            if !self.row.members.contains(&i) {
                let grey = CONTEXT_GREY.stroke_width(1);
                chart.draw_series(segments(c).into_iter().map(|s| PathElement::new(s, grey)))?;
            }
        }
        for &i in &self.row.members {
            let (c, look) = (&self.curves[i], self.look[i]);
            let line = look.color.stroke_width(2);
            chart.draw_series(segments(c).into_iter().map(|s| PathElement::new(s, line)))?;
            let shape = look.marker.outline(5.0);
            let inside = c
                .points
                .iter()
                .map(|p| (p.epoch as f64, self.metric.value(p)))
                .filter(|&(_, v)| {
                    v.is_finite() && keep(v) && self.axis.lo <= v && v <= self.axis.hi
                });
            chart.draw_series(
                inside.map(|p| {
                    EmptyElement::at(p) + Polygon::new(shape.clone(), look.color.filled())
                }),
            )?;
        }
        Ok(())
    }
}

/// A row's legend: the family's name, then one entry per optimizer (line,
/// marker, label and last test accuracy), in as many columns as the height
/// needs.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    curves: &[Curve],
    row: &Panel,
    look: &[Look],
    axes: &[Axis; 3],
) -> DrawResult<DB> {
    let (_, h) = area.dim_in_pixel();
    area.draw_text(
        &format!("{}  (last test accuracy)", row.group.title()),
        &(FONT, 19).into_font().color(&BLACK),
        (8, 6),
    )?;
    let n = row.members.len().max(1) as u32;
    let room = h.saturating_sub(LEGEND_TOP).max(1);
    let cols = if room / n >= 17 { 1 } else { 2 };
    let per_col = n.div_ceil(cols);
    let step = (room / per_col).clamp(14, 27) as i32;
    let size = (step - 4).clamp(13, 18);
    let col_w = (LEGEND_W / cols) as i32;
    let text = (FONT, size).into_font().color(&BLACK);
    for (k, &i) in row.members.iter().enumerate() {
        let (c, look) = (&curves[i], look[i]);
        let x = 8 + col_w * (k as u32 / per_col) as i32;
        let y = LEGEND_TOP as i32 + step * (k as u32 % per_col) as i32;
        let mid = y + size / 2;
        area.draw(&PathElement::new(
            vec![(x, mid), (x + 34, mid)],
            look.color.stroke_width(3),
        ))?;
        area.draw(&Polygon::new(
            look.marker.at((x + 17, mid), 6.0),
            look.color.filled(),
        ))?;
        let diverged = c.points.iter().any(|p| {
            !(p.train_loss.is_finite() && p.test_loss.is_finite() && p.test_accuracy.is_finite())
        });
        let last = c.points.iter().rev().find(|p| p.test_accuracy.is_finite());
        let mut label = match (diverged, last) {
            (true, _) => format!("{} (diverged)", c.label),
            (false, Some(p)) => format!("{}  {}%", c.label, fmt_num(100.0 * p.test_accuracy)),
            (false, None) => c.label.clone(),
        };
        if Metric::ALL
            .iter()
            .zip(axes)
            .any(|(&m, axis)| axis.exceeded_by(c, m))
        {
            label.push_str("  ↑ loss off chart");
        }
        area.draw_text(&label, &text, (x + 42, y))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(label: &str, losses: &[f64]) -> Curve {
        Curve {
            label: label.into(),
            group: Group::of_name(label),
            points: losses
                .iter()
                .enumerate()
                .map(|(k, &l)| EpochPoint {
                    epoch: k + 1,
                    train_loss: l,
                    test_loss: l,
                    test_accuracy: 0.5,
                })
                .collect(),
        }
    }

    /// A run whose loss explodes leaves the chart at the top instead of
    /// squashing the others: the axis ends at 1.5 times the highest
    /// first-epoch loss, every other value is on it, and only the exploding
    /// run is marked as exceeding it.
    #[test]
    fn a_diverging_loss_does_not_set_the_axis() {
        let calm = curve("sgd", &[2.3, 1.0, 0.5]);
        let wild = curve("adam", &[2.0, 1.5, 4e7]);
        let curves = vec![calm.clone(), wild.clone()];
        let axis = Axis::of(&curves, Metric::TrainLoss);
        assert!(!axis.log, "{axis:?}");
        assert!(
            axis.hi < 1.5 * 2.3 * 1.1 && axis.hi >= 1.5 * 2.3,
            "{axis:?}"
        );
        assert!(calm
            .points
            .iter()
            .all(|p| axis.lo < p.train_loss && p.train_loss < axis.hi));
        assert!(axis.exceeded_by(&wild, Metric::TrainLoss));
        assert!(!axis.exceeded_by(&calm, Metric::TrainLoss));
        // Without the explosion the axis spans the data, with no clipping.
        let tame = Axis::of(
            &[calm.clone(), curve("adam", &[2.0, 1.5, 3.0])],
            Metric::TrainLoss,
        );
        assert!(tame.hi >= 3.0 && tame.hi < 3.5, "{tame:?}");
    }

    /// Losses spanning more than two decades get a log axis, and points map
    /// to it and back.
    #[test]
    fn wide_losses_get_a_log_axis() {
        let axis = Axis::of(&[curve("sgd", &[2.0, 0.1, 0.005])], Metric::TestLoss);
        assert!(axis.log && axis.lo < 0.005 && axis.hi > 2.0, "{axis:?}");
        assert!((axis.value_at(axis.place(0.3)) - 0.3).abs() < 1e-12);
        let acc = Axis::of(&[curve("sgd", &[2.0, 0.1, 0.005])], Metric::TestAccuracy);
        assert!(!acc.log);
    }
}
