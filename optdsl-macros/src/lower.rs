//! Lowering: the checked syntax tree becomes SSA values with common
//! subexpressions shared, each value tagged with its kind and its stage (how
//! many reduction passes must run before it can be computed).

use crate::ast::{AssignOp, BinOp, Decl, Expr, ExprKind, RuleDef, Stmt, UnOp};
use crate::check::{function, Kind, Ty};
use proc_macro2::Span;
use std::collections::HashMap;

/// An SSA value's index.
pub type Id = usize;

/// A reduction over the elements of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Σx
    Sum,
    /// Σx / n
    Mean,
    /// sqrt(Σx²)
    Norm,
    /// max |x|
    MaxAbs,
}

/// What a value computes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// A number literal (its f64 bits).
    Num(u64),
    /// A boolean literal.
    Bool(bool),
    /// Hyperparameter `i`.
    Hyper(usize),
    /// The step count `t` (from 1).
    Step,
    /// Scalar state `i` as it was before this step.
    ScalarState(usize),
    /// `w` as it was before this step.
    Param,
    /// `g`.
    Grad,
    /// State buffer `i` as it was before this step.
    Buffer(usize),
    /// Input slice `i`.
    Input(usize),
    /// `-x`, `!b`.
    Unary(UnOp, Id),
    /// `a op b`.
    Binary(BinOp, Id, Id),
    /// A built-in function of numbers.
    Func(&'static str, Vec<Id>),
    /// `if c { a } else { b }`: both computed, one chosen.
    Select(Id, Id, Id),
    /// A reduction of an element value.
    Reduce(Reduction, Id),
}

/// One SSA value.
#[derive(Debug, Clone)]
pub struct Value {
    /// What it computes.
    pub op: Op,
    /// Number or boolean.
    pub ty: Ty,
    /// Constant, per-step scalar, or per-element.
    pub kind: Kind,
    /// Reduction passes needed before it (0: none).
    pub stage: usize,
}

/// A hyperparameter's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
}

/// A lowered hyperparameter.
#[derive(Debug, Clone)]
pub struct Hyper {
    /// Its name.
    pub name: String,
    /// Where it was declared.
    pub span: Span,
    /// Its default.
    pub default: Default,
}

/// A lowered state (buffer or scalar) with the value that initializes it.
#[derive(Debug, Clone)]
pub struct StateSlot {
    /// Its name.
    pub name: String,
    /// The value it starts with.
    pub init: Id,
}

/// A lowered rule: everything code generation needs.
#[derive(Debug, Clone)]
pub struct Program {
    /// The rule's type name and its span.
    pub name: String,
    /// The span of the rule's name.
    pub span: Span,
    /// Doc comment lines.
    pub docs: Vec<String>,
    /// Visibility as written.
    pub vis: Option<String>,
    /// The rule's text.
    pub source: String,
    /// Hyperparameters in order.
    pub hypers: Vec<Hyper>,
    /// Per-element state buffers in order.
    pub buffers: Vec<StateSlot>,
    /// Per-tensor scalar states in order.
    pub scalars: Vec<StateSlot>,
    /// Input names in order.
    pub inputs: Vec<String>,
    /// The SSA values, each after its operands.
    pub values: Vec<Value>,
    /// The new `w`, if the rule assigns it.
    pub w_out: Option<Id>,
    /// The new value of each buffer, if assigned.
    pub buffer_out: Vec<Option<Id>>,
    /// The new value of each scalar state, if assigned.
    pub scalar_out: Vec<Option<Id>>,
    /// How many reduction passes run before the update pass.
    pub stages: usize,
}

impl Program {
    /// Every value that `roots` need, in order, including the roots.
    pub fn closure(&self, roots: impl IntoIterator<Item = Id>) -> Vec<Id> {
        let mut need = vec![false; self.values.len()];
        let mut stack: Vec<Id> = roots.into_iter().collect();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut need[id], true) {
                continue;
            }
            stack.extend(operands(&self.values[id].op));
        }
        (0..self.values.len()).filter(|&i| need[i]).collect()
    }
}

/// The values an op reads.
pub fn operands(op: &Op) -> Vec<Id> {
    match op {
        Op::Unary(_, a) | Op::Reduce(_, a) => vec![*a],
        Op::Binary(_, a, b) => vec![*a, *b],
        Op::Select(c, a, b) => vec![*c, *a, *b],
        Op::Func(_, args) => args.clone(),
        _ => Vec::new(),
    }
}

