//! A rule's lowered program as data, and a reference interpreter that runs it
//! with ndarray operators, one temporary array per operation (the way the rule
//! would be written with numpy or ndarray). The interpreter is the baseline of
//! `optdsl bench` and an independent check of the fused code.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::rule::{HyperValue, RuleInfo, State};
use ndarray::{Array1, Zip};
use std::borrow::Cow;

/// A binary operator of the IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrBin {
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

/// A built-in function of the IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrFunc {
    /// `sqrt`
    Sqrt,
    /// `abs`
    Abs,
    /// `sign`
    Sign,
    /// `exp`
    Exp,
    /// `ln`
    Ln,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `clamp`
    Clamp,
    /// `float`: a per-step scalar rounded to the element type.
    Float,
}

/// A reduction of the IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrReduce {
    /// `sum`
    Sum,
    /// `mean`
    Mean,
    /// `norm`
    Norm,
    /// `max_abs`
    MaxAbs,
}

/// What an IR value computes; operands are indices of earlier values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IrOp {
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// Hyperparameter `i`.
    Hyper(usize),
    /// The step count.
    Step,
    /// Scalar state `i` before the step.
    ScalarState(usize),
    /// `w` before the step.
    Param,
    /// `g`.
    Grad,
    /// Buffer `i` before the step.
    Buffer(usize),
    /// Input `i`.
    Input(usize),
    /// `-x`
    Neg(usize),
    /// `!b`
    Not(usize),
    /// `a op b`
    Bin(IrBin, usize, usize),
    /// `f(args)`; unused argument slots repeat the first.
    Func(IrFunc, [usize; 3]),
    /// `if c { a } else { b }`
    Select(usize, usize, usize),
    /// A reduction over the tensor.
    Reduce(IrReduce, usize),
}

/// One IR value with its kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IrValue {
    /// What it computes.
    pub op: IrOp,
    /// Per element (else a per-step scalar or constant).
    pub element: bool,
    /// A boolean (else a number).
    pub boolean: bool,
}

/// A rule's lowered program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ir {
    /// The values, each after its operands.
    pub values: &'static [IrValue],
    /// The new `w`, if assigned.
    pub w_out: Option<usize>,
    /// The new value of each buffer, if assigned.
    pub buffer_out: &'static [Option<usize>],
    /// The new value of each scalar state, if assigned.
    pub scalar_out: &'static [Option<usize>],
    /// Each buffer's initial value.
    pub buffer_init: &'static [usize],
}

enum Val<F> {
    S(f64),
    B(bool),
    E(Array1<F>),
    EB(Array1<bool>),
    Gone,
}

/// A value as an array: borrowed if it is one, a broadcast if a scalar.
fn num<F: Float>(v: &Val<F>, n: usize) -> Cow<'_, Array1<F>> {
    match v {
        Val::E(a) => Cow::Borrowed(a),
        Val::S(x) => Cow::Owned(Array1::from_elem(n, F::from_f64(*x))),
        _ => unreachable!("checked: a number"),
    }
}

fn boolean<F>(v: &Val<F>, n: usize) -> Cow<'_, Array1<bool>> {
    match v {
        Val::EB(a) => Cow::Borrowed(a),
        Val::B(b) => Cow::Owned(Array1::from_elem(n, *b)),
        _ => unreachable!("checked: a boolean"),
    }
}

fn scalar_bin(op: IrBin, a: &Val<impl Float>, b: &Val<impl Float>) -> Val<f64> {
    let (x, y) = match (a, b) {
        (Val::S(x), Val::S(y)) => (*x, *y),
        (Val::B(x), Val::B(y)) => {
            return Val::B(match op {
                IrBin::And => *x && *y,
                IrBin::Or => *x || *y,
                IrBin::Eq => x == y,
                _ => x != y,
            })
        }
        _ => unreachable!("scalar operands"),
    };
    match op {
        IrBin::Add => Val::S(x + y),
        IrBin::Sub => Val::S(x - y),
        IrBin::Mul => Val::S(x * y),
        IrBin::Div => Val::S(x / y),
        IrBin::Pow => Val::S(x.powf(y)),
        IrBin::Lt => Val::B(x < y),
        IrBin::Le => Val::B(x <= y),
        IrBin::Gt => Val::B(x > y),
        IrBin::Ge => Val::B(x >= y),
        IrBin::Eq => Val::B(x == y),
        IrBin::Ne => Val::B(x != y),
        IrBin::And | IrBin::Or => unreachable!("numbers"),
    }
}

