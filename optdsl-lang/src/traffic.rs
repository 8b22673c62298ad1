//! Traffic analysis: which slices each pass of a step reads and writes, with
//! the per-step conditions that the hyperparameters decide (`amsgrad`,
//! `momentum != 0`, `t > 1`) resolved, so a buffer whose update is
//! `if false { .. } else { itself }` is neither read nor written. The bound
//! `optdsl bench` prints comes from it.

use crate::eval::{scalar, Leaves, Scalar};
use crate::ir::{Id, Kind, Op, Program, Slot};

/// The slices one pass of a step reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PassTraffic {
    /// Slices read.
    pub reads: Vec<Slot>,
    /// Slices written (each also read).
    pub writes: Vec<Slot>,
}

impl PassTraffic {
    /// Bytes moved per element with `elem` bytes per value: each slice read
    /// once, each written slice written once.
    pub fn bytes_per_element(&self, elem: usize) -> usize {
        self.bytes_with(|_| elem)
    }

    /// Bytes moved per element when slot `s` keeps `width(s)` bytes per
    /// element (compressed state buffers keep fewer).
    pub fn bytes_with(&self, width: impl Fn(Slot) -> usize) -> usize {
        let touched: std::collections::BTreeSet<Slot> =
            self.reads.iter().chain(&self.writes).copied().collect();
        touched.iter().map(|&s| width(s)).sum::<usize>()
            + self.writes.iter().map(|&s| width(s)).sum::<usize>()
    }
}

/// The passes of one step of `p` at step `t` with these hyperparameters, and
/// the slices each touches. Reduction stages come first, the update pass last.
pub fn traffic(p: &Program, hypers: &[Scalar], t: u64) -> Vec<PassTraffic> {
    let leaves = Leaves {
        hypers,
        t: t as f64,
        scalars: &[],
    };
    let mut known: Vec<Option<Scalar>> = Vec::with_capacity(p.values.len());
    for (i, v) in p.values.iter().enumerate() {
        let value = if v.kind == Kind::Element {
            None
        } else {
            scalar::<f64>(p, i, &known, &leaves)
        };
        known.push(value);
    }
    // Follow selections whose condition is known.
    let resolve = |mut id: Id| loop {
        match p.values[id].op {
            Op::Select(c, a, b) => match known[c] {
                Some(Scalar::Bool(true)) => id = a,
                Some(Scalar::Bool(false)) => id = b,
                _ => return id,
            },
            _ => return id,
        }
    };
    let reads_of = |roots: &[Id]| -> Vec<Slot> {
        let mut seen = vec![false; p.values.len()];
        let mut stack: Vec<Id> = roots.iter().map(|&r| resolve(r)).collect();
        let mut out = Vec::new();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id], true) || p.values[id].kind != Kind::Element {
                continue;
            }
            match p.values[id].op.slot() {
                Some(s) => out.push(s),
                None => stack.extend(p.values[id].op.operands().into_iter().map(resolve)),
            }
        }
        out.sort();
        out.dedup();
        out
    };
    // Reductions that a live output needs (through scalars too).
    let mut need = vec![false; p.values.len()];
    let mut live_reductions: Vec<Id> = Vec::new();
    let mut stack: Vec<Id> = p
        .w_out
        .iter()
        .chain(p.buffer_out.iter().flatten())
        .chain(p.scalar_out.iter().flatten())
        .map(|&o| resolve(o))
        .collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut need[id], true) {
            continue;
        }
        if let Op::Reduce(..) = p.values[id].op {
            live_reductions.push(id);
        }
        stack.extend(p.values[id].op.operands().into_iter().map(resolve));
    }
    let mut passes = Vec::new();
    for s in 1..=p.stages {
        let args: Vec<Id> = live_reductions
            .iter()
            .filter(|&&r| p.values[r].stage == s)
            .filter_map(|&r| match p.values[r].op {
                Op::Reduce(_, a) => Some(a),
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
    if let Some(o) = p.w_out {
        let o = resolve(o);
        if p.values[o].op != Op::Param {
            update.writes.push(Slot::W);
            roots.push(o);
        }
    }
    for (b, out) in p.buffer_out.iter().enumerate() {
        if let Some(o) = out {
            let o = resolve(*o);
            if p.values[o].op != Op::Buffer(b) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switched_off_buffer_is_not_touched() {
        let p = crate::compile(
            "R { hyper amsgrad = false; state m = 0, mx = 0;
             m = 0.9 * m + g; if amsgrad { mx = max(mx, m); } w -= m; }",
        )
        .unwrap()
        .remove(0);
        let off = traffic(&p, &[Scalar::Bool(false)], 1);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].writes, [Slot::W, Slot::Buffer(0)]);
        let on = traffic(&p, &[Scalar::Bool(true)], 1);
        assert_eq!(on[0].writes, [Slot::W, Slot::Buffer(0), Slot::Buffer(1)]);
        assert_eq!(on[0].bytes_per_element(4), (4 + 3) * 4);
    }
}
