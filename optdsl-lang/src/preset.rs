//! Presets: `pub AdamW = Adam { hyper weight_decay = 1e-2; let
//! decoupled_weight_decay = true; }` is the rule `Adam` written above it with
//! a new default (`hyper`) and a hyperparameter fixed to a value (`let`).
//!
//! A preset is expanded on the syntax tree, before checking: the base's
//! items are copied, a new default replaces the declared one (the checker
//! then checks it against the declared range, at the preset's token), and a
//! fixed hyperparameter leaves the list and every use of it becomes the
//! literal. Lowering takes only the branch a literal condition selects, so a
//! preset that fixes a switch lowers to the program of the rule written
//! without the switch. The expanded rule's `source` is the expanded rule
//! written out ([`crate::print::rule`]): it compiles alone to the same
//! program.

use crate::ast::{Decl, Expr, ExprKind, Range, RuleDef, Setting, Stmt, UnOp};
use crate::check::suggest;
use crate::diag::Diagnostic;
use std::collections::HashSet;

/// The position in `before` of the rule a preset names (the first of that
/// name); `None` for a rule that is not a preset or a base not found.
pub fn base_index(def: &RuleDef, before: &[RuleDef]) -> Option<usize> {
    let base = &def.preset.as_ref()?.base.text;
    before.iter().position(|r| &r.name.text == base)
}

/// `def` with its preset expanded from the rules written before it
/// (`before`, in text order); a rule that is not a preset comes back as it
/// is. Every error of the preset's own items comes back together.
///
/// ```
/// let defs = optdsl_lang::parse::parse_rules(
///     "R { hyper lr = 0.1, nesterov = false;
///          w -= if nesterov { 2 * lr * g } else { lr * g }; }
///      Fast = R { hyper lr = 1; let nesterov = true; }",
/// )
/// .unwrap();
/// let fast = optdsl_lang::preset::expand(&defs[1], &defs[..1]).unwrap();
/// assert_eq!(fast.hypers.len(), 1);
/// assert!(fast.source.contains("hyper lr = 1;"));
/// assert!(fast.source.contains("if true"));
/// ```
pub fn expand(def: &RuleDef, before: &[RuleDef]) -> Result<RuleDef, Vec<Diagnostic>> {
    // The chain of bases back to a rule that is not a preset, walked without
    // recursion (a file may chain any number of presets).
    let mut chain = vec![def];
    let mut scope = before;
    let mut root = def;
    while root.preset.is_some() {
        let i = find_base(root, scope)?;
        chain.push(&scope[i]);
        root = &scope[i];
        scope = &scope[..i];
    }
    let mut out = root.clone();
    for preset in chain.iter().rev().skip(1) {
        out = apply(preset, out)?;
    }
    Ok(out)
}

/// The position in `before` of the rule `def` (a preset) names, or the
/// error at the name.
fn find_base(def: &RuleDef, before: &[RuleDef]) -> Result<usize, Vec<Diagnostic>> {
    if let Some(i) = base_index(def, before) {
        return Ok(i);
    }
    let base = def.preset.as_ref().map(|p| &p.base).unwrap_or(&def.name);
    let names = before.iter().map(|r| r.name.text.as_str());
    let hint = suggest(&base.text, names)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    Err(vec![Diagnostic::new(
        base.span,
        format!(
            "no rule named `{}` is written above (a preset names a rule defined before it in the same file or macro call){hint}",
            base.text
        ),
    )])
}

