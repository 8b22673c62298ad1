//! A syntax tree written back as rule text: what a preset's expanded rule
//! is stored as (its `source`), so that every rule, preset or not, has a text
//! that compiles alone to the same program.
//!
//! Operators get parentheses only where the grammar needs them (by the
//! precedence and associativity of `parse.rs`'s Pratt table), numbers are
//! written in Rust's shortest form that reads back to the same `f64`, and
//! ranges in the order `lo <= name < hi`.

use crate::ast::{AssignOp, BinOp, Bound, Decl, Expr, ExprKind, RangeDecl, RuleDef, Stmt, UnOp};
use std::fmt::Write;

/// The rule as text: doc lines, visibility, name and items, one per line.
///
/// ```
/// let defs = optdsl_lang::parse::parse_rules(
///     "/// Descent.\npub R { hyper lr = 0.1 where lr >= 0; w -= lr * (g + 1); }",
/// )
/// .unwrap();
/// let text = optdsl_lang::print::rule(&defs[0]);
/// assert!(text.contains("hyper lr = 0.1 where 0 <= lr;"));
/// assert!(text.contains("w -= lr * (g + 1);"));
/// ```
pub fn rule(def: &RuleDef) -> String {
    let mut out = String::new();
    for doc in &def.docs {
        for line in doc.split('\n') {
            let _ = writeln!(out, "///{line}");
        }
    }
    if let Some(vis) = &def.vis {
        out += vis;
        out.push(' ');
    }
    let _ = writeln!(out, "{} {{", def.name.text);
    decls(&mut out, "hyper", &def.hypers, 1);
    decls(&mut out, "state", &def.buffers, 1);
    decls(&mut out, "scalar", &def.scalars, 1);
    if !def.inputs.is_empty() {
        let items: Vec<String> = def
            .inputs
            .iter()
            .zip(def.input_roles.iter().chain(std::iter::repeat(&None)))
            .map(|(n, role)| match role {
                Some(r) => format!("{}: {}", n.text, r.text),
                None => n.text.clone(),
            })
            .collect();
        let _ = writeln!(out, "    input {};", items.join(", "));
    }
    stmts(&mut out, &def.body, 1);
    out += "}\n";
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

fn decls(out: &mut String, keyword: &str, list: &[Decl], depth: usize) {
    if list.is_empty() {
        return;
    }
    indent(out, depth);
    let items: Vec<String> = list.iter().map(decl).collect();
    let _ = writeln!(out, "{keyword} {};", items.join(", "));
}

fn decl(d: &Decl) -> String {
    let mut s = d.name.text.clone();
    if let Some(storage) = &d.storage {
        let _ = write!(s, ": {}", storage.text);
    } else if let Some(shape) = &d.shape {
        let dims: Vec<&str> = shape.dims.iter().map(|n| n.text.as_str()).collect();
        let _ = write!(s, ": [{}]", dims.join(", "));
    }
    let _ = write!(s, " = {}", expr(&d.value));
    if let Some(r) = &d.range {
        s += &range(r);
    }
    s
}

fn range(r: &RangeDecl) -> String {
    let bound = |b: &Bound| {
        if b.value == f64::INFINITY {
            "inf".to_string()
        } else if b.value == f64::NEG_INFINITY {
            "-inf".to_string()
        } else {
            number(b.value)
        }
    };
    let op = |b: &Bound| if b.inclusive { "<=" } else { "<" };
    let mut s = String::from(" where ");
    if let Some(lo) = &r.lo {
        let _ = write!(s, "{} {} ", bound(lo), op(lo));
    }
    s += &r.name.text;
    if let Some(hi) = &r.hi {
        let _ = write!(s, " {} {}", op(hi), bound(hi));
    }
    s
}

fn stmts(out: &mut String, list: &[Stmt], depth: usize) {
    for s in list {
        stmt(out, s, depth);
    }
}

fn stmt(out: &mut String, s: &Stmt, depth: usize) {
    match s {
        Stmt::Let { name, value } => {
            indent(out, depth);
            let _ = writeln!(out, "let {} = {};", name.text, expr(value));
        }
        Stmt::Assign { target, op, value } => {
            indent(out, depth);
            let op = match op {
                AssignOp::Set => "=",
                AssignOp::Add => "+=",
                AssignOp::Sub => "-=",
                AssignOp::Mul => "*=",
                AssignOp::Div => "/=",
            };
            let _ = writeln!(out, "{} {op} {};", target.text, expr(value));
        }
        Stmt::If { .. } => {
            indent(out, depth);
            if_chain(out, s, depth);
            out.push('\n');
        }
        Stmt::Repeat { count, body } => {
            indent(out, depth);
            let _ = writeln!(out, "repeat {} {{", expr(count));
            stmts(out, body, depth + 1);
            indent(out, depth);
            out.push_str("}\n");
        }
        Stmt::State(list) => decls(out, "state", list, depth),
    }
}

/// `if c { .. } else if d { .. } else { .. }`, without the final newline.
fn if_chain(out: &mut String, s: &Stmt, depth: usize) {
    let Stmt::If {
        cond,
        then,
        otherwise,
    } = s
    else {
        return;
    };
    let _ = writeln!(out, "if {} {{", expr(cond));
    stmts(out, then, depth + 1);
    indent(out, depth);
    out.push('}');
    match otherwise.as_slice() {
        [] => {}
        [next @ Stmt::If { .. }] => {
            out.push_str(" else ");
            if_chain(out, next, depth);
        }
        list => {
            out.push_str(" else {\n");
            stmts(out, list, depth + 1);
            indent(out, depth);
            out.push('}');
        }
    }
}

/// A number as text that reads back to the same `f64`: a whole number
/// below 2^53 as an integer (`0`, `100`), any other as Rust's `{:?}` writes
/// it, the shortest such text (`0.9`, `1e-8`), which the grammar accepts.
fn number(x: f64) -> String {
    if x.is_sign_negative() {
        return format!("-{}", number(-x));
    }
    if x.fract() == 0.0 && x < 9_007_199_254_740_992.0 {
        format!("{}", x as u64)
    } else {
        format!("{x:?}")
    }
}

/// How tightly an expression binds, as the Pratt table in `parse.rs` orders
/// the operators (higher binds tighter).
fn level(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, ..) => match op {
            BinOp::Or => 1,
            BinOp::And => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div => 5,
            BinOp::Pow => 7,
        },
        ExprKind::MatMul(..) => 5,
        ExprKind::Unary(..) => 6,
        ExprKind::Transpose(_) => 8,
        // A negative literal (a preset's value) is written with its `-`.
        ExprKind::Num(x) if x.is_sign_negative() => 6,
        _ => 9,
    }
}

