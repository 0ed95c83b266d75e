//! Architecture invariants (README) that a scan of the sources can check: wire types carry no Kubernetes
//! client types and no credentials; server functions hold no SQL and no Kubernetes API calls.

fn sources(dir: &str) -> Vec<(String, String)> {
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    let mut out = Vec::new();
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).expect("read"),
                ));
            }
        }
    }
    assert!(!out.is_empty(), "found sources in {dir}");
    out
}

#[test]
fn wire_types_carry_no_kubernetes_types_and_no_credentials() {
    for (path, text) in sources("src/model") {
        for forbidden in [
            "k8s_openapi",
            "kube::",
            "Credentials",
            "credentials:",
            "password:",
            "token:",
        ] {
            assert!(!text.contains(forbidden), "{path} mentions {forbidden}");
        }
    }
}

#[test]
fn server_functions_hold_no_sql_and_no_cluster_calls() {
    for (path, text) in sources("src/api") {
        for forbidden in [
            "sqlx",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
            "DELETE ",
            "Api<",
            "kube::",
            "k8s_openapi",
        ] {
            assert!(!text.contains(forbidden), "{path} contains {forbidden}");
        }
    }
}

#[test]
fn every_server_function_is_checked_for_a_user_or_is_one_of_the_public_ones() {
    // sign_in_options: what the sign-in page offers, and this browser's own last refusal.
    const PUBLIC: [&str; 4] = ["sign_in", "sign_out", "get_me", "sign_in_options"];
    for (path, text) in sources("src/api") {
        // `#[server(default)]` marks an argument; every server fn itself names its endpoint.
        let fns = text.matches("#[server(").count() - text.matches("#[server(default)]").count();
        assert_eq!(
            fns,
            text.matches("#[server(endpoint = \"").count(),
            "{path}: a server fn without an explicit endpoint"
        );
        for part in text.split("#[server(endpoint = \"").skip(1) {
            let endpoint = part.split('"').next().unwrap_or_default();
            let body = part.split("\n}\n").next().unwrap_or_default();
            if PUBLIC.contains(&endpoint) {
                continue;
            }
            // Read without whitespace: rustfmt may break a call over lines.
            let flat: String = body.split_whitespace().collect();
            assert!(
                flat.contains("session::require(Role::")
                    || WRAPPERS
                        .iter()
                        .any(|w| flat.contains(&format!("{w}(Role::"))),
                "{path}: server fn {endpoint} does not call session::require first"
            );
        }
    }
    // A wrapper counts only when it authenticates before anything else.
    for w in WRAPPERS {
        let (_, text) = sources("src/api")
            .into_iter()
            .find(|(_, t)| t.contains(&format!("async fn {w}<")))
            .unwrap_or_else(|| panic!("the wrapper {w} is defined in src/api"));
        let def = text
            .split(&format!("async fn {w}<"))
            .nth(1)
            .and_then(|d| d.split("\n}\n").next())
            .unwrap_or_default();
        let first = def
            .split("async {")
            .nth(1)
            .and_then(|b| b.lines().map(str::trim).find(|l| !l.is_empty()))
            .unwrap_or_default();
        assert_eq!(
            first, "let user = session::require(needed).await?;",
            "{w} authenticates first"
        );
    }
}

/// Helpers that server functions call with the role they need, and that call `session::require` first.
const WRAPPERS: [&str; 2] = ["with_portal", "leave"];
