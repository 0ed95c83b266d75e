//! Jobs: applying a setup plan as durable work. A job is stored with its steps (per cluster, then the
//! cross-cluster ones: linking and verification) and its events, so it can be followed live, looked at later,
//! and continued by another process: each job is held through a lease the running replica renews; when a
//! console stops mid-job, the next one to start (or another replica) takes over the jobs whose lease ran out
//! and continues from the first step not done — steps are idempotent, so the one that was running is simply
//! run again. One job at a time per cluster: the job's clusters are locked in the database in the same
//! transaction that creates it, so replicas sharing Postgres agree. Clusters run in parallel; a failing
//! cluster stops only its own steps, and can be retried alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::{
    CheckStatus, CheckView, ChecksReport, ClusterCheckView, ClusterPlan, ClusterTrust, EastWest,
    FindingView, IntermediateView, JobDetail, JobEvent, JobStep, JobSummary, LicenseChoice,
    PeeringChoice, PlanObject, PlanStep, PreflightView, RootAlgorithm, RootSummary, SetupRequest,
};
use mesh::ca::{KeyAlgorithm, RootCa};
use mesh::ids::ClusterName;
use mesh::objects::DataPlane;
use mesh::operator::{self, Chart, License};
use mesh::setup::{self, ClusterSetup, Peering, Settings, Step, Target};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::notify::{Notice, Notifier};
use super::now;
use super::registry::Registry;
use super::secrets::SecretBox;
use super::store::{self, Holder, JobRow, RootRow, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", describe_holders(.0))]
    Busy(Vec<Holder>),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the root of trust cannot be opened with this server's key")]
    Sealed,
    #[error(transparent)]
    Ca(#[from] mesh::ca::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Progress could not be written to the database even after retries: the job stops here without
    /// finishing, its lease runs out, and it is continued (from its first step not done) once the database
    /// answers again — by this console or another.
    #[error("could not record the job's progress: {0}")]
    Unrecorded(String),
}

fn describe_holders(h: &[Holder]) -> String {
    h.iter()
        .map(|h| {
            format!(
                "cluster {} is busy with job {} started by {}",
                h.cluster, h.job_id, h.started_by
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
        + "; wait for it to finish or retry later"
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a setup job does: the plan's input. Stored as JSON; holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupSpec {
    pub clusters: Vec<ClusterSetup>,
    pub istio_version: String,
    pub data_plane: DataPlane,
    pub peering: Peering,
    pub chart: Chart,
    /// A license Secret reference (`<namespace>/<name>`); when None, the key is in the job's sealed secrets.
    pub license_secret_ref: Option<String>,
    pub watch_namespaces: Vec<String>,
    /// The root of trust this job uses (its id in the store).
    pub root_id: String,
    /// How long the verification waits for every check to pass.
    pub verify_secs: u64,
}

#[derive(Serialize, Deserialize)]
struct JobSecrets {
    license_key: Option<String>,
}

/// The key of the cross-cluster steps' rows.
pub const FLEET: &str = "*";

/// Step keys of a setup job, in order: (cluster, step).
pub fn setup_steps(spec: &SetupSpec) -> Vec<(String, String)> {
    let mut steps = vec![];
    for c in &spec.clusters {
        for s in Step::ALL {
            steps.push((c.name.to_string(), s.key().to_string()));
        }
    }
    match &spec.peering {
        Peering::Manual { pairs } => {
            for (from, to) in pairs {
                steps.push((from.to_string(), format!("link:{to}")));
            }
        }
        Peering::Automatic { .. } => steps.push((FLEET.into(), "peers".into())),
    }
    steps.push((FLEET.into(), "verify".into()));
    steps
}

/// A change to a job, published as it happens (for pages that follow jobs live).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub job_id: String,
    pub cluster: Option<String>,
    pub step: Option<String>,
    pub kind: UpdateKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateKind {
    Step {
        state: String,
        message: Option<String>,
    },
    Event {
        id: i64,
        level: String,
        message: String,
    },
    Finished {
        state: String,
    },
}

/// A short random id (jobs, roots, check reports).
pub fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..12)
        .map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.gen_range(0..36)]))
        .collect()
}

