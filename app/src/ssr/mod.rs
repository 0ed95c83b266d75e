//! Server-only parts of the console: the state store (SQLite by default, Postgres for several replicas),
//! encryption of secrets at rest, password hashing, sign-in, sessions, the cluster registry, and the glue
//! server functions use to reach them (state in context, the signed-in user, error mapping).

pub mod acting;
pub mod auth;
pub mod client;
pub mod errors;
pub mod jobs;
pub mod live;
pub mod notify;
pub mod oidc;
pub mod passwords;
pub mod portal;
pub mod registry;
pub mod secrets;
pub mod session;
pub mod state;
pub mod store;
pub mod topology;

/// Now, in unix seconds: the one clock of the store, sessions and jobs.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
