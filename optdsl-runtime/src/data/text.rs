//! Reading delimited text row by row: gzip detection, line numbers, blank
//! lines and comments, a header line, and the field separator.

use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::io::Read;

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

/// Calls `row(line_number, fields)` for each data line of `text` (numbered
/// from 1). Blank lines and lines starting with `#` are skipped, and so is a
/// first line none of whose fields is a number (a header).
pub(crate) fn for_each_row(
    text: &str,
    sep: Option<Separator>,
    mut row: impl FnMut(usize, &[&str]) -> Result<()>,
) -> Result<()> {
    let mut fields = Vec::new();
    let mut sep = sep;
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = *sep.get_or_insert_with(|| Separator::detect(line));
        s.split(line, &mut fields);
        if std::mem::take(&mut first) && fields.iter().all(|f| f.parse::<f64>().is_err()) {
            continue;
        }
        row(i + 1, &fields)?;
    }
    Ok(())
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
