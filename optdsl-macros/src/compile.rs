//! The macros' driver: tokens to text, then `optdsl-lang` parses, checks and
//! lowers each rule; each checked rule is generated, each rule with errors
//! expands to its errors (all of them, at their tokens) beside a fallback.

use crate::source::Source;
use crate::{network, rule_type, step};
use proc_macro2::TokenStream;

/// `optimizer!` on `proc_macro2` tokens.
pub fn rules(input: TokenStream) -> TokenStream {
    let src = Source::new(input);
    let defs = match optdsl_lang::parse::parse_rules(&src.text) {
        Ok(defs) => defs,
        Err(d) => return src.error(&d).to_compile_error(),
    };
    let mut out = src.errors(&optdsl_lang::check::check_names(&defs));
    let mut seen = std::collections::HashSet::new();
    for (def, outcome) in defs.iter().zip(optdsl_lang::compile_defs(&defs)) {
        if !seen.insert(def.name.text.clone()) {
            continue;
        }
        match outcome {
            Ok(p) => {
                let plan = optdsl_lang::passes::plan(&p);
                let sh = rule_type::Shell::of(&p, &src);
                out.extend(rule_type::shell(
                    &sh,
                    &src,
                    step::init(&p, &plan),
                    if p.tensor.is_some() {
                        step::tensor_apply(&p)
                    } else {
                        step::apply(&p, &plan)
                    },
                ));
            }
            Err(errors) => {
                out.extend(src.errors(&errors));
                out.extend(rule_type::fallback(def, &src));
            }
        }
    }
    out
}

/// `network!` on `proc_macro2` tokens.
pub fn networks(input: TokenStream) -> TokenStream {
    let src = Source::new(input);
    let nets = match optdsl_lang::parse::parse_networks(&src.text) {
        Ok(nets) => nets,
        Err(d) => return src.error(&d).to_compile_error(),
    };
    let mut out = TokenStream::new();
    for def in &nets {
        match network::check(&src, def) {
            Ok(net) => out.extend(network::expand(&net)),
            Err(e) => out.extend(e.to_compile_error()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The macros never panic: random token soup (through the token-to-text
    //! table) and random network specs compile or give compile errors. The
    //! language itself is fuzzed by optdsl-lang's own property tests.
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    const WORDS: &[&str] = &[
        "w", "g", "t", "lr", "m", "v", "x", "hyper", "state", "scalar", "input", "let", "if",
        "else", "=", "-=", "+=", "*=", "/=", "+", "-", "*", "/", "^", "(", ")", "{", "}", ";", ",",
        "sqrt", "norm", "sum", "max_abs", "min", "clamp", "select", "sign", "sgn", "1", "0", "0.5",
        "1e-8", "1e308", "true", "false", "!", "&&", "||", "<", ">=", "==", "pub", "R", "#", "[",
        "doc", "]", "\"x\"", "dense", "loss", "softmax", "type", "_", "1.",
    ];

    const VALID: &str = "/// Adam.
        pub MyAdam {
            hyper lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, flag = false;
            state m = 0, v = 0, gp = g;
            scalar s = 1;
            input h;
            m = b1*m + (1-b1)*g;
            v = b2*v + (1-b2)*g*g;
            let mhat = m / (1 - b1^t);
            let r = norm(w) / max(norm(m), 1e-12);
            s *= b1;
            if flag && t > 1 { gp = g; } else if g > 0 { v = v + h; }
            w -= lr*r*mhat/(sqrt(v/(1-b2^t))+eps) + select(g < 0, s, -s);
        }";

    fn run_all(text: &str) {
        if let Ok(tokens) = TokenStream::from_str(text) {
            let _ = rules(tokens.clone());
            let _ = networks(tokens);
        }
    }

    #[test]
    fn the_valid_rule_compiles_without_errors() {
        let out = rules(TokenStream::from_str(VALID).unwrap()).to_string();
        assert!(!out.contains("compile_error"), "{out}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn token_soup_never_panics(words in proptest::collection::vec(0..WORDS.len(), 0..40), wrap in any::<bool>()) {
            let body: Vec<&str> = words.iter().map(|&i| WORDS[i]).collect();
            let text = if wrap { format!("R {{ {} }}", body.join(" ")) } else { body.join(" ") };
            run_all(&text);
        }

        #[test]
        fn random_networks_never_panic(items in proptest::collection::vec((0u8..4, 0usize..300, 0..WORDS.len()), 0..8)) {
            let mut text = String::from("pub N { ");
            for (kind, n, word) in items {
                match kind {
                    0 => text += &format!("input {n}; "),
                    1 => text += &format!("dense {n} {}; ", ["sigmoid", "tanh", "relu", "softmax", WORDS[word]][n % 5]),
                    2 => text += &format!("loss {}; ", ["cross_entropy", "mse", WORDS[word]][n % 3]),
                    _ => text += WORDS[word],
                }
            }
            text += "}";
            run_all(&text);
        }
    }
}
