//! Fuzzing the console's own parsers of outside input, on stable Rust (the harness is `testworld::fuzz`; the
//! YAML-side targets are in `mesh/tests/fuzz.rs`): `next=` after sign-in, a topology export read back, a plan archive
//! built from any names and text, suggested cluster names, and the setup settings' validation. Each runs for
//! `MESHDECK_FUZZ_SECS` (default 2 s), must never panic, and prints its executions.
#![cfg(feature = "ssr")]

use proptest::prelude::*;
use testworld::fuzz::{bytes, fuzz};

#[test]
fn next_after_sign_in() {
    let pathish = prop::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just("//".to_string()),
            Just("\\".to_string()),
            Just("\t".to_string()),
            Just("\r\n".to_string()),
            Just("%2F".to_string()),
            Just("%5c".to_string()),
            Just("?".to_string()),
            Just("&".to_string()),
            Just("=".to_string()),
            Just("#".to_string()),
            Just("..".to_string()),
            Just("clusters".to_string()),
            Just("activity".to_string()),
            Just("https:".to_string()),
            Just("evil.example".to_string()),
            "[a-z0-9-]{1,6}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_map(|p| p.concat());
    fuzz("next", prop_oneof![pathish, bytes()], |next| {
        let to = app::model::after_sign_in(Some(next));
        assert!(
            http::HeaderValue::from_str(&to).is_ok(),
            "{to:?} is a header value"
        );
        assert!(to.starts_with('/') && !to.starts_with("//"), "{to:?}");
        assert!(
            !to.contains('\\') && !to.chars().any(char::is_control),
            "{to:?}"
        );
        assert!(
            to == "/clusters" || to == *next,
            "only ours, unchanged: {to:?}"
        );
    });
}

#[test]
fn topology_imports_read_and_lay_out() {
    let seed = serde_json::json!({"version": 3, "graph": {
        "clusters": [
            {"name": "c1", "network": "n1", "region": "r1", "health": "Healthy"},
            {"name": "c2", "network": "n1", "health": "Failing"}
        ],
        "links": [{"from": "c1", "to": "c2", "health": "Healthy"}]
    }})
    .to_string();
    let seed: &'static str = Box::leak(seed.into_boxed_str());
    let edited =
        prop::collection::vec((any::<usize>(), any::<char>()), 0..8).prop_map(move |edits| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, c) in edits {
                let at = at % (s.len() + 1);
                if at < s.len() && c.is_ascii_digit() {
                    s.remove(at);
                } else {
                    s.insert(at, c);
                }
            }
            s.into_iter().collect::<String>()
        });
    fuzz("topology-import", prop_oneof![edited, bytes()], |t| {
        if let Ok(g) = app::model::topology::parse_export(t) {
            for by in [
                app::model::topology::GroupBy::Network,
                app::model::topology::GroupBy::Region,
            ] {
                let layout = app::model::topology::layout(&g, by);
                let _ = layout;
            }
        }
    });
}

#[test]
fn plan_archives() {
    use app::model::{ClusterPlan, PlanObject, PlanStep};
    let text = || prop_oneof![bytes(), "[a-zA-Z0-9 ./\\\\-]{0,40}"];
    let object = (text(), text(), text(), text()).prop_map(|(kind, ns, name, yaml)| PlanObject {
        kind,
        namespace: Some(ns),
        name,
        yaml,
        change: "update".into(),
        detail: Some("diff".into()),
    });
    let plan = (
        text(),
        prop::collection::vec((text(), prop::collection::vec(object, 0..3)), 0..3),
    )
        .prop_map(|(cluster, steps)| ClusterPlan {
            cluster,
            error: None,
            steps: steps
                .into_iter()
                .map(|(title, objects)| PlanStep {
                    title,
                    objects,
                    commands: vec!["kubectl apply -f -".into()],
                })
                .collect(),
        });
    fuzz("plan-archive", prop::collection::vec(plan, 0..3), |plans| {
        let files = app::model::plan_archive::plan_files(plans);
        for (path, _) in &files {
            assert!(path.starts_with("meshdeck-plan/"), "{path}");
            assert!(
                !path
                    .split('/')
                    .any(|p| p == ".." || p == "." || p.is_empty()),
                "no path escapes the archive: {path:?}"
            );
        }
        let tar = app::model::plan_archive::tar(&files, 1_700_000_000);
        assert_eq!(tar.len() % 512, 0);
    });
}

#[test]
fn names_and_settings() {
    fuzz(
        "names",
        prop_oneof![bytes(), "[A-Za-z0-9_.:/ -]{0,80}"],
        |t| {
            let name = app::model::suggest_cluster_name(t);
            assert!(app::model::ClusterName::new(&name).is_ok(), "{name:?}");
            let _ = app::ssr::store::check_username(t);
            let _ = app::model::parse_selector(t);
        },
    );
}