fn element_bin<F: Float>(op: IrBin, a: &Val<F>, b: &Val<F>, n: usize) -> Val<F> {
    if matches!(op, IrBin::And | IrBin::Or) {
        let (x, y) = (boolean(a, n), boolean(b, n));
        let mut out = Array1::from_elem(n, false);
        Zip::from(&mut out)
            .and(&*x)
            .and(&*y)
            .for_each(|o, &p, &q| *o = if op == IrBin::And { p && q } else { p || q });
        return Val::EB(out);
    }
    let (x, y) = (num(a, n), num(b, n));
    match op {
        IrBin::Add => Val::E(&*x + &*y),
        IrBin::Sub => Val::E(&*x - &*y),
        IrBin::Mul => Val::E(&*x * &*y),
        IrBin::Div => Val::E(&*x / &*y),
        IrBin::Pow => Val::E(Zip::from(&*x).and(&*y).map_collect(|&p, &q| p.powf(q))),
        cmp => Val::EB(Zip::from(&*x).and(&*y).map_collect(|&p, &q| match cmp {
            IrBin::Lt => p < q,
            IrBin::Le => p <= q,
            IrBin::Gt => p > q,
            IrBin::Ge => p >= q,
            IrBin::Eq => p == q,
            _ => p != q,
        })),
    }
}

fn func_scalar<F: Float>(f: IrFunc, a: f64, b: f64, c: f64) -> f64 {
    use crate::float::scalar;
    match f {
        IrFunc::Float => F::from_f64(a).to_f64(),
        IrFunc::Sqrt => a.sqrt(),
        IrFunc::Abs => a.abs(),
        IrFunc::Sign => scalar::sign(a),
        IrFunc::Exp => a.exp(),
        IrFunc::Ln => a.ln(),
        IrFunc::Min => scalar::minimum(a, b),
        IrFunc::Max => scalar::maximum(a, b),
        IrFunc::Clamp => scalar::clip(a, b, c),
    }
}

fn func_element<F: Float>(f: IrFunc, args: [&Val<F>; 3], n: usize) -> Array1<F> {
    let a = num(args[0], n);
    match f {
        IrFunc::Float => a.into_owned(),
        IrFunc::Sqrt => a.mapv(F::sqrt),
        IrFunc::Abs => a.mapv(F::abs),
        IrFunc::Sign => a.mapv(F::sign),
        IrFunc::Exp => a.mapv(F::exp),
        IrFunc::Ln => a.mapv(F::ln),
        IrFunc::Min => Zip::from(&*a)
            .and(&*num(args[1], n))
            .map_collect(|&x, &y| x.minimum(y)),
        IrFunc::Max => Zip::from(&*a)
            .and(&*num(args[1], n))
            .map_collect(|&x, &y| x.maximum(y)),
        IrFunc::Clamp => Zip::from(&*a)
            .and(&*num(args[1], n))
            .and(&*num(args[2], n))
            .map_collect(|&x, &lo, &hi| x.clip(lo, hi)),
    }
}

