//! Pictures with plotters: optimizer paths over the contour lines of 2-D error
//! surfaces ([`paths`]) and per-epoch training curves ([`curves`]), as PNG and
//! SVG. Text is set in the bundled DejaVu Sans (registered with plotters'
//! `ab_glyph` backend), so drawing never looks up system fonts.

pub mod contour;
pub mod curves;
pub mod paths;
pub mod surface;

pub use curves::{plot_curves, plot_curves_as, EpochPoint};
pub use paths::{draw_paths, plot_paths, trace, PathSpec, Trace};
pub use surface::{surfaces, Levels, Surface};

use crate::error::{Error, Result};
use plotters::style::{FontStyle, RGBColor};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans (Bitstream Vera license, `assets/DejaVuSans.LICENSE`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The font family name every picture uses; registered by [`register_font`].
pub const FONT: &str = "sans-serif";

/// Registers the bundled font under [`FONT`] once per process.
pub fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "bundled font".into(),
            reason:
                "assets/DejaVuSans.ttf is not a valid TrueType font; restore it from the repository"
                    .into(),
        })
    }
}

/// A picture file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A raster image (`.png`).
    Png,
    /// A vector image (`.svg`).
    Svg,
}

impl Format {
    /// The file extension, without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

/// Creates `dir` (and its parents) if needed; an error names the directory.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Io {
            path: dir.display().to_string(),
            message: "exists and is not a directory; choose another output directory".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        message: format!("cannot create the output directory: {e}"),
    })
}

/// The typed error for a picture that could not be drawn or written.
pub(crate) fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("cannot write the picture: {e}"),
    }
}

/// Splits `text` into lines no wider than `max_px` as `measure` reports.
pub(crate) fn wrap(text: &str, max_px: u32, measure: impl Fn(&str) -> u32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let trial = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && measure(&trial) > max_px {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = trial;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `dir/stem.ext`.
pub(crate) fn file_in(dir: &Path, stem: &str, format: Format) -> PathBuf {
    dir.join(format!("{stem}.{}", format.ext()))
}

/// Twenty distinguishable line colors: the ten of matplotlib's `tab10`, then
/// ten darker or lighter companions (`tab20`'s second column, darkened where
/// the light tone would vanish on white).
pub const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(80, 80, 80),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(20, 60, 120),
    RGBColor(180, 90, 0),
    RGBColor(10, 100, 40),
    RGBColor(240, 120, 120),
    RGBColor(90, 40, 140),
    RGBColor(200, 150, 120),
    RGBColor(150, 20, 110),
    RGBColor(160, 160, 160),
    RGBColor(120, 120, 0),
    RGBColor(0, 120, 130),
];

/// The `i`-th palette color (cycling).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A compact number for legends: 3 significant digits, scientific below 1e-3
/// or from 1e5.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        // 3 significant digits, trailing zeros of the mantissa dropped: 2e-4, 1.2e5.
        let s = format!("{v:.2e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        format!("{mant}e{exp}")
    } else {
        let digits = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(fmt_num(0.03), "0.03");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(123.456), "123");
        assert_eq!(fmt_num(0.00012), "1.2e-4");
        assert_eq!(fmt_num(2e-4), "2e-4");
        assert_eq!(fmt_num(1e5), "1e5");
        assert_eq!(fmt_num(0.0), "0");
    }

    #[test]
    fn wrapping_keeps_lines_under_the_width() {
        let lines = wrap("aa bb cc dd ee", 5, |s| s.len() as u32);
        assert_eq!(lines, vec!["aa bb", "cc dd", "ee"]);
        assert_eq!(
            wrap("toolongword x", 3, |s| s.len() as u32),
            vec!["toolongword", "x"]
        );
    }

    #[test]
    fn the_bundled_font_registers() {
        register_font().unwrap();
    }
}
