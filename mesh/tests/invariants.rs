//! Architecture invariants (README): `mesh` knows nothing of HTTP, sessions, storage or views, so it can back
//! a CLI later; every write uses the one field manager.

#[test]
fn mesh_depends_on_no_web_ui_or_storage_crate() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    let deps: Vec<&str> = manifest
        .split("\n[")
        .filter(|s| s.starts_with("dependencies]"))
        .flat_map(|s| s.lines().skip(1))
        .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert!(
        deps.contains(&"kube"),
        "parsed the dependency list: {deps:?}"
    );
    for forbidden in [
        "leptos",
        "leptos_axum",
        "axum",
        "tower-sessions",
        "sqlx",
        "app",
        "server",
        "hyper",
    ] {
        assert!(
            !deps.contains(&forbidden),
            "mesh must not depend on {forbidden}"
        );
    }
}

#[test]
fn there_is_one_field_manager() {
    assert_eq!(mesh::FIELD_MANAGER, "meshdeck");
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"));
    for entry in std::fs::read_dir(src).expect("src") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (i, line) in text.lines().enumerate() {
            if line.contains("PatchParams::apply(") {
                assert!(
                    line.contains("FIELD_MANAGER"),
                    "{}:{}: server-side apply must use FIELD_MANAGER",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}
