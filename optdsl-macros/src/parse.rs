//! Tokens -> text with a span table -> pest pairs -> syntax tree.
//!
//! The macro's input is tokens. They are written out as text, a space after
//! each token except a joint punctuation (so `-` `=` stays `-=`), and beside it
//! a table from byte offsets to token spans. pest parses the text; its error
//! offsets and every node's start are mapped back through the table, so errors
//! point at the offending token.

use crate::ast::{
    AssignOp, BinOp, Decl, Expr, ExprKind, Name, NetDef, NetItem, Number, RuleDef, Stmt, UnOp,
};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// The macro's tokens as text, with the span of the token at each offset.
pub struct Source {
    /// The text pest parses.
    pub text: String,
    /// `(start, end, span)` of every token, in order.
    spans: Vec<(usize, usize, Span)>,
}

impl Source {
    /// Writes `tokens` out as text and records their spans.
    pub fn new(tokens: TokenStream) -> Self {
        let mut src = Source {
            text: String::new(),
            spans: Vec::new(),
        };
        src.flatten(tokens);
        src
    }

    fn push(&mut self, text: &str, span: Span, space: bool) {
        let start = self.text.len();
        self.text.push_str(text);
        self.spans.push((start, self.text.len(), span));
        if space {
            self.text.push(' ');
        }
    }

    fn flatten(&mut self, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    if !open.is_empty() {
                        self.push(open, g.span_open(), true);
                    }
                    self.flatten(g.stream());
                    if !close.is_empty() {
                        self.push(close, g.span_close(), true);
                    }
                }
                TokenTree::Ident(i) => self.push(&i.to_string(), i.span(), true),
                TokenTree::Punct(p) => {
                    let joint = p.spacing() == proc_macro2::Spacing::Joint;
                    self.push(&p.as_char().to_string(), p.span(), !joint)
                }
                TokenTree::Literal(l) => self.push(&l.to_string(), l.span(), true),
            }
        }
    }

    /// The span of the token at or after byte `offset` (the last token's at the end).
    pub fn span_at(&self, offset: usize) -> Span {
        let i = self.spans.partition_point(|&(_, end, _)| end <= offset);
        match self.spans.get(i).or(self.spans.last()) {
            Some(&(_, _, span)) => span,
            None => Span::call_site(),
        }
    }
}

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
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::not))
            .op(Op::infix(Rule::pow, Assoc::Right))
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
        Rule::doc => "a doc comment".into(),
        Rule::vis | Rule::k_pub => "`pub`".into(),
        Rule::k_hyper => "`hyper`".into(),
        Rule::k_state => "`state`".into(),
        Rule::k_scalar => "`scalar`".into(),
        Rule::k_input => "`input`".into(),
        Rule::k_let => "`let`".into(),
        Rule::k_if => "`if`".into(),
        Rule::k_else => "`else`".into(),
        Rule::k_dense => "`dense`".into(),
        Rule::k_loss => "`loss`".into(),
        Rule::hyper_decl => "`hyper`".into(),
        Rule::state_decl => "`state`".into(),
        Rule::scalar_decl => "`scalar`".into(),
        Rule::input_decl => "`input`".into(),
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
        | Rule::pow => "an operator".into(),
        Rule::neg => "`-`".into(),
        Rule::not => "`!`".into(),
        other => format!("{other:?}"),
    }
}

fn syntax_error(src: &Source, err: pest::error::Error<Rule>) -> syn::Error {
    let offset = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let found = src.text[offset.min(src.text.len())..]
        .split_whitespace()
        .next()
        .map(|t| format!("`{t}`"))
        .unwrap_or_else(|| "the end of the rule".to_string());
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
            wanted.dedup();
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
    syn::Error::new(src.span_at(offset), msg)
}

/// Parses the tokens of one `network!` call into specs.
pub fn parse_networks(tokens: TokenStream) -> syn::Result<Vec<NetDef>> {
    let src = Source::new(tokens);
    let mut pairs = Grammar::parse(Rule::networks, &src.text).map_err(|e| syntax_error(&src, e))?;
    let top = pairs.next().expect("networks matched");
    let b = Builder { src: &src };
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

/// Parses the tokens of one `optimizer!` call into rules.
pub fn parse_rules(tokens: TokenStream) -> syn::Result<Vec<RuleDef>> {
    let src = Source::new(tokens);
    let mut pairs = Grammar::parse(Rule::rules, &src.text).map_err(|e| syntax_error(&src, e))?;
    let top = pairs.next().expect("rules matched");
    let mut rules = Vec::new();
    for pair in top.into_inner() {
        if pair.as_rule() == Rule::rule_def {
            rules.push(Builder { src: &src }.rule_def(pair)?);
        }
    }
    Ok(rules)
}

struct Builder<'a> {
    src: &'a Source,
}

