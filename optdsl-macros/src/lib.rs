//! optdsl's compiler: `optimizer!` turns update rules written as papers write
//! them into fused loops. This file is only the entry point; the phases are
//! `parse` (tokens -> tree), `check` (names, kinds), `lower` (SSA, stages) and
//! `expand` (Rust tokens).

mod ast;
mod check;
mod expand;
mod lower;
mod parse;

use proc_macro2::TokenStream;

/// Compiles one or more update rules into types implementing
/// `optdsl::UpdateRule`. See the optdsl README for the language.
#[proc_macro]
pub fn optimizer(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    compile(input.into()).into()
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
