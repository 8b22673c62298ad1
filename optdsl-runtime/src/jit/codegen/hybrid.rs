//! The hybrid form of a pass with many divisions and square roots: the
//! vector loop walks sub-blocks of `k` elements (L1-resident), and in each
//! runs the pass's element program split at its division/root layers. Layer
//! `h` of a value is the most divisions and roots on a path from the loads to
//! it (itself included). Segment `s` (a loop over the sub-block in 128-bit
//! vectors) computes the other values as late as their uses allow (layer
//! `<= s`), and writes those a later stage reads to scratch arrays; between
//! segments `s` and `s + 1` one call ([`crate::jit::batch`]) computes the
//! divisions and roots of layer `s + 1` over the sub-block in the CPU's
//! widest vectors. The last segment does the stores and reductions, in the
//! plain body's order, so every old value of a slice is read before the
//! slice is stored, and reductions see elements in order: the bits are the
//! plain code's. Slices and per-step numbers are read again where needed,
//! not kept.

use super::{Graph, Step};
use crate::jit::batch::{Batch, BatchOp, Src, What};
use optdsl_lang::ast::BinOp;
use optdsl_lang::ir::{Id, Kind, Op, Ty};
use optdsl_lang::Func;
use std::collections::{HashMap, HashSet};

/// The fewest divisions and roots per element for which a pass runs in
/// hybrid form (the others stay at the memory bound in plain form).
pub(super) const MIN_HEAVY: usize = 2;

/// A pass split into segments and layers.
pub(super) struct Plan {
    /// Elements per sub-block.
    pub k: usize,
    /// Elements between the starts of two scratch arrays: `k` and 192
    /// bytes more, so that arrays do not start at the same offset within a
    /// 4 KiB page (a load that looks like it aliases a recent store to
    /// another array waits for it).
    pub stride: usize,
    /// Bytes per element.
    pub size: usize,
    /// Each segment's steps (the last one does the stores and reductions).
    pub segments: Vec<Vec<Step>>,
    /// The layers' divisions and roots: (value, what, operands).
    pub layers: Vec<Vec<(Id, What, Id, Id)>>,
    /// The scratch array of each value kept between stages.
    pub array: HashMap<Id, usize>,
    /// How many scratch arrays.
    pub arrays: usize,
}

/// The division or root `id` is, with its (resolved) operands.
fn heavy(g: &Graph, id: Id) -> Option<(What, Id, Id)> {
    match &g.p.values[id].op {
        Op::Binary(BinOp::Div, a, b) => Some((What::Div, g.resolved[*a], g.resolved[*b])),
        Op::Func(Func::Sqrt, args) if args.len() == 1 => {
            let a = g.resolved[args[0]];
            Some((What::Sqrt, a, a))
        }
        _ => None,
    }
}

/// The padding after each scratch array (see [`Plan::stride`]).
const PAD_BYTES: usize = 192;

