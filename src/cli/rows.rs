//! `compare`'s rows as data: each optimizer's settings and PyTorch's test
//! accuracy with the same settings (one run from seed 0, and the mean over
//! seeds 0-9 where measured), and how a row's rule is made.

use optdsl::{DynRule, Error, HyperValue};

/// One optimizer of the comparison: a label, the built-in it runs, the
/// settings (hyperparameters by name; `lr` also means `learning_rate`), and
/// the test accuracy PyTorch 2.15 reached with the same settings on USPS
/// (256-128-64-10 sigmoid, batch 32, 20 epochs), where measured: one run
/// each, `torch.manual_seed(0)`, PyTorch's default `nn.Linear` init (what
/// `tools/pytorch_usps.py --seeds 1 --init default` prints; its means over
/// seeds are in docs/pytorch-parity.md).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The row's name.
    pub label: &'static str,
    /// The built-in's name.
    pub optimizer: &'static str,
    /// Hyperparameters set before training.
    pub settings: &'static [(&'static str, HyperValue)],
    /// PyTorch's test accuracy, same settings.
    pub pytorch: Option<f64>,
}

/// A numeric setting.
const fn num(name: &'static str, x: f64) -> (&'static str, HyperValue) {
    (name, HyperValue::Num(x))
}

/// The comparison's optimizers and settings, in the order of the table.
/// Built-ins not listed here run with their defaults after these.
pub const ENTRIES: &[Entry] = &[
    Entry {
        label: "sgd",
        optimizer: "sgd",
        settings: &[num("lr", 0.5)],
        pytorch: Some(0.931),
    },
    Entry {
        label: "momentum",
        optimizer: "sgd",
        settings: &[num("lr", 0.1), num("momentum", 0.9)],
        pytorch: Some(0.941),
    },
    Entry {
        label: "nesterov",
        optimizer: "sgd",
        settings: &[
            num("lr", 0.1),
            num("momentum", 0.9),
            ("nesterov", HyperValue::Bool(true)),
        ],
        pytorch: Some(0.940),
    },
    Entry {
        label: "adagrad",
        optimizer: "adagrad",
        settings: &[num("lr", 0.05)],
        pytorch: Some(0.934),
    },
    Entry {
        label: "rmsprop",
        optimizer: "rmsprop",
        settings: &[num("lr", 1e-3)],
        pytorch: Some(0.933),
    },
    Entry {
        label: "adadelta",
        optimizer: "adadelta",
        settings: &[num("lr", 1.0)],
        pytorch: Some(0.933),
    },
    Entry {
        label: "adam",
        optimizer: "adam",
        settings: &[num("lr", 1e-3)],
        pytorch: Some(0.931),
    },
    Entry {
        label: "adamw",
        optimizer: "adamw",
        settings: &[num("lr", 1e-3)],
        pytorch: None,
    },
    Entry {
        label: "adamax",
        optimizer: "adamax",
        settings: &[num("lr", 2e-3)],
        pytorch: None,
    },
    Entry {
        label: "nadam",
        optimizer: "nadam",
        settings: &[num("lr", 2e-3)],
        pytorch: None,
    },
    Entry {
        label: "radam",
        optimizer: "radam",
        settings: &[num("lr", 1e-3)],
        pytorch: None,
    },
    Entry {
        label: "asgd",
        optimizer: "asgd",
        settings: &[num("lr", 0.5)],
        pytorch: None,
    },
    Entry {
        label: "rprop",
        optimizer: "rprop",
        settings: &[num("lr", 1e-2)],
        pytorch: None,
    },
    Entry {
        label: "lion",
        optimizer: "lion",
        settings: &[num("lr", 3e-4)],
        pytorch: None,
    },
    Entry {
        label: "lamb",
        optimizer: "lamb",
        settings: &[num("lr", 3e-3)],
        pytorch: None,
    },
    Entry {
        label: "adabelief",
        optimizer: "adabelief",
        settings: &[num("lr", 1e-3)],
        pytorch: None,
    },
    // Rules with shapes: Adafactor at PyTorch's defaults; Muon for the
    // weight matrices (the biases get AdamW's defaults, as PyTorch's Muon
    // documentation recommends) at the learning rate of Muon's authors.
    Entry {
        label: "adafactor",
        optimizer: "adafactor",
        settings: &[num("lr", 1e-2)],
        pytorch: Some(0.9327),
    },
    Entry {
        label: "muon",
        optimizer: "muon",
        settings: &[num("lr", 0.02)],
        pytorch: Some(0.9422),
    },
    // The start of the vSGD authors' code (py-optim's vSGD defaults): v̄ and
    // h̄ overestimated by c = 2, h̄ from c·max(h, 1) (h ≪ 1 here), τ = 10.
    Entry {
        label: "vsgd",
        optimizer: "vsgd",
        settings: &[num("c", 2.0), num("hmin", 2.0), num("tau0", 10.0)],
        pytorch: None,
    },
];

