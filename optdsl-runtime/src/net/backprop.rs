//! Forward and backward passes over a mini-batch: matrix products with
//! ndarray's `general_mat_mul` into buffers a [`Workspace`] allocates once.

use super::{NetFloat, Network};
use crate::data::Dataset;
use crate::error::{Error, Result};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// The buffers one forward and backward pass of up to `capacity` rows needs:
/// a staging area for a batch's inputs and labels, each layer's outputs and
/// deltas, and the gradient (laid out as the network's parameters). Made once
/// per network and batch size; a pass allocates nothing.
#[derive(Debug, Clone)]
pub struct Workspace<F> {
    capacity: usize,
    widths: Vec<usize>,
    input: Vec<F>,
    labels: Vec<u32>,
    acts: Vec<Vec<F>>,
    deltas: Vec<Vec<F>>,
    grads: Vec<F>,
    rows: usize,
    /// Room for a batch's squared activations or a layer's squared weights,
    /// made on the first curvature pass (see `curvature.rs`).
    scratch: Vec<F>,
}

/// What the curvature pass reads and writes of a [`Workspace`].
pub(super) struct CurvatureBuffers<'a, F> {
    pub input: &'a [F],
    pub acts: &'a [Vec<F>],
    pub deltas: &'a mut [Vec<F>],
    pub scratch: &'a mut [F],
}

impl<F: NetFloat> Workspace<F> {
    /// Buffers for `net` and batches of at most `capacity` rows (at least 1).
    pub fn new(net: &Network<F>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let widths = net.spec().widths();
        let per_layer = |_: usize| -> Vec<Vec<F>> {
            widths[1..]
                .iter()
                .map(|&u| vec![F::ZERO; capacity * u])
                .collect()
        };
        Workspace {
            capacity,
            input: vec![F::ZERO; capacity * widths[0]],
            labels: vec![0; capacity],
            acts: per_layer(0),
            deltas: per_layer(1),
            grads: vec![F::ZERO; net.params().len()],
            rows: 0,
            scratch: Vec::new(),
            widths,
        }
    }

    /// The staged inputs, the layers' outputs, the deltas (as scratch) and a
    /// buffer large enough for any layer's squared inputs or squared
    /// weights, allocated on the first call.
    pub(super) fn curvature_buffers(&mut self) -> CurvatureBuffers<'_, F> {
        if self.scratch.is_empty() {
            let most = self
                .widths
                .windows(2)
                .map(|w| (self.capacity * w[0]).max(w[0] * w[1]))
                .max()
                .unwrap_or(0);
            self.scratch = vec![F::ZERO; most];
        }
        CurvatureBuffers {
            input: &self.input,
            acts: &self.acts,
            deltas: &mut self.deltas,
            scratch: &mut self.scratch,
        }
    }

    /// The most rows a pass may have.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The gradient of the last [`Network::loss_and_grad`], in the layout of the
    /// network's parameters.
    pub fn grads(&self) -> &[F] {
        &self.grads
    }

    /// The outputs of the last pass (`rows` x `classes`).
    pub fn output(&self) -> ArrayView2<'_, F> {
        let cols = *self.widths.last().expect("widths");
        let out = self.acts.last().expect("a layer");
        ArrayView2::from_shape((self.rows, cols), &out[..self.rows * cols]).expect("shape")
    }

    /// How many rows of the last staged pass the network got right (arg-max
    /// of the output equal to the staged label).
    pub fn staged_correct(&self) -> usize {
        count_correct(self.output(), &self.labels[..self.rows])
    }

    /// The staging buffers for a batch of `rows` rows: inputs (`rows` x
    /// `inputs`, row-major) and labels, to fill before
    /// [`Network::staged_loss_and_grad`] or [`Network::staged_loss`].
    ///
    /// # Panics
    /// If `rows` exceeds the capacity.
    pub fn stage(&mut self, rows: usize) -> (&mut [F], &mut [u32]) {
        assert!(rows <= self.capacity, "batch larger than the workspace");
        let dim = self.widths[0];
        (&mut self.input[..rows * dim], &mut self.labels[..rows])
    }

    /// Copies the rows `indices` of `data` (inputs converted to `F`) and their
    /// labels into the staging buffers's staging buffers; returns the number of rows.
    ///
    /// # Panics
    /// If there are more indices than the workspace's capacity, or the data's
    /// width is not the network's input width.
    pub fn stage_rows(&mut self, data: &Dataset, indices: &[usize]) -> usize {
        let dim = data.dim();
        let inputs = F::inputs_of(data);
        let (x, y) = self.stage(indices.len());
        assert_eq!(
            x.len(),
            indices.len() * dim,
            "data width differs from the network's"
        );
        for ((row, label), &i) in x.chunks_exact_mut(dim).zip(y.iter_mut()).zip(indices) {
            row.copy_from_slice(&inputs[i * dim..(i + 1) * dim]);
            *label = data.labels()[i];
        }
        indices.len()
    }
}

