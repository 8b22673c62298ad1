//! CSV files of labelled rows: a class label in the first or last column, the
//! inputs in the others, optionally gzipped, values divided by a scale.

use super::text::{for_each_row_read, number, wrong_width, Separator};
use super::{beyond_f32, BeyondF32, Dataset};
use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader};
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
/// label plus one. Blank lines, `#` comments and a header line (a first
/// line with a field that is not a number) are skipped, and so is a UTF-8
/// byte-order mark. A malformed row is an [`Error::Data`] naming its
/// line; so is a file whose labels are all the same (nothing to classify,
/// usually the label taken from the wrong column). A file that cannot be
/// read is an [`Error::Data`] naming it.
///
/// The file is read as a stream of lines, each at most 16 MiB (a longer one
/// is an error naming it), straight into the data set's buffers: a regular
/// file is read twice, first to count its rows (and refuse them before
/// allocating if they do not fit in the memory available), then into
/// buffers of that size, so the text is never held whole and the buffers
/// never grow.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Dataset> {
    check_scale(opts)?;
    let name = path.display().to_string();
    let cannot_read = |e: std::io::Error| Error::Data {
        source_name: name.clone(),
        reason: format!("cannot read the file: {e}; check the path after csv:"),
    };
    let open = || -> Result<Box<dyn BufRead>> {
        let file = std::fs::File::open(path).map_err(cannot_read)?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let gzip = reader
            .fill_buf()
            .map_err(cannot_read)?
            .starts_with(&[0x1f, 0x8b]);
        Ok(if gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                MultiGzDecoder::new(reader),
            ))
        } else {
            Box::new(reader)
        })
    };
    let regular = std::fs::metadata(path).map_err(cannot_read)?.is_file();
    let size = if regular {
        let (rows, width) = count_rows(&name, open()?, opts)?;
        let size = (rows, width.saturating_sub(1));
        check_fits(&name, size, crate::memory::available_bytes())?;
        Some(size)
    } else {
        None
    };
    parse_rows(&name, open()?, opts, size)
}

/// The number of data rows of a CSV stream and the number of fields of the
/// first (0 if none).
fn count_rows(name: &str, reader: impl BufRead, opts: &CsvOptions) -> Result<(usize, usize)> {
    let (mut rows, mut width) = (0usize, 0usize);
    for_each_row_read(
        name,
        reader,
        opts.separator.map(Separator::Char),
        |_, fields| {
            if rows == 0 {
                width = fields.len();
            }
            rows += 1;
            Ok(())
        },
    )?;
    Ok((rows, width))
}

/// Refuses `rows` rows of `dim` inputs (f64) and a label (u32) each that
/// need more than `available` bytes.
fn check_fits(name: &str, (rows, dim): (usize, usize), available: Option<u64>) -> Result<()> {
    let needed = rows as u128 * (dim as u128 * 8 + 4);
    match available {
        Some(a) if needed > u128::from(a) => Err(Error::Data {
            source_name: name.to_string(),
            reason: format!(
                "{rows} rows of {dim} values take {} in memory, more than the {} available",
                crate::memory::human_bytes(needed),
                crate::memory::human_bytes(a.into())
            ),
        }),
        _ => Ok(()),
    }
}

fn check_scale(opts: &CsvOptions) -> Result<()> {
    if !(opts.scale.is_finite() && opts.scale > 0.0) {
        return Err(Error::Invalid {
            what: "scale".into(),
            reason: format!("{}; give a positive divisor such as 255", opts.scale),
        });
    }
    Ok(())
}

/// Parses CSV text as [`read_csv`] does; `name` appears in errors.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::data::{parse_csv, CsvOptions, LabelColumn};
/// let opts = CsvOptions { label: LabelColumn::Last, scale: 255.0, ..Default::default() };
/// let data = parse_csv("inline", "0,255,1\n255,0,0\n", &opts).unwrap();
/// assert_eq!((data.len(), data.dim(), data.classes()), (2, 2, 2));
/// assert_eq!(data.row(0), [0.0, 1.0]);
/// let err = parse_csv("inline", "0,255,1\n255,0\n", &opts).unwrap_err();
/// assert!(err.to_string().contains("line 2"));
/// ```
pub fn parse_csv(name: &str, text: &str, opts: &CsvOptions) -> Result<Dataset> {
    check_scale(opts)?;
    parse_rows(name, text.as_bytes(), opts, None)
}

