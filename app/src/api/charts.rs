//! The Gloo Operator charts admins upload for air-gapped sites, and which one new setups install.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{AppError, OperatorCharts, UploadedChart};

/// The charts: the one the console was started with, the one in use, the uploaded ones (no bytes).
#[server(endpoint = "list_operator_charts")]
pub async fn list_operator_charts() -> Result<OperatorCharts, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.operator_charts().await?)
        }
        .await,
    )
}

/// Records an admin's change to the charts in the audit log.
#[cfg(feature = "ssr")]
async fn audit(admin: &str, subject: &str, detail: &str) {
    use crate::ssr::{client, state::state, store::NewAudit};
    let Ok(st) = state() else { return };
    let source = client::attempter().source;
    st.store
        .audit_logged(&NewAudit {
            actor: admin,
            source: &source,
            team: "",
            cluster: "",
            kind: "operator-chart",
            subject,
            detail,
        })
        .await;
    tracing::info!(admin, "{detail}");
}

/// Uploads a chart archive (`data`: the `.tgz`, base64): checked with helm, kept by its SHA-256. Admins.
#[server(endpoint = "upload_operator_chart", input = Json)]
pub async fn upload_operator_chart(
    file_name: String,
    data: String,
) -> Result<UploadedChart, AppError> {
    use base64::Engine;

    use crate::model::Role;
    use crate::ssr::{jobs::MAX_CHART_BYTES, session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            if data.len() > MAX_CHART_BYTES / 3 * 4 + 4 {
                return Err(AppError::Invalid {
                    field: "chart".into(),
                    message: format!(
                        "the archive is larger than {} MiB",
                        MAX_CHART_BYTES / (1024 * 1024)
                    ),
                });
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| AppError::Invalid {
                    field: "chart".into(),
                    message: format!("the upload is not base64: {e}"),
                })?;
            let chart = state()?
                .jobs
                .upload_chart(&file_name, &bytes, &admin.username)
                .await?;
            audit(
                &admin.username,
                &chart.sha256,
                &format!(
                    "uploaded operator chart {}-{} ({}, {} bytes)",
                    chart.name, chart.version, chart.file_name, chart.size
                ),
            )
            .await;
            Ok(chart)
        }
        .await,
    )
}

/// Makes an uploaded chart the one new setups install and upgrades offer (`sha256` None: the chart the console
/// was started with). Admins.
#[server(endpoint = "use_operator_chart", input = Json)]
pub async fn use_operator_chart(sha256: Option<String>) -> Result<OperatorCharts, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            let jobs = &state()?.jobs;
            jobs.use_chart(sha256.as_deref()).await?;
            let charts = jobs.operator_charts().await?;
            audit(
                &admin.username,
                sha256.as_deref().unwrap_or("started-with"),
                &format!("new setups install {}", charts.in_use),
            )
            .await;
            Ok(charts)
        }
        .await,
    )
}

/// Forgets an uploaded chart (refused while in use, or while a mesh's operators run it). Admins.
#[server(endpoint = "delete_operator_chart", input = Json)]
pub async fn delete_operator_chart(sha256: String) -> Result<OperatorCharts, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            let jobs = &state()?.jobs;
            jobs.delete_chart(&sha256).await?;
            audit(
                &admin.username,
                &sha256,
                "deleted an uploaded operator chart",
            )
            .await;
            Ok(jobs.operator_charts().await?)
        }
        .await,
    )
}
