//! Least-privilege access to registered clusters (issue 13): onboarding with admin credentials given once
//! (then forgotten), renewing the console's short-lived token before it expires, revoking. The objects and
//! the verbs are `mesh::access`'s.

use mesh::access;
use mesh::connect;
use mesh::ids::ClusterName;
use mesh::kubeconfig::Credentials;

use super::{Error, Registry, Result, access_of, extract_off_runtime, seal_context};
use crate::model::{ClusterAccess, ClusterPlan, Connectivity, PlanObject, PlanStep};
use crate::ssr::now;

/// Who "onboarded" the cluster the console runs in.
pub const IN_CLUSTER: &str = "in-cluster";

/// Where a pod finds its ServiceAccount: the folder of `token`, `ca.crt` (normally
/// `/var/run/secrets/kubernetes.io/serviceaccount`) and the API server's `KUBERNETES_SERVICE_HOST`/`PORT`.
pub struct InCluster {
    pub dir: std::path::PathBuf,
    pub host: String,
    pub port: String,
    /// The control-plane namespaces besides istio-system the chart gave the account rights in.
    pub control_planes: Vec<String>,
}

/// Admin credentials given to onboard a registered cluster: a kubeconfig, the context, TLS choice.
pub struct Given {
    pub kubeconfig: String,
    pub context: String,
    pub allow_insecure: bool,
}

/// One planned object, as the plan views show it.
pub(crate) fn plan_object(o: mesh::setup::ObjectChange) -> PlanObject {
    use mesh::setup::Change;
    let (change, detail) = match o.change {
        Change::Create => ("create", None),
        Change::Update { diff } => ("update", Some(diff)),
        Change::Unchanged => ("unchanged", None),
        Change::Unknown { reason } => ("unknown", Some(reason)),
    };
    PlanObject {
        kind: o.kind,
        namespace: o.namespace,
        name: o.name,
        yaml: o.yaml,
        change: change.into(),
        detail,
    }
}

/// How long onboarding waits for the API server to enforce the admission guard on the new account (about
/// a second here).
const GUARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The error of credentials of cluster `name` that give no client (the cluster named).
fn unusable(name: &ClusterName) -> impl FnOnce(connect::Problem) -> Error + '_ {
    move |problem| Error::Unusable {
        cluster: name.to_string(),
        problem,
    }
}

fn access_error(cluster: &ClusterName, step: &'static str, message: String) -> Error {
    Error::Access {
        cluster: cluster.to_string(),
        step,
        message,
    }
}

impl Registry {
    fn seal(&self, name: &ClusterName, creds: &Credentials) -> Vec<u8> {
        self.secrets
            .seal(&seal_context(name), creds.to_yaml().as_bytes())
    }

    /// Onboards with `admin`: applies the console's account, roles and bindings (also in `control_planes`,
    /// checked), takes away what an earlier onboarding gave in `dropped` control-plane namespaces (and
    /// impersonation without per-user rights), asks for its first token. Returns the account's credentials
    /// (the admin's are not kept).
    pub(super) async fn onboard_with(
        &self,
        name: &ClusterName,
        admin: &Credentials,
        control_planes: &[String],
        dropped: &[String],
        by: &str,
    ) -> Result<(Credentials, ClusterAccess)> {
        let client = connect::client(admin).await.map_err(unusable(name))?;
        let impersonate = self.impersonation().await?;
        let grant = access::Grant {
            impersonate: impersonate.as_deref(),
            control_planes,
        };
        access::onboard(&client, grant, dropped).await.map_err(|e| {
            access_error(
                name,
                "onboarding",
                format!(
                    "{e}; onboarding needs credentials allowed to create namespaces, ClusterRoles and their \
                     bindings (cluster-admin) — they are used once and not kept"
                ),
            )
        })?;
        let token = access::request_token(&client, self.token_seconds)
            .await
            .map_err(|e| access_error(name, "onboarding", e.to_string()))?;
        let issued = now();
        let creds = access::credentials(admin, &token.token);
        // The token is handed over only once the API server enforces the guard on the account: right after
        // its write the policy is not loaded yet, and the account would hold RBAC's rights alone.
        let account = connect::client(&creds).await.map_err(unusable(name))?;
        let waited = access::wait_until_guarded(&account, GUARD_TIMEOUT)
            .await
            .map_err(|e| access_error(name, "onboarding", e.to_string()))?;
        tracing::info!(cluster = %name, expires_at = token.expires_at, guard_waited_ms = waited.as_millis() as u64,
            "onboarded with least privilege");
        Ok((
            creds,
            ClusterAccess {
                account: format!("{}/{}", access::NAMESPACE, access::ACCOUNT),
                onboarded_at: issued,
                onboarded_by: by.to_string(),
                token_issued_at: issued,
                token_expires_at: token.expires_at,
                problem: None,
                per_user: impersonate.map(|groups| crate::model::PerUser {
                    groups: Some(groups),
                    reads_only: true,
                }),
                control_planes: control_planes.to_vec(),
            },
        ))
    }

