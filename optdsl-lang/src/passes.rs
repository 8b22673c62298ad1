//! How a step runs, as data: the passes over memory (a first-step pass that
//! fills buffers from `w`/`g`, one pass per reduction stage, the update
//! pass), what each computes per element, which slices it reads and writes,
//! and which per-step scalars are computed before it. Code generation emits
//! one kernel per pass from this plan; the interpreter runs the same plan.

use crate::ast::BinOp;
use crate::functions::Reduction;
use crate::ir::{Id, Kind, Op, Program, Slot, Ty};

/// What a pass is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// The first step's fill of buffers whose initial value is per element.
    Init,
    /// Reduction stage `k` (from 1).
    Reduce(usize),
    /// The update of `w` and the buffers.
    Update,
}

/// One fused loop over the tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// What it is for.
    pub kind: PassKind,
    /// The element values it computes, in order.
    pub elements: Vec<Id>,
    /// The per-step scalars and constants it reads, in order of id.
    pub inputs: Vec<Id>,
    /// What it writes: a slice and the value written.
    pub writes: Vec<(Slot, Id)>,
    /// What it reduces: the reduction, the scalar value it defines, its argument.
    pub reductions: Vec<(Reduction, Id, Id)>,
    /// Every slice it touches, sorted, and whether it writes it.
    pub slots: Vec<(Slot, bool)>,
    /// Two or more divisions, powers, roots, exponentials or logarithms per
    /// element: compute-bound enough for the widest SIMD level.
    pub heavy: bool,
}

impl Pass {
    /// The slices it only reads, in slot order.
    pub fn reads(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().filter(|s| !s.1).map(|s| s.0)
    }

    /// The slices it writes, in slot order.
    pub fn written(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().filter(|s| s.1).map(|s| s.0)
    }

    /// The per-step number inputs, in order.
    pub fn num_inputs<'a>(&'a self, p: &'a Program) -> impl Iterator<Item = Id> + 'a {
        self.inputs
            .iter()
            .copied()
            .filter(move |&i| p.values[i].ty == Ty::Num)
    }

    /// The per-step boolean inputs, in order.
    pub fn bool_inputs<'a>(&'a self, p: &'a Program) -> impl Iterator<Item = Id> + 'a {
        self.inputs
            .iter()
            .copied()
            .filter(move |&i| p.values[i].ty == Ty::Bool)
    }

    /// Which of the slices in [`Pass::slots`] the pass's variant for these
    /// values of its boolean inputs (`bools`, in [`Pass::bool_inputs`]
    /// order) neither needs nor changes: no value it writes (other than the
    /// slice's own value, stored back) or reduces reads it, and it writes
    /// the slice, if at all, with its own value (Adam's AMSGrad buffer when
    /// `amsgrad` is false). Such a slice's contents may be anything while the
    /// pass runs, and it keeps its bytes (a compressed one need not be
    /// decoded or encoded). With `bools` too short, nothing is idle.
    pub fn idle_slots(&self, p: &Program, bools: &[bool]) -> Vec<bool> {
        let inputs: Vec<Id> = self.bool_inputs(p).collect();
        if bools.len() < inputs.len() {
            return vec![false; self.slots.len()];
        }
        let known = |c: Id| match p.values[c].op {
            Op::Bool(b) => Some(b),
            _ => inputs.iter().position(|&i| i == c).map(|k| bools[k]),
        };
        // Follow selections whose condition these booleans decide.
        let resolve = |mut id: Id| loop {
            match p.values[id].op {
                Op::Select(c, a, b) => match known(c) {
                    Some(true) => id = a,
                    Some(false) => id = b,
                    None => return id,
                },
                _ => return id,
            }
        };
        let mut roots: Vec<Id> = self.reductions.iter().map(|r| resolve(r.2)).collect();
        let mut changed = Vec::new();
        for &(slot, id) in &self.writes {
            let v = resolve(id);
            if p.values[v].op.slot() != Some(slot) {
                roots.push(v);
                changed.push(slot);
            }
        }
        let mut seen = vec![false; p.values.len()];
        let mut needed = Vec::new();
        while let Some(id) = roots.pop() {
            if std::mem::replace(&mut seen[id], true) || p.values[id].kind != Kind::Element {
                continue;
            }
            match p.values[id].op.slot() {
                Some(s) => needed.push(s),
                None => roots.extend(p.values[id].op.operands().into_iter().map(resolve)),
            }
        }
        self.slots
            .iter()
            .map(|(s, _)| !needed.contains(s) && !changed.contains(s))
            .collect()
    }

