//! The mean over a mini-batch's rows of each parameter's squared per-row
//! gradient, computed beside the mini-batch gradient: the per-sample
//! estimate of E[(∇θ)²] that vSGD's mini-batch form needs (Schaul, Zhang &
//! LeCun 2012, section "Parallelization with mini-batches").
//!
//! For a layer `z = a_prev W^T + b` and row `n`, the gradient of that row's
//! loss is `δ[n, k] a_prev[n, j]` for `W[k, j]` and `δ[n, k]` for `b[k]`, so
//! with `B` rows
//!
//! - `g2(W[k, j]) = (1/B) sum_n δ[n, k]^2 a_prev[n, j]^2`, one more matrix
//!   product per layer, `(δ ∘ δ)^T (a_prev ∘ a_prev)`;
//! - `g2(b[k]) = (1/B) sum_n δ[n, k]^2`.
//!
//! The backward pass keeps `δ / B` (the gradient of the batch's mean loss),
//! so the pass squares those and multiplies by `B`. As in the curvature pass
//! (`curvature.rs`), every square that enters a product is 0 or at least
//! `sqrt(MIN_NORMAL)`, so that no number in the pass is subnormal.

use super::backprop::{staged_view, CurvatureBuffers};
use super::curvature::Floor;
use super::{NetFloat, Network, Workspace};
use crate::error::{Error, Result};
use ndarray::linalg::general_mat_mul;
use ndarray::ArrayViewMut2;

impl<F: NetFloat> Network<F> {
    /// [`Network::staged_share_loss_and_grad`] on all `rows` staged rows (the
    /// whole batch), and into `squares` (laid out as the parameters) the
    /// mean over the rows of each parameter's squared per-row gradient
    /// (module docs). Returns the summed loss.
    ///
    /// ```
    /// use optdsl_runtime::net::{Activation, Network, NetworkSpec, Workspace};
    /// let spec = NetworkSpec::classifier(3, &[4], Activation::Sigmoid, 2);
    /// let net = Network::<f64>::new(spec, 1).unwrap();
    /// let mut ws = Workspace::new(&net, 2);
    /// let (x, y) = ws.stage(2);
    /// x.copy_from_slice(&[0.5, 0.0, 1.0, 0.2, 0.9, 0.0]);
    /// y.copy_from_slice(&[1, 0]);
    /// let mut g2 = vec![0.0; net.params().len()];
    /// net.staged_loss_grad_and_squares(&mut ws, 2, &mut g2).unwrap();
    /// // The mean of squares is at least the square of the mean.
    /// for (s, g) in g2.iter().zip(ws.grads()) {
    ///     assert!(*s >= g * g * (1.0 - 1e-12));
    /// }
    /// ```
    pub fn staged_loss_grad_and_squares(
        &self,
        ws: &mut Workspace<F>,
        rows: usize,
        squares: &mut [F],
    ) -> Result<f64> {
        self.staged_loss_grad_with(ws, rows, None, Some(squares))
    }

    /// The loss and gradient of all `rows` staged rows
    /// ([`Network::staged_share_loss_and_grad`]), and in the same pass
    /// whichever of the Gauss-Newton diagonal of the batch's mean loss
    /// ([`Network::staged_loss_grad_and_curvature`]) and the mean squared
    /// per-row gradient ([`Network::staged_loss_grad_and_squares`]) is asked
    /// for, each laid out as the parameters. Returns the summed loss.
    pub fn staged_loss_grad_with(
        &self,
        ws: &mut Workspace<F>,
        rows: usize,
        mut curvature: Option<&mut [F]>,
        mut squares: Option<&mut [F]>,
    ) -> Result<f64> {
        let n = self.params().len();
        for (what, buf) in [
            ("the curvature buffer", curvature.as_deref()),
            ("the squared-gradient buffer", squares.as_deref()),
        ] {
            if let Some(buf) = buf.filter(|b| b.len() != n) {
                return Err(Error::LengthMismatch {
                    what: what.into(),
                    expected: n,
                    got: buf.len(),
                });
            }
        }
        let sum = self.staged_share_loss_and_grad(ws, rows, rows)?;
        if rows == 0 {
            for buf in [curvature.as_deref_mut(), squares.as_deref_mut()]
                .into_iter()
                .flatten()
            {
                buf.iter_mut().for_each(|v| *v = F::ZERO);
            }
            return Ok(sum);
        }
        // The squares first: they read the deltas, which the curvature pass
        // overwrites.
        if let Some(squares) = squares {
            self.squares_pass(ws, rows, squares)?;
        }
        if let Some(curvature) = curvature {
            self.curvature_pass(ws, rows, curvature)?;
        }
        Ok(sum)
    }

    /// The squared-gradient pass (module docs) over the `rows` rows whose
    /// forward and backward passes are in `ws`; squares the deltas in place.
    fn squares_pass(&self, ws: &mut Workspace<F>, rows: usize, squares: &mut [F]) -> Result<()> {
        let batch = F::from_f64(rows as f64);
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
        for (l, layer) in layers.iter().enumerate() {
            let units = layer.units;
            let wseg = self.segments()[l];
            let bseg = self.segments()[last + 1 + l];
            let fan_in = wseg.shape.1;
            let d2 = &mut deltas[l][..rows * units];
            d2.iter_mut().for_each(|d| *d = floor.square(*d));
            // g2(b) = B sum_n (δ/B)^2
            let sb = &mut squares[bseg.range()];
            sb.iter_mut().for_each(|s| *s = F::ZERO);
            for row in d2.chunks_exact(units) {
                sb.iter_mut().zip(row).for_each(|(s, &d)| *s += d);
            }
            sb.iter_mut().for_each(|s| *s *= batch);
            // g2(W) = B (δ/B ∘ δ/B)^T (a_prev ∘ a_prev)
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
            let d2 = staged_view(d2, rows, units)?;
            let mut sw = ArrayViewMut2::from_shape(wseg.shape, &mut squares[wseg.range()])
                .expect("segment shape");
            general_mat_mul(batch, &d2.t(), &sq, F::ZERO, &mut sw);
        }
        Ok(())
    }
}
