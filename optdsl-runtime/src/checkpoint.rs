//! Checkpoint files: versioned, checksummed, written atomically (each save
//! writes its own temporary file in the same directory, syncs it, then
//! renames it over the target), so a crash mid-write never leaves a
//! half-written checkpoint and an existing one is replaced only by a
//! complete one. A save holds an advisory lock on the path (`PATH.lock`,
//! holding the writer's process id), so a second process writing the same
//! checkpoint is refused with an error naming the first, instead of the
//! last writer silently winning; threads of one process share the lock.
//!
//! The format is one header line, `optdsl-checkpoint <version> <kind>
//! <length> <fnv1a64>`, then `length` bytes of JSON whose FNV-1a hash is the
//! last field. JSON keeps every f32 and f64 exactly (shortest round-trip
//! form), so a run resumed from a checkpoint continues bit for bit.

use crate::error::{Error, Result};
use optdsl_lang::fnv1a as fnv1a64;
use serde::{de::DeserializeOwned, Serialize};
use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
const MAGIC: &str = "optdsl-checkpoint";

fn error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Writes `value` as a checkpoint of `kind` (e.g. `"trainer"`) to `path`,
/// atomically: into a temporary file of its own in the same directory
/// (named `.NAME.tmp-PID-XXXXXX`), synced, then renamed over `path`. Holds
/// the path's [`lock`] while it writes (an error naming the other process
/// if another one holds it).
pub fn save<T: Serialize>(path: &Path, kind: &str, value: &T) -> Result<()> {
    let payload =
        serde_json::to_vec(value).map_err(|e| error(path, format!("cannot encode: {e}")))?;
    let header = format!(
        "{MAGIC} {VERSION} {kind} {} {:016x}\n",
        payload.len(),
        fnv1a64(&payload)
    );
    let _lock = lock(path)?;
    let (dir, name) = dir_and_name(path)?;
    remove_stale_temporaries(&dir, &name);
    let prefix = temp_prefix(&name, std::process::id());
    write_via_temporary(path, &dir, &prefix, &[header.as_bytes(), &payload])
        .map_err(|e| error(path, format!("cannot write: {e}")))
}

/// Writes `chunks` to `path` atomically: into a temporary file in `dir`
/// (named `prefix` and random letters), synced, then renamed over `path`; on
/// failure the temporary is removed (when it is dropped) and `path` is left
/// as it was. The one atomic write of the project's files.
pub(crate) fn write_via_temporary(
    path: &Path,
    dir: &Path,
    prefix: &str,
    chunks: &[&[u8]],
) -> std::io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    #[cfg(unix)]
    {
        // As `File::create`: read-write for all, less the umask.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    for chunk in chunks {
        tmp.write_all(chunk)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The directory a checkpoint at `path` is written in (`.` for a bare
/// name) and its file name; an error for a path that names a directory.
fn dir_and_name(path: &Path) -> Result<(PathBuf, String)> {
    let text = path.as_os_str().to_string_lossy();
    if path.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(error(
            path,
            format!(
                "is a directory; give a file name in it, e.g. {}",
                path.join("run.ckpt").display()
            ),
        ));
    }
    let dir = dir_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| error(path, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    Ok((dir.to_path_buf(), name))
}

/// The directory a file at `path` is in (`.` for a bare name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// How the temporary files of process `pid` writing the file `name` (a
/// checkpoint or any other file of a run) begin.
pub(crate) fn temp_prefix(name: &str, pid: u32) -> String {
    format!(".{name}.tmp-{pid}-")
}

/// Removes the temporary files of saves of checkpoint `name` in `dir` by
/// processes that have ended (killed mid-save): `.NAME.tmp-PID-...` (and
/// `.NAME.tmp-PID`, the name earlier builds used) whose PID is not a
/// running process. Temporaries of running processes, this one's included,
/// are left alone; so is everything where it cannot be told whether a
/// process runs (no `/proc`).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && process_ended(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether process `pid` is known to have ended: no `/proc/PID` where
/// `/proc` is mounted. `false` where that cannot be told.
fn process_ended(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new("/proc").join(pid.to_string()).exists()
}

/// The locks this process holds: the lock file's path, the open (locked)
/// file, and how many [`CheckpointLock`]s of this process share it.
static HELD: Mutex<Vec<(PathBuf, fs::File, usize)>> = Mutex::new(Vec::new());

/// This process's advisory lock on a checkpoint path, from [`lock`];
/// released (and its lock file removed) when the last of this process's
/// locks on the path is dropped.
#[derive(Debug)]
pub struct CheckpointLock {
    lock_file: PathBuf,
}

impl CheckpointLock {
    /// The lock file, `PATH.lock` (in the checkpoint's directory, resolved).
    pub fn lock_file(&self) -> &Path {
        &self.lock_file
    }
}

impl Drop for CheckpointLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|(p, _, _)| *p == self.lock_file) {
            held[i].2 -= 1;
            if held[i].2 == 0 {
                // Removed while still locked, then closed (which unlocks): a
                // process waiting on the old file sees it is gone and retries.
                let _ = fs::remove_file(&self.lock_file);
                held.swap_remove(i);
            }
        }
    }
}

