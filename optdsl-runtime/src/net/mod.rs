//! Fully-connected networks whose parameters live in one contiguous buffer:
//! specs built at run time, seeded initialization, and the layout that makes
//! each layer's weights and biases separate tensors to an optimizer.

mod activation;
mod backprop;
mod curvature;
mod fastmath;
mod loss;
mod squares;

pub use activation::{sigmoid, softmax_row, Activation};
pub use backprop::{count_correct, Workspace};
pub use loss::Loss;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::rng::{torch_bounds, Generator, TorchGenerator};
use crate::rule::DynFloat;
use ndarray::{ArrayView1, ArrayView2, LinalgScalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The element types a network computes in (f32, f64): an optimizer's float
/// that ndarray's matrix products accept, with the functions activations need.
pub trait NetFloat: DynFloat + LinalgScalar {
    /// The smallest positive normal number (`f32::MIN_POSITIVE`,
    /// `f64::MIN_POSITIVE`); below it lie the subnormal numbers, on which
    /// some processors compute many times slower.
    const MIN_NORMAL: Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// `e^x` for activations: a vectorizable approximation within 2.5e-7
    /// relative in f32 (saturating to 0 and about 2.4e38), std's `exp` in f64.
    fn act_exp(self) -> Self;
    /// The inputs of `data` in this type, row-major (f32: converted once and
    /// cached in the data set; f64: as stored).
    fn inputs_of(data: &Dataset) -> &[Self];
}

impl NetFloat for f32 {
    const MIN_NORMAL: f32 = f32::MIN_POSITIVE;
    #[inline(always)]
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
    #[inline(always)]
    fn act_exp(self) -> Self {
        fastmath::exp_f32(self)
    }
    fn inputs_of(data: &Dataset) -> &[f32] {
        data.inputs_f32()
    }
}

impl NetFloat for f64 {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    #[inline(always)]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn act_exp(self) -> Self {
        f64::exp(self)
    }
    fn inputs_of(data: &Dataset) -> &[f64] {
        data.inputs()
    }
}

/// How a layer's weights (and, for [`Init::Torch`], biases) are drawn;
/// otherwise biases start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot & Bengio (2010): uniform on `[-a, a]`, `a = sqrt(6 / (fan_in + fan_out))`
    /// (for sigmoid, tanh, identity and softmax layers).
    Xavier,
    /// He et al. (2015): uniform on `[-a, a]`, `a = sqrt(6 / fan_in)` (for relu).
    He,
    /// PyTorch's `nn.Linear` default: weights and biases uniform on `[-a, a]`,
    /// `a = 1 / sqrt(fan_in)` (`kaiming_uniform_` with `a = sqrt(5)`, whose
    /// bound is `sqrt(6 / ((1 + 5) fan_in))`), whatever the activation.
    Torch,
}

impl Init {
    /// The initialization suited to a layer with activation `act`.
    pub fn for_activation(act: Activation) -> Init {
        match act {
            Activation::Relu => Init::He,
            _ => Init::Xavier,
        }
    }

    /// The half-width of the uniform distribution for these fan-in and fan-out.
    pub fn bound(self, fan_in: usize, fan_out: usize) -> f64 {
        match self {
            Init::Xavier => (6.0 / (fan_in + fan_out) as f64).sqrt(),
            Init::He => (6.0 / fan_in as f64).sqrt(),
            Init::Torch => 1.0 / (fan_in as f64).sqrt(),
        }
    }

    /// Whether the biases are drawn too (from the same range), not zero.
    pub fn draws_biases(self) -> bool {
        self == Init::Torch
    }

    /// The name the command line and the specs use.
    pub fn name(self) -> &'static str {
        match self {
            Init::Xavier => "xavier",
            Init::He => "he",
            Init::Torch => "torch",
        }
    }
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [Init::Xavier, Init::He, Init::Torch]
            .into_iter()
            .find(|i| i.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| Error::Invalid {
                what: "init".into(),
                reason: format!("`{s}`; use xavier, he or torch"),
            })
    }
}

