//! cargo-fuzz target: any text that tokenizes is fed to the `optimizer!` and
//! `network!` compilers, which must answer with tokens or compile errors and
//! never panic. Run with `cargo fuzz run compile` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::str::FromStr;

// The compiler's files, compiled here as a plain library (a proc-macro crate
// exports only its macros).
#[path = "../../optdsl-macros/src/ast.rs"]
mod ast;
#[path = "../../optdsl-macros/src/check.rs"]
mod check;
#[path = "../../optdsl-macros/src/compile.rs"]
mod compile;
#[path = "../../optdsl-macros/src/expand.rs"]
mod expand;
#[path = "../../optdsl-macros/src/lower.rs"]
mod lower;
#[path = "../../optdsl-macros/src/network.rs"]
mod network;
#[path = "../../optdsl-macros/src/parse.rs"]
mod parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(tokens) = proc_macro2::TokenStream::from_str(text) {
            let _ = compile::rules(tokens.clone());
            let _ = compile::networks(tokens);
        }
    }
});
