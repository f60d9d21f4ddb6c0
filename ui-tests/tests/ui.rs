//! Compile tests of the macros (`#[derive(Dao)]`, `#[service]`, `ate::stable_name!`): `ui/<topic>/*.rs` must
//! fail with the `.stderr` beside them; `ui/pass/*.rs` must compile and run. Refresh the
//! `.stderr` files with `TRYBUILD=overwrite cargo test -p ate-ui-tests` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/dao/*.rs");
    t.compile_fail("tests/ui/stable_name/*.rs");
    t.compile_fail("tests/ui/service/*.rs");
}