/// One fully-connected layer: `a = act(x W^T + b)` with `W` of `units` rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// Output width.
    pub units: usize,
    /// Activation applied to the layer's output.
    pub activation: Activation,
    /// Weight initialization; `None` picks [`Init::for_activation`].
    #[serde(default)]
    pub init: Option<Init>,
}

impl LayerSpec {
    /// A layer of `units` outputs with activation `activation`, default init.
    pub fn new(units: usize, activation: Activation) -> Self {
        LayerSpec {
            units,
            activation,
            init: None,
        }
    }

    /// The layer's init: its own, else the one suited to its activation.
    pub fn init_or_default(&self) -> Init {
        self.init
            .unwrap_or_else(|| Init::for_activation(self.activation))
    }
}

/// A network's shape: input width, layers in order, and the loss.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::net::{Activation, NetworkSpec};
/// // The course's digit network: 256 pixels, two sigmoid hidden layers, 10 classes.
/// let spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
/// assert_eq!(spec.param_count(), 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10);
/// spec.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Input width.
    pub inputs: usize,
    /// The layers, first to last; the last is the output layer.
    pub layers: Vec<LayerSpec>,
    /// The cost.
    pub loss: Loss,
}

impl NetworkSpec {
    /// A classifier: hidden layers of the given widths with `activation`, then a
    /// softmax layer of `classes` outputs, trained with cross-entropy.
    pub fn classifier(
        inputs: usize,
        hidden: &[usize],
        activation: Activation,
        classes: usize,
    ) -> Self {
        let mut layers: Vec<LayerSpec> = hidden
            .iter()
            .map(|&u| LayerSpec::new(u, activation))
            .collect();
        layers.push(LayerSpec::new(classes, Activation::Softmax));
        NetworkSpec {
            inputs,
            layers,
            loss: Loss::CrossEntropy,
        }
    }

