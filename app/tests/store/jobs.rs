//! Jobs in the store: cluster locks, steps, events and leases; on SQLite and Postgres.

use super::*;

async fn jobs_lock_their_clusters_and_record_steps_events_and_leases(store: Store) {
    use app::ssr::store::NewJob;
    let steps = vec![
        ("c1".to_string(), "root-of-trust".to_string()),
        ("c2".to_string(), "root-of-trust".to_string()),
        ("*".to_string(), "verify".to_string()),
    ];
    let clusters = vec!["c1".to_string(), "c2".to_string()];
    let job = |id: &'static str, clusters: &'static [String]| NewJob {
        id,
        kind: "setup",
        spec: "{}",
        secret: Some(&[1, 2, 3]),
        started_by: "alice",
        steps: &[],
        clusters,
        lease_owner: "replica-a",
        lease_until: 0,
    };
    let first = NewJob {
        steps: &steps,
        clusters: &clusters,
        lease_until: i64::MAX / 2,
        ..job("job-1", &[])
    };
    assert_eq!(store.create_job(&first).await.expect("create"), Ok(()));
    // A second job on c2 is refused and nothing of it is stored.
    static C2_C3: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["c3".to_string(), "c2".to_string()]);
    let holders = store
        .create_job(&job("job-2", &C2_C3))
        .await
        .expect("create")
        .expect_err("busy");
    assert_eq!(holders.len(), 1);
    assert_eq!(
        (
            holders[0].cluster.as_str(),
            holders[0].job_id.as_str(),
            holders[0].started_by.as_str()
        ),
        ("c2", "job-1", "alice")
    );
    assert!(store.job("job-2").await.expect("job").is_none());
    assert!(
        store
            .holders(&["c3".into()])
            .await
            .expect("holders")
            .is_empty(),
        "c3 not left locked"
    );
    // A registered cluster a job holds cannot be removed; one no job holds can.
    store.insert_cluster(&cluster("c1")).await.expect("c1");
    store.insert_cluster(&cluster("c3")).await.expect("c3");
    let e = store
        .delete_cluster(&ClusterName::new("c1").expect("name"))
        .await
        .expect_err("held by job-1");
    assert!(
        matches!(&e, Error::Busy(m) if m.contains("job-1") && m.contains("alice")),
        "{e}"
    );
    assert!(
        store
            .cluster(&ClusterName::new("c1").expect("name"))
            .await
            .expect("read")
            .is_some()
    );
    store
        .delete_cluster(&ClusterName::new("c3").expect("name"))
        .await
        .expect("c3 is free");

    store
        .set_step("job-1", "c1", "root-of-trust", "running", None, None)
        .await
        .expect("running");
    store
        .set_step(
            "job-1",
            "c1",
            "root-of-trust",
            "done",
            Some(true),
            Some("wrote cacerts"),
        )
        .await
        .expect("done");
    store
        .set_step("job-1", "c2", "root-of-trust", "running", None, None)
        .await
        .expect("running");
    let s = store.job_steps("job-1").await.expect("steps");
    assert_eq!(s.len(), 3);
    assert_eq!(
        (s[0].state.as_str(), s[0].changed, s[0].message.as_deref()),
        ("done", Some(true), Some("wrote cacerts"))
    );
    assert!(s[0].started_at.is_some() && s[0].finished_at.is_some());
    let e1 = store
        .add_event("job-1", Some("c1"), Some("root-of-trust"), "info", "one")
        .await
        .expect("event");
    let e2 = store
        .add_event("job-1", None, None, "info", "two")
        .await
        .expect("event");
    assert!(e2 > e1);
    let after = store.job_events("job-1", e1).await.expect("events");
    assert_eq!(
        after.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["two"]
    );

    // Leases: the owner renews; a stale lease is taken over, once; the running step goes back to pending.
    assert!(
        store
            .renew_lease("job-1", "replica-a", 0)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_lease("job-1", "replica-b", 0)
            .await
            .expect("renew")
    );
    assert_eq!(
        store
            .claim_orphaned_jobs("replica-b", i64::MAX / 2)
            .await
            .expect("claim"),
        vec!["job-1".to_string()]
    );
    assert!(
        store
            .claim_orphaned_jobs("replica-c", 1)
            .await
            .expect("claim")
            .is_empty()
    );
    assert_eq!(
        store
            .reopen_steps("job-1", None, false)
            .await
            .expect("reopen"),
        1
    );
    let s = store.job_steps("job-1").await.expect("steps");
    assert_eq!(
        (s[0].state.as_str(), s[1].state.as_str()),
        ("done", "pending")
    );

    // Finishing releases the clusters; a retry takes them again.
    store.finish_job("job-1", "failed").await.expect("finish");
    assert!(store.holders(&clusters).await.expect("holders").is_empty());
    assert_eq!(
        store
            .relock("job-1", &clusters, "replica-b", 10)
            .await
            .expect("relock"),
        Ok(())
    );
    assert_eq!(
        store.job("job-1").await.expect("job").map(|j| j.state),
        Some("running".into())
    );
    assert_eq!(
        store.job_secret("job-1").await.expect("secret"),
        Some(vec![1, 2, 3])
    );
    assert_eq!(store.list_jobs(10).await.expect("list").len(), 1);
}

#[tokio::test]
async fn sqlite_jobs_lock_their_clusters_and_record_steps_events_and_leases() {
    jobs_lock_their_clusters_and_record_steps_events_and_leases(sqlite().await).await;
}

#[tokio::test]
async fn postgres_jobs_lock_their_clusters_and_record_steps_events_and_leases() {
    jobs_lock_their_clusters_and_record_steps_events_and_leases(postgres().await).await;
}
