//! The diagonal of the Gauss-Newton matrix of a mini-batch's mean loss, by
//! "bbprop" (Becker & LeCun 1989; LeCun, Bottou, Orr & Müller, "Efficient
//! BackProp", 1998, section 7): curvature flows backwards as a gradient does,
//! through squared weights and squared activation slopes. It is the `h` vSGD
//! (Schaul, Zhang & LeCun 2013) was designed around.
//!
//! For a layer `z = a_prev W^T + b`, with `D[n, k]` the curvature of the loss
//! with respect to `z[n, k]`:
//!
//! - `h(W[k, j]) = sum_n D[n, k] a_prev[n, j]^2`, `h(b[k]) = sum_n D[n, k]`;
//! - `D_prev[n, j] = (sum_k D[n, k] W[k, j]^2) s(a_prev[n, j])^2`, with `s` the
//!   slope of the activation below (sigmoid `a(1-a)`, tanh `1-a^2`, relu
//!   `[a>0]`, identity 1; for a hidden softmax, the diagonal of its Jacobian
//!   `a(1-a)`), the second-derivative term dropped (Gauss-Newton), so that
//!   every entry is `>= 0`.
//!
//! At the output, for the batch mean (each row weighted `1/batch`):
//! cross-entropy after softmax gives `D = p(1-p)` (the exact diagonal of the
//! loss's Hessian in the logits); the squared distance `sum_k (a_k - y_k)^2`
//! gives `2 sum_m (da_m/dz_k)^2`.
//!
//! Every number here is `>= 0`, and many are products of small ones
//! (`p(1-p)` of a confident output, squared slopes of saturated sigmoids),
//! which in f32 fall below the normal range; some processors compute on
//! such subnormal numbers many times slower, and the pass is mostly matrix
//! products over them. So the pass keeps them out: every factor that enters
//! a product is either 0 or at least `t = sqrt(MIN_NORMAL)` (about 1.1e-19
//! in f32, 1.5e-154 in f64), so that each product of two is 0 or normal,
//! and each sum of them too (no cancellation: all terms are `>= 0`). A
//! squared number `x^2` is taken as 0 for `|x| < sqrt(t)`. What is dropped
//! is below `t` times the other factor: for vSGD, which floors the
//! curvature at `eps = 1e-10`, far below what can change its step.

use super::backprop::{staged_view, CurvatureBuffers};
use super::{Activation, Loss, NetFloat, Network, Workspace};
use crate::error::Result;
use ndarray::linalg::general_mat_mul;
use ndarray::ArrayViewMut2;

impl<F: NetFloat> Network<F> {
    /// [`Network::staged_share_loss_and_grad`] on all `rows` staged rows (the
    /// whole batch), and into `curvature` (laid out as the parameters) the
    /// Gauss-Newton diagonal of the batch's mean loss (module docs).
    /// Returns the summed loss.
    ///
    /// ```
    /// use optdsl_runtime::net::{Activation, Network, NetworkSpec, Workspace};
    /// let spec = NetworkSpec::classifier(3, &[4], Activation::Sigmoid, 2);
    /// let net = Network::<f64>::new(spec, 1).unwrap();
    /// let mut ws = Workspace::new(&net, 2);
    /// let (x, y) = ws.stage(2);
    /// x.copy_from_slice(&[0.5, 0.0, 1.0, 0.2, 0.9, 0.0]);
    /// y.copy_from_slice(&[1, 0]);
    /// let mut h = vec![0.0; net.params().len()];
    /// net.staged_loss_grad_and_curvature(&mut ws, 2, &mut h).unwrap();
    /// assert!(h.iter().all(|&v| v >= 0.0) && h.iter().any(|&v| v > 0.0));
    /// ```
    pub fn staged_loss_grad_and_curvature(
        &self,
        ws: &mut Workspace<F>,
        rows: usize,
        curvature: &mut [F],
    ) -> Result<f64> {
        self.staged_loss_grad_with(ws, rows, Some(curvature), None)
    }

