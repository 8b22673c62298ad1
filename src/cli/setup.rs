//! What the commands that train share: the element type, the data's
//! description, the network's widths and init, and `KEY=VALUE` settings of
//! hyperparameters.

use optdsl::data::Split;
use optdsl::net::{Init, NetworkSpec};
use optdsl::{DynRule, Error, HyperValue};

/// The element type a command computes in (`--dtype`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dtype {
    /// 32-bit floats (PyTorch's default).
    #[default]
    F32,
    /// 64-bit floats.
    F64,
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        })
    }
}

/// One line about the data.
pub fn describe_data(data: &Split) -> String {
    format!(
        "data {}: {} train / {} test rows of {} inputs, {} classes",
        data.train.name(),
        data.train.len(),
        data.test.len(),
        data.train.dim(),
        data.train.classes()
    )
}

/// Gives every layer of `spec` the initialization named `init` (`auto`:
/// each layer's default for its activation).
pub fn set_init(spec: &mut NetworkSpec, init: &str) -> Result<(), Error> {
    let init = match init.trim() {
        "auto" => None,
        name => Some(
            name.parse::<Init>()
                .map_err(|_| invalid("init", format!("`{name}`; use auto, xavier, he or torch")))?,
        ),
    };
    spec.layers.iter_mut().for_each(|l| l.init = init);
    Ok(())
}

/// `128,64` -> [128, 64]; `` or `none` -> [].
pub fn parse_hidden(text: &str) -> Result<Vec<usize>, Error> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Ok(vec![]);
    }
    text.split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .ok()
                .filter(|&w| w > 0)
                .ok_or_else(|| {
                    invalid(
                        "hidden",
                        format!("`{w}` in `{text}`; give widths like 128,64"),
                    )
                })
        })
        .collect()
}

/// `KEY=VALUE` -> (key, value), the value a number or true/false.
pub fn parse_set(kv: &str) -> Result<(String, HyperValue), Error> {
    let (k, v) = kv
        .split_once('=')
        .ok_or_else(|| invalid("--set", format!("`{kv}`; write KEY=VALUE, e.g. lr=0.1")))?;
    let value = HyperValue::parse(v).ok_or_else(|| {
        invalid(
            "--set",
            format!("`{v}` for {k}; give a number or true/false"),
        )
    })?;
    Ok((k.trim().to_string(), value))
}

/// Applies `--set KEY=VALUE`s to `rule`.
pub fn apply_sets(rule: &mut dyn DynRule, sets: &[String]) -> Result<(), Error> {
    for kv in sets {
        let (k, v) = parse_set(kv)?;
        rule.set_hyper(&k, v)?;
    }
    Ok(())
}

/// `lr=0.5 momentum=0.9`: the hyperparameters that differ from the defaults.
pub fn hypers_text(rule: &dyn DynRule) -> String {
    let parts: Vec<String> = rule
        .info()
        .hypers
        .iter()
        .filter_map(|h| {
            let v = rule.hyper(h.name)?;
            (v != h.default || h.name == "lr" || h.name == "learning_rate")
                .then(|| format!("{}={v}", h.name))
        })
        .collect();
    parts.join(" ")
}

/// An invalid command-line value: what it was and why.
pub fn invalid(what: &str, reason: String) -> Error {
    Error::Invalid {
        what: what.to_string(),
        reason,
    }
}
