//! `GET /export/audit?format=csv|json&team=…&user=…&cluster=…&kind=…&since=…&until=…`: the audit timeline as
//! a file to download, with the same rights as the page (operators and admins everything, members their
//! team's). A plain link, so it works without JavaScript.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Portal;
use crate::model::{AppError, AuditFilter, audit_csv};
use crate::ssr::live::error;
use crate::ssr::session::user_in;
use crate::ssr::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    until: Option<i64>,
}

/// At most this many records per file.
const MAX_RECORDS: i64 = 100_000;

pub async fn audit_export(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ExportQuery>,
) -> Response {
    let user = match user_in(&session, &state).await {
        Ok(Some(u)) => u,
        Ok(None) => return error(AppError::Unauthenticated),
        Err(e) => return error(e),
    };
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = AuditFilter {
        team: some(q.team),
        user: some(q.user),
        cluster: some(q.cluster),
        kind: some(q.kind),
        since: q.since,
        until: q.until,
    };
    let records = match Portal::new(&state)
        .audit_records(&user, &filter, MAX_RECORDS)
        .await
    {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let name = format!(
        "meshdeck-audit{}",
        filter
            .team
            .as_deref()
            .map(|t| format!(
                "-{}",
                t.chars()
                    .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                    .collect::<String>()
            ))
            .unwrap_or_default()
    );
    match q.format.as_deref().unwrap_or("csv") {
        "csv" => file(
            audit_csv(&records),
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        ),
        "json" => file(
            serde_json::to_string_pretty(&records).unwrap_or_default(),
            "application/json",
            &format!("{name}.json"),
        ),
        other => error(AppError::invalid(
            "format",
            format!("{:?}: use csv or json", other.escape_debug().to_string()),
        )),
    }
}

fn file(body: String, content_type: &str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}
