//! Server-only parts of the console: the state store (SQLite by default, Postgres for several replicas),
//! encryption of secrets at rest, and password hashing.

pub mod auth;
pub mod passwords;
pub mod registry;
pub mod secrets;
pub mod store;
