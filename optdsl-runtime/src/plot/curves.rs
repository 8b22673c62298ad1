//! Training curves: train loss, test loss and test accuracy per epoch for
//! several optimizers, side by side in one picture with a shared legend.

use super::{color, draw_error, file_in, fmt_num, prepare_dir, register_font, Format, FONT};
use crate::error::{Error, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
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

/// Picture size in pixels (PNG) or user units (SVG).
pub const CURVES_SIZE: (u32, u32) = (1600, 620);

/// Draws train loss, test loss and test accuracy per epoch of every named
/// history into `dir/curves.png` (creating `dir` if needed) and returns the
/// file written. Non-finite values (a diverged run) are left out of the lines
/// and noted in the legend.
pub fn plot_curves(histories: &[(String, Vec<EpochPoint>)], dir: &Path) -> Result<Vec<PathBuf>> {
    plot_curves_as(histories, dir, &[Format::Png])
}

/// [`plot_curves`] in each of `formats` (`curves.png`, `curves.svg`).
pub fn plot_curves_as(
    histories: &[(String, Vec<EpochPoint>)],
    dir: &Path,
    formats: &[Format],
) -> Result<Vec<PathBuf>> {
    if histories.iter().all(|(_, h)| h.is_empty()) {
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
                paint(&root, histories).map_err(|e| draw_error(&path, e))?;
                root.present().map_err(|e| draw_error(&path, e))?;
            }
            Format::Svg => {
                let root = SVGBackend::new(&path, CURVES_SIZE).into_drawing_area();
                paint(&root, histories).map_err(|e| draw_error(&path, e))?;
                root.present().map_err(|e| draw_error(&path, e))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Which number a panel shows.
#[derive(Clone, Copy)]
enum Panel {
    TrainLoss,
    TestLoss,
    TestAccuracy,
}

impl Panel {
    fn value(self, p: &EpochPoint) -> f64 {
        match self {
            Panel::TrainLoss => p.train_loss,
            Panel::TestLoss => p.test_loss,
            Panel::TestAccuracy => 100.0 * p.test_accuracy,
        }
    }
    fn title(self) -> &'static str {
        match self {
            Panel::TrainLoss => "Training loss",
            Panel::TestLoss => "Test loss",
            Panel::TestAccuracy => "Test accuracy",
        }
    }
    fn y_desc(self) -> &'static str {
        match self {
            Panel::TrainLoss => "mean loss over the epoch",
            Panel::TestLoss => "loss on the test set",
            Panel::TestAccuracy => "% of the test set correct",
        }
    }
}

fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    histories: &[(String, Vec<EpochPoint>)],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let epochs = histories
        .iter()
        .flat_map(|(_, h)| h.iter().map(|p| p.epoch))
        .max()
        .unwrap_or(1);
    let first = histories
        .iter()
        .flat_map(|(_, h)| h.iter().map(|p| p.epoch))
        .min()
        .unwrap_or(1);
    let (head, body) = root.split_vertically(60);
    head.draw_text(
        &format!(
            "Training curves: {} optimizer{}, {} epoch{}",
            histories.len(),
            if histories.len() == 1 { "" } else { "s" },
            epochs,
            if epochs == 1 { "" } else { "s" }
        ),
        &(FONT, 28).into_font().color(&BLACK),
        (20, 14),
    )?;
    let legend_w = 280;
    let (panels, legend) = body.split_horizontally(w - legend_w);
    let cols = panels.split_evenly((1, 3));
    for (area, panel) in cols
        .iter()
        .zip([Panel::TrainLoss, Panel::TestLoss, Panel::TestAccuracy])
    {
        draw_panel(area, histories, panel, first, epochs)?;
    }

    let big = (FONT, 18).into_font().color(&BLACK);
    let mut y = 50;
    legend.draw_text(
        "Optimizers",
        &(FONT, 20).into_font().color(&BLACK),
        (10, y - 30),
    )?;
    let row = ((CURVES_SIZE.1 as i32 - 140) / histories.len().max(1) as i32).clamp(16, 26);
    for (i, (name, h)) in histories.iter().enumerate() {
        let c = color(i);
        legend.draw(&PathElement::new(
            vec![(10, y + 8), (44, y + 8)],
            c.stroke_width(3),
        ))?;
        legend.draw(&Circle::new((27, y + 8), 4, c.filled()))?;
        let diverged = h.iter().any(|p| {
            !(p.train_loss.is_finite() && p.test_loss.is_finite() && p.test_accuracy.is_finite())
        });
        let last = h.iter().rev().find(|p| p.test_accuracy.is_finite());
        let text = match (diverged, last) {
            (true, _) => format!("{name} (diverged)"),
            (false, Some(p)) => format!("{name}  {}%", fmt_num(100.0 * p.test_accuracy)),
            (false, None) => name.clone(),
        };
        legend.draw_text(&text, &big, (52, y))?;
        y += row;
    }
    legend.draw_text(
        "(last test accuracy)",
        &(FONT, 14).into_font().color(&RGBColor(90, 90, 90)),
        (10, y + 6),
    )?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    histories: &[(String, Vec<EpochPoint>)],
    panel: Panel,
    first: usize,
    epochs: usize,
) -> DrawResult<DB> {
    let values: Vec<f64> = histories
        .iter()
        .flat_map(|(_, h)| h.iter().map(move |p| panel.value(p)))
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let log = !matches!(panel, Panel::TestAccuracy) && lo > 0.0 && hi / lo > 30.0;
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        lo.abs().max(1.0) * 0.05
    };
    let (x0, x1) = (first as f64 - 0.15, epochs.max(first + 1) as f64 + 0.15);
    let ticks = (epochs - first + 1).min(10);
    let epoch_label = |v: &f64| {
        if (v - v.round()).abs() < 1e-6 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(panel.title(), (FONT, 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72);
    let lines = Lines {
        histories,
        panel,
        ticks,
        epoch_label: &epoch_label,
    };
    if log {
        let mut chart = builder.build_cartesian_2d(x0..x1, ((lo / 1.2)..(hi * 1.2)).log_scale())?;
        lines.draw(&mut chart, format!("{} (log scale)", panel.y_desc()), |v| {
            v > 0.0
        })?;
    } else {
        let mut chart = builder.build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))?;
        lines.draw(&mut chart, panel.y_desc().to_string(), |_| true)?;
    }
    Ok(())
}

/// One panel's lines: a curve per optimizer over the epochs, on a linear or
/// a logarithmic value axis.
struct Lines<'a> {
    histories: &'a [(String, Vec<EpochPoint>)],
    panel: Panel,
    ticks: usize,
    epoch_label: &'a dyn Fn(&f64) -> String,
}

impl Lines<'_> {
    /// Draws the grid and the curves on `chart`, keeping the values `keep`
    /// accepts (a log axis shows positive values only).
    fn draw<DB: DrawingBackend, Y>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
        y_desc: String,
        keep: impl Fn(f64) -> bool,
    ) -> DrawResult<DB>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_labels(self.ticks + 1)
            .x_label_formatter(self.epoch_label)
            .y_label_formatter(&|v| fmt_num(*v))
            .x_desc("epoch")
            .y_desc(y_desc)
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 16))
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        for (i, (_, h)) in self.histories.iter().enumerate() {
            let pts: Vec<(f64, f64)> = h
                .iter()
                .map(|p| (p.epoch as f64, self.panel.value(p)))
                .filter(|&(_, v)| v.is_finite() && keep(v))
                .collect();
            chart.draw_series(LineSeries::new(pts.clone(), color(i).stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color(i).filled())))?;
        }
        Ok(())
    }
}
