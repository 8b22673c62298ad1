//! The syntax tree of a rule file or an `optimizer!`/`network!` call; every
//! node carries the byte range of the text it was parsed from.

pub use crate::span::Span;

/// A name and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The text.
    pub text: String,
    /// Where it is written.
    pub span: Span,
}

/// One `optimizer!` rule.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// The doc comment lines.
    pub docs: Vec<String>,
    /// `pub`, `pub(crate)`, ... as written (empty for private).
    pub vis: Option<String>,
    /// The generated type's name.
    pub name: Name,
    /// `hyper` declarations, in order.
    pub hypers: Vec<Decl>,
    /// `state` (per-element) declarations, in order.
    pub buffers: Vec<Decl>,
    /// `scalar` (per-tensor) declarations, in order.
    pub scalars: Vec<Decl>,
    /// `input` declarations: per-element slices the caller passes beside `g`.
    pub inputs: Vec<Name>,
    /// Each input's role as written (`input h: curvature`), if it has one.
    pub input_roles: Vec<Option<Name>>,
    /// The statements, in order.
    pub body: Vec<Stmt>,
    /// The rule's text as the parser saw it (for a preset once expanded,
    /// the expanded rule written out by [`crate::print`]).
    pub source: String,
    /// The whole rule's range.
    pub span: Span,
    /// For a preset (`pub AdamW = Adam { ... }`), what it takes from its
    /// base; the other fields then hold only the docs, visibility and name
    /// until [`crate::preset::expand`] fills them from the base.
    pub preset: Option<PresetOf>,
}

/// What a preset changes in the rule it is defined from.
#[derive(Debug, Clone)]
pub struct PresetOf {
    /// The rule it is defined from, as written.
    pub base: Name,
    /// `hyper name = value`: new defaults; still hyperparameters.
    pub defaults: Vec<Setting>,
    /// `let name = value`: hyperparameters fixed to a value; the preset has
    /// no hyperparameter of that name.
    pub fixed: Vec<Setting>,
}

/// `name = value` in a preset.
#[derive(Debug, Clone)]
pub struct Setting {
    /// The hyperparameter.
    pub name: Name,
    /// Its value as written (a number, `-` a number, `true` or `false`).
    pub value: Expr,
}

/// One `network!` spec.
#[derive(Debug, Clone)]
pub struct NetDef {
    /// The doc comment lines.
    pub docs: Vec<String>,
    /// Visibility as written.
    pub vis: Option<String>,
    /// The generated type's name.
    pub name: Name,
    /// The items in order.
    pub items: Vec<NetItem>,
}

/// An item of a network spec, with the span of its number or name.
#[derive(Debug, Clone)]
pub enum NetItem {
    /// `input N;`
    Input(Number),
    /// `dense N activation;`
    Dense(Number, Name),
    /// `loss name;`
    Loss(Name),
}

/// A number literal as written, with its span.
#[derive(Debug, Clone)]
pub struct Number {
    /// The text.
    pub text: String,
    /// Where it is.
    pub span: Span,
}

/// A declared name with its default or initial value.
#[derive(Debug, Clone)]
pub struct Decl {
    /// The name.
    pub name: Name,
    /// The default (hyper) or initial value (state).
    pub value: Expr,
    /// `where lo <= name < hi`: the values a hyperparameter accepts.
    pub range: Option<RangeDecl>,
    /// `name: q8`: how a state buffer is stored, as written.
    pub storage: Option<Name>,
    /// The shape, for a state buffer declared with one (`r: [rows]`).
    pub shape: Option<ShapeDecl>,
}

/// A declared shape: `[rows]`, `[cols]`, `[rows, cols]`, `[rows, rows]`, ...
#[derive(Debug, Clone)]
pub struct ShapeDecl {
    /// Each dimension as written (`rows`, `cols` or `1`).
    pub dims: Vec<Name>,
    /// Where the brackets are.
    pub span: Span,
}

/// One side of a range: the bound and whether it is included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The bound (`inf` and `-inf` allowed).
    pub value: f64,
    /// `<=` (included) or `<` (excluded).
    pub inclusive: bool,
}

/// The values a hyperparameter accepts: `lo <= x < hi` and the like.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    /// The lower bound, if any.
    pub lo: Option<Bound>,
    /// The upper bound, if any.
    pub hi: Option<Bound>,
}

