//! The architecture rule of DESIGN.md §1: the runtime crate, which production controllers
//! depend on, must not depend on the simulator or on test-only crates.

/// The crate names in the `[dependencies]` table of the root manifest.
fn runtime_dependencies() -> Vec<String> {
    let manifest = include_str!("../Cargo.toml");
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps {
            if let Some((name, _)) = line.split_once('=') {
                deps.push(name.trim().trim_end_matches(".workspace").to_string());
            }
        }
    }
    deps
}

#[test]
fn the_runtime_does_not_depend_on_turmoil_proptest_or_insta() {
    // Reads the manifest the crate is built from; a forbidden name fails here.
    let deps = runtime_dependencies();
    assert!(
        deps.iter().any(|d| d == "kube"),
        "parsed the table: {deps:?}"
    );
    for forbidden in ["turmoil", "proptest", "insta", "kube-chaos-harness"] {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "{forbidden} in the runtime's dependencies: {deps:?}"
        );
    }
}