fn wrapped(e: &Expr, parens: bool) -> String {
    if parens {
        format!("({})", expr(e))
    } else {
        expr(e)
    }
}

/// An expression as text.
pub fn expr(e: &Expr) -> String {
    let me = level(e);
    match &e.kind {
        ExprKind::Num(x) => number(*x),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Var(name) => name.clone(),
        ExprKind::Unary(op, x) => {
            let sign = match op {
                UnOp::Neg => "-",
                UnOp::Not => "!",
            };
            // `-(-x)`, not `--x`.
            format!("{sign}{}", wrapped(x, level(x) <= me))
        }
        ExprKind::Binary(op, _, a, b) => {
            // `^` groups to the right, the others to the left.
            let (left, right) = if *op == BinOp::Pow {
                (level(a) <= me, level(b) < me)
            } else {
                (level(a) < me, level(b) <= me)
            };
            format!("{} {} {}", wrapped(a, left), op.symbol(), wrapped(b, right))
        }
        ExprKind::MatMul(_, a, b) => {
            format!(
                "{} @ {}",
                wrapped(a, level(a) < me),
                wrapped(b, level(b) <= me)
            )
        }
        ExprKind::Transpose(x) => format!("{}^T", wrapped(x, level(x) < me)),
        ExprKind::Call(name, args) => {
            let args: Vec<String> = args.iter().map(expr).collect();
            format!("{}({})", name.text, args.join(", "))
        }
        ExprKind::If(c, a, b) => {
            let otherwise = match &b.kind {
                ExprKind::If(..) => expr(b),
                _ => format!("{{ {} }}", expr(b)),
            };
            format!("if {} {{ {} }} else {otherwise}", expr(c), expr(a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The program of each rule in `text`, by name.
    fn compiled(text: &str) -> Vec<crate::Program> {
        crate::compile(text).unwrap_or_else(|e| panic!("{text}\n{e:?}"))
    }

    #[test]
    fn written_rules_compile_to_the_same_program() {
        let text = "/// Adam.\n/// Second line.\npub(crate) R {
            hyper lr = 1e-3 where lr >= 0, b1 = 0.9 where 0 <= b1 < 1, b2 = 0.999 where 0 <= b2 <= 1,
                  lo = -1 where -inf < lo, flag = false;
            state m: q8 = 0, v = 0, gp = g;
            scalar s = 1;
            input h: curvature, x;
            m = b1 * m + (1 - b1) * g;
            v = b2*v + (1-b2)*g*g;
            let a = -g^2 + (-g)^2 - 2^-g - (1 - (2 - g)) / (g / (g * 3));
            let c = if flag && !(t > 1 || g < 0) { a } else if g == 0 { 1 } else { -a };
            s *= b1;
            if flag { gp = g; } else if g > 0 { v = v + h; } else { m -= x; }
            w -= lr * select(g < 0, s, -s) * m / (sqrt(v / (1 - b2^t)) + 1e-8) + c + norm(m) - lo;
        }";
        let before = compiled(text);
        let printed = rule(&crate::parse::parse_rules(text).unwrap()[0]);
        let after = compiled(&printed);
        assert_eq!(before[0].values, after[0].values, "{printed}");
        assert_eq!(before[0].fingerprint, after[0].fingerprint);
        assert_eq!(before[0].docs, after[0].docs);
        assert_eq!(before[0].vis, after[0].vis);
        assert_eq!(before[0].input_roles, after[0].input_roles);
        assert_eq!(before[0].storage, after[0].storage);
        assert!(printed.contains("where -inf < lo"), "{printed}");
    }

    #[test]
    fn shapes_and_repeats_are_written_back() {
        let text = "R { hyper ns_steps = 5 where 0 <= ns_steps <= 10; state r: [rows] = 0, c: [cols] = 0;
            if matrix { state l: [rows, rows] = 0; l = l + g @ g^T; repeat ns_steps { l = 0.5 * l; } }
            r = 0.9 * r + row_mean(g * g); c = 0.9 * c + col_mean(g * g);
            w -= g / sqrt(r * c + 1e-30); }";
        let before = compiled(text);
        let printed = rule(&crate::parse::parse_rules(text).unwrap()[0]);
        let after = compiled(&printed);
        assert_eq!(before[0].fingerprint, after[0].fingerprint, "{printed}");
    }

    /// Random expressions over a few names and every operator.
    fn arb_expr() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("g".to_string()),
            Just("w".to_string()),
            Just("lr".to_string()),
            (0u32..1000).prop_map(|n| format!("{}", n as f64 / 8.0)),
        ];
        leaf.prop_recursive(5, 40, 3, |inner| {
            prop_oneof![
                (inner.clone(), 0usize..7, inner.clone()).prop_map(|(a, op, b)| {
                    let op = ["+", "-", "*", "/", "^", "+", "*"][op];
                    format!("{a} {op} {b}")
                }),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) * -({b})")),
                inner.clone().prop_map(|a| format!("-{a}")),
                inner.clone().prop_map(|a| format!("sqrt({a})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, a, b)| format!("if {c} > {a} {{ {a} }} else {{ {b} }}")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) ^ ({b})")),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Writing an expression back and reading it again gives the same
        /// program: every parenthesis the grammar needs is kept.
        #[test]
        fn printed_expressions_read_back_the_same(e in arb_expr()) {
            let text = format!("R {{ hyper lr = 0.1; w -= {e}; }}");
            let Ok(before) = crate::compile(&text) else { return Ok(()) };
            let printed = rule(&crate::parse::parse_rules(&text).unwrap()[0]);
            let after = crate::compile(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e:?}")))?;
            prop_assert_eq!(&before[0].values, &after[0].values, "{}", printed);
        }
    }
}
