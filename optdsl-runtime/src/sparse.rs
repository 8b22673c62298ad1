//! Row-sparse steps: any row-local rule run on the rows of a tensor that a
//! mini-batch touched (an embedding table's looked-up rows), from those rows'
//! gradients only, as `torch.optim.SparseAdam` steps `nn.Embedding(sparse=True)`.
//!
//! A tensor is row-major, `cols` elements a row. A sparse gradient names the
//! touched rows (any order, repeats allowed: a repeated row's values add up,
//! as PyTorch's `coalesce` sums them) and gives one row of values for each.
//! The step gathers those rows of the parameters and of every state buffer,
//! runs the rule's fused step on them with the tensor's step count, and
//! scatters them back: untouched rows and their state do not change, and
//! the step count (PyTorch's per-tensor `state['step']`) and the per-tensor
//! scalars advance once per step. An empty row set still counts a step and
//! changes no row, as PyTorch's SparseAdam skips an empty gradient after
//! counting it.
//!
//! Refused with [`Error::NotRowLocal`]: rules with a reduction over the
//! tensor (`sum`, `norm`, ...: their update of one row reads every row),
//! rules whose state starts from per-element values of the first step (such
//! a buffer would start from the first-touched rows only), rules that take
//! `input`s beside the gradient, and compressed state (8-bit blocks span
//! rows).
//!
//! ```
//! # extern crate optdsl_runtime as optdsl;
//! use optdsl::sparse::{step_rows, SparseGrad};
//! use optdsl::{builtin_rule, DynFloat};
//! let rule = builtin_rule("sparse_adam").unwrap();
//! let mut table = vec![0.0f64; 3 * 2]; // 3 rows of 2
//! let mut state = f64::dyn_init(rule.as_ref(), table.len());
//! // rows 2 and 0 touched; row 2 twice, its two gradient rows add up
//! let grad = SparseGrad { cols: 2, rows: &[2, 0, 2], values: &[1.0, 1.0, 1.0, -1.0, 1.0, 1.0] };
//! step_rows(rule.as_ref(), &mut state, &mut table, &grad).unwrap();
//! assert_eq!(state.t, 1);
//! assert_eq!(&table[2..4], &[0.0, 0.0]); // row 1 untouched
//! assert!(table[0] < 0.0 && table[1] > 0.0 && table[4] < 0.0);
//! ```

use crate::error::{Error, Result};
use crate::rule::{DynFloat, DynRule, RuleInfo, State};
use optdsl_lang::ir::Kind;

/// A row-sparse gradient of a row-major tensor of `cols` columns: the
/// touched `rows` and their gradient `values`, `cols` numbers a row, in the
/// order of `rows`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseGrad<'a, F> {
    /// Elements per row (> 0; the tensor's length must be a multiple).
    pub cols: usize,
    /// The touched rows, any order; a repeated row's values are summed.
    pub rows: &'a [usize],
    /// `rows.len() * cols` values, row after row.
    pub values: &'a [F],
}

/// Checks that `info`'s rule can step some rows of a tensor alone: no
/// reduction over the tensor, no state initialised from per-element values,
/// no inputs, no random draws. Otherwise [`Error::NotRowLocal`] saying why.
pub fn check_row_local(info: &RuleInfo) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::NotRowLocal {
            rule: info.name.to_string(),
            reason,
        })
    };
    if info.program().tensor.is_some() {
        return refuse(
            "it is a rule with shapes (rows, columns, matrix products): its update reads the whole matrix"
                .into(),
        );
    }
    if info.has_reduction() {
        return refuse(
            "its update reduces over the whole tensor (sum, mean, norm, ...), so a row's update reads rows the gradient does not touch"
                .into(),
        );
    }
    let p = info.program();
    if let Some(k) = p
        .buffers
        .iter()
        .position(|b| p.values[b.init].kind == Kind::Element)
    {
        return refuse(format!(
            "its state `{}` starts from per-element values of the first step, which a sparse step would give only the rows it touches",
            info.buffers.get(k).copied().unwrap_or("?")
        ));
    }
    if let Some(k) = p
        .storage
        .iter()
        .position(|s| *s != optdsl_lang::Storage::Full)
    {
        return refuse(format!(
            "its state `{}` is declared compressed (8-bit blocks span rows; bf16 is not kept per row here)",
            info.buffers.get(k).copied().unwrap_or("?")
        ));
    }
    if !info.inputs.is_empty() {
        return refuse(format!(
            "it takes inputs [{}] beside the gradient; sparse steps pass the gradient only",
            info.inputs.join(", ")
        ));
    }
    if p.streams() > 0 {
        return refuse(
            "it draws random numbers (rand, randn), keyed by each element's index in the whole tensor, which a step of gathered rows does not keep; step it densely"
                .into(),
        );
    }
    Ok(())
}

