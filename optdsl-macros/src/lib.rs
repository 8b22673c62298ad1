//! optdsl's compiler: `optimizer!` turns update rules written as papers write
//! them into fused loops. This file is only the entry point; the phases are
//! `parse` (tokens -> tree), `check` (names, kinds), `lower` (SSA, stages) and
//! `expand` (Rust tokens).

mod ast;
mod check;
mod expand;
mod lower;
mod network;
mod parse;

use proc_macro2::TokenStream;

/// Compiles one or more update rules into types implementing
/// `optdsl::UpdateRule`. See the optdsl README for the language.
#[proc_macro]
pub fn optimizer(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    compile(input.into()).into()
}

/// Compiles network specs (`input 256; dense 128 sigmoid; ...; loss
/// cross_entropy;`) into types that build `optdsl::net::Network`s.
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    compile_networks(input.into()).into()
}

/// `network!` on `proc_macro2` tokens.
fn compile_networks(input: TokenStream) -> TokenStream {
    let nets = match parse::parse_networks(input) {
        Ok(nets) => nets,
        Err(e) => return e.to_compile_error(),
    };
    let mut out = TokenStream::new();
    for def in &nets {
        match network::check(def) {
            Ok(net) => out.extend(network::expand(&net)),
            Err(e) => out.extend(e.to_compile_error()),
        }
    }
    out
}

/// The whole compiler on `proc_macro2` tokens, callable from tests.
fn compile(input: TokenStream) -> TokenStream {
    let rules = match parse::parse_rules(input) {
        Ok(rules) => rules,
        Err(e) => return e.to_compile_error(),
    };
    let mut out = TokenStream::new();
    for rule in &rules {
        match check::check(rule) {
            Ok(()) => out.extend(expand::expand(&lower::lower(rule))),
            Err(e) => {
                out.extend(e.to_compile_error());
                out.extend(expand::fallback(rule));
            }
        }
    }
    out
}
