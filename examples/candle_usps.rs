//! The slides' network trained on the bundled USPS digits with candle, stepped
//! by optdsl rules: a rule written here with `optimizer!` and the built-in
//! `adam`, each through `optdsl::candle::CandleOptimizer`, a
//! `candle_nn::Optimizer`. 256 inputs (16x16 pixels), sigmoid hidden layers
//! of 128 and 64, 10 softmax outputs, mean cross-entropy, mini-batches of 32.
//!
//! `cargo run --release --features candle --example candle_usps [EPOCHS]`
//! (20 by default, as `optdsl train`). With `--bench` it times instead one
//! step on 10^7 f32 parameters through the adapter beside candle-nn's AdamW.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{linear, loss, ops, Linear, Module, Optimizer, VarBuilder, VarMap};
use optdsl::candle::CandleOptimizer;
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

struct Net {
    layers: Vec<Linear>,
}

impl Net {
    fn new(vb: VarBuilder) -> candle_core::Result<Net> {
        let sizes = [256, 128, 64, 10];
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, s)| linear(s[0], s[1], vb.pp(format!("layer{i}"))))
            .collect::<candle_core::Result<_>>()?;
        Ok(Net { layers })
    }
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if i + 1 < self.layers.len() {
                x = ops::sigmoid(&x)?;
            }
        }
        Ok(x) // logits: the softmax is in the loss
    }
}

/// Inputs (rows x 256, f32) and labels of a data set, as candle tensors.
fn tensors(data: &optdsl::data::Dataset) -> candle_core::Result<(Tensor, Tensor)> {
    let x = Tensor::from_slice(data.inputs_f32(), (data.len(), data.dim()), &Device::Cpu)?;
    let y = Tensor::from_slice(data.labels(), data.len(), &Device::Cpu)?;
    Ok((x, y))
}

/// Trains a fresh network for `epochs` with `rule`; returns the test accuracy.
fn train(rule: Box<dyn DynRule>, epochs: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let data = optdsl::data::usps()?;
    let (x, y) = tensors(&data.train)?;
    let (xt, yt) = tensors(&data.test)?;
    let vars = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))?;
    let mut opt = CandleOptimizer::new(vars.all_vars(), rule)?;
    let n = data.train.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..epochs {
        // A new order each epoch (Fisher-Yates with xorshift).
        for i in (1..n).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for batch in order.chunks(32) {
            let idx = Tensor::from_slice(batch, batch.len(), &Device::Cpu)?;
            let logits = net.forward(&x.index_select(&idx, 0)?)?;
            let cost = loss::cross_entropy(&logits, &y.index_select(&idx, 0)?)?;
            opt.backward_step(&cost)?;
        }
    }
    let predicted = net.forward(&xt)?.argmax(D::Minus1)?;
    let right = predicted
        .eq(&yt)?
        .to_dtype(DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()?;
    Ok(right as f64 / data.test.len() as f64)
}

/// One step on 10^7 f32 parameters: optdsl's adamw through the adapter and
/// candle-nn's AdamW, alternated, the median of each.
fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let n = 10_000_000;
    let grad = Tensor::randn(0f32, 1.0, n, &Device::Cpu)?;
    let make = || Var::randn(0f32, 1.0, n, &Device::Cpu);
    let (a, b) = (make()?, make()?);
    let mut ours = CandleOptimizer::new(vec![a.clone()], builtin_rule("adamw")?)?;
    let mut theirs = candle_nn::AdamW::new_lr(vec![b.clone()], 1e-3)?;
    // A GradStore comes from a backward pass; its gradients replaced by `grad`.
    let mut grads_a = a.as_tensor().sum_all()?.backward()?;
    grads_a.insert(a.as_tensor(), grad.clone());
    let mut grads_b = b.as_tensor().sum_all()?.backward()?;
    grads_b.insert(b.as_tensor(), grad);
    // The rule alone on plain slices, for the adapter's own cost.
    let rule = builtin_rule("adamw")?;
    let mut w = vec![0.5f32; n];
    let g = vec![0.01f32; n];
    let mut state = rule.init_f32(n);
    let (mut t_ours, mut t_theirs, mut t_bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..12 {
        let t = Instant::now();
        rule.step_f32(&mut state, &mut w, &g, &[])?;
        t_bare.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        ours.step(&grads_a)?;
        t_ours.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        theirs.step(&grads_b)?;
        t_theirs.push(t.elapsed().as_secs_f64());
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
    println!("one step, 10^7 f32 parameters (median of 12, alternated):");
    println!("  optdsl adamw via CandleOptimizer   {o:8.2} ms");
    println!("  candle_nn::AdamW                   {c:8.2} ms");
    println!("  optdsl adamw on a plain slice      {r:8.2} ms");
    println!("  ratio AdamW / optdsl               {:8.1}x", c / o);
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