/// The hybrid plan of `g` with sub-blocks of `k` elements of `size` bytes,
/// or `None` when the pass has fewer than [`MIN_HEAVY`] divisions and roots
/// per element.
pub(super) fn plan(g: &Graph, k: usize, size: usize) -> Option<Plan> {
    let pos: HashMap<Id, usize> = g.order.iter().enumerate().map(|(i, &v)| (v, i)).collect();
    let args = |id: Id| -> Vec<Id> {
        g.p.values[id]
            .op
            .operands()
            .into_iter()
            .map(|a| g.resolved[a])
            .filter(|a| pos.contains_key(a))
            .collect()
    };
    let is_load = |id: Id| g.p.values[id].op.slot().is_some();
    let heavies = g.order.iter().filter(|&&v| heavy(g, v).is_some()).count();
    if heavies < MIN_HEAVY {
        return None;
    }
    // Layers, in program order (operands first).
    let mut layer: HashMap<Id, usize> = HashMap::new();
    for &v in &g.order {
        let base = args(v).iter().map(|a| layer[a]).max().unwrap_or(0);
        layer.insert(v, base + usize::from(heavy(g, v).is_some()));
    }
    let last = layer.values().copied().max().unwrap_or(0);
    // Each other value's segment: as late as its uses allow (a division or
    // root of layer h needs its operands by segment h - 1; stores and
    // reductions are in the last segment).
    let mut due: HashMap<Id, usize> = HashMap::new();
    let sinks: Vec<Id> = g
        .stores
        .iter()
        .map(|s| g.resolved[s.1])
        .chain(g.reductions.iter().map(|r| g.resolved[r.1]))
        .collect();
    for &v in &sinks {
        due.insert(v, last);
    }
    let mut segment: HashMap<Id, usize> = HashMap::new();
    for &v in g.order.iter().rev() {
        let at = if let Some(_h) = heavy(g, v) {
            layer[&v] - 1
        } else if is_load(v) {
            continue;
        } else {
            let s = due.get(&v).copied().unwrap_or(last);
            segment.insert(v, s);
            s
        };
        for a in args(v) {
            let d = due.entry(a).or_insert(at);
            *d = (*d).min(at);
        }
    }
    // Stages: segment s is 2s, the call of layer h is 2h - 1.
    let made = |v: Id| -> Option<usize> {
        if heavy(g, v).is_some() {
            Some(2 * layer[&v] - 1)
        } else {
            segment.get(&v).map(|s| 2 * s)
        }
    };
    let mut last_use: HashMap<Id, usize> = HashMap::new();
    // The loads each segment reads.
    let mut loads: Vec<HashSet<Id>> = vec![HashSet::new(); last + 1];
    let mut used = |v: Id, stage: usize, last_use: &mut HashMap<Id, usize>| {
        if is_load(v) {
            if stage % 2 == 0 {
                loads[stage / 2].insert(v);
            }
        } else {
            let u = last_use.entry(v).or_insert(stage);
            *u = (*u).max(stage);
        }
    };
    for &v in &g.order {
        if let Some(stage) = made(v) {
            for a in args(v) {
                used(a, stage, &mut last_use);
            }
        }
    }
    for &v in &sinks {
        if pos.contains_key(&v) {
            used(v, 2 * last, &mut last_use);
        }
    }
    // Scratch arrays for the values read at a later stage than made; an
    // array is free again after the stage of its value's last use.
    let mut kept: Vec<(usize, usize, Id)> = g
        .order
        .iter()
        .filter_map(|&v| {
            let m = made(v)?;
            let u = last_use.get(&v).copied()?;
            (u > m).then_some((m, pos[&v], v))
        })
        .collect();
    kept.sort_unstable();
    let mut array = HashMap::new();
    let mut free_after: Vec<usize> = Vec::new();
    for &(m, _, v) in &kept {
        let a = match free_after.iter().position(|&f| f < m) {
            Some(a) => a,
            None => {
                free_after.push(0);
                free_after.len() - 1
            }
        };
        free_after[a] = last_use[&v];
        array.insert(v, a);
    }
    // Segments' steps: values in program order, each kept one written out
    // after it; the last segment in the plain body's order.
    let mut segments: Vec<Vec<Step>> = vec![Vec::new(); last + 1];
    for (s, steps) in segments.iter_mut().enumerate().take(last) {
        for &v in &g.order {
            if segment.get(&v) == Some(&s) {
                steps.push(Step::Value(v));
                if array.contains_key(&v) {
                    steps.push(Step::Spill(v));
                }
            } else if loads[s].contains(&v) {
                steps.push(Step::Value(v));
            }
        }
    }
    segments[last] = g
        .schedule
        .iter()
        .copied()
        .filter(|step| match *step {
            Step::Value(v) => segment.get(&v) == Some(&last) || loads[last].contains(&v),
            _ => true,
        })
        .collect();
    let mut layers: Vec<Vec<(Id, What, Id, Id)>> = vec![Vec::new(); last];
    for &v in &g.order {
        if let Some((what, a, b)) = heavy(g, v) {
            layers[layer[&v] - 1].push((v, what, a, b));
        }
    }
    Some(Plan {
        k,
        stride: k + PAD_BYTES / size,
        size,
        segments,
        layers,
        arrays: free_after.len(),
        array,
    })
}

impl Plan {
    /// The calls' descriptions: each operand in a scratch array, a slice
    /// (`slot_of`) or a per-step number (`num`: its place in `cf`), or
    /// `None` if one is none of these.
    pub(super) fn batches(
        &self,
        g: &Graph,
        mut num: impl FnMut(Id) -> usize,
    ) -> Option<Vec<Batch>> {
        let mut src = |id: Id| -> Option<Src> {
            let v = &g.p.values[id];
            if let Some(&a) = self.array.get(&id) {
                return Some(Src::Scratch(a));
            }
            if let Some(slot) = v.op.slot() {
                let &(written, k) = g.slot_of.get(&slot)?;
                return Some(if written {
                    Src::Written(k)
                } else {
                    Src::Read(k)
                });
            }
            (v.kind != Kind::Element && v.ty == Ty::Num).then(|| Src::Num(num(id)))
        };
        self.layers
            .iter()
            .map(|ops| {
                let ops = ops
                    .iter()
                    .map(|&(v, what, a, b)| {
                        Some(BatchOp {
                            what,
                            a: src(a)?,
                            b: if what == What::Div {
                                src(b)?
                            } else {
                                Src::Num(0)
                            },
                            out: *self.array.get(&v)?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Batch {
                    ops,
                    stride: self.stride,
                    k: self.k,
                    prefetch: Vec::new(),
                    size: self.size,
                })
            })
            .collect::<Option<Vec<Batch>>>()
            .map(|mut batches| {
                // The slices' prefetches, shared out among the calls.
                let nr = g.slot_of.values().filter(|s| !s.0).count();
                let nw = g.slot_of.values().filter(|s| s.0).count();
                let slices = (0..nr).map(Src::Read).chain((0..nw).map(Src::Written));
                let calls = batches.len();
                for (i, s) in slices.enumerate() {
                    if let Some(b) = batches.get_mut(i % calls.max(1)) {
                        b.prefetch.push(s);
                    }
                }
                batches
            })
    }
}
