//! The reference interpreter: a rule's lowered program (the one IR of
//! `optdsl_lang::ir`) run with ndarray operators, one temporary array per
//! operation, the way the rule would be written with numpy or ndarray. It is
//! the "naive" baseline of `optdsl bench` and an independent check of the
//! fused code.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::hyper::{scalars_of, HyperValue};
use crate::info::RuleInfo;
use crate::state::State;
use ndarray::{Array1, Zip};
use optdsl_lang::ast::UnOp;
use optdsl_lang::eval::Scalar;
use optdsl_lang::ir::{Kind, Op, Slot, Ty};
use std::borrow::Cow;

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
        _ => Cow::Owned(Array1::from_elem(n, F::from_f64(f64::NAN))),
    }
}

fn boolean<F>(v: &Val<F>, n: usize) -> Cow<'_, Array1<bool>> {
    match v {
        Val::EB(a) => Cow::Borrowed(a),
        Val::B(b) => Cow::Owned(Array1::from_elem(n, *b)),
        _ => Cow::Owned(Array1::from_elem(n, false)),
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
    let p = info.program();
    let n = w.len();
    let first = state.t == 0;
    state.t += 1;
    // Compressed buffers: decoded for the step, encoded after it, as the
    // fused step does block by block.
    for (k, packed) in state.packed.iter().enumerate() {
        if let Some(packed) = packed {
            state.buffers[k] = packed.to_vec();
        }
    }
    let hyper_scalars = scalars_of(hypers);
    let seed = state.draws.unwrap_or_default();
    let keys = seed.keys(p);
    let draws = seed.draws(&keys, state.t);
    // The last use of each value, so temporaries are dropped as numpy drops them.
    let mut last_use = vec![0usize; p.values.len()];
    for (i, v) in p.values.iter().enumerate() {
        for a in v.op.operands() {
            last_use[a] = i;
        }
    }
    let outs = p
        .w_out
        .iter()
        .chain(p.buffer_out.iter().flatten())
        .chain(p.scalar_out.iter().flatten())
        .copied()
        .chain(p.buffers.iter().map(|b| b.init));
    for o in outs {
        last_use[o] = usize::MAX;
    }
    let mut vals: Vec<Val<F>> = Vec::with_capacity(p.values.len());
    for (i, v) in p.values.iter().enumerate() {
        let element = v.kind == Kind::Element;
        let val = match &v.op {
            Op::Num(bits) => Val::S(f64::from_bits(*bits)),
            Op::Bool(b) => Val::B(*b),
            Op::Hyper(k) => match hyper_scalars[*k] {
                Scalar::Num(x) => Val::S(x),
                Scalar::Bool(b) => Val::B(b),
            },
            Op::Step => Val::S(state.t as f64),
            Op::ScalarState(k) => Val::S(state.scalars[*k]),
            Op::Param => Val::E(Array1::from(w.to_vec())),
            Op::Grad => Val::E(Array1::from(g.to_vec())),
            Op::Input(k) => Val::E(Array1::from(inputs[*k].to_vec())),
            Op::Buffer(k) => {
                let init = p.buffers[*k].init;
                if first && p.values[init].kind == Kind::Element {
                    state.buffers[*k] = num(&vals[init], n).to_vec();
                }
                Val::E(Array1::from(state.buffers[*k].clone()))
            }
            Op::Unary(UnOp::Neg, a) => match &vals[*a] {
                Val::S(x) => Val::S(-x),
                other => Val::E(num(other, n).mapv(|x| -x)),
            },
            Op::Unary(UnOp::Not, a) => match &vals[*a] {
                Val::B(x) => Val::B(!x),
                other => Val::EB(boolean(other, n).mapv(|b| !b)),
            },
            Op::Binary(op, a, b) => {
                let (x, y) = (&vals[*a], &vals[*b]);
                match (x, y) {
                    (Val::S(x), Val::S(y)) if op.is_arith() => Val::S(op.arith(*x, *y)),
                    (Val::S(x), Val::S(y)) => Val::B(op.compare(*x, *y)),
                    (Val::B(x), Val::B(y)) => Val::B(op.logic(*x, *y)),
                    _ if op.is_logic() || p.values[*a].ty == Ty::Bool => {
                        let (x, y) = (boolean(x, n), boolean(y, n));
                        Val::EB(Zip::from(&*x).and(&*y).map_collect(|&p, &q| op.logic(p, q)))
                    }
                    _ => {
                        let (x, y) = (num(x, n), num(y, n));
                        if op.is_arith() {
                            Val::E(Zip::from(&*x).and(&*y).map_collect(|&p, &q| op.arith(p, q)))
                        } else {
                            Val::EB(
                                Zip::from(&*x)
                                    .and(&*y)
                                    .map_collect(|&p, &q| op.compare(p, q)),
                            )
                        }
                    }
                }
            }
            Op::Func(f, args) => {
                if element {
                    let a: Vec<Cow<Array1<F>>> = args.iter().map(|&k| num(&vals[k], n)).collect();
                    let x = &a[0];
                    let y = a.get(1).unwrap_or(x);
                    let z = a.get(2).unwrap_or(x);
                    Val::E(
                        Zip::from(&**x)
                            .and(&**y)
                            .and(&**z)
                            .map_collect(|&p, &q, &r| f.apply(p, q, r)),
                    )
                } else {
                    let s = |k: usize| match args.get(k).map(|&a| &vals[a]) {
                        Some(Val::S(x)) => *x,
                        _ => f64::NAN,
                    };
                    Val::S(f.apply_scalar::<F>(s(0), s(1), s(2)))
                }
            }
            Op::Select(c, a, b) => {
                if !element {
                    let pick = matches!(vals[*c], Val::B(true));
                    match &vals[if pick { *a } else { *b }] {
                        Val::S(x) => Val::S(*x),
                        Val::B(x) => Val::B(*x),
                        _ => Val::Gone,
                    }
                } else if v.ty == Ty::Bool {
                    let (cc, x, y) = (
                        boolean(&vals[*c], n),
                        boolean(&vals[*a], n),
                        boolean(&vals[*b], n),
                    );
                    Val::EB(
                        Zip::from(&*cc)
                            .and(&*x)
                            .and(&*y)
                            .map_collect(|&c, &x, &y| if c { x } else { y }),
                    )
                } else {
                    let (cc, x, y) = (boolean(&vals[*c], n), num(&vals[*a], n), num(&vals[*b], n));
                    Val::E(
                        Zip::from(&*cc)
                            .and(&*x)
                            .and(&*y)
                            .map_collect(|&c, &x, &y| if c { x } else { y }),
                    )
                }
            }
            Op::Draw(d, stream) => {
                Val::E(Array1::from_shape_fn(n, |i| draws.sample(*d, *stream, i)))
            }
            Op::Reduce(r, a) => {
                let x = num(&vals[*a], n);
                let total = x
                    .iter()
                    .fold(0.0f64, |acc, v| r.accumulate(acc, v.to_f64()));
                Val::S(r.finish(total, n))
            }
        };
        vals.push(val);
        for a in v.op.operands() {
            if last_use[a] == i {
                vals[a] = Val::Gone;
            }
        }
    }
    if let Some(o) = p.w_out {
        let out = num(&vals[o], n);
        for (dst, src) in w.iter_mut().zip(out.iter()) {
            *dst = *src;
        }
    }
    for (k, out) in p.buffer_out.iter().enumerate() {
        if let Some(o) = out {
            state.buffers[k] = num(&vals[*o], n).to_vec();
        }
    }
    for (k, out) in p.scalar_out.iter().enumerate() {
        if let Some(o) = out {
            if let Val::S(x) = vals[*o] {
                state.scalars[k] = x;
            }
        }
    }
    let step = state.t;
    // A buffer the step leaves alone (Adam's AMSGrad buffer without
    // `amsgrad`; filled from `w` or `g` on the first step counts as
    // written) keeps its bytes, as the fused step keeps them.
    let written: Vec<Slot> = optdsl_lang::traffic::traffic(p, &hyper_scalars, step)
        .into_iter()
        .flat_map(|pass| pass.writes)
        .collect();
    for (k, packed) in state.packed.iter_mut().enumerate() {
        if let Some(packed) = packed {
            let values = std::mem::take(&mut state.buffers[k]);
            let filled = first && p.values[p.buffers[k].init].kind == Kind::Element;
            if filled || written.contains(&Slot::Buffer(k)) {
                packed.encode_from(&values, step);
            }
        }
    }
    Ok(())
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