impl<F: NetFloat> Network<F> {
    /// The mean loss of the batch `x` (`rows` x `inputs`) with `labels`, and its
    /// gradient with respect to every parameter, left in `ws.grads()`.
    pub fn loss_and_grad(
        &self,
        ws: &mut Workspace<F>,
        x: ArrayView2<'_, F>,
        labels: &[u32],
    ) -> Result<f64> {
        self.check_batch(ws, x.dim(), labels)?;
        let Workspace {
            acts,
            deltas,
            grads,
            ..
        } = ws;
        let sum = self.forward_into(x, Some(labels), acts);
        let scale = F::from_f64(1.0 / labels.len() as f64);
        self.backward_into(x, labels, acts, deltas, grads, scale);
        ws.rows = labels.len();
        Ok(sum / labels.len() as f64)
    }

    /// [`Network::loss_and_grad`] on the first `rows` rows staged with
    /// [`Workspace::stage`].
    pub fn staged_loss_and_grad(&self, ws: &mut Workspace<F>, rows: usize) -> Result<f64> {
        Ok(self.staged_share_loss_and_grad(ws, rows, rows)? / rows as f64)
    }

    /// A share of a mini-batch of `batch_rows` rows split across processes:
    /// returns the summed loss of the first `rows` staged rows and leaves in
    /// `ws.grads()` the gradient of that sum divided by `batch_rows`. Adding
    /// the shares of every process gives the gradient of the batch's mean
    /// loss, [`Network::staged_loss_and_grad`]'s, in another summation order.
    /// A share of 0 rows has loss 0 and gradient 0.
    pub fn staged_share_loss_and_grad(
        &self,
        ws: &mut Workspace<F>,
        rows: usize,
        batch_rows: usize,
    ) -> Result<f64> {
        if rows == 0 {
            ws.grads.iter_mut().for_each(|g| *g = F::ZERO);
            ws.rows = 0;
            return Ok(0.0);
        }
        let Workspace {
            input,
            labels,
            acts,
            deltas,
            grads,
            widths,
            ..
        } = ws;
        let x = staged_view(input, rows, widths[0])?;
        let labels = &labels[..rows];
        self.check_labels(labels)?;
        let sum = self.forward_into(x, Some(labels), acts);
        let scale = F::from_f64(1.0 / batch_rows.max(rows) as f64);
        self.backward_into(x, labels, acts, deltas, grads, scale);
        ws.rows = rows;
        Ok(sum)
    }

    /// The summed loss and the number of correct answers (arg-max of the output
    /// equal to the label) of the first `rows` staged rows; no gradient.
    pub fn staged_loss(&self, ws: &mut Workspace<F>, rows: usize) -> Result<(f64, usize)> {
        let Workspace {
            input,
            labels,
            acts,
            widths,
            ..
        } = ws;
        let x = staged_view(input, rows, widths[0])?;
        let labels = &labels[..rows];
        self.check_labels(labels)?;
        let sum = self.forward_into(x, Some(labels), acts);
        ws.rows = rows;
        let correct = count_correct(ws.output(), &ws.labels[..rows]);
        Ok((sum, correct))
    }

