//! Input roles: `input h: curvature;` carries its role to the program; an
//! unknown role is an error at its token with a suggestion, and an input
//! without a role has none.

use optdsl_lang::role::Role;

#[test]
fn declared_roles_reach_the_program_in_input_order() {
    let p = optdsl_lang::compile(
        "pub R { input h: curvature, n: batch_rows, x; w -= 0.1 * g * h / n + x; }",
    )
    .expect("compiles");
    assert_eq!(p[0].inputs, ["h", "n", "x"]);
    assert_eq!(
        p[0].input_roles,
        [Some(Role::Curvature), Some(Role::BatchRows), None]
    );
}

#[test]
fn an_unknown_role_is_an_error_at_its_token_with_a_suggestion() {
    let text = "pub R { input h: curvatur; w -= 0.1 * g * h; }";
    let errors = optdsl_lang::compile(text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let at = text.find("curvatur").unwrap();
    assert_eq!(errors[0].span.start, at);
    assert_eq!(errors[0].span.end, at + "curvatur".len());
    assert!(
        errors[0].message.contains("unknown input role `curvatur`")
            && errors[0].message.contains("did you mean `curvature`"),
        "{}",
        errors[0].message
    );
}

#[test]
fn roles_do_not_change_the_fingerprint() {
    let with = optdsl_lang::compile("pub R { input h: curvature; w -= 0.1 * g / h; }").unwrap();
    let without = optdsl_lang::compile("pub R { input h; w -= 0.1 * g / h; }").unwrap();
    assert_eq!(with[0].fingerprint, without[0].fingerprint);
}
