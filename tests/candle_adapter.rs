//! The candle adapter (`--features candle`): optdsl rules step candle `Var`s
//! after `backward` bit for bit as `rule.step` steps the same numbers as
//! slices (a custom `optimizer!` rule, a built-in by name, a text rule; f32
//! and f64), refuse other element types and rules without `lr`, and save and
//! load their state as safetensors so a run continues bit-identically.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use optdsl::candle::{CandleAdapterError, CandleOptimizer, VarState};
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

    /// A rule with no learning rate, which candle's Optimizer cannot drive.
    pub SignOnly {
        hyper c = 0.01;
        w -= c * sign(g);
    }
}

/// A small model: two Vars (a matrix and a bias) of `dtype`, their loss on
/// fixed inputs, and the gradients of that loss.
struct Model {
    w: Var,
    b: Var,
    x: Tensor,
    y: Tensor,
}

impl Model {
    fn new(dtype: DType) -> Model {
        let dev = Device::Cpu;
        let w: Vec<f64> = (0..12).map(|i| ((i * 7 % 11) as f64 - 5.0) / 7.0).collect();
        let x: Vec<f64> = (0..20).map(|i| ((i * 5 % 13) as f64 - 6.0) / 5.0).collect();
        let y: Vec<f64> = (0..15).map(|i| ((i * 3 % 7) as f64 - 3.0) / 3.0).collect();
        let t = |v: &[f64], shape: &[usize]| {
            Tensor::from_slice(v, shape, &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
        };
        Model {
            w: Var::from_tensor(&t(&w, &[4, 3])).unwrap(),
            b: Var::from_tensor(&t(&[0.1, -0.2, 0.3], &[3])).unwrap(),
            x: t(&x, &[5, 4]),
            y: t(&y, &[5, 3]),
        }
    }

    fn loss(&self) -> Tensor {
        let out = self
            .x
            .matmul(self.w.as_tensor())
            .unwrap()
            .broadcast_add(self.b.as_tensor())
            .unwrap()
            .tanh()
            .unwrap();
        (out - &self.y).unwrap().sqr().unwrap().sum_all().unwrap()
    }

    fn vars(&self) -> Vec<Var> {
        vec![self.w.clone(), self.b.clone()]
    }
}

fn flat<F: candle_core::WithDType>(t: &Tensor) -> Vec<F> {
    t.flatten_all().unwrap().to_vec1::<F>().unwrap()
}

fn bits<F: optdsl::Float>(v: &[F]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// `steps` steps of `rule` through the adapter and, beside them, on slices
/// holding the same numbers with the same gradients: the same bits every step.
fn same_as_slices<F: DynFloat + candle_core::WithDType>(
    rule: Box<dyn DynRule>,
    dtype: DType,
    steps: usize,
) {
    let model = Model::new(dtype);
    let mut opt = CandleOptimizer::new(model.vars(), rule.clone()).unwrap();
    let mut ws: Vec<Vec<F>> = model.vars().iter().map(|v| flat(v.as_tensor())).collect();
    let mut states: Vec<State<F>> = ws
        .iter()
        .map(|w| F::dyn_init(rule.as_ref(), w.len()))
        .collect();
    for step in 0..steps {
        let grads = model.loss().backward().unwrap();
        for (i, var) in model.vars().iter().enumerate() {
            let g: Vec<F> = flat(grads.get(var.as_tensor()).unwrap());
            F::dyn_step(rule.as_ref(), &mut states[i], &mut ws[i], &g, &[]).unwrap();
        }
        opt.step(&grads).unwrap();
        for (i, var) in model.vars().iter().enumerate() {
            assert_eq!(
                bits(&flat::<F>(var.as_tensor())),
                bits(&ws[i]),
                "{} var {i} after step {}",
                rule.info().name,
                step + 1
            );
        }
    }
    for (i, s) in opt.states().iter().enumerate() {
        let t = match s {
            VarState::F32(s) => s.t,
            VarState::F64(s) => s.t,
        };
        assert_eq!(t, steps as u64, "var {i}'s state counts the steps");
    }
    // The parameters moved.
    assert_ne!(
        bits(&ws[0]),
        bits(&flat::<F>(Model::new(dtype).w.as_tensor()))
    );
}

#[test]
fn a_custom_rule_steps_vars_as_it_steps_slices_f32_and_f64() {
    same_as_slices::<f32>(Box::new(DecayingHeavyBall::default()), DType::F32, 6);
    same_as_slices::<f64>(Box::new(DecayingHeavyBall::default()), DType::F64, 6);
}

#[test]
fn a_builtin_by_name_steps_vars_as_it_steps_slices() {
    for name in ["adam", "adamw", "lion", "sgd"] {
        let mut rule = builtin_rule(name).unwrap();
        rule.set_hyper("lr", HyperValue::Num(0.01)).unwrap();
        same_as_slices::<f32>(rule.clone(), DType::F32, 5);
        same_as_slices::<f64>(rule, DType::F64, 5);
    }
}

#[test]
fn a_text_rule_steps_vars_as_it_steps_slices() {
    let mut rules = Rules::parse(
        "Rms { hyper lr = 0.01, rho = 0.9, eps = 1e-8; state s = 0; \
         s = rho*s + (1-rho)*g*g; w -= lr*g/(sqrt(s)+eps); }",
    )
    .unwrap();
    let rule: Box<dyn DynRule> = Box::new(rules.remove(0));
    same_as_slices::<f32>(rule.clone(), DType::F32, 5);
    same_as_slices::<f64>(rule, DType::F64, 5);
}

#[test]
fn the_learning_rate_is_the_rules_lr() {
    let model = Model::new(DType::F32);
    let mut opt =
        CandleOptimizer::new(model.vars(), Box::new(DecayingHeavyBall::default())).unwrap();
    assert_eq!(opt.learning_rate(), 0.05);
    opt.set_learning_rate(0.2);
    assert_eq!(opt.learning_rate(), 0.2);
    assert_eq!(opt.rule().hyper("lr"), Some(HyperValue::Num(0.2)));
    // The same steps as a rule built with lr = 0.2.
    same_as_slices::<f32>(
        Box::new(DecayingHeavyBall {
            lr: 0.2,
            ..Default::default()
        }),
        DType::F32,
        1,
    );
}

#[test]
fn a_refused_learning_rate_fails_the_next_steps_until_a_valid_one() {
    // adam declares lr >= 0.
    let model = Model::new(DType::F32);
    let mut opt = CandleOptimizer::new(model.vars(), builtin_rule("adam").unwrap()).unwrap();
    let before = flat::<f32>(model.w.as_tensor());
    opt.set_learning_rate(-1.0);
    let grads = model.loss().backward().unwrap();
    let err = opt.try_step(&grads).unwrap_err();
    assert!(matches!(err, CandleAdapterError::Rule(_)), "{err}");
    assert!(opt.step(&grads).is_err());
    assert_eq!(flat::<f32>(model.w.as_tensor()), before, "nothing changed");
    opt.set_learning_rate(0.01);
    opt.step(&grads).unwrap();
    assert_ne!(flat::<f32>(model.w.as_tensor()), before);
}

#[test]
fn a_rule_without_lr_is_a_typed_error() {
    let model = Model::new(DType::F32);
    let err = CandleOptimizer::try_new(model.vars(), Box::new(SignOnly::default())).unwrap_err();
    match &err {
        CandleAdapterError::NoLearningRate { rule, hypers } => {
            assert_eq!(rule, "SignOnly");
            assert_eq!(hypers, &["c"]);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("hyper lr"), "{err}");
    // Through candle's trait, a candle error carrying the message.
    let e = CandleOptimizer::new(model.vars(), Box::new(SignOnly::default())).unwrap_err();
    assert!(e.to_string().contains("no `lr`"), "{e}");
}

#[test]
fn other_element_types_are_typed_errors() {
    for dtype in [DType::F16, DType::BF16, DType::U32] {
        let v = Var::zeros(4, dtype, &Device::Cpu).unwrap();
        let ok = Var::zeros(4, DType::F32, &Device::Cpu).unwrap();
        let err = CandleOptimizer::try_new(vec![ok, v], builtin_rule("sgd").unwrap()).unwrap_err();
        match err {
            CandleAdapterError::DType { var, dtype: d, .. } => {
                assert_eq!(var, 1);
                assert_eq!(d, dtype);
            }
            other => panic!("{other}"),
        }
    }
}

#[test]
fn a_gradient_of_another_length_is_refused_and_nothing_changes() {
    let model = Model::new(DType::F32);
    let mut opt = CandleOptimizer::new(model.vars(), builtin_rule("adam").unwrap()).unwrap();
    let mut grads = model.loss().backward().unwrap();
    let before: Vec<Vec<f32>> = model.vars().iter().map(|v| flat(v.as_tensor())).collect();
    // The bias's gradient replaced by one of 4 elements; the matrix's is fine
    // and comes first, yet must not be stepped either.
    grads.insert(
        model.b.as_tensor(),
        Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
    );
    let err = opt.try_step(&grads).unwrap_err();
    assert!(
        matches!(
            err,
            CandleAdapterError::Rule(optdsl::Error::LengthMismatch { .. })
        ),
        "{err}"
    );
    let after: Vec<Vec<f32>> = model.vars().iter().map(|v| flat(v.as_tensor())).collect();
    assert_eq!(before, after);
    assert_eq!(opt.steps(), 0);
}

#[test]
fn state_saved_and_loaded_continues_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    for dtype in [DType::F32, DType::F64] {
        let rule = || -> Box<dyn DynRule> { Box::new(DecayingHeavyBall::default()) };
        // Three steps, save, three more.
        let a = Model::new(dtype);
        let mut opt_a = CandleOptimizer::new(a.vars(), rule()).unwrap();
        for _ in 0..3 {
            opt_a.backward_step(&a.loss()).unwrap();
        }
        opt_a.save_state(&path).unwrap();
        let a_w_at_save = a.w.as_tensor().copy().unwrap();
        let a_b_at_save = a.b.as_tensor().copy().unwrap();
        // A second model with the same values, a fresh optimizer, the state loaded.
        let b = Model::new(dtype);
        b.w.set(a.w.as_tensor()).unwrap();
        b.b.set(a.b.as_tensor()).unwrap();
        let mut opt_b = CandleOptimizer::new(b.vars(), rule()).unwrap();
        opt_b.load_state(&path).unwrap();
        assert_eq!(opt_b.states(), opt_a.states());
        assert_eq!(opt_b.steps(), 3);
        for _ in 0..3 {
            opt_a.backward_step(&a.loss()).unwrap();
            opt_b.backward_step(&b.loss()).unwrap();
        }
        let same = |x: &Var, y: &Var| {
            bits(&flat::<f64>(&x.as_tensor().to_dtype(DType::F64).unwrap()))
                == bits(&flat::<f64>(&y.as_tensor().to_dtype(DType::F64).unwrap()))
        };
        assert!(same(&a.w, &b.w) && same(&a.b, &b.b), "{dtype:?}");
        // Without the state the continuation differs: the load mattered.
        let c = Model::new(dtype);
        c.w.set(&a_w_at_save).unwrap();
        c.b.set(&a_b_at_save).unwrap();
        let mut opt_c = CandleOptimizer::new(c.vars(), rule()).unwrap();
        for _ in 0..3 {
            opt_c.backward_step(&c.loss()).unwrap();
        }
        assert!(!same(&a.w, &c.w), "{dtype:?}");
    }
}

#[test]
fn a_state_of_another_rule_or_shape_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.safetensors");
    let model = Model::new(DType::F32);
    let mut opt = CandleOptimizer::new(model.vars(), builtin_rule("adam").unwrap()).unwrap();
    opt.backward_step(&model.loss()).unwrap();
    opt.save_state(&path).unwrap();

    let mut other_rule = CandleOptimizer::new(model.vars(), builtin_rule("lion").unwrap()).unwrap();
    let err = other_rule.load_state(&path).unwrap_err();
    assert!(err.to_string().contains("saved by `Adam`"), "{err}");

    let only_w = vec![model.w.clone()];
    let mut fewer = CandleOptimizer::new(only_w, builtin_rule("adam").unwrap()).unwrap();
    assert!(matches!(
        fewer.load_state(&path),
        Err(CandleAdapterError::StateFile { .. })
    ));

    let f64_model = Model::new(DType::F64);
    let mut other_dtype =
        CandleOptimizer::new(f64_model.vars(), builtin_rule("adam").unwrap()).unwrap();
    let before = other_dtype.states().to_vec();
    assert!(matches!(
        other_dtype.load_state(&path),
        Err(CandleAdapterError::StateFile { .. })
    ));
    assert_eq!(other_dtype.states(), before.as_slice(), "nothing changed");
}

#[test]
fn vars_without_a_gradient_are_left_alone() {
    let model = Model::new(DType::F32);
    let unused = Var::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
    let mut vars = model.vars();
    vars.push(unused.clone());
    let mut opt = CandleOptimizer::new(vars, builtin_rule("adam").unwrap()).unwrap();
    opt.backward_step(&model.loss()).unwrap();
    assert_eq!(unused.as_tensor().to_vec1::<f32>().unwrap(), [1.0, 2.0]);
    match &opt.states()[2] {
        VarState::F32(s) => assert_eq!(s.t, 0),
        other => panic!("{other:?}"),
    }
}
