//! Stores for the tests: a real SQLite file, and a database of its own on the test Postgres.
#![allow(dead_code)]

use app::ssr::store::Store;

pub async fn sqlite() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "meshdeck-store-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    Store::connect(&format!("sqlite://{}/meshdeck.db", dir.display()))
        .await
        .expect("sqlite store")
}

pub fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() % 1_000_000_000
}

pub async fn postgres() -> Store {
    let admin = std::env::var("MESHDECK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("MESHDECK_TEST_POSTGRES_URL is not set: run scripts/test, which starts a Postgres for the store tests")
    });
    let db = format!("meshdeck_test_{}", rand_suffix());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("connect to the test Postgres");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("url with a database");
    Store::connect(&format!("{base}/{db}"))
        .await
        .expect("postgres store")
}