/// Checks `grad` against a tensor of `len` elements (the rows in range,
/// the values' length, `cols` dividing `len`), and returns the coalesced
/// gradient: the distinct rows ascending, each with its values summed in
/// the order given.
pub fn coalesce<F: DynFloat>(len: usize, grad: &SparseGrad<'_, F>) -> Result<(Vec<usize>, Vec<F>)> {
    let cols = grad.cols;
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(Error::Invalid {
            what: "sparse gradient".into(),
            reason: format!(
                "rows of {cols} columns do not tile a tensor of {len} elements; give cols > 0 dividing the length (the table's row width)"
            ),
        });
    }
    let nrows = len / cols;
    if grad.values.len() != grad.rows.len() * cols {
        return Err(Error::LengthMismatch {
            what: format!(
                "the sparse gradient's values ({} rows of {cols})",
                grad.rows.len()
            ),
            expected: grad.rows.len() * cols,
            got: grad.values.len(),
        });
    }
    if let Some(&r) = grad.rows.iter().find(|&&r| r >= nrows) {
        return Err(Error::NoSuchIndex {
            what: "row",
            index: r,
            count: nrows,
        });
    }
    let mut order: Vec<usize> = (0..grad.rows.len()).collect();
    order.sort_by_key(|&i| grad.rows[i]);
    let mut rows: Vec<usize> = Vec::with_capacity(order.len());
    let mut values: Vec<F> = Vec::with_capacity(grad.values.len());
    for i in order {
        let src = &grad.values[i * cols..(i + 1) * cols];
        if rows.last() == Some(&grad.rows[i]) {
            let start = values.len() - cols;
            for (acc, &v) in values[start..].iter_mut().zip(src) {
                *acc += v;
            }
        } else {
            rows.push(grad.rows[i]);
            values.extend_from_slice(src);
        }
    }
    Ok((rows, values))
}

/// One row-sparse step of `rule` on the tensor `w` (row-major, `grad.cols`
/// a row) with its `state`: the touched rows of `w` and of every state
/// buffer are stepped, the others left as they are; the step count and
/// scalars advance once. Every check comes first: on an error nothing has
/// changed.
pub fn step_rows<F: DynFloat>(
    rule: &dyn DynRule,
    state: &mut State<F>,
    w: &mut [F],
    grad: &SparseGrad<'_, F>,
) -> Result<()> {
    let info = rule.info();
    check_row_local(info)?;
    state.check(info, w.len(), w.len())?;
    check_uncompressed(info, state)?;
    let (rows, g) = coalesce(w.len(), grad)?;
    step_coalesced(rule, state, w, grad.cols, &rows, &g)
}

/// Refuses a state whose buffers are kept compressed ([`State::set_format`]:
/// 8-bit blocks of 256 elements span rows, so a row's codes cannot change
/// alone).
pub fn check_uncompressed<F: DynFloat>(info: &RuleInfo, state: &State<F>) -> Result<()> {
    if state.packed.iter().any(Option::is_some) {
        return Err(Error::NotRowLocal {
            rule: info.name.to_string(),
            reason: "its state is kept compressed (8-bit or bf16), whose blocks span rows; keep the state in the element type".into(),
        });
    }
    Ok(())
}

/// [`step_rows`] after the checks, on a coalesced gradient.
pub(crate) fn step_coalesced<F: DynFloat>(
    rule: &dyn DynRule,
    state: &mut State<F>,
    w: &mut [F],
    cols: usize,
    rows: &[usize],
    g: &[F],
) -> Result<()> {
    let n = rows.len() * cols;
    let gather = |src: &[F]| -> Vec<F> {
        let mut out = Vec::with_capacity(n);
        for &r in rows {
            out.extend_from_slice(&src[r * cols..(r + 1) * cols]);
        }
        out
    };
    let mut sub = State {
        rule: state.rule.clone(),
        fingerprint: state.fingerprint,
        t: state.t,
        len: n,
        buffers: state.buffers.iter().map(|b| gather(b)).collect(),
        scalars: state.scalars.clone(),
        packed: Vec::new(),
        draws: None,
        shape: Vec::new(),
    };
    let mut ws = gather(w);
    F::dyn_step(rule, &mut sub, &mut ws, g, &[])?;
    let scatter = |dst: &mut [F], src: &[F]| {
        for (k, &r) in rows.iter().enumerate() {
            dst[r * cols..(r + 1) * cols].copy_from_slice(&src[k * cols..(k + 1) * cols]);
        }
    };
    scatter(w, &ws);
    for (b, s) in state.buffers.iter_mut().zip(&sub.buffers) {
        scatter(b, s);
    }
    state.t = sub.t;
    state.scalars = sub.scalars;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin_rule;

    #[test]
    fn a_compressed_state_is_refused_and_unchanged() {
        let rule = builtin_rule("sparse_adam").unwrap();
        let mut w = vec![1.0f32; 512];
        let mut state: State<f32> = f32::dyn_init(rule.as_ref(), w.len());
        state.set_format(rule.info(), optdsl_lang::StateFormat::Q8, None);
        assert!(state.packed.iter().any(Option::is_some));
        let before = state.clone();
        let g = SparseGrad {
            cols: 2,
            rows: &[7],
            values: &[1.0f32, 1.0],
        };
        let e = step_rows(rule.as_ref(), &mut state, &mut w, &g).unwrap_err();
        assert!(matches!(e, Error::NotRowLocal { .. }), "{e}");
        assert!(e.to_string().contains("compressed"), "{e}");
        assert_eq!((state, w), (before, vec![1.0f32; 512]));
    }
}
