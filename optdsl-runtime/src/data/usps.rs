//! The USPS digits, bundled in the binary: 7291 training and 2007 test rows of
//! 16x16 grey values, mapped from [-1, 1] to ink -> 1, no ink -> 0.

use super::text::{decode, for_each_row, number, wrong_width, Separator};
use super::{bundled, Dataset, Split};
use crate::error::Result;

#[cfg(feature = "datasets")]
static TRAIN: Option<&[u8]> = Some(include_bytes!("../../data/usps.train.gz"));
#[cfg(feature = "datasets")]
static TEST: Option<&[u8]> = Some(include_bytes!("../../data/usps.test.gz"));
#[cfg(not(feature = "datasets"))]
static TRAIN: Option<&[u8]> = None;
#[cfg(not(feature = "datasets"))]
static TEST: Option<&[u8]> = None;

/// The USPS training set (7291 rows); a typed error in a build without the
/// `datasets` feature.
pub fn usps_train() -> Result<Dataset> {
    parse("usps.train", bundled("usps.train", TRAIN)?)
}

/// The USPS test set (2007 rows); a typed error in a build without the
/// `datasets` feature.
pub fn usps_test() -> Result<Dataset> {
    parse("usps.test", bundled("usps.test", TEST)?)
}

/// Both USPS sets.
pub fn usps() -> Result<Split> {
    Split::new(usps_train()?, usps_test()?)
}

/// Rows of a label then 256 grey values `x` in [-1, 1] (-1 is no ink); each
/// input is `(x + 1) / 2`, so no ink -> 0 and full ink -> 1, as the course's
/// network reads a digit.
fn parse(name: &str, gz: &[u8]) -> Result<Dataset> {
    let text = decode(name, gz)?;
    let mut inputs = Vec::with_capacity(7291 * 256);
    let mut labels = Vec::with_capacity(7291);
    for_each_row(&text, Some(Separator::Whitespace), |line, fields| {
        if fields.len() != 257 {
            return Err(wrong_width(
                name,
                line,
                "257 (a label, then 256 grey values)",
                fields.len(),
            ));
        }
        labels.push(number(name, line, 1, fields[0])? as u32);
        for (j, f) in fields[1..].iter().enumerate() {
            inputs.push((number(name, line, j + 2, f)? + 1.0) / 2.0);
        }
        Ok(())
    })?;
    Dataset::new(name, 256, 10, inputs, labels)
}
