//! The cluster registry: registering clusters from a user's kubeconfig, re-testing them, editing and removing
//! them. Credentials are validated by `mesh::kubeconfig` (self-contained only), tested against the cluster,
//! sealed with the secret box and only then stored — a registration either completes or stores nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use mesh::connect::{self, Problem};
use mesh::ids::{ClusterName, NetworkName};
use mesh::kubeconfig::{self, Credentials};

use super::secrets::SecretBox;
use super::store::{self, ClusterRecord, Store};
use crate::model::{ClusterAccess, ClusterForm, ContextChoice};

mod access;

pub(crate) use access::plan_object;
pub use access::{Given, IN_CLUSTER, InCluster};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a cluster named {0:?} is already registered; pick another name or remove it first")]
    Duplicate(String),
    #[error("no cluster named {0:?} is registered")]
    NotFound(String),
    #[error("cluster {cluster:?} (step: connectivity test): {problem}")]
    Unusable { cluster: String, problem: Problem },
    #[error("cluster {cluster:?}: {problem}")]
    NotAllowed { cluster: String, problem: Problem },
    #[error(
        "the stored credentials of cluster {0:?} cannot be opened with this server's key; register it again"
    )]
    Sealed(String),
    /// Onboarding, renewing or revoking the console's own account failed.
    #[error("cluster {cluster:?} (step: {step}): {message}")]
    Access {
        cluster: String,
        step: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(store::Error),
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(what) => Error::Duplicate(what),
            store::Error::NotFound(what) => Error::NotFound(what),
            other => Error::Store(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use crate::model::Connectivity;

impl Connectivity {
    /// `onboarded`: the console holds only its own least-privilege account there, so what only an
    /// administrator may do is listed apart (`needs_admin`), not as missing.
    /// `access`: how the console holds the cluster (None: the credentials given at registration). An account
    /// that only reads (per-user rights) has the writes it may not do listed as done by the signed-in user
    /// (`as_user`), not missing.
    pub(crate) fn from_report(r: &connect::Report, access: Option<&ClusterAccess>) -> Self {
        let onboarded = access.is_some();
        let reads_only = access
            .and_then(|a| a.per_user.as_ref())
            .is_some_and(|p| p.reads_only);
        #[derive(PartialEq)]
        enum Lack {
            Missing,
            Admin,
            User,
        }
        let lack = |p: &connect::Permission| {
            if onboarded && p.admin_only {
                Lack::Admin
            } else if onboarded
                && reads_only
                && !(mesh::access::is_read(p.verb) && p.subresource.is_none())
            {
                Lack::User
            } else {
                Lack::Missing
            }
        };
        let lacking = |kind: Lack| -> Vec<String> {
            r.permissions
                .iter()
                .filter(|p| !p.allowed && lack(&p.permission) == kind)
                .map(|p| format!("{} — {}", p.permission, p.permission.purpose))
                .collect()
        };
        Connectivity {
            reachable: r.reachable,
            server_version: r.server_version.clone(),
            latency_ms: r.latency.map(|l| l.as_millis() as u64),
            missing: lacking(Lack::Missing),
            needs_admin: lacking(Lack::Admin),
            as_user: lacking(Lack::User),
            problem: r.problem.as_ref().map(ToString::to_string),
            checked_at: super::now(),
        }
    }
}

/// What a user submits to register one cluster.
pub struct Registration {
    pub name: ClusterName,
    /// Defaults to the cluster name.
    pub network: Option<NetworkName>,
    pub labels: BTreeMap<String, String>,
    pub kubeconfig: String,
    pub context: String,
    /// The user's explicit, visible choice to skip TLS verification for this cluster.
    pub allow_insecure: bool,
    /// Onboard with least privilege (see [`access`]).
    pub onboard: bool,
    /// Who registers it (kept with an onboarding).
    pub by: String,
}

/// Label keys and values follow Kubernetes' label syntax (63 characters of alphanumerics, '-', '_', '.').
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    let ok = |s: &str, allow_empty: bool| {
        (allow_empty || !s.is_empty())
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
            && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
    };
    if labels.len() > 32 {
        return Err(Error::Invalid {
            field: "labels",
            message: "at most 32 labels".into(),
        });
    }
    for (k, v) in labels {
        if !ok(k, false) || !ok(v, true) {
            return Err(Error::Invalid {
                field: "labels",
                message: format!(
                    "{k}={v}: keys and values are up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
                ),
            });
        }
    }
    Ok(())
}

/// The labels a user gives in the form: `env` and `region`, each optional.
pub fn labels_from(env: &str, region: &str) -> BTreeMap<String, String> {
    [("env", env.trim()), ("region", region.trim())]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Registration {
    /// Validates what the user typed for one context.
    pub fn from_form(form: &ClusterForm, kubeconfig: &str, by: &str) -> Result<Registration> {
        let invalid = |field, e: &dyn std::fmt::Display| Error::Invalid {
            field,
            message: e.to_string(),
        };
        let name = ClusterName::new(form.name.trim()).map_err(|e| invalid("name", &e))?;
        let network = match form.network.trim() {
            "" => None,
            n => Some(NetworkName::new(n).map_err(|e| invalid("network", &e))?),
        };
        Ok(Registration {
            name,
            network,
            labels: labels_from(&form.env, &form.region),
            kubeconfig: kubeconfig.to_string(),
            context: form.context.clone(),
            allow_insecure: form.allow_insecure,
            onboard: form.onboard,
            by: by.to_string(),
        })
    }
}

/// The contexts of a pasted kubeconfig, each with what would stop it from registering. Stores nothing. The
/// text is parsed on the blocking pool (it is outside input; see `mesh::yaml`).
pub async fn read_contexts(text: String) -> Result<Vec<ContextChoice>> {
    mesh::yaml::parse_off_runtime(move || contexts_of(&text)).await
}

fn contexts_of(text: &str) -> Result<Vec<ContextChoice>> {
    let kc = kubeconfig::parse(text).map_err(|e| Error::Invalid {
        field: "kubeconfig",
        message: e.to_string(),
    })?;
    let list = kubeconfig::contexts(&kc);
    if list.is_empty() {
        return Err(Error::Invalid {
            field: "kubeconfig",
            message: "the kubeconfig has no contexts".into(),
        });
    }
    Ok(list
        .into_iter()
        .map(|c| {
            let (insecure, refused) = match kubeconfig::extract(&kc, &c.name, false) {
                Ok(_) => (false, None),
                Err(kubeconfig::Error::InsecureNotConfirmed { .. }) => (
                    true,
                    kubeconfig::extract(&kc, &c.name, true)
                        .err()
                        .map(|e| e.to_string()),
                ),
                Err(e) => (false, Some(e.to_string())),
            };
            ContextChoice {
                suggested_name: crate::model::suggest_cluster_name(&c.name),
                context: c.name,
                server: c.server,
                user: c.user,
                refused,
                insecure,
            }
        })
        .collect())
}

/// The credentials of one context of a kubeconfig text, parsed on the blocking pool.
async fn extract_off_runtime(
    text: String,
    context: String,
    allow_insecure: bool,
) -> std::result::Result<Credentials, kubeconfig::Error> {
    mesh::yaml::parse_off_runtime(move || {
        let kc = kubeconfig::parse(&text)?;
        let context = if context.is_empty() {
            kc.current_context.clone().unwrap_or_default()
        } else {
            context
        };
        kubeconfig::extract(&kc, &context, allow_insecure)
    })
    .await
}

/// How an onboarded cluster is reached, read from its record.
pub(crate) fn access_of(record: &ClusterRecord) -> Option<crate::model::ClusterAccess> {
    record
        .access
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

fn seal_context(name: &ClusterName) -> String {
    format!("cluster/{name}/kubeconfig")
}

#[derive(Clone)]
pub struct Registry {
    store: Store,
    secrets: Arc<SecretBox>,
    /// Which API server addresses the console may connect to.
    reach: Arc<connect::Reach>,
    /// How long the tokens of onboarded clusters live.
    token_seconds: i64,
    /// Act as the single sign-on user the work is for (`acting`), so the cluster's RBAC decides.
    impersonate: bool,
}

impl Registry {
    pub fn new(store: Store, secrets: Arc<SecretBox>, reach: connect::Reach) -> Self {
        Registry {
            store,
            secrets,
            reach: Arc::new(reach),
            token_seconds: mesh::access::DEFAULT_TOKEN_SECONDS,
            impersonate: false,
        }
    }

    /// Work for a single sign-on user acts as that user on clusters (`--oidc-impersonate`).
    pub fn with_impersonation(mut self, on: bool) -> Self {
        self.impersonate = on;
        self
    }

    /// Whether work for single sign-on users acts as them.
    pub fn impersonates(&self) -> bool {
        self.impersonate
    }

    /// The credentials for work done for someone: with `--oidc-impersonate`, those of the current work's
    /// single sign-on user (`acting`), so the cluster's own RBAC decides; otherwise the console's own.
    /// The groups asserted: the user's that the group mappings name, never a `system:` one — on an onboarded
    /// cluster only those its account was given (the groups mapped when it was onboarded). A cluster onboarded without per-user
    /// rights cannot act as people: its work for them stops with a message saying to onboard it again.
    pub async fn credentials_acting(&self, name: &ClusterName) -> Result<Credentials> {
        let creds = self.credentials(name).await?;
        if !self.impersonate {
            return Ok(creds);
        }
        let Some(actor) = super::acting::current().await else {
            return Ok(creds);
        };
        let allowed = match access_of(&self.get(name).await?.0) {
            // Registered with its own credentials: the groups the mappings name.
            None => self.impersonated_groups().await?,
            Some(ClusterAccess { per_user: None, .. }) => {
                return Err(Error::Access {
                    cluster: name.to_string(),
                    step: "credentials",
                    message: format!(
                        "the console acts as {} here (per-user rights), but cluster {name} was onboarded \
                         without them: its account may not act as people. Onboard the cluster again (Access → \
                         Onboard) with admin credentials",
                        actor.username
                    ),
                });
            }
            Some(ClusterAccess {
                per_user: Some(p), ..
            }) => match p.groups {
                Some(groups) => groups,
                None => self.impersonated_groups().await?,
            },
        };
        let groups: Vec<String> = actor
            .groups
            .into_iter()
            .filter(|g| !g.starts_with("system:") && allowed.contains(g))
            .collect();
        Ok(creds.impersonating(&actor.username, &groups))
    }

    /// With per-user rights, the groups the console may assert for people: those its group mappings name
    /// (role or team), sorted. None without per-user rights.
    pub async fn impersonation(&self) -> Result<Option<Vec<String>>> {
        if !self.impersonate {
            return Ok(None);
        }
        Ok(Some(self.impersonated_groups().await?))
    }

    async fn impersonated_groups(&self) -> Result<Vec<String>> {
        let mut groups: Vec<String> = self
            .store
            .group_mappings()
            .await?
            .into_iter()
            .map(|m| m.group)
            .filter(|g| !g.starts_with("system:"))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        Ok(groups)
    }

    /// Tokens of onboarded clusters live `seconds` (at least [`mesh::access::MIN_TOKEN_SECONDS`]).
    pub fn with_token_seconds(mut self, seconds: i64) -> Self {
        self.token_seconds = seconds.max(mesh::access::MIN_TOKEN_SECONDS);
        self
    }

    /// Validates, tests and stores one cluster. A cluster that cannot be reached or refuses the credentials
    /// is not stored; one where Meshdeck lacks verbs is stored, with the verbs to grant in its report.
    #[tracing::instrument(skip_all, fields(cluster = %reg.name))]
    pub async fn register(&self, reg: Registration) -> Result<(ClusterRecord, Connectivity)> {
        check_labels(&reg.labels)?;
        if reg.context.is_empty() {
            return Err(Error::Invalid {
                field: "context",
                message: "pick a context of the kubeconfig".into(),
            });
        }
        let creds = extract_off_runtime(
            reg.kubeconfig.clone(),
            reg.context.clone(),
            reg.allow_insecure,
        )
        .await
        .map_err(|e| Error::Invalid {
            field: "kubeconfig",
            message: e.to_string(),
        })?;
        if self.store.cluster(&reg.name).await?.is_some() {
            return Err(Error::Duplicate(reg.name.to_string()));
        }
        self.reachable(&reg.name, &creds.server).await?;
        let (creds, access) = if reg.onboard {
            let (creds, access) = self
                .onboard_with(&reg.name, &creds, &[], &[], &reg.by)
                .await?;
            (creds, Some(access))
        } else {
            (creds, None)
        };
        let report = connect::probe(&creds).await;
        if let Some(problem) = &report.problem {
            return Err(Error::Unusable {
                cluster: reg.name.to_string(),
                problem: problem.clone(),
            });
        }
        let connectivity = Connectivity::from_report(&report, access.as_ref());
        let now = connectivity.checked_at;
        let record = ClusterRecord {
            network: reg
                .network
                .clone()
                .unwrap_or_else(|| NetworkName::from(&reg.name)),
            labels: reg.labels,
            server: creds.server.clone(),
            credentials: self
                .secrets
                .seal(&seal_context(&reg.name), creds.to_yaml().as_bytes()),
            insecure_skip_tls_verify: creds.insecure_skip_tls_verify,
            connectivity: serde_json::to_string(&connectivity).ok(),
            access: access.as_ref().and_then(|a| serde_json::to_string(a).ok()),
            created_at: now,
            updated_at: now,
            name: reg.name,
        };
        self.store.insert_cluster(&record).await?;
        tracing::info!(server = %record.server, healthy = connectivity.healthy(), "cluster registered");
        Ok((record, connectivity))
    }

    /// The credentials of a registered cluster, opened for use on the server only. An onboarded cluster
    /// whose token expired unrenewed is refused, saying why and what to do.
    pub async fn credentials(&self, name: &ClusterName) -> Result<Credentials> {
        let record = self
            .store
            .cluster(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        if let Some(access) = access_of(&record)
            && access.expired(super::now())
        {
            return Err(Error::Access {
                cluster: name.to_string(),
                step: "credentials",
                message: format!(
                    "the console's token for ServiceAccount {} expired{}; onboard the cluster again with \
                     admin credentials (Clusters → {name} → Onboard)",
                    access.account,
                    access
                        .problem
                        .map(|p| format!(" without being renewed ({p})"))
                        .unwrap_or_default()
                ),
            });
        }
        let plain = self
            .secrets
            .open(&seal_context(name), &record.credentials)
            .map_err(|_| Error::Sealed(name.to_string()))?;
        let text = String::from_utf8(plain).map_err(|_| Error::Sealed(name.to_string()))?;
        let creds = extract_off_runtime(text, String::new(), record.insecure_skip_tls_verify)
            .await
            .map_err(|e| match e {
                kubeconfig::Error::Malformed(_) => Error::Sealed(name.to_string()),
                e => Error::Invalid {
                    field: "kubeconfig",
                    message: e.to_string(),
                },
            })?;
        // The ranges may have narrowed since the cluster was registered.
        self.reachable(name, &creds.server).await?;
        Ok(creds)
    }

    /// Refuses an API server address outside the ranges the console may reach.
    pub(super) async fn reachable(&self, name: &ClusterName, server: &str) -> Result<()> {
        self.reach
            .check(server)
            .await
            .map_err(|problem| Error::NotAllowed {
                cluster: name.to_string(),
                problem,
            })
    }

    /// Tests a registered cluster again and stores the report (a failure is a report, not an error).
    #[tracing::instrument(skip_all, fields(cluster = %name))]
    pub async fn retest(&self, name: &ClusterName) -> Result<Connectivity> {
        let creds = self.credentials(name).await?;
        let access = access_of(&self.get(name).await?.0);
        let connectivity =
            Connectivity::from_report(&connect::probe(&creds).await, access.as_ref());
        if let Ok(json) = serde_json::to_string(&connectivity) {
            self.store.set_connectivity(name, &json).await?;
        }
        Ok(connectivity)
    }

    pub async fn update(
        &self,
        name: &ClusterName,
        network: &NetworkName,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        check_labels(labels)?;
        Ok(self.store.update_cluster(name, network, labels).await?)
    }

    pub async fn remove(&self, name: &ClusterName) -> Result<()> {
        Ok(self.store.delete_cluster(name).await?)
    }

    /// One registered cluster and its last report.
    pub async fn get(&self, name: &ClusterName) -> Result<(ClusterRecord, Option<Connectivity>)> {
        let r = self
            .store
            .cluster(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let c = r
            .connectivity
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        Ok((r, c))
    }

    pub async fn list(&self) -> Result<Vec<(ClusterRecord, Option<Connectivity>)>> {
        Ok(self
            .store
            .list_clusters()
            .await?
            .into_iter()
            .map(|r| {
                let c = r
                    .connectivity
                    .as_deref()
                    .and_then(|j| serde_json::from_str(j).ok());
                (r, c)
            })
            .collect())
    }
}
