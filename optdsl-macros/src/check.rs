//! Names, types, kinds and arity: every expression gets a type (number or
//! boolean) and a kind (constant, per-step scalar, per-element); everything
//! that makes no sense is reported, all errors together.

use crate::ast::{AssignOp, Decl, Expr, ExprKind, Name, RuleDef, Stmt, UnOp};
use proc_macro2::Span;
use std::collections::{HashMap, HashSet};

/// A value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A real number.
    Num,
    /// A boolean.
    Bool,
}

/// When a value is known: at compile time, once per step, or per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A literal, or arithmetic on literals.
    Const,
    /// Once per step: hyperparameters, `t`, scalar state, reductions.
    Scalar,
    /// Per element: `w`, `g`, state buffers and what uses them.
    Element,
}

/// The built-in functions: name, argument count, whether it is a reduction.
pub const FUNCTIONS: &[(&str, usize, bool)] = &[
    ("sqrt", 1, false),
    ("abs", 1, false),
    ("sign", 1, false),
    ("exp", 1, false),
    ("ln", 1, false),
    ("min", 2, false),
    ("max", 2, false),
    ("clamp", 3, false),
    ("float", 1, false),
    ("select", 3, false),
    ("sum", 1, true),
    ("mean", 1, true),
    ("norm", 1, true),
    ("max_abs", 1, true),
];

/// Other languages' names for the built-in functions.
const ALIASES: &[(&str, &str)] = &[
    ("sgn", "sign"),
    ("signum", "sign"),
    ("log", "ln"),
    ("fabs", "abs"),
    ("minimum", "min"),
    ("maximum", "max"),
    ("clip", "clamp"),
    ("where", "select"),
    ("amax", "max_abs"),
    ("l2norm", "norm"),
    ("average", "mean"),
];

/// Looks up a built-in function: (argument count, is a reduction).
pub fn function(name: &str) -> Option<(usize, bool)> {
    FUNCTIONS
        .iter()
        .find(|f| f.0 == name)
        .map(|&(_, n, r)| (n, r))
}

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binding {
    Param,
    Grad,
    Step,
    Hyper(Ty),
    Buffer,
    ScalarState,
    Input,
    Let(Ty, Kind),
}

/// Checks a rule; `Err` holds every error found, combined.
pub fn check(rule: &RuleDef) -> syn::Result<()> {
    let mut c = Checker::new(rule);
    c.run(rule);
    let mut errors = c.errors.into_iter();
    match errors.next() {
        None => Ok(()),
        Some(mut first) => {
            for e in errors {
                first.combine(e);
            }
            Err(first)
        }
    }
}

struct Checker {
    errors: Vec<syn::Error>,
    globals: HashMap<String, Binding>,
    scopes: Vec<HashMap<String, Binding>>,
    all_lets: HashSet<String>,
    /// How many per-element conditions enclose the current statement.
    element_conditions: usize,
    /// Whether the current expression is inside a reduction's argument.
    in_reduction: bool,
}

fn collect_lets(stmts: &[Stmt], out: &mut HashSet<String>) {
    for s in stmts {
        match s {
            Stmt::Let { name, .. } => {
                out.insert(name.text.clone());
            }
            Stmt::If {
                then, otherwise, ..
            } => {
                collect_lets(then, out);
                collect_lets(otherwise, out);
            }
            Stmt::Assign { .. } => {}
        }
    }
}

/// Levenshtein distance between two short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, c)| (d, c.len()))
        .map(|(_, c)| c)
}

impl Checker {
    fn new(rule: &RuleDef) -> Self {
        let mut globals = HashMap::new();
        globals.insert("w".to_string(), Binding::Param);
        globals.insert("g".to_string(), Binding::Grad);
        globals.insert("t".to_string(), Binding::Step);
        let mut all_lets = HashSet::new();
        collect_lets(&rule.body, &mut all_lets);
        Checker {
            errors: Vec::new(),
            globals,
            scopes: vec![HashMap::new()],
            all_lets,
            element_conditions: 0,
            in_reduction: false,
        }
    }

