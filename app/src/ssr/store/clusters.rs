//! The cluster registry's rows (credentials sealed before they get here).

use std::collections::BTreeMap;

use mesh::ids::{ClusterName, NetworkName};

use super::{ClusterRecord, Db, Error, Result, Store, conflict_or, found, now};

const CLUSTER_COLUMNS: &str = "name, network, labels, server, credentials, insecure_skip_tls_verify, connectivity, created_at, updated_at, access";

#[derive(sqlx::FromRow)]
struct ClusterRow {
    name: String,
    network: String,
    labels: String,
    server: String,
    credentials: Vec<u8>,
    insecure_skip_tls_verify: bool,
    connectivity: Option<String>,
    created_at: i64,
    updated_at: i64,
    access: Option<String>,
}

impl ClusterRow {
    fn into_record(self) -> Result<ClusterRecord> {
        let invalid = |field, e: &dyn std::fmt::Display| Error::Invalid {
            field,
            message: e.to_string(),
        };
        Ok(ClusterRecord {
            name: ClusterName::new(&self.name).map_err(|e| invalid("name", &e))?,
            network: NetworkName::new(&self.network).map_err(|e| invalid("network", &e))?,
            labels: serde_json::from_str(&self.labels).map_err(|e| invalid("labels", &e))?,
            server: self.server,
            credentials: self.credentials,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            connectivity: self.connectivity,
            access: self.access,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl Store {
    pub async fn insert_cluster(&self, c: &ClusterRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO clusters ({CLUSTER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let labels = serde_json::to_string(&c.labels).unwrap_or_else(|_| "{}".into());
        let r = on_db!(self, |p| sqlx::query(&sql)
            .bind(c.name.as_str())
            .bind(c.network.as_str())
            .bind(&labels)
            .bind(&c.server)
            .bind(&c.credentials)
            .bind(c.insecure_skip_tls_verify)
            .bind(&c.connectivity)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.access)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        r.map(|_| ())
            .map_err(|e| conflict_or(e, || format!("cluster {:?}", c.name.as_str())))
    }

    pub async fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = $1");
        let row: Option<ClusterRow> = on_db!(self, |p| sqlx::query_as(&sql)
            .bind(name.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(ClusterRow::into_record).transpose()
    }

    pub async fn list_clusters(&self) -> Result<Vec<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name");
        let rows: Vec<ClusterRow> = on_db!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter().map(ClusterRow::into_record).collect()
    }

    /// Changes what a user may edit: network and labels.
    pub async fn update_cluster(
        &self,
        name: &ClusterName,
        network: &NetworkName,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
        let sql = "UPDATE clusters SET network = $1, labels = $2, updated_at = $3 WHERE name = $4";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(network.as_str())
            .bind(&labels)
            .bind(now())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }

    pub async fn set_connectivity(&self, name: &ClusterName, report_json: &str) -> Result<()> {
        self.set_text(name, "connectivity", report_json).await
    }

    /// Sets one text column of a cluster's row (a fixed name, never from outside).
    async fn set_text(&self, name: &ClusterName, column: &'static str, value: &str) -> Result<()> {
        let sql = format!("UPDATE clusters SET {column} = $1, updated_at = $2 WHERE name = $3");
        let n = on_db!(self, |p| sqlx::query(&sql)
            .bind(value)
            .bind(now())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }

    /// Replaces a cluster's sealed credentials and how it is reached, in one statement (onboarding, a renewed
    /// token).
    pub async fn set_cluster_credentials(
        &self,
        name: &ClusterName,
        credentials: &[u8],
        access: Option<&str>,
    ) -> Result<()> {
        let sql =
            "UPDATE clusters SET credentials = $1, access = $2, updated_at = $3 WHERE name = $4";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(credentials)
            .bind(access)
            .bind(now())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }

    /// Records how a cluster is reached (a renewal that failed), leaving its credentials alone.
    pub async fn set_cluster_access(&self, name: &ClusterName, access: &str) -> Result<()> {
        self.set_text(name, "access", access).await
    }

    /// Deletes a cluster unless a job holds it (one statement, so a job starting at the same moment either
    /// holds it first — and the delete is refused — or finds it gone).
    pub async fn delete_cluster(&self, name: &ClusterName) -> Result<()> {
        let n = on_db!(self, |p| sqlx::query(
            "DELETE FROM clusters WHERE name = $1 \
             AND NOT EXISTS (SELECT 1 FROM cluster_locks WHERE cluster = $1)"
        )
        .bind(name.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n == 0 && self.cluster(name).await?.is_some() {
            let held = self.holders(&[name.to_string()]).await?;
            let who = held
                .first()
                .map(|h| format!("job {} started by {}", h.job_id, h.started_by))
                .unwrap_or_else(|| "a job".into());
            return Err(Error::Busy(format!(
                "cluster {name} is in use by {who}; wait for the job to finish (or fail), then remove it"
            )));
        }
        found(n, || format!("cluster {:?}", name.as_str()))
    }
}
