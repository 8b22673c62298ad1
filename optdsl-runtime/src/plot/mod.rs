//! Pictures with plotters: optimizer paths over the contour lines of 2-D error
//! surfaces ([`paths`]) and per-epoch training curves ([`curves`]), as PNG and
//! SVG. Text is set in the bundled DejaVu Sans (registered with plotters'
//! `ab_glyph` backend), so drawing never looks up system fonts.
//!
//! The modules form layers, each using only those above it:
//! [`style`] and [`output`] (look and files), [`spec`] (which optimizer to
//! run), [`surface`] (the test functions as maths), [`gallery`] (the
//! surfaces pictured and the optimizers on each), [`tracer`] (running an
//! optimizer over a surface), [`clip`] and [`contour`] (segments in a
//! window, iso-lines), [`family`] (panels by
//! optimizer family, colors and markers), and the drawing: [`paths`] and
//! [`curves`].

pub mod clip;
pub mod contour;
pub mod curves;
pub mod family;
pub mod gallery;
pub mod output;
pub mod paths;
pub mod spec;
pub mod style;
pub mod surface;
pub mod tracer;

pub use curves::{plot_curves, plot_curves_as, plot_grouped_curves, Curve, EpochPoint};
pub use family::{looks, panels, Group, Look, Panel};
pub use gallery::surfaces;
pub use output::{prepare_dir, Format};
pub use paths::{draw_paths, plot_paths};
pub use spec::PathSpec;
pub use style::{color, fmt_num, register_font, Marker, CONTEXT_GREY, FONT, PALETTE};
pub use surface::{Function, Levels, Surface, BOWL_KAPPA};
pub use tracer::{trace, Stop, Trace};
