//! Labelled data for classifiers: the bundled USPS and Semeion digits, CSV
//! files, seeded train/test splits, and shuffled mini-batches.

mod batches;
mod csv;
mod semeion;
mod text;
mod usps;

pub use batches::Batches;
pub use csv::{parse_csv, read_csv, CsvOptions, LabelColumn};
pub use semeion::semeion;
pub use usps::{usps, usps_test, usps_train};

/// A bundled data set's bytes, or the error of a build without them (the
/// `datasets` feature off).
fn bundled(name: &str, bytes: Option<&'static [u8]>) -> Result<&'static [u8]> {
    bytes.ok_or_else(|| Error::Data {
        source_name: name.to_string(),
        reason: "this build has no bundled digits; enable optdsl-runtime's `datasets` feature, or read a CSV file".into(),
    })
}

use crate::error::{Error, Result};
use optdsl_lang::{fnv1a_extend as fnv1a64, FNV_OFFSET};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// Rows of `dim` input values, each with a class label in `0..classes`.
/// Inputs are kept in f64, with an f32 copy made on first use by an f32
/// network.
#[derive(Debug, Clone)]
pub struct Dataset {
    name: String,
    dim: usize,
    classes: usize,
    inputs: Vec<f64>,
    labels: Vec<u32>,
    inputs_f32: OnceLock<Vec<f32>>,
    /// The first input read from a file that f32 cannot hold, where it was
    /// read (kept by the sets split from this one).
    beyond_f32: Option<BeyondF32>,
    /// The index of the first input that f32 cannot hold, once looked for.
    first_beyond_f32: OnceLock<Option<usize>>,
}

/// An input read from a text file whose magnitude f32 cannot hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BeyondF32 {
    /// The line, from 1.
    pub line: usize,
    /// The field, from 1.
    pub field: usize,
    /// The field as written.
    pub text: String,
    /// Its value after the scale.
    pub value: f64,
}

/// Whether `x` rounds to an infinite f32 (a finite f64 beyond f32's range).
pub(crate) fn beyond_f32(x: f64) -> bool {
    (x as f32).is_infinite() && x.is_finite()
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.name,
            self.dim,
            self.classes,
            &self.inputs,
            &self.labels,
        ) == (
            &other.name,
            other.dim,
            other.classes,
            &other.inputs,
            &other.labels,
        )
    }
}

impl Dataset {
    /// A data set from row-major `inputs` (`labels.len()` rows of `dim`) and
    /// labels below `classes`.
    pub fn new(
        name: impl Into<String>,
        dim: usize,
        classes: usize,
        inputs: Vec<f64>,
        labels: Vec<u32>,
    ) -> Result<Self> {
        let name = name.into();
        let fail = |reason: String| Error::Data {
            source_name: name.clone(),
            reason,
        };
        if dim == 0 || labels.is_empty() {
            return Err(fail("it has no rows or no input columns".into()));
        }
        if dim.checked_mul(labels.len()) != Some(inputs.len()) {
            return Err(fail(format!(
                "{} values for {} rows of {dim}",
                inputs.len(),
                labels.len()
            )));
        }
        if let Some(y) = labels.iter().find(|&&y| y as usize >= classes) {
            return Err(fail(format!("label {y} for {classes} classes")));
        }
        Ok(Dataset {
            name,
            dim,
            classes,
            inputs,
            labels,
            inputs_f32: OnceLock::new(),
            beyond_f32: None,
            first_beyond_f32: OnceLock::new(),
        })
    }

