//! Semantic analysis: names, types, kinds and arity. Every name is resolved
//! once, every expression gets a type (number or boolean) and a kind
//! (constant, per-step scalar, per-element); the result is a typed tree, or
//! every error found, together.

use crate::ast::{
    AssignOp, BinOp, Decl, Expr, ExprKind, Name, Range, RangeDecl, RuleDef, Stmt, UnOp,
};
use crate::diag::Diagnostic;
use crate::functions::{Callee, Draw, ALIASES, CALLEES};
use crate::role::Role;
use crate::span::Span;
use crate::storage::{Storage, STORAGE_NAMES};
use crate::typed::{
    Default, Dim, Kind, Shape, TExpr, THyper, TNode, TState, TStmt, Ty, TypedRule, Var,
};
use std::collections::{HashMap, HashSet};

/// Rust's keywords (strict and reserved): a rule becomes a type and its
/// hyperparameters fields, so these cannot name either.
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "_",
];

/// Rust's primitive types: a rule of that name would shadow the type in the
/// code generated for it.
const PRIMITIVE_TYPES: &[&str] = &[
    "bool", "char", "str", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16",
    "u32", "u64", "u128", "usize",
];

/// Whether `name` is a Rust keyword.
pub fn is_rust_keyword(name: &str) -> bool {
    RUST_KEYWORDS.contains(&name)
}

/// Whether `name` can name a generated type: not a keyword, not a
/// primitive type, and an identifier.
pub fn can_name_a_type(name: &str) -> bool {
    !is_rust_keyword(name)
        && !PRIMITIVE_TYPES.contains(&name)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// What a name is bound to while checking.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Binding {
    Var(Var),
    Hyper(usize, Ty),
    Let(usize, Ty, Kind, Shape),
}

/// Checks a rule; `Err` holds every error found, in text order.
pub fn check(rule: &RuleDef) -> Result<TypedRule, Vec<Diagnostic>> {
    let mut c = Checker::new(rule);
    let out = c.run(rule);
    if c.errors.is_empty() {
        Ok(out)
    } else {
        Err(c.errors)
    }
}

/// Checks that the rules of one file or macro call have distinct names.
pub fn check_names(rules: &[RuleDef]) -> Vec<Diagnostic> {
    let mut seen: HashSet<&str> = HashSet::new();
    rules
        .iter()
        .filter(|r| !seen.insert(r.name.text.as_str()))
        .map(|r| {
            Diagnostic::new(
                r.name.span,
                format!(
                    "a rule named `{}` is already defined above; give each rule its own name",
                    r.name.text
                ),
            )
        })
        .collect()
}

struct Checker {
    errors: Vec<Diagnostic>,
    globals: HashMap<String, Binding>,
    scopes: Vec<HashMap<String, Binding>>,
    all_lets: HashSet<String>,
    lets: usize,
    /// How many per-element conditions enclose the current statement.
    element_conditions: usize,
    /// Whether the current expression is inside a reduction's argument.
    in_reduction: bool,
    /// Hyperparameter names, for messages.
    hyper_names: Vec<String>,
    /// Their declared ranges.
    hyper_ranges: Vec<Option<Range>>,
    /// Whether any statement assigns `w` or a state.
    updates: bool,
    /// Random draws so far (the next one's stream).
    draws: u32,
    /// Whether the rule uses shapes (see [`crate::shaped::uses_shapes`]).
    shaped: bool,
    /// The shape of each state buffer declared so far.
    buffer_shapes: Vec<Shape>,
    /// The conditions of the `if`s around the current statement, each with
    /// the branch taken (`true`: then).
    conds: Vec<(TExpr, bool)>,
    /// Buffers declared inside blocks, in order (appended after the rule's
    /// own).
    nested: Vec<TState>,
    /// Whether a shape feature is used outside `if matrix { ... }`.
    needs_matrix: bool,
    /// How many `if matrix` branches enclose the current statement.
    matrix_branches: usize,
    /// How many `repeat`s enclose the current statement.
    repeats: usize,
    /// The `let`s whose value had an error: their uses report nothing more.
    poisoned: HashSet<usize>,
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
            Stmt::Repeat { body, .. } => collect_lets(body, out),
            Stmt::Assign { .. } | Stmt::State(_) => {}
        }
    }
}

/// The optimal-string-alignment distance between `a` and `b`: the fewest
/// insertions, deletions, substitutions and swaps of two neighbours (`adma`
/// is one swap from `adam`). The project's one edit distance.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Num => "a number",
        Ty::Bool => "a boolean",
    }
}

