//! The burn adapter (`--features burn`): optdsl rules, made module optimizers
//! by burn's `ModuleOptimizer`, step a module's parameters after `backward` bit
//! for bit as `rule.step` steps the same numbers as slices (a custom
//! `optimizer!` rule, a built-in by name, a text rule; f32 and f64, on the
//! ndarray backend), refuse rules without `lr`, log the steps they cannot
//! take, and checkpoint through `to_record`/`load_record` so a run continues
//! bit-identically.

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::tensor::{DType, Device, Tensor, TensorData};
use optdsl::burn::{BurnAdapterError, BurnOptimizer};
use optdsl::{builtin_rule, optimizer, DynFloat, DynRule, HyperValue, Rules, State};

optimizer! {
    /// Heavy-ball momentum with a decaying step size kept as a per-tensor scalar.
    pub DecayingHeavyBall {
        hyper lr = 0.05, beta = 0.8, decay = 0.9;
        state m = 0;
        scalar eta = lr;
        m = beta * m + g;
        w -= eta * m;
        eta = eta * decay;
    }

    /// A rule with no learning rate, which burn's optimizer cannot drive.
    pub SignOnly {
        hyper c = 0.01;
        w -= c * sign(g);
    }
}

#[derive(Module, Debug)]
struct Affine {
    w: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
}

/// The ndarray backend, as the issue asks (burn 0.22 deprecates it for `flex`).
#[allow(deprecated)]
fn device() -> Device {
    Device::ndarray().autodiff()
}

fn tensor<const D: usize>(values: &[f64], shape: [usize; D], dtype: DType) -> Tensor<D> {
    let data = TensorData::new(values.to_vec(), shape);
    Tensor::<D>::from_data(data.convert_dtype(dtype), (&device(), dtype))
}

impl Affine {
    fn new(dtype: DType) -> Affine {
        let w: Vec<f64> = (0..12).map(|i| ((i * 7 % 11) as f64 - 5.0) / 7.0).collect();
        Affine {
            w: Param::from_tensor(tensor(&w, [4, 3], dtype)),
            b: Param::from_tensor(tensor(&[0.1, -0.2, 0.3], [3], dtype)),
        }
    }

    fn loss(&self, dtype: DType) -> Tensor<1> {
        let x: Vec<f64> = (0..20).map(|i| ((i * 5 % 13) as f64 - 6.0) / 5.0).collect();
        let y: Vec<f64> = (0..15).map(|i| ((i * 3 % 7) as f64 - 3.0) / 3.0).collect();
        let out = tensor(&x, [5, 4], dtype)
            .matmul(self.w.val())
            .add(self.b.val().unsqueeze_dim(0))
            .tanh();
        (out - tensor(&y, [5, 3], dtype)).square().sum()
    }
}

fn values<F: burn::tensor::Element>(t: Tensor<2>) -> Vec<F> {
    t.into_data().try_into_vec::<F>().unwrap()
}

fn values1<F: burn::tensor::Element>(t: Tensor<1>) -> Vec<F> {
    t.into_data().try_into_vec::<F>().unwrap()
}