    /// The curvature pass (module docs) over the `rows` rows whose forward
    /// pass is in `ws`, into `curvature` (its length checked by the caller).
    /// It overwrites the workspace's deltas.
    pub(super) fn curvature_pass(
        &self,
        ws: &mut Workspace<F>,
        rows: usize,
        curvature: &mut [F],
    ) -> Result<()> {
        let scale = F::from_f64(1.0 / rows as f64);
        let floor = Floor::<F>::new();
        let layers = &self.spec().layers;
        let last = layers.len() - 1;
        let CurvatureBuffers {
            input,
            acts,
            deltas,
            scratch,
        } = ws.curvature_buffers();
        let x = staged_view(input, rows, self.segments()[0].shape.1)?;
        output_curvature(
            self.spec().loss,
            layers[last].activation,
            &acts[last][..rows * layers[last].units],
            &mut deltas[last][..rows * layers[last].units],
            layers[last].units,
            scale,
        );
        deltas[last][..rows * layers[last].units]
            .iter_mut()
            .for_each(|d| *d = floor.flush(*d));
        for l in (0..=last).rev() {
            let units = layers[l].units;
            let wseg = self.segments()[l];
            let bseg = self.segments()[last + 1 + l];
            let fan_in = wseg.shape.1;
            let (below, rest) = deltas.split_at_mut(l);
            let d = staged_view(&rest[0], rows, units)?;
            // h(W) = D^T (a_prev ∘ a_prev)
            let prev: &[F] = if l == 0 {
                x.as_slice().expect("staged rows are contiguous")
            } else {
                &acts[l - 1][..rows * fan_in]
            };
            let sq = &mut scratch[..rows * fan_in];
            sq.iter_mut()
                .zip(prev)
                .for_each(|(s, &a)| *s = floor.square(a));
            let sq = staged_view(sq, rows, fan_in)?;
            let mut hw = ArrayViewMut2::from_shape(wseg.shape, &mut curvature[wseg.range()])
                .expect("segment shape");
            general_mat_mul(F::ONE, &d.t(), &sq, F::ZERO, &mut hw);
            let hb = &mut curvature[bseg.range()];
            hb.iter_mut().for_each(|h| *h = F::ZERO);
            for row in rest[0][..rows * units].chunks_exact(units) {
                hb.iter_mut().zip(row).for_each(|(h, &d)| *h += d);
            }
            if l > 0 {
                // D_prev = (D (W ∘ W)) ∘ s(a_prev)^2
                let w2 = &mut scratch[..units * fan_in];
                let w = self.weights(l);
                let w = w.as_slice().expect("contiguous weights");
                w2.iter_mut()
                    .zip(w)
                    .for_each(|(s, &w)| *s = floor.square(w));
                let w2 = staged_view(w2, units, fan_in)?;
                let dprev = &mut below[l - 1][..rows * fan_in];
                let mut dp = ArrayViewMut2::from_shape((rows, fan_in), &mut *dprev).expect("shape");
                general_mat_mul(F::ONE, &d, &w2, F::ZERO, &mut dp);
                let a = &acts[l - 1][..rows * fan_in];
                let act = layers[l - 1].activation;
                dprev.iter_mut().zip(a).for_each(|(d, &a)| {
                    *d = floor.flush(floor.flush(*d) * floor.squared_slope(act, a));
                });
            }
        }
        Ok(())
    }
}

/// The thresholds that keep the pass's numbers normal (module docs).
pub(super) struct Floor<F> {
    /// `sqrt(MIN_NORMAL)`: a factor of a product is 0 or at least this.
    t: F,
    /// `sqrt(t)`: a number squared is taken as 0 below this magnitude.
    root_t: F,
}

impl<F: NetFloat> Floor<F> {
    /// The thresholds of the element type `F`.
    pub(super) fn new() -> Self {
        let t = F::MIN_NORMAL.to_f64().sqrt();
        Floor {
            t: F::from_f64(t),
            root_t: F::from_f64(t.sqrt()),
        }
    }

    /// `x` (`>= 0`), or 0 below `t`.
    #[inline(always)]
    fn flush(&self, x: F) -> F {
        if x < self.t {
            F::ZERO
        } else {
            x
        }
    }

    /// `x^2`, 0 where `|x| < sqrt(t)`: 0 or at least `t`, computed without
    /// a subnormal intermediate.
    #[inline(always)]
    pub(super) fn square(&self, x: F) -> F {
        let x = if x.abs() < self.root_t { F::ZERO } else { x };
        x * x
    }

    /// [`squared_slope`] as 0 or at least `t`.
    #[inline(always)]
    fn squared_slope(&self, act: Activation, a: F) -> F {
        match act {
            Activation::Sigmoid | Activation::Softmax => {
                let a = if a.abs() < self.root_t { F::ZERO } else { a };
                self.square(a * (F::ONE - a))
            }
            Activation::Tanh => self.square(F::ONE - self.square(a)),
            Activation::Relu | Activation::Identity => squared_slope(act, a),
        }
    }
}

/// The squared slope of `act` at output `a` (Gauss-Newton: no second
/// derivative term).
fn squared_slope<F: NetFloat>(act: Activation, a: F) -> F {
    let s = match act {
        Activation::Sigmoid | Activation::Softmax => a * (F::ONE - a),
        Activation::Tanh => F::ONE - a * a,
        Activation::Relu => {
            if a > F::ZERO {
                F::ONE
            } else {
                F::ZERO
            }
        }
        Activation::Identity => F::ONE,
    };
    s * s
}

/// The output layer's curvature `D` (module docs), each row weighted `scale`.
fn output_curvature<F: NetFloat>(
    loss: Loss,
    act: Activation,
    a: &[F],
    d: &mut [F],
    cols: usize,
    scale: F,
) {
    let two = F::ONE + F::ONE;
    match (loss, act) {
        (Loss::CrossEntropy, _) => d
            .iter_mut()
            .zip(a)
            .for_each(|(d, &p)| *d = scale * p * (F::ONE - p)),
        (Loss::Mse, Activation::Softmax) => {
            // sum_m (a_m (δ_mk - a_k))^2 = a_k^2 ((1 - a_k)^2 + S - a_k^2), S = sum_m a_m^2
            for (d, a) in d.chunks_exact_mut(cols).zip(a.chunks_exact(cols)) {
                let s = a.iter().fold(F::ZERO, |s, &v| s + v * v);
                for (d, &ak) in d.iter_mut().zip(a) {
                    let one_minus = F::ONE - ak;
                    *d = two * scale * ak * ak * (one_minus * one_minus + s - ak * ak);
                }
            }
        }
        (Loss::Mse, act) => d
            .iter_mut()
            .zip(a)
            .for_each(|(d, &a)| *d = two * scale * squared_slope(act, a)),
    }
}