/// Evaluates a constant expression (a hyperparameter's default).
fn constant(e: &Expr) -> Default {
    match &e.kind {
        ExprKind::Num(x) => Default::Num(*x),
        ExprKind::Bool(b) => Default::Bool(*b),
        ExprKind::Unary(UnOp::Neg, x) => match constant(x) {
            Default::Num(v) => Default::Num(-v),
            d => d,
        },
        ExprKind::Unary(UnOp::Not, x) => match constant(x) {
            Default::Bool(b) => Default::Bool(!b),
            d => d,
        },
        ExprKind::Binary(op, a, b) => match (constant(a), constant(b)) {
            (Default::Num(a), Default::Num(b)) => match op {
                BinOp::Add => Default::Num(a + b),
                BinOp::Sub => Default::Num(a - b),
                BinOp::Mul => Default::Num(a * b),
                BinOp::Div => Default::Num(a / b),
                BinOp::Pow => Default::Num(a.powf(b)),
                BinOp::Lt => Default::Bool(a < b),
                BinOp::Le => Default::Bool(a <= b),
                BinOp::Gt => Default::Bool(a > b),
                BinOp::Ge => Default::Bool(a >= b),
                BinOp::Eq => Default::Bool(a == b),
                _ => Default::Bool(a != b),
            },
            (Default::Bool(a), Default::Bool(b)) => {
                Default::Bool(if *op == BinOp::And { a && b } else { a || b })
            }
            (d, _) => d,
        },
        _ => Default::Num(0.0),
    }
}

/// Lowers a checked rule.
pub fn lower(rule: &RuleDef) -> Program {
    let mut l = Lowerer {
        values: Vec::new(),
        memo: HashMap::new(),
    };
    let hypers: Vec<Hyper> = rule
        .hypers
        .iter()
        .map(|h| Hyper {
            name: h.name.text.clone(),
            span: h.name.span,
            default: constant(&h.value),
        })
        .collect();
    let mut env: HashMap<String, Id> = HashMap::new();
    for (i, h) in hypers.iter().enumerate() {
        let ty = if matches!(h.default, Default::Bool(_)) {
            Ty::Bool
        } else {
            Ty::Num
        };
        env.insert(h.name.clone(), l.intern(Op::Hyper(i), ty, Kind::Scalar));
    }
    let w = l.intern(Op::Param, Ty::Num, Kind::Element);
    let g = l.intern(Op::Grad, Ty::Num, Kind::Element);
    let t = l.intern(Op::Step, Ty::Num, Kind::Scalar);
    let mut scope0: HashMap<String, Id> = env;
    for (i, name) in rule.inputs.iter().enumerate() {
        let id = l.intern(Op::Input(i), Ty::Num, Kind::Element);
        scope0.insert(name.text.clone(), id);
    }
    scope0.insert("w".into(), w);
    scope0.insert("g".into(), g);
    scope0.insert("t".into(), t);
    let mut vars = Vars {
        scopes: vec![scope0],
    };

    let init = |l: &mut Lowerer, vars: &mut Vars, d: &Decl| StateSlot {
        name: d.name.text.clone(),
        init: l.expr(vars, &d.value),
    };
    let buffers: Vec<StateSlot> = rule
        .buffers
        .iter()
        .map(|d| init(&mut l, &mut vars, d))
        .collect();
    let scalars: Vec<StateSlot> = rule
        .scalars
        .iter()
        .map(|d| init(&mut l, &mut vars, d))
        .collect();
    let mut buffer_in = Vec::new();
    for (i, b) in buffers.iter().enumerate() {
        let id = l.intern(Op::Buffer(i), Ty::Num, Kind::Element);
        vars.scopes[0].insert(b.name.clone(), id);
        buffer_in.push(id);
    }
    let mut scalar_in = Vec::new();
    for (i, s) in scalars.iter().enumerate() {
        let id = l.intern(Op::ScalarState(i), Ty::Num, Kind::Scalar);
        vars.scopes[0].insert(s.name.clone(), id);
        scalar_in.push(id);
    }
    l.stmts(&mut vars, &rule.body);
    let top = &vars.scopes[0];
    let changed = |name: &str, before: Id| top.get(name).copied().filter(|&id| id != before);
    let w_out = changed("w", w);
    let buffer_out = buffers
        .iter()
        .zip(&buffer_in)
        .map(|(b, &id)| changed(&b.name, id))
        .collect();
    let scalar_out = scalars
        .iter()
        .zip(&scalar_in)
        .map(|(s, &id)| changed(&s.name, id))
        .collect();
    let stages = l.values.iter().map(|v| v.stage).max().unwrap_or(0);
    Program {
        name: rule.name.text.clone(),
        span: rule.name.span,
        docs: rule.docs.clone(),
        vis: rule.vis.clone(),
        source: rule.source.clone(),
        hypers,
        buffers,
        scalars,
        inputs: rule.inputs.iter().map(|n| n.text.clone()).collect(),
        values: l.values,
        w_out,
        buffer_out,
        scalar_out,
        stages,
    }
}