    /// [`Pass::idle_slots`] as the driver takes them: bit masks over the
    /// slices the pass reads and those it writes (bit `k` for the `k`-th of
    /// each, in slot order; past 32, none).
    pub fn idle_masks(&self, p: &Program, bools: &[bool]) -> (u32, u32) {
        let (mut reads, mut writes) = (0u32, 0u32);
        let (mut r, mut w) = (0usize, 0usize);
        for (&(_, written), idle) in self.slots.iter().zip(self.idle_slots(p, bools)) {
            let (mask, count) = if written {
                (&mut writes, &mut w)
            } else {
                (&mut reads, &mut r)
            };
            if idle && *count < 32 {
                *mask |= 1 << *count;
            }
            *count += 1;
        }
        (reads, writes)
    }
}

/// The most per-step booleans of a pass whose variants [`switched_off`]
/// looks at (and the compiled step tabulates idle slices for); a pass with
/// more switches nothing off.
pub const IDLE_BOOLS: usize = 6;

/// Which buffers no pass of `plan` needs or changes while the boolean
/// hyperparameters hold `hypers` (`hypers[k]`: hyperparameter `k`'s value,
/// `None` for a number or one not known), whatever the step's other
/// booleans: in every pass, in each of its variants those values allow, the
/// buffer is idle ([`Pass::idle_slots`]). Such a buffer keeps its contents
/// from step to step, so it need not be stored while they hold (Adam's
/// AMSGrad buffer while `amsgrad` is false, as PyTorch allocates it only
/// with `amsgrad=True`).
pub fn switched_off(p: &Program, plan: &StepPlan, hypers: &[Option<bool>]) -> Vec<bool> {
    let mut off = vec![true; p.buffers.len()];
    let passes = plan.init.iter().chain(&plan.reduces).chain(&plan.update);
    for pass in passes {
        let inputs: Vec<Id> = pass.bool_inputs(p).collect();
        let fixed: Vec<Option<bool>> = inputs
            .iter()
            .map(|&id| match p.values[id].op {
                Op::Bool(b) => Some(b),
                Op::Hyper(k) => hypers.get(k).copied().flatten(),
                _ => None,
            })
            .collect();
        let free: Vec<usize> = (0..inputs.len()).filter(|&k| fixed[k].is_none()).collect();
        let mut used = vec![false; pass.slots.len()];
        if inputs.len() > IDLE_BOOLS {
            used.fill(true);
        } else {
            for combo in 0..1usize << free.len() {
                let mut bools: Vec<bool> = fixed.iter().map(|b| b.unwrap_or(false)).collect();
                for (j, &k) in free.iter().enumerate() {
                    bools[k] = combo >> j & 1 == 1;
                }
                for (u, idle) in used.iter_mut().zip(pass.idle_slots(p, &bools)) {
                    *u |= !idle;
                }
            }
        }
        for (&(slot, _), u) in pass.slots.iter().zip(used) {
            if let (Slot::Buffer(i), true) = (slot, u) {
                off[i] = false;
            }
        }
    }
    off
}

/// A whole step: passes and the per-step scalars computed around them.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPlan {
    /// The first step's buffer fill, if any buffer starts from `w` or `g`.
    pub init: Option<Pass>,
    /// One pass per reduction stage, in order.
    pub reduces: Vec<Pass>,
    /// The update pass, if the rule writes `w` or a buffer.
    pub update: Option<Pass>,
    /// `scalars[k]`: the per-step scalars computed after `k` reduction
    /// passes (and before the next pass), in order.
    pub scalars: Vec<Vec<Id>>,
    /// The scalar values a fresh state needs: each buffer's and scalar
    /// state's initial value when it is not per element.
    pub init_scalars: Vec<Id>,
}

