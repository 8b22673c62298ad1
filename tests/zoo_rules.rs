//! The eight optax rules of tests/golden/zoo/zoo.opt (Yogi, NovoGrad, Signum,
//! Adan, AMSGrad, optimistic gradient descent, Fromage, LARS), compiled with
//! `optimizer!`, replay every optax 0.2.8 fixture in tests/golden/zoo: the
//! fixture's `optimizer` picks the rule by name (case, `_` and `-` ignored)
//! and its `hyper` entries are set by exact name. A second test checks that
//! zoo.opt holds exactly these rules, doc comments included.

use optdsl::replay::{replay_as, Fixture, Outcome};
use optdsl::{DynRule, HyperValue};
use std::path::{Path, PathBuf};

optdsl::optimizer! {
    /// Yogi (Zaheer et al. 2018), `optax.yogi` (`scale_by_yogi`, learning rate):
    ///
    /// m ← (1 − β₁) g + β₁ m;  v ← v − (1 − β₂) sign(v − g²) g²;  m₀ = v₀ = 1e-6;
    /// w ← w − η · m/(1 − β₁ᵗ) / (√(v/(1 − β₂ᵗ)) + ε).
    pub Yogi {
        hyper learning_rate = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-3;
        state mu = 1e-6, nu = 1e-6;
        mu = (1 - b1) * g + b1 * mu;
        nu = nu - (1 - b2) * sign(nu - g * g) * (g * g);
        let bc1 = float(1 - float(float(b1)^t));
        let bc2 = float(1 - float(float(b2)^t));
        w -= learning_rate * ((mu / bc1) / (sqrt(nu / bc2) + eps));
    }

    /// NovoGrad (Ginsburg et al. 2019), `optax.novograd` (`scale_by_novograd`,
    /// learning rate): a per-tensor second moment of the gradient's norm,
    ///
    /// v ← ‖g‖² on step 1, else (1 − β₂) ‖g‖² + β₂ v;
    /// u = g / (√(v + ε_root) + ε) + λ w;  m ← u on step 1, else β₁ m + u;
    /// w ← w − η m.
    pub Novograd {
        hyper learning_rate = 1e-3, b1 = 0.9, b2 = 0.25, eps = 1e-6, eps_root = 0,
              weight_decay = 0;
        scalar nu = 0;
        state mu = 0;
        let g_norm_sq = float(float(norm(g))^2);
        if t == 1 {
            nu = g_norm_sq;
        } else {
            nu = float((1 - b2) * g_norm_sq + b2 * nu);
        }
        let u = g / float(sqrt(nu + eps_root) + eps) + weight_decay * w;
        if t == 1 {
            mu = u;
        } else {
            mu = b1 * mu + u;
        }
        w -= learning_rate * mu;
    }

    /// Signum (Bernstein et al. 2018), `optax.signum` (`ema` without debiasing,
    /// `scale_by_sign`, learning rate):
    ///
    /// m ← (1 − β) g + β m;  w ← w − η sign(m).
    pub Signum {
        hyper learning_rate = 1e-3, beta = 0.9;
        state mu = 0;
        mu = (1 - beta) * g + beta * mu;
        w -= learning_rate * sign(mu);
    }

    /// Adan (Xie et al. 2022, arXiv 2208.06677), `optax.adan` (`scale_by_adan`,
    /// `add_decayed_weights`, learning rate), with d = g − g_prev (0 on step 1):
    ///
    /// m ← (1 − β₁) g + β₁ m;  v ← (1 − β₂) d + β₂ v;
    /// n ← (1 − β₃) (g + (1 − β₂) d)² + β₃ n;
    /// u = (m/(1 − β₁ᵗ) + (1 − β₂) v/(1 − β₂ᵗ)) / (√(n/(1 − β₃ᵗ) + ε_root) + ε);
    /// w ← w − η (u + λ w).
    pub Adan {
        hyper learning_rate = 1e-3, b1 = 0.98, b2 = 0.92, b3 = 0.99, eps = 1e-8,
              eps_root = 1e-8, weight_decay = 0;
        state m = 0, v = 0, n = 0, g_prev = 0;
        let diff = if t == 1 { 0 } else { g - g_prev };
        m = (1 - b1) * g + b1 * m;
        v = (1 - b2) * diff + b2 * v;
        let sq = g + (1 - b2) * diff;
        n = (1 - b3) * (sq * sq) + b3 * n;
        let bc1 = float(1 - float(float(b1)^t));
        let bc2 = float(1 - float(float(b2)^t));
        let bc3 = float(1 - float(float(b3)^t));
        let u = (m / bc1 + (1 - b2) * (v / bc2)) / (sqrt(n / bc3 + eps_root) + eps);
        w -= learning_rate * (u + weight_decay * w);
        g_prev = g;
    }

    /// AMSGrad (Reddi et al. 2018), `optax.amsgrad` (`scale_by_amsgrad`, learning
    /// rate): the maximum is taken of the bias-corrected second moment,
    ///
    /// m ← (1 − β₁) g + β₁ m;  v ← (1 − β₂) g² + β₂ v;
    /// v_max ← max(v_max, v/(1 − β₂ᵗ));  w ← w − η · m/(1 − β₁ᵗ) / (√(v_max + ε_root) + ε).
    ///
    /// `bias_correction_mu` / `bias_correction_nu` false leave m / v uncorrected.
    pub Amsgrad {
        hyper learning_rate = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, eps_root = 0,
              bias_correction_mu = true, bias_correction_nu = true;
        state mu = 0, nu = 0, nu_max = 0;
        mu = (1 - b1) * g + b1 * mu;
        nu = (1 - b2) * (g * g) + b2 * nu;
        let mu_hat = mu;
        if bias_correction_mu {
            mu_hat = mu / float(1 - float(float(b1)^t));
        }
        let nu_eff = nu;
        if bias_correction_nu {
            nu_eff = nu / float(1 - float(float(b2)^t));
        }
        nu_max = max(nu_max, nu_eff);
        w -= learning_rate * (mu_hat / (sqrt(nu_max + eps_root) + eps));
    }

    /// Optimistic gradient descent (Mokhtari et al. 2019),
    /// `optax.optimistic_gradient_descent` (`scale_by_optimistic_gradient`,
    /// learning rate), with g_prev = g on step 1:
    ///
    /// w ← w − η ((α + β) g − β g_prev).
    pub OptimisticGradientDescent {
        hyper learning_rate = 1e-3, alpha = 1, beta = 1;
        state g_prev = g;
        w -= learning_rate * ((alpha + beta) * g - beta * g_prev);
        g_prev = g;
    }

    /// Fromage (Bernstein et al. 2020), `optax.fromage` (`scale_by_trust_ratio`
    /// with `min_norm`, learning rate η/√(1 + η²), `add_decayed_weights`):
    ///
    /// r = max(‖w‖, min_norm) / max(‖g‖, min_norm) per tensor (1 when either is 0);
    /// w ← (w − η r g) / √(1 + η²), computed as optax does:
    /// w + (−η c (r g) + (c − 1) w) with c = 1/√(1 + η²).
    pub Fromage {
        hyper learning_rate = 1e-3, min_norm = 1e-6;
        let mult = 1 / (1 + learning_rate^2)^0.5;
        let param_norm = norm(w);
        let update_norm = norm(g);
        let pn = if param_norm <= min_norm { min_norm } else { param_norm };
        let un = if update_norm <= min_norm { min_norm } else { update_norm };
        let ratio = if pn == 0 || un == 0 { 1 } else { pn / un };
        w += -(learning_rate * mult) * (g * ratio) + (mult - 1) * w;
    }

    /// LARS (You et al. 2017, arXiv 1708.03888), `optax.lars`
    /// (`add_decayed_weights`, `scale_by_trust_ratio`, learning rate, `trace`):
    ///
    /// u = g + λ w;  r = κ ‖w‖ / (‖u‖ + ε) per tensor (1 when either norm is 0);
    /// s = −η r u;  b ← s + μ b;  w ← w + b, or w + s + μ b with `nesterov`.
    ///
    /// The masks are one boolean per tensor: false skips the weight decay / the
    /// trust ratio.
    pub Lars {
        hyper learning_rate = 1e-3, weight_decay = 0, weight_decay_mask = true,
              trust_coefficient = 0.001, eps = 0, trust_ratio_mask = true,
              momentum = 0.9, nesterov = false;
        state trace = 0;
        let u = g;
        if weight_decay_mask {
            u = g + weight_decay * w;
        }
        if trust_ratio_mask {
            let param_norm = norm(w);
            let update_norm = norm(u);
            let ratio = if param_norm == 0 || update_norm == 0 {
                1
            } else {
                trust_coefficient * param_norm / (update_norm + eps)
            };
            u = u * ratio;
        }
        let s = -learning_rate * u;
        trace = s + momentum * trace;
        if nesterov {
            w += s + momentum * trace;
        } else {
            w += trace;
        }
    }
}

