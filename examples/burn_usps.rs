//! The slides' network trained on the bundled USPS digits with burn (ndarray
//! backend), stepped by optdsl rules: a rule written here with `optimizer!`
//! and the built-in `adam`, each through `optdsl::burn::BurnOptimizer` made a
//! module optimizer. 256 inputs (16x16 pixels), sigmoid hidden layers of 128
//! and 64, 10 softmax outputs, mean cross-entropy, mini-batches of 32.
//!
//! `cargo run --release --features burn --example burn_usps [EPOCHS]` (20 by
//! default, as `optdsl train`). With `--bench` it times instead one step on
//! 10^7 f32 parameters through the adapter beside burn's own Adam.

use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, TensorData};
use optdsl::burn::BurnOptimizer;
use optdsl::{builtin_rule, optimizer, DynRule, HyperValue};
use std::time::Instant;

optimizer! {
    /// Nesterov momentum, as Sutskever et al. (2013) write it.
    pub Nesterov {
        hyper lr = 0.1, mu = 0.9;
        state v = 0;
        v = mu * v + g;
        w -= lr * (g + mu * v);
    }
}

#[derive(Module, Debug)]
struct Net {
    hidden1: Linear,
    hidden2: Linear,
    output: Linear,
}

impl Net {
    fn new(device: &Device) -> Net {
        Net {
            hidden1: LinearConfig::new(256, 128).init(device),
            hidden2: LinearConfig::new(128, 64).init(device),
            output: LinearConfig::new(64, 10).init(device),
        }
    }

    /// The logits: the softmax is in the loss.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = sigmoid(self.hidden1.forward(x));
        let x = sigmoid(self.hidden2.forward(x));
        self.output.forward(x)
    }
}

/// Rows `rows` of a data set: inputs (f32) and labels, as burn tensors.
fn batch(
    data: &optdsl::data::Dataset,
    rows: &[usize],
    device: &Device,
) -> (Tensor<2>, Tensor<1, Int>) {
    let dim = data.dim();
    let inputs = data.inputs_f32();
    let x: Vec<f32> = rows
        .iter()
        .flat_map(|&r| &inputs[r * dim..(r + 1) * dim])
        .copied()
        .collect();
    let y: Vec<i64> = rows.iter().map(|&r| data.labels()[r] as i64).collect();
    (
        Tensor::from_data(TensorData::new(x, [rows.len(), dim]), device),
        Tensor::from_data(TensorData::new(y, [rows.len()]), device),
    )
}

/// Trains a fresh network for `epochs` with `rule` at its own `lr`; returns
/// the test accuracy.
fn train(rule: Box<dyn DynRule>, epochs: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let data = optdsl::data::usps()?;
    #[allow(deprecated)] // burn 0.22 deprecates ndarray for `flex`
    let device = Device::ndarray().autodiff();
    let lr = rule.hyper("lr").and_then(HyperValue::as_f64).unwrap_or(0.0);
    let opt = BurnOptimizer::new(rule)?;
    let errors = opt.errors();
    let mut optim = opt.init();
    let mut net = Net::new(&device);
    let loss = CrossEntropyLossConfig::new().init(&device);
    let n = data.train.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..epochs {
        // A new order each epoch (Fisher-Yates with xorshift).
        for i in (1..n).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for rows in order.chunks(32) {
            let (x, y) = batch(&data.train, rows, &device);
            let cost = loss.forward(net.forward(x), y);
            let grads = GradientsParams::from_grads(cost.backward(), &net);
            net = optim.step(lr, net, grads);
        }
        if let Some(e) = errors.take() {
            return Err(e.into());
        }
    }
    let all: Vec<usize> = (0..data.test.len()).collect();
    let (x, _) = batch(&data.test, &all, &device);
    let predicted = net
        .forward(x)
        .argmax(1)
        .into_data()
        .try_into_vec_as::<i64>()?;
    let right = predicted
        .iter()
        .zip(data.test.labels())
        .filter(|(p, y)| **p == **y as i64)
        .count();
    Ok(right as f64 / data.test.len() as f64)
}

#[derive(Module, Debug)]
struct Flat {
    w: Param<Tensor<1>>,
}

/// One step on 10^7 f32 parameters: optdsl's adam through the adapter and
/// burn's Adam, alternated, each with a fresh gradient (as `backward` makes
/// one), the median of each.
fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let n = 10_000_000;
    #[allow(deprecated)]
    let device = Device::ndarray();
    let autodiff = device.clone().autodiff();
    let values: Vec<f32> = (0..n)
        .map(|i| ((i % 1000) as f32 - 500.0) / 500.0)
        .collect();
    let grad: Vec<f32> = (0..n)
        .map(|i| ((i * 7 % 1000) as f32 - 500.0) / 5e4)
        .collect();
    let flat = || Flat {
        w: Param::from_tensor(Tensor::from_data(
            TensorData::new(values.clone(), [n]),
            &autodiff,
        )),
    };
    let time = |optim: &mut ModuleOptimizer, model: Flat| {
        let mut grads = GradientsParams::new();
        grads.register(
            model.w.id,
            Tensor::<1>::from_data(TensorData::new(grad.clone(), [n]), &device),
        );
        let t = Instant::now();
        let model = optim.step(1e-3, model, grads);
        (model, t.elapsed().as_secs_f64())
    };
    let mut ours = BurnOptimizer::new(builtin_rule("adam")?)?.init();
    let mut theirs = AdamConfig::new().init();
    let (mut a, mut b) = (flat(), flat());
    // The rule alone on plain slices, for the adapter's own cost.
    let rule = builtin_rule("adam")?;
    let mut w = vec![0.5f32; n];
    let g = vec![0.01f32; n];
    let mut state = rule.init_f32(n);
    let (mut t_ours, mut t_theirs, mut t_bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..12 {
        let t = Instant::now();
        rule.step_f32(&mut state, &mut w, &g, &[])?;
        t_bare.push(t.elapsed().as_secs_f64());
        let (m, t) = time(&mut ours, a);
        a = m;
        t_ours.push(t);
        let (m, t) = time(&mut theirs, b);
        b = m;
        t_theirs.push(t);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1e3
    };
    let (o, c, r) = (
        median(&mut t_ours),
        median(&mut t_theirs),
        median(&mut t_bare),
    );
    println!("one step, 10^7 f32 parameters, ndarray backend (median of 12, alternated):");
    println!("  optdsl adam via BurnOptimizer      {o:8.2} ms");
    println!("  burn::optim::Adam                  {c:8.2} ms");
    println!("  optdsl adam on a plain slice       {r:8.2} ms");
    println!("  ratio Adam / optdsl                {:8.1}x", c / o);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") {
        return bench();
    }
    let epochs = match args.first() {
        Some(e) => e.parse()?,
        None => 20,
    };
    let mut adam = builtin_rule("adam")?;
    adam.set_hyper("lr", HyperValue::Num(1e-3))?;
    for (name, rule) in [
        (
            "Nesterov (optimizer! above)",
            Box::new(Nesterov::default()) as Box<dyn DynRule>,
        ),
        ("adam (built-in)", adam),
    ] {
        let start = Instant::now();
        let accuracy = train(rule, epochs)?;
        println!(
            "{name:<28} {epochs} epochs: test accuracy {:.2}% ({:.1} s)",
            accuracy * 100.0,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
