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
    let files = rust_files(&["mesh/src"]);
    assert!(
        files.iter().any(|p| p.ends_with("mesh/src/ca/cacerts.rs")),
        "walked into module folders: {files:?}"
    );
    for path in files {
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

/// Every YAML the console reads goes through `mesh::yaml`, which bounds what it expands to (README,
/// invariant 7): no other code of `mesh`, `app` or `server` calls serde_yaml's parsers directly (tests aside).
#[test]
fn every_yaml_is_read_through_the_bounded_parser() {
    let files = rust_files(&["mesh/src", "app/src", "server/src"]);
    assert!(files.len() > 20, "found the sources: {}", files.len());
    for path in files {
        if path.ends_with("mesh/src/yaml.rs") {
            continue;
        }
        // Unit tests may read their own fixtures directly: after `#[cfg(test)]` in a file, or in a file of
        // their own that the module declares as `#[cfg(test)] mod tests;`.
        if is_unit_test_file(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            for parser in [
                "serde_yaml::from_str",
                "serde_yaml::from_slice",
                "serde_yaml::from_reader",
                "serde_yaml::Deserializer::from",
                "serde_yaml::from_value",
            ] {
                assert!(
                    !line.contains(parser),
                    "{}:{}: read YAML through mesh::yaml (bounded), not {parser}",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}

/// The browser build reads JSON from bytes only (`app/src/data.rs`): a resource made with Leptos' own codec, or
/// text parsed with `serde_json::from_str`, would compile a second copy of every deserializer it reaches into
/// the wasm. Only `app/src/ssr`, a module the browser build never compiles, may read text as it likes; the
/// files of `app/src/api` are compiled into both builds and held to the rule like the pages.
#[test]
fn the_browser_build_reads_json_one_way() {
    let files = rust_files(&["app/src"]);
    assert!(files.len() > 20, "found the sources: {}", files.len());
    for path in files {
        if path.ends_with("app/src/data.rs") || is_unit_test_file(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let server_only = path.components().any(|c| c.as_os_str() == "ssr");
        for (i, line) in code.lines().enumerate() {
            // Leptos' resources that send their value from the server to the browser (each reads it with
            // its own codec); `LocalResource` sends nothing and is allowed.
            let mut banned = vec![
                "Resource::new(",
                "Resource::new_blocking(",
                "Resource<",
                "ArcResource::new(",
                "ArcResource<",
                "OnceResource::new(",
                "ArcOnceResource::new(",
            ];
            if !server_only {
                banned.push("serde_json::from_str");
            }
            for b in banned {
                assert!(
                    !contains_word(line, b),
                    "{}:{}: {b} — use crate::data::{{data, Data, parse}} (one deserializer per type in the wasm)",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}

/// Whether `line` holds `token` where it starts a name (`Resource<` in `LocalResource<` does not count).
fn contains_word(line: &str, token: &str) -> bool {
    line.match_indices(token).any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn a_banned_name_counts_only_where_a_name_starts() {
    assert!(contains_word(
        "let r = Resource::new(|| (), f);",
        "Resource::new("
    ));
    assert!(contains_word(
        "x: leptos::prelude::Resource<T>",
        "Resource<"
    ));
    assert!(!contains_word(
        "let r = LocalResource::new(f);",
        "Resource::new("
    ));
    assert!(!contains_word("x: LocalResource<T>", "Resource<"));
    assert!(contains_word(
        "a(LocalResource::new(f), Resource::new(s, f))",
        "Resource::new("
    ));
}

/// Whether `path` is a module's unit tests in a file of their own: `<module>/tests.rs` or a file under
/// `<module>/tests/`, where `<module>/mod.rs` (or `lib.rs`) declares `#[cfg(test)] mod tests;`.
fn is_unit_test_file(path: &std::path::Path) -> bool {
    let Some(dir) = path
        .ancestors()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n == "tests" || n == "tests.rs")
        })
        .and_then(|p| p.parent())
    else {
        return false;
    };
    ["mod.rs", "lib.rs"].iter().any(|m| {
        std::fs::read_to_string(dir.join(m)).is_ok_and(|t| t.contains("#[cfg(test)]\nmod tests;"))
    })
}

/// Every `.rs` file under the given folders of the repository, module folders included.
fn rust_files(dirs: &[&str]) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = vec![];
    for dir in dirs {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
    }
    files
}
