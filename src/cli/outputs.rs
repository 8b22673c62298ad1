//! Guards for what a subcommand writes: an output path that is one of the
//! run's inputs (the training data, the checkpoint resumed) is refused
//! before anything is read or written, whichever way either is spelled
//! (relative, `..`, symbolic links, hard links).

use optdsl::Error;
use std::path::{Path, PathBuf};

/// `path` as the file system resolves it: canonical if it exists, else its
/// parent's canonical path joined with its file name (the file a write
/// would create); `None` if neither can be resolved.
pub fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// Whether writing `output` would write over `input`: both resolve to the
/// same path, or both exist and are one file (same device and inode).
pub fn same_file(output: &Path, input: &Path) -> bool {
    match (resolved(output), resolved(input)) {
        (Some(a), Some(b)) if a == b => return true,
        _ => {}
    }
    same_inode(output, input)
}

#[cfg(unix)]
fn same_inode(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_inode(_a: &Path, _b: &Path) -> bool {
    false
}

/// An output of a run: the flag that names it and the file it writes.
#[derive(Debug, Clone)]
pub struct Output<'a> {
    /// `--save`, `--out`.
    pub flag: &'a str,
    /// The file written.
    pub path: PathBuf,
}

/// An input of a run: the flag that names it, its value as given, and the
/// file it reads.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// `--data`, `--resume`.
    pub flag: &'a str,
    /// The flag's value as given (e.g. `csv:digits.csv`).
    pub value: String,
    /// The file read.
    pub path: PathBuf,
}

/// Refuses an output that would write over one of `inputs` (an error naming
/// the output's flag, its file and the input's flag), and two outputs that
/// are one file.
pub fn refuse_overlaps(outputs: &[Output<'_>], inputs: &[Input<'_>]) -> Result<(), Error> {
    for out in outputs {
        if let Some(input) = inputs.iter().find(|i| same_file(&out.path, &i.path)) {
            return Err(Error::Invalid {
                what: out.flag.into(),
                reason: format!(
                    "it would write {}, which is one of this run's inputs ({} {}) and would be \
                     overwritten; give another path",
                    out.path.display(),
                    input.flag,
                    input.value
                ),
            });
        }
    }
    for (i, a) in outputs.iter().enumerate() {
        if let Some(b) = outputs[i + 1..]
            .iter()
            .find(|b| same_file(&a.path, &b.path))
        {
            return Err(Error::Invalid {
                what: b.flag.into(),
                reason: format!(
                    "it would write {}, which {} writes too; give another path",
                    b.path.display(),
                    a.flag
                ),
            });
        }
    }
    Ok(())
}
