//! Presets (`pub AdamW = Adam { ... }`): the built-ins defined as presets
//! lower to the programs of the hand-written rules they replace (so
//! checkpoints saved before keep resuming, their fingerprints unchanged), and
//! every built-in's source, written back by `optdsl_lang::print`, compiles to
//! the same program.

extern crate optdsl_runtime as optdsl;

use optdsl::builtin::builtins;

/// AdamW as it was written by hand before it became a preset of Adam.
const ADAMW_BY_HAND: &str = "pub AdamW {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 1e-2 where weight_decay >= 0,
              amsgrad = false, maximize = false;
        state exp_avg = 0, exp_avg_sq = 0, max_exp_avg_sq = 0;
        let d = if maximize { -g } else { g };
        w = w * (1 - lr * weight_decay);
        exp_avg = exp_avg + (1 - beta1) * (d - exp_avg);
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * (d * d);
        let step_size = lr / (1 - beta1^t);
        let bc2_sqrt = sqrt(1 - beta2^t);
        let v = exp_avg_sq;
        if amsgrad {
            max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq);
            v = max_exp_avg_sq;
        }
        w -= step_size * (exp_avg / (sqrt(v) / bc2_sqrt + eps));
    }";

/// bitsandbytes' AdamW8bit as it was written by hand.
const ADAMW8BIT_BY_HAND: &str = "pub AdamW8bit {
        hyper lr = 1e-3 where lr >= 0, beta1 = 0.9 where 0 <= beta1 < 1,
              beta2 = 0.999 where 0 <= beta2 < 1, eps = 1e-8 where eps >= 0,
              weight_decay = 1e-2 where weight_decay >= 0;
        state m: q8 = 0, v: uq8 = 0;
        w = w * (1 - lr * weight_decay);
        m = fma(g, 1 - beta1, beta1 * m);
        v = beta2 * v + (1 - beta2) * g * g;
        let step = -lr / (1 - beta1^t);
        w += step * m / (sqrt(v) / sqrt(1 - beta2^t) + eps);
    }";

fn program_of(name: &str) -> &'static optdsl_lang::Program {
    let b = builtins().iter().find(|b| b.name == name).unwrap();
    (b.make)().info().program()
}

#[test]
fn presets_lower_to_the_rules_they_replace() {
    for (name, text) in [("adamw", ADAMW_BY_HAND), ("adamw8bit", ADAMW8BIT_BY_HAND)] {
        let by_hand = optdsl_lang::compile(text).unwrap().remove(0);
        let preset = program_of(name);
        assert_eq!(preset.values, by_hand.values, "{name}");
        assert_eq!(preset.storage, by_hand.storage, "{name}");
        assert_eq!(preset.fingerprint, by_hand.fingerprint, "{name}");
        let hypers: Vec<_> = preset
            .hypers
            .iter()
            .map(|h| (&h.name.text, h.default))
            .collect();
        let expected: Vec<_> = by_hand
            .hypers
            .iter()
            .map(|h| (&h.name.text, h.default))
            .collect();
        assert_eq!(hypers, expected, "{name}");
    }
}

#[test]
fn every_builtin_written_back_compiles_to_the_same_program() {
    for b in builtins() {
        let rule = (b.make)();
        let info = rule.info();
        let defs = optdsl_lang::parse::parse_rules(info.source).unwrap();
        assert_eq!(defs.len(), 1, "{}", b.name);
        let printed = optdsl_lang::print::rule(&defs[0]);
        let again = optdsl_lang::compile(&printed)
            .unwrap_or_else(|e| panic!("{}:\n{printed}\n{e:?}", b.name))
            .remove(0);
        let program = info.program();
        assert_eq!(
            again.fingerprint, program.fingerprint,
            "{}:\n{printed}",
            b.name
        );
        assert_eq!(again.values, program.values, "{}", b.name);
        assert_eq!(again.docs, program.docs, "{}", b.name);
    }
}
