//! Two console processes sharing one Postgres serve the same signed-in user: sessions live in the database.
//! Needs MESHDECK_TEST_POSTGRES_URL (scripts/test starts a private Postgres and sets it).

mod common;

use app::model::Me;
use common::{ADMIN_PASSWORD, Client, console};

async fn fresh_database() -> String {
    let admin = std::env::var("MESHDECK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("MESHDECK_TEST_POSTGRES_URL is not set: run scripts/test, which starts a private Postgres")
    });
    let db = format!("meshdeck_replicas_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.expect("connect");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db}"))
        .execute(&pool)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .expect("create");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("url");
    format!("{base}/{db}")
}

fn me(a: &common::Answer) -> Option<Me> {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("get_me ({e}): {}", a.body))
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_sessions() {
    let url = fresh_database().await;
    let (a, b) = tokio::join!(
        console("replica-a", Some(url.clone()), &[]),
        console("replica-b", Some(url), &[])
    );
    let mut on_a = Client::new(server::router(a));
    on_a.sign_in("admin", ADMIN_PASSWORD).await;
    let mut on_b = Client::new(server::router(b));
    on_b.cookie = on_a.cookie.clone();
    assert_eq!(
        me(&on_b.call("get_me", &[]).await).map(|m| m.username),
        Some("admin".to_string()),
        "replica B knows the session replica A created"
    );
    on_b.call("sign_out", &[]).await;
    assert_eq!(
        me(&on_a.call("get_me", &[]).await),
        None,
        "signed out everywhere"
    );
}