/// The eight rules, fresh, with their defaults.
fn rules() -> Vec<Box<dyn DynRule>> {
    vec![
        Box::new(Yogi::default()),
        Box::new(Novograd::default()),
        Box::new(Signum::default()),
        Box::new(Adan::default()),
        Box::new(Amsgrad::default()),
        Box::new(OptimisticGradientDescent::default()),
        Box::new(Fromage::default()),
        Box::new(Lars::default()),
    ]
}

/// A name with case, `_` and `-` ignored: `optimistic_gradient_descent` and
/// `OptimisticGradientDescent` are the same.
fn normalized(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The rule a fixture names, with the fixture's hypers set by exact name.
fn fixture_rule(fixture: &Fixture) -> Box<dyn DynRule> {
    let want = normalized(&fixture.optimizer);
    let mut matching: Vec<Box<dyn DynRule>> = rules()
        .into_iter()
        .filter(|r| normalized(r.info().name) == want)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{}: optimizer `{}` names {} rules",
        fixture.name,
        fixture.optimizer,
        matching.len()
    );
    let mut rule = matching.remove(0);
    for (name, value) in &fixture.hyper {
        let v = match value {
            serde_json::Value::Bool(b) => HyperValue::Bool(*b),
            serde_json::Value::Number(n) => HyperValue::Num(n.as_f64().unwrap()),
            other => panic!("{}: hyper `{name}` = {other}", fixture.name),
        };
        rule.set_hyper(name, v)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.name));
    }
    rule
}

