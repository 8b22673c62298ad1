//! CSV files of labelled rows: a class label in the first or last column, the
//! inputs in the others, optionally gzipped, values divided by a scale.

use super::text::{decode, for_each_row, number, wrong_width, Separator};
use super::Dataset;
use crate::error::{Error, Result};
use std::path::Path;
use std::str::FromStr;

/// Which column holds the class label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The first column (USPS's layout, and MNIST's in CSV).
    #[default]
    First,
    /// The last column.
    Last,
}

impl FromStr for LabelColumn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "first" => Ok(LabelColumn::First),
            "last" => Ok(LabelColumn::Last),
            _ => Err(Error::Invalid {
                what: "label column".into(),
                reason: format!("`{s}`; use first or last"),
            }),
        }
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CsvOptions {
    /// Where the label is.
    pub label: LabelColumn,
    /// Every input is divided by this (255 for 8-bit grey values); positive.
    pub scale: f64,
    /// The field separator; `None` takes a comma, semicolon or tab if the first
    /// data line has one, else runs of whitespace.
    pub separator: Option<char>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label: LabelColumn::First,
            scale: 1.0,
            separator: None,
        }
    }
}

/// Reads a CSV file (gzipped or not; detected from its first bytes).
///
/// Every row must have as many fields as the first; labels are whole numbers
/// from 0 (written `3` or `3.0`), and the number of classes is the largest
/// label plus one. Blank lines, `#` comments and a header line (no field a
/// number) are skipped. A malformed row is an [`Error::Data`] naming its line.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: name.clone(),
        message: e.to_string(),
    })?;
    parse_csv(&name, &decode(&name, &bytes)?, opts)
}

/// Parses CSV text as [`read_csv`] does; `name` appears in errors.
///
/// ```
/// use optdsl::data::{parse_csv, CsvOptions, LabelColumn};
/// let opts = CsvOptions { label: LabelColumn::Last, scale: 255.0, ..Default::default() };
/// let data = parse_csv("inline", "0,255,1\n255,0,0\n", &opts).unwrap();
/// assert_eq!((data.len(), data.dim(), data.classes()), (2, 2, 2));
/// assert_eq!(data.row(0), [0.0, 1.0]);
/// let err = parse_csv("inline", "0,255,1\n255,0\n", &opts).unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// ```
pub fn parse_csv(name: &str, text: &str, opts: &CsvOptions) -> Result<Dataset> {
    if !(opts.scale.is_finite() && opts.scale > 0.0) {
        return Err(Error::Invalid {
            what: "scale".into(),
            reason: format!("{}; give a positive divisor such as 255", opts.scale),
        });
    }
    let mut width = None;
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    for_each_row(text, opts.separator.map(Separator::Char), |line, fields| {
        let n = *width.get_or_insert(fields.len());
        if n < 2 {
            return Err(wrong_width(name, line, "a label and at least one value", n));
        }
        if fields.len() != n {
            let expected = format!(
                "{n} fields (a label and {} values, as line 1 of the data)",
                n - 1
            );
            return Err(wrong_width(name, line, &expected, fields.len()));
        }
        let (label_col, values) = match opts.label {
            LabelColumn::First => (0, &fields[1..]),
            LabelColumn::Last => (n - 1, &fields[..n - 1]),
        };
        labels.push(label(name, line, label_col + 1, fields[label_col])?);
        let first = if opts.label == LabelColumn::First {
            2
        } else {
            1
        };
        for (j, f) in values.iter().enumerate() {
            inputs.push(number(name, line, first + j, f)? / opts.scale);
        }
        Ok(())
    })?;
    let Some(width) = width else {
        return Err(Error::Data {
            source_name: name.to_string(),
            reason: "no data rows".into(),
        });
    };
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Dataset::new(name, width - 1, classes.max(2), inputs, labels)
}

/// A class label: a whole number from 0.
fn label(name: &str, line: usize, col: usize, field: &str) -> Result<u32> {
    match field.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.fract() == 0.0 && x < 65536.0 => Ok(x as u32),
        _ => Err(Error::Data {
            source_name: name.to_string(),
            reason: format!(
                "line {line}, field {col}: expected a class label (0, 1, 2, ...), found `{field}`; \
                 is the label in the other column (--label first|last)?"
            ),
        }),
    }
}
