//! The network: the slides' worked example, backprop against finite
//! differences for every activation and loss, the parameter layout, and init.

use ndarray::Array2;
use optdsl::net::{Activation, Init, LayerSpec, Loss, Network, NetworkSpec, TensorKind, Workspace};
use optdsl::{builtin_rule, Error, HyperValue, Optimizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn slides_network() -> Network<f64> {
    let spec = NetworkSpec {
        inputs: 2,
        layers: vec![LayerSpec::new(2, Activation::Sigmoid); 3],
        loss: Loss::Mse,
    };
    let mut net = Network::<f64>::zeros(spec).unwrap();
    // W is units x fan_in (z = W x + b), the orientation that gives the slides' numbers.
    net.set_layer(0, &[1.0, -2.0, -1.0, 1.0], &[1.0, 0.0])
        .unwrap();
    net.set_layer(1, &[2.0, -1.0, -2.0, -1.0], &[0.0, 0.0])
        .unwrap();
    net.set_layer(2, &[3.0, -1.0, -1.0, 4.0], &[-2.0, 2.0])
        .unwrap();
    net
}

fn round2(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 100.0).round() / 100.0).collect()
}

#[test]
fn slides_example_network_gives_the_slides_outputs() {
    let net = slides_network();
    assert_eq!(round2(&net.predict(&[1.0, -1.0]).unwrap()), [0.62, 0.83]);
    assert_eq!(round2(&net.predict(&[0.0, 0.0]).unwrap()), [0.51, 0.85]);
    // The same network in f32, through a batch of both inputs at once.
    let net32 = Network::<f32>::from_params(
        net.spec().clone(),
        net.params().iter().map(|&x| x as f32).collect(),
    )
    .unwrap();
    let mut ws = Workspace::new(&net32, 2);
    let x = ndarray::arr2(&[[1.0f32, -1.0], [0.0, 0.0]]);
    let out = net32.forward(&mut ws, x.view()).unwrap();
    let got: Vec<f64> = out.iter().map(|&v| v as f64).collect();
    assert_eq!(round2(&got), [0.62, 0.83, 0.51, 0.85]);
}

/// Central differences of the mean loss against the analytic gradient.
fn check_gradient(spec: NetworkSpec, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows = 3;
    let mut net = Network::<f64>::new(spec.clone(), seed).unwrap();
    // Non-zero biases, so every term of the gradient is exercised.
    for p in net.params_mut().iter_mut() {
        *p += 0.1 * (rng.random::<f64>() - 0.5);
    }
    let x = Array2::from_shape_fn((rows, spec.inputs), |_| rng.random::<f64>() * 2.0 - 1.0);
    let labels: Vec<u32> = (0..rows)
        .map(|_| rng.random_range(0..spec.outputs() as u32))
        .collect();
    let mut ws = Workspace::new(&net, rows);
    net.loss_and_grad(&mut ws, x.view(), &labels).unwrap();
    let analytic = ws.grads().to_vec();
    let h = 1e-6;
    for (i, &want) in analytic.iter().enumerate() {
        let p0 = net.params()[i];
        net.params_mut()[i] = p0 + h;
        let up = net.loss_and_grad(&mut ws, x.view(), &labels).unwrap();
        net.params_mut()[i] = p0 - h;
        let down = net.loss_and_grad(&mut ws, x.view(), &labels).unwrap();
        net.params_mut()[i] = p0;
        let numeric = (up - down) / (2.0 * h);
        let err = (numeric - want).abs();
        assert!(
            err <= 1e-7 + 1e-5 * numeric.abs(),
            "{}: parameter {i}: analytic {want} vs numeric {numeric}",
            spec.describe()
        );
    }
}

#[test]
fn backprop_matches_finite_differences_for_every_hidden_activation() {
    for (i, act) in Activation::ALL.into_iter().enumerate() {
        let spec = NetworkSpec::classifier(5, &[4, 3], act, 3);
        if act == Activation::Softmax {
            // Only the output layer may normalize (as `network!` requires);
            // its gradient is checked after every output activation below.
            assert!(Network::<f64>::new(spec, 0).is_err());
            continue;
        }
        check_gradient(spec, 10 + i as u64);
    }
}