fn zoo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/zoo")
}

fn fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(zoo_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Fixture::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

#[test]
fn every_zoo_fixture_replays_through_its_rule() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 16, "{} fixtures", fixtures.len());
    let mut failures = Vec::new();
    // Per rule: fixtures replayed and the largest relative error.
    let mut worst: Vec<(&'static str, usize, f64)> =
        rules().iter().map(|r| (r.info().name, 0, 0.0)).collect();
    for f in &fixtures {
        let rule = fixture_rule(f);
        let out = match f.dtype.as_str() {
            "f32" => replay_as::<f32>(rule.as_ref(), f),
            _ => replay_as::<f64>(rule.as_ref(), f),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        println!("{} ({})", out.line(&f.name), f.dtype);
        let entry = worst.iter_mut().find(|w| w.0 == rule.info().name).unwrap();
        entry.1 += 1;
        match out {
            Outcome::Pass { max_rel_err } => entry.2 = entry.2.max(max_rel_err),
            _ => failures.push(out.line(&f.name)),
        }
    }
    for (name, count, err) in &worst {
        println!("{name}: {count} fixtures, worst max_rel_err={err:.3e}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
    for (name, count, _) in &worst {
        assert!(*count >= 2, "{name} has {count} fixtures");
    }
    for want in ["yogi-f32", "adan-f32"] {
        assert!(
            fixtures.iter().any(|f| f.name == want && f.dtype == "f32"),
            "{want}"
        );
    }
}

#[test]
fn fixture_hypers_are_set_by_optax_names() {
    let f = fixtures().into_iter().find(|f| f.name == "lars").unwrap();
    let rule = fixture_rule(&f);
    assert_eq!(rule.hyper("nesterov"), Some(HyperValue::Bool(true)));
    assert_eq!(rule.hyper("trust_coefficient"), Some(HyperValue::Num(0.01)));
    assert_eq!(
        rule.hyper("weight_decay_mask"),
        Some(HyperValue::Bool(true))
    );
    let mut rule: Box<dyn DynRule> = Box::new(Lars::default());
    let e = rule
        .set_hyper("nesterof", HyperValue::Bool(true))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`nesterof`") && e.contains("nesterov"), "{e}");
}

/// zoo.opt's rules: (doc text as `RuleInfo::doc` holds it, rule text from
/// `pub` to the closing brace). `//` lines are comments, `///` lines doc
/// comments of the next rule.
fn zoo_opt_rules(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut docs: Vec<String> = Vec::new();
    let mut code = String::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(doc) = trimmed.strip_prefix("///") {
            assert!(code.is_empty(), "a doc comment inside a rule: {line}");
            docs.push(doc.trim().to_string());
            continue;
        }
        if trimmed.starts_with("//") || (trimmed.is_empty() && code.is_empty()) {
            continue;
        }
        assert!(!trimmed.contains("//"), "a trailing comment: {line}");
        code.push_str(line);
        code.push('\n');
        for c in trimmed.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
        }
        if depth == 0 && code.contains('{') {
            out.push((docs.join("\n"), std::mem::take(&mut code)));
            docs.clear();
        }
    }
    assert!(
        code.trim().is_empty() && docs.is_empty(),
        "unfinished rule: {code}"
    );
    out
}

fn squeezed(s: &str) -> String {
    s.split_whitespace().collect()
}

#[test]
fn zoo_opt_holds_exactly_these_rules() {
    let text = include_str!("golden/zoo/zoo.opt");
    let file = zoo_opt_rules(text);
    let compiled = rules();
    let file_names: Vec<String> = file
        .iter()
        .map(|(_, code)| code.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    let names: Vec<&str> = compiled.iter().map(|r| r.info().name).collect();
    assert_eq!(file_names, names);
    for ((doc, code), rule) in file.iter().zip(&compiled) {
        let info = rule.info();
        assert_eq!(doc, info.doc, "{}: doc comment", info.name);
        let source = squeezed(info.source);
        let start = source
            .find(&format!("pub{}{{", info.name))
            .unwrap_or_else(|| panic!("{}: {source}", info.name));
        assert_eq!(squeezed(code), source[start..], "{}: rule text", info.name);
    }
}

/// Each fixture's non-default hyperparameters are exercised: with any one of
/// them left at the rule's default (optax's), the fixture fails. The one
/// exception is LARS's `weight_decay` under `weight_decay_mask = false`, which
/// masks it off, so the fixture must pass without it.
#[test]
fn every_fixture_hyper_changes_the_trajectory() {
    for f in fixtures() {
        for key in f.hyper.keys().filter(|k| *k != "learning_rate") {
            let mut without = f.clone();
            without.hyper.remove(key);
            let rule = fixture_rule(&without);
            let out = match f.dtype.as_str() {
                "f32" => replay_as::<f32>(rule.as_ref(), &f),
                _ => replay_as::<f64>(rule.as_ref(), &f),
            }
            .unwrap();
            let masked = f.name == "lars-no-masks" && key == "weight_decay";
            assert_eq!(
                out.passed(),
                masked,
                "{} without `{key}`: {}",
                f.name,
                out.line(&f.name)
            );
        }
    }
}