/// The job service. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    registry: Registry,
    secrets: Arc<SecretBox>,
    /// This process, for leases.
    replica: String,
    helm: PathBuf,
    lease: Duration,
    /// The operator chart setups started from the console use.
    chart: Chart,
    updates: broadcast::Sender<Update>,
    /// Tells live streams (here and in other replicas) that a job changed.
    notifier: Notifier,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Jobs {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        registry: Registry,
        secrets: Arc<SecretBox>,
        helm: PathBuf,
        lease: Duration,
        chart: Chart,
        notifier: Notifier,
    ) -> Self {
        Jobs {
            inner: Arc::new(Inner {
                store,
                registry,
                secrets,
                replica: format!("{}-{}", std::process::id(), random_id()),
                helm,
                lease,
                chart,
                updates: broadcast::channel(1024).0,
                notifier,
                tasks: Mutex::new(vec![]),
            }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.inner.updates.subscribe()
    }

    /// The root of trust in use, generating (ECDSA P-256) and storing one on first use. When another console
    /// stores one at the same moment, the database keeps only one active root and this one uses it.
    pub async fn root(&self, user: &str) -> Result<(String, RootCa)> {
        if let Some(r) = self.inner.store.active_root().await? {
            return Ok((r.id.clone(), self.open_root(&r)?));
        }
        let root = RootCa::generate(mesh::ca::DEFAULT_DAYS)?;
        match self.store_root(&root, user).await {
            Ok(id) => Ok((id, root)),
            Err(Error::Store(store::Error::Conflict(_))) => {
                let r = self
                    .inner
                    .store
                    .active_root()
                    .await?
                    .ok_or_else(|| Error::NotFound("root of trust".into()))?;
                tracing::info!(root = %r.id, "another console made the root of trust first; using it");
                Ok((r.id.clone(), self.open_root(&r)?))
            }
            Err(e) => Err(e),
        }
    }

    /// The root in use, as shown (no key).
    pub async fn root_summary(&self) -> Result<Option<RootSummary>> {
        let Some(r) = self.inner.store.active_root().await? else {
            return Ok(None);
        };
        let root = self.open_root(&r)?;
        let cert = mesh::ca::describe(&r.cert_pem)?;
        Ok(Some(RootSummary {
            id: r.id,
            fingerprint: r.fingerprint,
            algorithm: match root.algorithm() {
                KeyAlgorithm::EcdsaP256 => RootAlgorithm::EcdsaP256,
                KeyAlgorithm::Rsa4096 => RootAlgorithm::Rsa4096,
            },
            subject: cert.subject,
            not_before: cert.not_before,
            not_after: cert.not_after,
            created_by: r.created_by,
            created_at: r.created_at,
            cert_pem: r.cert_pem,
        }))
    }

    /// Makes the root of trust: generated with `algorithm`, or imported from PEM. Refused while a root is in
    /// use: clusters set up with it would no longer trust the others (rotation is a separate flow).
    pub async fn create_root(
        &self,
        algorithm: RootAlgorithm,
        import: Option<(String, String)>,
        user: &str,
    ) -> Result<String> {
        if let Some(r) = self.inner.store.active_root().await? {
            return Err(Error::Conflict(format!(
                "a root of trust is already in use ({}, made by {}); clusters set up with it trust only it",
                mesh::ca::short(&r.fingerprint),
                r.created_by
            )));
        }
        let root = match import {
            Some((cert, key)) => RootCa::import(&cert, &key)?,
            None => {
                let algorithm = match algorithm {
                    RootAlgorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
                    RootAlgorithm::Rsa4096 => KeyAlgorithm::Rsa4096,
                };
                // RSA 4096 takes a second or more: off the async workers.
                tokio::task::spawn_blocking(move || {
                    RootCa::generate_with(algorithm, mesh::ca::DEFAULT_DAYS)
                })
                .await
                .map_err(|e| mesh::ca::Error::Generate(e.to_string()))??
            }
        };
        match self.store_root(&root, user).await {
            Err(Error::Store(store::Error::Conflict(_))) => Err(Error::Conflict(
                "another root of trust was made a moment ago; reload to see it".into(),
            )),
            other => other,
        }
    }

    /// The root in use with its key, for an admin's export (the caller checks who asks and logs it).
    pub async fn export_root(&self) -> Result<RootCa> {
        let r = self
            .inner
            .store
            .active_root()
            .await?
            .ok_or_else(|| Error::NotFound("root of trust".into()))?;
        self.open_root(&r)
    }

    /// The latest `limit` jobs, newest first, with their progress.
    pub async fn list(&self, limit: i64) -> Result<Vec<JobSummary>> {
        let st = &self.inner.store;
        let mut out = vec![];
        for job in st.list_jobs(limit).await? {
            let steps = st.job_steps(&job.id).await?;
            out.push(summary(job, &steps));
        }
        Ok(out)
    }

    /// One job with its steps and its events after event id `after`.
    pub async fn detail(&self, id: &str, after: i64) -> Result<JobDetail> {
        let st = &self.inner.store;
        let job = st
            .job(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id}")))?;
        let steps = st.job_steps(id).await?;
        let events = st.job_events(id, after).await?;
        Ok(JobDetail {
            job: summary(job, &steps),
            steps: steps
                .into_iter()
                .map(|s| JobStep {
                    title: step_title(&s.step),
                    cluster: s.cluster,
                    step: s.step,
                    state: s.state,
                    changed: s.changed,
                    message: s.message,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                })
                .collect(),
            events: events
                .into_iter()
                .map(|e| JobEvent {
                    id: e.id,
                    at: e.at,
                    cluster: e.cluster,
                    step: e.step,
                    level: e.level,
                    message: e.message,
                })
                .collect(),
        })
    }

    /// Runs every check on `names` (read-only, concurrently; a cluster that cannot be reached fails alone).
    pub async fn run_checks(&self, names: &[ClusterName]) -> ChecksReport {
        use mesh::checks::{CheckId, CheckResult, ClusterChecks, Status};
        let mut reachable = vec![];
        let mut unreachable = vec![];
        for name in names {
            match self.target(name).await {
                Ok(t) => reachable.push((t.name, t.client)),
                Err(message) => unreachable.push(ClusterChecks {
                    cluster: name.clone(),
                    results: vec![CheckResult {
                        id: CheckId::Reachable,
                        status: Status::Fail,
                        message,
                        remediation: Some(
                            "Re-test the cluster under Clusters and fix its credentials or network path".into(),
                        ),
                        details: vec![],
                    }],
                    root_fingerprint: None,
                }),
            }
        }
        let mut all = mesh::checks::check_all(reachable).await;
        all.extend(unreachable);
        all.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        ChecksReport {
            text: mesh::checks::to_text(&all),
            clusters: all
                .iter()
                .map(|c| ClusterCheckView {
                    cluster: c.cluster.to_string(),
                    worst: status(c.worst()),
                    results: c
                        .results
                        .iter()
                        .map(|r| CheckView {
                            title: r.id.title().to_string(),
                            status: status(r.status),
                            message: r.message.clone(),
                            remediation: r.remediation.clone(),
                            details: r.details.clone(),
                        })
                        .collect(),
                })
                .collect(),
            ran_at: now(),
            id: None,
            ran_by: None,
        }
    }

    /// Each cluster's root of trust as its `cacerts` Secret holds it (public certificates only: the key is
    /// never read out of the Secret's parse), judged against the console's root; for a cluster without
    /// `cacerts`, what applying will write. Clusters are read concurrently; one that fails is named alone.
    pub async fn trust_chains(&self, names: &[ClusterName]) -> Result<Vec<ClusterTrust>> {
        if names.is_empty() || names.len() > 100 {
            return Err(Error::Invalid {
                field: "clusters",
                message: "pick 1 to 100 clusters".into(),
            });
        }
        for name in names {
            self.inner
                .store
                .cluster(name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("cluster {name}")))?;
        }
        let root = self.inner.store.active_root().await?;
        let chosen = root.as_ref().map(|r| r.fingerprint.clone());
        let signer = match &root {
            Some(r) => mesh::ca::describe(&r.cert_pem)
                .map(|c| c.subject)
                .unwrap_or_else(|_| "the console's root".into()),
            None => {
                "a new ECDSA P-256 root (made at apply, unless an admin makes or imports one first)"
                    .into()
            }
        };
        let at = now();
        let runs = names.iter().map(|name| {
            let (chosen, signer) = (chosen.as_deref(), signer.as_str());
            async move {
                let mut out = ClusterTrust {
                    cluster: name.to_string(),
                    intermediate: None,
                    planned: None,
                    problems: vec![],
                    error: None,
                };
                let t = match self.target(name).await {
                    Ok(t) => t,
                    Err(e) => {
                        out.error = Some(format!(
                            "cluster {name} is unreachable ({e}): re-test it under Clusters and fix its credentials or network path"
                        ));
                        return out;
                    }
                };
                match mesh::ca::read_cacerts(&t.client, chosen, at).await {
                    Ok(Some(c)) => {
                        out.problems = c.problems;
                        out.intermediate = Some(IntermediateView {
                            subject: c.subject,
                            issuer: c.issuer,
                            not_before: c.not_before,
                            not_after: c.not_after,
                            key_algorithm: c.key_algorithm,
                            pathlen: c.pathlen,
                            root_fingerprint: c.root_fingerprint,
                            root_matches: c.root_matches,
                            chain_pem: c.chain_pem,
                        });
                    }
                    Ok(None) => {
                        out.planned = Some(format!(
                            "will be minted at apply: intermediate valid {} days signed by {signer}",
                            mesh::ca::DEFAULT_DAYS
                        ));
                    }
                    Err(e) => out.error = Some(format!("cluster {name}: {e}")),
                }
                out
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// Turns a setup asked for in the console into a job's spec with the root of trust in use (made now if
    /// there is none), and the license key, which goes in the job's sealed secrets.
    pub async fn spec_from_request(
        &self,
        req: &SetupRequest,
        user: &str,
    ) -> Result<(SetupSpec, Option<String>)> {
        let (mut spec, key) = self.checked_spec(req).await?;
        spec.root_id = self.root(user).await?.0;
        Ok((spec, key))
    }

    /// Writes a note in a job's log.
    pub async fn record(&self, job: &str, level: &str, message: &str) {
        self.event(job, None, None, level, message).await;
    }

    /// The settings every cluster of `spec` shares.
    fn settings_of(&self, spec: &SetupSpec, license: License) -> Settings {
        Settings {
            istio_version: spec.istio_version.clone(),
            data_plane: spec.data_plane,
            peering: spec.peering.clone(),
            operator: operator::Install {
                chart: spec.chart.clone(),
                license,
                watch_namespaces: spec.watch_namespaces.clone(),
                helm: self.inner.helm.clone(),
            },
        }
    }

    /// The preflight of a setup: each cluster's own findings (concurrently; an unreachable cluster fails
    /// alone) with the findings across the selection.
    pub async fn preflight(&self, req: &SetupRequest) -> Result<Vec<PreflightView>> {
        use mesh::checks::Status;
        use mesh::preflight::{ClusterPreflight, Finding};
        let (spec, key) = self.checked_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key));
        let mut fleet = mesh::preflight::fleet(&spec.clusters, &settings);
        let runs = spec.clusters.iter().map(|c| {
            let settings = &settings;
            async move {
                match self.target(&c.name).await {
                    Ok(t) => mesh::preflight::cluster(&t, c, settings, LB_PROBE).await,
                    Err(message) => ClusterPreflight {
                        cluster: c.name.clone(),
                        findings: vec![Finding {
                            key: "reachable".into(),
                            title: "Cluster reachable".into(),
                            status: Status::Fail,
                            message,
                            remediation: Some(
                                "Re-test the cluster under Clusters and fix its credentials or network path".into(),
                            ),
                        }],
                    },
                }
            }
        });
        Ok(futures::future::join_all(runs)
            .await
            .into_iter()
            .map(|mut p| {
                p.findings
                    .extend(fleet.remove(&p.cluster).unwrap_or_default());
                PreflightView {
                    cluster: p.cluster.to_string(),
                    blocked: p.findings.iter().any(|f| f.status == Status::Fail),
                    findings: p
                        .findings
                        .into_iter()
                        .map(|f| FindingView {
                            key: f.key,
                            title: f.title,
                            status: status(f.status),
                            message: f.message,
                            remediation: f.remediation,
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// The preflight of `req`, recorded under the request's hash so that starting exactly this setup soon
    /// after needs no second run (see [`Jobs::preflight_failures`]).
    pub async fn preflight_recorded(
        &self,
        req: &SetupRequest,
        user: &str,
    ) -> Result<Vec<PreflightView>> {
        let views = self.preflight(req).await?;
        let failures = serde_json::to_string(&failures_of(&views)).unwrap_or_else(|_| "[]".into());
        self.inner
            .store
            .record_preflight(&request_hash(req), now(), user, &failures)
            .await?;
        Ok(views)
    }

    /// The failed findings of the preflight of exactly `req`: the one recorded within [`PREFLIGHT_FRESH`],
    /// or one run now. Starting a setup uses this, so the server — not the browser — knows whether the
    /// setup goes on despite failures.
    pub async fn preflight_failures(&self, req: &SetupRequest, user: &str) -> Result<Vec<String>> {
        let hash = request_hash(req);
        if let Some((at, failures)) = self.inner.store.preflight(&hash).await?
            && now() - at <= PREFLIGHT_FRESH.as_secs() as i64
            && let Ok(list) = serde_json::from_str::<Vec<String>>(&failures)
        {
            return Ok(list);
        }
        let views = self.preflight_recorded(req, user).await?;
        Ok(failures_of(&views))
    }

    /// What a setup would change on each cluster (server-side dry runs; nothing is written).
    pub async fn plan(&self, req: &SetupRequest) -> Result<Vec<ClusterPlan>> {
        use mesh::setup::Change;
        let (spec, key) = self.checked_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key));
        let runs = spec.clusters.iter().map(|c| {
            let settings = &settings;
            async move {
                let t = match self.target(&c.name).await {
                    Ok(t) => t,
                    Err(e) => {
                        return ClusterPlan {
                            cluster: c.name.to_string(),
                            error: Some(e),
                            steps: vec![],
                        };
                    }
                };
                let steps = setup::plan_cluster(&t, c, settings).await;
                ClusterPlan {
                    cluster: c.name.to_string(),
                    error: None,
                    steps: steps
                        .into_iter()
                        .map(|s| PlanStep {
                            title: s.step.title().to_string(),
                            commands: s.commands,
                            objects: s
                                .objects
                                .into_iter()
                                .map(|o| {
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
                                })
                                .collect(),
                        })
                        .collect(),
                }
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// A setup request as a spec, checked up front: every cluster is registered (its network comes from the
    /// registry), named once; the Istio version follows the rules; the pairs and the management cluster are
    /// among the chosen clusters; the license is given. No root of trust yet (`root_id` is empty).
    pub async fn checked_spec(&self, req: &SetupRequest) -> Result<(SetupSpec, Option<String>)> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        if req.clusters.is_empty() {
            return Err(invalid("clusters", "pick at least one cluster".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut clusters = vec![];
        for name in &req.clusters {
            if !seen.insert(name.clone()) {
                return Err(invalid("clusters", format!("{name} is listed twice")));
            }
            let record =
                self.inner.store.cluster(name).await?.ok_or_else(|| {
                    invalid("clusters", format!("cluster {name} is not registered"))
                })?;
            clusters.push(ClusterSetup::new(name.clone(), record.network));
        }
        mesh::preflight::version_rule(req.istio_version.trim())
            .map_err(|m| invalid("istio_version", m))?;
        let peering = match &req.peering {
            PeeringChoice::FullMesh => Peering::Manual {
                pairs: setup::full_mesh(&req.clusters),
            },
            PeeringChoice::Pairs { pairs } => {
                for (a, b) in pairs {
                    if a == b {
                        return Err(invalid("peering", format!("{a} cannot peer with itself")));
                    }
                    for c in [a, b] {
                        if !seen.contains(c) {
                            return Err(invalid(
                                "peering",
                                format!("{c} is in a pair but not among the chosen clusters"),
                            ));
                        }
                    }
                }
                let mut unique = pairs.clone();
                unique.sort();
                unique.dedup();
                Peering::Manual { pairs: unique }
            }
            PeeringChoice::Automatic { management } => {
                if !seen.contains(management) {
                    return Err(invalid(
                        "peering",
                        format!(
                            "the management cluster {management} is not among the chosen clusters"
                        ),
                    ));
                }
                Peering::Automatic {
                    management: management.clone(),
                }
            }
        };
        let (license_secret_ref, license_key) = match &req.license {
            LicenseChoice::Key { key } => {
                let key = key.trim();
                if key.is_empty() || key.len() > 16 * 1024 || key.chars().any(char::is_control) {
                    return Err(invalid(
                        "license",
                        "paste the license key: one line, at most 16 KiB".into(),
                    ));
                }
                (None, Some(key.to_string()))
            }
            LicenseChoice::Secret { reference } => {
                let ok = reference.split_once('/').is_some_and(|(ns, n)| {
                    mesh::ids::check_dns1123_label("namespace", ns).is_ok()
                        && !n.is_empty()
                        && n.len() <= 253
                });
                if !ok {
                    return Err(invalid(
                        "license",
                        format!(
                            "{reference:?} is not a Secret reference such as gloo-mesh/license"
                        ),
                    ));
                }
                (Some(reference.clone()), None)
            }
        };
        let problems =
            crate::model::settings_problems(&req.settings, &req.per_cluster, &req.clusters);
        if !problems.is_empty() {
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect();
            return Err(invalid("settings", list.join("; ")));
        }
        // The settings hold YAML typed by the user (the extensions ConfigMap): parsed, per cluster, on the
        // blocking pool (mesh::yaml bounds its size as expanded).
        let (settings, per_cluster) = (req.settings.clone(), req.per_cluster.clone());
        let clusters = mesh::yaml::parse_off_runtime(move || {
            for c in &mut clusters {
                let over = per_cluster.get(&c.name);
                let m = match over {
                    Some(o) => settings.overridden_by(&o.mesh),
                    None => settings.clone(),
                };
                apply_settings(c, &m, over).map_err(|msg| format!("{}: {msg}", c.name))?;
            }
            Ok::<_, String>(clusters)
        })
        .await
        .map_err(|msg| invalid("settings", msg))?;
        Ok((
            SetupSpec {
                clusters,
                istio_version: req.istio_version.trim().to_string(),
                data_plane: data_plane_of(req.eastwest),
                peering,
                chart: self.inner.chart.clone(),
                license_secret_ref,
                watch_namespaces: vec![],
                root_id: String::new(),
                verify_secs: 300,
            },
            license_key,
        ))
    }

    /// The peer gateways that reach `names` (from their live state), as YAML for the owner of a cluster
    /// Meshdeck has no credentials for.
    pub async fn export_peers(&self, names: &[ClusterName], eastwest: EastWest) -> Result<String> {
        if names.is_empty() || names.len() > 100 {
            return Err(Error::Invalid {
                field: "clusters",
                message: "pick 1 to 100 clusters to export".into(),
            });
        }
        let mut targets = vec![];
        for name in names {
            self.inner
                .store
                .cluster(name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("cluster {name}")))?;
            targets.push(self.target(name).await.map_err(|message| Error::Invalid {
                field: "clusters",
                message,
            })?);
        }
        setup::export_peers(&targets, data_plane_of(eastwest))
            .await
            .map_err(|e| Error::Invalid {
                field: "clusters",
                message: e.to_string(),
            })
    }

    /// Applies the peer gateways someone sent (validated first, all of them) in each of `into`.
    pub async fn import_peers(
        &self,
        into: &[ClusterName],
        yaml: &str,
    ) -> Result<Vec<crate::model::ImportOutcome>> {
        if into.is_empty() || into.len() > 100 {
            return Err(Error::Invalid {
                field: "into",
                message: "pick 1 to 100 clusters to import into".into(),
            });
        }
        if yaml.len() > 256 * 1024 {
            return Err(Error::Invalid {
                field: "yaml",
                message: "at most 256 KiB".into(),
            });
        }
        let text = yaml.to_string();
        let gateways = mesh::yaml::parse_off_runtime(move || setup::validate_peer_gateways(&text))
            .await
            .map_err(|message| Error::Invalid {
                field: "yaml",
                message,
            })?;
        for name in into {
            self.inner
                .store
                .cluster(name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("cluster {name}")))?;
        }
        let runs = into.iter().map(|name| {
            let gateways = &gateways;
            async move {
                let mut out = crate::model::ImportOutcome {
                    cluster: name.to_string(),
                    applied: vec![],
                    error: None,
                };
                let t = match self.target(name).await {
                    Ok(t) => t,
                    Err(e) => {
                        out.error = Some(format!("{e} — re-test the cluster under Clusters"));
                        return out;
                    }
                };
                for gw in gateways {
                    match setup::import_peer(&t, gw).await {
                        Ok(_) => out.applied.push(
                            gw["metadata"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        ),
                        Err(e) => {
                            out.error = Some(e.to_string());
                            break;
                        }
                    }
                }
                out
            }
        });
        let outcomes = futures::future::join_all(runs).await;
        tracing::info!(
            clusters = outcomes.len(),
            gateways = gateways.len(),
            "imported peer gateways"
        );
        Ok(outcomes)
    }

    /// Stores `root` (generated or imported) as the root in use; its key sealed.
    pub async fn store_root(&self, root: &RootCa, user: &str) -> Result<String> {
        let id = random_id();
        self.inner
            .store
            .insert_root(&RootRow {
                id: id.clone(),
                cert_pem: root.cert_pem.clone(),
                key_sealed: self
                    .inner
                    .secrets
                    .seal(&root_context(&id), root.key_pem().as_bytes()),
                fingerprint: mesh::ca::fingerprint(&root.cert_pem).unwrap_or_default(),
                created_by: user.to_string(),
                created_at: now(),
            })
            .await?;
        tracing::info!(root = %id, user, "stored a root of trust");
        Ok(id)
    }

    /// Creates a setup job and starts it. Fails, storing nothing, when a cluster is busy with another job.
    pub async fn start_setup(
        &self,
        spec: SetupSpec,
        license_key: Option<String>,
        user: &str,
    ) -> Result<String> {
        if spec.clusters.is_empty() {
            return Err(Error::Invalid {
                field: "clusters",
                message: "pick at least one cluster".into(),
            });
        }
        if spec.license_secret_ref.is_none()
            && license_key.as_deref().is_none_or(|k| k.trim().is_empty())
        {
            return Err(Error::Invalid {
                field: "license",
                message: "give a license key or a Secret reference".into(),
            });
        }
        let id = random_id();
        let steps = setup_steps(&spec);
        let clusters: Vec<String> = spec.clusters.iter().map(|c| c.name.to_string()).collect();
        let spec_json = serde_json::to_string(&spec).map_err(|e| Error::Invalid {
            field: "spec",
            message: e.to_string(),
        })?;
        let secret = serde_json::to_vec(&JobSecrets { license_key }).unwrap_or_default();
        let sealed = self.inner.secrets.seal(&job_context(&id), &secret);
        let created = self
            .inner
            .store
            .create_job(&store::NewJob {
                id: &id,
                kind: "setup",
                spec: &spec_json,
                secret: Some(&sealed),
                started_by: user,
                steps: &steps,
                clusters: &clusters,
                lease_owner: &self.inner.replica,
                lease_until: now() + self.inner.lease.as_secs() as i64,
            })
            .await?;
        created.map_err(Error::Busy)?;
        tracing::info!(job = %id, user, clusters = clusters.join(","), "setup job started");
        self.event(
            &id,
            None,
            None,
            "info",
            &format!("started by {user} for {}", clusters.join(", ")),
        )
        .await;
        self.spawn(id.clone());
        Ok(id)
    }

    /// Runs a finished (failed) job's unfinished steps again — for one cluster, or all.
    pub async fn retry(
        &self,
        job_id: &str,
        cluster: Option<&ClusterName>,
        user: &str,
    ) -> Result<()> {
        let job = self
            .inner
            .store
            .job(job_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {job_id}")))?;
        let spec: SetupSpec = serde_json::from_str(&job.spec).map_err(|e| Error::Invalid {
            field: "spec",
            message: e.to_string(),
        })?;
        if job.state == "running" {
            return Err(Error::Invalid {
                field: "job",
                message: "the job is still running".into(),
            });
        }
        let clusters: Vec<String> = spec.clusters.iter().map(|c| c.name.to_string()).collect();
        self.inner
            .store
            .relock(
                job_id,
                &clusters,
                &self.inner.replica,
                now() + self.inner.lease.as_secs() as i64,
            )
            .await?
            .map_err(Error::Busy)?;
        self.inner
            .store
            .reopen_steps(job_id, cluster.map(|c| c.as_str()), true)
            .await?;
        // The fleet steps depend on every cluster: run them again too.
        self.inner
            .store
            .reopen_steps(job_id, Some(FLEET), true)
            .await?;
        let who = cluster.map_or("all clusters".to_string(), |c| format!("cluster {c}"));
        self.event(
            job_id,
            cluster.map(|c| c.as_str()),
            None,
            "info",
            &format!("retry of {who} by {user}"),
        )
        .await;
        self.spawn(job_id.to_string());
        Ok(())
    }

    /// Takes over the jobs whose replica stopped (lease expired) and continues them. Call at start.
    pub async fn resume_orphans(&self) -> Result<Vec<String>> {
        let ids = self
            .inner
            .store
            .claim_orphaned_jobs(
                &self.inner.replica,
                now() + self.inner.lease.as_secs() as i64,
            )
            .await?;
        for id in &ids {
            self.inner.store.reopen_steps(id, None, false).await?;
            self.event(
                id,
                None,
                None,
                "info",
                "continued after the console that ran it stopped",
            )
            .await;
            tracing::info!(job = %id, "resuming a job");
            self.spawn(id.clone());
        }
        Ok(ids)
    }

    /// Stops every job task of this process at once, as a crash would (for tests of resumption).
    pub fn abort_all(&self) {
        for t in self
            .inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
        {
            t.abort();
        }
    }

    fn spawn(&self, id: String) {
        let this = self.clone();
        // The job and its lease renewal live in one task: when the task stops, so does the lease (and any
        // helm it started, which is killed when dropped).
        let handle = tokio::spawn(async move {
            let heartbeat = async {
                let lease = this.inner.lease;
                let mut held_until = now() + lease.as_secs() as i64;
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let until = now() + lease.as_secs() as i64;
                    match this
                        .inner
                        .store
                        .renew_lease(&id, &this.inner.replica, until)
                        .await
                    {
                        Ok(true) => held_until = until,
                        Ok(false) => {
                            // Another replica took the job over: stop here.
                            tracing::warn!(job = %id, "lost the job's lease to another console");
                            return;
                        }
                        // A database hiccup is no reason to stop: the lease still holds until `held_until`,
                        // so keep trying; stop only once it has run out (another console may take over).
                        Err(e) if now() + 1 < held_until => {
                            tracing::warn!(job = %id, "renewing the job's lease (will retry): {e}");
                        }
                        Err(e) => {
                            tracing::error!(job = %id, "the job's lease ran out while the database did not answer: {e}");
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                () = this.run(&id) => {}
                () = heartbeat => {}
            }
        });
        if let Ok(mut t) = self.inner.tasks.lock() {
            t.retain(|h| !h.is_finished());
            t.push(handle);
        }
    }

    /// Runs a database write, retrying for a few seconds when it fails (a restart, a lost connection).
    async fn recorded<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = store::Result<T>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 0.. {
            match write().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 6 => {
                    tracing::warn!("recording {what} (attempt {}): {e}", attempt + 1);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                }
                Err(e) => return Err(Error::Unrecorded(format!("{what}: {e}"))),
            }
        }
        unreachable!("the loop returns")
    }

    /// Tells live pages about a change of job `id`, in this process and the others.
    async fn publish(&self, update: Update) {
        let id = update.job_id.clone();
        let _ = self.inner.updates.send(update);
        self.inner.notifier.publish(Notice::Job { id }).await;
    }

    /// Records an event of a job (retried; an event that still cannot be written is logged and dropped —
    /// use [`Jobs::event_or_stop`] where the job must not go on without it).
    async fn event(
        &self,
        job: &str,
        cluster: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) {
        if let Err(e) = self.event_or_stop(job, cluster, step, level, message).await {
            tracing::error!(job, "{e}; the event was: {message}");
        }
    }

    async fn event_or_stop(
        &self,
        job: &str,
        cluster: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<()> {
        let st = &self.inner.store;
        let id = self
            .recorded("an event", || {
                st.add_event(job, cluster, step, level, message)
            })
            .await?;
        self.publish(Update {
            job_id: job.into(),
            cluster: cluster.map(String::from),
            step: step.map(String::from),
            kind: UpdateKind::Event {
                id,
                level: level.into(),
                message: message.into(),
            },
        })
        .await;
        Ok(())
    }

    /// Records a step's state (retried). When it cannot be written the job must stop: going on would apply
    /// more than the database says, and a failure would be lost.
    async fn set_step(
        &self,
        job: &str,
        cluster: &str,
        step: &str,
        state: &str,
        changed: Option<bool>,
        message: Option<&str>,
    ) -> Result<()> {
        let st = &self.inner.store;
        self.recorded("a step", || {
            st.set_step(job, cluster, step, state, changed, message)
        })
        .await?;
        self.publish(Update {
            job_id: job.into(),
            cluster: Some(cluster.into()),
            step: Some(step.into()),
            kind: UpdateKind::Step {
                state: state.into(),
                message: message.map(String::from),
            },
        })
        .await;
        Ok(())
    }

    async fn target(&self, name: &ClusterName) -> std::result::Result<Target, String> {
        let creds = self
            .inner
            .registry
            .credentials(name)
            .await
            .map_err(|e| e.to_string())?;
        let client = mesh::connect::client(&creds)
            .await
            .map_err(|p| format!("cluster {name}: {p}"))?;
        Ok(Target {
            name: name.clone(),
            client,
            creds,
        })
    }

    async fn run(&self, id: &str) {
        match self.run_inner(id).await {
            Ok(()) => {}
            Err(e @ Error::Unrecorded(_)) => {
                // Not finished on purpose: the lease runs out and the job is continued when the database
                // answers (resume_orphans, every 15 s).
                tracing::error!(
                    job = id,
                    "{e}; the job stops here and is continued once the database answers"
                );
            }
            Err(e) => {
                tracing::error!(job = id, "job stopped: {e}");
                self.event(id, None, None, "error", &format!("the job stopped: {e}"))
                    .await;
                let st = &self.inner.store;
                if let Err(e) = self
                    .recorded("the job's end", || st.finish_job(id, "failed"))
                    .await
                {
                    tracing::error!(job = id, "{e}; it is continued once the database answers");
                }
            }
        }
    }

    async fn run_inner(&self, id: &str) -> Result<()> {
        let st = &self.inner.store;
        let job: JobRow = st
            .job(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id}")))?;
        let spec: SetupSpec = serde_json::from_str(&job.spec).map_err(|e| Error::Invalid {
            field: "spec",
            message: e.to_string(),
        })?;
        let secrets: JobSecrets = st
            .job_secret(id)
            .await?
            .and_then(|s| self.inner.secrets.open(&job_context(id), &s).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Error::Sealed)?;
        let root = self.root_by_id(&spec.root_id).await?;
        let license = match (&spec.license_secret_ref, secrets.license_key) {
            (Some(r), _) => License::SecretRef(r.clone()),
            (None, Some(k)) => License::Key(k),
            (None, None) => {
                return Err(Error::Invalid {
                    field: "license",
                    message: "missing".into(),
                });
            }
        };
        let settings = self.settings_of(&spec, license);
        let steps = st.job_steps(id).await?;
        let state_of: BTreeMap<(String, String), String> = steps
            .iter()
            .map(|s| ((s.cluster.clone(), s.step.clone()), s.state.clone()))
            .collect();
        let done = |c: &str, s: &str| {
            state_of
                .get(&(c.to_string(), s.to_string()))
                .map(String::as_str)
                == Some("done")
        };
        let failed_before = |c: &str| steps.iter().any(|s| s.cluster == c && s.state == "failed");

        // Per cluster, in parallel.
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        let runs = spec.clusters.iter().map(|c| {
            let settings = &settings;
            let root = &root;
            let done = &done;
            async move {
                let name = c.name.to_string();
                let outcome: Result<Option<Target>> = async {
                    if failed_before(&name) {
                        return Ok(None);
                    }
                    let pending: Vec<Step> = Step::ALL.into_iter().filter(|s| !done(&name, s.key())).collect();
                    let target = match self.target(&c.name).await {
                        Ok(t) => t,
                        Err(e) => {
                            let step = pending.first().copied().unwrap_or(Step::RootOfTrust);
                            let msg = format!("cluster {name} (step: {}): {e}. Check it under Clusters (Re-test), then retry this cluster", step.title());
                            self.set_step(id, &name, step.key(), "failed", None, Some(&msg)).await?;
                            return Ok(None);
                        }
                    };
                    for step in pending {
                        self.set_step(id, &name, step.key(), "running", None, None).await?;
                        let target = &target;
                        let result = self
                            .logged(id, &name, step.key(), |progress| async move {
                                setup::run_step(step, target, c, settings, root, &*progress).await
                            })
                            .await;
                        match result {
                            Ok(o) => {
                                self.set_step(id, &name, step.key(), "done", Some(o.changed), Some(&o.summary)).await?;
                            }
                            Err(e) => {
                                self.set_step(id, &name, step.key(), "failed", None, Some(&e.to_string())).await?;
                                self.event(id, Some(&name), Some(step.key()), "error", &e.to_string()).await;
                                return Ok(None);
                            }
                        }
                    }
                    Ok(Some(target))
                }
                .await;
                (name, outcome)
            }
        });
        let mut all_ok = true;
        for (name, t) in futures::future::join_all(runs).await {
            match t? {
                Some(t) => {
                    targets.insert(name, t);
                }
                None => all_ok = false,
            }
        }
        if !all_ok {
            self.event(
                id,
                None,
                None,
                "error",
                "stopped before linking: a cluster failed; fix it and retry that cluster",
            )
            .await;
            return self.finish(id, "failed").await;
        }

        // Across clusters.
        let mut linked_ok = true;
        match &spec.peering {
            Peering::Manual { pairs } => {
                let todo: Vec<_> = pairs
                    .iter()
                    .filter(|(from, to)| !done(from.as_str(), &format!("link:{to}")))
                    .collect();
                linked_ok = self.link_pairs(id, &todo, &targets, &spec).await?;
            }
            Peering::Automatic { .. } => {
                if !done(FLEET, "peers") {
                    self.set_step(id, FLEET, "peers", "running", None, None)
                        .await?;
                    let list: Vec<Target> = targets.values().cloned().collect();
                    let start = std::time::Instant::now();
                    let result = loop {
                        match setup::missing_automatic_peers(&list).await {
                            Ok(m) if m.is_empty() => break Ok(()),
                            Ok(m) if start.elapsed() > Duration::from_secs(spec.verify_secs) => {
                                break Err(format!(
                                    "peer gateways still missing: {}. Check that the management plane runs with ConfigDistribution and that every cluster's agent is connected",
                                    m.iter()
                                        .map(|(a, b)| format!("{a} has none for {b}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ));
                            }
                            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                            Err(e) => break Err(e.to_string()),
                        }
                    };
                    match result {
                        Ok(()) => {
                            self.set_step(
                                id,
                                FLEET,
                                "peers",
                                "done",
                                Some(false),
                                Some("every cluster holds a peer gateway for every other"),
                            )
                            .await?
                        }
                        Err(e) => {
                            linked_ok = false;
                            self.set_step(id, FLEET, "peers", "failed", None, Some(&e))
                                .await?;
                        }
                    }
                }
            }
        }
        if !linked_ok {
            return self.finish(id, "failed").await;
        }
        self.set_step(id, FLEET, "verify", "running", None, None)
            .await?;
        let list: Vec<Target> = targets.values().cloned().collect();
        let names: Vec<ClusterName> = spec.clusters.iter().map(|c| c.name.clone()).collect();
        let holders = setup::holders(&names, &spec.peering);
        let (list, holders, wait) = (&list, &holders, Duration::from_secs(spec.verify_secs));
        let results = self
            .logged(id, FLEET, "verify", |progress| async move {
                setup::verify(list, holders, wait, &*progress).await
            })
            .await;
        if results
            .iter()
            .all(|c| c.worst() == mesh::checks::Status::Pass)
        {
            self.set_step(
                id,
                FLEET,
                "verify",
                "done",
                Some(false),
                Some("every check passes in every cluster"),
            )
            .await?;
            self.finish(id, "succeeded").await
        } else {
            let text = mesh::checks::to_text(&results);
            self.set_step(id, FLEET, "verify", "failed", None, Some(&text))
                .await?;
            self.finish(id, "failed").await
        }
    }

    async fn finish(&self, id: &str, state: &str) -> Result<()> {
        let st = &self.inner.store;
        self.recorded("the job's end", || st.finish_job(id, state))
            .await?;
        self.event(
            id,
            None,
            None,
            if state == "succeeded" {
                "info"
            } else {
                "error"
            },
            &format!("job {state}"),
        )
        .await;
        self.publish(Update {
            job_id: id.into(),
            cluster: None,
            step: None,
            kind: UpdateKind::Finished {
                state: state.into(),
            },
        })
        .await;
        Ok(())
    }

    async fn root_by_id(&self, id: &str) -> Result<RootCa> {
        let r = self
            .inner
            .store
            .active_root()
            .await?
            .filter(|r| r.id == id)
            .ok_or(Error::Invalid {
                field: "root",
                message: "the job's root of trust is no longer the one in use".into(),
            })?;
        self.open_root(&r)
    }

    /// Runs `work` with a progress callback whose lines become events of `step` on `cluster` as they come.
    async fn logged<T, Fut>(
        &self,
        id: &str,
        cluster: &str,
        step: &str,
        work: impl FnOnce(Box<dyn Fn(String) + Send + Sync>) -> Fut,
    ) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let progress: Box<dyn Fn(String) + Send + Sync> = Box::new(move |line| {
            let _ = tx.send(line);
        });
        let drain = async {
            while let Some(line) = rx.recv().await {
                self.event(id, Some(cluster), Some(step), "info", &line)
                    .await;
            }
        };
        // The callback is dropped when `work` ends, which ends the drain.
        let (result, ()) = tokio::join!(work(progress), drain);
        result
    }

    /// Links the ordered pairs `(from, to)`: each peer's gateway is built once from its live state, then
    /// applied in every cluster that links to it, several at a time. Each pair is its own step; returns
    /// whether all succeeded.
    async fn link_pairs(
        &self,
        id: &str,
        pairs: &[&(ClusterName, ClusterName)],
        targets: &BTreeMap<String, Target>,
        spec: &SetupSpec,
    ) -> Result<bool> {
        use futures::StreamExt;
        const IN_FLIGHT: usize = 8;
        let peers: std::collections::BTreeSet<&ClusterName> =
            pairs.iter().map(|(_, to)| to).collect();
        let mut reads = vec![];
        for to in peers {
            reads.push(peer_gateway(to, targets, peer_data_plane(spec, to)));
        }
        let gateways: BTreeMap<String, std::result::Result<serde_json::Value, String>> =
            futures::stream::iter(reads)
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        let mut links = vec![];
        for (from, to) in pairs {
            links.push(self.link_one(id, from, to, targets, &gateways));
        }
        let outcomes: Vec<Result<bool>> = futures::stream::iter(links)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut all = true;
        for o in outcomes {
            all &= o?;
        }
        Ok(all)
    }

    /// One link step: applies `to`'s peer gateway in `from`.
    async fn link_one(
        &self,
        id: &str,
        from: &ClusterName,
        to: &ClusterName,
        targets: &BTreeMap<String, Target>,
        gateways: &BTreeMap<String, std::result::Result<serde_json::Value, String>>,
    ) -> Result<bool> {
        let key = format!("link:{to}");
        self.set_step(id, from.as_str(), &key, "running", None, None)
            .await?;
        let result = match (targets.get(from.as_str()), gateways.get(to.as_str())) {
            (Some(f), Some(Ok(gw))) => setup::import_peer(f, gw).await.map_err(|e| e.to_string()),
            (_, Some(Err(e))) => Err(e.clone()),
            _ => Err(format!("cluster {from} is not part of this job")),
        };
        match result {
            Ok(o) => {
                self.set_step(
                    id,
                    from.as_str(),
                    &key,
                    "done",
                    Some(o.changed),
                    Some(&o.summary),
                )
                .await?;
                Ok(true)
            }
            Err(e) => {
                self.set_step(id, from.as_str(), &key, "failed", None, Some(&e))
                    .await?;
                Ok(false)
            }
        }
    }

    /// A stored root with its key unsealed (on the server only).
    fn open_root(&self, r: &RootRow) -> Result<RootCa> {
        let key = self
            .inner
            .secrets
            .open(&root_context(&r.id), &r.key_sealed)
            .map_err(|_| Error::Sealed)?;
        let key = String::from_utf8(key).map_err(|_| Error::Sealed)?;
        Ok(RootCa::import(&r.cert_pem, &key)?)
    }
}

/// A job as listed: its clusters are those of its steps (the fleet row aside).
fn summary(job: JobRow, steps: &[store::StepRow]) -> JobSummary {
    let mut clusters: Vec<String> = steps
        .iter()
        .filter(|s| s.cluster != FLEET)
        .map(|s| s.cluster.clone())
        .collect();
    clusters.sort();
    clusters.dedup();
    JobSummary {
        id: job.id,
        kind: job.kind,
        state: job.state,
        started_by: job.started_by,
        created_at: job.created_at,
        finished_at: job.finished_at,
        clusters,
        steps_done: steps.iter().filter(|s| s.state == "done").count(),
        steps_total: steps.len(),
    }
}

/// What a step key means, for people.
pub fn step_title(key: &str) -> String {
    if let Some(s) = Step::from_key(key) {
        return s.title().to_string();
    }
    if let Some(to) = key.strip_prefix("link:") {
        return format!("Link to {to}");
    }
    match key {
        "peers" => "Automatic peering".into(),
        "verify" => "Verify (all checks)".into(),
        other => other.to_string(),
    }
}

/// The peer gateway that reaches `to`, built from its live state (or why it cannot be).
async fn peer_gateway(
    to: &ClusterName,
    targets: &BTreeMap<String, Target>,
    data_plane: DataPlane,
) -> (String, std::result::Result<serde_json::Value, String>) {
    let gw = match targets.get(to.as_str()) {
        Some(t) => setup::peer_gateway_for(t, data_plane)
            .await
            .map_err(|e| e.to_string()),
        None => Err(format!("cluster {to} is not part of this job")),
    };
    (to.to_string(), gw)
}

/// The variant peers use to reach `to`: its own east-west variant in this setup, else the shared one.
fn peer_data_plane(spec: &SetupSpec, to: &ClusterName) -> DataPlane {
    spec.clusters
        .iter()
        .find(|c| &c.name == to)
        .and_then(|c| c.data_plane)
        .unwrap_or(spec.data_plane)
}

fn data_plane_of(e: EastWest) -> DataPlane {
    match e {
        EastWest::LoadBalancer => DataPlane::LoadBalancer,
        EastWest::NodePort => DataPlane::NodePort,
    }
}

/// How long a preflight result stands for starting the very same setup.
pub const PREFLIGHT_FRESH: Duration = Duration::from_secs(15 * 60);

/// A setup request's identity for its preflight: SHA-256 of its JSON without the override reason (a
/// reason does not change what the preflight looks at).
pub fn request_hash(req: &SetupRequest) -> String {
    use sha2::Digest;
    let mut r = req.clone();
    r.override_reason = None;
    let bytes = serde_json::to_vec(&r).unwrap_or_default();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The failed findings of a preflight, as "cluster: title — message".
pub fn failures_of(views: &[PreflightView]) -> Vec<String> {
    views
        .iter()
        .flat_map(|v| {
            v.findings
                .iter()
                .filter(|f| f.status == CheckStatus::Fail)
                .map(move |f| format!("{}: {} — {}", v.cluster, f.title, f.message))
        })
        .collect()
}

/// How long the preflight waits for the load-balancer probe's address.
const LB_PROBE: Duration = Duration::from_secs(20);

/// The license of a checked spec: a Secret reference, or the key.
fn license_of(spec: &SetupSpec, key: Option<String>) -> License {
    match (&spec.license_secret_ref, key) {
        (Some(r), _) => License::SecretRef(r.clone()),
        (None, k) => License::Key(k.unwrap_or_default()),
    }
}

/// A check's or finding's status, as the browser sees it.
fn status(s: mesh::checks::Status) -> CheckStatus {
    use mesh::checks::Status;
    match s {
        Status::Pass => CheckStatus::Pass,
        Status::Pending => CheckStatus::Pending,
        Status::Warn => CheckStatus::Warn,
        Status::Fail => CheckStatus::Fail,
    }
}

fn root_context(id: &str) -> String {
    format!("root/{id}/key")
}

fn job_context(id: &str) -> String {
    format!("job/{id}/secrets")
}

/// A cluster's control-plane settings (validated) written into what the engine applies: the
/// ServiceMeshController's fields, istiod's environment, and the extensions ConfigMap's further keys —
/// discovery selectors become the `stable` key, the raw YAML adds `stable` or `values.istio-ztunnel`.
///
/// `over` is the cluster's own part of the request: its east-west address override and variant (`None` keeps
/// the setup's shared variant).
fn apply_settings(
    c: &mut ClusterSetup,
    m: &crate::model::MeshSettings,
    over: Option<&crate::model::ClusterSettings>,
) -> std::result::Result<(), String> {
    use crate::model::{RAW_EXTENSION_KEYS, parse_selector};
    c.address_override = over.and_then(|o| o.address_override.clone());
    c.data_plane = over.and_then(|o| o.eastwest).map(data_plane_of);
    c.mesh.distribution = m.distribution.clone();
    c.mesh.scaling_profile = m.scaling_profile.clone();
    c.mesh.on_conflict = m.on_conflict.clone();
    c.mesh.trust_domain = m.trust_domain.clone();
    c.mesh.image_repository = m.image_repository.clone();
    c.mesh.image_secrets = m.image_secrets.clone();
    c.mesh.repository_secrets = m.repository_secrets.clone();
    c.mesh.repository_insecure_skip_verify = m.repository_insecure_skip_verify;
    c.istiod_env = m.istiod_env.clone();
    let mut extra = mesh::objects::parse_extensions_yaml(&m.extensions_yaml)
        .map_err(|e| format!("extensions YAML: {e}"))?;
    if let Some(k) = extra
        .keys()
        .find(|k| !RAW_EXTENSION_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "extensions YAML: it may set {} only; {k} is written by Meshdeck from the other fields or is unknown",
            RAW_EXTENSION_KEYS.join(" and ")
        ));
    }
    if !m.discovery_selectors.is_empty() {
        if extra.contains_key("stable") {
            return Err("discovery selectors are written into the stable key: set them in the field or in the raw YAML, not both".into());
        }
        let mut text = String::from("serviceMeshController:\n  istiod:\n    discoverySelectors:\n");
        for s in &m.discovery_selectors {
            let (k, v) = parse_selector(s).ok_or_else(|| format!("{s:?} is not key=value"))?;
            text.push_str(&format!(
                "    - matchLabels:\n        {}: {}\n",
                serde_json::Value::String(k),
                serde_json::Value::String(v)
            ));
        }
        extra.insert("stable".into(), text);
    }
    c.extensions = extra;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh::ids::NetworkName;

    #[test]
    fn a_setup_job_has_every_step_per_cluster_then_links_then_verification() {
        let c = |n: &str| {
            let name = ClusterName::new(n).expect("n");
            ClusterSetup::new(name.clone(), NetworkName::from(&name))
        };
        let names = vec![
            ClusterName::new("a").expect("a"),
            ClusterName::new("b").expect("b"),
        ];
        let spec = SetupSpec {
            clusters: vec![c("a"), c("b")],
            istio_version: "1.28.1-patch0".into(),
            data_plane: DataPlane::LoadBalancer,
            peering: Peering::Manual {
                pairs: setup::full_mesh(&names),
            },
            chart: Chart::default(),
            license_secret_ref: None,
            watch_namespaces: vec![],
            root_id: "r".into(),
            verify_secs: 60,
        };
        let steps = setup_steps(&spec);
        assert_eq!(steps.len(), 5 * 2 + 2 + 1);
        assert_eq!(steps[0], ("a".into(), "root-of-trust".into()));
        assert_eq!(steps[10], ("a".into(), "link:b".into()));
        assert_eq!(
            steps.last(),
            Some(&(FLEET.to_string(), "verify".to_string()))
        );
    }

    #[test]
    fn a_clusters_own_eastwest_variant_shapes_its_gateway_and_how_peers_reach_it() {
        use crate::model::{ClusterSettings, MeshSettings};
        let name = |n: &str| ClusterName::new(n).expect("n");
        let mut c3 = ClusterSetup::new(name("c3"), NetworkName::from(&name("c3")));
        let mut c4 = ClusterSetup::new(name("c4"), NetworkName::from(&name("c4")));
        let nodeport = ClusterSettings {
            eastwest: Some(EastWest::NodePort),
            ..Default::default()
        };
        apply_settings(&mut c3, &MeshSettings::default(), Some(&nodeport)).expect("c3");
        apply_settings(&mut c4, &MeshSettings::default(), None).expect("c4");
        assert_eq!(c3.data_plane, Some(DataPlane::NodePort));
        assert_eq!(c4.data_plane, None);
        let spec = SetupSpec {
            clusters: vec![c3.clone(), c4.clone()],
            istio_version: "1.28.1-patch0".into(),
            data_plane: DataPlane::LoadBalancer,
            peering: Peering::Manual { pairs: vec![] },
            chart: Chart::default(),
            license_secret_ref: None,
            watch_namespaces: vec![],
            root_id: "r".into(),
            verify_secs: 60,
        };
        assert_eq!(peer_data_plane(&spec, &name("c3")), DataPlane::NodePort);
        assert_eq!(peer_data_plane(&spec, &name("c4")), DataPlane::LoadBalancer);
        let settings = Settings {
            istio_version: spec.istio_version.clone(),
            data_plane: spec.data_plane,
            peering: spec.peering.clone(),
            operator: operator::Install {
                chart: Chart::default(),
                license: License::Key("k".into()),
                watch_namespaces: vec![],
                helm: "helm".into(),
            },
        };
        let variant = |c: &ClusterSetup| {
            setup::objects(Step::EastWest, c, &settings)
                .into_iter()
                .find(|o| o["kind"] == "Gateway")
                .expect("gateway")["metadata"]["annotations"]
                ["peering.solo.io/data-plane-service-type"]
                .clone()
        };
        assert_eq!(variant(&c3), "NodePort");
        assert_eq!(variant(&c4), serde_json::Value::Null);
    }
}