struct Vars {
    scopes: Vec<HashMap<String, Id>>,
}

impl Vars {
    fn get(&self, name: &str) -> Id {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(name).copied())
            .unwrap_or_else(|| panic!("checked name `{name}`"))
    }
    fn set(&mut self, name: &str, id: Id) {
        for s in self.scopes.iter_mut().rev() {
            if let Some(slot) = s.get_mut(name) {
                *slot = id;
                return;
            }
        }
    }
}

struct Lowerer {
    values: Vec<Value>,
    memo: HashMap<Op, Id>,
}

impl Lowerer {
    /// The value computing `op`, shared if it already exists.
    fn intern(&mut self, op: Op, ty: Ty, kind: Kind) -> Id {
        if let Some(&id) = self.memo.get(&op) {
            return id;
        }
        let ins = operands(&op);
        let mut stage = ins.iter().map(|&i| self.values[i].stage).max().unwrap_or(0);
        if matches!(op, Op::Reduce(..)) {
            stage += 1;
        }
        let id = self.values.len();
        self.values.push(Value {
            op: op.clone(),
            ty,
            kind,
            stage,
        });
        self.memo.insert(op, id);
        id
    }

    fn num(&mut self, x: f64) -> Id {
        self.intern(Op::Num(x.to_bits()), Ty::Num, Kind::Const)
    }