    /// The admin credentials to onboard a registered cluster with: those given (for the same API server),
    /// or, when none are given, those it was registered with (never an onboarded account's).
    async fn admin_credentials(
        &self,
        name: &ClusterName,
        given: Option<Given>,
    ) -> Result<Credentials> {
        let (record, _) = self.get(name).await?;
        let Some(given) = given else {
            if record.access.is_some() {
                return Err(Error::Invalid {
                    field: "kubeconfig",
                    message: format!(
                        "cluster {name} holds only the console's own least-privilege account; paste admin \
                         credentials to onboard it again"
                    ),
                });
            }
            return self.credentials(name).await;
        };
        let creds = extract_off_runtime(given.kubeconfig, given.context, given.allow_insecure)
            .await
            .map_err(|e| Error::Invalid {
                field: "kubeconfig",
                message: e.to_string(),
            })?;
        if creds.insecure_skip_tls_verify != record.insecure_skip_tls_verify {
            return Err(Error::Invalid {
                field: "kubeconfig",
                message: format!(
                    "the context turns TLS verification {} but cluster {name} was registered with it {}; use \
                     a kubeconfig that verifies the same way (or register the cluster again)",
                    if creds.insecure_skip_tls_verify {
                        "off"
                    } else {
                        "on"
                    },
                    if record.insecure_skip_tls_verify {
                        "off"
                    } else {
                        "on"
                    },
                ),
            });
        }
        if creds.server != record.server {
            return Err(Error::Invalid {
                field: "kubeconfig",
                message: format!(
                    "the context points at {} but cluster {name} is registered at {}",
                    creds.server, record.server
                ),
            });
        }
        self.reachable(name, &creds.server).await?;
        Ok(creds)
    }

    /// The control-plane namespaces an onboarding gives rights in besides istio-system: those asked for
    /// (checked), or — when not asked — those the cluster's account has now.
    async fn control_planes(
        &self,
        name: &ClusterName,
        asked: Option<Vec<String>>,
    ) -> Result<Vec<String>> {
        match asked {
            Some(list) => {
                crate::model::control_plane_namespaces(&list).map_err(|message| Error::Invalid {
                    field: "control_planes",
                    message,
                })
            }
            None => Ok(access_of(&self.get(name).await?.0)
                .map(|a| a.control_planes)
                .unwrap_or_default()),
        }
    }

    /// Onboards a registered cluster (again): its stored credentials become the console's own account's.
    /// `control_planes`: see [`Self::control_planes`].
    #[tracing::instrument(skip_all, fields(cluster = %name))]
    pub async fn onboard(
        &self,
        name: &ClusterName,
        given: Option<Given>,
        control_planes: Option<Vec<String>>,
        by: &str,
    ) -> Result<Connectivity> {
        let control_planes = self.control_planes(name, control_planes).await?;
        let dropped = self.control_planes(name, None).await?;
        let admin = self.admin_credentials(name, given).await?;
        let (creds, access) = self
            .onboard_with(name, &admin, &control_planes, &dropped, by)
            .await?;
        drop(admin);
        let connectivity = Connectivity::from_report(&connect::probe(&creds).await, Some(&access));
        self.store
            .set_cluster_credentials(
                name,
                &self.seal(name, &creds),
                serde_json::to_string(&access).ok().as_deref(),
            )
            .await?;
        if let Ok(json) = serde_json::to_string(&connectivity) {
            self.store.set_connectivity(name, &json).await?;
        }
        Ok(connectivity)
    }