    /// Checks widths (all positive), that there is a layer, that only the
    /// output layer is softmax (as `network!` requires), and that the loss
    /// fits the output activation.
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::Invalid {
            what: "network".into(),
            reason,
        };
        let last = self
            .layers
            .last()
            .ok_or_else(|| invalid("it has no layers; give at least an output layer".into()))?;
        if self.inputs == 0 {
            return Err(invalid("the input width is 0".into()));
        }
        if let Some(i) = self.layers.iter().position(|l| l.units == 0) {
            return Err(invalid(format!("layer {} has 0 units", i + 1)));
        }
        if self.checked_param_count().is_none() {
            return Err(invalid(format!(
                "{} has more than {} parameters, more than this machine can count or hold; \
                 give narrower layers",
                self.widths_text(),
                usize::MAX
            )));
        }
        let hidden = &self.layers[..self.layers.len() - 1];
        if let Some(i) = hidden
            .iter()
            .position(|l| l.activation == Activation::Softmax)
        {
            return Err(invalid(format!(
                "layer {} is softmax: softmax normalizes the output: only the last layer can \
                 have it; give hidden layers sigmoid, tanh, relu or identity",
                i + 1
            )));
        }
        self.loss.check_output(last.activation)
    }

    /// The input width of each layer, followed by the output width.
    pub fn widths(&self) -> Vec<usize> {
        std::iter::once(self.inputs)
            .chain(self.layers.iter().map(|l| l.units))
            .collect()
    }

    /// The output width (the number of classes).
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(self.inputs, |l| l.units)
    }

    /// The number of parameters (weights and biases of every layer);
    /// `usize::MAX` for a spec whose count overflows (which
    /// [`NetworkSpec::validate`] refuses).
    pub fn param_count(&self) -> usize {
        self.checked_param_count().unwrap_or(usize::MAX)
    }

    /// The number of parameters, or `None` if it does not fit in a `usize`.
    pub fn checked_param_count(&self) -> Option<usize> {
        self.widths().windows(2).try_fold(0usize, |sum, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(sum)
        })
    }

    /// The bytes a training run of this network in elements of
    /// `elem_bytes` bytes takes at least: `per_param` buffers as long as the
    /// parameter buffer (the parameters, the gradients, the optimizer's
    /// state, ...) and the activations and deltas of a pass over `batch`
    /// rows and of one over `eval_batch` rows. Computed in `u128`, so it
    /// cannot overflow for any spec.
    pub fn training_bytes(
        &self,
        elem_bytes: usize,
        per_param: usize,
        batch: usize,
        eval_batch: usize,
    ) -> u128 {
        let widths = self.widths();
        let params: u128 = widths
            .windows(2)
            .map(|w| w[0] as u128 * w[1] as u128 + w[1] as u128)
            .sum();
        let units: u128 = widths[1..].iter().map(|&u| u as u128).sum();
        // Each pass stages its inputs and keeps an output and a delta per unit.
        let per_row = widths[0] as u128 + 2 * units;
        let rows = batch.max(1) as u128 + eval_batch.max(1) as u128;
        (params * per_param as u128 + per_row * rows) * elem_bytes as u128
    }

    /// Refuses a network whose training needs more memory than is
    /// available ([`crate::memory::available_bytes`]; no limit where that
    /// cannot be read, beyond what an address can reach): `dtype` (`f32`,
    /// `f64`) of `elem_bytes` bytes, the other arguments as for
    /// [`NetworkSpec::training_bytes`]. The error says how many parameters
    /// and bytes the network would need.
    pub fn check_memory(
        &self,
        dtype: &str,
        elem_bytes: usize,
        per_param: usize,
        batch: usize,
        eval_batch: usize,
    ) -> Result<()> {
        self.validate()?;
        let needed = self.training_bytes(elem_bytes, per_param, batch, eval_batch);
        let available = crate::memory::available_bytes();
        let limit = available.map_or(isize::MAX as u128, u128::from);
        if needed <= limit {
            return Ok(());
        }
        let count = self.param_count();
        let params_bytes = count as u128 * elem_bytes as u128;
        Err(Error::Invalid {
            what: "network".into(),
            reason: format!(
                "{} has {count} parameters: {} in {dtype} for the parameters alone, and \
                 training takes at least {} ({per_param} buffers of that size: parameters, \
                 gradients, optimizer state; and the activations of a batch), more than {}; \
                 give narrower layers",
                self.widths_text(),
                crate::memory::human_bytes(params_bytes),
                crate::memory::human_bytes(needed),
                match available {
                    Some(a) => format!(
                        "the {} of memory available",
                        crate::memory::human_bytes(a.into())
                    ),
                    None => "an address can reach".into(),
                },
            ),
        })
    }

    /// The widths joined by `-`, e.g. `256-128-64-10`.
    fn widths_text(&self) -> String {
        let widths: Vec<String> = self.widths().iter().map(|w| w.to_string()).collect();
        widths.join("-")
    }

    /// A short description, e.g. `256-128-64-10 sigmoid/softmax cross_entropy`.
    pub fn describe(&self) -> String {
        let acts: Vec<&str> = self.layers.iter().map(|l| l.activation.name()).collect();
        let mut acts_dedup = acts.clone();
        acts_dedup.dedup();
        format!(
            "{} {} {}",
            self.widths_text(),
            acts_dedup.join("/"),
            self.loss
        )
    }
}

/// Whether a tensor of the parameter buffer is a weight matrix or a bias vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorKind {
    /// A layer's weight matrix, `units` x `fan_in`, row-major.
    Weight,
    /// A layer's bias vector, `units` long.
    Bias,
}

