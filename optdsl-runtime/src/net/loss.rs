//! Losses of a classifier's output layer against class labels: the loss of a
//! batch, and its gradient with respect to the output layer's pre-activations.

use super::{Activation, NetFloat};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The cost a network minimizes, averaged over the samples of a batch. Targets
/// are class labels; `y` below is the label's one-hot vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `-ln a_label` with `a = softmax(z)` (PyTorch's `CrossEntropyLoss` on the
    /// logits `z`), computed as `logsumexp(z) - z_label` so it stays finite when
    /// `a_label` underflows. Needs a softmax output layer.
    CrossEntropy,
    /// The squared Euclidean distance `sum_k (a_k - y_k)^2` between the output
    /// and the one-hot target (the slides' cost; PyTorch's
    /// `MSELoss(reduction="sum")` divided by the batch size). Any output
    /// activation.
    Mse,
}

impl Loss {
    /// The loss's name as the command line and the specs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        }
    }

    /// The loss of an output that gives every one of `classes` classes the
    /// same probability `1/classes`, whatever the label: `ln classes` for
    /// cross-entropy, `(classes - 1) / classes` for mse. Where a network's
    /// loss starts, near enough; a loss far above it has diverged.
    pub fn chance(self, classes: usize) -> f64 {
        let c = classes.max(1) as f64;
        match self {
            Loss::CrossEntropy => c.ln(),
            Loss::Mse => (c - 1.0) / c,
        }
    }

    /// Checks that the loss can follow an output layer with activation `out`.
    pub fn check_output(self, out: Activation) -> Result<()> {
        if self == Loss::CrossEntropy && out != Activation::Softmax {
            return Err(Error::Invalid {
                what: "network".into(),
                reason: format!(
                    "cross_entropy needs a softmax output layer, not {out}; \
                     make the last layer softmax or use mse"
                ),
            });
        }
        Ok(())
    }

    /// Applies the output activation to the pre-activations `z` (`rows` x
    /// `cols`, row-major) in place and returns the loss summed over the rows.
    pub fn forward<F: NetFloat>(
        self,
        act: Activation,
        z: &mut [F],
        labels: &[u32],
        cols: usize,
    ) -> f64 {
        match self {
            Loss::CrossEntropy => z
                .chunks_exact_mut(cols)
                .zip(labels)
                .map(|(row, &y)| softmax_cross_entropy_row(row, y as usize))
                .sum(),
            Loss::Mse => {
                act.forward(z, cols);
                z.chunks_exact(cols)
                    .zip(labels)
                    .map(|(row, &y)| {
                        row.iter()
                            .enumerate()
                            .map(|(k, &a)| {
                                let e = a.to_f64() - f64::from(k == y as usize);
                                e * e
                            })
                            .sum::<f64>()
                    })
                    .sum()
            }
        }
    }

    /// Writes into `d` the gradient, with respect to the output layer's
    /// pre-activations, of `scale` times the summed loss (`scale = 1/rows` for
    /// the batch mean), given the outputs `a` of [`Loss::forward`].
    pub fn backward<F: NetFloat>(
        self,
        act: Activation,
        a: &[F],
        labels: &[u32],
        d: &mut [F],
        cols: usize,
        scale: F,
    ) {
        let two = F::ONE + F::ONE;
        let factor = match self {
            Loss::CrossEntropy => scale,
            Loss::Mse => two * scale,
        };
        for ((d, a), &y) in d
            .chunks_exact_mut(cols)
            .zip(a.chunks_exact(cols))
            .zip(labels)
        {
            for (k, (d, &a)) in d.iter_mut().zip(a).enumerate() {
                let target = if k == y as usize { F::ONE } else { F::ZERO };
                *d = factor * (a - target);
            }
        }
        // Cross-entropy after softmax: dL/dz = a - y directly. Squared distance:
        // dL/da = 2(a - y), then through the activation.
        if self == Loss::Mse {
            act.backward(a, d, cols);
        }
    }
}

/// Softmax of one row of logits in place; returns `logsumexp(z) - z[label]`.
fn softmax_cross_entropy_row<F: NetFloat>(row: &mut [F], label: usize) -> f64 {
    let max = row.iter().fold(row[0], |m, &v| m.maximum(v));
    let z_label = row[label];
    let mut sum = F::ZERO;
    for v in row.iter_mut() {
        *v = (*v - max).act_exp();
        sum += *v;
    }
    let inv = F::ONE / sum;
    row.iter_mut().for_each(|v| *v *= inv);
    max.to_f64() + sum.to_f64().ln() - z_label.to_f64()
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "cross_entropy" | "ce" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::Mse),
            _ => Err(Error::Invalid {
                what: "loss".into(),
                reason: format!("`{s}`; use cross_entropy or mse"),
            }),
        }
    }
}
