use super::*;

fn result(id: CheckId, status: Status) -> CheckResult {
    CheckResult::new(id, status, "x")
}

fn cluster(name: &str, root: Option<&str>) -> ClusterChecks {
    ClusterChecks {
        cluster: ClusterName::new(name).expect("name"),
        results: vec![result(CheckId::RootOfTrust, Status::Pass)],
        root_fingerprint: root.map(String::from),
        trusted_roots: vec![],
    }
}

fn bundled(name: &str, signs: &str, trusts: &[&str]) -> ClusterChecks {
    ClusterChecks {
        trusted_roots: trusts.iter().map(|t| t.to_string()).collect(),
        ..cluster(name, Some(signs))
    }
}

#[test]
fn during_a_rotation_both_roots_pass_when_each_side_trusts_the_others_signer() {
    // Midway: c1 signs with the new root, c2 still with the old; both trust both.
    let mut all = vec![
        bundled("c1", "bbbb", &["bbbb", "aaaa"]),
        bundled("c2", "aaaa", &["aaaa", "bbbb"]),
    ];
    compare_roots(&mut all);
    for c in &all {
        assert_eq!(c.worst(), Status::Pass, "{:?}", c.results);
        let m = &c.results[0].message;
        assert!(m.contains("aaaa") && m.contains("bbbb"), "{m}");
    }
    // c1 signs with the new root while c3 trusts only the old: c3 cannot verify c1, and says so both sides.
    let mut all = vec![
        bundled("c1", "bbbb", &["bbbb", "aaaa"]),
        cluster("c3", Some("aaaa")),
    ];
    compare_roots(&mut all);
    assert_eq!(all[0].worst(), Status::Fail);
    assert!(
        all[0].results[0].message.contains("c3 does not trust"),
        "{}",
        all[0].results[0].message
    );
    assert_eq!(all[1].worst(), Status::Fail);
    assert!(
        all[1].results[0]
            .message
            .contains("does not trust c1's root")
    );
    // A cluster serving no root yet is not counted against the others.
    let mut all = vec![
        bundled("c1", "bbbb", &["bbbb", "aaaa"]),
        bundled("c2", "aaaa", &["aaaa", "bbbb"]),
        cluster("c4", None),
    ];
    compare_roots(&mut all);
    assert_eq!(all[0].worst(), Status::Pass, "{:?}", all[0].results);
    assert_eq!(all[1].worst(), Status::Pass, "{:?}", all[1].results);
}

#[test]
fn the_odd_root_out_fails_and_names_the_others() {
    let mut all = vec![
        cluster("c1", Some("aaaa")),
        cluster("c2", Some("aaaa")),
        cluster("c3", Some("bbbb")),
    ];
    compare_roots(&mut all);
    assert_eq!(all[0].worst(), Status::Pass);
    assert_eq!(all[2].worst(), Status::Fail);
    let m = &all[2].get(CheckId::RootOfTrust).expect("root").message;
    assert!(m.contains("c1, c2"), "{m}");
    assert!(all[2].results[0].remediation.is_some());
}

#[test]
fn equal_roots_pass_everywhere() {
    let mut all = vec![cluster("c1", Some("aaaa")), cluster("c2", Some("aaaa"))];
    compare_roots(&mut all);
    for c in &all {
        assert_eq!(c.worst(), Status::Pass);
        assert!(c.results[0].message.contains("same in every cluster"));
    }
}

#[test]
fn the_worst_status_wins() {
    let c = ClusterChecks {
        cluster: ClusterName::new("c1").expect("name"),
        results: vec![
            result(CheckId::License, Status::Pass),
            result(CheckId::Peers, Status::Pending),
            result(CheckId::IstiodPods, Status::Warn),
        ],
        root_fingerprint: None,
        trusted_roots: vec![],
    };
    assert_eq!(c.worst(), Status::Warn);
}

#[test]
fn a_response_is_complete_by_its_length_or_last_chunk() {
    assert!(!response_complete(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"
    ));
    assert!(response_complete(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    ));
    assert!(!response_complete(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    ));
    assert!(response_complete(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ));
    assert!(response_complete(
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    ));
}

#[test]
fn chunked_bodies_are_joined() {
    assert_eq!(
        dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "hello world"
    );
}

#[test]
fn a_cluster_not_meant_to_hold_peers_passes_without_any_but_its_peers_are_still_checked() {
    let name = ClusterName::new("c1").expect("name");
    let mut alone = ClusterChecks {
        cluster: name.clone(),
        results: vec![CheckResult::new(CheckId::Peers, Status::Fail, NO_PEERS).fix("Link.")],
        root_fingerprint: None,
        trusted_roots: vec![],
    };
    alone.expect_no_peers();
    assert_eq!(alone.worst(), Status::Pass);
    assert_eq!(alone.results[0].remediation, None);
    let mut broken = ClusterChecks {
        cluster: name,
        results: vec![CheckResult::new(
            CheckId::Peers,
            Status::Fail,
            "1 of 1 peers failing",
        )],
        root_fingerprint: None,
        trusted_roots: vec![],
    };
    broken.expect_no_peers();
    assert_eq!(broken.worst(), Status::Fail);
}

#[test]
fn text_output_has_one_line_per_check_and_the_fix() {
    let c = ClusterChecks {
        cluster: ClusterName::new("c1").expect("name"),
        results: vec![
            CheckResult::new(CheckId::Peers, Status::Fail, "no configured peers")
                .fix("Link the clusters."),
        ],
        root_fingerprint: None,
        trusted_roots: vec![],
    };
    let t = to_text(&[c]);
    assert_eq!(
        t,
        "=== Cluster: c1 ===\n❌ Peers Check: no configured peers\n    → Link the clusters.\n"
    );
}
