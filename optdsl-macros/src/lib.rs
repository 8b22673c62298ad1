//! optdsl's compiler: `optimizer!` turns update rules written as papers write
//! them into fused loops. This file is only the entry point; the phases are
//! `parse` (tokens -> tree), `check` (names, kinds), `lower` (SSA, stages) and
//! `expand` (Rust tokens).

mod ast;
mod check;
mod compile;
mod expand;
mod lower;
mod network;
mod parse;

/// Compiles one or more update rules into types implementing
/// `optdsl::UpdateRule`. See the optdsl README for the language.
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