fn bits<F: optdsl::Float>(v: &[F]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// One step through `optim`; returns the module and the gradients it used.
fn step<F: burn::tensor::Element>(
    optim: &mut ModuleOptimizer,
    model: Affine,
    lr: f64,
    dtype: DType,
) -> (Affine, Vec<F>, Vec<F>) {
    let grads = model.loss(dtype).backward();
    let gw = values::<F>(model.w.val().grad(&grads).unwrap());
    let gb = values1::<F>(model.b.val().grad(&grads).unwrap());
    let grads = GradientsParams::from_grads(grads, &model);
    (optim.step(lr, model, grads), gw, gb)
}

/// One step through `optim`, the gradients not kept.
fn step_any(optim: &mut ModuleOptimizer, model: Affine, lr: f64, dtype: DType) -> Affine {
    let grads = GradientsParams::from_grads(model.loss(dtype).backward(), &model);
    optim.step(lr, model, grads)
}

/// `steps` steps of `rule` through the adapter and, beside them, on slices
/// holding the same numbers with the same gradients: the same bits every step.
fn same_as_slices<F: DynFloat + burn::tensor::Element>(
    rule: Box<dyn DynRule>,
    dtype: DType,
    lr: f64,
    steps: usize,
) {
    let opt = BurnOptimizer::new(rule.clone()).unwrap();
    let errors = opt.errors();
    let mut optim = opt.init();
    let mut model = Affine::new(dtype);
    let mut rule = rule;
    rule.set_hyper("lr", HyperValue::Num(lr)).unwrap();
    let mut w = values::<F>(model.w.val());
    let mut b = values1::<F>(model.b.val());
    let start = bits(&w);
    let mut sw: State<F> = F::dyn_init(rule.as_ref(), w.len());
    let mut sb: State<F> = F::dyn_init(rule.as_ref(), b.len());
    for k in 0..steps {
        let (next, gw, gb) = step::<F>(&mut optim, model, lr, dtype);
        model = next;
        F::dyn_step(rule.as_ref(), &mut sw, &mut w, &gw, &[]).unwrap();
        F::dyn_step(rule.as_ref(), &mut sb, &mut b, &gb, &[]).unwrap();
        let name = rule.info().name;
        assert_eq!(
            bits(&values::<F>(model.w.val())),
            bits(&w),
            "{name} w, step {}",
            k + 1
        );
        assert_eq!(
            bits(&values1::<F>(model.b.val())),
            bits(&b),
            "{name} b, step {}",
            k + 1
        );
        assert_eq!(model.w.val().dtype(), dtype);
    }
    assert!(errors.take().is_none());
    assert_ne!(bits(&w), start, "the parameters moved");
}

#[test]
fn a_custom_rule_steps_parameters_as_it_steps_slices_f32_and_f64() {
    same_as_slices::<f32>(Box::new(DecayingHeavyBall::default()), DType::F32, 0.05, 6);
    same_as_slices::<f64>(Box::new(DecayingHeavyBall::default()), DType::F64, 0.05, 6);
}

#[test]
fn a_builtin_by_name_steps_parameters_as_it_steps_slices() {
    for name in ["adam", "adamw", "lion", "sgd"] {
        same_as_slices::<f32>(builtin_rule(name).unwrap(), DType::F32, 0.01, 5);
        same_as_slices::<f64>(builtin_rule(name).unwrap(), DType::F64, 0.01, 5);
    }
}

#[test]
fn a_text_rule_steps_parameters_as_it_steps_slices() {
    let mut rules = Rules::parse(
        "Rms { hyper lr = 0.01, rho = 0.9, eps = 1e-8; state s = 0; \
         s = rho*s + (1-rho)*g*g; w -= lr*g/(sqrt(s)+eps); }",
    )
    .unwrap();
    let rule: Box<dyn DynRule> = Box::new(rules.remove(0));
    same_as_slices::<f32>(rule.clone(), DType::F32, 0.02, 5);
    same_as_slices::<f64>(rule, DType::F64, 0.02, 5);
}

#[test]
fn a_rule_without_lr_is_a_typed_error() {
    let err = BurnOptimizer::new(Box::new(SignOnly::default())).unwrap_err();
    assert_eq!(
        err,
        BurnAdapterError::NoLearningRate {
            rule: "SignOnly".into(),
            hypers: vec!["c".into()]
        }
    );
    assert!(err.to_string().contains("hyper lr"), "{err}");
}

#[test]
fn a_refused_learning_rate_is_logged_and_changes_nothing() {
    // adam declares lr >= 0.
    let opt = BurnOptimizer::new(builtin_rule("adam").unwrap()).unwrap();
    let errors = opt.errors();
    let mut optim = opt.init();
    let model = Affine::new(DType::F32);
    let before = values::<f32>(model.w.val());
    let (model, _, _) = step::<f32>(&mut optim, model, -1.0, DType::F32);
    assert_eq!(values::<f32>(model.w.val()), before);
    assert_eq!(errors.count(), 2, "both parameters refused");
    let err = errors.take().unwrap();
    assert!(
        matches!(
            err,
            BurnAdapterError::Rule(optdsl::Error::HyperRange { .. })
        ),
        "{err}"
    );
    assert!(optim.to_record().is_empty(), "no state was made");
    let (model, _, _) = step::<f32>(&mut optim, model, 0.01, DType::F32);
    assert_ne!(values::<f32>(model.w.val()), before);
    assert!(errors.take().is_none());
}

#[test]
fn records_round_trip_and_the_run_continues_bit_identically() {
    for dtype in [DType::F32, DType::F64] {
        let new = || BurnOptimizer::new(Box::new(DecayingHeavyBall::default())).unwrap();
        let mut optim_a = new().init();
        let mut a = Affine::new(dtype);
        for _ in 0..3 {
            a = step_any(&mut optim_a, a, 0.05, dtype);
        }
        // Through bytes, as a checkpoint file would be.
        let bytes = optim_a.to_record().into_bytes().unwrap();
        let record = OptimizerRecord::from_bytes(bytes).unwrap();
        let mut optim_b = new().init().load_record(record);
        let mut b = a.clone();
        // A fresh optimizer on the same parameters, for contrast.
        let mut optim_c = new().init();
        let mut c = a.clone();
        for _ in 0..3 {
            a = step_any(&mut optim_a, a, 0.05, dtype);
            b = step_any(&mut optim_b, b, 0.05, dtype);
            c = step_any(&mut optim_c, c, 0.05, dtype);
        }
        let w = |m: &Affine| bits(&values::<f64>(m.w.val().cast(DType::F64)));
        assert_eq!(
            w(&a),
            w(&b),
            "{dtype:?}: the loaded state continues the run"
        );
        assert_ne!(w(&a), w(&c), "{dtype:?}: the state mattered");
    }
}

#[test]
fn a_record_of_another_rule_is_refused_at_its_step_and_logged() {
    let mut optim = BurnOptimizer::new(builtin_rule("adam").unwrap())
        .unwrap()
        .init();
    let model = step::<f32>(&mut optim, Affine::new(DType::F32), 0.01, DType::F32).0;
    let record = optim.to_record();

    let lion = BurnOptimizer::new(builtin_rule("lion").unwrap()).unwrap();
    let errors = lion.errors();
    let mut optim = lion.init().load_record(record);
    let before = values::<f32>(model.w.val());
    let model = step::<f32>(&mut optim, model, 0.01, DType::F32).0;
    assert_eq!(values::<f32>(model.w.val()), before, "nothing changed");
    let err = errors.take().unwrap();
    assert!(err.to_string().contains("made by `Adam`"), "{err}");
}

/// A rule that records where the parameters it steps live.
#[derive(Debug, Clone)]
struct Where(
    Box<dyn DynRule>,
    std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
);

impl DynRule for Where {
    fn info(&self) -> &'static optdsl::RuleInfo {
        self.0.info()
    }
    fn hyper(&self, name: &str) -> Option<HyperValue> {
        self.0.hyper(name)
    }
    fn set_hyper(&mut self, name: &str, value: HyperValue) -> optdsl::Result<()> {
        self.0.set_hyper(name, value)
    }
    fn init_f32(&self, len: usize) -> State<f32> {
        self.0.init_f32(len)
    }
    fn init_f64(&self, len: usize) -> State<f64> {
        self.0.init_f64(len)
    }
    fn step_f32(
        &self,
        s: &mut State<f32>,
        w: &mut [f32],
        g: &[f32],
        i: &[&[f32]],
    ) -> optdsl::Result<()> {
        self.1.lock().unwrap().push(w.as_ptr() as usize);
        self.0.step_f32(s, w, g, i)
    }
    fn step_f64(
        &self,
        s: &mut State<f64>,
        w: &mut [f64],
        g: &[f64],
        i: &[&[f64]],
    ) -> optdsl::Result<()> {
        self.0.step_f64(s, w, g, i)
    }
    fn clone_box(&self) -> Box<dyn DynRule> {
        Box::new(self.clone())
    }
}

