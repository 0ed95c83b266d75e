//! What server functions reach through Leptos context: one `AppState`, provided by the server for every
//! request. Server functions stay thin and call the services here.

use leptos::prelude::*;

use super::jobs::Jobs;
use super::registry::Registry;
use super::store::Store;
use crate::model::AppError;

/// The services every request can use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub registry: Registry,
    /// Setup jobs (durable, resumable, one per cluster at a time).
    pub jobs: Jobs,
    /// The live topology: watches on every registered cluster and the graph made from them.
    pub topology: super::topology::Topology,
    /// Session policy (cookie flags and expiry), from the server's configuration.
    pub sessions: super::session::Policy,
    /// Notices between parts of the console and between replicas; the bound on live streams.
    pub notifier: super::notify::Notifier,
    /// The console's secret key (device cookies; everything sealed at rest).
    pub secrets: std::sync::Arc<super::secrets::SecretBox>,
    /// Sign-in throttling.
    pub throttle: super::store::Limits,
    /// The session store itself, for live streams that must see a session end.
    pub session_store: super::session::SessionBackend,
    /// Single sign-on through the organisation's OpenID provider, when configured.
    pub oidc: Option<std::sync::Arc<super::oidc::Oidc>>,
    /// When set, only this local account signs in with a password (break-glass); everyone else uses the
    /// provider.
    pub break_glass: Option<String>,
}

/// The state provided by the server for this request.
pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| super::errors::incident("no AppState in context"))
}
