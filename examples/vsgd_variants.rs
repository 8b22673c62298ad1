//! vSGD variants written with `optimizer!` and trained on the slides' USPS
//! network with the trainer's bbprop curvature as `input h`: the built-in
//! per-element `vsgd` (vSGD-l), the paper's per-layer vSGD-b (one rate per
//! tensor, from the block's summed ḡ² and v̄ and its largest curvature), and a
//! per-element rate over the tensor's largest curvature. Every rule starts as
//! the authors' code does (c = 2, h̄ from c·max(h, 1), τ = 10).
//!
//! Run with `cargo run --release --example vsgd_variants` (about 10 s): a
//! table of test accuracy and final train loss after 20 epochs, from
//! `train`'s default start (Xavier, ChaCha8) and from PyTorch's
//! (`--init torch --rng torch`).

use optdsl::data::usps;
use optdsl::net::{Activation, Init, Network, NetworkSpec};
use optdsl::rng::Generator;
use optdsl::train::{Silent, TrainConfig, Trainer};
use optdsl::{builtin_rule, optimizer, DynRule, HyperValue};

optimizer! {
    /// vSGD-b (Schaul, Zhang & LeCun 2013, section 4): one learning rate per
    /// block (here a tensor), η* = Σ ḡ² / (h⁺ Σ v̄), with h⁺ the running mean
    /// of the block's largest curvature and one memory τ per block.
    pub VsgdBlock {
        hyper c = 2, tau0 = 10, hmin = 2, eps = 1e-10;
        input h;
        state gbar = 0, vbar = 0;
        scalar hplus = 0, tau = tau0;
        if t == 1 {
            gbar = g;
            vbar = c * (g * g);
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g * g - vbar) / tau;
        }
        let hmax = max(max_abs(h), eps);
        hplus = if t == 1 { max(hmax, hmin) } else { hplus + (hmax - hplus) / tau };
        let r = sum(gbar * gbar) / max(sum(vbar), eps);
        tau = (1 - r) * tau + 1;
        w -= r / hplus * g;
    }

    /// vSGD-l's per-element rate ḡ²/v̄, over the running mean of the
    /// tensor's largest curvature instead of each element's own.
    pub VsgdMaxCurvature {
        hyper c = 2, tau0 = 10, hmin = 2, eps = 1e-10;
        input h;
        state gbar = 0, vbar = 0, hbar = 0, tau = tau0;
        let hh = max(max_abs(h), eps);
        if t == 1 {
            gbar = g;
            vbar = c * (g * g);
            hbar = max(hh, hmin);
        } else {
            gbar = gbar + (g - gbar) / tau;
            vbar = vbar + (g * g - vbar) / tau;
            hbar = hbar + (hh - hbar) / tau;
        }
        let r = if vbar > 0 { gbar * gbar / vbar } else { 0 };
        tau = (1 - r) * tau + 1;
        w -= r / hbar * g;
    }
}

/// Makes a fresh rule.
type MakeRule = fn() -> Box<dyn DynRule>;

/// The built-in vsgd at the start of `compare`'s row.
fn builtin_vsgd() -> Box<dyn DynRule> {
    let mut rule = builtin_rule("vsgd").expect("built in");
    for (name, value) in [("c", 2.0), ("hmin", 2.0), ("tau0", 10.0)] {
        rule.set_hyper(name, HyperValue::Num(value))
            .expect("a vsgd hyper");
    }
    rule
}

fn main() -> optdsl::Result<()> {
    let data = usps()?;
    let rules: [(&str, MakeRule); 3] = [
        ("vsgd (per element)", builtin_vsgd),
        ("vSGD-b (per tensor)", || Box::new(VsgdBlock::default())),
        ("per element, tensor's max h", || {
            Box::new(VsgdMaxCurvature::default())
        }),
    ];
    let starts = [
        ("xavier, chacha8", None, Generator::ChaCha8),
        ("torch, torch", Some(Init::Torch), Generator::Torch),
    ];
    println!("| rule | start | test accuracy | train loss |");
    println!("| --- | --- | ---: | ---: |");
    for (label, make) in rules {
        for (start, init, generator) in starts {
            let mut spec = NetworkSpec::classifier(256, &[128, 64], Activation::Sigmoid, 10);
            spec.layers.iter_mut().for_each(|l| l.init = init);
            let net = Network::<f32>::new_with(spec, 0, generator)?;
            let config = TrainConfig {
                generator,
                ..TrainConfig::default()
            };
            let mut trainer = Trainer::new(net, make(), config)?;
            match trainer.fit(&data.train, &data.test, &mut Silent) {
                Ok(()) => {
                    let history = trainer.history("usps");
                    let last = history.epochs.last().expect("20 epochs");
                    println!(
                        "| {label} | {start} | {:.4} | {:.4} |",
                        last.test_accuracy, last.train_loss
                    );
                }
                Err(e) => println!("| {label} | {start} | {e} | |"),
            }
        }
    }
    Ok(())
}