/// One step of `info`'s rule by interpretation with ndarray operators.
///
/// `hypers` are the rule's hyperparameters in declaration order. Results
/// agree with the fused step except for the order of summation in reductions.
pub fn naive_step<F: Float>(
    info: &RuleInfo,
    hypers: &[HyperValue],
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
) -> Result<()> {
    state.check_step(info, w.len(), g.len(), inputs)?;
    if hypers.len() != info.hypers.len() {
        return Err(Error::Invalid {
            what: "hyperparameters".into(),
            reason: format!(
                "{} takes {}, {} given",
                info.name,
                info.hypers.len(),
                hypers.len()
            ),
        });
    }
    let ir = info.ir;
    let n = w.len();
    let first = state.t == 0;
    state.t += 1;
    // The last use of each value, so temporaries are dropped as numpy drops them.
    let mut last_use = vec![0usize; ir.values.len()];
    for (i, v) in ir.values.iter().enumerate() {
        for a in operands(&v.op) {
            last_use[a] = i;
        }
    }
    let outs: Vec<usize> = ir
        .w_out
        .iter()
        .chain(ir.buffer_out.iter().flatten())
        .chain(ir.scalar_out.iter().flatten())
        .chain(ir.buffer_init.iter())
        .copied()
        .collect();
    for &o in &outs {
        last_use[o] = usize::MAX;
    }
    let mut vals: Vec<Val<F>> = Vec::with_capacity(ir.values.len());
    for (i, v) in ir.values.iter().enumerate() {
        let val = match v.op {
            IrOp::Num(x) => Val::S(x),
            IrOp::Bool(b) => Val::B(b),
            IrOp::Hyper(k) => match hypers[k] {
                HyperValue::Num(x) => Val::S(x),
                HyperValue::Bool(b) => Val::B(b),
            },
            IrOp::Step => Val::S(state.t as f64),
            IrOp::ScalarState(k) => Val::S(state.scalars[k]),
            IrOp::Param => Val::E(Array1::from(w.to_vec())),
            IrOp::Grad => Val::E(Array1::from(g.to_vec())),
            IrOp::Input(k) => Val::E(Array1::from(inputs[k].to_vec())),
            IrOp::Buffer(k) => {
                let init = ir.buffer_init[k];
                if first && ir.values[init].element {
                    state.buffers[k] = num(&vals[init], n).to_vec();
                }
                Val::E(Array1::from(state.buffers[k].clone()))
            }
            IrOp::Neg(a) => match &vals[a] {
                Val::S(x) => Val::S(-x),
                other => Val::E(num(other, n).mapv(|x| -x)),
            },
            IrOp::Not(a) => match &vals[a] {
                Val::B(x) => Val::B(!x),
                other => Val::EB(boolean(other, n).mapv(|b| !b)),
            },
            IrOp::Bin(op, a, b) => {
                if v.element {
                    element_bin(op, &vals[a], &vals[b], n)
                } else {
                    match scalar_bin(op, &vals[a], &vals[b]) {
                        Val::S(x) => Val::S(x),
                        Val::B(x) => Val::B(x),
                        _ => unreachable!(),
                    }
                }
            }
            IrOp::Func(f, [a, b, c]) => {
                if v.element {
                    Val::E(func_element(f, [&vals[a], &vals[b], &vals[c]], n))
                } else {
                    let s = |k: usize| match vals[k] {
                        Val::S(x) => x,
                        _ => f64::NAN,
                    };
                    Val::S(func_scalar::<F>(f, s(a), s(b), s(c)))
                }
            }
            IrOp::Select(c, a, b) => {
                if !v.element {
                    let pick = matches!(vals[c], Val::B(true));
                    match &vals[if pick { a } else { b }] {
                        Val::S(x) => Val::S(*x),
                        Val::B(x) => Val::B(*x),
                        _ => unreachable!(),
                    }
                } else if v.boolean {
                    let (cc, x, y) = (
                        boolean(&vals[c], n),
                        boolean(&vals[a], n),
                        boolean(&vals[b], n),
                    );
                    Val::EB(
                        Zip::from(&*cc)
                            .and(&*x)
                            .and(&*y)
                            .map_collect(|&c, &x, &y| if c { x } else { y }),
                    )
                } else {
                    let (cc, x, y) = (boolean(&vals[c], n), num(&vals[a], n), num(&vals[b], n));
                    Val::E(
                        Zip::from(&*cc)
                            .and(&*x)
                            .and(&*y)
                            .map_collect(|&c, &x, &y| if c { x } else { y }),
                    )
                }
            }
            IrOp::Reduce(r, a) => {
                let x = num(&vals[a], n);
                Val::S(match r {
                    IrReduce::Sum => x.iter().map(|v| v.to_f64()).sum(),
                    IrReduce::Mean => x.iter().map(|v| v.to_f64()).sum::<f64>() / n as f64,
                    IrReduce::Norm => x
                        .iter()
                        .map(|v| v.to_f64() * v.to_f64())
                        .sum::<f64>()
                        .sqrt(),
                    IrReduce::MaxAbs => x.iter().fold(0.0, |m, v| {
                        crate::float::scalar::maximum(m, v.to_f64().abs())
                    }),
                })
            }
        };
        vals.push(val);
        for a in operands(&v.op) {
            if last_use[a] == i {
                vals[a] = Val::Gone;
            }
        }
    }
    if let Some(o) = ir.w_out {
        w.copy_from_slice(num(&vals[o], n).as_slice().expect("contiguous"));
    }
    for (k, out) in ir.buffer_out.iter().enumerate() {
        if let Some(o) = out {
            state.buffers[k] = num(&vals[*o], n).to_vec();
        }
    }
    for (k, out) in ir.scalar_out.iter().enumerate() {
        if let Some(o) = out {
            if let Val::S(x) = vals[*o] {
                state.scalars[k] = x;
            }
        }
    }
    Ok(())
}

