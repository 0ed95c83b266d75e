//! Store tests, on a real SQLite file and on a real Postgres (the test command starts Debian's Postgres and
//! exports MESHDECK_TEST_POSTGRES_URL, an admin URL; each test creates a database of its own).
#![cfg(feature = "ssr")]

use std::collections::BTreeMap;

#[path = "../common/mod.rs"]
mod common;

use app::ssr::store::{ClusterRecord, Error, Role, Store};
use common::{postgres, sqlite};
use mesh::ids::{ClusterName, NetworkName};

fn cluster(name: &str) -> ClusterRecord {
    ClusterRecord {
        name: ClusterName::new(name).expect("name"),
        network: NetworkName::new(name).expect("network"),
        labels: BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("region".to_string(), "eu-west-1".to_string()),
        ]),
        server: "https://127.0.0.1:6443".into(),
        credentials: vec![1, 2, 3, 0, 255],
        insecure_skip_tls_verify: false,
        connectivity: None,
        access: None,
        created_at: 1,
        updated_at: 1,
    }
}

async fn users_are_unique_and_editable(store: Store) {
    assert!(store.ping().await);
    assert_eq!(store.count_users().await.expect("count"), 0);
    let admin = store
        .create_user("admin", "$argon2id$x", Role::Admin)
        .await
        .expect("create");
    let err = store
        .create_user("admin", "$argon2id$y", Role::Viewer)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    assert!(matches!(
        store.create_user("Bad Name", "h", Role::Viewer).await,
        Err(Error::Invalid {
            field: "username",
            ..
        })
    ));
    let viewer = store
        .create_user("ann.viewer", "$argon2id$z", Role::Viewer)
        .await
        .expect("create");
    let (u, hash) = store
        .user_by_name("ann.viewer")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (u.id, u.role, u.disabled, hash.as_str()),
        (viewer, Role::Viewer, false, "$argon2id$z")
    );
    store.set_role(viewer, Role::Operator).await.expect("role");
    store.set_disabled(viewer, true).await.expect("disable");
    store
        .set_password_hash(viewer, "$argon2id$new")
        .await
        .expect("password");
    let (u, hash) = store
        .user_by_name("ann.viewer")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (u.role, u.disabled, hash.as_str()),
        (Role::Operator, true, "$argon2id$new")
    );
    assert_eq!(
        store
            .count_other_enabled_admins(admin)
            .await
            .expect("count"),
        0
    );
    assert!(matches!(
        store.set_role(9999, Role::Admin).await,
        Err(Error::NotFound(_))
    ));
    let names: Vec<String> = store
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["admin", "ann.viewer"]);
    assert_eq!(
        store
            .user(admin)
            .await
            .expect("get")
            .map(|u| u.username)
            .as_deref(),
        Some("admin")
    );
}

