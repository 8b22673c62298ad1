//! Checkpoint files: versioned, checksummed, written atomically (a temporary
//! file in the same directory, synced, then renamed over the target), so a
//! crash mid-write never leaves a half-written checkpoint and an existing one
//! is replaced only by a complete one.
//!
//! The format is one header line, `optdsl-checkpoint <version> <kind>
//! <length> <fnv1a64>`, then `length` bytes of JSON whose FNV-1a hash is the
//! last field. JSON keeps every f32 and f64 exactly (shortest round-trip
//! form), so a run resumed from a checkpoint continues bit for bit.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::fs;
use std::io::Write;
use std::path::Path;

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
const MAGIC: &str = "optdsl-checkpoint";

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Writes `value` as a checkpoint of `kind` (e.g. `"trainer"`) to `path`,
/// atomically.
pub fn save<T: Serialize>(path: &Path, kind: &str, value: &T) -> Result<()> {
    let payload =
        serde_json::to_vec(value).map_err(|e| error(path, format!("cannot encode: {e}")))?;
    let header = format!(
        "{MAGIC} {VERSION} {kind} {} {:016x}\n",
        payload.len(),
        fnv1a64(&payload)
    );
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| error(path, "not a file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(header.as_bytes())?;
        f.write_all(&payload)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        error(path, format!("cannot write: {e}"))
    })
}

/// Reads a checkpoint of `kind` from `path`: a typed error (never a panic)
/// if the file is missing, not a checkpoint, of another version or kind,
/// truncated, or corrupt. The file is only read.
pub fn load<T: DeserializeOwned>(path: &Path, kind: &str) -> Result<T> {
    decode(path, kind, &read(path)?)
}

/// Reads the whole file at `path` (to hand to [`decode`] elsewhere, e.g. in
/// another process).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| error(path, format!("cannot read: {e}")))
}

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
            format!("holds a {} state, not a {kind} state", fields[2]),
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