/// Parses the rows of a CSV stream into a data set; `size` (rows, inputs
/// per row), when known, sizes the buffers up front. Without it, the
/// buffers grow, each growth checked against the memory available.
fn parse_rows(
    name: &str,
    reader: impl BufRead,
    opts: &CsvOptions,
    size: Option<(usize, usize)>,
) -> Result<Dataset> {
    let mut width = None;
    let mut beyond = None;
    let (mut inputs, mut labels) = match size {
        Some((rows, dim)) => (
            Vec::with_capacity(rows.saturating_mul(dim)),
            Vec::with_capacity(rows),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let sep = opts.separator.map(Separator::Char);
    for_each_row_read(name, reader, sep, |line, fields| {
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
        if inputs.len() + n > inputs.capacity() && inputs.len() > 1 << 20 {
            // The buffer is about to double: refuse what cannot fit.
            check_fits(
                name,
                (2 * labels.len(), n - 1),
                crate::memory::available_bytes(),
            )?;
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
            let x = number(name, line, first + j, f)? / opts.scale;
            if !x.is_finite() {
                return Err(Error::Data {
                    source_name: name.to_string(),
                    reason: format!(
                        "line {line}, field {}: `{f}` divided by the scale {} is {x}; give a \
                         larger scale",
                        first + j,
                        opts.scale
                    ),
                });
            }
            if beyond.is_none() && beyond_f32(x) {
                beyond = Some(BeyondF32 {
                    line,
                    field: first + j,
                    text: f.to_string(),
                    value: x,
                });
            }
            inputs.push(x);
        }
        Ok(())
    })?;
    let Some(width) = width else {
        return Err(Error::Data {
            source_name: name.to_string(),
            reason: "no data rows".into(),
        });
    };
    if let Some(&first) = labels.first() {
        if labels.iter().all(|&y| y == first) {
            let (column, other) = match opts.label {
                LabelColumn::First => ("first", "last"),
                LabelColumn::Last => ("last", "first"),
            };
            return Err(Error::Data {
                source_name: name.to_string(),
                reason: format!(
                    "every row's label is {first} (the {column} column of {} rows): one class, \
                     nothing to learn; if the label is in the {other} column, read it from the {other} column",
                    labels.len()
                ),
            });
        }
    }
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
    let mut data = Dataset::new(name, width - 1, classes.max(2), inputs, labels)?;
    data.set_beyond_f32(beyond);
    Ok(data)
}

/// A class label: a whole number from 0.
fn label(name: &str, line: usize, col: usize, field: &str) -> Result<u32> {
    match field.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.fract() == 0.0 && x < 65536.0 => Ok(x as u32),
        _ => Err(Error::Data {
            source_name: name.to_string(),
            reason: format!(
                "line {line}, field {col}: expected a class label (0, 1, 2, ...), found `{field}`; \
                 is the label in the other column (first or last)?"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn opts(label: LabelColumn) -> CsvOptions {
        CsvOptions {
            label,
            ..Default::default()
        }
    }

    fn reason(e: Error) -> String {
        match e {
            Error::Data { reason, .. } => reason,
            other => panic!("not a data error: {other}"),
        }
    }

    #[test]
    fn reads_label_first_or_last_with_header_comments_blank_lines_and_crlf() {
        let text = "label,a,b\r\n# a comment\r\n\r\n2,0.5,1\r\n0,1,0.25\r\n";
        let d = parse_csv("t", text, &opts(LabelColumn::First)).unwrap();
        assert_eq!((d.len(), d.dim(), d.classes()), (2, 2, 3));
        assert_eq!(d.labels(), [2, 0]);
        assert_eq!(d.row(1), [1.0, 0.25]);
        let d = parse_csv("t", "0.5;1;2.0\n1;0.25;0\n", &opts(LabelColumn::Last)).unwrap();
        assert_eq!(d.labels(), [2, 0]);
        assert_eq!(d.row(0), [0.5, 1.0]);
        let d = parse_csv("t", "1 2 3\n0   4\t5\n", &opts(LabelColumn::First)).unwrap();
        assert_eq!(d.row(1), [4.0, 5.0]);
    }

    #[test]
    fn scale_divides_every_input_but_not_the_label() {
        let o = CsvOptions {
            scale: 255.0,
            ..Default::default()
        };
        let d = parse_csv("t", "3,255,51\n1,0,0\n", &o).unwrap();
        assert_eq!(d.labels(), [3, 1]);
        assert_eq!(d.row(0), [1.0, 0.2]);
        let bad = CsvOptions { scale: 0.0, ..o };
        assert!(matches!(
            parse_csv("t", "3,1\n", &bad),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn malformed_rows_name_their_line_and_what_was_expected() {
        let o = opts(LabelColumn::First);
        let r = reason(parse_csv("t", "1,2,3\n\n1,2\n", &o).unwrap_err());
        assert!(
            r.contains("line 3") && r.contains("expected 3 fields"),
            "{r}"
        );
        let r = reason(parse_csv("t", "1,2,3\n0,x,3\n", &o).unwrap_err());
        assert!(
            r.contains("line 2, field 2") && r.contains("expected a number, found `x`"),
            "{r}"
        );
        let r = reason(parse_csv("t", "1,2,3\n0.5,2,3\n", &o).unwrap_err());
        assert!(
            r.contains("line 2, field 1") && r.contains("class label"),
            "{r}"
        );
        let r = reason(parse_csv("t", "2,3,0.5\n", &opts(LabelColumn::Last)).unwrap_err());
        assert!(r.contains("field 3"), "{r}");
        let r = reason(parse_csv("t", "1,nan,3\n", &o).unwrap_err());
        assert!(r.contains("line 1"), "{r}");
        assert!(
            reason(parse_csv("t", "\n# only a comment\n", &o).unwrap_err()).contains("no data")
        );
        assert!(reason(parse_csv("t", "1\n2\n", &o).unwrap_err()).contains("at least one value"));
        let r = reason(parse_csv("t", "0,3,1\n0,4,2\n", &o).unwrap_err());
        assert!(
            r.contains("every row's label is 0") && r.contains("read it from the last column"),
            "{r}"
        );
        let r = reason(parse_csv("t", "3,1,0\n4,2,0\n", &opts(LabelColumn::Last)).unwrap_err());
        assert!(r.contains("read it from the first column"), "{r}");
    }

    #[test]
    fn files_plain_or_gzipped_read_as_their_text_parses() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("optdsl-csv-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "# digits\nlabel,a,b\n1,0.5,2\r\n\n0,0.25,3\n2,1,1";
        let plain = dir.join("d.csv");
        std::fs::write(&plain, text).unwrap();
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        let gz = dir.join("d.csv.gz");
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let o = CsvOptions::default();
        let want = parse_csv("t", text, &o).unwrap();
        for path in [&plain, &gz] {
            let d = read_csv(path, &o).unwrap();
            assert_eq!((d.inputs(), d.labels()), (want.inputs(), want.labels()));
        }
        // A line of more than 16 MiB is refused, naming it.
        std::fs::write(&plain, format!("1,2\n{}", "7".repeat(17 << 20))).unwrap();
        let r = reason(read_csv(&plain, &o).unwrap_err());
        assert!(r.contains("line 2 is longer than 16777216 bytes"), "{r}");
        std::fs::write(&plain, b"1,2\n0,\xff\n").unwrap();
        let r = reason(read_csv(&plain, &o).unwrap_err());
        assert!(r.contains("line 2 is not UTF-8"), "{r}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzip_is_detected_from_the_bytes() {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(b"1,0.5\n0,0.25\n").unwrap();
        let gz = enc.finish().unwrap();
        let text = super::super::text::decode("t.gz", &gz).unwrap();
        let d = parse_csv("t.gz", &text, &CsvOptions::default()).unwrap();
        assert_eq!(d.labels(), [1, 0]);
        let err = super::super::text::decode("t", &[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"));
        let err = read_csv(Path::new("/nonexistent/file.csv"), &CsvOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Data { .. }), "{text}");
        assert!(
            text.starts_with("data /nonexistent/file.csv: cannot read the file"),
            "{text}"
        );
    }
}
