//! Rules with shapes: how a rule is recognized as one (it names `rows`,
//! `cols`, `numel`, `matrix` or `epsilon`, reduces along an axis, multiplies
//! or transposes matrices, repeats, or declares shaped or conditional state),
//! and the checked body such a rule keeps for the runtime's tensor executor.

use crate::ast::{Expr, ExprKind, RuleDef, Stmt};
use crate::functions::Callee;
use crate::typed::{Shape, TExpr, TNode, TStmt};

/// The names a rule with shapes may read: the tensor's dimensions, whether
/// it is a matrix, and the element type's machine epsilon.
pub const SHAPE_NAMES: &[&str] = &["rows", "cols", "numel", "matrix", "epsilon"];

/// The most iterations a `repeat` may run: a constant count, or the upper
/// bound of the hyperparameter's declared range, is at most this.
pub const MAX_REPEAT: f64 = 1e6;

/// Whether `rule` uses anything that needs shapes; such a rule runs on the
/// tensor executor rather than as element-wise passes.
pub fn uses_shapes(rule: &RuleDef) -> bool {
    rule.buffers.iter().any(|d| d.shape.is_some())
        || rule
            .buffers
            .iter()
            .chain(&rule.scalars)
            .any(|d| expr_uses(&d.value))
        || stmts_use(&rule.body)
}

fn stmts_use(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Let { value, .. } | Stmt::Assign { value, .. } => expr_uses(value),
        Stmt::If {
            cond,
            then,
            otherwise,
        } => expr_uses(cond) || stmts_use(then) || stmts_use(otherwise),
        Stmt::Repeat { .. } | Stmt::State(_) => true,
    })
}

fn expr_uses(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Num(_) | ExprKind::Bool(_) => false,
        ExprKind::Var(n) => SHAPE_NAMES.contains(&n.as_str()),
        ExprKind::Unary(_, x) => expr_uses(x),
        ExprKind::Binary(_, _, a, b) => expr_uses(a) || expr_uses(b),
        ExprKind::If(c, a, b) => expr_uses(c) || expr_uses(a) || expr_uses(b),
        ExprKind::Call(name, args) => {
            matches!(
                Callee::lookup(&name.text),
                Some(Callee::Axis(..) | Callee::Transpose | Callee::Eye)
            ) || args.iter().any(expr_uses)
        }
        ExprKind::MatMul(..) | ExprKind::Transpose(_) => true,
    }
}

/// What the tensor executor runs: the checked statements of a rule with
/// shapes, and its buffers' shapes and conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorBody {
    /// The statements, in order.
    pub body: Vec<TStmt>,
    /// Each buffer's shape, in the order of [`crate::Program::buffers`].
    pub shapes: Vec<Shape>,
    /// Each buffer's conditions: it exists where all hold as given.
    pub when: Vec<Vec<(TExpr, bool)>>,
    /// How many `let`s the body has.
    pub lets: usize,
    /// Whether the rule refuses vectors (it multiplies, transposes or
    /// reduces along an axis outside `if matrix { ... }`).
    pub needs_matrix: bool,
}

impl TensorBody {
    /// The body as text without positions, for the program's fingerprint
    /// (the same rule from a file and from `optimizer!` prints the same).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (shape, when) in self.shapes.iter().zip(&self.when) {
            out += &format!("{shape}");
            for (c, holds) in when {
                out += &format!(" if {holds} {}", expr_text(c));
            }
            out += ";";
        }
        out += &format!("lets {} matrix {};", self.lets, self.needs_matrix);
        stmts_text(&self.body, &mut out);
        out
    }
}

fn stmts_text(stmts: &[TStmt], out: &mut String) {
    for s in stmts {
        match s {
            TStmt::Let { var, value } => *out += &format!("let {var} = {};", expr_text(value)),
            TStmt::Assign { target, op, value } => {
                *out += &format!("{target:?} {op:?} {};", expr_text(value))
            }
            TStmt::If {
                cond,
                then,
                otherwise,
            } => {
                *out += &format!("if {} {{", expr_text(cond));
                stmts_text(then, out);
                *out += "} else {";
                stmts_text(otherwise, out);
                *out += "}";
            }
            TStmt::Repeat { count, body } => {
                *out += &format!("repeat {} {{", expr_text(count));
                stmts_text(body, out);
                *out += "}";
            }
        }
    }
}

fn expr_text(e: &TExpr) -> String {
    let inner = match &e.node {
        TNode::Num(x) => format!("{:?}", x.to_bits()),
        TNode::Bool(b) => b.to_string(),
        TNode::Var(v) => format!("{v:?}"),
        TNode::Unary(op, x) => format!("{op:?} {}", expr_text(x)),
        TNode::Binary(op, a, b) => format!("{op:?} {} {}", expr_text(a), expr_text(b)),
        TNode::Call(f, args) => {
            let args: Vec<String> = args.iter().map(expr_text).collect();
            format!("{f:?} {}", args.join(" "))
        }
        TNode::Reduce(r, x) => format!("{r:?} {}", expr_text(x)),
        TNode::Axis(a, r, x) => format!("{a:?}{r:?} {}", expr_text(x)),
        TNode::Select(c, a, b) => {
            format!("select {} {} {}", expr_text(c), expr_text(a), expr_text(b))
        }
        TNode::MatMul(a, b) => format!("matmul {} {}", expr_text(a), expr_text(b)),
        TNode::Transpose(x) => format!("t {}", expr_text(x)),
        TNode::Eye(x) => format!("eye {}", expr_text(x)),
        TNode::Draw(d, k) => format!("{d:?} {k}"),
    };
    format!("({inner} {:?} {:?} {})", e.ty, e.kind, e.shape)
}
