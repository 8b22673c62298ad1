//! cargo-fuzz target: any text is fed to the language library (`optdsl-lang`:
//! the parser, the checker, lowering, the step plan, the traffic analysis and
//! the diagnostics renderer), which must answer with programs or diagnostics
//! and never panic. Run with `cargo fuzz run compile` from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optdsl_lang::eval::Scalar;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match optdsl_lang::compile(text) {
        Ok(programs) => {
            for p in &programs {
                let _ = optdsl_lang::passes::plan(p);
                let hypers: Vec<Scalar> = p.hypers.iter().map(|h| h.default.into()).collect();
                let _ = optdsl_lang::traffic::traffic(p, &hypers, 1);
                let _ = p.fingerprint_of();
            }
        }
        Err(diagnostics) => {
            let _ = optdsl_lang::render("fuzz.opt", text, &diagnostics);
        }
    }
    let _ = optdsl_lang::parse::parse_networks(text);
});
