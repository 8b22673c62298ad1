//! Lowering: the typed tree becomes SSA values with common subexpressions
//! shared, constants folded and `x^2` turned into `x*x`; statements run in
//! order, and an `if` merges what its branches assigned by selection.

use crate::ast::{BinOp, UnOp};
use crate::ir::{Hyper, Id, Kind, Op, Program, StateSlot, Ty, Value};
use crate::typed::{Default, TExpr, TNode, TStmt, TypedRule, Var};
use std::collections::{BTreeMap, HashMap};

/// Lowers a checked rule.
pub fn lower(rule: &TypedRule) -> Program {
    let mut l = Lowerer {
        values: Vec::new(),
        memo: HashMap::new(),
        vars: BTreeMap::new(),
    };
    let hypers: Vec<Hyper> = rule
        .hypers
        .iter()
        .map(|h| Hyper {
            name: h.name.clone(),
            default: h.default,
            range: h.range,
        })
        .collect();
    for (i, h) in hypers.iter().enumerate() {
        let ty = match h.default {
            Default::Bool(_) => Ty::Bool,
            Default::Num(_) => Ty::Num,
        };
        let id = l.intern(Op::Hyper(i), ty, Kind::Scalar);
        l.vars.insert(Var::Hyper(i), id);
    }
    let w = l.intern(Op::Param, Ty::Num, Kind::Element);
    let g = l.intern(Op::Grad, Ty::Num, Kind::Element);
    let t = l.intern(Op::Step, Ty::Num, Kind::Scalar);
    for i in 0..rule.inputs.len() {
        let id = l.intern(Op::Input(i), Ty::Num, Kind::Element);
        l.vars.insert(Var::Input(i), id);
    }
    l.vars.insert(Var::Param, w);
    l.vars.insert(Var::Grad, g);
    l.vars.insert(Var::Step, t);
    let buffers: Vec<StateSlot> = rule
        .buffers
        .iter()
        .map(|d| StateSlot {
            name: d.name.text.clone(),
            init: l.expr(&d.init),
        })
        .collect();
    let scalars: Vec<StateSlot> = rule
        .scalars
        .iter()
        .map(|d| StateSlot {
            name: d.name.text.clone(),
            init: l.expr(&d.init),
        })
        .collect();
    let buffer_in: Vec<Id> = (0..buffers.len())
        .map(|i| {
            let id = l.intern(Op::Buffer(i), Ty::Num, Kind::Element);
            l.vars.insert(Var::Buffer(i), id);
            id
        })
        .collect();
    let scalar_in: Vec<Id> = (0..scalars.len())
        .map(|i| {
            let id = l.intern(Op::ScalarState(i), Ty::Num, Kind::Scalar);
            l.vars.insert(Var::Scalar(i), id);
            id
        })
        .collect();
    let tensor = rule.shaped.then(|| crate::shaped::TensorBody {
        body: rule.body.clone(),
        shapes: rule.buffers.iter().map(|b| b.shape).collect(),
        when: rule.buffers.iter().map(|b| b.when.clone()).collect(),
        lets: rule.lets,
        needs_matrix: rule.needs_matrix,
    });
    if tensor.is_none() {
        l.stmts(&rule.body);
    }
    let changed = |var: Var, before: Id| l.vars.get(&var).copied().filter(|&id| id != before);
    let w_out = changed(Var::Param, w);
    let buffer_out = buffer_in
        .iter()
        .enumerate()
        .map(|(i, &id)| changed(Var::Buffer(i), id))
        .collect();
    let scalar_out = scalar_in
        .iter()
        .enumerate()
        .map(|(i, &id)| changed(Var::Scalar(i), id))
        .collect();
    let stages = l.values.iter().map(|v| v.stage).max().unwrap_or(0);
    let mut program = Program {
        name: rule.name.clone(),
        docs: rule.docs.clone(),
        vis: rule.vis.clone(),
        source: rule.source.clone(),
        hypers,
        buffers,
        storage: rule.buffers.iter().map(|b| b.storage.0).collect(),
        scalars,
        inputs: rule.inputs.iter().map(|n| n.text.clone()).collect(),
        input_roles: rule.input_roles.clone(),
        values: l.values,
        w_out,
        buffer_out,
        scalar_out,
        stages,
        fingerprint: 0,
        tensor,
    };
    program.fingerprint = program.fingerprint_of();
    program
}

