//! Uploaded operator charts in the store: bytes kept, one in use at most, on SQLite and Postgres.

use super::*;

async fn uploaded_charts_keep_their_bytes_and_one_is_in_use(store: Store) {
    use app::ssr::store::ChartRow;
    let row = |sha: &str, version: &str, at: i64| ChartRow {
        sha256: sha.into(),
        name: "gloo-operator".into(),
        version: version.into(),
        file_name: format!("gloo-operator-{version}.tgz"),
        size: 4,
        uploaded_by: "admin".into(),
        uploaded_at: at,
        in_use: false,
    };
    let bytes = [0x1f, 0x8b, 0, 255];
    store
        .insert_chart(&row("aa", "0.4.3", 1), &bytes)
        .await
        .expect("insert");
    store
        .insert_chart(&row("bb", "0.4.4", 2), &[0x1f, 0x8b])
        .await
        .expect("insert");
    let twice = store.insert_chart(&row("aa", "0.4.3", 3), &bytes).await;
    assert!(matches!(twice, Err(Error::Conflict(_))), "{twice:?}");
    assert_eq!(
        store.chart_data("aa").await.expect("data"),
        Some(bytes.to_vec()),
        "bytes round-trip"
    );
    let listed: Vec<String> = store
        .charts()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.sha256)
        .collect();
    assert_eq!(listed, ["bb", "aa"], "newest first");
    assert_eq!(store.chart_in_use().await.expect("in use"), None);
    store.use_chart(Some("aa")).await.expect("use aa");
    store.use_chart(Some("bb")).await.expect("use bb");
    let in_use = store.chart_in_use().await.expect("in use").expect("one");
    assert_eq!(
        (in_use.sha256.as_str(), in_use.in_use),
        ("bb", true),
        "only the last one chosen"
    );
    assert_eq!(
        store
            .charts()
            .await
            .expect("list")
            .iter()
            .filter(|c| c.in_use)
            .count(),
        1
    );
    let unknown = store.use_chart(Some("cc")).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
    assert_eq!(
        store
            .chart_in_use()
            .await
            .expect("in use")
            .map(|c| c.sha256),
        Some("bb".to_string()),
        "a refused choice changes nothing (one transaction)"
    );
    store.use_chart(None).await.expect("none");
    assert_eq!(store.chart_in_use().await.expect("in use"), None);
    store.delete_chart("aa").await.expect("delete");
    assert_eq!(store.chart_data("aa").await.expect("data"), None);
    assert!(matches!(
        store.delete_chart("aa").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn sqlite_uploaded_charts_keep_their_bytes_and_one_is_in_use() {
    uploaded_charts_keep_their_bytes_and_one_is_in_use(sqlite().await).await;
}

#[tokio::test]
async fn postgres_uploaded_charts_keep_their_bytes_and_one_is_in_use() {
    uploaded_charts_keep_their_bytes_and_one_is_in_use(postgres().await).await;
}