impl Builder<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        self.src.span_at(pair.as_span().start())
    }

    /// The text of a `#[doc = "..."]` attribute (a doc comment).
    fn doc(&self, pair: Pair<Rule>) -> syn::Result<String> {
        let lit = inner(pair).next().expect("doc has a string");
        let text: syn::LitStr =
            syn::parse_str(lit.as_str()).map_err(|e| syn::Error::new(self.span(&lit), e))?;
        Ok(text.value())
    }

    fn name(&self, pair: Pair<Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn rule_def(&self, pair: Pair<Rule>) -> syn::Result<RuleDef> {
        let source = pair.as_str().to_string();
        let mut def = RuleDef {
            docs: Vec::new(),
            vis: None,
            name: Name {
                text: String::new(),
                span: self.span(&pair),
            },
            hypers: Vec::new(),
            buffers: Vec::new(),
            scalars: Vec::new(),
            inputs: Vec::new(),
            body: Vec::new(),
            source,
        };
        for p in inner(pair) {
            match p.as_rule() {
                Rule::doc => def.docs.push(self.doc(p)?),
                Rule::vis => def.vis = Some(p.as_str().split_whitespace().collect()),
                Rule::rule_name => def.name = self.name(inner(p).next().expect("ident")),
                Rule::hyper_decl => def.hypers.extend(self.decls(p)?),
                Rule::state_decl => def.buffers.extend(self.decls(p)?),
                Rule::scalar_decl => def.scalars.extend(self.decls(p)?),
                Rule::input_decl => def.inputs.extend(
                    inner(p)
                        .filter(|n| n.as_rule() == Rule::ident)
                        .map(|n| self.name(n)),
                ),
                _ => def.body.push(self.stmt(p)?),
            }
        }
        Ok(def)
    }

    fn decls(&self, pair: Pair<Rule>) -> syn::Result<Vec<Decl>> {
        inner(pair)
            .filter(|item| item.as_rule() == Rule::init_item)
            .map(|item| {
                let mut it = inner(item);
                let name = self.name(it.next().expect("name"));
                let value = self.expr(it.next().expect("value"))?;
                Ok(Decl { name, value })
            })
            .collect()
    }

    fn stmts(&self, pair: Pair<Rule>) -> syn::Result<Vec<Stmt>> {
        inner(pair).map(|p| self.stmt(p)).collect()
    }

    fn stmt(&self, pair: Pair<Rule>) -> syn::Result<Stmt> {
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
            other => Err(syn::Error::new(
                self.span(&pair),
                format!("unexpected {}", describe(&other)),
            )),
        }
    }

    fn expr(&self, pair: Pair<Rule>) -> syn::Result<Expr> {
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
            .map_infix(|lhs, op, rhs| {
                let lhs = lhs?;
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
                Ok(Expr {
                    kind: ExprKind::Binary(bin, Box::new(lhs), Box::new(rhs?)),
                    span,
                })
            })
            .parse(pair.into_inner())
    }

    fn primary(&self, pair: Pair<Rule>) -> syn::Result<Expr> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => {
                let x: f64 = pair
                    .as_str()
                    .parse()
                    .map_err(|_| syn::Error::new(span, "malformed number"))?;
                ExprKind::Num(x)
            }
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::ident => ExprKind::Var(pair.as_str().to_string()),
            Rule::expr => return self.expr(pair),
            Rule::call => {
                let mut it = inner(pair);
                let name = self.name(it.next().expect("callee"));
                let args = it.map(|a| self.expr(a)).collect::<syn::Result<_>>()?;
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
                return Err(syn::Error::new(
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
    use quote::quote;

    #[test]
    fn joint_punctuation_stays_together() {
        let src = Source::new(quote!(w -= lr * g; a <= b && c));
        assert_eq!(src.text, "w -= lr * g ; a <= b && c ");
    }

    #[test]
    fn parses_a_rule_with_every_kind_of_item() {
        let rules = parse_rules(quote! {
            /// Doc line.
            pub Demo {
                hyper lr = 0.1, flag = false;
                state m = 0;
                scalar s = 1;
                let x = -g^2 + if flag { 1 } else { 2 };
                if x > 0 { m += x; } else if x < 0 { m = 0; } else { m -= 1; }
                w -= lr * select(m > 0, m, -m);
            }
        })
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
    fn names_may_start_with_a_keyword() {
        let rules = parse_rules(quote!(R { state state_sum = 0; let iffy = 1; state_sum = state_sum + iffy; letter = 2; })).unwrap();
        assert_eq!(rules[0].buffers[0].name.text, "state_sum");
        assert_eq!(rules[0].body.len(), 3);
        assert!(
            matches!(&rules[0].body[2], Stmt::Assign { target, .. } if target.text == "letter")
        );
    }

    #[test]
    fn power_binds_tighter_than_negation() {
        let rules = parse_rules(quote!(R { w = -g^2; })).unwrap();
        let Stmt::Assign { value, .. } = &rules[0].body[0] else {
            panic!("assignment expected")
        };
        assert!(matches!(value.kind, ExprKind::Unary(UnOp::Neg, _)));
    }

    #[test]
    fn syntax_error_names_what_was_found() {
        let err = match parse_rules(quote!(R { w -= lr * ; })) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("should fail"),
        };
        assert!(err.starts_with("syntax error: expected"), "{err}");
        assert!(err.contains("found `;`"), "{err}");
    }
}
