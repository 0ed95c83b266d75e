//! Two console processes sharing one Postgres serve the same signed-in user: sessions live in the database,
//! and what one replica does reaches the live streams of the other (LISTEN/NOTIFY): a sign-out through B ends
//! a stream open on A at once. Needs MESHDECK_TEST_POSTGRES_URL (scripts/test starts a private Postgres).

mod common;

use app::model::Me;
use common::{ADMIN_PASSWORD, Client, console};

fn me(a: &common::Answer) -> Option<Me> {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("get_me ({e}): {}", a.body))
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_sessions() {
    let url = common::fresh_database("replicas").await;
    let (a, b) = tokio::join!(
        console("replica-a", Some(url.clone()), &[]),
        console("replica-b", Some(url), &[])
    );
    a.state.notifier.start();
    b.state.notifier.start();
    let mut on_a = Client::new(server::router(a));
    on_a.sign_in("admin", ADMIN_PASSWORD).await;
    let (status, body) = on_a.open_stream("/live/topology").await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let mut stream = body.expect("stream on A");
    common::next_chunk(&mut stream, std::time::Duration::from_secs(5)).await;
    let mut on_b = Client::new(server::router(b));
    on_b.cookie = on_a.cookie.clone();
    assert_eq!(
        me(&on_b.call("get_me", &[]).await).map(|m| m.username),
        Some("admin".to_string()),
        "replica B knows the session replica A created"
    );
    on_b.call("sign_out", &[]).await;
    assert!(
        common::stream_ends(&mut stream, std::time::Duration::from_secs(5)).await,
        "the stream on A ends when B signs the session out (not at A's next 30 s check)"
    );
    assert_eq!(
        me(&on_a.call("get_me", &[]).await),
        None,
        "signed out everywhere"
    );
}
