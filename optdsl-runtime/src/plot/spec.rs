//! What a path picture runs: an optimizer named by its built-in, a legend
//! label and the hyperparameters set on it. No maths and no drawing here, so
//! the surfaces, the tracer and the pictures can all name optimizers.

use super::style::fmt_num;

/// One optimizer to draw: a legend label, a built-in's name and the
/// hyperparameters set on it (the others keep their defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct PathSpec {
    /// The legend's name for it ("GD", "Momentum").
    pub label: String,
    /// The built-in rule (`optdsl list`).
    pub rule: String,
    /// Hyperparameters set before the first step.
    pub hypers: Vec<(String, f64)>,
}

impl PathSpec {
    /// A spec from borrowed parts.
    pub fn new(label: &str, rule: &str, hypers: &[(&str, f64)]) -> Self {
        PathSpec {
            label: label.into(),
            rule: rule.into(),
            hypers: hypers.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    /// "momentum: lr 0.012, momentum 0.9" (the rule and the hypers that were
    /// set), or "vsgd: defaults".
    pub fn describe(&self) -> String {
        let hypers: Vec<String> = self
            .hypers
            .iter()
            .map(|(n, v)| format!("{n} {}", fmt_num(*v)))
            .collect();
        if hypers.is_empty() {
            format!("{}: defaults", self.rule)
        } else {
            format!("{}: {}", self.rule, hypers.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_rule_and_the_set_hypers() {
        let p = PathSpec::new("M", "momentum", &[("lr", 0.012), ("momentum", 0.9)]);
        assert_eq!(p.describe(), "momentum: lr 0.012, momentum 0.9");
        assert_eq!(PathSpec::new("v", "vsgd", &[]).describe(), "vsgd: defaults");
    }
}