async fn clusters_round_trip_and_names_stay_unique(store: Store) {
    let c1 = cluster("c1");
    store.insert_cluster(&c1).await.expect("insert");
    assert!(
        matches!(store.insert_cluster(&c1).await, Err(Error::Conflict(_))),
        "duplicate name refused"
    );
    store.insert_cluster(&cluster("c2")).await.expect("insert");
    let got = store.cluster(&c1.name).await.expect("get").expect("exists");
    assert_eq!(got, c1, "credentials bytes and labels survive unchanged");
    let net = NetworkName::new("west").expect("net");
    let labels = BTreeMap::from([("env".to_string(), "staging".to_string())]);
    store
        .update_cluster(&c1.name, &net, &labels)
        .await
        .expect("update");
    store
        .set_connectivity(&c1.name, r#"{"reachable":true}"#)
        .await
        .expect("connectivity");
    let got = store.cluster(&c1.name).await.expect("get").expect("exists");
    assert_eq!(
        (
            got.network.as_str(),
            got.labels.get("env").map(String::as_str)
        ),
        ("west", Some("staging"))
    );
    assert_eq!(got.connectivity.as_deref(), Some(r#"{"reachable":true}"#));
    assert_eq!(got.access, None, "registered with the credentials given");
    // Onboarding swaps the credentials and records how the cluster is reached, together; a renewal that
    // failed records only the reason.
    store
        .set_cluster_credentials(
            &c1.name,
            &[9, 9],
            Some(r#"{"account":"meshdeck/meshdeck"}"#),
        )
        .await
        .expect("onboarded");
    store
        .set_cluster_access(&c1.name, r#"{"account":"meshdeck/meshdeck","problem":"x"}"#)
        .await
        .expect("marked");
    let got = store.cluster(&c1.name).await.expect("get").expect("exists");
    assert_eq!(got.credentials, [9, 9]);
    assert_eq!(
        got.access.as_deref(),
        Some(r#"{"account":"meshdeck/meshdeck","problem":"x"}"#)
    );
    assert!(matches!(
        store
            .set_cluster_credentials(&ClusterName::new("nope").expect("name"), &[1], None)
            .await,
        Err(Error::NotFound(_))
    ));
    let names: Vec<String> = store
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["c1", "c2"]);
    store.delete_cluster(&c1.name).await.expect("delete");
    assert!(store.cluster(&c1.name).await.expect("get").is_none());
    assert!(matches!(
        store.delete_cluster(&c1.name).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn sqlite_users_are_unique_and_editable() {
    users_are_unique_and_editable(sqlite().await).await;
}

#[tokio::test]
async fn postgres_users_are_unique_and_editable() {
    users_are_unique_and_editable(postgres().await).await;
}

#[tokio::test]
async fn sqlite_clusters_round_trip_and_names_stay_unique() {
    clusters_round_trip_and_names_stay_unique(sqlite().await).await;
}

#[tokio::test]
async fn postgres_clusters_round_trip_and_names_stay_unique() {
    clusters_round_trip_and_names_stay_unique(postgres().await).await;
}

#[tokio::test]
async fn an_unknown_database_url_is_refused_with_what_to_use() {
    let err = Store::connect("mysql://x").await.expect_err("unsupported");
    assert!(
        err.to_string().contains("sqlite://PATH or postgres://"),
        "{err}"
    );
}

async fn sign_in_is_throttled_after_repeated_failures(store: Store) {
    use app::ssr::auth::{self, Attempter, Error as AuthError};
    use app::ssr::secrets::SecretBox;
    use app::ssr::store::Limits;
    let secrets = SecretBox::from_key(&[9u8; 32]).expect("key");
    let limits = Limits::default();
    let generated = auth::bootstrap_admin(&store, None)
        .await
        .expect("bootstrap")
        .expect("generated password");
    assert!(generated.len() >= 20);
    assert!(
        auth::bootstrap_admin(&store, Some("another-password"))
            .await
            .expect("again")
            .is_none(),
        "only once"
    );
    let from = |addr: &str| Attempter {
        source: addr.into(),
        device: None,
    };
    let t = 1_000_000;
    let admin = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.1"),
        "admin",
        &generated,
        t,
    )
    .await
    .expect("sign in");
    assert_eq!(admin.role, Role::Admin);
    // The browser that signed in is known from now on.
    let known = Attempter {
        source: "192.0.2.1".into(),
        device: Some(auth::issue_device(&secrets, &admin, t)),
    };
    let attacker = from("203.0.113.7");
    for i in 0..limits.per_user_and_source {
        let e = auth::sign_in(
            &store,
            &secrets,
            &limits,
            &attacker,
            "admin",
            "wrong-password!",
            t + i,
        )
        .await
        .expect_err("wrong");
        assert!(matches!(e, AuthError::BadCredentials), "{e}");
    }
    // Now even the right password is refused from that address until the window passes…
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &attacker,
        "admin",
        &generated,
        t + 10,
    )
    .await
    .expect_err("throttled");
    assert!(matches!(e, AuthError::Throttled { .. }), "{e}");
    assert!(e.to_string().contains("try again in 15 minutes"), "{e}");
    // …but not from the admin's own browser, nor from another address.
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &known,
        "admin",
        &generated,
        t + 11,
    )
    .await
    .expect("the admin's own browser is not locked out");
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.2"),
        "admin",
        &generated,
        t + 12,
    )
    .await
    .expect("another address is not locked out");
    let later = t + limits.window + 1;
    auth::sign_in(
        &store, &secrets, &limits, &attacker, "admin", &generated, later,
    )
    .await
    .expect("window passed");

    // Spraying many usernames from one address stops at the per-address limit.
    let sprayer = from("198.51.100.9");
    let mut refused = 0;
    for i in 0..(limits.per_source + 5) {
        match auth::sign_in(
            &store,
            &secrets,
            &limits,
            &sprayer,
            &format!("user{i}"),
            "whatever-password",
            later,
        )
        .await
        {
            Err(AuthError::BadCredentials) => {}
            Err(AuthError::Throttled { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        refused, 5,
        "all but the first {} are refused",
        limits.per_source
    );

    // Guesses from many addresses lock the name for unknown browsers only; an admin lifts it.
    let t2 = later + limits.window + 1;
    for i in 0..limits.per_user_untrusted {
        let e = auth::sign_in(
            &store,
            &secrets,
            &limits,
            &from(&format!("10.9.{}.{}", i / 200, i % 200)),
            "admin",
            "nope-nope-nope",
            t2,
        )
        .await
        .expect_err("wrong");
        assert!(matches!(e, AuthError::BadCredentials), "{e}");
    }
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.99"),
        "admin",
        &generated,
        t2,
    )
    .await
    .expect_err("unknown browsers are held");
    assert!(e.to_string().contains("unknown browsers"), "{e}");
    auth::sign_in(&store, &secrets, &limits, &known, "admin", &generated, t2)
        .await
        .expect("but never the admin's own browser");
    let locks = store.sign_in_locks(t2, &limits).await.expect("locks");
    assert!(
        locks
            .iter()
            .any(|l| l.kind == "user" && l.username == "admin"),
        "{locks:?}"
    );
    assert!(
        store
            .clear_attempts(Some("admin"), None)
            .await
            .expect("unlock")
            > 0
    );
    auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.99"),
        "admin",
        &generated,
        t2,
    )
    .await
    .expect("lifted");

    // Parallel guesses are counted like sequential ones: never more than the limit get a verdict.
    let t3 = t2 + limits.window + 1;
    let store2 = store.clone();
    let secrets = std::sync::Arc::new(secrets);
    let tries = (0..(limits.per_user_and_source * 3)).map(|_| {
        let (store, secrets) = (store2.clone(), secrets.clone());
        tokio::spawn(async move {
            auth::sign_in(
                &store,
                &secrets,
                &limits,
                &from("203.0.113.50"),
                "admin",
                "parallel-guess!",
                t3,
            )
            .await
        })
    });
    let mut judged = 0;
    for r in futures::future::join_all(tries).await {
        match r.expect("task") {
            Err(AuthError::BadCredentials) => judged += 1,
            Err(AuthError::Throttled { .. }) | Err(AuthError::Password(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        judged, limits.per_user_and_source,
        "parallel guesses beyond the limit are refused unjudged"
    );

    // What is stored is bounded: a username no user can have is stored as ''.
    let huge = "x".repeat(100_000);
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.200"),
        &huge,
        "whatever-password",
        t3,
    )
    .await
    .expect_err("unknown");
    assert_eq!(e.to_string(), "wrong username or password");
    let locks = store
        .sign_in_locks(
            t3,
            &Limits {
                per_user_and_source: 1,
                per_source: 1000,
                per_user_untrusted: 1000,
                window: limits.window,
            },
        )
        .await
        .expect("locks");
    assert!(locks.iter().all(|l| l.username.len() <= 64), "{locks:?}");

    // Unknown users and disabled users get the same answer as a wrong password.
    let t4 = t3 + limits.window + 1;
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.3"),
        "nobody",
        "whatever-password",
        t4,
    )
    .await
    .expect_err("unknown");
    assert_eq!(e.to_string(), "wrong username or password");
    store.set_disabled(admin.id, true).await.expect("disable");
    let e = auth::sign_in(
        &store,
        &secrets,
        &limits,
        &from("192.0.2.3"),
        "admin",
        &generated,
        t4 + 1,
    )
    .await
    .expect_err("disabled");
    assert_eq!(e.to_string(), "wrong username or password");
}

async fn one_active_root_even_when_two_consoles_make_it_at_once(store: Store) {
    use app::ssr::store::RootRow;
    let row = |id: &str| RootRow {
        id: id.into(),
        cert_pem: format!("cert {id}"),
        key_sealed: vec![1, 2, 3],
        fingerprint: format!("fp-{id}"),
        created_by: "admin".into(),
        created_at: 1,
    };
    let (ra, rb) = (row("a"), row("b"));
    let (a, b) = tokio::join!(store.insert_root(&ra), store.insert_root(&rb));
    assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} {b:?}");
    let loser = if a.is_ok() { b } else { a };
    assert!(matches!(loser, Err(Error::Conflict(_))), "{loser:?}");
    let active = store.active_root().await.expect("read").expect("one");
    assert!(active.id == "a" || active.id == "b");
}

#[tokio::test]
async fn sqlite_one_active_root_even_when_two_consoles_make_it_at_once() {
    one_active_root_even_when_two_consoles_make_it_at_once(sqlite().await).await;
}

#[tokio::test]
async fn postgres_one_active_root_even_when_two_consoles_make_it_at_once() {
    one_active_root_even_when_two_consoles_make_it_at_once(postgres().await).await;
}

#[tokio::test]
async fn sqlite_sign_in_is_throttled_after_repeated_failures() {
    sign_in_is_throttled_after_repeated_failures(sqlite().await).await;
}

#[tokio::test]
async fn postgres_sign_in_is_throttled_after_repeated_failures() {
    sign_in_is_throttled_after_repeated_failures(postgres().await).await;
}

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

#[tokio::test]
async fn a_sqlite_store_is_backed_up_while_in_use_and_restored_in_place_keeping_the_old_one() {
    let dir = std::env::temp_dir().join(format!("meshdeck-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}/live/meshdeck.db", dir.display());
    std::fs::create_dir_all(dir.join("live")).expect("dir");
    let store = Store::connect(&url).await.expect("store");
    store.insert_cluster(&cluster("c1")).await.expect("insert");
    let backup = dir.join("backup.db");
    Store::backup(&url, &backup)
        .await
        .expect("backup while in use");
    assert!(
        Store::backup(&url, &backup).await.is_err(),
        "an existing file is never overwritten"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "it holds password hashes and sessions");
    }
    // Written after the backup: not in it.
    store.insert_cluster(&cluster("c2")).await.expect("insert");

    // Not while a console is writing the store.
    let busy = async {
        // A write transaction held open stands for a console in the middle of a write.
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("live/meshdeck.db"));
        let mut conn = sqlx::ConnectOptions::connect(&opts).await.expect("conn");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("begin");
        let r = Store::restore(&backup, &url).await;
        sqlx::query("ROLLBACK")
            .execute(&mut conn)
            .await
            .expect("rollback");
        r
    }
    .await;
    assert!(matches!(busy, Err(Error::Busy(_))), "{busy:?}");
    // The console stops: its connections are closed (a dropped pool closes them a moment later).
    store.close().await;
    drop(store);

    // Something that is not a Meshdeck store is refused, and nothing is replaced.
    let junk = dir.join("junk.db");
    std::fs::write(&junk, b"not a database at all").expect("junk");
    let e = Store::restore(&junk, &url).await.expect_err("junk");
    assert!(e.to_string().contains("junk.db"), "{e}");

    // The closed store's last connections may still be finishing (a WAL checkpoint): restore refuses while
    // anything holds the file, so it is asked again for a few seconds, as an operator would.
    let mut tries = 0;
    let kept = loop {
        match Store::restore(&backup, &url).await {
            Err(e) if e.to_string().contains("is in use") && tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => break other,
        }
    }
    .expect("restore")
    .expect("the old store is kept");
    let restored = Store::connect(&url).await.expect("open restored");
    let names: Vec<String> = restored
        .list_clusters()
        .await
        .expect("list")
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["c1"], "the store as of the backup");
    let old = Store::connect(&format!("sqlite://{}", kept.display()))
        .await
        .expect("open the kept store");
    assert_eq!(old.list_clusters().await.expect("list").len(), 2);

    // Into a fresh place (a new machine): the folder is made.
    let fresh = format!("sqlite://{}/new/place/meshdeck.db", dir.display());
    assert_eq!(
        Store::restore(&backup, &fresh).await.expect("restore"),
        None
    );
    let _ = std::fs::remove_dir_all(&dir);
}

mod charts;