/// Takes the advisory lock on the checkpoint at `path`: the file
/// `PATH.lock` beside it, locked with `flock` (released by the system if
/// the process dies) and holding this process's id. Threads of this
/// process share one lock; another process holding it is an
/// [`Error::Checkpoint`] naming its process id. Hold the lock for a whole
/// run to keep other processes from writing the same checkpoint
/// meanwhile; [`save`] takes it for each save.
pub fn lock(path: &Path) -> Result<CheckpointLock> {
    let (dir, name) = dir_and_name(path)?;
    let dir = dir
        .canonicalize()
        .map_err(|e| error(path, format!("cannot write in {}: {e}", dir.display())))?;
    let lock_file = dir.join(format!("{name}.lock"));
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = held.iter_mut().find(|(p, _, _)| *p == lock_file) {
        entry.2 += 1;
        return Ok(CheckpointLock { lock_file });
    }
    let fail = |e: std::io::Error| error(path, format!("cannot lock {}: {e}", lock_file.display()));
    loop {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_file)
            .map_err(fail)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let who = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("process {pid}"),
                    Err(_) => "another process".to_string(),
                };
                return Err(error(
                    path,
                    format!(
                        "{who} is writing this checkpoint (it holds the lock {}); wait for it \
                         to finish, or save to another path",
                        lock_file.display()
                    ),
                ));
            }
            Err(fs4::TryLockError::Error(e)) => return Err(fail(e)),
        }
        if !same_file(&file, &lock_file) {
            // The holder removed it between our open and our lock: retry
            // on the file now at the path.
            continue;
        }
        file.set_len(0).map_err(fail)?;
        file.rewind().map_err(fail)?;
        write!(file, "{}", std::process::id()).map_err(fail)?;
        held.push((lock_file.clone(), file, 1));
        return Ok(CheckpointLock { lock_file });
    }
}

/// Whether the open `file` is the file now at `path`.
#[cfg(unix)]
fn same_file(file: &fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Whether the open `file` is the file now at `path` (on systems other than
/// Unix: whether a file is there).
#[cfg(not(unix))]
fn same_file(_file: &fs::File, path: &Path) -> bool {
    path.exists()
}

/// Reads a checkpoint of `kind` from `path`: a typed error (never a panic)
/// if the file is missing, not a checkpoint, of another version or kind,
/// truncated, or corrupt. The file is only read.
pub fn load<T: DeserializeOwned>(path: &Path, kind: &str) -> Result<T> {
    decode(path, kind, &read(path)?)
}

/// Reads the whole file at `path` (to hand to [`decode`] elsewhere, e.g. in
/// another process). Refuses, before reading the payload, what is not a
/// regular file (`/dev/zero`, a pipe, a directory) and a file shorter than
/// its header's declared length, so no more than the file holds is ever
/// allocated.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| error(path, format!("cannot read: {e}"));
    let mut file = fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "a device, pipe or socket"
        };
        return Err(error(
            path,
            format!("not a regular file ({kind}); give a checkpoint file a trainer saved"),
        ));
    }
    let size = meta.len();
    // The header line: a few dozen bytes; a longer first line is no header.
    let mut head = Vec::new();
    (&mut file)
        .take(HEADER_MAX)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    if let Some(newline) = head.iter().position(|&b| b == b'\n') {
        let declared = std::str::from_utf8(&head[..newline])
            .ok()
            .and_then(|h| h.split(' ').nth(3))
            .and_then(|len| len.parse::<u64>().ok());
        let holds = size.saturating_sub(newline as u64 + 1);
        if let Some(len) = declared.filter(|&len| len > holds) {
            return Err(error(path, format!("truncated: {holds} of {len} bytes")));
        }
    }
    let capacity = usize::try_from(size).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(capacity.max(head.len()))
        .map_err(|e| error(path, format!("cannot read {size} bytes: {e}")))?;
    bytes.extend_from_slice(&head);
    // The file may have grown since: read no more than its size then.
    (&mut file)
        .take(size.saturating_sub(head.len() as u64))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    Ok(bytes)
}