#[test]
fn backprop_matches_finite_differences_for_mse_after_every_output_activation() {
    for (i, act) in Activation::ALL.into_iter().enumerate() {
        let spec = NetworkSpec {
            inputs: 4,
            layers: vec![LayerSpec::new(5, Activation::Tanh), LayerSpec::new(3, act)],
            loss: Loss::Mse,
        };
        check_gradient(spec, 20 + i as u64);
    }
}

#[test]
fn backprop_matches_finite_differences_for_a_single_layer() {
    check_gradient(NetworkSpec::classifier(6, &[], Activation::Sigmoid, 4), 30);
}

#[test]
fn cross_entropy_stays_finite_for_huge_logits_and_matches_its_definition() {
    let spec = NetworkSpec::classifier(1, &[], Activation::Identity, 3);
    let mut net = Network::<f32>::zeros(spec).unwrap();
    net.set_layer(0, &[200.0, -200.0, 0.0], &[0.0; 3]).unwrap();
    let mut ws = Workspace::new(&net, 1);
    let x = ndarray::arr2(&[[1.0f32]]);
    // a = softmax(200, -200, 0); -ln a_1 = 400 (+ ln(1 + e^-200 + e^-400)).
    let loss = net.loss_and_grad(&mut ws, x.view(), &[1]).unwrap();
    assert!((loss - 400.0).abs() < 1e-3, "{loss}");
    assert!(ws.grads().iter().all(|g| g.is_finite()));
    let loss0 = net.loss_and_grad(&mut ws, x.view(), &[0]).unwrap();
    assert!(loss0.abs() < 1e-6, "{loss0}");
}

#[test]
fn layout_puts_weights_then_biases_and_segments_cover_the_buffer() {
    let spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    let net = Network::<f32>::new(spec, 1).unwrap();
    let segs = net.segments();
    assert_eq!(segs.len(), 6);
    assert_eq!(net.tensor_lens(), [32768, 8192, 640, 128, 64, 10]);
    assert_eq!(net.weight_lens(), [32768, 8192, 640]);
    assert_eq!(net.bias_lens(), [128, 64, 10]);
    assert!(segs[..3].iter().all(|s| s.kind == TensorKind::Weight));
    let mut end = 0;
    for s in segs {
        assert_eq!(s.offset, end);
        end += s.len();
    }
    assert_eq!(end, net.params().len());
    assert_eq!(net.weights(1).dim(), (64, 128));
    assert_eq!(net.bias(2).len(), 10);
    assert!(net.bias(0).iter().all(|&b| b == 0.0));
}

#[test]
fn initialization_is_seeded_and_within_the_xavier_or_he_bound() {
    let spec = NetworkSpec::classifier(100, &[50], Activation::Relu, 10);
    let a = Network::<f64>::new(spec.clone(), 5).unwrap();
    let b = Network::<f64>::new(spec.clone(), 5).unwrap();
    let c = Network::<f64>::new(spec.clone(), 6).unwrap();
    let f32net = Network::<f32>::new(spec, 5).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.params(), c.params());
    assert!(a
        .params()
        .iter()
        .zip(f32net.params())
        .all(|(&x, &y)| x as f32 == y));
    let he = Init::He.bound(100, 50);
    let w0 = a.weights(0);
    assert!(w0.iter().all(|w| w.abs() <= he));
    // Uniform on [-a, a] has mean |w| = a/2: the draws use the whole range.
    let mean_abs = w0.iter().map(|w| w.abs()).sum::<f64>() / w0.len() as f64;
    assert!(
        (mean_abs - he / 2.0).abs() < 0.05 * he,
        "{mean_abs} vs {he}"
    );
    let xavier = Init::Xavier.bound(50, 10);
    assert!(a.weights(1).iter().all(|w| w.abs() <= xavier));
    assert!(a.weights(1).iter().any(|w| w.abs() > 0.9 * xavier));
}

