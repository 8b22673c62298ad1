//! optdsl's language as a library: the grammar, the parser, the checker
//! (names, types and kinds resolved once, into a typed tree), lowering to the
//! one IR, the table of functions, the plan of a step's passes, the traffic
//! analysis and diagnostics with byte ranges.
//!
//! The `optimizer!` macro is a thin shell over this crate (its tokens become
//! text, the text is compiled here, code is generated from the IR); the
//! runtime interprets the same IR for rules read from text at run time.
//!
//! ```
//! let rules = optdsl_lang::compile(
//!     "/// Gradient descent.
//!      pub Descent { hyper lr = 0.1; w -= lr * g; }",
//! )
//! .unwrap();
//! assert_eq!(rules[0].name.text, "Descent");
//! assert_eq!(rules[0].hypers[0].name.text, "lr");
//!
//! let err = optdsl_lang::compile("R { w -= sgn(g); }").unwrap_err();
//! assert_eq!(err[0].message, "unknown function `sgn`; did you mean `sign`?");
//! ```

#![warn(missing_docs)]

pub mod ast;
pub mod bounds;
pub mod check;
pub mod diag;
pub mod eval;
pub mod functions;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod passes;
pub mod preset;
pub mod print;
pub mod random;
pub mod real;
pub mod role;
pub mod shaped;
pub mod span;
pub mod storage;
pub mod traffic;
pub mod typed;

pub use diag::{render, Diagnostic};
pub use functions::{Callee, Draw, Func, Reduction};
pub use ir::{Program, Slot};
pub use real::Real;
pub use span::Span;
pub use storage::{StateFormat, Storage, QBLOCK};

/// Parses, checks and lowers every rule of `text` (a rule file, or the text
/// of an `optimizer!` call). Every error of every rule comes back together,
/// in text order; a syntax error stops at the first.
pub fn compile(text: &str) -> Result<Vec<Program>, Vec<Diagnostic>> {
    let defs = parse::parse_rules(text).map_err(|d| vec![d])?;
    let mut errors = check::check_names(&defs);
    let mut programs = Vec::new();
    for outcome in compile_defs(&defs) {
        match outcome {
            Ok(p) => programs.push(p),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(programs)
    } else {
        errors.sort_by_key(|d| d.span.start);
        Err(errors)
    }
}

/// Checks and lowers each rule of one file or macro call, in order, a
/// preset expanded from the rule it names ([`preset::expand`]). A preset
/// whose base has errors is an `Err` with none of its own: the base's
/// errors are reported once, at the base.
pub fn compile_defs(defs: &[ast::RuleDef]) -> Vec<Result<Program, Vec<Diagnostic>>> {
    let mut out: Vec<Result<Program, Vec<Diagnostic>>> = Vec::with_capacity(defs.len());
    // Each rule's expansion, kept for the presets written below it, so a
    // chain of presets is expanded once.
    let mut expanded: Vec<Option<ast::RuleDef>> = Vec::with_capacity(defs.len());
    // The first rule of each name so far, so that finding a base is one lookup.
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, def) in defs.iter().enumerate() {
        let base = def
            .preset
            .as_ref()
            .and_then(|p| first.get(p.base.text.as_str()).copied());
        first.entry(def.name.text.as_str()).or_insert(i);
        let rule = match base {
            // A base with errors: they are reported once, at the base.
            Some(b) if out[b].is_err() => Err(Vec::new()),
            Some(b) => match &expanded[b] {
                Some(base) => preset::apply(def, base.clone()),
                None => Err(Vec::new()),
            },
            None => preset::expand(def, &defs[..i]),
        };
        let result = match rule {
            Ok(r) => {
                let p = compile_rule(&r);
                expanded.push(Some(r));
                p
            }
            Err(e) => {
                expanded.push(None);
                Err(e)
            }
        };
        out.push(result);
    }
    out
}

/// Checks and lowers one parsed rule (a preset already expanded): the
/// typed tree, the IR, the storage declarations and the driver's limits (what [`compile`] and the
/// `optimizer!` macro both run on each rule).
pub fn compile_rule(def: &ast::RuleDef) -> Result<Program, Vec<Diagnostic>> {
    if def.preset.is_some() {
        return Err(vec![Diagnostic::new(
            def.name.span,
            format!(
                "`{}` is a preset: expand it from its base first (`preset::expand`, or `compile_defs`)",
                def.name.text
            ),
        )]);
    }
    let typed = check::check(def)?;
    let p = lower::lower(&typed);
    check_storage(&typed, &p)?;
    passes::check_limits(&p)?;
    Ok(p)
}

/// Every buffer declared `uq8` (the unsigned map) must be provably never
/// negative ([`bounds::never_negative_buffers`]); the error is at the
/// declaration's `uq8`.
fn check_storage(typed: &typed::TypedRule, p: &Program) -> Result<(), Vec<Diagnostic>> {
    let proven = bounds::never_negative_buffers(p);
    let errors: Vec<Diagnostic> = typed
        .buffers
        .iter()
        .zip(&proven)
        .filter_map(|(b, &ok)| match b.storage {
            (Storage::Q8 { signed: false }, Some(span)) if !ok => Some(Diagnostic::new(
                span,
                format!(
                    "`{}` is declared `uq8`, the map for values that are never negative, but it can be negative here; declare it `q8` (the signed map)",
                    b.name.text
                ),
            )),
            _ => None,
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// FNV-1a's starting value (64 bits).
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, continued from `hash` over `bytes`: the project's one
/// hash of bytes (fingerprints of rules, data sets, trainer states and
/// checkpoints).
pub fn fnv1a_extend(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// FNV-1a, 64 bits, of `bytes`.
///
/// ```
/// assert_eq!(optdsl_lang::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(optdsl_lang::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_extend(FNV_OFFSET, bytes)
}

/// The README's example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
