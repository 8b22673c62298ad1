//! The Semeion digits, bundled in the binary: 1593 rows of 16x16 ink values
//! (0/1) with a one-hot label; no official split.

use super::text::{decode, for_each_row, number, wrong_width, Separator};
use super::{bundled, Dataset};
use crate::error::{Error, Result};

#[cfg(feature = "datasets")]
static DATA: Option<&[u8]> = Some(include_bytes!("../../data/semeion.data.gz"));
#[cfg(not(feature = "datasets"))]
static DATA: Option<&[u8]> = None;

/// All 1593 Semeion rows; split them with [`Dataset::split`]. A typed error
/// in a build without the `datasets` feature.
pub fn semeion() -> Result<Dataset> {
    let name = "semeion";
    let text = decode(name, bundled(name, DATA)?)?;
    let mut inputs = Vec::with_capacity(1593 * 256);
    let mut labels = Vec::with_capacity(1593);
    for_each_row(&text, Some(Separator::Whitespace), |line, fields| {
        if fields.len() != 266 {
            return Err(wrong_width(
                name,
                line,
                "266 (256 pixels, then a one-hot label of 10)",
                fields.len(),
            ));
        }
        for (j, f) in fields[..256].iter().enumerate() {
            inputs.push(number(name, line, j + 1, f)?);
        }
        let hot: Vec<usize> = (0..10)
            .filter(|&k| fields[256 + k].parse::<f64>().ok() == Some(1.0))
            .collect();
        match hot[..] {
            [k] => labels.push(k as u32),
            _ => {
                return Err(Error::Data {
                    source_name: name.into(),
                    reason: format!("line {line}: the last 10 fields are not a one-hot label"),
                })
            }
        }
        Ok(())
    })?;
    Dataset::new(name, 256, 10, inputs, labels)
}
