//! The look shared by every picture: the bundled font, the line palette, the
//! marker shapes that tell lines of one color apart, and text helpers
//! (compact numbers, word wrapping).

use crate::error::{Error, Result};
use plotters::style::{FontStyle, RGBColor};
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

/// Twenty line colors in two rounds of ten hues. The first ten are
/// matplotlib's `tab10` (its grey replaced by black, since grey marks the
/// background lines); entry `i + 10` is a darker or lighter companion of
/// entry `i`'s hue (black's is a lime). Any ten consecutive entries
/// (cyclically) therefore hold ten different hues, which is what a panel of
/// up to ten lines gets.
pub const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(0, 0, 0),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(20, 60, 120),
    RGBColor(180, 90, 0),
    RGBColor(10, 100, 40),
    RGBColor(240, 120, 120),
    RGBColor(90, 40, 140),
    RGBColor(100, 50, 20),
    RGBColor(150, 20, 110),
    RGBColor(120, 220, 60),
    RGBColor(110, 110, 0),
    RGBColor(0, 150, 120),
];

/// The `i`-th palette color (cycling).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The faint grey of the lines drawn for context behind a panel's own.
pub const CONTEXT_GREY: RGBColor = RGBColor(205, 205, 205);

/// A point marker's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A filled disc.
    Circle,
    /// A filled square.
    Square,
    /// A filled triangle, point up.
    TriangleUp,
    /// A filled diamond.
    Diamond,
    /// A filled triangle, point down.
    TriangleDown,
    /// A filled five-pointed star.
    Star,
    /// A filled plus sign.
    Plus,
}

impl Marker {
    /// Every shape, in the order lines are given them (the star last: path
    /// pictures mark the minimum with one).
    pub const ALL: [Marker; 7] = [
        Marker::Circle,
        Marker::Square,
        Marker::TriangleUp,
        Marker::Diamond,
        Marker::TriangleDown,
        Marker::Plus,
        Marker::Star,
    ];

    /// The `i`-th shape (cycling).
    pub fn nth(i: usize) -> Marker {
        Marker::ALL[i % Marker::ALL.len()]
    }

    /// The outline of the shape centred on (0, 0) with radius `r` pixels, as
    /// a polygon in pixel offsets (y down); a circle is a 16-gon.
    pub fn outline(self, r: f64) -> Vec<(i32, i32)> {
        let px = |x: f64, y: f64| ((r * x).round() as i32, (r * y).round() as i32);
        let ring = |n: usize, turn: f64, radii: &[f64]| -> Vec<(i32, i32)> {
            (0..n)
                .map(|k| {
                    let a = turn + std::f64::consts::TAU * k as f64 / n as f64;
                    let rad = radii[k % radii.len()];
                    px(rad * a.cos(), -rad * a.sin())
                })
                .collect()
        };
        let up = std::f64::consts::FRAC_PI_2;
        match self {
            Marker::Circle => ring(16, 0.0, &[1.0]),
            Marker::Square => vec![
                px(-0.85, -0.85),
                px(0.85, -0.85),
                px(0.85, 0.85),
                px(-0.85, 0.85),
            ],
            Marker::TriangleUp => ring(3, up, &[1.2]),
            Marker::TriangleDown => ring(3, -up, &[1.2]),
            Marker::Diamond => ring(4, up, &[1.2]),
            Marker::Star => ring(10, up, &[1.35, 0.6]),
            Marker::Plus => {
                let (a, b) = (1.15, 0.4);
                vec![
                    px(-b, -a),
                    px(b, -a),
                    px(b, -b),
                    px(a, -b),
                    px(a, b),
                    px(b, b),
                    px(b, a),
                    px(-b, a),
                    px(-b, b),
                    px(-a, b),
                    px(-a, -b),
                    px(-b, -b),
                ]
            }
        }
    }

    /// The outline moved to the pixel `c`.
    pub fn at(self, c: (i32, i32), r: f64) -> Vec<(i32, i32)> {
        self.outline(r)
            .into_iter()
            .map(|(x, y)| (c.0 + x, c.1 + y))
            .collect()
    }
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

    /// Colors far enough apart to tell lines apart: the smallest distance
    /// between two palette entries, and between an entry and white or the
    /// context grey, in RGB units.
    #[test]
    fn palette_colors_are_distinct_and_visible() {
        let d = |a: RGBColor, b: RGBColor| {
            let (x, y, z) = (
                f64::from(a.0) - f64::from(b.0),
                f64::from(a.1) - f64::from(b.1),
                f64::from(a.2) - f64::from(b.2),
            );
            (x * x + y * y + z * z).sqrt()
        };
        for (i, &a) in PALETTE.iter().enumerate() {
            assert!(
                d(a, RGBColor(255, 255, 255)) > 120.0,
                "{i} fades into white"
            );
            assert!(d(a, CONTEXT_GREY) > 60.0, "{i} looks like the context grey");
            for (j, &b) in PALETTE.iter().enumerate().skip(i + 1) {
                assert!(d(a, b) > 60.0, "{i} and {j} are too alike");
            }
        }
    }

    #[test]
    fn markers_are_closed_shapes_of_the_asked_size() {
        for m in Marker::ALL {
            let o = m.outline(10.0);
            assert!(o.len() >= 3, "{m:?}");
            let far = o
                .iter()
                .map(|&(x, y)| f64::from(x * x + y * y).sqrt())
                .fold(0.0, f64::max);
            assert!((8.0..=14.0).contains(&far), "{m:?}: reaches {far}");
        }
    }
}