    /// Where the data came from (`usps.train`, a file's path, ...).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no rows (never, for a data set built by [`Dataset::new`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The number of input values of a row.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The number of classes (labels run from 0 to `classes - 1`).
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Row `i`'s inputs.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.inputs[i * self.dim..(i + 1) * self.dim]
    }
    /// Every label, in row order.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
    /// Every input, row-major.
    pub fn inputs(&self) -> &[f64] {
        &self.inputs
    }
    /// Every input rounded to f32, row-major (converted on the first call).
    pub fn inputs_f32(&self) -> &[f32] {
        self.inputs_f32
            .get_or_init(|| self.inputs.iter().map(|&x| x as f32).collect())
    }
    /// An [`Error::Data`] if an input cannot be represented in f32 (a finite
    /// f64 of magnitude above `f32::MAX`, which would make every f32 loss
    /// NaN): the file's line, field and value where it was read from one,
    /// else the row and column. Looked for once, on the first call.
    pub fn check_f32_range(&self) -> Result<()> {
        let first = *self
            .first_beyond_f32
            .get_or_init(|| self.inputs.iter().position(|&x| beyond_f32(x)));
        let Some(i) = first else {
            return Ok(());
        };
        let what = match &self.beyond_f32 {
            Some(b) => format!(
                "line {}, field {}: `{}`{}",
                b.line,
                b.field,
                b.text,
                if b.text.parse::<f64>().ok() == Some(b.value) {
                    String::new()
                } else {
                    format!(" ({} after the scale)", b.value)
                }
            ),
            None => format!(
                "row {}, input {}: {}",
                i / self.dim + 1,
                i % self.dim + 1,
                self.inputs[i]
            ),
        };
        Err(Error::Data {
            source_name: self.name.clone(),
            reason: format!(
                "{what} cannot be represented in f32 (largest magnitude {:e}), and would make \
                 every loss NaN; train in f64, or divide the inputs by a scale",
                f32::MAX
            ),
        })
    }

    /// Records the first input of a text file that f32 cannot hold.
    pub(crate) fn set_beyond_f32(&mut self, at: Option<BeyondF32>) {
        self.beyond_f32 = at;
    }

    /// How many rows each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        self.labels.iter().for_each(|&y| counts[y as usize] += 1);
        counts
    }

    /// What identifies this data set's contents: its name, row count, width,
    /// classes and a 64-bit FNV-1a hash of its labels (little-endian u32s)
    /// then its inputs (the little-endian bits of each f64), in row order.
    pub fn fingerprint(&self) -> DataFingerprint {
        let mut hash = FNV_OFFSET;
        for y in &self.labels {
            hash = fnv1a64(hash, &y.to_le_bytes());
        }
        for x in &self.inputs {
            hash = fnv1a64(hash, &x.to_bits().to_le_bytes());
        }
        DataFingerprint {
            name: self.name.clone(),
            rows: self.len(),
            dim: self.dim,
            classes: self.classes,
            hash,
        }
    }

    /// The rows at `indices`, in that order, as a new data set.
    pub fn subset(&self, name: impl Into<String>, indices: &[usize]) -> Dataset {
        let mut inputs = Vec::with_capacity(indices.len() * self.dim);
        indices
            .iter()
            .for_each(|&i| inputs.extend_from_slice(self.row(i)));
        Dataset {
            name: name.into(),
            dim: self.dim,
            classes: self.classes,
            inputs,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            inputs_f32: OnceLock::new(),
            beyond_f32: self.beyond_f32.clone(),
            first_beyond_f32: OnceLock::new(),
        }
    }

    /// A seeded random split: `round(test_fraction * len)` rows (at least one)
    /// for testing, the rest for training.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<Split> {
        let (order, n_test) = self.split_order(test_fraction, seed)?;
        let (test, train) = order.split_at(n_test);
        Ok(Split {
            train: self.subset(format!("{} (train split)", self.name), train),
            test: self.subset(format!("{} (test split)", self.name), test),
        })
    }

    /// [`Dataset::split`] of a data set no longer needed whole: the same two
    /// sets, made by moving the rows within this one's buffer (the test
    /// rows then moved to a buffer of their own), so that at most the test
    /// rows are held twice, instead of every row.
    pub fn into_split(mut self, test_fraction: f64, seed: u64) -> Result<Split> {
        let (order, n_test) = self.split_order(test_fraction, seed)?;
        let n = self.len();
        // Row j of the result is row `perm[j]` of this one: the training
        // rows in their order, then the test rows in theirs.
        let perm: Vec<usize> = order[n_test..]
            .iter()
            .chain(&order[..n_test])
            .copied()
            .collect();
        let dim = self.dim;
        let mut done = vec![false; n];
        let mut held = vec![0.0; dim];
        for start in 0..n {
            if done[start] {
                continue;
            }
            // Follow the cycle through `start`: each place takes the row
            // that belongs there, the first one's row held aside.
            held.copy_from_slice(self.row(start));
            let mut j = start;
            loop {
                done[j] = true;
                let from = perm[j];
                if from == start {
                    self.inputs[j * dim..(j + 1) * dim].copy_from_slice(&held);
                    break;
                }
                self.inputs
                    .copy_within(from * dim..(from + 1) * dim, j * dim);
                j = from;
            }
        }
        let labels: Vec<u32> = perm.iter().map(|&i| self.labels[i]).collect();
        drop((perm, done));
        let n_train = n - n_test;
        let test_inputs = self.inputs.split_off(n_train * dim);
        self.inputs.shrink_to_fit();
        let (train_labels, test_labels) = labels.split_at(n_train);
        let make = |what: &str, inputs: Vec<f64>, labels: &[u32]| Dataset {
            name: format!("{} ({what} split)", self.name),
            dim,
            classes: self.classes,
            inputs,
            labels: labels.to_vec(),
            inputs_f32: OnceLock::new(),
            beyond_f32: self.beyond_f32.clone(),
            first_beyond_f32: OnceLock::new(),
        };
        let test = make("test", test_inputs, test_labels);
        let inputs = std::mem::take(&mut self.inputs);
        Ok(Split {
            train: make("train", inputs, train_labels),
            test,
        })
    }

    /// The shuffled row order of a split and how many of its first rows are
    /// for testing.
    fn split_order(&self, test_fraction: f64, seed: u64) -> Result<(Vec<usize>, usize)> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::Invalid {
                what: "test fraction".into(),
                reason: format!("{test_fraction}; give a number between 0 and 1, e.g. 0.2"),
            });
        }
        let n = self.len();
        let n_test = ((test_fraction * n as f64).round() as usize).max(1);
        if n_test >= n {
            return Err(Error::Data {
                source_name: self.name.clone(),
                reason: format!("{n} rows are too few to keep {n_test} for testing"),
            });
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SPLIT_STREAM);
        order.shuffle(&mut rng);
        Ok((order, n_test))
    }
}