    fn const_of(&self, id: Id) -> Option<f64> {
        match self.values[id].op {
            Op::Num(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    fn binary(&mut self, op: BinOp, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.const_of(a), self.const_of(b)) {
            let folded = match op {
                BinOp::Add => Some(x + y),
                BinOp::Sub => Some(x - y),
                BinOp::Mul => Some(x * y),
                BinOp::Div => Some(x / y),
                _ => None,
            };
            if let Some(v) = folded {
                return self.num(v);
            }
        }
        if op == BinOp::Pow && self.const_of(b) == Some(2.0) {
            return self.binary(BinOp::Mul, a, a);
        }
        let ty = if op.is_comparison() || op.is_logic() {
            Ty::Bool
        } else {
            Ty::Num
        };
        let kind = self.values[a].kind.max(self.values[b].kind);
        self.intern(Op::Binary(op, a, b), ty, kind)
    }

    fn select(&mut self, c: Id, a: Id, b: Id) -> Id {
        if a == b {
            return a;
        }
        let kind = self.values[c]
            .kind
            .max(self.values[a].kind)
            .max(self.values[b].kind);
        let ty = self.values[a].ty;
        self.intern(Op::Select(c, a, b), ty, kind)
    }

    fn expr(&mut self, vars: &mut Vars, e: &Expr) -> Id {
        match &e.kind {
            ExprKind::Num(x) => self.num(*x),
            ExprKind::Bool(b) => self.intern(Op::Bool(*b), Ty::Bool, Kind::Const),
            ExprKind::Var(n) => vars.get(n),
            ExprKind::Unary(op, x) => {
                let x = self.expr(vars, x);
                if *op == UnOp::Neg {
                    if let Some(v) = self.const_of(x) {
                        return self.num(-v);
                    }
                }
                let v = &self.values[x];
                let (ty, kind) = (v.ty, v.kind);
                self.intern(Op::Unary(*op, x), ty, kind)
            }
            ExprKind::Binary(op, a, b) => {
                let a = self.expr(vars, a);
                let b = self.expr(vars, b);
                self.binary(*op, a, b)
            }
            ExprKind::If(c, a, b) => {
                let c = self.expr(vars, c);
                let a = self.expr(vars, a);
                let b = self.expr(vars, b);
                self.select(c, a, b)
            }
            ExprKind::Call(name, args) => {
                let ids: Vec<Id> = args.iter().map(|a| self.expr(vars, a)).collect();
                let n = name.text.as_str();
                let (_, reduction) = function(n).expect("checked function");
                if n == "select" {
                    return self.select(ids[0], ids[1], ids[2]);
                }
                if reduction {
                    let r = match n {
                        "sum" => Reduction::Sum,
                        "mean" => Reduction::Mean,
                        "norm" => Reduction::Norm,
                        _ => Reduction::MaxAbs,
                    };
                    return self.intern(Op::Reduce(r, ids[0]), Ty::Num, Kind::Scalar);
                }
                let kind = ids
                    .iter()
                    .map(|&i| self.values[i].kind)
                    .max()
                    .unwrap_or(Kind::Const);
                let fname = crate::check::FUNCTIONS
                    .iter()
                    .find(|f| f.0 == n)
                    .map(|f| f.0)
                    .expect("checked function");
                self.intern(Op::Func(fname, ids), Ty::Num, kind)
            }
        }
    }

    fn stmts(&mut self, vars: &mut Vars, stmts: &[Stmt]) {
        for s in stmts {
            match s {
                Stmt::Let { name, value } => {
                    let id = self.expr(vars, value);
                    vars.scopes
                        .last_mut()
                        .expect("scope")
                        .insert(name.text.clone(), id);
                }
                Stmt::Assign { target, op, value } => {
                    let v = self.expr(vars, value);
                    let old = vars.get(&target.text);
                    let new = match op {
                        AssignOp::Set => v,
                        AssignOp::Add => self.binary(BinOp::Add, old, v),
                        AssignOp::Sub => self.binary(BinOp::Sub, old, v),
                        AssignOp::Mul => self.binary(BinOp::Mul, old, v),
                        AssignOp::Div => self.binary(BinOp::Div, old, v),
                    };
                    vars.set(&target.text, new);
                }
                Stmt::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let c = self.expr(vars, cond);
                    let before = vars.scopes.clone();
                    vars.scopes.push(HashMap::new());
                    self.stmts(vars, then);
                    vars.scopes.pop();
                    let after_then = std::mem::replace(&mut vars.scopes, before);
                    vars.scopes.push(HashMap::new());
                    self.stmts(vars, otherwise);
                    vars.scopes.pop();
                    for (depth, scope) in after_then.into_iter().enumerate() {
                        for (name, a) in scope {
                            let b = vars.scopes[depth][&name];
                            if a != b {
                                let merged = self.select(c, a, b);
                                vars.scopes[depth].insert(name, merged);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_rules;
    use quote::quote;

    fn lowered(tokens: proc_macro2::TokenStream) -> Program {
        let rules = parse_rules(tokens).unwrap();
        crate::check::check(&rules[0]).unwrap();
        lower(&rules[0])
    }

    #[test]
    fn shared_subexpressions_are_computed_once() {
        let p = lowered(quote!(R { w -= g * g + g * g; }));
        let muls = p
            .values
            .iter()
            .filter(|v| matches!(v.op, Op::Binary(BinOp::Mul, ..)))
            .count();
        assert_eq!(muls, 1);
    }

    #[test]
    fn constants_fold_and_squares_multiply() {
        let p = lowered(quote!(R { hyper b = 0.9; w -= (1 - 0.5) * g^2; }));
        assert!(p.values.iter().any(|v| v.op == Op::Num(0.5f64.to_bits())));
        assert!(!p
            .values
            .iter()
            .any(|v| matches!(v.op, Op::Binary(BinOp::Pow, ..))));
    }

    #[test]
    fn reductions_set_stages_and_statement_order_holds() {
        let p = lowered(quote!(R { state m = 0; scalar s = 0;
            m = 0.9 * m + g; let r = norm(m) / norm(w); s += r; w -= r * m; }));
        assert_eq!(p.stages, 1);
        let w_out = p.w_out.unwrap();
        assert_eq!(p.values[w_out].stage, 1);
        assert!(p.scalar_out[0].is_some());
        assert_eq!(p.values[p.scalar_out[0].unwrap()].kind, Kind::Scalar);
    }

    #[test]
    fn if_statements_merge_by_select() {
        let p = lowered(quote!(R { state s = 1; if g > 0 { s *= 2; } else { s = 0; } w -= s; }));
        let out = p.buffer_out[0].unwrap();
        assert!(matches!(p.values[out].op, Op::Select(..)));
    }
}
