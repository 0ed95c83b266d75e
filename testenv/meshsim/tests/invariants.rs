//! Architecture invariant 6 (README): the simulator never imports the console's crates, so it cannot mirror
//! the console's object shapes. It depends only on registry crates.

#[test]
fn simulator_depends_on_no_crate_of_this_repository() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    let deps: Vec<&str> = manifest
        .split("\n[")
        .filter(|section| {
            section.starts_with("dependencies]") || section.starts_with("dev-dependencies]")
        })
        .flat_map(|section| section.lines().skip(1))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert!(!deps.is_empty(), "no dependencies parsed from the manifest");
    for line in &deps {
        assert!(
            !line.contains("path"),
            "meshsim must not depend on local crates: {line}"
        );
        let name = line.split(['=', '.']).next().unwrap_or_default().trim();
        assert!(
            !["app", "server", "frontend", "mesh", "meshdeck"].contains(&name),
            "meshsim depends on the console crate {name}"
        );
    }
}
