//! The `optimizer!` and `network!` macros: a thin shell over `optdsl-lang`.
//! Tokens become text with a span table (`source`), `optdsl-lang` parses,
//! checks and lowers it, and code is generated from its IR: per-pass kernels
//! (`kernel`), the step around them (`step`) and the rule's type
//! (`rule_type`); `network` checks and expands network specs.

#![warn(missing_docs)]

mod compile;
mod kernel;
mod network;
mod rule_type;
mod source;
mod step;

/// Compiles one or more update rules into types implementing
/// `optdsl::UpdateRule`. The language is described in the optdsl
/// repository's docs/language.md.
#[proc_macro]
pub fn optimizer(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    compile::rules(input.into()).into()
}

/// Compiles network specs (`input 256; dense 128 sigmoid; ...; loss
/// cross_entropy;`) into types that build `optdsl::net::Network`s.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    compile::networks(input.into()).into()
}