/// Plans a step of `p`.
pub fn plan(p: &Program) -> StepPlan {
    let init_writes: Vec<(Slot, Id)> = p
        .buffers
        .iter()
        .enumerate()
        .filter(|(_, b)| p.values[b.init].kind == Kind::Element)
        .map(|(i, b)| (Slot::Buffer(i), b.init))
        .collect();
    let mut final_writes: Vec<(Slot, Id)> = p.w_out.map(|id| (Slot::W, id)).into_iter().collect();
    for (i, out) in p.buffer_out.iter().enumerate() {
        if let Some(id) = out {
            final_writes.push((Slot::Buffer(i), *id));
        }
    }
    let init =
        (!init_writes.is_empty()).then(|| pass(p, PassKind::Init, init_writes.clone(), Vec::new()));
    let reduces = (1..=p.stages)
        .map(|stage| {
            let reds: Vec<(Reduction, Id, Id)> = p
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.stage == stage)
                .filter_map(|(id, v)| match v.op {
                    Op::Reduce(r, arg) => Some((r, id, arg)),
                    _ => None,
                })
                .collect();
            pass(p, PassKind::Reduce(stage), Vec::new(), reds)
        })
        .collect();
    let update = (!final_writes.is_empty())
        .then(|| pass(p, PassKind::Update, final_writes.clone(), Vec::new()));
    let roots = final_writes
        .iter()
        .map(|w| w.1)
        .chain(init_writes.iter().map(|w| w.1))
        .chain(p.scalar_out.iter().flatten().copied());
    let needed: Vec<Id> = p
        .closure(roots)
        .into_iter()
        .filter(|&i| p.values[i].kind != Kind::Element && !matches!(p.values[i].op, Op::Reduce(..)))
        .collect();
    let scalars = (0..=p.stages)
        .map(|stage| {
            needed
                .iter()
                .copied()
                .filter(|&i| p.values[i].stage == stage)
                .collect()
        })
        .collect();
    let at_init = |id: Id| p.values[id].kind != Kind::Element;
    let init_scalars = p.closure(
        p.buffers
            .iter()
            .chain(&p.scalars)
            .map(|b| b.init)
            .filter(|&id| at_init(id)),
    );
    StepPlan {
        init,
        reduces,
        update,
        scalars,
        init_scalars,
    }
}

fn pass(
    p: &Program,
    kind: PassKind,
    writes: Vec<(Slot, Id)>,
    reductions: Vec<(Reduction, Id, Id)>,
) -> Pass {
    let roots = writes
        .iter()
        .map(|w| w.1)
        .chain(reductions.iter().map(|r| r.2));
    let all = p.closure(roots);
    let elements: Vec<Id> = all
        .iter()
        .copied()
        .filter(|&i| p.values[i].kind == Kind::Element)
        .collect();
    let mut inputs: Vec<Id> = elements
        .iter()
        .flat_map(|&i| p.values[i].op.operands())
        .chain(writes.iter().map(|w| w.1))
        .filter(|&i| p.values[i].kind != Kind::Element)
        .collect();
    inputs.sort_unstable();
    inputs.dedup();
    let mut slots: Vec<(Slot, bool)> = elements
        .iter()
        .filter_map(|&i| p.values[i].op.slot())
        .map(|s| (s, false))
        .chain(writes.iter().map(|w| (w.0, true)))
        .collect();
    // A pass whose elements load nothing (a reduction of draws only) still
    // walks the tensor: it reads `w`, for its length.
    if slots.is_empty() && !elements.is_empty() {
        slots.push((Slot::W, false));
    }
    slots.sort();
    slots.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 |= later.1;
            true
        } else {
            false
        }
    });
    let heavy = elements
        .iter()
        .filter(|&&i| match &p.values[i].op {
            Op::Binary(BinOp::Div | BinOp::Pow, ..) => true,
            Op::Func(f, _) => f.is_heavy(),
            // A Philox block, a logarithm, a cosine and a root.
            Op::Draw(..) => true,
            _ => false,
        })
        .count()
        >= 2;
    Pass {
        kind,
        elements,
        inputs,
        writes,
        reductions,
        slots,
        heavy,
    }
}

/// The most slices one pass may touch (the runtime's driver holds this many).
pub const MAX_SLOTS: usize = 16;
/// The most reductions one pass may compute.
pub const MAX_REDUCTIONS: usize = 16;

