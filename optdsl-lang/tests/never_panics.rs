//! The library never panics: random token soup and mutated valid rule files
//! compile or give diagnostics, and every diagnostic renders.

use optdsl_lang::eval::Scalar;
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "w", "g", "t", "lr", "m", "v", "x", "hyper", "state", "scalar", "input", "let", "if", "else",
    "=", "-=", "+=", "*=", "/=", "+", "-", "*", "/", "^", "**", "(", ")", "{", "}", ";", ",",
    "sqrt", "norm", "sum", "max_abs", "min", "clamp", "select", "sign", "sgn", "float", "1", "0",
    "0.5", "1e-8", "1e308", "1e400", "true", "false", "!", "&&", "||", "<", ">=", "==", "pub", "R",
    "f64", "///", "//", "\n", "#", "[", "doc", "]", "\"x\"", "for", "while", "é", "Rü", "pub(in",
    "_", "1.",
];

const VALID: &str = "/// Adam.
pub MyAdam {
    hyper lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, flag = false;
    state m = 0, v = 0, gp = g; // comment
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
    match optdsl_lang::compile(text) {
        Ok(programs) => {
            for p in &programs {
                let _ = optdsl_lang::passes::plan(p);
                let hypers: Vec<Scalar> = p.hypers.iter().map(|h| h.default.into()).collect();
                let _ = optdsl_lang::traffic::traffic(p, &hypers, 1);
            }
        }
        Err(d) => {
            assert!(!d.is_empty());
            let _ = optdsl_lang::render("f.opt", text, &d);
        }
    }
    let _ = optdsl_lang::parse::parse_networks(text);
}

#[test]
fn the_valid_rule_compiles() {
    let p = optdsl_lang::compile(VALID).unwrap();
    assert_eq!(p[0].name.text, "MyAdam");
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
    fn mutated_rules_never_panic(edits in proptest::collection::vec((0usize..400, 0..WORDS.len(), 0u8..3), 1..6)) {
        let mut tokens: Vec<String> = VALID.split_whitespace().map(String::from).collect();
        for (pos, word, kind) in edits {
            let at = pos % (tokens.len() + 1);
            match kind {
                0 if at < tokens.len() => { tokens.remove(at); }
                1 => tokens.insert(at, WORDS[word].to_string()),
                _ if at < tokens.len() => tokens[at] = WORDS[word].to_string(),
                _ => {}
            }
        }
        run_all(&tokens.join(" "));
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in ".{0,200}") {
        run_all(&text);
    }
}