    fn error(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, msg));
    }

    fn lookup(&self, name: &str) -> Option<Binding> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).copied())
            .or_else(|| self.globals.get(name).copied())
    }

    fn visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.globals.keys().cloned().collect();
        for s in &self.scopes {
            names.extend(s.keys().cloned());
        }
        names.sort();
        names
    }

    /// Reports `name` if it is already taken; returns whether it is free.
    fn declare_ok(&mut self, name: &Name) -> bool {
        let n = name.text.as_str();
        if matches!(n, "w" | "g" | "t") {
            self.error(
                name.span,
                format!("`{n}` is built in (w: the parameter, g: its gradient, t: the step) and cannot be declared"),
            );
            return false;
        }
        if function(n).is_some() {
            self.error(
                name.span,
                format!("`{n}` is a built-in function and cannot name a value"),
            );
            return false;
        }
        if self.lookup(n).is_some() {
            self.error(name.span, format!("`{n}` is already defined"));
            return false;
        }
        true
    }

    fn run(&mut self, rule: &RuleDef) {
        if syn::parse_str::<syn::Ident>(&rule.name.text).is_err() {
            let n = &rule.name.text;
            self.error(
                rule.name.span,
                format!("`{n}` is a Rust keyword and cannot name a rule"),
            );
        }
        for h in &rule.hypers {
            self.hyper(h);
        }
        for i in &rule.inputs {
            if self.declare_ok(i) {
                self.globals.insert(i.text.clone(), Binding::Input);
            }
        }
        for b in &rule.buffers {
            self.state_decl(b, Binding::Buffer);
        }
        for s in &rule.scalars {
            self.state_decl(s, Binding::ScalarState);
        }
        self.stmts(&rule.body);
    }

    fn hyper(&mut self, h: &Decl) {
        let free = self.declare_ok(&h.name);
        if syn::parse_str::<syn::Ident>(&h.name.text).is_err() {
            let n = &h.name.text;
            self.error(
                h.name.span,
                format!(
                    "`{n}` is a Rust keyword and cannot name a hyperparameter (it becomes a field)"
                ),
            );
        }
        let found = self.expr(&h.value);
        let ty = match found {
            Some((ty, Kind::Const)) => ty,
            Some(_) => {
                self.error(h.value.span, format!("the default of hyperparameter `{}` must be a constant: a number or `true`/`false`", h.name.text));
                Ty::Num
            }
            None => Ty::Num,
        };
        if free {
            self.globals.insert(h.name.text.clone(), Binding::Hyper(ty));
        }
    }

    fn state_decl(&mut self, d: &Decl, binding: Binding) {
        let free = self.declare_ok(&d.name);
        // The initial value sees constants, hyperparameters and, for buffers, w and g.
        let mut visible: HashMap<String, Binding> = self
            .globals
            .iter()
            .filter(|(_, b)| matches!(b, Binding::Hyper(_)))
            .map(|(k, b)| (k.clone(), *b))
            .collect();
        if binding == Binding::Buffer {
            visible.insert("w".into(), Binding::Param);
            visible.insert("g".into(), Binding::Grad);
        }
        let what = if binding == Binding::Buffer {
            "constants, hyperparameters, `w` and `g`"
        } else {
            "constants and hyperparameters"
        };
        let mut names = Vec::new();
        names_in(&d.value, &mut names);
        let mut misplaced = false;
        for (n, span) in names {
            if self.lookup(&n).is_some() && !visible.contains_key(&n) {
                misplaced = true;
                self.error(
                    span,
                    format!(
                        "the initial value of `{}` may use only {what}, not `{n}`",
                        d.name.text
                    ),
                );
            }
        }
        let found = if misplaced { None } else { self.expr(&d.value) };
        if let Some((Ty::Bool, _)) = found {
            self.error(
                d.value.span,
                format!(
                    "the initial value of `{}` must be a number, not a boolean",
                    d.name.text
                ),
            );
        }
        if free {
            self.globals.insert(d.name.text.clone(), binding);
        }
    }

    fn stmts(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Let { name, value } => {
                let found = self.expr(value);
                if self.declare_ok(name) {
                    let (ty, kind) = found.unwrap_or((Ty::Num, Kind::Element));
                    self.scopes
                        .last_mut()
                        .expect("a scope")
                        .insert(name.text.clone(), Binding::Let(ty, kind));
                }
            }
            Stmt::Assign { target, op, value } => self.assign(target, *op, value),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let found = self.expr(cond);
                let element = match found {
                    Some((Ty::Bool, k)) => k == Kind::Element,
                    Some((Ty::Num, _)) => {
                        self.error(cond.span, "the condition of `if` must be a boolean (a comparison such as `x > 0`)");
                        false
                    }
                    None => false,
                };
                self.element_conditions += usize::from(element);
                for branch in [then, otherwise] {
                    self.scopes.push(HashMap::new());
                    self.stmts(branch);
                    self.scopes.pop();
                }
                self.element_conditions -= usize::from(element);
            }
        }
    }

    fn assign(&mut self, target: &Name, op: AssignOp, value: &Expr) {
        let found = self.expr(value);
        let n = target.text.as_str();
        let Some(binding) = self.lookup(n) else {
            self.unknown_name(target);
            return;
        };
        let value_ty = found.map(|f| f.0);
        let value_kind = found.map(|f| f.1).unwrap_or(Kind::Scalar);
        match binding {
            Binding::Grad => self.error(target.span, "cannot assign to `g`: the gradient is read-only; use a `let` for a modified gradient"),
            Binding::Step => self.error(target.span, "cannot assign to `t`: the step count is kept by the runtime"),
            Binding::Input => self.error(target.span, format!("cannot assign to input `{n}`: inputs are read-only; use a `let`")),
            Binding::Hyper(_) => self.error(target.span, format!("cannot assign to hyperparameter `{n}`: hyperparameters change between steps only (set_hyper, a schedule); use a `let` or a `scalar` state")),
            Binding::Param | Binding::Buffer | Binding::ScalarState => {
                if value_ty == Some(Ty::Bool) {
                    self.error(value.span, format!("`{n}` holds numbers; this value is a boolean"));
                }
                if binding == Binding::ScalarState && (value_kind == Kind::Element || self.element_conditions > 0) {
                    self.error(target.span, format!("a per-element value assigned to scalar state `{n}`: reduce it first (sum, mean, norm, max_abs) or declare `{n}` with `state`"));
                }
            }
            Binding::Let(ty, kind) => {
                if value_ty.is_some_and(|v| v != ty) {
                    self.error(value.span, format!("`{n}` holds {}; this value is {}", ty_name(ty), ty_name(value_ty.unwrap_or(Ty::Num))));
                }
                if ty == Ty::Bool && op != AssignOp::Set {
                    self.error(target.span, format!("`{n}` is a boolean; compound assignment needs a number"));
                }
                let new_kind = if self.element_conditions > 0 { Kind::Element } else { kind.max(value_kind) };
                for scope in self.scopes.iter_mut().rev() {
                    if let Some(b) = scope.get_mut(n) {
                        *b = Binding::Let(ty, new_kind);
                        break;
                    }
                }
            }
        }
    }

    fn unknown_name(&mut self, name: &Name) {
        let n = name.text.as_str();
        if self.all_lets.contains(n) {
            self.error(
                name.span,
                format!("`{n}` is used before its `let` (or outside the block that defines it)"),
            );
            return;
        }
        if function(n).is_some() {
            self.error(
                name.span,
                format!("`{n}` is a function: call it, as in `{n}(x)`"),
            );
            return;
        }
        let names = self.visible_names();
        let hint = suggest(n, names.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        self.error(name.span, format!("unknown name `{n}`{hint}"));
    }

    fn expr(&mut self, e: &Expr) -> Option<(Ty, Kind)> {
        match &e.kind {
            ExprKind::Num(_) => Some((Ty::Num, Kind::Const)),
            ExprKind::Bool(_) => Some((Ty::Bool, Kind::Const)),
            ExprKind::Var(n) => match self.lookup(n) {
                Some(Binding::Param | Binding::Grad | Binding::Buffer | Binding::Input) => {
                    Some((Ty::Num, Kind::Element))
                }
                Some(Binding::Step | Binding::ScalarState) => Some((Ty::Num, Kind::Scalar)),
                Some(Binding::Hyper(ty)) => Some((ty, Kind::Scalar)),
                Some(Binding::Let(ty, kind)) => Some((ty, kind)),
                None => {
                    self.unknown_name(&Name {
                        text: n.clone(),
                        span: e.span,
                    });
                    None
                }
            },
            ExprKind::Unary(op, x) => {
                let (ty, kind) = self.expr(x)?;
                let want = if *op == UnOp::Neg { Ty::Num } else { Ty::Bool };
                if ty != want {
                    let sym = if *op == UnOp::Neg { "-" } else { "!" };
                    self.error(
                        e.span,
                        format!("`{sym}` needs {}, found {}", ty_name(want), ty_name(ty)),
                    );
                    return None;
                }
                Some((ty, kind))
            }
            ExprKind::Binary(op, a, b) => {
                let fa = self.expr(a);
                let fb = self.expr(b);
                let ((ta, ka), (tb, kb)) = (fa?, fb?);
                let want = if op.is_logic() { Ty::Bool } else { Ty::Num };
                for (t, x) in [(ta, a), (tb, b)] {
                    if t != want {
                        self.error(
                            x.span,
                            format!(
                                "`{}` needs {} on both sides, found {}",
                                op.symbol(),
                                ty_name(want),
                                ty_name(t)
                            ),
                        );
                        return None;
                    }
                }
                let ty = if op.is_comparison() || op.is_logic() {
                    Ty::Bool
                } else {
                    Ty::Num
                };
                Some((ty, ka.max(kb)))
            }
            ExprKind::If(c, a, b) => self.select(e.span, c, a, b),
            ExprKind::Call(name, args) => self.call(name, args),
        }
    }

    fn select(&mut self, span: Span, c: &Expr, a: &Expr, b: &Expr) -> Option<(Ty, Kind)> {
        let fc = self.expr(c);
        let fa = self.expr(a);
        let fb = self.expr(b);
        let ((tc, kc), (ta, ka), (tb, kb)) = (fc?, fa?, fb?);
        if tc != Ty::Bool {
            self.error(
                c.span,
                "a condition must be a boolean (a comparison such as `x > 0`)",
            );
            return None;
        }
        if ta != tb {
            self.error(
                span,
                format!(
                    "the two branches differ: {} and {}",
                    ty_name(ta),
                    ty_name(tb)
                ),
            );
            return None;
        }
        Some((ta, kc.max(ka).max(kb)))
    }

    fn call(&mut self, name: &Name, args: &[Expr]) -> Option<(Ty, Kind)> {
        let n = name.text.as_str();
        let Some((arity, reduction)) = function(n) else {
            for a in args {
                self.expr(a);
            }
            let alias = ALIASES.iter().find(|a| a.0 == n).map(|a| a.1);
            let guess = alias.or_else(|| suggest(n, FUNCTIONS.iter().map(|f| f.0)));
            let hint = guess
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            let what = if self.lookup(n).is_some() {
                format!("`{n}` is not a function")
            } else {
                format!("unknown function `{n}`")
            };
            self.error(name.span, format!("{what}{hint}"));
            return None;
        };
        if args.len() != arity {
            for a in args {
                self.expr(a);
            }
            let s = if arity == 1 { "" } else { "s" };
            self.error(
                name.span,
                format!("`{n}` takes {arity} argument{s}, found {}", args.len()),
            );
            return None;
        }
        if n == "select" {
            return self.select(name.span, &args[0], &args[1], &args[2]);
        }
        if reduction {
            if self.in_reduction {
                self.error(name.span, format!("a reduction inside a reduction: `{n}` is inside another reduction's argument; compute the inner one with a `let` first"));
                return None;
            }
            self.in_reduction = true;
            let found = self.expr(&args[0]);
            self.in_reduction = false;
            let (ty, kind) = found?;
            if ty != Ty::Num {
                self.error(
                    args[0].span,
                    format!("`{n}` reduces numbers, found a boolean"),
                );
                return None;
            }
            if kind != Kind::Element {
                self.error(args[0].span, format!("`{n}` reduces a per-element expression over the tensor; this argument is the same for every element"));
                return None;
            }
            return Some((Ty::Num, Kind::Scalar));
        }
        let mut kind = Kind::Const;
        let mut ok = true;
        for a in args {
            match self.expr(a) {
                Some((Ty::Num, k)) => kind = kind.max(k),
                Some((Ty::Bool, _)) => {
                    self.error(a.span, format!("`{n}` takes numbers, found a boolean"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some((Ty::Num, kind))
    }
}

/// Every name an expression reads, with its span.
fn names_in(e: &Expr, out: &mut Vec<(String, Span)>) {
    match &e.kind {
        ExprKind::Var(n) => out.push((n.clone(), e.span)),
        ExprKind::Num(_) | ExprKind::Bool(_) => {}
        ExprKind::Unary(_, x) => names_in(x, out),
        ExprKind::Binary(_, a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::If(c, a, b) => {
            names_in(c, out);
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|a| names_in(a, out)),
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Num => "a number",
        Ty::Bool => "a boolean",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_rules;
    use quote::quote;

    fn errors(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let rules = parse_rules(tokens).expect("parses");
        match check(&rules[0]) {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_rule_has_no_errors() {
        let e = errors(
            quote!(R { hyper lr = 1e-3, b = 0.9; state m = 0; scalar s = 0;
            m = b * m + (1 - b) * g; s = b * s + norm(g)^2; w -= lr * m / (1 - b^t); }),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn unknown_function_suggests_the_close_one() {
        let e = errors(quote!(R { hyper lr = 0.01; w -= lr * sgn(g); }));
        assert_eq!(e, vec!["unknown function `sgn`; did you mean `sign`?"]);
        let e = errors(quote!(R { hyper lr = 0.01; w -= lr * sqr(g); }));
        assert_eq!(e, vec!["unknown function `sqr`; did you mean `sqrt`?"]);
    }

    #[test]
    fn every_error_is_reported() {
        let e = errors(quote!(R { hyper lr = 0.01; g = 1; t = 2; lr = 3; w -= lr * gg; }));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[3].contains("did you mean `g`?"), "{e:?}");
    }

    #[test]
    fn per_element_value_into_scalar_state_is_rejected() {
        let e = errors(quote!(R { scalar s = 0; s = g; }));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("a per-element value assigned to scalar state `s`"),
            "{e:?}"
        );
        let e = errors(quote!(R { scalar s = 0; if g > 0 { s = 1; } }));
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn nested_reduction_and_arity_and_order() {
        let e =
            errors(quote!(R { let a = norm(g * sum(g)); w -= clamp(g, 1); w -= x; let x = 1; }));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("a reduction inside a reduction"));
        assert!(e[1].starts_with("`clamp` takes 3 arguments, found 2"));
        assert!(e[2].starts_with("`x` is used before its `let`"));
    }

    #[test]
    fn duplicates_and_kinds() {
        let e = errors(
            quote!(R { hyper lr = 1, lr = 2; state m = t; let w = 1; w -= if g { 1 } else { 2 }; }),
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("already defined"));
        assert!(e[1].contains("initial value of `m`"));
        assert!(e[2].contains("is built in"));
        assert!(e[3].contains("must be a boolean"));
    }
}
