//! Compile-error tests: every DSL mistake is a compile error at the offending
//! token, with the message in `tests/ui/*.stderr`.

#[test]
fn dsl_errors_point_at_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
