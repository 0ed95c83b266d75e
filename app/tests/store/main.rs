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
mod jobs;
mod sign_in;
