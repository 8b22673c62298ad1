//! What the trainer computes for a rule's inputs, by the role each declares
//! (`input h: curvature`): nothing, the previous gradient, or quantities
//! computed with the gradient.

use optdsl_lang::role::Role;

/// What a rule with an `input` is given by the trainer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RuleInput {
    /// No input.
    None,
    /// `g_prev`: the mini-batch's gradient at the previous parameters
    /// (a second backward pass over the same rows).
    GradPrev,
    /// Inputs computed with the gradient, in the rule's order.
    Computed(Vec<Computed>),
}

/// An input the trainer computes with the mini-batch's gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Computed {
    /// `h`: the Gauss-Newton diagonal of the mini-batch's mean loss, by
    /// bbprop ([`Network::staged_loss_grad_and_curvature`]).
    Curvature,
    /// `g2`: the mean over the mini-batch's rows of the squared per-row
    /// gradient ([`Network::staged_loss_grad_and_squares`]).
    SquaredGrads,
    /// `n_mb`: the mini-batch's row count, at every element.
    BatchRows,
}

impl RuleInput {
    /// The inputs the trainer gives a rule, by the roles its inputs declare
    /// (`input h: curvature`), or `None` if it cannot give them (an input
    /// without a role, or `previous_grad` beside others).
    pub(super) fn of(roles: &[Option<Role>]) -> Option<RuleInput> {
        match roles {
            [] => Some(RuleInput::None),
            [Some(Role::PreviousGrad)] => Some(RuleInput::GradPrev),
            _ => roles
                .iter()
                .map(|role| match role {
                    Some(Role::Curvature) => Some(Computed::Curvature),
                    Some(Role::GradSquares) => Some(Computed::SquaredGrads),
                    Some(Role::BatchRows) => Some(Computed::BatchRows),
                    Some(Role::PreviousGrad) | None => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(RuleInput::Computed),
        }
    }

    /// `[h: curvature, g2]`: a rule's inputs with their roles, for messages.
    pub(super) fn describe(info: &crate::RuleInfo) -> String {
        format!("[{}]", info.input_decls().join(", "))
    }

    /// Whether the inputs include `kind`.
    pub(super) fn computes(&self, kind: Computed) -> bool {
        matches!(self, RuleInput::Computed(kinds) if kinds.contains(&kind))
    }
}
