use leptos::prelude::*;

use crate::model::{AppError, ChecksReport, ClusterName};

/// Most clusters one run of the checks may look at.
pub const MAX_CHECKED: usize = 100;

/// Runs the checks and keeps the report (a run is work, so it is a POST; the report is then read by id).
#[cfg(feature = "ssr")]
async fn run_and_keep(clusters: Vec<ClusterName>, user: &str) -> Result<ChecksReport, AppError> {
    use crate::ssr::state::state;
    let st = state()?;
    let mut names = clusters;
    if names.is_empty() {
        names = st
            .registry
            .list()
            .await?
            .into_iter()
            .map(|(r, _)| r.name)
            .collect();
    }
    names.sort();
    names.dedup();
    if names.len() > MAX_CHECKED {
        return Err(AppError::invalid(
            "clusters",
            format!("pick at most {MAX_CHECKED} clusters per run"),
        ));
    }
    for n in &names {
        // Unknown names are the caller's mistake, not a failed check.
        st.registry.get(n).await?;
    }
    let mut report = st.jobs.run_checks(&names).await;
    let id = crate::ssr::jobs::random_id();
    report.id = Some(id.clone());
    report.ran_by = Some(user.to_string());
    let json = serde_json::to_string(&report)
        .map_err(|e| crate::ssr::errors::incident(format!("a check report: {e}")))?;
    st.store
        .insert_check_report(&id, report.ran_at, user, &json)
        .await?;
    st.topology.record_checks(&report);
    // Other replicas' topologies read it too.
    st.notifier
        .publish(crate::ssr::notify::Notice::Checked { report: id })
        .await;
    Ok(report)
}

/// Runs the checks of `istioctl multicluster check` (and the root of trust) on the given registered
/// clusters; read-only, so viewers may run them too. Empty: every registered cluster. The report is kept
/// (see `get_check_report`).
#[server(endpoint = "run_checks", input = leptos::server_fn::codec::Json)]
pub async fn run_checks(clusters: Vec<ClusterName>) -> Result<ChecksReport, AppError> {
    use crate::model::Role;
    use crate::ssr::session;
    session::respond(
        async {
            let user = session::require(Role::Viewer).await?;
            run_and_keep(clusters, &user.username).await
        }
        .await,
    )
}

/// The Checks page's form: runs the checks of the ticked clusters, then goes to the kept report
/// (`/checks?report=<id>`) — a redirect with JavaScript off, a navigation with it on.
#[server(endpoint = "start_checks")]
pub async fn start_checks(clusters: Option<Vec<String>>) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::session;
    let result = session::respond(
        async {
            let user = session::require(Role::Viewer).await?;
            let names = clusters
                .unwrap_or_default()
                .iter()
                .map(|c| ClusterName::new(c))
                .collect::<Result<Vec<_>, _>>()?;
            let report = run_and_keep(names, &user.username).await?;
            Ok(report.id.unwrap_or_default())
        }
        .await,
    );
    if let Ok(id) = &result {
        leptos_axum::redirect(&format!("/checks?report={id}"));
    }
    result
}

/// A kept check report, by its id (viewers too).
#[server(endpoint = "get_check_report")]
pub async fn get_check_report(id: String) -> Result<ChecksReport, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            if id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(AppError::NotFound(format!("check report {id:?}")));
            }
            let json = state()?.store.check_report(&id).await?.ok_or_else(|| {
                AppError::NotFound(format!("check report {id} (reports are kept 7 days)"))
            })?;
            crate::data::parse(&json)
                .map_err(|e| crate::ssr::errors::incident(format!("check report {id}: {e}")))
        }
        .await,
    )
}
