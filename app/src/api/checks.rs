use leptos::prelude::*;

use crate::model::{AppError, ChecksReport, ClusterName};

/// Most clusters one run of the checks may look at.
pub const MAX_CHECKED: usize = 100;

/// Runs the checks of `istioctl multicluster check` (and the root of trust) on the given registered
/// clusters; read-only, so viewers may run them too. Empty: every registered cluster.
#[server(endpoint = "run_checks", input = leptos::server_fn::codec::Json)]
pub async fn run_checks(clusters: Vec<ClusterName>) -> Result<ChecksReport, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
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
            let report = st.jobs.run_checks(&names).await;
            st.topology.record_checks(&report);
            Ok(report)
        }
        .await,
    )
}