#[test]
fn torch_init_draws_weights_and_biases_within_one_over_sqrt_fan_in_and_leaves_xavier_alone() {
    let spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
    let mut torch_spec = spec.clone();
    torch_spec
        .layers
        .iter_mut()
        .for_each(|l| l.init = Some(Init::Torch));
    let xavier = Network::<f64>::new(spec.clone(), 3).unwrap();
    let torch = Network::<f64>::new(torch_spec, 3).unwrap();
    for (l, fan_in) in [256usize, 128, 64].into_iter().enumerate() {
        let a = 1.0 / (fan_in as f64).sqrt();
        assert_eq!(Init::Torch.bound(fan_in, 7), a);
        let w = torch.weights(l);
        let b = torch.bias(l);
        assert!(w.iter().chain(b.iter()).all(|v| v.abs() <= a));
        // Uniform on [-a, a]: mean |v| = a/2, and the biases are drawn, not 0.
        let mean_abs = |v: &mut dyn Iterator<Item = &f64>| {
            let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x.abs(), n + 1));
            s / n as f64
        };
        let mw = mean_abs(&mut w.iter());
        assert!((mw - a / 2.0).abs() < 0.05 * a, "layer {l}: {mw} vs {a}");
        let mb = mean_abs(&mut b.iter());
        assert!(mb > 0.3 * a && mb < 0.7 * a, "layer {l}: {mb} vs {a}");
        assert!(xavier.bias(l).iter().all(|&v| v == 0.0));
    }
    // Drawing biases for torch layers does not move any other init's draws.
    assert_eq!(xavier, Network::<f64>::new(spec, 3).unwrap());
    assert_eq!("torch".parse::<Init>().unwrap(), Init::Torch);
    assert_eq!(" Xavier".parse::<Init>().unwrap(), Init::Xavier);
    let e = "glorot".parse::<Init>().unwrap_err();
    assert!(e.to_string().contains("xavier, he or torch"), "{e}");
}

#[test]
fn bad_specs_and_batches_are_typed_errors() {
    let spec = NetworkSpec::classifier(4, &[3], Activation::Sigmoid, 2);
    let mut ce_sigmoid = spec.clone();
    ce_sigmoid.layers[1].activation = Activation::Sigmoid;
    assert!(matches!(
        Network::<f32>::new(ce_sigmoid, 0),
        Err(Error::Invalid { .. })
    ));
    let mut zero = spec.clone();
    zero.layers[0].units = 0;
    assert!(Network::<f32>::new(zero, 0).is_err());
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut ws = Workspace::new(&net, 2);
    let x = Array2::<f32>::zeros((2, 3));
    assert!(matches!(
        net.loss_and_grad(&mut ws, x.view(), &[0, 1]),
        Err(Error::LengthMismatch { .. })
    ));
    let x = Array2::<f32>::zeros((2, 4));
    assert!(net.loss_and_grad(&mut ws, x.view(), &[0, 2]).is_err());
    assert!(net.loss_and_grad(&mut ws, x.view(), &[0]).is_err());
    let x3 = Array2::<f32>::zeros((3, 4));
    assert!(net.loss_and_grad(&mut ws, x3.view(), &[0, 1, 0]).is_err());
}

#[test]
fn one_fused_step_over_two_groups_keeps_biases_free_of_weight_decay() {
    let spec = NetworkSpec::classifier(3, &[2], Activation::Sigmoid, 2);
    let mut net = Network::<f64>::new(spec, 3).unwrap();
    let mut sgd = builtin_rule("sgd").unwrap();
    sgd.set_hyper("lr", HyperValue::Num(1.0)).unwrap();
    let plain = sgd.clone();
    sgd.set_hyper("weight_decay", HyperValue::Num(0.5)).unwrap();
    let mut opt = Optimizer::<f64>::new();
    opt.add_group(sgd, &net.weight_lens());
    opt.add_group(plain, &net.bias_lens());
    for p in net.params_mut().iter_mut() {
        *p = 1.0;
    }
    let zeros = vec![0.0; net.params().len()];
    opt.step_flat(net.params_mut(), &zeros).unwrap();
    let nw: usize = net.weight_lens().iter().sum();
    assert!(net.params()[..nw].iter().all(|&w| w == 0.5));
    assert!(net.params()[nw..].iter().all(|&b| b == 1.0));
}

