//! Gloo Operator charts uploaded by admins, for air-gapped sites where helm cannot pull the chart: the `.tgz`
//! is checked with helm itself (`helm show chart`: it must be a `gloo-operator` chart with a version), kept in
//! the database by its SHA-256 (so every replica has it), and one can be chosen as the chart new setups install
//! and upgrades offer. Job specs name it `meshdeck-chart:<sha256>`; before helm runs, each console writes the
//! bytes (checked against the hash) to its private folder and helm is given that file.

use sha2::{Digest, Sha256};

use super::*;
use crate::model::{OperatorChart, OperatorCharts, UploadedChart};
use crate::ssr::store::ChartRow;

/// How a job spec names an uploaded chart.
pub const UPLOADED: &str = "meshdeck-chart:";
/// The largest chart accepted (the gloo-operator chart is tens of kilobytes).
pub const MAX_CHART_BYTES: usize = 4 * 1024 * 1024;
/// The chart the operator's release is made from.
const CHART_NAME: &str = "gloo-operator";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The uploaded chart's hash, when a chart reference names one (64 lowercase hex digits, nothing else).
fn uploaded_sha(reference: &str) -> Option<&str> {
    reference
        .strip_prefix(UPLOADED)
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `chart` as the browser shows it; an uploaded one by its name and version.
pub(super) fn chart_view(chart: &Chart, uploaded: &[ChartRow]) -> OperatorChart {
    let label =
        uploaded_sha(&chart.reference).map(|sha| match uploaded.iter().find(|r| r.sha256 == sha) {
            Some(r) => format!(
                "uploaded {}-{} ({}, sha256 {})",
                r.name,
                r.version,
                r.file_name,
                &sha[..12]
            ),
            None => format!("an uploaded chart since deleted (sha256 {})", &sha[..12]),
        });
    OperatorChart {
        reference: chart.reference.clone(),
        version: chart.version.clone(),
        label,
    }
}

impl Jobs {
    /// The chart new setups install and upgrades offer: the uploaded one in use, else the one the console was
    /// started with.
    pub(super) async fn console_chart(&self) -> Result<Chart> {
        Ok(match self.inner.store.chart_in_use().await? {
            Some(r) => Chart {
                reference: format!("{UPLOADED}{}", r.sha256),
                version: None,
            },
            None => self.inner.chart.clone(),
        })
    }

    /// `chart` as helm takes it: an uploaded chart as this console's copy of its file (written from the
    /// database, checked against its hash, when this console has none yet); any other as it is.
    pub(super) async fn helm_chart(&self, chart: &Chart) -> Result<Chart> {
        let Some(sha) = uploaded_sha(&chart.reference) else {
            return Ok(chart.clone());
        };
        let io = |e: mesh::helm::Error| Error::Conflict(format!("the uploaded chart {sha}: {e}"));
        let path = mesh::helm::chart_path(sha).map_err(io)?;
        if !path.exists() {
            let data = self.inner.store.chart_data(sha).await?.ok_or_else(|| {
                Error::NotFound(format!(
                    "the uploaded operator chart {sha} (deleted since; upload it again, or choose another chart)"
                ))
            })?;
            if hex(&Sha256::digest(&data)) != sha {
                return Err(Error::Conflict(format!(
                    "the uploaded operator chart {sha} no longer matches its hash in the database"
                )));
            }
            mesh::helm::write_chart(sha, &data).map_err(io)?;
        }
        Ok(Chart {
            reference: path.display().to_string(),
            version: None,
        })
    }

    /// The charts as the admin page lists them.
    pub async fn operator_charts(&self) -> Result<OperatorCharts> {
        let rows = self.inner.store.charts().await?;
        let meshes = self.meshes().await?;
        let uploaded = rows
            .iter()
            .map(|r| UploadedChart {
                sha256: r.sha256.clone(),
                name: r.name.clone(),
                version: r.version.clone(),
                file_name: r.file_name.clone(),
                size: r.size.max(0) as u64,
                uploaded_by: r.uploaded_by.clone(),
                uploaded_at: r.uploaded_at,
                in_use: r.in_use,
                meshes: meshes
                    .iter()
                    .filter(|m| {
                        uploaded_sha(&m.operator_chart.reference) == Some(r.sha256.as_str())
                    })
                    .map(|m| m.job_id.clone())
                    .collect(),
            })
            .collect();
        Ok(OperatorCharts {
            started_with: chart_view(&self.inner.chart, &rows),
            in_use: chart_view(&self.console_chart().await?, &rows),
            uploaded,
        })
    }

    /// Checks and keeps an uploaded chart: a gzip'd chart archive of at most [`MAX_CHART_BYTES`] that helm reads
    /// as a `gloo-operator` chart with a version.
    pub async fn upload_chart(
        &self,
        file_name: &str,
        data: &[u8],
        user: &str,
    ) -> Result<UploadedChart> {
        let invalid = |message: String| Error::Invalid {
            field: "chart",
            message,
        };
        let file_name = file_name.trim();
        if file_name.is_empty() || file_name.len() > 255 || file_name.chars().any(char::is_control)
        {
            return Err(invalid(
                "name the file: 1–255 characters, no control characters".into(),
            ));
        }
        if data.is_empty() || data.len() > MAX_CHART_BYTES {
            return Err(invalid(format!(
                "{file_name} is {} bytes: a chart archive is 1 byte to {} MiB",
                data.len(),
                MAX_CHART_BYTES / (1024 * 1024)
            )));
        }
        if !data.starts_with(&[0x1f, 0x8b]) {
            return Err(invalid(format!(
                "{file_name} is not a .tgz (gzip) chart archive: make one with `helm package` or `helm pull`"
            )));
        }
        let sha = hex(&Sha256::digest(data));
        let io =
            |e: mesh::helm::Error| Error::Conflict(format!("keeping {file_name} for helm: {e}"));
        // Read by helm from a file of its own first, so a refused upload never touches a copy a job may use.
        let check = mesh::helm::write_chart(&format!("check-{sha}"), data).map_err(io)?;
        let local = Chart {
            reference: check.display().to_string(),
            version: None,
        };
        let meta = mesh::operator::chart_meta(&self.inner.helm, &local).await;
        let _ = std::fs::remove_file(&check);
        let (name, version) =
            meta.map_err(|e| invalid(format!("helm cannot read {file_name} as a chart: {e}")))?;
        if name != CHART_NAME {
            return Err(invalid(format!(
                "{file_name} is the chart {name:?}; the operator's release is made from the {CHART_NAME} chart"
            )));
        }
        mesh::helm::write_chart(&sha, data).map_err(io)?;
        let row = ChartRow {
            sha256: sha.clone(),
            name,
            version,
            file_name: file_name.to_string(),
            size: data.len() as i64,
            uploaded_by: user.to_string(),
            uploaded_at: now(),
            in_use: false,
        };
        self.inner.store.insert_chart(&row, data).await?;
        Ok(UploadedChart {
            sha256: row.sha256,
            name: row.name,
            version: row.version,
            file_name: row.file_name,
            size: data.len() as u64,
            uploaded_by: row.uploaded_by,
            uploaded_at: row.uploaded_at,
            in_use: false,
            meshes: vec![],
        })
    }

    /// Makes an uploaded chart the one new setups install and upgrades offer (None: the console's own).
    pub async fn use_chart(&self, sha256: Option<&str>) -> Result<()> {
        Ok(self.inner.store.use_chart(sha256).await?)
    }

    /// Forgets an uploaded chart, unless it is in use or a mesh's operators run it (its later flows need it).
    pub async fn delete_chart(&self, sha256: &str) -> Result<()> {
        let charts = self.operator_charts().await?;
        let Some(c) = charts.uploaded.iter().find(|c| c.sha256 == sha256) else {
            return Err(Error::NotFound(format!("chart {sha256}")));
        };
        if c.in_use {
            return Err(Error::Conflict(format!(
                "{}-{} is the chart new setups install: choose another first",
                c.name, c.version
            )));
        }
        // A job not finished (running, failed, to be retried) may still install it.
        let reference = format!("{UPLOADED}{sha256}");
        if let Some(j) = self
            .inner
            .store
            .list_jobs(500)
            .await?
            .into_iter()
            .find(|j| j.state != "succeeded" && j.spec.contains(&reference))
        {
            return Err(Error::Conflict(format!(
                "job {} ({}, {}) installs {}-{}: let it finish, or supersede it, first",
                j.id, j.kind, j.state, c.name, c.version
            )));
        }
        if !c.meshes.is_empty() {
            return Err(Error::Conflict(format!(
                "the operators of mesh {} run {}-{}: growing or changing that mesh installs it again; upgrade its \
                 operator to another chart first",
                c.meshes.join(", "),
                c.name,
                c.version
            )));
        }
        Ok(self.inner.store.delete_chart(sha256).await?)
    }
}