/// The most bytes read to find a checkpoint's header line.
const HEADER_MAX: u64 = 4096;

/// [`load`] of bytes already read from the file at `path` (named in errors).
pub fn decode<T: DeserializeOwned>(path: &Path, kind: &str, bytes: &[u8]) -> Result<T> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| error(path, "not an optdsl checkpoint (no header line)"))?;
    let header = std::str::from_utf8(&bytes[..newline])
        .map_err(|_| error(path, "not an optdsl checkpoint (header is not text)"))?;
    let fields: Vec<&str> = header.split(' ').collect();
    if fields.len() != 5 || fields[0] != MAGIC {
        return Err(error(path, "not an optdsl checkpoint (bad header)"));
    }
    let version: u32 = fields[1]
        .parse()
        .map_err(|_| error(path, "not an optdsl checkpoint (bad version)"))?;
    if version != VERSION {
        return Err(error(
            path,
            format!("format version {version}; this build reads version {VERSION}"),
        ));
    }
    if fields[2] != kind {
        return Err(error(
            path,
            format!(
                "holds a {} state, not a {kind} state",
                crate::error::escape_controls(fields[2])
            ),
        ));
    }
    let len: usize = fields[3]
        .parse()
        .map_err(|_| error(path, "not an optdsl checkpoint (bad length)"))?;
    let payload = &bytes[newline + 1..];
    if payload.len() < len {
        return Err(error(
            path,
            format!("truncated: {} of {len} bytes", payload.len()),
        ));
    }
    if payload.len() > len {
        return Err(error(
            path,
            format!("corrupt: {} bytes after the end", payload.len() - len),
        ));
    }
    let hash = format!("{:016x}", fnv1a64(payload));
    if hash != fields[4] {
        return Err(error(path, "corrupt: the checksum does not match"));
    }
    serde_json::from_slice(payload).map_err(|e| error(path, format!("corrupt: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("optdsl-ckpt-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join("state.ckpt")
    }

    #[test]
    fn round_trips_exactly() {
        let path = temp("round");
        let value = (
            vec![0.1f64, 1e-300, -0.0, f64::MAX],
            vec![0.1f32, 3.4e38],
            7u64,
        );
        save(&path, "test", &value).unwrap();
        let back: (Vec<f64>, Vec<f32>, u64) = load(&path, "test").unwrap();
        assert_eq!(format!("{value:?}"), format!("{back:?}"));
        assert!(back.0[2].is_sign_negative());
    }

    #[test]
    fn damage_is_a_typed_error_and_the_file_is_untouched() {
        let path = temp("damage");
        save(&path, "test", &vec![1.0f64; 100]).unwrap();
        let good = fs::read(&path).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() / 2].to_vec(), "truncated"),
            (
                {
                    let mut b = good.clone();
                    let k = b.len() - 5;
                    b[k] = b'7';
                    b
                },
                "corrupt",
            ),
            (b"hello\nworld".to_vec(), "not an optdsl checkpoint"),
            (Vec::new(), "not an optdsl checkpoint"),
            (
                String::from_utf8(good.clone())
                    .unwrap()
                    .replacen(" 1 ", " 9 ", 1)
                    .into_bytes(),
                "version 9",
            ),
        ];
        for (bytes, want) in cases {
            fs::write(&path, &bytes).unwrap();
            let err = load::<Vec<f64>>(&path, "test").unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("checkpoint ") && text.contains(want),
                "{text}"
            );
            assert_eq!(
                fs::read(&path).unwrap(),
                bytes,
                "the file is left as it was"
            );
        }
        fs::write(&path, &good).unwrap();
        let err = load::<Vec<f64>>(&path, "other").unwrap_err();
        assert!(err.to_string().contains("holds a test state"), "{err}");
        let err = load::<Vec<f64>>(&path.with_extension("missing"), "test").unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn a_failed_save_keeps_the_old_file() {
        let path = temp("keep");
        save(&path, "test", &1u32).unwrap();
        let before = fs::read(&path).unwrap();
        // A value serde_json cannot encode (a map with non-string keys).
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 2u8);
        assert!(save(&path, "test", &bad).is_err());
        assert_eq!(fs::read(&path).unwrap(), before);
        let leftovers = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