/// One tensor's place in the parameter buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The layer, from 0.
    pub layer: usize,
    /// Weight or bias.
    pub kind: TensorKind,
    /// First element in the buffer.
    pub offset: usize,
    /// Rows and columns (a bias is `units` x 1).
    pub shape: (usize, usize),
}

impl Segment {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.0 * self.shape.1
    }
    /// Whether the tensor has no elements (never, for a valid spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The element range in the buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A fully-connected network with every parameter in one buffer.
///
/// Layout: the weight matrices of layers 0, 1, ... (each `units x fan_in`,
/// row-major, PyTorch's `nn.Linear` orientation: `z = x W^T + b`), then the bias
/// vectors of layers 0, 1, .... Each is a [`Segment`], a separate tensor to an
/// [`Optimizer`](crate::Optimizer): one group over [`Network::tensor_lens`], or
/// two groups, weights then biases ([`Network::weight_lens`],
/// [`Network::bias_lens`]), to give biases their own hyperparameters; either way
/// one `step_flat` updates the whole network.
///
/// ```
/// # extern crate optdsl_runtime as optdsl;
/// use optdsl::net::{Activation, Network, NetworkSpec, Workspace};
/// use optdsl::{builtin_rule, Optimizer, HyperValue};
/// let spec = NetworkSpec::classifier(4, &[8], Activation::Tanh, 3);
/// let mut net = Network::<f64>::new(spec, 7).unwrap();
/// let mut ws = Workspace::new(&net, 2);
/// let x = ndarray::arr2(&[[0.0, 1.0, 0.5, 0.0], [1.0, 0.0, 0.0, 0.5]]);
/// let mut sgd = builtin_rule("sgd").unwrap();
/// sgd.set_hyper("lr", HyperValue::Num(0.5)).unwrap();
/// let mut opt = Optimizer::with_rule(sgd, &net.tensor_lens());
/// let first = net.loss_and_grad(&mut ws, x.view(), &[2, 0]).unwrap();
/// for _ in 0..20 {
///     net.loss_and_grad(&mut ws, x.view(), &[2, 0]).unwrap();
///     opt.step_flat(net.params_mut(), ws.grads()).unwrap();
/// }
/// assert!(net.loss_and_grad(&mut ws, x.view(), &[2, 0]).unwrap() < first);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Network<F> {
    spec: NetworkSpec,
    params: Vec<F>,
    segments: Vec<Segment>,
}

impl<F: NetFloat> Network<F> {
    /// A network of shape `spec` with weights drawn from a ChaCha8 generator
    /// seeded with `seed` (in f64, then rounded to `F`, so an f32 and an f64
    /// network of one seed start at the same point) and zero biases, except
    /// for layers of [`Init::Torch`], whose biases are drawn after their
    /// weights.
    pub fn new(spec: NetworkSpec, seed: u64) -> Result<Self> {
        let mut net = Self::zeros(spec)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let count = net.spec.layers.len();
        for l in 0..count {
            let seg = net.segments[l];
            let layer = net.spec.layers[l];
            let init = layer.init_or_default();
            let a = init.bound(seg.shape.1, seg.shape.0);
            let bias = net.segments[count + l].range();
            let biases = if init.draws_biases() { bias } else { 0..0 };
            for i in seg.range().chain(biases) {
                net.params[i] = F::from_f64(a * (2.0 * rng.random::<f64>() - 1.0));
            }
        }
        Ok(net)
    }

    /// A network of shape `spec` initialized from `generator` seeded with
    /// `seed`: [`Network::new`] for [`Generator::ChaCha8`],
    /// [`Network::from_torch_generator`] after `torch.manual_seed(seed)` for
    /// [`Generator::Torch`].
    pub fn new_with(spec: NetworkSpec, seed: u64, generator: Generator) -> Result<Self> {
        match generator {
            Generator::ChaCha8 => Self::new(spec, seed),
            Generator::Torch => {
                Self::from_torch_generator(spec, &mut TorchGenerator::manual_seed(seed))
            }
        }
    }