    /// What onboarding would apply, compared with the cluster (server-side dry runs with the admin
    /// credentials; nothing is written), and the same by hand.
    pub async fn plan_onboarding(
        &self,
        name: &ClusterName,
        given: Option<Given>,
        control_planes: Option<Vec<String>>,
    ) -> ClusterPlan {
        let planned = async {
            let control_planes = self.control_planes(name, control_planes).await?;
            let dropped = self.control_planes(name, None).await?;
            let impersonate = self.impersonation().await?;
            let grant = access::Grant {
                impersonate: impersonate.as_deref(),
                control_planes: &control_planes,
            };
            let admin = self.admin_credentials(name, given).await?;
            let client = connect::client(&admin).await.map_err(unusable(name))?;
            let uid = access::namespace_uid(&client, access::NAMESPACE)
                .await
                .map_err(|e| access_error(name, "plan", e.to_string()))?
                .unwrap_or_else(|| format!("<uid of namespace {}>", access::NAMESPACE));
            let mut objects = vec![];
            let all = std::iter::once(access::namespace()).chain(access::all_objects(&uid, grant));
            for obj in all {
                objects.push(plan_object(mesh::setup::diff_object(&client, &obj).await));
            }
            let withdraw = access::to_withdraw(&client, grant, &dropped)
                .await
                .map_err(|e| access_error(name, "plan", e.to_string()))?;
            objects.extend(withdraw.iter().map(|w| PlanObject {
                kind: w.kind.into(),
                namespace: w.namespace.clone(),
                name: w.name.into(),
                yaml: String::new(),
                change: "delete".into(),
                detail: Some(if w.namespace.is_some() {
                    "a control-plane namespace no longer named: its rights are taken away".into()
                } else {
                    "per-user rights are off: the account writes as itself and may not impersonate"
                        .into()
                }),
            }));
            Ok::<_, Error>(PlanStep {
                title: "Onboard: the console's own account and roles".into(),
                objects,
                commands: access::commands(name.as_str(), grant, &withdraw),
            })
        }
        .await;
        match planned {
            Ok(step) => ClusterPlan {
                cluster: name.to_string(),
                error: None,
                steps: vec![step],
            },
            Err(e) => ClusterPlan {
                cluster: name.to_string(),
                error: Some(e.to_string()),
                steps: vec![],
            },
        }
    }