/// How far below PyTorch's accuracy a row may end and still pass (0.5 points).
pub const TOLERANCE: f64 = 0.005;

/// The entry's rule with its settings.
/// The rule of a row, with its settings.
pub fn make_rule(entry: &Entry) -> Result<Box<dyn DynRule>, Error> {
    let mut rule = super::rules::lookup(entry.optimizer)?;
    apply_settings(rule.as_mut(), entry)?;
    Ok(rule)
}

/// The table's entry that runs the built-in `name` under its own name
/// (`sgd`, `adam`, `vsgd`, ...), if any: the settings `optdsl train` starts
/// that optimizer from. The `momentum` and `nesterov` rows run `sgd` with
/// settings, and are not the built-ins of those names.
pub fn entry_for_builtin(name: &str) -> Option<&'static Entry> {
    let name = name.trim().to_ascii_lowercase();
    ENTRIES
        .iter()
        .find(|e| e.label == name && e.optimizer == name)
}

/// Sets `entry`'s settings on `rule`; `lr` is renamed `learning_rate` for
/// rules that call it that.
pub fn apply_settings(rule: &mut dyn DynRule, entry: &Entry) -> Result<(), Error> {
    for &(name, value) in entry.settings {
        let name = if name == "lr"
            && rule.hyper("lr").is_none()
            && rule.hyper("learning_rate").is_some()
        {
            "learning_rate"
        } else {
            name
        };
        rule.set_hyper(name, value)?;
    }
    Ok(())
}

/// `lr=0.5 momentum=0.9`, or `(defaults)`.
pub fn settings_text(e: &Entry) -> String {
    if e.settings.is_empty() {
        return "(defaults)".into();
    }
    e.settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The init a PyTorch mean was measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchInit {
    /// `nn.Linear`'s own (`--init torch`).
    Default,
    /// `xavier_uniform_` weights, zero biases (`--init xavier`, and `auto`,
    /// which is Xavier for the sigmoid layers of the reference network).
    Xavier,
}

impl TorchInit {
    /// The init of `--init NAME`, where PyTorch's means have one.
    pub fn of(init: &str) -> Option<TorchInit> {
        match init.trim() {
            "torch" => Some(TorchInit::Default),
            "xavier" | "auto" => Some(TorchInit::Xavier),
            _ => None,
        }
    }
}

/// PyTorch 2.15's mean test accuracy over seeds 0-9 (ten runs each,
/// `torch.manual_seed(seed)`) on the reference run of [`ENTRIES`], by row
/// label and init: what `python3 tools/pytorch_usps.py --seeds 10 --init
/// default,xavier` prints (docs/pytorch-parity.md, table 1). A mean over
/// several seeds of `compare` is set against these, not against one run.
pub const PYTORCH_MEANS: &[(&str, TorchInit, f64)] = &[
    ("sgd", TorchInit::Default, 0.9282),
    ("momentum", TorchInit::Default, 0.9344),
    ("nesterov", TorchInit::Default, 0.9346),
    ("adagrad", TorchInit::Default, 0.9372),
    ("rmsprop", TorchInit::Default, 0.9326),
    ("adadelta", TorchInit::Default, 0.9303),
    ("adam", TorchInit::Default, 0.9323),
    ("sgd", TorchInit::Xavier, 0.9308),
    ("momentum", TorchInit::Xavier, 0.9360),
    ("nesterov", TorchInit::Xavier, 0.9354),
    ("adagrad", TorchInit::Xavier, 0.9382),
];

/// The PyTorch figure a row of a run with `seeds` seeds and `--init init`
/// is set against: the single run from seed 0 for one seed, PyTorch's
/// ten-seed mean with the same init for several (`None` where it was not
/// measured).
pub fn pytorch_reference(entry: &Entry, seeds: u64, init: &str) -> Option<f64> {
    if seeds <= 1 {
        return entry.pytorch;
    }
    let init = TorchInit::of(init)?;
    PYTORCH_MEANS
        .iter()
        .find(|(label, i, _)| *label == entry.label && *i == init)
        .map(|&(_, _, mean)| mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_seeds_are_set_against_pytorchs_mean_with_the_same_init() {
        let momentum = ENTRIES.iter().find(|e| e.label == "momentum").unwrap();
        assert_eq!(pytorch_reference(momentum, 1, "auto"), momentum.pytorch);
        assert_eq!(pytorch_reference(momentum, 10, "torch"), Some(0.9344));
        assert_eq!(pytorch_reference(momentum, 5, "auto"), Some(0.9360));
        assert_eq!(pytorch_reference(momentum, 5, "he"), None);
        let adam = ENTRIES.iter().find(|e| e.label == "adam").unwrap();
        assert_eq!(pytorch_reference(adam, 3, "xavier"), None, "not measured");
        // every mean names a row of the table
        for (label, _, _) in PYTORCH_MEANS {
            assert!(ENTRIES.iter().any(|e| e.label == *label), "{label}");
        }
    }
}