/// The preset `def` applied to its base, already expanded (`base`; a rule
/// that is not a preset comes back as it is). [`crate::compile_defs`] keeps
/// each rule's expansion, so a chain of presets is expanded once.
pub fn apply(def: &RuleDef, base: RuleDef) -> Result<RuleDef, Vec<Diagnostic>> {
    let Some(preset) = &def.preset else {
        return Ok(def.clone());
    };
    let base_name = base.name.text.clone();
    let mut out = base;
    out.name = def.name.clone();
    out.docs = def.docs.clone();
    out.vis = def.vis.clone();
    out.span = def.span;
    out.preset = None;

    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut fixed: Vec<(String, Expr)> = Vec::new();
    let settings = preset
        .defaults
        .iter()
        .map(|s| (s, false))
        .chain(preset.fixed.iter().map(|s| (s, true)));
    for (set, is_fixed) in settings {
        let name = set.name.text.as_str();
        if !seen.insert(name) {
            errors.push(Diagnostic::new(
                set.name.span,
                format!("`{name}` is set twice in this preset"),
            ));
            continue;
        }
        let Some(h) = out.hypers.iter().position(|h| h.name.text == name) else {
            let hint = suggest(name, out.hypers.iter().map(|h| h.name.text.as_str()))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            errors.push(Diagnostic::new(
                set.name.span,
                format!(
                    "`{}` has no hyperparameter `{name}`{hint} (a preset sets the hyperparameters its base declares)",
                    base_name
                ),
            ));
            continue;
        };
        if let Err(d) = check_value(set, &out.hypers[h], &base_name) {
            errors.push(d);
            continue;
        }
        if is_fixed {
            fixed.push((name.to_string(), set.value.clone()));
        } else {
            out.hypers[h].value = set.value.clone();
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.hypers
        .retain(|h| !fixed.iter().any(|(n, _)| *n == h.name.text));
    for (name, value) in &fixed {
        for d in out
            .hypers
            .iter_mut()
            .chain(out.buffers.iter_mut())
            .chain(out.scalars.iter_mut())
        {
            substitute(&mut d.value, name, value);
        }
        substitute_stmts(&mut out.body, name, value);
    }
    out.source = crate::print::rule(&out);
    Ok(out)
}

/// What a literal value is: a number (with its sign) or a switch.
enum Literal {
    Num(f64),
    Bool,
}

fn literal(e: &Expr) -> Option<Literal> {
    match &e.kind {
        ExprKind::Num(x) => Some(Literal::Num(*x)),
        ExprKind::Bool(_) => Some(Literal::Bool),
        ExprKind::Unary(UnOp::Neg, x) => match x.kind {
            ExprKind::Num(v) => Some(Literal::Num(-v)),
            _ => None,
        },
        _ => None,
    }
}

/// A setting's value is a literal of the hyperparameter's type, inside its
/// declared range.
fn check_value(set: &Setting, hyper: &Decl, base: &str) -> Result<(), Diagnostic> {
    let name = &set.name.text;
    let Some(value) = literal(&set.value) else {
        return Err(Diagnostic::new(
            set.value.span,
            format!("a preset sets `{name}` to a number or to `true` or `false`, written out"),
        ));
    };
    let switch = matches!(hyper.value.kind, ExprKind::Bool(_));
    match value {
        Literal::Bool if !switch => Err(Diagnostic::new(
            set.value.span,
            format!("`{name}` is a number in `{base}`, not a switch"),
        )),
        Literal::Num(_) if switch => Err(Diagnostic::new(
            set.value.span,
            format!("`{name}` is a switch in `{base}`: set it to `true` or `false`"),
        )),
        Literal::Num(x) => match &hyper.range {
            Some(r) if !(Range { lo: r.lo, hi: r.hi }).contains(x) => Err(Diagnostic::new(
                set.value.span,
                format!(
                    "`{name}` = {x} is outside its range `{}`",
                    Range { lo: r.lo, hi: r.hi }.describe(name)
                ),
            )),
            _ => Ok(()),
        },
        Literal::Bool => Ok(()),
    }
}

fn substitute_stmts(stmts: &mut [Stmt], name: &str, value: &Expr) {
    for s in stmts {
        match s {
            Stmt::Let { value: v, .. } | Stmt::Assign { value: v, .. } => {
                substitute(v, name, value)
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                substitute(cond, name, value);
                substitute_stmts(then, name, value);
                substitute_stmts(otherwise, name, value);
            }
            Stmt::Repeat { count, body } => {
                substitute(count, name, value);
                substitute_stmts(body, name, value);
            }
            Stmt::State(decls) => {
                for d in decls {
                    substitute(&mut d.value, name, value);
                }
            }
        }
    }
}

/// Every use of `name` in `e` becomes `value` (a literal; a name cannot be
/// declared twice in a rule, so every `name` here is the hyperparameter).
fn substitute(e: &mut Expr, name: &str, value: &Expr) {
    match &mut e.kind {
        ExprKind::Var(n) if n == name => *e = value.clone(),
        ExprKind::Num(_) | ExprKind::Bool(_) | ExprKind::Var(_) => {}
        ExprKind::Unary(_, x) | ExprKind::Transpose(x) => substitute(x, name, value),
        ExprKind::Binary(_, _, a, b) | ExprKind::MatMul(_, a, b) => {
            substitute(a, name, value);
            substitute(b, name, value);
        }
        ExprKind::Call(_, args) => {
            for a in args {
                substitute(a, name, value);
            }
        }
        ExprKind::If(c, a, b) => {
            substitute(c, name, value);
            substitute(a, name, value);
            substitute(b, name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compile;

    const ADAM: &str = "pub Adam {
        hyper lr = 1e-3 where lr >= 0, wd = 0 where wd >= 0, beta = 0.9 where 0 <= beta < 1,
              decoupled = false, amsgrad = false;
        state m = 0, v = 0, vmax = 0;
        let d = g;
        if decoupled { w = w * (1 - lr * wd); } else { d = d + wd * w; }
        m = beta * m + (1 - beta) * d;
        v = 0.999 * v + 0.001 * d * d;
        let vv = if amsgrad { max(vmax, v) } else { v };
        vmax = max(vmax, v);
        w -= lr * m / (sqrt(vv) + 1e-8);
    }";

    fn messages(text: &str) -> Vec<String> {
        compile(text)
            .unwrap_err()
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn a_preset_lowers_to_the_rule_written_without_its_switch() {
        let text = format!(
            "{ADAM}
            /// Adam with decoupled decay.
            pub AdamW = Adam {{ hyper wd = 1e-2; let decoupled = true; }}
            pub ByHand {{
                hyper lr = 1e-3 where lr >= 0, wd = 1e-2 where wd >= 0, beta = 0.9 where 0 <= beta < 1,
                      amsgrad = false;
                state m = 0, v = 0, vmax = 0;
                let d = g;
                w = w * (1 - lr * wd);
                m = beta * m + (1 - beta) * d;
                v = 0.999 * v + 0.001 * d * d;
                let vv = if amsgrad {{ max(vmax, v) }} else {{ v }};
                vmax = max(vmax, v);
                w -= lr * m / (sqrt(vv) + 1e-8);
            }}"
        );
        let p = compile(&text).unwrap();
        let (adamw, by_hand) = (&p[1], &p[2]);
        assert_eq!(adamw.name.text, "AdamW");
        assert_eq!(adamw.docs, [" Adam with decoupled decay."]);
        assert_eq!(adamw.values, by_hand.values);
        assert_eq!(adamw.fingerprint, by_hand.fingerprint);
        let names: Vec<&str> = adamw.hypers.iter().map(|h| h.name.text.as_str()).collect();
        assert_eq!(names, ["lr", "wd", "beta", "amsgrad"]);
        // Its source compiles alone to the same program.
        let alone = compile(&adamw.source).unwrap();
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].fingerprint, adamw.fingerprint);
        assert_eq!(alone[0].name.text, "AdamW");
    }

    #[test]
    fn presets_of_presets_and_fixed_numbers() {
        let text = format!(
            "{ADAM}
            AdamW = Adam {{ let decoupled = true; }}
            Fixed = AdamW {{ hyper lr = 0.5; let beta = 0.5, amsgrad = true; }}"
        );
        let p = compile(&text).unwrap();
        let names: Vec<&str> = p[2].hypers.iter().map(|h| h.name.text.as_str()).collect();
        assert_eq!(names, ["lr", "wd"]);
        assert_eq!(
            compile(&p[2].source).unwrap()[0].fingerprint,
            p[2].fingerprint
        );
        assert!(p[2].source.contains("0.5 * m"), "{}", p[2].source);
    }

    #[test]
    fn mistakes_in_a_preset_are_reported_at_their_tokens() {
        let at = |text: &str, needle: &str| {
            let full = format!("{ADAM}\n{text}");
            let e = compile(&full).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            let offset = ADAM.len() + 1 + text.find(needle).unwrap();
            assert_eq!(e[0].span.start, offset, "{e:?}");
            e[0].message.clone()
        };
        let m = at("P = Adma { hyper lr = 1; }", "Adma");
        assert!(m.contains("did you mean `Adam`?"), "{m}");
        let m = at("P = Adam { hyper lrr = 1; }", "lrr");
        assert!(
            m.contains("has no hyperparameter `lrr`; did you mean `lr`?"),
            "{m}"
        );
        let m = at("P = Adam { let amsgrad = 1; }", "1;");
        assert!(m.contains("is a switch"), "{m}");
        let m = at("P = Adam { hyper lr = false; }", "false");
        assert!(m.contains("is a number"), "{m}");
        let m = at("P = Adam { hyper lr = 2 * 3; }", "2 * 3");
        assert!(m.contains("written out"), "{m}");
        let m = at("P = Adam { let beta = 1; }", "1;");
        assert!(m.contains("outside its range `0 <= beta < 1`"), "{m}");
        let m = at("P = Adam { hyper beta = 1; }", "1;");
        assert!(m.contains("outside its range"), "{m}");
        let m = at("P = Adam { hyper lr = 1; let lr = 2; }", "lr = 2");
        assert!(m.contains("set twice"), "{m}");
        // A base written below is not found.
        let e = messages("P = Q { } Q { w -= g; }");
        assert!(e[0].contains("no rule named `Q` is written above"), "{e:?}");
    }

    #[test]
    fn a_long_chain_of_presets_compiles_without_deep_recursion() {
        let mut text = String::from("P0 { hyper lr = 0.5; w -= lr * g; }\n");
        for k in 1..3000 {
            text += &format!("P{k} = P{} {{ hyper lr = {k}; }}\n", k - 1);
        }
        let p = compile(&text).unwrap();
        assert_eq!(p.len(), 3000);
        assert_eq!(
            p[2999].fingerprint,
            compile(&p[2999].source).unwrap()[0].fingerprint
        );
        // Alone, `expand` walks the chain without recursing too.
        let defs = crate::parse::parse_rules(&text).unwrap();
        let last = super::expand(&defs[2999], &defs[..2999]).unwrap();
        assert_eq!(last.hypers.len(), 1);
    }

    #[test]
    fn a_preset_of_a_rule_with_errors_adds_none_of_its_own() {
        let e = messages("R { w -= sgn(g); } P = R { }");
        assert_eq!(e, ["unknown function `sgn`; did you mean `sign`?"]);
    }
}