/// Checks that every pass of `p` fits the driver: at most [`MAX_SLOTS`]
/// slices and [`MAX_REDUCTIONS`] reductions a pass.
pub fn check_limits(p: &Program) -> Result<(), Vec<crate::Diagnostic>> {
    let s = plan(p);
    let too_big = s
        .init
        .iter()
        .chain(&s.reduces)
        .chain(&s.update)
        .find(|pass| pass.slots.len() > MAX_SLOTS || pass.reductions.len() > MAX_REDUCTIONS);
    match too_big {
        None => Ok(()),
        Some(pass) => Err(vec![crate::Diagnostic::new(
            p.name.span,
            format!(
                "`{}` needs a pass over {} slices with {} reductions; a pass may touch at most {MAX_SLOTS} slices (w, g, state buffers, inputs) and compute {MAX_REDUCTIONS} reductions",
                p.name.text,
                pass.slots.len(),
                pass.reductions.len()
            ),
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(text: &str) -> (Program, StepPlan) {
        let p = crate::compile(text).unwrap().remove(0);
        let plan = plan(&p);
        (p, plan)
    }

    #[test]
    fn adam_is_one_update_pass_reading_four_slices_and_writing_three() {
        let (_, s) = planned(
            "Adam { hyper lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8; state m = 0, v = 0;
             m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
             w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps); }",
        );
        assert!(s.init.is_none() && s.reduces.is_empty());
        let u = s.update.unwrap();
        assert_eq!(u.reads().collect::<Vec<_>>(), [Slot::G]);
        assert_eq!(
            u.written().collect::<Vec<_>>(),
            [Slot::W, Slot::Buffer(0), Slot::Buffer(1)]
        );
        assert!(u.heavy);
    }

    #[test]
    fn a_switched_off_buffer_is_idle_only_in_the_variant_that_skips_it() {
        let (p, s) = planned(
            "R { hyper amsgrad = false, b = 0.9; state m = 0, mx = 0;
             m = b * m + g; let v = m; if amsgrad { mx = max(mx, m); v = mx; } w -= v; }",
        );
        let u = s.update.unwrap();
        assert_eq!(u.bool_inputs(&p).count(), 1);
        let mx = u.slots.iter().position(|s| s.0 == Slot::Buffer(1)).unwrap();
        let off = u.idle_slots(&p, &[false]);
        assert!(off[mx]);
        assert_eq!(off.iter().filter(|&&b| b).count(), 1, "{off:?}");
        assert!(u.idle_slots(&p, &[true]).iter().all(|&b| !b));
        // Without the booleans, nothing may be skipped.
        assert!(u.idle_slots(&p, &[]).iter().all(|&b| !b));
    }

    #[test]
    fn a_buffer_is_switched_off_only_by_the_hyperparameter_that_skips_it() {
        let (p, s) = planned(
            "R { hyper amsgrad = false, b = 0.9; state m = 0, mx = 0, z = 0;
             m = b * m + g; let v = m; if amsgrad { mx = max(mx, m); v = mx; }
             if t > 3 { z = z + g; } w -= v + z; }",
        );
        // m always, z under a per-step boolean: never off.
        assert_eq!(
            switched_off(&p, &s, &[Some(false), None]),
            [false, true, false]
        );
        assert_eq!(
            switched_off(&p, &s, &[Some(true), None]),
            [false, false, false]
        );
        // Not known: it may be needed.
        assert_eq!(switched_off(&p, &s, &[None, None]), [false, false, false]);
        assert_eq!(switched_off(&p, &s, &[]), [false, false, false]);
    }

    #[test]
    fn a_norm_needs_a_pass_before_the_update() {
        let (p, s) = planned("R { let r = norm(g); w -= g / r; }");
        assert_eq!(s.reduces.len(), 1);
        assert_eq!(s.reduces[0].reductions.len(), 1);
        // The division by r is a per-step scalar after the reduction.
        assert!(s.scalars[1].iter().all(|&i| p.values[i].stage == 1));
    }

    #[test]
    fn a_reduction_of_draws_alone_still_walks_the_tensor() {
        let (_, s) = planned("R { w -= mean(randn()) * g; }");
        assert_eq!(s.reduces[0].reads().collect::<Vec<_>>(), [Slot::W]);
        assert!(s.reduces[0].elements.len() == 1);
    }

    #[test]
    fn buffers_from_g_are_filled_by_a_first_step_pass() {
        let (_, s) = planned("R { state m = g; m = 0.9 * m + g; w -= m; }");
        let init = s.init.unwrap();
        assert_eq!(init.written().collect::<Vec<_>>(), [Slot::Buffer(0)]);
    }
}
