//! Reading delimited text row by row: gzip detection, line numbers, blank
//! lines and comments, a header line, and the field separator.

use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, Read};

/// How fields of a line are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Separator {
    /// Runs of spaces and tabs.
    Whitespace,
    /// One character (`,`, `;`, tab), fields trimmed.
    Char(char),
}

impl Separator {
    /// The separator of a data line: a comma, else a semicolon, else a tab,
    /// else whitespace.
    pub(crate) fn detect(line: &str) -> Separator {
        [',', ';', '\t']
            .into_iter()
            .find(|&c| line.contains(c))
            .map_or(Separator::Whitespace, Separator::Char)
    }

    fn split<'a>(self, line: &'a str, out: &mut Vec<&'a str>) {
        out.clear();
        match self {
            Separator::Whitespace => out.extend(line.split_whitespace()),
            Separator::Char(c) => out.extend(line.split(c).map(str::trim)),
        }
    }
}

/// Bytes as text, gunzipped first when they start with gzip's magic number.
pub(crate) fn decode(name: &str, bytes: &[u8]) -> Result<String> {
    let fail = |reason: String| Error::Data {
        source_name: name.to_string(),
        reason,
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| fail(format!("cannot gunzip: {e}")))?;
        Ok(text)
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            fail(format!(
                "not UTF-8 text (byte {}); give a text or gzipped text file",
                e.utf8_error().valid_up_to()
            ))
        })
    }
}

/// The longest line the readers take, in bytes (16 MiB): a file with a
/// longer one (`/dev/zero`, a binary file) is refused at that line instead
/// of being read into memory whole.
pub(crate) const MAX_LINE_BYTES: usize = 16 << 20;

/// Calls `row(line_number, fields)` for each data line of `text` (numbered
/// from 1). Blank lines and lines starting with `#` are skipped, and so is a
/// first line with a field that is not a number (a header: column names,
/// some of which may be numbers, e.g. `label,0,1,2`). A UTF-8 byte-order
/// mark at the start is dropped.
pub(crate) fn for_each_row(
    text: &str,
    sep: Option<Separator>,
    row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<()> {
    for_each_row_read("text", text.as_bytes(), sep, row)
}

/// [`for_each_row`] over lines read one at a time from `reader` (the source
/// `name` in errors): a line longer than [`MAX_LINE_BYTES`], one that is not
/// UTF-8, or a read that fails is an [`Error::Data`] naming the line.
pub(crate) fn for_each_row_read(
    name: &str,
    mut reader: impl BufRead,
    sep: Option<Separator>,
    mut row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<()> {
    let fail = |reason: String| Error::Data {
        source_name: name.to_string(),
        reason,
    };
    let mut buf = Vec::new();
    let mut sep = sep;
    let mut first = true;
    let mut width = 0;
    let mut number = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| fail(format!("cannot read line {}: {e}", number + 1)))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES {
            return Err(fail(format!(
                "line {number} is longer than {MAX_LINE_BYTES} bytes; give a CSV text file \
                 (rows of values separated by commas, semicolons, tabs or spaces, one per line)"
            )));
        }
        let line = std::str::from_utf8(&buf).map_err(|e| {
            fail(format!(
                "line {number} is not UTF-8 text (byte {} of the line); give a text or \
                 gzipped text file",
                e.valid_up_to() + 1
            ))
        })?;
        let mut line = line.trim_end_matches('\n').trim_end_matches('\r');
        if number == 1 {
            // A UTF-8 byte-order mark, as some editors write one.
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = *sep.get_or_insert_with(|| Separator::detect(line));
        let mut fields = Vec::with_capacity(width);
        s.split(line, &mut fields);
        width = fields.len();
        if std::mem::take(&mut first) && fields.iter().any(|f| f.parse::<f64>().is_err()) {
            // A header: column names, some of which may be numbers.
            continue;
        }
        row(number, &fields)?;
    }
}

/// Parses one field as a finite number, or says which line and field is wrong.
pub(crate) fn number(name: &str, line: usize, col: usize, field: &str) -> Result<f64> {
    match field.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(Error::Data {
            source_name: name.to_string(),
            reason: format!("line {line}, field {col}: expected a number, found `{field}`"),
        }),
    }
}

/// The error for a line with the wrong number of fields.
pub(crate) fn wrong_width(name: &str, line: usize, expected: &str, found: usize) -> Error {
    Error::Data {
        source_name: name.to_string(),
        reason: format!("line {line}: expected {expected}, found {found} fields"),
    }
}
