//! Server-only parts of the console: the state store (SQLite by default, Postgres for several replicas),
//! encryption of secrets at rest, password hashing, sign-in, sessions, the cluster registry, and the glue
//! server functions use to reach them (state in context, the signed-in user, error mapping).

pub mod auth;
pub mod errors;
pub mod jobs;
pub mod passwords;
pub mod registry;
pub mod secrets;
pub mod session;
pub mod state;
pub mod store;