/// Evaluates a constant expression (a hyperparameter's default).
fn constant(e: &TExpr) -> Option<Default> {
    Some(match &e.node {
        TNode::Num(x) => Default::Num(*x),
        TNode::Bool(b) => Default::Bool(*b),
        TNode::Unary(UnOp::Neg, x) => match constant(x)? {
            Default::Num(v) => Default::Num(-v),
            d => d,
        },
        TNode::Unary(UnOp::Not, x) => match constant(x)? {
            Default::Bool(b) => Default::Bool(!b),
            d => d,
        },
        TNode::Binary(op, a, b) => match (constant(a)?, constant(b)?) {
            (Default::Num(a), Default::Num(b)) if op.is_arith() => Default::Num(op.arith(a, b)),
            (Default::Num(a), Default::Num(b)) => Default::Bool(op.compare(a, b)),
            (Default::Bool(a), Default::Bool(b)) => Default::Bool(op.logic(a, b)),
            _ => return None,
        },
        TNode::Call(f, args) => {
            let v: Vec<f64> = args
                .iter()
                .map(|a| match constant(a) {
                    Some(Default::Num(x)) => Some(x),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
            Default::Num(f.apply_scalar::<f64>(at(0), at(1), at(2)))
        }
        TNode::Select(c, a, b) => match constant(c)? {
            Default::Bool(true) => constant(a)?,
            Default::Bool(false) => constant(b)?,
            _ => return None,
        },
        TNode::Var(_)
        | TNode::Reduce(..)
        | TNode::Draw(..)
        | TNode::Axis(..)
        | TNode::MatMul(..)
        | TNode::Transpose(_)
        | TNode::Eye(_) => return None,
    })
}

impl Checker {
    fn new(rule: &RuleDef) -> Self {
        let mut globals = HashMap::new();
        globals.insert("w".to_string(), Binding::Var(Var::Param));
        globals.insert("g".to_string(), Binding::Var(Var::Grad));
        globals.insert("t".to_string(), Binding::Var(Var::Step));
        let shaped = crate::shaped::uses_shapes(rule);
        if shaped {
            for (n, v) in [
                ("rows", Var::Rows),
                ("cols", Var::Cols),
                ("numel", Var::Numel),
                ("matrix", Var::Matrix),
                ("epsilon", Var::Epsilon),
            ] {
                globals.insert(n.to_string(), Binding::Var(v));
            }
        }
        let mut all_lets = HashSet::new();
        collect_lets(&rule.body, &mut all_lets);
        Checker {
            errors: Vec::new(),
            globals,
            scopes: vec![HashMap::new()],
            all_lets,
            lets: 0,
            element_conditions: 0,
            in_reduction: false,
            hyper_names: Vec::new(),
            hyper_ranges: Vec::new(),
            updates: false,
            draws: 0,
            shaped,
            buffer_shapes: Vec::new(),
            conds: Vec::new(),
            nested: Vec::new(),
            needs_matrix: false,
            matrix_branches: 0,
            repeats: 0,
            poisoned: HashSet::new(),
        }
    }

    fn error(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(span, msg));
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
        if Callee::lookup(n).is_some() {
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

    fn run(&mut self, rule: &RuleDef) -> TypedRule {
        let n = rule.name.text.as_str();
        if is_rust_keyword(n) {
            self.error(
                rule.name.span,
                format!("`{n}` is a Rust keyword and cannot name a rule"),
            );
        } else if PRIMITIVE_TYPES.contains(&n) {
            self.error(
                rule.name.span,
                format!("`{n}` is a Rust type and cannot name a rule; use another name, such as `{}Rule`", capitalized(n)),
            );
        }
        let hypers: Vec<THyper> = rule.hypers.iter().filter_map(|h| self.hyper(h)).collect();
        for (i, name) in rule.inputs.iter().enumerate() {
            if self.declare_ok(name) {
                self.globals
                    .insert(name.text.clone(), Binding::Var(Var::Input(i)));
            }
        }
        let input_roles = rule
            .input_roles
            .iter()
            .map(|role| {
                let role = role.as_ref()?;
                let found = Role::parse(&role.text);
                if found.is_none() {
                    let names = Role::ALL.map(Role::name);
                    let hint = match suggest(&role.text, names) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    self.error(
                        role.span,
                        format!(
                            "unknown input role `{}`; {hint}roles: {}",
                            role.text,
                            names.join(", ")
                        ),
                    );
                }
                found
            })
            .collect();
        let mut buffers = Vec::new();
        for (i, b) in rule.buffers.iter().enumerate() {
            if let Some(s) = self.state_decl(b, Var::Buffer(i)) {
                buffers.push(s);
            }
        }
        let mut scalars = Vec::new();
        for (i, s) in rule.scalars.iter().enumerate() {
            if let Some(s) = self.state_decl(s, Var::Scalar(i)) {
                scalars.push(s);
            }
        }
        let body = self.stmts(&rule.body);
        buffers.append(&mut self.nested);
        if !self.updates && self.errors.is_empty() {
            self.error(
                rule.name.span,
                format!("`{n}` assigns neither `w` nor any state, so a step would change nothing; write the update, as in `w -= lr * g;`"),
            );
        }
        TypedRule {
            name: rule.name.clone(),
            docs: rule.docs.clone(),
            vis: rule.vis.clone(),
            source: rule.source.clone(),
            hypers,
            buffers,
            scalars,
            inputs: rule.inputs.clone(),
            input_roles,
            lets: self.lets,
            body,
            shaped: self.shaped,
            needs_matrix: self.needs_matrix,
        }
    }

    fn hyper(&mut self, h: &Decl) -> Option<THyper> {
        let free = self.declare_ok(&h.name);
        let n = h.name.text.as_str();
        if let Some(st) = &h.storage {
            self.error(
                st.span,
                format!("only state buffers take a storage type; `{n}` is a hyperparameter"),
            );
        }
        if is_rust_keyword(n) {
            self.error(
                h.name.span,
                format!(
                    "`{n}` is a Rust keyword and cannot name a hyperparameter (it becomes a field)"
                ),
            );
        }
        let value = self.expr(&h.value);
        let default = match value.as_ref().map(|v| (v.kind, constant(v))) {
            Some((Kind::Const, Some(d))) => d,
            found => {
                if found.is_some() {
                    self.error(h.value.span, format!("the default of hyperparameter `{n}` must be a constant: a number or `true`/`false`"));
                }
                // Declared all the same, so its uses are not errors too.
                if free {
                    let i = self.hyper_names.len();
                    self.hyper_names.push(n.to_string());
                    self.globals
                        .insert(n.to_string(), Binding::Hyper(i, Ty::Num));
                }
                return None;
            }
        };
        if let Default::Num(x) = default {
            if !x.is_finite() {
                self.error(
                    h.value.span,
                    format!("the default of hyperparameter `{n}` is {x}; give a finite number"),
                );
            }
        }
        let ty = match default {
            Default::Num(_) => Ty::Num,
            Default::Bool(_) => Ty::Bool,
        };
        let range = h.range.as_ref().and_then(|r| self.range(n, r, default));
        if !free {
            return None;
        }
        let i = self.hyper_names.len();
        self.hyper_names.push(n.to_string());
        self.hyper_ranges.resize(i, None);
        self.hyper_ranges.push(range);
        self.globals.insert(n.to_string(), Binding::Hyper(i, ty));
        Some(THyper {
            name: h.name.clone(),
            default,
            range,
        })
    }

    /// Checks `where lo <= name < hi` of hyperparameter `n`.
    fn range(&mut self, n: &str, r: &RangeDecl, default: Default) -> Option<Range> {
        if r.name.text != n {
            self.error(
                r.name.span,
                format!(
                    "the range of `{n}` names `{}`; write `where ... {n} ...`",
                    r.name.text
                ),
            );
            return None;
        }
        let Default::Num(x) = default else {
            self.error(
                r.span,
                format!("`{n}` is a switch (true or false); only numbers take a range"),
            );
            return None;
        };
        let range = Range { lo: r.lo, hi: r.hi };
        if let (Some(lo), Some(hi)) = (r.lo, r.hi) {
            if lo.value > hi.value {
                self.error(
                    r.span,
                    format!("the range `{}` is empty", range.describe(n)),
                );
                return None;
            }
        }
        if !range.contains(x) {
            self.error(
                r.span,
                format!(
                    "the default of `{n}`, {x}, is outside its range `{}`",
                    range.describe(n)
                ),
            );
        }
        Some(range)
    }

    fn state_decl(&mut self, d: &Decl, var: Var) -> Option<TState> {
        let free = self.declare_ok(&d.name);
        if let Some(r) = &d.range {
            self.error(
                r.span,
                format!(
                    "only hyperparameters take a range; `{}` is state",
                    d.name.text
                ),
            );
        }
        let buffer = matches!(var, Var::Buffer(_));
        let what = if buffer {
            "constants, hyperparameters, `w` and `g`"
        } else {
            "constants and hyperparameters"
        };
        let mut names = Vec::new();
        names_in(&d.value, &mut names);
        let mut misplaced = false;
        for (n, span) in names {
            let visible = match self.lookup(&n) {
                None => true,
                Some(Binding::Hyper(..)) => true,
                Some(Binding::Var(Var::Param | Var::Grad)) => buffer,
                Some(_) => false,
            };
            if !visible {
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
        let init = if misplaced { None } else { self.expr(&d.value) };
        if let (
            false,
            Some(TExpr {
                kind: Kind::Element,
                ..
            }),
        ) = (buffer, &init)
        {
            self.error(
                d.value.span,
                format!(
                    "the initial value of scalar `{}` is drawn per element; a scalar starts from {what} (declare it `state` for one value per element)",
                    d.name.text
                ),
            );
        }
        if let Some(TExpr { ty: Ty::Bool, .. }) = init {
            self.error(
                d.value.span,
                format!(
                    "the initial value of `{}` must be a number, not a boolean",
                    d.name.text
                ),
            );
        }
        let shape = self.declared_shape(d, buffer);
        if let (Some(init), true) = (&init, buffer && (shape != Shape::TENSOR || self.shaped)) {
            if init.kind == Kind::Element {
                self.error(
                    d.value.span,
                    format!(
                        "in a rule with shapes, `{}` starts from a number (a constant or a hyperparameter), not from `w` or `g`",
                        d.name.text
                    ),
                );
            }
        }
        if free {
            let binding = Binding::Var(var);
            if self.conds.is_empty() {
                self.globals.insert(d.name.text.clone(), binding);
            } else {
                self.scopes
                    .last_mut()
                    .expect("a scope")
                    .insert(d.name.text.clone(), binding);
            }
        }
        if buffer {
            self.buffer_shapes.push(shape);
        }
        let storage = match &d.storage {
            None => (Storage::Full, None),
            Some(n) if !buffer => {
                self.error(
                    n.span,
                    format!(
                        "only state buffers take a storage type; `{}` is a scalar",
                        d.name.text
                    ),
                );
                (Storage::Full, None)
            }
            Some(n) => match Storage::from_name(&n.text) {
                Some(st) => (st, Some(n.span)),
                None => {
                    let hint = suggest(&n.text, STORAGE_NAMES.iter().copied())
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    self.error(
                        n.span,
                        format!(
                            "unknown storage `{}`; {hint}a state buffer is stored as `q8` (8-bit, signed map), `uq8` (8-bit, for values never negative) or `bf16`",
                            n.text
                        ),
                    );
                    (Storage::Full, None)
                }
            },
        };
        if storage.0 != Storage::Full && self.shaped {
            if let Some(span) = storage.1 {
                self.error(span, "a rule with shapes keeps its state in the element type; compressed storage is for element-wise rules");
            }
        }
        Some(TState {
            name: d.name.clone(),
            init: init?,
            storage,
            shape,
            when: self.conds.clone(),
        })
    }

    /// The shape a buffer declares (`: [rows]`), or the tensor's.
    fn declared_shape(&mut self, d: &Decl, buffer: bool) -> Shape {
        let Some(decl) = &d.shape else {
            return if buffer { Shape::TENSOR } else { Shape::SCALAR };
        };
        if !buffer {
            self.error(
                decl.span,
                format!(
                    "only state buffers take a shape; `{}` is a scalar",
                    d.name.text
                ),
            );
            return Shape::SCALAR;
        }
        let mut dims = Vec::new();
        for n in &decl.dims {
            match n.text.as_str() {
                "rows" => dims.push(Dim::Rows),
                "cols" => dims.push(Dim::Cols),
                "1" => dims.push(Dim::One),
                other => {
                    let hint = suggest(other, ["rows", "cols"])
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    self.error(
                        n.span,
                        format!("unknown dimension `{other}`; {hint}a shape is written with `rows`, `cols` and `1`, as in `[rows]` or `[rows, rows]`"),
                    );
                    return Shape::TENSOR;
                }
            }
        }
        let shape = match dims[..] {
            [Dim::Rows] => Shape(Dim::Rows, Dim::One),
            [Dim::Cols] => Shape(Dim::One, Dim::Cols),
            [Dim::One] => Shape::SCALAR,
            [a, b] => Shape(a, b),
            _ => Shape::TENSOR,
        };
        if shape == Shape::SCALAR {
            self.error(
                decl.span,
                format!(
                    "`{}` would hold one number: declare it `scalar {} = ...`",
                    d.name.text, d.name.text
                ),
            );
        }
        shape
    }

    /// Checks a `repeat` count: a constant, or a number hyperparameter whose
    /// declared range bounds it, so that no setting makes a step endless.
    fn repeat_count(&mut self, c: &TExpr) {
        let limit = crate::shaped::MAX_REPEAT;
        let what =
            "`repeat` takes a constant or a number hyperparameter, as in `repeat ns_steps { ... }`";
        match (&c.node, c.ty) {
            (TNode::Num(x), _) if *x >= 0.0 && *x <= limit => {}
            (TNode::Num(x), _) => {
                self.error(
                    c.span,
                    format!("`repeat {x}`: the count must be between 0 and {limit}"),
                );
            }
            (TNode::Var(Var::Hyper(i)), Ty::Num) => {
                let bounded = self
                    .hyper_ranges
                    .get(*i)
                    .copied()
                    .flatten()
                    .and_then(|r| r.hi)
                    .is_some_and(|hi| hi.value <= limit);
                if !bounded {
                    let n = self.hyper_names.get(*i).cloned().unwrap_or_default();
                    self.error(c.span, format!("`{n}` counts iterations, so it needs an upper bound: declare it with a range such as `where 0 <= {n} < 100` (at most {limit})"));
                }
            }
            _ => self.error(c.span, what),
        }
    }

    /// Notes a use of a matrix operation (for [`TypedRule::needs_matrix`]).
    fn matrix_op(&mut self) {
        if self.matrix_branches == 0 {
            self.needs_matrix = true;
        }
    }

    /// Whether `e` depends on the tensor's shape and constants only, so that
    /// it is known when the state is made.
    fn shape_only(e: &TExpr) -> bool {
        match &e.node {
            TNode::Num(_) | TNode::Bool(_) => true,
            TNode::Var(v) => matches!(v, Var::Rows | Var::Cols | Var::Numel | Var::Matrix),
            TNode::Unary(_, x) => Self::shape_only(x),
            TNode::Binary(_, a, b) => Self::shape_only(a) && Self::shape_only(b),
            TNode::Call(_, args) => args.iter().all(Self::shape_only),
            TNode::Select(c, a, b) => {
                Self::shape_only(c) && Self::shape_only(a) && Self::shape_only(b)
            }
            TNode::Reduce(..)
            | TNode::Axis(..)
            | TNode::MatMul(..)
            | TNode::Transpose(_)
            | TNode::Eye(_)
            | TNode::Draw(..) => false,
        }
    }

    fn stmts(&mut self, stmts: &[Stmt]) -> Vec<TStmt> {
        stmts.iter().filter_map(|s| self.stmt(s)).collect()
    }

    fn stmt(&mut self, s: &Stmt) -> Option<TStmt> {
        match s {
            Stmt::Let { name, value } => {
                let found = self.expr(value);
                if !self.declare_ok(name) {
                    return None;
                }
                let (ty, kind, shape) = found
                    .as_ref()
                    .map(|e| (e.ty, e.kind, e.shape))
                    .unwrap_or((Ty::Num, Kind::Element, Shape::TENSOR));
                let var = self.lets;
                self.lets += 1;
                if found.is_none() {
                    self.poisoned.insert(var);
                }
                self.scopes
                    .last_mut()
                    .expect("a scope")
                    .insert(name.text.clone(), Binding::Let(var, ty, kind, shape));
                Some(TStmt::Let { var, value: found? })
            }
            Stmt::Assign { target, op, value } => self.assign(target, *op, value),
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let found = self.expr(cond);
                let element = match &found {
                    Some(TExpr {
                        ty: Ty::Bool, kind, ..
                    }) => *kind == Kind::Element,
                    Some(c) => {
                        let msg = self.not_a_condition(cond, c, "the condition of `if` must be a boolean (a comparison such as `x > 0`)");
                        self.error(cond.span, msg);
                        false
                    }
                    None => false,
                };
                if element && self.shaped {
                    self.error(cond.span, "a rule with shapes chooses per element with `if c { a } else { b }` as a value (or `select`); an `if` statement's condition must be the same for the whole tensor");
                }
                self.element_conditions += usize::from(element);
                let is_matrix = matches!(
                    found,
                    Some(TExpr {
                        node: TNode::Var(Var::Matrix),
                        ..
                    })
                );
                let mut branches = Vec::new();
                for (branch, taken) in [(then, true), (otherwise, false)] {
                    self.scopes.push(HashMap::new());
                    if let Some(c) = &found {
                        self.conds.push((c.clone(), taken));
                    }
                    let in_matrix = is_matrix && taken;
                    self.matrix_branches += usize::from(in_matrix);
                    branches.push(self.stmts(branch));
                    self.matrix_branches -= usize::from(in_matrix);
                    if found.is_some() {
                        self.conds.pop();
                    }
                    self.scopes.pop();
                }
                self.element_conditions -= usize::from(element);
                let otherwise = branches.pop().unwrap_or_default();
                let then = branches.pop().unwrap_or_default();
                Some(TStmt::If {
                    cond: found?,
                    then,
                    otherwise,
                })
            }
            Stmt::Repeat { count, body } => {
                let found = self.expr(count);
                if let Some(c) = &found {
                    self.repeat_count(c);
                }
                self.scopes.push(HashMap::new());
                self.repeats += 1;
                let body = self.stmts(body);
                self.repeats -= 1;
                self.scopes.pop();
                Some(TStmt::Repeat {
                    count: found?,
                    body,
                })
            }
            Stmt::State(decls) => {
                let top = self.conds.is_empty();
                let bad_cond = self.conds.iter().find(|c| !Self::shape_only(&c.0));
                if let Some((c, _)) = bad_cond {
                    let span = c.span;
                    self.error(span, "state declared inside an `if` exists only where the condition holds, so the condition must depend on the tensor's shape alone (`matrix`, `rows`, `cols`, `numel`)");
                } else if top || self.repeats > 0 {
                    if let Some(d) = decls.first() {
                        self.error(d.name.span, "state is declared at the top of the rule or inside `if matrix { ... }` (or another condition on the shape), not inside `repeat`");
                    }
                }
                for d in decls {
                    let index = self.buffer_shapes.len();
                    if let Some(st) = self.state_decl(d, Var::Buffer(index)) {
                        self.nested.push(st);
                    }
                }
                None
            }
        }
    }

    /// The message for a number used as a condition: a numeric hyperparameter
    /// gets the two ways to say what was meant.
    fn not_a_condition(&self, cond: &Expr, found: &TExpr, general: &str) -> String {
        if let (ExprKind::Var(n), TNode::Var(Var::Hyper(_))) = (&cond.kind, &found.node) {
            return format!(
                "`{n}` is a number hyperparameter, not a boolean: declare it `hyper {n} = false` to use it as a switch, or compare it, as in `if {n} != 0`"
            );
        }
        general.to_string()
    }

    fn assign(&mut self, target: &Name, op: AssignOp, value: &Expr) -> Option<TStmt> {
        let found = self.expr(value);
        let n = target.text.as_str();
        let Some(binding) = self.lookup(n) else {
            self.unknown_name(target);
            return None;
        };
        let value_ty = found.as_ref().map(|f| f.ty);
        let value_kind = found.as_ref().map(|f| f.kind).unwrap_or(Kind::Scalar);
        let value_shape = found.as_ref().map(|f| f.shape).unwrap_or(Shape::SCALAR);
        let target_shape = match binding {
            Binding::Var(Var::Param) => Some(Shape::TENSOR),
            Binding::Var(Var::Buffer(i)) => self.buffer_shapes.get(i).copied(),
            Binding::Let(_, _, _, shape) if self.shaped => Some(shape),
            _ => None,
        };
        if let Some(want) = target_shape {
            if value_shape.broadcast(want) != Some(want) {
                self.error(
                    value.span,
                    format!("`{n}` has the shape {want}; this value has the shape {value_shape}"),
                );
            }
        }
        let var = match binding {
            Binding::Var(Var::Rows | Var::Cols | Var::Numel | Var::Matrix | Var::Epsilon) => {
                self.error(
                    target.span,
                    format!("cannot assign to `{n}`: it describes the tensor"),
                );
                return None;
            }
            Binding::Var(Var::Grad) => {
                self.error(target.span, "cannot assign to `g`: the gradient is read-only; use a `let` for a modified gradient");
                return None;
            }
            Binding::Var(Var::Step) => {
                self.error(
                    target.span,
                    "cannot assign to `t`: the step count is kept by the runtime",
                );
                return None;
            }
            Binding::Var(Var::Input(_)) => {
                self.error(
                    target.span,
                    format!("cannot assign to input `{n}`: inputs are read-only; use a `let`"),
                );
                return None;
            }
            Binding::Hyper(..) => {
                self.error(target.span, format!("cannot assign to hyperparameter `{n}`: hyperparameters change between steps only (set_hyper, a schedule); use a `let` or a `scalar` state"));
                return None;
            }
            Binding::Var(var @ (Var::Param | Var::Buffer(_) | Var::Scalar(_))) => {
                if value_ty == Some(Ty::Bool) {
                    self.error(
                        value.span,
                        format!("`{n}` holds numbers; this value is a boolean"),
                    );
                }
                if matches!(var, Var::Scalar(_))
                    && (value_kind == Kind::Element || self.element_conditions > 0)
                {
                    self.error(target.span, format!("a per-element value assigned to scalar state `{n}`: reduce it first (sum, mean, norm, max_abs) or declare `{n}` with `state`"));
                }
                self.updates = true;
                var
            }
            Binding::Var(v) => v,
            Binding::Let(id, ty, kind, shape) => {
                if value_ty.is_some_and(|v| v != ty) {
                    self.error(
                        value.span,
                        format!(
                            "`{n}` holds {}; this value is {}",
                            ty_name(ty),
                            ty_name(value_ty.unwrap_or(Ty::Num))
                        ),
                    );
                }
                if ty == Ty::Bool && op != AssignOp::Set {
                    self.error(
                        target.span,
                        format!("`{n}` is a boolean; compound assignment needs a number"),
                    );
                }
                let new_kind = if self.element_conditions > 0 {
                    Kind::Element
                } else {
                    kind.max(value_kind)
                };
                for scope in self.scopes.iter_mut().rev() {
                    if let Some(b) = scope.get_mut(n) {
                        *b = Binding::Let(id, ty, new_kind, shape);
                        break;
                    }
                }
                Var::Let(id)
            }
        };
        Some(TStmt::Assign {
            target: var,
            op,
            value: found?,
        })
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
        if let Some(c) = Callee::lookup(n) {
            let args = if c.arity() == 0 { "" } else { "x" };
            self.error(
                name.span,
                format!("`{n}` is a function: call it, as in `{n}({args})`"),
            );
            return;
        }
        let names = self.visible_names();
        let hint = suggest(n, names.iter().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        self.error(name.span, format!("unknown name `{n}`{hint}"));
    }

    fn typed(node: TNode, ty: Ty, kind: Kind, span: Span) -> Option<TExpr> {
        let shape = if kind == Kind::Element {
            Shape::TENSOR
        } else {
            Shape::SCALAR
        };
        Self::shaped(node, ty, shape, kind, span)
    }

    fn shaped(node: TNode, ty: Ty, shape: Shape, kind: Kind, span: Span) -> Option<TExpr> {
        Some(TExpr {
            node,
            ty,
            kind,
            shape,
            span,
        })
    }

    /// The kind of a value of `shape` computed from operands of `kind`.
    fn kind_of(shape: Shape, kind: Kind) -> Kind {
        if shape == Shape::SCALAR {
            kind.min(Kind::Scalar)
        } else {
            Kind::Element
        }
    }

    /// The broadcast of `shapes` for the operator at `span`, or an error
    /// naming them.
    fn broadcast(&mut self, span: Span, what: &str, shapes: &[Shape]) -> Option<Shape> {
        let mut out = Shape::SCALAR;
        for &s in shapes {
            match out.broadcast(s) {
                Some(b) => out = b,
                None => {
                    self.error(
                        span,
                        format!("{what} cannot combine the shapes {out} and {s}: each dimension must match or be 1"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    fn expr(&mut self, e: &Expr) -> Option<TExpr> {
        match &e.kind {
            ExprKind::Num(x) => Self::typed(TNode::Num(*x), Ty::Num, Kind::Const, e.span),
            ExprKind::Bool(b) => Self::typed(TNode::Bool(*b), Ty::Bool, Kind::Const, e.span),
            ExprKind::Var(n) => {
                let (var, ty, kind, shape) = match self.lookup(n) {
                    Some(Binding::Var(v @ Var::Buffer(i))) => {
                        let shape = self.buffer_shapes.get(i).copied().unwrap_or(Shape::TENSOR);
                        (v, Ty::Num, Self::kind_of(shape, Kind::Element), shape)
                    }
                    Some(Binding::Var(v @ (Var::Param | Var::Grad | Var::Input(_)))) => {
                        (v, Ty::Num, Kind::Element, Shape::TENSOR)
                    }
                    Some(Binding::Var(Var::Matrix)) => {
                        (Var::Matrix, Ty::Bool, Kind::Scalar, Shape::SCALAR)
                    }
                    Some(Binding::Var(v)) => (v, Ty::Num, Kind::Scalar, Shape::SCALAR),
                    Some(Binding::Hyper(i, ty)) => (Var::Hyper(i), ty, Kind::Scalar, Shape::SCALAR),
                    Some(Binding::Let(i, _, _, _)) if self.poisoned.contains(&i) => return None,
                    Some(Binding::Let(i, ty, kind, shape)) => (Var::Let(i), ty, kind, shape),
                    None => {
                        self.unknown_name(&Name {
                            text: n.clone(),
                            span: e.span,
                        });
                        return None;
                    }
                };
                Self::shaped(TNode::Var(var), ty, shape, kind, e.span)
            }
            ExprKind::Unary(op, x) => {
                let x = self.expr(x)?;
                let want = if *op == UnOp::Neg { Ty::Num } else { Ty::Bool };
                if x.ty != want {
                    let sym = if *op == UnOp::Neg { "-" } else { "!" };
                    self.error(
                        e.span,
                        format!("`{sym}` needs {}, found {}", ty_name(want), ty_name(x.ty)),
                    );
                    return None;
                }
                let (ty, kind, shape) = (x.ty, x.kind, x.shape);
                Self::shaped(TNode::Unary(*op, Box::new(x)), ty, shape, kind, e.span)
            }
            ExprKind::Binary(op, op_span, a, b) => {
                let fa = self.expr(a);
                let fb = self.expr(b);
                let (ta, tb) = (fa?, fb?);
                let want = if op.is_logic() { Ty::Bool } else { Ty::Num };
                let bool_equality =
                    matches!(op, BinOp::Eq | BinOp::Ne) && ta.ty == Ty::Bool && tb.ty == Ty::Bool;
                if !bool_equality {
                    for (t, x) in [(ta.ty, a), (tb.ty, b)] {
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
                }
                let ty = if op.is_comparison() || op.is_logic() {
                    Ty::Bool
                } else {
                    Ty::Num
                };
                let what = format!("`{}`", op.symbol());
                let shape = self.broadcast(*op_span, &what, &[ta.shape, tb.shape])?;
                let kind = Self::kind_of(shape, ta.kind.max(tb.kind));
                Self::shaped(
                    TNode::Binary(*op, Box::new(ta), Box::new(tb)),
                    ty,
                    shape,
                    kind,
                    e.span,
                )
            }
            ExprKind::If(c, a, b) => self.select(e.span, c, a, b),
            ExprKind::Call(name, args) => self.call(name, args),
            ExprKind::MatMul(at, a, b) => {
                let fa = self.expr(a);
                let fb = self.expr(b);
                let (ta, tb) = (fa?, fb?);
                self.matmul(*at, ta, tb, e.span)
            }
            ExprKind::Transpose(x) => {
                let x = self.expr(x)?;
                self.transpose(x, e.span)
            }
        }
    }

    fn matmul(&mut self, at: Span, ta: TExpr, tb: TExpr, span: Span) -> Option<TExpr> {
        self.matrix_op();
        for t in [&ta, &tb] {
            if t.ty != Ty::Num {
                self.error(t.span, "`@` multiplies numbers, found a boolean");
                return None;
            }
        }
        let Some(shape) = ta.shape.matmul(tb.shape) else {
            self.error(
                at,
                format!(
                    "`@` needs the left side's columns to match the right side's rows: {} @ {}{}",
                    ta.shape,
                    tb.shape,
                    if ta.shape.t().matmul(tb.shape).is_some() {
                        " (transpose the left side: `x^T @ y`)"
                    } else if ta.shape.matmul(tb.shape.t()).is_some() {
                        " (transpose the right side: `x @ y^T`)"
                    } else {
                        ""
                    }
                ),
            );
            return None;
        };
        let kind = Self::kind_of(shape, Kind::Element);
        Self::shaped(
            TNode::MatMul(Box::new(ta), Box::new(tb)),
            Ty::Num,
            shape,
            kind,
            span,
        )
    }

    fn transpose(&mut self, x: TExpr, span: Span) -> Option<TExpr> {
        self.matrix_op();
        if x.ty != Ty::Num {
            self.error(x.span, "`^T` transposes numbers, found a boolean");
            return None;
        }
        let (shape, kind) = (x.shape.t(), x.kind);
        Self::shaped(TNode::Transpose(Box::new(x)), Ty::Num, shape, kind, span)
    }

    fn select(&mut self, span: Span, c: &Expr, a: &Expr, b: &Expr) -> Option<TExpr> {
        let fc = self.expr(c);
        let fa = self.expr(a);
        let fb = self.expr(b);
        let (tc, ta, tb) = (fc?, fa?, fb?);
        if tc.ty != Ty::Bool {
            let msg = self.not_a_condition(
                c,
                &tc,
                "a condition must be a boolean (a comparison such as `x > 0`)",
            );
            self.error(c.span, msg);
            return None;
        }
        if ta.ty != tb.ty {
            self.error(
                span,
                format!(
                    "the two branches differ: {} and {}",
                    ty_name(ta.ty),
                    ty_name(tb.ty)
                ),
            );
            return None;
        }
        let shape = self.broadcast(span, "`if`", &[tc.shape, ta.shape, tb.shape])?;
        let (ty, kind) = (
            ta.ty,
            Self::kind_of(shape, tc.kind.max(ta.kind).max(tb.kind)),
        );
        Self::shaped(
            TNode::Select(Box::new(tc), Box::new(ta), Box::new(tb)),
            ty,
            shape,
            kind,
            span,
        )
    }

    fn call(&mut self, name: &Name, args: &[Expr]) -> Option<TExpr> {
        let n = name.text.as_str();
        let Some(callee) = Callee::lookup(n) else {
            for a in args {
                self.expr(a);
            }
            let alias = ALIASES.iter().find(|a| a.0 == n).map(|a| a.1);
            let guess = alias.or_else(|| suggest(n, CALLEES.iter().map(|c| c.name())));
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
        let arity = callee.arity();
        if args.len() != arity {
            for a in args {
                self.expr(a);
            }
            let s = if arity == 1 { "" } else { "s" };
            let msg = match callee {
                Callee::Draw(d) => format!(
                    "`{n}` takes no arguments, found {}: it draws {} per element (write `{n}()`; scale and shift the draw instead, as in `sigma * {n}()`)",
                    args.len(),
                    match d {
                        Draw::Uniform => "a fresh uniform number in [0, 1)",
                        Draw::Normal => "a fresh standard normal number",
                    }
                ),
                _ => format!("`{n}` takes {arity} argument{s}, found {}", args.len()),
            };
            self.error(name.span, msg);
            return None;
        }
        match callee {
            Callee::Select => self.select(name.span, &args[0], &args[1], &args[2]),
            Callee::Draw(d) => {
                let stream = self.draws;
                self.draws = self.draws.saturating_add(1);
                Self::typed(TNode::Draw(d, stream), Ty::Num, Kind::Element, name.span)
            }
            Callee::Transpose => {
                let x = self.expr(&args[0])?;
                self.transpose(x, name.span)
            }
            Callee::Eye => {
                self.matrix_op();
                let x = self.expr(&args[0])?;
                if x.shape.0 != x.shape.1 || x.shape == Shape::SCALAR {
                    self.error(args[0].span, format!("`eye` takes a square matrix (such as `[rows, rows]`) and gives the identity of its shape; this value has the shape {}", x.shape));
                    return None;
                }
                let shape = x.shape;
                Self::shaped(
                    TNode::Eye(Box::new(x)),
                    Ty::Num,
                    shape,
                    Kind::Element,
                    name.span,
                )
            }
            Callee::Axis(axis, r) => {
                self.matrix_op();
                let x = self.expr(&args[0])?;
                if x.ty != Ty::Num || x.kind != Kind::Element {
                    self.error(
                        args[0].span,
                        format!("`{n}` reduces numbers that vary along the tensor"),
                    );
                    return None;
                }
                let shape = match axis {
                    crate::functions::Axis::Row => Shape(x.shape.0, Dim::One),
                    crate::functions::Axis::Col => Shape(Dim::One, x.shape.1),
                };
                let kind = Self::kind_of(shape, Kind::Element);
                Self::shaped(
                    TNode::Axis(axis, r, Box::new(x)),
                    Ty::Num,
                    shape,
                    kind,
                    name.span,
                )
            }
            Callee::Reduce(r) => {
                if self.in_reduction && !self.shaped {
                    self.error(name.span, format!("a reduction inside a reduction: `{n}` is inside another reduction's argument; compute the inner one with a `let` first"));
                    return None;
                }
                self.in_reduction = true;
                let found = self.expr(&args[0]);
                self.in_reduction = false;
                let x = found?;
                if x.ty != Ty::Num {
                    self.error(
                        args[0].span,
                        format!("`{n}` reduces numbers, found a boolean"),
                    );
                    return None;
                }
                if x.kind != Kind::Element {
                    self.error(args[0].span, format!("`{n}` reduces a per-element expression over the tensor; this argument is the same for every element"));
                    return None;
                }
                Self::typed(
                    TNode::Reduce(r, Box::new(x)),
                    Ty::Num,
                    Kind::Scalar,
                    name.span,
                )
            }
            Callee::Func(f) => {
                let mut kind = Kind::Const;
                let mut ok = true;
                let mut typed = Vec::new();
                let mut shapes = Vec::new();
                for a in args {
                    match self.expr(a) {
                        Some(x) if x.ty == Ty::Num => {
                            kind = kind.max(x.kind);
                            shapes.push(x.shape);
                            typed.push(x);
                        }
                        Some(_) => {
                            self.error(a.span, format!("`{n}` takes numbers, found a boolean"));
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let shape = self.broadcast(name.span, &format!("`{n}`"), &shapes)?;
                let kind = Self::kind_of(shape, kind);
                Self::shaped(TNode::Call(f, typed), Ty::Num, shape, kind, name.span)
            }
        }
    }
}

fn capitalized(n: &str) -> String {
    let mut c = n.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every name an expression reads, with its span.
fn names_in(e: &Expr, out: &mut Vec<(String, Span)>) {
    match &e.kind {
        ExprKind::Var(n) => out.push((n.clone(), e.span)),
        ExprKind::Num(_) | ExprKind::Bool(_) => {}
        ExprKind::Unary(_, x) => names_in(x, out),
        ExprKind::Binary(_, _, a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::If(c, a, b) => {
            names_in(c, out);
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::Call(_, args) => args.iter().for_each(|a| names_in(a, out)),
        ExprKind::MatMul(_, a, b) => {
            names_in(a, out);
            names_in(b, out);
        }
        ExprKind::Transpose(x) => names_in(x, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_rules;

    fn errors(text: &str) -> Vec<String> {
        let rules = parse_rules(text).expect("parses");
        match check(&rules[0]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.message).collect(),
        }
    }

    #[test]
    fn a_valid_rule_has_no_errors() {
        let e = errors(
            "R { hyper lr = 1e-3, b = 0.9; state m = 0; scalar s = 0;
            m = b * m + (1 - b) * g; s = b * s + norm(g)^2; w -= lr * m / (1 - b^t); }",
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn unknown_function_suggests_the_close_one() {
        let e = errors("R { hyper lr = 0.01; w -= lr * sgn(g); }");
        assert_eq!(e, vec!["unknown function `sgn`; did you mean `sign`?"]);
        let e = errors("R { hyper lr = 0.01; w -= lr * sqr(g); }");
        assert_eq!(e, vec!["unknown function `sqr`; did you mean `sqrt`?"]);
    }

    #[test]
    fn every_error_is_reported() {
        let e = errors("R { hyper lr = 0.01; g = 1; t = 2; lr = 3; w -= lr * gg; }");
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[3].contains("did you mean `g`?"), "{e:?}");
    }

    #[test]
    fn per_element_value_into_scalar_state_is_rejected() {
        let e = errors("R { scalar s = 0; s = g; w -= g; }");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("a per-element value assigned to scalar state `s`"),
            "{e:?}"
        );
        let e = errors("R { scalar s = 0; if g > 0 { s = 1; } }");
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn nested_reduction_and_arity_and_order() {
        let e = errors("R { let a = norm(g * sum(g)); w -= clamp(g, 1); w -= x; let x = 1; }");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("a reduction inside a reduction"));
        assert!(e[1].starts_with("`clamp` takes 3 arguments, found 2"));
        assert!(e[2].starts_with("`x` is used before its `let`"));
    }

    #[test]
    fn duplicates_and_kinds() {
        let e = errors(
            "R { hyper lr = 1, lr = 2; state m = t; let w = 1; w -= if g { 1 } else { 2 }; }",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].contains("already defined"));
        assert!(e[1].contains("initial value of `m`"));
        assert!(e[2].contains("is built in"));
        assert!(e[3].contains("must be a boolean"));
    }

    #[test]
    fn a_numeric_hyper_as_a_condition_gets_both_fixes() {
        let e = errors("R { hyper nesterov = 0; if nesterov { w -= g; } }");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("hyper nesterov = false"), "{e:?}");
        assert!(e[0].contains("nesterov != 0"), "{e:?}");
    }

    #[test]
    fn ranges_are_checked_against_their_defaults() {
        let rules = parse_rules("R { hyper b1 = 0.9 where 0 <= b1 < 1, lr = 1e-3 where lr >= 0, e = 0.5 where 0 < e < 1; w -= lr * g; }").unwrap();
        let typed = check(&rules[0]).unwrap();
        let r = typed.hypers[0].range.unwrap();
        assert!(r.contains(0.0) && !r.contains(1.0) && !r.contains(f64::NAN));
        assert_eq!(r.describe("b1"), "0 <= b1 < 1");
        assert_eq!(typed.hypers[1].range.unwrap().describe("lr"), "0 <= lr");
        assert!(!typed.hypers[2].range.unwrap().contains(0.0));
        let e = errors("R { hyper b1 = 1.5 where 0 <= b1 < 1; w -= g; }");
        assert!(e[0].contains("outside its range `0 <= b1 < 1`"), "{e:?}");
        let e = errors("R { hyper b1 = 0.5 where 0 <= b2 < 1; w -= g; }");
        assert!(e[0].contains("names `b2`"), "{e:?}");
        let e = errors("R { hyper f = false where 0 <= f; w -= g; }");
        assert!(e[0].contains("switch"), "{e:?}");
        let e = errors("R { state m = 0 where m >= 0; w -= g; }");
        assert!(e[0].contains("only hyperparameters"), "{e:?}");
    }

    #[test]
    fn draws_take_no_arguments_and_stay_per_element() {
        let e = errors("R { w -= randn(g); }");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("`randn` takes no arguments, found 1"),
            "{e:?}"
        );
        assert!(errors("R { hyper s = rand(); w -= s * g; }")[0].contains("must be a constant"));
        assert!(errors("R { scalar s = rand(); w -= s * g; }")[0].contains("drawn per element"));
        assert!(errors("R { scalar s = 0; s = randn(); w -= s; }")[0].contains("per-element"));
        assert!(errors("R { w -= randn; }")[0].contains("as in `randn()`"));
        assert_eq!(
            errors("R { w -= normal(); }"),
            ["unknown function `normal`; did you mean `randn`?"]
        );
        assert!(errors("R { state m = rand(); w -= sum(randn()) * m; }").is_empty());
    }

    #[test]
    fn what_cannot_be_meant_is_refused() {
        assert!(errors("R { hyper lr = 0/0; w -= lr * g; }")[0].contains("finite"));
        assert!(
            errors("R { hyper lr = 1; let x = lr * g; }")[0].contains("neither `w` nor any state")
        );
        assert!(errors("f64 { w -= g; }")[0].contains("Rust type"));
        let rules = parse_rules("R { w -= g; } R { w += g; }").unwrap();
        assert_eq!(check_names(&rules).len(), 1);
    }
}
