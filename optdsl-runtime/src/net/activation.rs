//! Activation functions of a layer: forward in place on a batch of
//! pre-activations, backward in place from the layer's outputs.

use super::NetFloat;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A layer's activation, applied to each row of the batch `z = x W^T + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `1 / (1 + e^-z)`, element-wise.
    Sigmoid,
    /// `tanh z`, element-wise.
    Tanh,
    /// `max(z, 0)`, element-wise.
    Relu,
    /// `z` unchanged (a linear layer).
    Identity,
    /// `e^z_k / sum_j e^z_j` over each row (computed with the row's maximum
    /// subtracted, so it never overflows).
    Softmax,
}

impl Activation {
    /// Every activation, in the order the command line lists them.
    pub const ALL: [Activation; 5] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Identity,
        Activation::Softmax,
    ];

    /// The activation's name as the command line and the specs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Identity => "identity",
            Activation::Softmax => "softmax",
        }
    }

    /// Replaces each row of `z` (`rows` x `cols`, row-major) by its activation.
    pub fn forward<F: NetFloat>(self, z: &mut [F], cols: usize) {
        match self {
            Activation::Sigmoid => z.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Tanh => z.iter_mut().for_each(|v| *v = v.tanh()),
            Activation::Relu => z.iter_mut().for_each(|v| *v = v.maximum(F::ZERO)),
            Activation::Identity => {}
            Activation::Softmax => z.chunks_exact_mut(cols).for_each(softmax_row),
        }
    }

    /// Turns `d = dL/da` into `dL/dz` in place, given the layer's outputs `a`
    /// (both `rows` x `cols`, row-major). Every derivative is written in terms of
    /// the output: sigmoid `a(1-a)`, tanh `1-a^2`, relu `[a>0]`, softmax
    /// `a * (d - <d, a>)` per row.
    pub fn backward<F: NetFloat>(self, a: &[F], d: &mut [F], cols: usize) {
        debug_assert_eq!(a.len(), d.len());
        match self {
            Activation::Sigmoid => d
                .iter_mut()
                .zip(a)
                .for_each(|(d, &a)| *d *= a * (F::ONE - a)),
            Activation::Tanh => d.iter_mut().zip(a).for_each(|(d, &a)| *d *= F::ONE - a * a),
            Activation::Relu => d.iter_mut().zip(a).for_each(|(d, &a)| {
                if a <= F::ZERO {
                    *d = F::ZERO
                }
            }),
            Activation::Identity => {}
            Activation::Softmax => {
                d.chunks_exact_mut(cols)
                    .zip(a.chunks_exact(cols))
                    .for_each(|(d, a)| {
                        let dot = d.iter().zip(a).fold(F::ZERO, |s, (&d, &a)| s + d * a);
                        d.iter_mut().zip(a).for_each(|(d, &a)| *d = a * (*d - dot));
                    })
            }
        }
    }
}

/// The logistic function, written so that a large `|z|` gives 0 or 1, not NaN.
#[inline(always)]
pub fn sigmoid<F: NetFloat>(z: F) -> F {
    F::ONE / (F::ONE + (-z).act_exp())
}

/// Softmax of one row in place, with the row's maximum subtracted first.
pub fn softmax_row<F: NetFloat>(row: &mut [F]) {
    let max = row.iter().fold(row[0], |m, &v| m.maximum(v));
    let mut sum = F::ZERO;
    for v in row.iter_mut() {
        *v = (*v - max).act_exp();
        sum += *v;
    }
    let inv = F::ONE / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| Error::Invalid {
                what: "activation".into(),
                reason: format!("`{s}`; use one of sigmoid, tanh, relu, identity, softmax"),
            })
    }
}