    /// The network's outputs for the batch `x` (`rows` x `inputs`), in `ws`.
    pub fn forward<'w>(
        &self,
        ws: &'w mut Workspace<F>,
        x: ArrayView2<'_, F>,
    ) -> Result<ArrayView2<'w, F>> {
        self.check_batch(ws, x.dim(), &[])?;
        self.forward_into(x, None, &mut ws.acts);
        ws.rows = x.nrows();
        Ok(ws.output())
    }

    /// The outputs for one input vector (allocates; for examples and tests).
    pub fn predict(&self, x: &[F]) -> Result<Vec<F>> {
        let mut ws = Workspace::new(self, 1);
        let view = ArrayView2::from_shape((1, x.len()), x).expect("one row");
        Ok(self.forward(&mut ws, view)?.iter().copied().collect())
    }

    /// Only the matrix products of [`Network::staged_loss_and_grad`] on the
    /// first `rows` staged rows: the same `general_mat_mul` calls with the same
    /// shapes into the same buffers, without bias, activation, loss or the bias
    /// gradient. For timing: the floor an epoch's arithmetic sets.
    pub fn staged_matmuls_only(&self, ws: &mut Workspace<F>, rows: usize) -> Result<()> {
        let Workspace {
            input,
            acts,
            deltas,
            grads,
            widths,
            ..
        } = ws;
        let x = staged_view(input, rows, widths[0])?;
        let last = self.layer_count() - 1;
        for l in 0..=last {
            let (before, rest) = acts.split_at_mut(l);
            let mut z = ArrayViewMut2::from_shape(
                (rows, widths[l + 1]),
                &mut rest[0][..rows * widths[l + 1]],
            )
            .expect("shape");
            let w = self.weights(l);
            if l == 0 {
                general_mat_mul(F::ONE, &x, &w.t(), F::ZERO, &mut z);
            } else {
                let prev = staged_view(&before[l - 1], rows, widths[l])?;
                general_mat_mul(F::ONE, &prev, &w.t(), F::ZERO, &mut z);
            }
        }
        for l in (0..=last).rev() {
            let (below, rest) = deltas.split_at_mut(l);
            let d = staged_view(&rest[0], rows, widths[l + 1])?;
            let wseg = self.segments()[l];
            let mut gw = ArrayViewMut2::from_shape(wseg.shape, &mut grads[wseg.range()])
                .expect("segment shape");
            if l == 0 {
                general_mat_mul(F::ONE, &d.t(), &x, F::ZERO, &mut gw);
            } else {
                let prev = staged_view(&acts[l - 1], rows, widths[l])?;
                general_mat_mul(F::ONE, &d.t(), &prev, F::ZERO, &mut gw);
                let mut dp = ArrayViewMut2::from_shape(
                    (rows, widths[l]),
                    &mut below[l - 1][..rows * widths[l]],
                )
                .expect("shape");
                general_mat_mul(F::ONE, &d, &self.weights(l), F::ZERO, &mut dp);
            }
        }
        Ok(())
    }

    fn check_batch(&self, ws: &Workspace<F>, dim: (usize, usize), labels: &[u32]) -> Result<()> {
        let inputs = self.spec().inputs;
        if dim.1 != inputs {
            return Err(Error::LengthMismatch {
                what: "a row of the batch".into(),
                expected: inputs,
                got: dim.1,
            });
        }
        if dim.0 > ws.capacity || ws.grads.len() != self.params().len() {
            return Err(Error::Invalid {
                what: "workspace".into(),
                reason: format!(
                    "it holds {} rows of a network of {} parameters, the batch has {} rows \
                     for {} parameters; make one with Workspace::new(&net, rows)",
                    ws.capacity,
                    ws.grads.len(),
                    dim.0,
                    self.params().len()
                ),
            });
        }
        if !labels.is_empty() && labels.len() != dim.0 {
            return Err(Error::LengthMismatch {
                what: "the labels".into(),
                expected: dim.0,
                got: labels.len(),
            });
        }
        self.check_labels(labels)
    }

    fn check_labels(&self, labels: &[u32]) -> Result<()> {
        let classes = self.spec().outputs();
        match labels.iter().find(|&&y| y as usize >= classes) {
            Some(y) => Err(Error::Invalid {
                what: "label".into(),
                reason: format!("{y} for a network of {classes} outputs; labels run from 0"),
            }),
            None => Ok(()),
        }
    }

    /// Runs every layer; returns the summed loss when labels are given.
    fn forward_into(
        &self,
        x: ArrayView2<'_, F>,
        labels: Option<&[u32]>,
        acts: &mut [Vec<F>],
    ) -> f64 {
        let rows = x.nrows();
        let last = self.layer_count() - 1;
        let mut loss = 0.0;
        for l in 0..=last {
            let (before, rest) = acts.split_at_mut(l);
            let units = self.spec().layers[l].units;
            let out = &mut rest[0][..rows * units];
            let mut z = ArrayViewMut2::from_shape((rows, units), &mut *out).expect("shape");
            let w = self.weights(l);
            if l == 0 {
                general_mat_mul(F::ONE, &x, &w.t(), F::ZERO, &mut z);
            } else {
                let fan_in = w.ncols();
                let prev = staged_view(&before[l - 1], rows, fan_in).expect("shape");
                general_mat_mul(F::ONE, &prev, &w.t(), F::ZERO, &mut z);
            }
            let bias = self.bias(l);
            let bias = bias.as_slice().expect("contiguous bias");
            for row in out.chunks_exact_mut(units) {
                row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
            }
            let act = self.spec().layers[l].activation;
            match labels {
                Some(labels) if l == last => {
                    loss = self.spec().loss.forward(act, out, labels, units)
                }
                _ => act.forward(out, units),
            }
        }
        loss
    }

    /// Backpropagates from the loss through every layer into `grads`: the
    /// gradient of the summed loss of the rows times `scale`.
    fn backward_into(
        &self,
        x: ArrayView2<'_, F>,
        labels: &[u32],
        acts: &[Vec<F>],
        deltas: &mut [Vec<F>],
        grads: &mut [F],
        scale: F,
    ) {
        let rows = x.nrows();
        let layers = &self.spec().layers;
        let last = layers.len() - 1;
        let units = layers[last].units;
        self.spec().loss.backward(
            layers[last].activation,
            &acts[last][..rows * units],
            labels,
            &mut deltas[last][..rows * units],
            units,
            scale,
        );
        for l in (0..=last).rev() {
            let units = layers[l].units;
            let (below, rest) = deltas.split_at_mut(l);
            let d = staged_view(&rest[0], rows, units).expect("shape");
            let wseg = self.segments()[l];
            let bseg = self.segments()[last + 1 + l];
            let mut gw = ArrayViewMut2::from_shape(wseg.shape, &mut grads[wseg.range()])
                .expect("segment shape");
            if l == 0 {
                general_mat_mul(F::ONE, &d.t(), &x, F::ZERO, &mut gw);
            } else {
                let prev = staged_view(&acts[l - 1], rows, wseg.shape.1).expect("shape");
                general_mat_mul(F::ONE, &d.t(), &prev, F::ZERO, &mut gw);
            }
            let gb = &mut grads[bseg.range()];
            gb.iter_mut().for_each(|v| *v = F::ZERO);
            for row in rest[0][..rows * units].chunks_exact(units) {
                gb.iter_mut().zip(row).for_each(|(g, &d)| *g += d);
            }
            if l > 0 {
                let fan_in = wseg.shape.1;
                let dprev = &mut below[l - 1][..rows * fan_in];
                let mut dp = ArrayViewMut2::from_shape((rows, fan_in), &mut *dprev).expect("shape");
                general_mat_mul(F::ONE, &d, &self.weights(l), F::ZERO, &mut dp);
                layers[l - 1]
                    .activation
                    .backward(&acts[l - 1][..rows * fan_in], dprev, fan_in);
            }
        }
    }
}

/// The first `rows` rows of a row-major buffer of `cols` columns.
pub(super) fn staged_view<F>(buf: &[F], rows: usize, cols: usize) -> Result<ArrayView2<'_, F>> {
    if rows * cols > buf.len() {
        return Err(Error::Invalid {
            what: "batch".into(),
            reason: format!(
                "{rows} rows do not fit a workspace of {} rows",
                buf.len() / cols.max(1)
            ),
        });
    }
    Ok(ArrayView2::from_shape((rows, cols), &buf[..rows * cols]).expect("shape"))
}

/// How many rows of `out` have their largest entry (the first, on ties) at
/// the label.
pub fn count_correct<F: NetFloat>(out: ArrayView2<'_, F>, labels: &[u32]) -> usize {
    out.outer_iter()
        .zip(labels)
        .filter(|(row, &y)| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best == y as usize
        })
        .count()
}