impl Range {
    /// Whether `x` is in the range (NaN never is).
    pub fn contains(&self, x: f64) -> bool {
        let lo = self.lo.is_none_or(|b| {
            if b.inclusive {
                b.value <= x
            } else {
                b.value < x
            }
        });
        let hi = self.hi.is_none_or(|b| {
            if b.inclusive {
                x <= b.value
            } else {
                x < b.value
            }
        });
        lo && hi && !x.is_nan()
    }

    /// The range as the language writes it, for `name`: `0 <= beta1 < 1`.
    pub fn describe(&self, name: &str) -> String {
        let num = |x: f64| {
            if x == f64::INFINITY {
                "inf".to_string()
            } else if x == f64::NEG_INFINITY {
                "-inf".to_string()
            } else {
                format!("{x}")
            }
        };
        let op = |inclusive: bool| if inclusive { "<=" } else { "<" };
        let mut out = String::new();
        if let Some(b) = self.lo {
            out += &format!("{} {} ", num(b.value), op(b.inclusive));
        }
        out += name;
        if let Some(b) = self.hi {
            out += &format!(" {} {}", op(b.inclusive), num(b.value));
        }
        out
    }
}

/// A range as written: `where 0 <= b1 < 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeDecl {
    /// The name it constrains, as written in the clause.
    pub name: Name,
    /// The lower bound, if any.
    pub lo: Option<Bound>,
    /// The upper bound, if any.
    pub hi: Option<Bound>,
    /// The clause's position.
    pub span: Span,
}

/// A compound-assignment operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `+=`
    Add,
    /// `-=`
    Sub,
    /// `*=`
    Mul,
    /// `/=`
    Div,
}

impl AssignOp {
    /// The operator a compound assignment applies (`x += v` is `x = x + v`);
    /// `None` for `=`.
    pub fn bin_op(self) -> Option<BinOp> {
        match self {
            AssignOp::Set => None,
            AssignOp::Add => Some(BinOp::Add),
            AssignOp::Sub => Some(BinOp::Sub),
            AssignOp::Mul => Some(BinOp::Mul),
            AssignOp::Div => Some(BinOp::Div),
        }
    }
}

/// A statement.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// `let name = value;`
    Let {
        /// The new name.
        name: Name,
        /// Its value.
        value: Expr,
    },
    /// `target op value;`
    Assign {
        /// What is assigned.
        target: Name,
        /// `=`, `+=`, ...
        op: AssignOp,
        /// The right-hand side.
        value: Expr,
    },
    /// `if cond { .. } else { .. }`
    If {
        /// The condition.
        cond: Expr,
        /// Statements run where it holds.
        then: Vec<Stmt>,
        /// Statements run elsewhere (empty without `else`).
        otherwise: Vec<Stmt>,
    },
    /// `repeat count { body }`.
    Repeat {
        /// How many times (a constant or a hyperparameter).
        count: Expr,
        /// The statements repeated.
        body: Vec<Stmt>,
    },
    /// `state ...;` inside a block: buffers that exist where the block runs.
    State(Vec<Decl>),
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `!b`
    Not,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^`
    Pow,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `&&`
    And,
    /// `||`
    Or,
}

impl BinOp {
    /// Whether the operator compares two numbers.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
    /// Whether the operator combines two booleans.
    pub fn is_logic(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// An expression and where it is: for an operator application, the range
/// of its first operand's first token (errors about the whole expression
/// point there); `op` is the operator's own range.
#[derive(Debug, Clone)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub span: Span,
}

/// The forms of expression.
#[derive(Debug, Clone)]
pub enum ExprKind {
    /// A number literal.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A name: `w`, `g`, `t`, a hyper, a state, a `let`.
    Var(String),
    /// `-x`, `!b`.
    Unary(UnOp, Box<Expr>),
    /// `a op b`, with the operator's range.
    Binary(BinOp, Span, Box<Expr>, Box<Expr>),
    /// `f(args)`: a function or a reduction.
    Call(Name, Vec<Expr>),
    /// `if c { a } else { b }`, also `select(c, a, b)`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `a @ b` (the span is the `@`).
    MatMul(Span, Box<Expr>, Box<Expr>),
    /// `x^T`.
    Transpose(Box<Expr>),
}
