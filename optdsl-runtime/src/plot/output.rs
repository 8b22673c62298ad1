//! Where pictures go: the file formats, the output directory and the typed
//! error for a picture that cannot be written.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

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

/// `dir/stem.ext`.
pub(crate) fn file_in(dir: &Path, stem: &str, format: Format) -> PathBuf {
    dir.join(format!("{stem}.{}", format.ext()))
}
