//! Text -> pest pairs -> syntax tree, with a byte range on every node.
//!
//! The text is a rule file written by hand or the tokens of a macro call
//! written out as text (the macro keeps a table from byte offsets back to its
//! tokens, so a range here becomes a span there).

use crate::ast::{
    AssignOp, BinOp, Bound, Decl, Expr, ExprKind, Name, NetDef, NetItem, Number, PresetOf,
    RangeDecl, RuleDef, Setting, ShapeDecl, Stmt, UnOp,
};
use crate::diag::Diagnostic;
use crate::span::Span;
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::sync::OnceLock;

/// The pest parser of `grammar.pest` and its `Rule` enum (generated; one
/// variant a grammar rule).
mod grammar {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar.pest"]
    pub(super) struct Grammar;
}
use grammar::{Grammar, Rule};

/// How deep brackets and prefix operators may nest: deeper text is refused
/// with an error at the token, before the recursive parser sees it.
pub const MAX_DEPTH: usize = 128;

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::matmul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
            .op(Op::infix(Rule::pow, Assoc::Right))
            .op(Op::postfix(Rule::transpose))
    })
}

/// Whether a pair is a keyword or `;`, which the tree does not keep.
fn is_marker(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::k_hyper
            | Rule::k_state
            | Rule::k_scalar
            | Rule::k_input
            | Rule::k_let
            | Rule::k_if
            | Rule::k_repeat
            | Rule::k_where
            | Rule::k_else
            | Rule::k_pub
            | Rule::k_dense
            | Rule::k_loss
            | Rule::semi
    )
}

/// A pair's children without keywords and `;`.
fn inner(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_marker(p.as_rule()))
}

/// What a pest rule is called in an error message.
fn describe(rule: &Rule) -> String {
    match rule {
        Rule::EOI => "the end of the input".into(),
        Rule::rule_def | Rule::rule_name => "a rule: `pub Name { ... }`".into(),
        Rule::preset_def => "a preset: `pub Name = Base { hyper x = 1; let y = true; }`".into(),
        Rule::preset_base => "the name of a rule defined above".into(),
        Rule::preset_hyper | Rule::preset_fixed => {
            "`hyper name = value;` or `let name = value;`".into()
        }
        Rule::preset_set => "`name = value`".into(),
        Rule::doc => "a doc comment".into(),
        Rule::vis | Rule::k_pub => "`pub`".into(),
        Rule::vis_scope => "`crate`, `super` or `self`".into(),
        Rule::doc_line => "a doc comment".into(),
        Rule::k_hyper => "`hyper`".into(),
        Rule::k_state => "`state`".into(),
        Rule::k_scalar => "`scalar`".into(),
        Rule::k_input => "`input`".into(),
        Rule::k_let => "`let`".into(),
        Rule::k_if => "`if`".into(),
        Rule::k_repeat | Rule::repeat_stmt => "`repeat`".into(),
        Rule::shape_decl => "a shape such as `: [rows]`".into(),
        Rule::dim => "`rows`, `cols` or `1`".into(),
        Rule::transpose => "an operator".into(),
        Rule::k_else => "`else`".into(),
        Rule::k_dense => "`dense`".into(),
        Rule::k_loss => "`loss`".into(),
        Rule::hyper_decl => "`hyper`".into(),
        Rule::state_decl => "`state`".into(),
        Rule::scalar_decl => "`scalar`".into(),
        Rule::input_decl => "`input`".into(),
        Rule::input_item => "an input: `name` or `name: role`".into(),
        Rule::let_stmt => "`let`".into(),
        Rule::if_stmt | Rule::if_expr => "`if`".into(),
        Rule::assign_stmt => "an assignment".into(),
        Rule::net_def => {
            "a network: `pub Name { input N; dense N activation; ... loss name; }`".into()
        }
        Rule::input_layer => "`input N;`".into(),
        Rule::dense_layer => "`dense N activation;`".into(),
        Rule::loss_decl => "`loss name;`".into(),
        Rule::assign_op => "`=`, `+=`, `-=`, `*=` or `/=`".into(),
        Rule::expr => "an expression".into(),
        Rule::init_item => "`name = value`".into(),
        Rule::storage => "`: q8`, `: uq8` or `: bf16`".into(),
        Rule::hyper_range | Rule::k_where => "`where lo <= name < hi`".into(),
        Rule::bound | Rule::k_inf => "a number or `inf`".into(),
        Rule::cmp => "`<`, `<=`, `>` or `>=`".into(),
        Rule::block => "`{`".into(),
        Rule::call => "a function call".into(),
        Rule::number => "a number".into(),
        Rule::boolean => "a boolean".into(),
        Rule::semi => "`;`".into(),
        Rule::ident => "a name".into(),
        Rule::string => "a string".into(),
        Rule::or
        | Rule::and
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::matmul
        | Rule::pow => "an operator".into(),
        Rule::neg => "`-`".into(),
        Rule::not => "`!`".into(),
        other => format!("{other:?}"),
    }
}

