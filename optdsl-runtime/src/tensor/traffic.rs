//! What the tensor executor's passes over whole arrays move, recorded as it
//! runs a step: for each fused pass (a store, an element-wise `let`
//! computed whole, a pass of reductions, the pending updates applied at the
//! end of a step), the arrays of the pass's size it reads and the one it
//! writes. `optdsl bench --shape` replays these passes as its same-traffic
//! bound, so the bound follows the executor's plan rather than a count
//! made apart from it. Arrays smaller than the pass (per-row and
//! per-column numbers) and the products' operands are not counted.

use std::cell::RefCell;
use std::collections::HashMap;

/// The passes of one recorded step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    /// Each array's count of numbers, by the index passes name it by (in
    /// the order the step first touched them).
    pub arrays: Vec<usize>,
    /// The passes, in order.
    pub passes: Vec<Pass>,
}

/// One pass over `numbers` numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// Numbers the pass walks.
    pub numbers: usize,
    /// The arrays it only reads (indices into [`Traffic::arrays`]).
    pub reads: Vec<usize>,
    /// The arrays it writes (read too where the store combines with them).
    pub writes: Vec<usize>,
}

impl Traffic {
    /// Bytes the passes move with `size`-byte numbers: each array read
    /// once per pass, each written one read and written.
    pub fn bytes(&self, size: usize) -> usize {
        self.passes
            .iter()
            .map(|p| {
                let len = |ids: &[usize]| ids.iter().map(|&i| self.arrays[i]).sum::<usize>();
                (len(&p.reads) + 2 * len(&p.writes)) * size
            })
            .sum()
    }
}

/// A pass as the executor sees it: the addresses and lengths of what it
/// reads and writes.
pub(super) struct Seen {
    pub numbers: usize,
    pub reads: Vec<(usize, usize)>,
    pub writes: Vec<(usize, usize)>,
}

#[derive(Default)]
struct Recorder {
    ids: HashMap<(usize, usize), usize>,
    traffic: Traffic,
}

thread_local! {
    static RECORD: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `f` and returns, with its result, the passes the executor made on
/// this thread.
pub fn passes<R>(f: impl FnOnce() -> R) -> (R, Traffic) {
    RECORD.with(|r| *r.borrow_mut() = Some(Recorder::default()));
    let out = f();
    let rec = RECORD.with(|r| r.borrow_mut().take()).unwrap_or_default();
    (out, rec.traffic)
}

/// Records the pass `seen` describes (computed only while recording).
pub(super) fn note(seen: impl FnOnce() -> Seen) {
    RECORD.with(|r| {
        let mut r = r.borrow_mut();
        let Some(rec) = r.as_mut() else { return };
        let s = seen();
        let mut id = |a: (usize, usize)| {
            let next = rec.ids.len();
            let k = *rec.ids.entry(a).or_insert(next);
            if k == rec.traffic.arrays.len() {
                rec.traffic.arrays.push(a.1);
            }
            k
        };
        let mut writes: Vec<usize> = s.writes.iter().map(|&a| id(a)).collect();
        writes.dedup();
        let mut reads: Vec<usize> = Vec::new();
        for &a in &s.reads {
            let k = id(a);
            if !writes.contains(&k) && !reads.contains(&k) {
                reads.push(k);
            }
        }
        rec.traffic.passes.push(Pass {
            numbers: s.numbers,
            reads,
            writes,
        });
    });
}