/// A data set's identity ([`Dataset::fingerprint`]): a trainer records its
/// training set's, so that a resumed run can tell other data from the data
/// it was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// The data set's name (shown in errors; not compared by [`DataFingerprint::same_data`]).
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Inputs per row.
    pub dim: usize,
    /// Classes.
    pub classes: usize,
    /// FNV-1a (64 bits) of the labels, then the inputs' f64 bits.
    pub hash: u64,
}

impl DataFingerprint {
    /// Whether both describe the same rows (names aside).
    pub fn same_data(&self, other: &DataFingerprint) -> bool {
        (self.rows, self.dim, self.classes, self.hash)
            == (other.rows, other.dim, other.classes, other.hash)
    }
}

impl fmt::Display for DataFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} rows of {} inputs, {} classes, hash {:016x})",
            self.name, self.rows, self.dim, self.classes, self.hash
        )
    }
}

/// The ChaCha stream a split draws from (training shuffles use another).
const SPLIT_STREAM: u64 = 2;

/// A training set and a test set of the same width and classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Rows to train on.
    pub train: Dataset,
    /// Rows to measure on.
    pub test: Dataset,
}

impl Split {
    /// Checks that both sets have the same width, and gives both the larger
    /// number of classes.
    pub fn new(mut train: Dataset, mut test: Dataset) -> Result<Self> {
        if train.dim != test.dim {
            return Err(Error::Data {
                source_name: test.name.clone(),
                reason: format!(
                    "rows of {} values, the training set's have {}",
                    test.dim, train.dim
                ),
            });
        }
        let classes = train.classes.max(test.classes);
        train.classes = classes;
        test.classes = classes;
        Ok(Split { train, test })
    }
}

/// Where to get data: a bundled set or a CSV file (the command line's `--data`).
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The USPS digits with their own split (7291 train / 2007 test).
    Usps,
    /// The Semeion digits (1593), split at random with the seed.
    Semeion,
    /// A CSV file (optionally gzipped), split at random with the seed.
    Csv(std::path::PathBuf),
}

