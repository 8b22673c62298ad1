//! Writing a run's files: atomically (a temporary file renamed over the
//! target) and into a directory checked writable first.

use crate::error::{Error, Result};
use std::path::Path;

/// An [`Error::Io`] for `path`.
pub(super) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file of its own in
/// the same directory, synced, then renamed over `path`; on failure the
/// temporary is removed and `path` left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = crate::checkpoint::dir_of(path);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let prefix = crate::checkpoint::temp_prefix(&name, std::process::id());
    crate::checkpoint::write_via_temporary(path, dir, &prefix, &[bytes])
        .map_err(|e| io_error(path, e))
}

/// Creates `dir` if missing and checks that a file can be written in it:
/// writes 4 KiB to a probe file, syncs it (where a full disk shows) and
/// removes it.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let probe = || -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".optdsl-probe-")
            .tempfile_in(dir)?;
        tmp.write_all(&[0u8; 4096])?;
        tmp.as_file().sync_all()?;
        tmp.close()
    };
    probe().map_err(|e| Error::Io {
        path: dir.display().to_string(),
        message: format!("cannot write a file here: {e}"),
    })
}