/// The second derivative of the batch's mean loss in parameter `i`, by
/// central differences.
fn second_derivative(net: &mut Network<f64>, x: &Array2<f64>, labels: &[u32], i: usize) -> f64 {
    let mut ws = Workspace::new(net, labels.len());
    let h = 1e-4;
    let p0 = net.params()[i];
    let mid = net.loss_and_grad(&mut ws, x.view(), labels).unwrap();
    net.params_mut()[i] = p0 + h;
    let up = net.loss_and_grad(&mut ws, x.view(), labels).unwrap();
    net.params_mut()[i] = p0 - h;
    let down = net.loss_and_grad(&mut ws, x.view(), labels).unwrap();
    net.params_mut()[i] = p0;
    (up - 2.0 * mid + down) / (h * h)
}

/// The curvature pass's gradient and its Gauss-Newton diagonal.
fn curvature(net: &Network<f64>, x: &Array2<f64>, labels: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let rows = labels.len();
    let mut ws = Workspace::new(net, rows);
    let (xs, ys) = ws.stage(rows);
    xs.copy_from_slice(x.as_slice().unwrap());
    ys.copy_from_slice(labels);
    let mut h = vec![0.0; net.params().len()];
    net.staged_loss_grad_and_curvature(&mut ws, rows, &mut h)
        .unwrap();
    (ws.grads().to_vec(), h)
}

#[test]
fn curvature_is_the_exact_hessian_diagonal_where_gauss_newton_and_bbprop_are_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // Softmax and cross-entropy: the output layer's weights and biases enter
    // the logits linearly, one logit each, so their Hessian diagonal is
    // bbprop's p(1-p) a^2; every other entry is a non-negative estimate.
    let spec = NetworkSpec::classifier(5, &[4, 3], Activation::Sigmoid, 3);
    let mut net = Network::<f64>::new(spec.clone(), 1).unwrap();
    let x = Array2::from_shape_fn((4, 5), |_| rng.random::<f64>() * 2.0 - 1.0);
    let labels = [0, 2, 1, 2];
    let (grads, h) = curvature(&net, &x, &labels);
    let mut ws = Workspace::new(&net, 4);
    net.loss_and_grad(&mut ws, x.view(), &labels).unwrap();
    assert_eq!(grads, ws.grads(), "the same gradient as the plain pass");
    assert!(h.iter().all(|v| v.is_finite() && *v >= 0.0));
    let last = spec.layers.len() - 1;
    let segs = net.segments().to_vec();
    for seg in [segs[last], segs[2 * last + 1]] {
        for i in seg.range() {
            let want = second_derivative(&mut net, &x, &labels, i);
            assert!(
                (h[i] - want).abs() <= 1e-6 + 1e-4 * want.abs(),
                "parameter {i}: bbprop {} vs d2L/dw2 {want}",
                h[i]
            );
        }
    }
    // A chain of single identity units under the squared distance: the loss
    // is quadratic in each parameter alone and no unit has a neighbour, so
    // bbprop gives the Hessian diagonal of every parameter.
    let spec = NetworkSpec {
        inputs: 3,
        layers: vec![LayerSpec::new(1, Activation::Identity); 3],
        loss: Loss::Mse,
    };
    let mut net = Network::<f64>::new(spec, 2).unwrap();
    for p in net.params_mut() {
        *p += 0.3;
    }
    let x = Array2::from_shape_fn((3, 3), |_| rng.random::<f64>() * 2.0 - 1.0);
    let (_, h) = curvature(&net, &x, &[0, 0, 0]);
    for (i, &got) in h.iter().enumerate() {
        let want = second_derivative(&mut net, &x, &[0, 0, 0], i);
        assert!(
            (got - want).abs() <= 1e-6 + 1e-4 * want.abs(),
            "parameter {i}: bbprop {got} vs d2L/dw2 {want}"
        );
    }
}