fn syntax_error(text: &str, err: pest::error::Error<Rule>) -> Diagnostic {
    let offset = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let offset = offset.min(text.len());
    let word = text[offset..].split_whitespace().next().unwrap_or("");
    let found = if word.is_empty() {
        "the end of the rule".to_string()
    } else {
        format!("`{}`", word.escape_debug())
    };
    let span = Span::new(offset, offset + word.len());
    let before = text[..offset].trim_end();
    let prev = before
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    if matches!(prev, "for" | "while" | "loop") && before.ends_with(prev) {
        let at = before.len() - prev.len();
        return Diagnostic::new(
            Span::new(at, before.len()),
            format!("syntax error: `{prev}`: the language has no `{prev}` loops; a rule is one step written once, applied to every element (use `sum`, `mean`, `norm` or `max_abs` to combine elements, or `repeat n {{ ... }}` for a fixed number of iterations)"),
        );
    }
    if let Some(d) = known_mistake(text, offset) {
        return Diagnostic::new(span, d);
    }
    let msg = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } if !positives.is_empty() => {
            let operand = [
                Rule::number,
                Rule::ident,
                Rule::neg,
                Rule::k_if,
                Rule::not,
                Rule::if_expr,
                Rule::call,
                Rule::boolean,
            ];
            let expression = positives.contains(&Rule::number) && positives.contains(&Rule::ident);
            let mut wanted: Vec<String> = if expression {
                std::iter::once("an expression".to_string())
                    .chain(
                        positives
                            .iter()
                            .filter(|r| !operand.contains(r))
                            .map(describe),
                    )
                    .collect()
            } else {
                positives.iter().map(describe).collect()
            };
            let mut seen = std::collections::HashSet::new();
            wanted.retain(|w| seen.insert(w.clone()));
            let wanted = match wanted.len() {
                1 => wanted.remove(0),
                _ => {
                    let last = wanted.pop().unwrap_or_default();
                    format!("{} or {}", wanted.join(", "), last)
                }
            };
            format!("syntax error: expected {wanted}, found {found}")
        }
        _ => format!("syntax error: unexpected {found}"),
    };
    Diagnostic::new(span, msg)
}

/// Messages for what people bring from other languages.
fn known_mistake(text: &str, offset: usize) -> Option<String> {
    let rest = &text[offset..];
    if rest.starts_with("**") || (rest.starts_with('*') && text[..offset].ends_with('*')) {
        return Some(
            "syntax error: `**` is not an operator here; write powers with `^`, as in `g^2`".into(),
        );
    }
    if rest.starts_with("+=")
        || rest.starts_with("-=")
        || rest.starts_with("*=")
        || rest.starts_with("/=")
    {
        return None;
    }
    if rest.starts_with("++") || rest.starts_with("--") {
        return Some("syntax error: there is no `++` or `--`; write `x += 1`".into());
    }
    None
}