fn operands(op: &IrOp) -> Vec<usize> {
    match *op {
        IrOp::Neg(a) | IrOp::Not(a) | IrOp::Reduce(_, a) => vec![a],
        IrOp::Bin(_, a, b) => vec![a, b],
        IrOp::Select(c, a, b) => vec![c, a, b],
        IrOp::Func(_, args) => args.to_vec(),
        _ => Vec::new(),
    }
}

/// [`naive_step`] for a rule chosen at run time, with its current hyperparameters.
pub fn naive_step_dyn<F: Float>(
    rule: &dyn crate::rule::DynRule,
    state: &mut State<F>,
    w: &mut [F],
    g: &[F],
    inputs: &[&[F]],
) -> Result<()> {
    let info = rule.info();
    let hypers: Vec<HyperValue> = info
        .hypers
        .iter()
        .map(|h| rule.hyper(h.name).unwrap_or(h.default))
        .collect();
    naive_step(info, &hypers, state, w, g, inputs)
}

/// A slice a pass touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The parameters.
    W,
    /// The gradient.
    G,
    /// State buffer `i`.
    Buffer(usize),
    /// Input `i`.
    Input(usize),
}

/// The slices one pass of a step reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PassTraffic {
    /// Slices read.
    pub reads: Vec<Slot>,
    /// Slices written (each also read).
    pub writes: Vec<Slot>,
}

#[derive(Clone, Copy, PartialEq)]
enum Known {
    Num(f64),
    Bool(bool),
}