impl DataSource {
    /// Loads the data and splits it: USPS keeps its own test set; Semeion and
    /// CSV files keep `test_fraction` of their rows (0.2 when `None`) for testing.
    pub fn load(&self, csv: &CsvOptions, test_fraction: Option<f64>, seed: u64) -> Result<Split> {
        match self {
            DataSource::Usps => {
                if let Some(f) = test_fraction {
                    return Err(Error::Invalid {
                        what: "test fraction".into(),
                        reason: format!("{f} for usps, which has its own test set; leave it out"),
                    });
                }
                usps()
            }
            DataSource::Semeion => semeion()?.into_split(test_fraction.unwrap_or(0.2), seed),
            DataSource::Csv(path) => {
                read_csv(path, csv)?.into_split(test_fraction.unwrap_or(0.2), seed)
            }
        }
    }
}

impl FromStr for DataSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "usps" => Ok(DataSource::Usps),
            "semeion" => Ok(DataSource::Semeion),
            _ => match s.strip_prefix("csv:") {
                Some(path) if !path.is_empty() => Ok(DataSource::Csv(path.into())),
                _ => Err(Error::Invalid {
                    what: "data".into(),
                    reason: format!("`{s}`; use usps, semeion or csv:PATH"),
                }),
            },
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Usps => f.write_str("usps"),
            DataSource::Semeion => f.write_str("semeion"),
            DataSource::Csv(p) => write!(f, "csv:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usps_has_the_documented_rows_and_label_counts_and_inputs_in_0_1() {
        let s = usps().unwrap();
        assert_eq!((s.train.len(), s.test.len()), (7291, 2007));
        assert_eq!(
            s.train.class_counts(),
            [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
        );
        assert_eq!(
            s.test.class_counts(),
            [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
        );
        let (lo, hi) = s
            .train
            .inputs()
            .iter()
            .fold((1.0f64, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        assert_eq!((lo, hi), (0.0, 1.0));
        assert_eq!(s.train.inputs_f32().len(), 7291 * 256);
    }

    #[test]
    fn semeion_parses_its_one_hot_labels_and_splits_by_seed() {
        let d = semeion().unwrap();
        assert_eq!((d.len(), d.dim(), d.classes()), (1593, 256, 10));
        assert!(
            d.class_counts().iter().all(|&c| (150..=170).contains(&c)),
            "{:?}",
            d.class_counts()
        );
        assert!(d.inputs().iter().all(|&x| x == 0.0 || x == 1.0));
        let a = d.split(0.2, 7).unwrap();
        let b = d.split(0.2, 7).unwrap();
        let c = d.split(0.2, 8).unwrap();
        assert_eq!((a.train.len(), a.test.len()), (1274, 319));
        assert_eq!(a, b);
        assert_ne!(a.test.labels(), c.test.labels());
        assert!(d.split(0.0, 1).is_err() && d.split(1.0, 1).is_err());
        // Split in place, the same sets.
        for seed in [7, 8] {
            assert_eq!(
                d.clone().into_split(0.2, seed).unwrap(),
                d.split(0.2, seed).unwrap()
            );
        }
        assert_eq!(
            d.clone().into_split(0.5, 1).unwrap(),
            d.split(0.5, 1).unwrap()
        );
        assert!(d.clone().into_split(1.0, 1).is_err());
    }

    #[test]
    fn data_sources_parse_and_usps_refuses_a_test_fraction() {
        assert_eq!("usps".parse::<DataSource>().unwrap(), DataSource::Usps);
        assert_eq!(
            "csv:a/b.csv".parse::<DataSource>().unwrap(),
            DataSource::Csv("a/b.csv".into())
        );
        assert!("csv:".parse::<DataSource>().is_err() && "mnist".parse::<DataSource>().is_err());
        let e = DataSource::Usps
            .load(&CsvOptions::default(), Some(0.3), 0)
            .unwrap_err();
        assert!(e.to_string().contains("own test set"));
    }

    #[test]
    fn batches_cover_every_row_once_and_the_last_may_be_short() {
        use rand::SeedableRng;
        let mut b = Batches::new(10, 4);
        assert_eq!(b.count(), 3);
        b.shuffle(&mut ChaCha8Rng::seed_from_u64(1));
        let sizes: Vec<usize> = b.iter().map(<[usize]>::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let mut all: Vec<usize> = b.iter().flatten().copied().collect();
        assert_ne!(all, (0..10).collect::<Vec<_>>());
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(Batches::new(10, 100).count(), 1);
        assert_eq!(Batches::new(10, 0).batch(), 1);
    }
}