    /// A network of shape `spec` initialized as PyTorch initializes the same
    /// model from `gen`: every layer built as an `nn.Linear` (weights
    /// `kaiming_uniform_(a=sqrt(5))`, then biases uniform on ±1/sqrt(fan_in)),
    /// layer by layer; then, for each layer whose init is [`Init::Xavier`] or
    /// [`Init::He`] (explicitly or for its activation), the weights redrawn by
    /// `xavier_uniform_` or `kaiming_uniform_(nonlinearity="relu")` and the
    /// biases zeroed. The values are float32 draws (widened for `f64`). Uses
    /// [`Network::torch_init_draws`] words of `gen`.
    pub fn from_torch_generator(spec: NetworkSpec, gen: &mut TorchGenerator) -> Result<Self> {
        let mut net = Self::zeros(spec)?;
        let count = net.spec.layers.len();
        let mut fill = |params: &mut [F], range: std::ops::Range<usize>, bound: f64| {
            for p in &mut params[range] {
                *p = F::from_f64(f64::from(gen.uniform_f32(-bound, bound)));
            }
        };
        for l in 0..count {
            let (w, b) = (net.segments[l], net.segments[count + l]);
            let fan_in = w.shape.1;
            fill(
                &mut net.params,
                w.range(),
                torch_bounds::linear_weight(fan_in),
            );
            fill(
                &mut net.params,
                b.range(),
                torch_bounds::linear_bias(fan_in),
            );
        }
        for l in 0..count {
            let (w, b) = (net.segments[l], net.segments[count + l]);
            let (fan_out, fan_in) = w.shape;
            let layer = net.spec.layers[l];
            let bound = match layer.init_or_default() {
                Init::Torch => continue,
                Init::Xavier => torch_bounds::xavier(fan_in, fan_out),
                Init::He => torch_bounds::he(fan_in),
            };
            fill(&mut net.params, w.range(), bound);
            net.params[b.range()].fill(F::ZERO);
        }
        Ok(net)
    }

    /// How many words of the generator [`Network::from_torch_generator`]
    /// uses for `spec`: one per parameter, plus one per weight of the layers
    /// redrawn after construction.
    pub fn torch_init_draws(spec: &NetworkSpec) -> Result<u64> {
        spec.validate()?;
        let widths = spec.widths();
        let mut draws = 0u64;
        for (layer, w) in spec.layers.iter().zip(widths.windows(2)) {
            let weights = (w[0] * w[1]) as u64;
            draws += weights + w[1] as u64;
            if layer.init_or_default() != Init::Torch {
                draws += weights;
            }
        }
        Ok(draws)
    }

    /// A network of shape `spec` with every parameter 0: an
    /// [`Error::Invalid`] saying how many parameters and bytes it would
    /// take, instead of a failed allocation, when its parameter buffer does
    /// not fit in the memory available.
    pub fn zeros(spec: NetworkSpec) -> Result<Self> {
        spec.check_memory(F::DTYPE, std::mem::size_of::<F>(), 1, 0, 0)?;
        let widths = spec.widths();
        let mut segments = Vec::with_capacity(2 * spec.layers.len());
        let mut offset = 0;
        for (layer, w) in widths.windows(2).enumerate() {
            segments.push(Segment {
                layer,
                kind: TensorKind::Weight,
                offset,
                shape: (w[1], w[0]),
            });
            offset += w[0] * w[1];
        }
        for (layer, &units) in widths[1..].iter().enumerate() {
            segments.push(Segment {
                layer,
                kind: TensorKind::Bias,
                offset,
                shape: (units, 1),
            });
            offset += units;
        }
        let mut params = Vec::new();
        params
            .try_reserve_exact(offset)
            .map_err(|e| Error::Invalid {
                what: "network".into(),
                reason: format!(
                    "{} has {offset} parameters; allocating {} for them failed: {e}",
                    spec.widths_text(),
                    crate::memory::human_bytes(offset as u128 * std::mem::size_of::<F>() as u128)
                ),
            })?;
        params.resize(offset, F::ZERO);
        Ok(Network {
            params,
            spec,
            segments,
        })
    }