/// On the ndarray backend, after `backward`, the rule steps each parameter's
/// own buffer: the same address every step, which a copy out of or into
/// burn's tensor would change (the copy is made while the original lives).
#[test]
fn on_ndarray_each_step_runs_on_the_parameters_own_buffer() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rule = Where(builtin_rule("adam").unwrap(), seen.clone());
    let mut optim = BurnOptimizer::new(Box::new(rule)).unwrap().init();
    let mut model = Affine::new(DType::F32);
    for _ in 0..4 {
        model = step_any(&mut optim, model, 0.01, DType::F32);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 8, "two parameters, four steps");
    let (w, b) = (seen[0], seen[1]);
    assert_ne!(w, b);
    for step in seen.chunks(2) {
        assert_eq!(step, [w, b], "{seen:x?}");
    }
}

#[test]
fn muon_steps_the_weight_matrix_by_its_shape_and_refuses_the_bias_vector() {
    let opt = BurnOptimizer::new(builtin_rule("muon").unwrap()).unwrap();
    let errors = opt.errors();
    let mut optim = opt.init();
    let model = Affine::new(DType::F64);
    let mut rule = builtin_rule("muon").unwrap();
    rule.set_hyper("lr", HyperValue::Num(0.02)).unwrap();
    let mut w = values::<f64>(model.w.val());
    let b_before = values1::<f64>(model.b.val());
    // The same step on a slice, its state sized by the [4, 3] shape.
    let mut sw = rule.init_shaped_f64(&[4, 3]).unwrap();
    let (model, gw, _) = step::<f64>(&mut optim, model, 0.02, DType::F64);
    rule.step_f64(&mut sw, &mut w, &gw, &[]).unwrap();
    assert_eq!(bits(&values::<f64>(model.w.val())), bits(&w));
    // The bias is a vector: Muon needs a matrix, so its step is refused,
    // logged, and the bias is left as it was.
    assert_eq!(values1::<f64>(model.b.val()), b_before);
    assert_eq!(errors.count(), 1, "the bias alone is refused");
    let err = errors.take().unwrap();
    assert!(
        matches!(
            err,
            BurnAdapterError::Rule(optdsl::Error::NeedsMatrix { .. })
        ),
        "{err}"
    );
}