/// Refuses a character outside ASCII where the language has none (names,
/// numbers, operators): at the character, saying what to write instead.
/// Doc comments, comments and strings may hold any text.
fn check_ascii(text: &str) -> Result<(), Diagnostic> {
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if chars.peek().map(|p| p.1) == Some('/') => {
                // A comment or a doc line: skip to the end of the line.
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if !c.is_ascii() => {
                let hint = match c {
                    '×' | '·' | '⋅' => "; write `*`",
                    '≤' => "; write `<=`",
                    '≥' => "; write `>=`",
                    '≠' => "; write `!=`",
                    '−' | '–' => "; write `-`",
                    '√' => "; write `sqrt(x)`",
                    _ => "; names are ASCII letters, digits and `_`",
                };
                return Err(Diagnostic::new(
                    Span::new(i, i + c.len_utf8()),
                    format!("`{c}` cannot appear in a rule outside comments{hint}"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses text nested deeper than [`MAX_DEPTH`] (brackets, or a run of
/// prefix operators), at the token that goes too deep.
fn check_depth(text: &str) -> Result<(), Diagnostic> {
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        if in_string {
            if c == '"' && prev != '\\' {
                in_string = false;
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == '-' || c == '!' {
            prefix_run += 1;
        } else if !c.is_whitespace() {
            prefix_run = 0;
        }
        if depth > MAX_DEPTH || prefix_run > MAX_DEPTH {
            return Err(Diagnostic::new(
                Span::new(i, i + c.len_utf8()),
                format!(
                    "this expression nests more than {MAX_DEPTH} levels deep; split it with `let`"
                ),
            ));
        }
        prev = c;
    }
    Ok(())
}

/// Parses network specs (`pub Name { input N; dense N act; ... loss name; }`).
pub fn parse_networks(text: &str) -> Result<Vec<NetDef>, Diagnostic> {
    check_depth(text)?;
    check_ascii(text)?;
    let mut pairs = Grammar::parse(Rule::networks, text).map_err(|e| syntax_error(text, e))?;
    let Some(top) = pairs.next() else {
        return Ok(Vec::new());
    };
    let b = Builder;
    let mut nets = Vec::new();
    for pair in top.into_inner() {
        if pair.as_rule() != Rule::net_def {
            continue;
        }
        let mut def = NetDef {
            docs: Vec::new(),
            vis: None,
            name: Name {
                text: String::new(),
                span: b.span(&pair),
            },
            items: Vec::new(),
        };
        for p in inner(pair) {
            let number = |p: Pair<Rule>| Number {
                text: p.as_str().to_string(),
                span: b.span(&p),
            };
            match p.as_rule() {
                Rule::doc => def.docs.push(b.doc(p)?),
                Rule::vis => def.vis = Some(p.as_str().split_whitespace().collect()),
                Rule::rule_name => def.name = b.name(inner(p).next().expect("ident")),
                Rule::input_layer => def
                    .items
                    .push(NetItem::Input(number(inner(p).next().expect("n")))),
                Rule::dense_layer => {
                    let mut it = inner(p);
                    let n = number(it.next().expect("units"));
                    let act = b.name(it.next().expect("activation"));
                    def.items.push(NetItem::Dense(n, act));
                }
                Rule::loss_decl => def
                    .items
                    .push(NetItem::Loss(b.name(inner(p).next().expect("loss")))),
                _ => {}
            }
        }
        nets.push(def);
    }
    Ok(nets)
}

/// Parses update rules (`pub Name { hyper ...; state ...; w -= ...; }`), as
/// written in a rule file or inside `optimizer! { ... }`.
pub fn parse_rules(text: &str) -> Result<Vec<RuleDef>, Diagnostic> {
    check_depth(text)?;
    check_ascii(text)?;
    let mut pairs = Grammar::parse(Rule::rules, text).map_err(|e| syntax_error(text, e))?;
    let Some(top) = pairs.next() else {
        return Ok(Vec::new());
    };
    let mut rules = Vec::new();
    for pair in top.into_inner() {
        match pair.as_rule() {
            Rule::rule_def => rules.push(Builder.rule_def(pair)?),
            Rule::preset_def => rules.push(Builder.preset_def(pair)?),
            _ => {}
        }
    }
    Ok(rules)
}

struct Builder;

/// The value of a Rust string literal as the macro writes a doc comment
/// (`"..."` with escapes, or a raw `r#"..."#`).
fn string_value(lit: &str) -> Option<String> {
    if let Some(raw) = lit.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let inner = raw.get(hashes + 1..raw.len().checked_sub(hashes + 1)?)?;
        return Some(inner.to_string());
    }
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let code = u32::from_str_radix(rest.trim_start_matches('{'), 16).ok()?;
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

impl Builder {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(s.start(), s.end())
    }

    /// The text of a doc comment: a `///` line or a `#[doc = "..."]` attribute.
    fn doc(&self, pair: Pair<Rule>) -> Result<String, Diagnostic> {
        let span = self.span(&pair);
        let Some(part) = inner(pair).next() else {
            return Err(Diagnostic::new(span, "malformed doc comment"));
        };
        if part.as_rule() == Rule::doc_line {
            return Ok(part.as_str()[3..].trim_end_matches('\r').to_string());
        }
        string_value(part.as_str())
            .ok_or_else(|| Diagnostic::new(self.span(&part), "malformed doc string"))
    }

    fn name(&self, pair: Pair<Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    /// A rule def with nothing in it yet but its text and range (its name
    /// a placeholder at the whole range).
    fn empty_def(&self, pair: &Pair<Rule>) -> RuleDef {
        let whole = self.span(pair);
        RuleDef {
            docs: Vec::new(),
            vis: None,
            name: Name {
                text: String::new(),
                span: whole,
            },
            hypers: Vec::new(),
            buffers: Vec::new(),
            scalars: Vec::new(),
            inputs: Vec::new(),
            input_roles: Vec::new(),
            body: Vec::new(),
            source: pair.as_str().to_string(),
            span: whole,
            preset: None,
        }
    }

    fn rule_def(&self, pair: Pair<Rule>) -> Result<RuleDef, Diagnostic> {
        let mut def = self.empty_def(&pair);
        for p in inner(pair) {
            match p.as_rule() {
                Rule::doc => def.docs.push(self.doc(p)?),
                Rule::vis => def.vis = Some(p.as_str().split_whitespace().collect()),
                Rule::rule_name => def.name = self.name(inner(p).next().expect("ident")),
                Rule::hyper_decl => def.hypers.extend(self.decls(p)?),
                Rule::state_decl => def.buffers.extend(self.decls(p)?),
                Rule::scalar_decl => def.scalars.extend(self.decls(p)?),
                Rule::input_decl => {
                    for item in inner(p).filter(|n| n.as_rule() == Rule::input_item) {
                        let mut parts = inner(item).filter(|n| n.as_rule() == Rule::ident);
                        def.inputs
                            .push(self.name(parts.next().expect("input name")));
                        def.input_roles.push(parts.next().map(|r| self.name(r)));
                    }
                }
                _ => def.body.push(self.stmt(p)?),
            }
        }
        Ok(def)
    }

    /// `pub Name = Base { hyper x = 1; let y = true; }`: a rule def with
    /// only its docs, visibility and name, and what it takes from `Base`.
    fn preset_def(&self, pair: Pair<Rule>) -> Result<RuleDef, Diagnostic> {
        let mut def = self.empty_def(&pair);
        let mut preset = PresetOf {
            base: def.name.clone(),
            defaults: Vec::new(),
            fixed: Vec::new(),
        };
        for p in inner(pair) {
            match p.as_rule() {
                Rule::doc => def.docs.push(self.doc(p)?),
                Rule::vis => def.vis = Some(p.as_str().split_whitespace().collect()),
                Rule::rule_name => def.name = self.name(inner(p).next().expect("ident")),
                Rule::preset_base => preset.base = self.name(inner(p).next().expect("ident")),
                Rule::preset_hyper | Rule::preset_fixed => {
                    let into = if p.as_rule() == Rule::preset_hyper {
                        &mut preset.defaults
                    } else {
                        &mut preset.fixed
                    };
                    for set in inner(p).filter(|s| s.as_rule() == Rule::preset_set) {
                        let mut it = inner(set);
                        let name = self.name(it.next().expect("name"));
                        let value = self.expr(it.next().expect("value"))?;
                        into.push(Setting { name, value });
                    }
                }
                _ => {}
            }
        }
        def.preset = Some(preset);
        Ok(def)
    }

    fn decls(&self, pair: Pair<Rule>) -> Result<Vec<Decl>, Diagnostic> {
        inner(pair)
            .filter(|item| item.as_rule() == Rule::init_item)
            .map(|item| {
                let mut it = inner(item);
                let name = self.name(it.next().expect("name"));
                let mut next = it.next().expect("value");
                let mut storage = None;
                let mut shape = None;
                if next.as_rule() == Rule::storage {
                    storage = inner(next).next().map(|n| self.name(n));
                    next = it.next().expect("value");
                } else if next.as_rule() == Rule::shape_decl {
                    let span = self.span(&next);
                    let dims = inner(next).map(|d| self.name(d)).collect();
                    shape = Some(ShapeDecl { dims, span });
                    next = it.next().expect("value");
                }
                let value = self.expr(next)?;
                let range = it.next().map(|r| self.range(r)).transpose()?;
                Ok(Decl {
                    name,
                    value,
                    range,
                    storage,
                    shape,
                })
            })
            .collect()
    }

    /// `where lo <= name < hi` (either side may be missing, or written with
    /// `>`/`>=` the other way round).
    fn range(&self, pair: Pair<Rule>) -> Result<RangeDecl, Diagnostic> {
        let span = self.span(&pair);
        let mut lo = None;
        let mut hi = None;
        let mut name = None;
        let mut pending: Option<f64> = None;
        let mut op: Option<&str> = None;
        for p in inner(pair) {
            match p.as_rule() {
                Rule::bound => {
                    let text: String = p.as_str().split_whitespace().collect();
                    let value = match text.as_str() {
                        "inf" => f64::INFINITY,
                        "-inf" => f64::NEG_INFINITY,
                        t => t.parse::<f64>().map_err(|_| {
                            Diagnostic::new(self.span(&p), format!("`{t}` is not a number"))
                        })?,
                    };
                    match (name.is_some(), op) {
                        // name op bound
                        (true, Some(o)) => {
                            let b = Some(Bound {
                                value,
                                inclusive: o.ends_with('='),
                            });
                            if o.starts_with('<') {
                                hi = b
                            } else {
                                lo = b
                            }
                        }
                        _ => pending = Some(value),
                    }
                }
                Rule::cmp => {
                    let o = p.as_str();
                    if name.is_none() {
                        // bound op name
                        if let Some(v) = pending.take() {
                            let b = Some(Bound {
                                value: v,
                                inclusive: o.ends_with('='),
                            });
                            if o.starts_with('<') {
                                lo = b
                            } else {
                                hi = b
                            }
                        }
                    } else {
                        op = Some(o);
                    }
                }
                Rule::ident => name = Some(self.name(p)),
                _ => {}
            }
        }
        let name = name.ok_or_else(|| Diagnostic::new(span, "a range names its hyperparameter"))?;
        Ok(RangeDecl { name, lo, hi, span })
    }

    fn stmts(&self, pair: Pair<Rule>) -> Result<Vec<Stmt>, Diagnostic> {
        inner(pair).map(|p| self.stmt(p)).collect()
    }

    fn stmt(&self, pair: Pair<Rule>) -> Result<Stmt, Diagnostic> {
        match pair.as_rule() {
            Rule::let_stmt => {
                let mut it = inner(pair);
                let name = self.name(it.next().expect("name"));
                let value = self.expr(it.next().expect("value"))?;
                Ok(Stmt::Let { name, value })
            }
            Rule::assign_stmt => {
                let mut it = inner(pair);
                let target = self.name(it.next().expect("target"));
                let op = match it.next().expect("op").as_str() {
                    "+=" => AssignOp::Add,
                    "-=" => AssignOp::Sub,
                    "*=" => AssignOp::Mul,
                    "/=" => AssignOp::Div,
                    _ => AssignOp::Set,
                };
                let value = self.expr(it.next().expect("value"))?;
                Ok(Stmt::Assign { target, op, value })
            }
            Rule::if_stmt => {
                let mut it = inner(pair);
                let cond = self.expr(it.next().expect("cond"))?;
                let then = self.stmts(it.next().expect("block"))?;
                let otherwise = match it.next() {
                    None => Vec::new(),
                    Some(p) if p.as_rule() == Rule::block => self.stmts(p)?,
                    Some(p) => vec![self.stmt(p)?],
                };
                Ok(Stmt::If {
                    cond,
                    then,
                    otherwise,
                })
            }
            Rule::repeat_stmt => {
                let mut it = inner(pair);
                let count = self.expr(it.next().expect("count"))?;
                let body = self.stmts(it.next().expect("block"))?;
                Ok(Stmt::Repeat { count, body })
            }
            Rule::state_decl => Ok(Stmt::State(self.decls(pair)?)),
            other => Err(Diagnostic::new(
                self.span(&pair),
                format!("unexpected {}", describe(&other)),
            )),
        }
    }

    fn expr(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        pratt()
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| {
                let span = self.span(&op);
                let un = if op.as_rule() == Rule::neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                Ok(Expr {
                    kind: ExprKind::Unary(un, Box::new(rhs?)),
                    span,
                })
            })
            .map_postfix(|x, _| {
                let x = x?;
                let span = x.span;
                Ok(Expr {
                    kind: ExprKind::Transpose(Box::new(x)),
                    span,
                })
            })
            .map_infix(|lhs, op, rhs| {
                let lhs = lhs?;
                if op.as_rule() == Rule::matmul {
                    let span = lhs.span;
                    return Ok(Expr {
                        kind: ExprKind::MatMul(self.span(&op), Box::new(lhs), Box::new(rhs?)),
                        span,
                    });
                }
                let bin = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::pow => BinOp::Pow,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::and => BinOp::And,
                    _ => BinOp::Or,
                };
                let span = lhs.span;
                let op_span = self.span(&op);
                Ok(Expr {
                    kind: ExprKind::Binary(bin, op_span, Box::new(lhs), Box::new(rhs?)),
                    span,
                })
            })
            .parse(pair.into_inner())
    }

    fn primary(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => {
                let x: f64 = pair
                    .as_str()
                    .parse()
                    .map_err(|_| Diagnostic::new(span, "malformed number"))?;
                if !x.is_finite() {
                    return Err(Diagnostic::new(
                        span,
                        format!(
                            "`{}` is too large for a number (the largest is about 1.8e308)",
                            pair.as_str()
                        ),
                    ));
                }
                ExprKind::Num(x)
            }
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident => ExprKind::Var(pair.as_str().to_string()),
            Rule::expr => return self.expr(pair),
            Rule::call => {
                let mut it = inner(pair);
                let name = self.name(it.next().expect("callee"));
                let args = it
                    .map(|a| self.expr(a))
                    .collect::<Result<_, Diagnostic>>()?;
                ExprKind::Call(name, args)
            }
            Rule::if_expr => {
                let mut it = inner(pair);
                let c = self.expr(it.next().expect("cond"))?;
                let a = self.expr(it.next().expect("then"))?;
                let b = it.next().expect("else");
                let b = if b.as_rule() == Rule::if_expr {
                    self.primary(b)?
                } else {
                    self.expr(b)?
                };
                ExprKind::If(Box::new(c), Box::new(a), Box::new(b))
            }
            other => {
                return Err(Diagnostic::new(
                    span,
                    format!("unexpected {}", describe(&other)),
                ))
            }
        };
        Ok(Expr { kind, span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_rule_with_every_kind_of_item() {
        let rules = parse_rules(
            r#"
            /// Doc line.
            pub Demo {
                hyper lr = 0.1, flag = false; // a comment
                state m = 0;
                scalar s = 1;
                let x = -g^2 + if flag { 1 } else { 2 };
                if x > 0 { m += x; } else if x < 0 { m = 0; } else { m -= 1; }
                w -= lr * select(m > 0, m, -m);
            }"#,
        )
        .unwrap();
        let r = &rules[0];
        assert_eq!(r.docs, vec![" Doc line.".to_string()]);
        assert_eq!(r.vis.as_deref(), Some("pub"));
        assert_eq!(r.name.text, "Demo");
        assert_eq!(r.hypers.len(), 2);
        assert_eq!(r.buffers.len(), 1);
        assert_eq!(r.scalars.len(), 1);
        assert_eq!(r.body.len(), 3);
    }

    #[test]
    fn doc_attributes_as_the_macro_writes_them() {
        let rules = parse_rules(r#"# [doc = " A \"quoted\" doc."] R { w -= g ; }"#).unwrap();
        assert_eq!(rules[0].docs, vec![r#" A "quoted" doc."#.to_string()]);
        let rules = parse_rules(r##"# [doc = r#" raw "doc""#] R { w -= g ; }"##).unwrap();
        assert_eq!(rules[0].docs, vec![r#" raw "doc""#.to_string()]);
    }

    #[test]
    fn names_may_start_with_a_keyword() {
        let rules = parse_rules(
            "R { state state_sum = 0; let iffy = 1; state_sum = state_sum + iffy; letter = 2; }",
        )
        .unwrap();
        assert_eq!(rules[0].buffers[0].name.text, "state_sum");
        assert_eq!(rules[0].body.len(), 3);
        assert!(
            matches!(&rules[0].body[2], Stmt::Assign { target, .. } if target.text == "letter")
        );
    }

    #[test]
    fn power_binds_tighter_than_negation() {
        let rules = parse_rules("R { w = -g^2; }").unwrap();
        let Stmt::Assign { value, .. } = &rules[0].body[0] else {
            panic!("assignment expected")
        };
        assert!(matches!(value.kind, ExprKind::Unary(UnOp::Neg, _)));
    }

    #[test]
    fn syntax_error_names_what_was_found() {
        let err = parse_rules("R { w -= lr * ; }").unwrap_err();
        assert!(err.message.starts_with("syntax error: expected"), "{err}");
        assert!(err.message.contains("found `;`"), "{err}");
        assert_eq!(err.span.start, 14);
    }

    #[test]
    fn habits_from_other_languages_get_their_own_message() {
        let err = parse_rules("R { w -= g**2; }").unwrap_err();
        assert!(err.message.contains("`^`"), "{err}");
        let err = parse_rules("R { for i in 0 { w -= g; } }").unwrap_err();
        assert!(err.message.contains("no `for` loops"), "{err}");
        assert!(err.message.contains("`repeat n { ... }`"), "{err}");
        assert_eq!(&"R { for i"[err.span.start..err.span.end], "for");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("R {{ w -= {}g{}; }}", "(".repeat(5000), ")".repeat(5000));
        let err = parse_rules(&text).unwrap_err();
        assert!(err.message.contains("nests more than"), "{err}");
        let text = format!("R {{ w -= {}g; }}", "-".repeat(5000));
        assert!(parse_rules(&text).is_err());
    }

    #[test]
    fn characters_outside_ascii_are_named_where_they_are() {
        let err = parse_rules("pub Rü { w -= g; }").unwrap_err();
        assert!(err.message.contains("`ü`"), "{err}");
        assert_eq!(err.span.start, "pub R".len());
        let err = parse_rules("R { w -= 0.1 × g; }").unwrap_err();
        assert!(err.message.contains("write `*`"), "{err}");
        // Doc lines, comments and strings may hold any text.
        assert!(parse_rules("/// Schaul–LeCun: η ≥ 0.\nR { w -= g; } // ü").is_ok());
        assert!(parse_rules("# [doc = \" η ≥ 0\"] R { w -= g; }").is_ok());
    }

    #[test]
    fn numbers_beyond_f64_are_refused() {
        let err = parse_rules("R { w -= 1e400 * g; }").unwrap_err();
        assert!(err.message.contains("too large"), "{err}");
    }
}