/// The passes of one step of `info`'s rule at step `t` with these
/// hyperparameters, and the slices each touches: per-step conditions that the
/// hyperparameters decide (`amsgrad`, `momentum != 0`, `t > 1`) are resolved
/// as the generated code's specialized copies resolve them, so a buffer whose
/// update is `if false { .. } else { itself }` is neither read nor written.
/// Reduction stages come first, the update pass last.
pub fn traffic(info: &RuleInfo, hypers: &[HyperValue], t: u64) -> Vec<PassTraffic> {
    let ir = info.ir;
    let mut known: Vec<Option<Known>> = Vec::with_capacity(ir.values.len());
    let mut stage = vec![0usize; ir.values.len()];
    for (i, v) in ir.values.iter().enumerate() {
        let k = |a: usize| known[a];
        let value = match v.op {
            IrOp::Num(x) => Some(Known::Num(x)),
            IrOp::Bool(b) => Some(Known::Bool(b)),
            IrOp::Hyper(h) => hypers.get(h).map(|hv| match *hv {
                HyperValue::Num(x) => Known::Num(x),
                HyperValue::Bool(b) => Known::Bool(b),
            }),
            IrOp::Step => Some(Known::Num(t as f64)),
            IrOp::Not(a) => match k(a) {
                Some(Known::Bool(b)) => Some(Known::Bool(!b)),
                _ => None,
            },
            IrOp::Neg(a) => match k(a) {
                Some(Known::Num(x)) => Some(Known::Num(-x)),
                _ => None,
            },
            IrOp::Bin(op, a, b) if !v.element => match (k(a), k(b)) {
                (Some(x), Some(y)) => {
                    let wrap = |val: Val<f64>| match val {
                        Val::S(x) => Some(Known::Num(x)),
                        Val::B(b) => Some(Known::Bool(b)),
                        _ => None,
                    };
                    let val = |k: Known| match k {
                        Known::Num(x) => Val::<f64>::S(x),
                        Known::Bool(b) => Val::B(b),
                    };
                    wrap(scalar_bin(op, &val(x), &val(y)))
                }
                _ => None,
            },
            IrOp::Select(c, a, b) => match k(c) {
                Some(Known::Bool(true)) => k(a),
                Some(Known::Bool(false)) => k(b),
                _ => None,
            },
            _ => None,
        };
        known.push(value);
        let from = operands(&v.op).iter().map(|&a| stage[a]).max().unwrap_or(0);
        stage[i] = from + usize::from(matches!(v.op, IrOp::Reduce(..)));
    }
    // Follow selections whose condition is known.
    let resolve = |mut id: usize| loop {
        match ir.values[id].op {
            IrOp::Select(c, a, b) => match known[c] {
                Some(Known::Bool(true)) => id = a,
                Some(Known::Bool(false)) => id = b,
                _ => return id,
            },
            _ => return id,
        }
    };
    // The element slices an element value reads.
    let reads_of = |roots: &[usize]| -> Vec<Slot> {
        let mut seen = vec![false; ir.values.len()];
        let mut stack: Vec<usize> = roots.iter().map(|&r| resolve(r)).collect();
        let mut out = Vec::new();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id], true) || !ir.values[id].element {
                continue;
            }
            match ir.values[id].op {
                IrOp::Param => out.push(Slot::W),
                IrOp::Grad => out.push(Slot::G),
                IrOp::Buffer(b) => out.push(Slot::Buffer(b)),
                IrOp::Input(k) => out.push(Slot::Input(k)),
                ref op => stack.extend(operands(op).into_iter().map(resolve)),
            }
        }
        out.sort();
        out.dedup();
        out
    };
    let mut passes = Vec::new();
    let stages = stage.iter().copied().max().unwrap_or(0);
    let mut live_reductions: Vec<usize> = Vec::new();
    // Reductions that a live output needs (through scalars too).
    let mut need = vec![false; ir.values.len()];
    let mut stack: Vec<usize> = ir
        .w_out
        .iter()
        .chain(ir.buffer_out.iter().flatten())
        .chain(ir.scalar_out.iter().flatten())
        .map(|&o| resolve(o))
        .collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut need[id], true) {
            continue;
        }
        if let IrOp::Reduce(..) = ir.values[id].op {
            live_reductions.push(id);
        }
        stack.extend(operands(&ir.values[id].op).into_iter().map(resolve));
    }
    for s in 1..=stages {
        let args: Vec<usize> = live_reductions
            .iter()
            .filter(|&&r| stage[r] == s)
            .filter_map(|&r| match ir.values[r].op {
                IrOp::Reduce(_, a) => Some(a),
                _ => None,
            })
            .collect();
        if !args.is_empty() {
            passes.push(PassTraffic {
                reads: reads_of(&args),
                writes: Vec::new(),
            });
        }
    }
    let mut update = PassTraffic::default();
    let mut roots = Vec::new();
    if let Some(o) = ir.w_out {
        let o = resolve(o);
        if !matches!(ir.values[o].op, IrOp::Param) {
            update.writes.push(Slot::W);
            roots.push(o);
        }
    }
    for (b, out) in ir.buffer_out.iter().enumerate() {
        if let Some(o) = out {
            let o = resolve(*o);
            if !matches!(ir.values[o].op, IrOp::Buffer(x) if x == b) {
                update.writes.push(Slot::Buffer(b));
                roots.push(o);
            }
        }
    }
    update.reads = reads_of(&roots);
    if !update.writes.is_empty() {
        passes.push(update);
    }
    passes
}
