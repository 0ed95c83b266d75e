use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    AppError, ClusterName, JobDetail, JobSummary, RootAlgorithm, RootExport, RootSummary,
    SetupRequest,
};

/// Starts a setup job for the chosen clusters; returns its id. Refused, starting nothing, when a cluster is
/// not registered, an input is invalid, or a cluster is busy with another job (naming it and who started it).
/// The server knows the preflight of exactly this request (the one recorded within 15 minutes, or it runs it
/// now): when a finding failed, only an admin giving a reason goes on, and the job records who, why and what
/// was overridden.
#[server(endpoint = "start_setup", input = Json)]
pub async fn start_setup(request: SetupRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let overridden = override_of(request.override_reason.as_deref());
            let mut user = session::require(Role::Operator).await?;
            if overridden.is_some() {
                // Going on despite failed preflight findings is an admin's call.
                user = session::require(Role::Admin).await?;
            }
            let overridden = overridden.transpose()?;
            let jobs = &state()?.jobs;
            // Checked before the preflight runs: an invalid request fails fast, with nothing probed.
            jobs.checked_spec(&request).await?;
            // Someone the console cannot act as, on a cluster where it only reads: said before the preflight.
            let clusters: Vec<String> = request.clusters.iter().map(|c| c.to_string()).collect();
            jobs.may_change(&clusters, &user.username).await?;
            let failures = jobs.preflight_failures(&request, &user.username).await?;
            if !failures.is_empty() && overridden.is_none() {
                return Err(AppError::Conflict(format!(
                    "the preflight of this setup failed: {}. Fix what it found and run the preflight again, or an admin may go on with a reason",
                    failures.join("; ")
                )));
            }
            let (spec, license_key) = jobs.spec_from_request(&request, &user.username).await?;
            let id = jobs.start_setup(spec, license_key, &user.username).await?;
            // The topology expects the links chosen here from now on.
            let topology = state()?.topology.clone();
            tokio::spawn(async move { topology.read_choices().await });
            jobs.note_preflight(&id, &user.username, overridden, &failures)
                .await;
            Ok(id)
        }
        .await,
    )
}

/// An admin's reason for going on despite failed preflight findings: trimmed, None when empty, at most
/// 2000 characters.
#[cfg(feature = "ssr")]
pub(crate) fn override_of(reason: Option<&str>) -> Option<Result<String, AppError>> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty())?;
    Some(if reason.chars().count() > 2000 {
        Err(AppError::invalid(
            "override_reason",
            "at most 2000 characters",
        ))
    } else {
        Ok(reason.to_string())
    })
}

/// The latest jobs, newest first.
#[server(endpoint = "list_jobs")]
pub async fn list_jobs() -> Result<Vec<JobSummary>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.list(200).await?)
        }
        .await,
    )
}

/// One job: its steps, and its events after the event id `after` (0 for all).
#[server(endpoint = "get_job")]
pub async fn get_job(id: String, after: i64) -> Result<JobDetail, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.detail(&id, after).await?)
        }
        .await,
    )
}

/// Runs a failed job's unfinished steps again: for one cluster, or for all when `cluster` is empty.
#[server(endpoint = "retry_job")]
pub async fn retry_job(id: String, cluster: Option<ClusterName>) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            Ok(state()?
                .jobs
                .retry(&id, cluster.as_ref(), &user.username)
                .await?)
        }
        .await,
    )
}

/// The root of trust in use (certificate, fingerprint, validity — never the key), if any.
#[server(endpoint = "get_root")]
pub async fn get_root() -> Result<Option<RootSummary>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.root_summary().await?)
        }
        .await,
    )
}

/// Makes the root of trust: generated with `algorithm`, or imported when both PEM texts are given.
#[server(endpoint = "create_root", input = Json)]
pub async fn create_root(
    algorithm: RootAlgorithm,
    cert_pem: Option<String>,
    key_pem: Option<String>,
) -> Result<RootSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Admin).await?;
            let import = match (cert_pem, key_pem) {
                (Some(c), Some(k)) if !c.trim().is_empty() && !k.trim().is_empty() => Some((c, k)),
                (None, None) => None,
                (Some(c), Some(k)) if c.trim().is_empty() && k.trim().is_empty() => None,
                _ => {
                    return Err(AppError::invalid(
                        "root",
                        "to import a root give both its certificate and its key (PEM)",
                    ));
                }
            };
            let jobs = &state()?.jobs;
            jobs.create_root(algorithm, import, &user.username).await?;
            jobs.root_summary()
                .await?
                .ok_or_else(|| AppError::NotFound("root of trust".into()))
        }
        .await,
    )
}

/// The root of trust with its private key, for an admin who re-enters their password (throttled like a
/// sign-in). Logged.
#[server(endpoint = "export_root")]
pub async fn export_root(password: String) -> Result<RootExport, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Admin).await?;
            let st = state()?;
            super::session::recheck_password(&user, &password, "password").await?;
            session::mark_reauthenticated().await?;
            let root = st.jobs.export_root().await?;
            tracing::warn!(user = %user.username, "exported the root of trust with its key");
            Ok(RootExport {
                cert_pem: root.cert_pem.clone(),
                key_pem: root.key_pem().to_string(),
            })
        }
        .await,
    )
}