#[test]
fn the_curvature_buffer_must_fit_the_parameters() {
    let spec = NetworkSpec::classifier(3, &[2], Activation::Tanh, 2);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut ws = Workspace::new(&net, 1);
    let mut h = vec![0.0f32; 3];
    let e = net
        .staged_loss_grad_and_curvature(&mut ws, 0, &mut h)
        .unwrap_err()
        .to_string();
    assert!(e.contains("curvature buffer"), "{e}");
}

/// The mean over the rows of each parameter's squared per-row gradient, by
/// one backward pass per row.
fn squares_by_rows(net: &Network<f64>, x: &Array2<f64>, labels: &[u32]) -> Vec<f64> {
    let mut ws = Workspace::new(net, 1);
    let mut sum = vec![0.0; net.params().len()];
    for (row, &label) in x.outer_iter().zip(labels) {
        let one = row.insert_axis(ndarray::Axis(0));
        net.loss_and_grad(&mut ws, one, &[label]).unwrap();
        sum.iter_mut()
            .zip(ws.grads())
            .for_each(|(s, g)| *s += g * g);
    }
    sum.iter().map(|s| s / labels.len() as f64).collect()
}

#[test]
fn squared_gradients_are_the_mean_of_the_rows_squared_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (act, loss) in [
        (Activation::Sigmoid, Loss::CrossEntropy),
        (Activation::Tanh, Loss::Mse),
        (Activation::Relu, Loss::CrossEntropy),
    ] {
        let mut spec = NetworkSpec::classifier(6, &[5, 4], act, 3);
        spec.loss = loss;
        let net = Network::<f64>::new(spec, 7).unwrap();
        let rows = 9;
        let x = Array2::from_shape_fn((rows, 6), |_| rng.random::<f64>() * 2.0 - 1.0);
        let labels: Vec<u32> = (0..rows).map(|i| (i % 3) as u32).collect();
        let want = squares_by_rows(&net, &x, &labels);
        let mut ws = Workspace::new(&net, rows);
        let (xs, ys) = ws.stage(rows);
        xs.copy_from_slice(x.as_slice().unwrap());
        ys.copy_from_slice(&labels);
        let n = net.params().len();
        let (mut g2, mut h) = (vec![0.0; n], vec![0.0; n]);
        // With the curvature in the same pass, and alone: the same numbers,
        // and the same gradient and curvature as the passes without them.
        net.staged_loss_grad_with(&mut ws, rows, Some(&mut h), Some(&mut g2))
            .unwrap();
        let grads = ws.grads().to_vec();
        let mut alone = vec![0.0; n];
        net.staged_loss_grad_and_squares(&mut ws, rows, &mut alone)
            .unwrap();
        assert_eq!(g2, alone, "{act:?}");
        let (plain, h_alone) = curvature(&net, &x, &labels);
        assert_eq!(grads, plain, "{act:?}");
        assert_eq!(h, h_alone, "{act:?}");
        for (i, (&got, &want)) in g2.iter().zip(&want).enumerate() {
            assert!(
                (got - want).abs() <= 1e-15 + 1e-12 * want,
                "{act:?} parameter {i}: {got} vs {want}"
            );
        }
        assert!(want.iter().any(|&v| v > 0.0));
    }
}

#[test]
fn the_squared_gradient_buffer_must_fit_the_parameters() {
    let spec = NetworkSpec::classifier(3, &[2], Activation::Tanh, 2);
    let net = Network::<f32>::new(spec, 0).unwrap();
    let mut ws = Workspace::new(&net, 1);
    let mut g2 = vec![0.0f32; 3];
    let e = net
        .staged_loss_grad_and_squares(&mut ws, 1, &mut g2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("squared-gradient buffer"), "{e}");
}