    /// A network of shape `spec` holding `params` (in the layout above).
    pub fn from_params(spec: NetworkSpec, params: Vec<F>) -> Result<Self> {
        let mut net = Self::zeros(spec)?;
        if params.len() != net.params.len() {
            return Err(Error::LengthMismatch {
                what: "the parameter buffer".into(),
                expected: net.params.len(),
                got: params.len(),
            });
        }
        net.params = params;
        Ok(net)
    }

    /// The network's shape.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// Every parameter, in the layout above.
    pub fn params(&self) -> &[F] {
        &self.params
    }

    /// Every parameter, to be updated in place by an optimizer.
    pub fn params_mut(&mut self) -> &mut [F] {
        &mut self.params
    }

    /// The tensors of the buffer in order: every weight matrix, then every bias.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The lengths of the tensors in buffer order (one optimizer group).
    pub fn tensor_lens(&self) -> Vec<usize> {
        self.segments.iter().map(Segment::len).collect()
    }

    /// The lengths of the weight matrices (the first group of two).
    pub fn weight_lens(&self) -> Vec<usize> {
        self.lens_of(TensorKind::Weight)
    }

    /// The shapes of the weight matrices, `[units, fan_in]` each (PyTorch's
    /// `nn.Linear` orientation), for rules with shapes.
    pub fn weight_shapes(&self) -> Vec<Vec<usize>> {
        self.segments
            .iter()
            .filter(|s| s.kind == TensorKind::Weight)
            .map(|s| vec![s.shape.0, s.shape.1])
            .collect()
    }

    /// The lengths of the bias vectors (the second group of two).
    pub fn bias_lens(&self) -> Vec<usize> {
        self.lens_of(TensorKind::Bias)
    }

    fn lens_of(&self, kind: TensorKind) -> Vec<usize> {
        self.segments
            .iter()
            .filter(|s| s.kind == kind)
            .map(Segment::len)
            .collect()
    }

    /// The number of layers.
    pub fn layer_count(&self) -> usize {
        self.spec.layers.len()
    }

    /// Layer `l`'s weight matrix (`units` x `fan_in`).
    ///
    /// # Panics
    /// If `l` is not below [`Network::layer_count`].
    pub fn weights(&self, l: usize) -> ArrayView2<'_, F> {
        let seg = self.segments[l];
        ArrayView2::from_shape(seg.shape, &self.params[seg.range()]).expect("segment shape")
    }

    /// Layer `l`'s bias vector.
    ///
    /// # Panics
    /// If `l` is not below [`Network::layer_count`].
    pub fn bias(&self, l: usize) -> ArrayView1<'_, F> {
        let seg = self.segments[self.layer_count() + l];
        ArrayView1::from(&self.params[seg.range()])
    }

    /// Sets layer `l`'s weights (row-major, `units` x `fan_in`) and bias.
    pub fn set_layer(&mut self, l: usize, weights: &[F], bias: &[F]) -> Result<()> {
        let count = self.layer_count();
        if l >= count {
            return Err(Error::NoSuchIndex {
                what: "layer",
                index: l,
                count,
            });
        }
        for (seg, values) in [
            (self.segments[l], weights),
            (self.segments[count + l], bias),
        ] {
            if values.len() != seg.len() {
                return Err(Error::LengthMismatch {
                    what: format!("{:?} of layer {l}", seg.kind).to_lowercase(),
                    expected: seg.len(),
                    got: values.len(),
                });
            }
            self.params[seg.range()].copy_from_slice(values);
        }
        Ok(())
    }
}
