//! Input roles: what a rule's `input` is, declared as `input h: curvature;`,
//! so that a trainer knows what to compute for it (the vSGD rules' curvature
//! and previous gradient) by the role, whatever the input is called.

use std::fmt;

/// What a trainer computes for an input that declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The Gauss-Newton diagonal of the mini-batch's mean loss, by bbprop
    /// (Schaul, Zhang & LeCun 2012).
    Curvature,
    /// The mean over the mini-batch's rows of the squared per-row gradient.
    GradSquares,
    /// The mini-batch's row count, at every element.
    BatchRows,
    /// The mini-batch's gradient at the previous step's parameters (a second
    /// backward pass over the same rows; Schaul & LeCun 2013).
    PreviousGrad,
}

impl Role {
    /// Every role, in the order the language reference lists them.
    pub const ALL: [Role; 4] = [
        Role::Curvature,
        Role::GradSquares,
        Role::BatchRows,
        Role::PreviousGrad,
    ];

    /// The role's name in the language.
    pub fn name(self) -> &'static str {
        match self {
            Role::Curvature => "curvature",
            Role::GradSquares => "grad_squares",
            Role::BatchRows => "batch_rows",
            Role::PreviousGrad => "previous_grad",
        }
    }

    /// The role called `name`.
    ///
    /// ```
    /// use optdsl_lang::role::Role;
    /// assert_eq!(Role::parse("curvature"), Some(Role::Curvature));
    /// assert_eq!(Role::parse("hessian"), None);
    /// for r in Role::ALL {
    ///     assert_eq!(Role::parse(r.name()), Some(r));
    /// }
    /// ```
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