struct Lowerer {
    values: Vec<Value>,
    memo: HashMap<Op, Id>,
    /// The current value of every variable in scope.
    vars: BTreeMap<Var, Id>,
}

impl Lowerer {
    /// The value computing `op`, shared if it already exists.
    fn intern(&mut self, op: Op, ty: Ty, kind: Kind) -> Id {
        if let Some(&id) = self.memo.get(&op) {
            return id;
        }
        let ins = op.operands();
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
            if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) {
                return self.num(op.arith(x, y));
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

    fn expr(&mut self, e: &TExpr) -> Id {
        match &e.node {
            TNode::Num(x) => self.num(*x),
            TNode::Bool(b) => self.intern(Op::Bool(*b), Ty::Bool, Kind::Const),
            // Shapes' own names never reach element-wise lowering: a rule
            // that uses them is lowered as a tensor body, and state's initial
            // values may not name them.
            TNode::Var(v) => self.vars.get(v).copied().unwrap_or_else(|| self.num(0.0)),
            TNode::Unary(op, x) => {
                let x = self.expr(x);
                if *op == UnOp::Neg {
                    if let Some(v) = self.const_of(x) {
                        return self.num(-v);
                    }
                }
                let v = &self.values[x];
                let (ty, kind) = (v.ty, v.kind);
                self.intern(Op::Unary(*op, x), ty, kind)
            }
            TNode::Binary(op, a, b) => {
                let a = self.expr(a);
                let b = self.expr(b);
                self.binary(*op, a, b)
            }
            // A condition written as a literal (a preset's fixed `true`)
            // lowers only the branch it takes.
            TNode::Select(c, a, b) if matches!(c.node, TNode::Bool(_)) => {
                let taken = if matches!(c.node, TNode::Bool(true)) {
                    a
                } else {
                    b
                };
                self.expr(taken)
            }
            TNode::Select(c, a, b) => {
                let c = self.expr(c);
                let a = self.expr(a);
                let b = self.expr(b);
                self.select(c, a, b)
            }
            TNode::Reduce(r, x) | TNode::Axis(_, r, x) => {
                let x = self.expr(x);
                self.intern(Op::Reduce(*r, x), Ty::Num, Kind::Scalar)
            }
            TNode::Draw(d, k) => self.intern(Op::Draw(*d, *k), Ty::Num, Kind::Element),
            // Of two numbers (the checker lets only those reach here).
            TNode::MatMul(a, b) => {
                let a = self.expr(a);
                let b = self.expr(b);
                self.binary(BinOp::Mul, a, b)
            }
            TNode::Transpose(x) => self.expr(x),
            // Never reached: `eye` takes a square matrix, which makes a rule
            // one with shapes.
            TNode::Eye(_) => self.num(1.0),
            TNode::Call(f, args) => {
                let ids: Vec<Id> = args.iter().map(|a| self.expr(a)).collect();
                let kind = ids
                    .iter()
                    .map(|&i| self.values[i].kind)
                    .max()
                    .unwrap_or(Kind::Const);
                self.intern(Op::Func(*f, ids), Ty::Num, kind)
            }
        }
    }

    fn stmts(&mut self, stmts: &[TStmt]) {
        for s in stmts {
            match s {
                TStmt::Let { var, value } => {
                    let id = self.expr(value);
                    self.vars.insert(Var::Let(*var), id);
                }
                TStmt::Assign { target, op, value } => {
                    let v = self.expr(value);
                    let old = self.vars[target];
                    let new = match op.bin_op() {
                        None => v,
                        Some(bin) => self.binary(bin, old, v),
                    };
                    self.vars.insert(*target, new);
                }
                // Only rules with shapes repeat, and they are not lowered here.
                TStmt::Repeat { body, .. } => self.stmts(body),
                // A literal condition (a preset's fixed `true`): only the
                // branch taken is lowered, so the program is the one the rule
                // written without the `if` gives.
                TStmt::If {
                    cond:
                        TExpr {
                            node: TNode::Bool(b),
                            ..
                        },
                    then,
                    otherwise,
                } => self.stmts(if *b { then } else { otherwise }),
                TStmt::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let c = self.expr(cond);
                    let before = self.vars.clone();
                    self.stmts(then);
                    let after_then = std::mem::replace(&mut self.vars, before.clone());
                    self.stmts(otherwise);
                    let after_else = std::mem::replace(&mut self.vars, before);
                    // What existed before the `if`, as each branch left it.
                    let names: Vec<Var> = self.vars.keys().copied().collect();
                    for var in names {
                        let (a, b) = (after_then[&var], after_else[&var]);
                        let merged = if a == b { a } else { self.select(c, a, b) };
                        self.vars.insert(var, merged);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::Reduction;

    fn lowered(text: &str) -> Program {
        let rules = crate::parse::parse_rules(text).unwrap();
        lower(&crate::check::check(&rules[0]).unwrap())
    }

    #[test]
    fn shared_subexpressions_are_computed_once() {
        let p = lowered("R { w -= g * g + g * g; }");
        let muls = p
            .values
            .iter()
            .filter(|v| matches!(v.op, Op::Binary(BinOp::Mul, ..)))
            .count();
        assert_eq!(muls, 1);
    }

    #[test]
    fn constants_fold_and_squares_multiply() {
        let p = lowered("R { hyper b = 0.9; w -= (1 - 0.5) * g^2; }");
        assert!(p.values.iter().any(|v| v.op == Op::Num(0.5f64.to_bits())));
        assert!(!p
            .values
            .iter()
            .any(|v| matches!(v.op, Op::Binary(BinOp::Pow, ..))));
    }

    #[test]
    fn reductions_set_stages_and_statement_order_holds() {
        let p = lowered(
            "R { state m = 0; scalar s = 0;
            m = 0.9 * m + g; let r = norm(m) / norm(w); s += r; w -= r * m; }",
        );
        assert_eq!(p.stages, 1);
        let w_out = p.w_out.unwrap();
        assert_eq!(p.values[w_out].stage, 1);
        assert!(p.scalar_out[0].is_some());
        assert_eq!(p.values[p.scalar_out[0].unwrap()].kind, Kind::Scalar);
        assert!(p
            .values
            .iter()
            .any(|v| matches!(v.op, Op::Reduce(Reduction::Norm, _))));
    }

    #[test]
    fn each_draw_is_a_stream_of_its_own_and_a_let_is_one_draw() {
        let p = lowered("R { state m = rand(); let z = randn(); w -= z * z + randn() + m; }");
        let draws: Vec<_> = p.values.iter().filter_map(|v| v.op.draw()).collect();
        assert_eq!(
            draws,
            [
                (crate::functions::Draw::Uniform, 0),
                (crate::functions::Draw::Normal, 1),
                (crate::functions::Draw::Normal, 2)
            ]
        );
        assert_eq!(p.streams(), 3);
        assert!(p
            .values
            .iter()
            .filter(|v| v.op.draw().is_some())
            .all(|v| v.kind == Kind::Element));
    }

    #[test]
    fn a_literal_condition_lowers_only_the_branch_it_takes() {
        let with_if = lowered(
            "R { hyper lr = 0.1; state m = 0; if true { m = m + g; } else { m = m - g; }
             let s = if false { 2 } else { lr }; w -= s * m; }",
        );
        let plain = lowered("R { hyper lr = 0.1; state m = 0; m = m + g; w -= lr * m; }");
        assert_eq!(with_if.values, plain.values);
        assert_eq!(with_if.fingerprint, plain.fingerprint);
    }

    #[test]
    fn if_statements_merge_by_select() {
        let p = lowered("R { state s = 1; if g > 0 { s *= 2; } else { s = 0; } w -= s; }");
        let out = p.buffer_out[0].unwrap();
        assert!(matches!(p.values[out].op, Op::Select(..)));
    }
}