    /// Renews an onboarded cluster's token with the token it holds. A failure is recorded on the cluster
    /// (its page says why and what to do) and returned.
    #[tracing::instrument(skip_all, fields(cluster = %name))]
    pub async fn renew(&self, name: &ClusterName) -> Result<ClusterAccess> {
        let (record, _) = self.get(name).await?;
        let Some(mut held) = access_of(&record) else {
            return Err(Error::Invalid {
                field: "cluster",
                message: format!(
                    "cluster {name} is reached with the credentials it was registered with; there is no \
                     token to renew"
                ),
            });
        };
        let creds = self.credentials(name).await?;
        let renewed = async {
            let (ns, account) = held.account.split_once('/').ok_or_else(|| {
                format!("the account {:?} is not <namespace>/<name>", held.account)
            })?;
            let client = connect::client(&creds).await.map_err(|p| p.to_string())?;
            access::request_token_for(&client, ns, account, self.token_seconds)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match renewed {
            Ok(token) => {
                held.token_issued_at = now();
                held.token_expires_at = token.expires_at;
                held.problem = None;
                self.store
                    .set_cluster_credentials(
                        name,
                        &self.seal(name, &access::credentials(&creds, &token.token)),
                        serde_json::to_string(&held).ok().as_deref(),
                    )
                    .await?;
                tracing::info!(expires_at = token.expires_at, "renewed the console's token");
                Ok(held)
            }
            Err(e) => {
                tracing::warn!("renewing the console's token: {e}");
                held.problem = Some(e.clone());
                if let Ok(json) = serde_json::to_string(&held) {
                    self.store.set_cluster_access(name, &json).await?;
                }
                Err(access_error(
                    name,
                    "token renewal",
                    format!(
                        "{e}; the token held now expires at {} (Unix time) — onboard the cluster again with \
                         admin credentials",
                        held.token_expires_at
                    ),
                ))
            }
        }
    }

    /// Renews every onboarded cluster's token past two thirds of its life (or after a failed renewal).
    /// Returns each cluster tried with the outcome.
    pub async fn renew_due(&self) -> Vec<(ClusterName, Result<ClusterAccess>)> {
        let t = now();
        let due: Vec<ClusterName> = match self.store.list_clusters().await {
            Ok(list) => list
                .iter()
                .filter(|r| access_of(r).is_some_and(|a| a.renewal_due(t)))
                .map(|r| r.name.clone())
                .collect(),
            Err(e) => {
                tracing::warn!("listing clusters to renew their tokens: {e}");
                return vec![];
            }
        };
        let mut out = vec![];
        for name in due {
            let r = self.renew(&name).await;
            out.push((name, r));
        }
        out
    }

    /// The onboarded clusters and when the token each holds was issued (by this console or another): a
    /// console restarts its watches of a cluster whose token changed.
    pub async fn tokens_issued(&self) -> Vec<(ClusterName, i64)> {
        match self.store.list_clusters().await {
            Ok(list) => list
                .iter()
                .filter_map(|r| Some((r.name.clone(), access_of(r)?.token_issued_at)))
                .collect(),
            Err(e) => {
                tracing::warn!("listing clusters to follow their tokens: {e}");
                vec![]
            }
        }
    }

    /// Revokes the console's access to a cluster and removes it from the registry: deletes the console's
    /// namespace there, which owns its account, roles and bindings (with the credentials held; a cluster
    /// that was never onboarded has nothing to delete).
    #[tracing::instrument(skip_all, fields(cluster = %name))]
    pub async fn revoke(&self, name: &ClusterName) -> Result<bool> {
        self.revocable(name).await?;
        let creds = self.credentials(name).await?;
        let client = connect::client(&creds).await.map_err(unusable(name))?;
        let deleted = access::revoke(&client)
            .await
            .map_err(|e| access_error(name, "revoking access", e.to_string()))?;
        self.remove(name).await?;
        tracing::info!(deleted, "revoked the console's access");
        Ok(deleted)
    }

    /// Only an account onboarding made is revoked here; the pod's own account (in-cluster) goes with the
    /// chart's setting.
    async fn revocable(&self, name: &ClusterName) -> Result<()> {
        let (record, _) = self.get(name).await?;
        if let Some(h) = self.store.holders(&[name.to_string()]).await?.first() {
            return Err(Error::Store(crate::ssr::store::Error::Busy(format!(
                "cluster {name} is in use by job {} started by {}; wait for it to finish (or fail), then revoke",
                h.job_id, h.started_by
            ))));
        }
        match access_of(&record) {
            None => Err(Error::Invalid {
                field: "cluster",
                message: format!(
                    "cluster {name} was not onboarded: the console holds the credentials it was registered with \
                     and made no account there; remove it instead"
                ),
            }),
            Some(a) if a.onboarded_by == IN_CLUSTER => Err(Error::Invalid {
                field: "cluster",
                message: format!(
                    "cluster {name} is the one the console runs in, reached with its pod's ServiceAccount {}; \
                     turn inCluster off in the chart (or remove the cluster) instead",
                    a.account
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The cluster the console runs in, registered (or brought up to date) with the pod's own
    /// ServiceAccount: its token, CA and the API server's address as Kubernetes gives them to every pod.
    /// The token is renewed like an onboarded cluster's (the chart lets the account mint its own).
    #[tracing::instrument(skip_all, fields(cluster = %name))]
    pub async fn register_in_cluster(
        &self,
        name: &ClusterName,
        pod: &InCluster,
    ) -> Result<Connectivity> {
        let read = |f: &str| {
            std::fs::read_to_string(pod.dir.join(f)).map_err(|e| Error::Invalid {
                field: "in-cluster",
                message: format!(
                    "{}: {e} (is the ServiceAccount token mounted?)",
                    pod.dir.join(f).display()
                ),
            })
        };
        let token = read("token")?.trim().to_string();
        let ca = read("ca.crt")?;
        let (account, issued, expires) =
            access::token_claims(&token).ok_or_else(|| Error::Invalid {
                field: "in-cluster",
                message: "the mounted token is not a ServiceAccount token".into(),
            })?;
        let host = if pod.host.contains(':') {
            format!("[{}]", pod.host)
        } else {
            pod.host.clone()
        };
        let kubeconfig = {
            use base64::Engine;
            let ca = base64::engine::general_purpose::STANDARD.encode(ca.as_bytes());
            serde_json::json!({
                "apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": name.as_str(), "cluster": {
                    "server": format!("https://{host}:{}", pod.port), "certificate-authority-data": ca}}],
                "users": [{"name": name.as_str(), "user": {"token": token}}],
                "contexts": [{"name": name.as_str(), "context": {"cluster": name.as_str(), "user": name.as_str()}}],
            })
            .to_string()
        };
        let held = ClusterAccess {
            account,
            onboarded_at: now(),
            onboarded_by: IN_CLUSTER.into(),
            token_issued_at: issued,
            token_expires_at: expires,
            problem: None,
            per_user: self.impersonate.then_some(crate::model::PerUser {
                groups: None,
                reads_only: false,
            }),
            control_planes: pod.control_planes.clone(),
        };
        let json = serde_json::to_string(&held).ok();
        let mut update = self.store.cluster(name).await?.is_some();
        if !update {
            let reg = super::Registration {
                name: name.clone(),
                network: None,
                labels: Default::default(),
                kubeconfig: kubeconfig.clone(),
                context: name.to_string(),
                allow_insecure: false,
                onboard: false,
                by: IN_CLUSTER.into(),
            };
            match self.register(reg).await {
                Ok((record, _)) => {
                    self.store
                        .set_cluster_credentials(name, &record.credentials, json.as_deref())
                        .await?;
                }
                // Another replica, starting at the same moment, registered it first.
                Err(Error::Duplicate(_)) => update = true,
                Err(e) => return Err(e),
            }
        }
        if update {
            let creds = extract_off_runtime(kubeconfig, name.to_string(), false)
                .await
                .map_err(|e| Error::Invalid {
                    field: "in-cluster",
                    message: e.to_string(),
                })?;
            self.store
                .set_cluster_credentials(name, &self.seal(name, &creds), json.as_deref())
                .await?;
        }
        // The mounted token is the pod's (it dies with the pod, and may live a year): swap it for one of the
        // account's own, renewed like an onboarded cluster's.
        if let Err(e) = self.renew(name).await {
            tracing::warn!("replacing the pod's mounted token with one of the account's own: {e}");
        }
        self.retest(name).await
    }

    /// What revoking deletes (the plan shown before), with the same by hand.
    pub async fn plan_revoke(&self, name: &ClusterName) -> Result<ClusterPlan> {
        self.revocable(name).await?;
        let uid = format!("<uid of namespace {}>", access::NAMESPACE);
        // What this cluster's onboarding gave (its record), not what the console's settings are now.
        let recorded = access_of(&self.get(name).await?.0).and_then(|a| a.per_user);
        let impersonate = match recorded {
            None => None,
            Some(crate::model::PerUser {
                groups: Some(groups),
                ..
            }) => Some(groups),
            Some(_) => Some(self.impersonated_groups().await?),
        };
        let control_planes = self.control_planes(name, None).await?;
        let grant = access::Grant {
            impersonate: impersonate.as_deref(),
            control_planes: &control_planes,
        };
        let objects = std::iter::once(access::namespace())
            .chain(access::all_objects(&uid, grant))
            .map(|o| PlanObject {
                kind: o["kind"].as_str().unwrap_or_default().into(),
                namespace: o["metadata"]["namespace"].as_str().map(String::from),
                name: o["metadata"]["name"].as_str().unwrap_or_default().into(),
                yaml: String::new(),
                change: "delete".into(),
                detail: Some(format!(
                    "owned by namespace {}: deleted with it",
                    access::NAMESPACE
                )),
            })
            .collect();
        Ok(ClusterPlan {
            cluster: name.to_string(),
            error: None,
            steps: vec![PlanStep {
                title: "Revoke: delete the console's own account and roles".into(),
                objects,
                commands: access::revoke_commands(name.as_str()),
            }],
        })
    }
}
