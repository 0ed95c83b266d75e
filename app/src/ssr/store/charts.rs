//! Gloo Operator charts uploaded by admins (air-gapped sites), and which one the console installs.

use super::{Db, Error, Result, Store, conflict_or, found};

/// An uploaded chart, without its bytes.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChartRow {
    pub sha256: String,
    pub name: String,
    pub version: String,
    pub file_name: String,
    pub size: i64,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    pub in_use: bool,
}

const COLUMNS: &str = "sha256, name, version, file_name, size, uploaded_by, uploaded_at, in_use";

impl Store {
    /// Keeps an uploaded chart (the same bytes twice are a conflict).
    pub async fn insert_chart(&self, row: &ChartRow, data: &[u8]) -> Result<()> {
        let sql = "INSERT INTO operator_charts \
                   (sha256, name, version, file_name, size, data, uploaded_by, uploaded_at, in_use) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE)";
        on_db!(self, |p| sqlx::query(sql)
            .bind(&row.sha256)
            .bind(&row.name)
            .bind(&row.version)
            .bind(&row.file_name)
            .bind(row.size)
            .bind(data)
            .bind(&row.uploaded_by)
            .bind(row.uploaded_at)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(|e| {
            conflict_or(e, || {
                format!("chart {}-{} with these exact bytes", row.name, row.version)
            })
        })
    }

    /// The uploaded charts, newest first.
    pub async fn charts(&self) -> Result<Vec<ChartRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM operator_charts ORDER BY uploaded_at DESC, sha256");
        Ok(on_db!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?)
    }

    /// One chart's bytes.
    pub async fn chart_data(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT data FROM operator_charts WHERE sha256 = $1";
        let row: Option<(Vec<u8>,)> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(sha256)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| r.0))
    }

    /// The chart in use, if an uploaded one is.
    pub async fn chart_in_use(&self) -> Result<Option<ChartRow>> {
        let sql = format!("SELECT {COLUMNS} FROM operator_charts WHERE in_use");
        Ok(on_db!(self, |p| sqlx::query_as(&sql)
            .fetch_optional(p)
            .await)?)
    }

    /// Makes `sha256` the chart in use, or none (the console's own) — in one transaction. Two admins choosing
    /// at once: one wins, the other is told (the unique index on `in_use`).
    pub async fn use_chart(&self, sha256: Option<&str>) -> Result<()> {
        let conflict = |e: Error| match e {
            Error::Db(e) => conflict_or(e, || {
                "another choice of the chart in use, made at the same time,".into()
            }),
            e => e,
        };
        on_db!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE operator_charts SET in_use = FALSE WHERE in_use")
                .execute(&mut *tx)
                .await?;
            if let Some(sha) = sha256 {
                let n = sqlx::query("UPDATE operator_charts SET in_use = TRUE WHERE sha256 = $1")
                    .bind(sha)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                found(n, || format!("chart {sha}"))?;
            }
            tx.commit().await?;
            Ok::<(), Error>(())
        })
        .map_err(conflict)
    }

    /// Forgets an uploaded chart.
    pub async fn delete_chart(&self, sha256: &str) -> Result<()> {
        let sql = "DELETE FROM operator_charts WHERE sha256 = $1";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(sha256)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("chart {sha256}"))
    }
}
