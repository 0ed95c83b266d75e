//! Jobs: applying a setup plan as durable work. A job is stored with its steps (per cluster, then the
//! cross-cluster ones: linking and verification) and its events, so it can be followed live, looked at later,
//! and continued by another process: each job is held through a lease the running replica renews; when a
//! console stops mid-job, the next one to start (or another replica) takes over the jobs whose lease ran out
//! and continues from the first step not done — steps are idempotent, so the one that was running is simply
//! run again. One job at a time per cluster: the job's clusters are locked in the database in the same
//! transaction that creates it, so replicas sharing Postgres agree. Clusters run in parallel; a failing
//! cluster stops only its own steps, and can be retried alone.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::{
    CheckStatus, CheckView, ChecksReport, ClusterCheckView, ClusterPlan, ClusterTrust, EastWest,
    FindingView, IntermediateView, JobDetail, JobEvent, JobStep, JobSummary, LicenseChoice,
    PeeringChoice, PlanStep, PreflightView, RootAlgorithm, RootSummary, SetupRequest,
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
    /// This console is stopping: the job stops before its next step and another console continues it.
    #[error("handed over: this console is stopping")]
    HandedOver,
}

fn describe_holders(h: &[Holder]) -> String {
    h.iter()
        .map(|h| match crate::ssr::portal::describe_lock(&h.cluster) {
            Some(what) => format!(
                "{what} is busy with job {} started by {}",
                h.job_id, h.started_by
            ),
            None => format!(
                "cluster {} is busy with job {} started by {}",
                h.cluster, h.job_id, h.started_by
            ),
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
    /// A growth of a running mesh: its clusters already set up, which this job links with (as `peering`
    /// says) and verifies with the added ones, but never sets up again.
    #[serde(default)]
    pub members: Vec<ClusterSetup>,
}

impl SetupSpec {
    /// Every cluster the job touches, and so locks: the ones it sets up and the members it links with.
    pub fn locked(&self) -> Vec<String> {
        self.clusters
            .iter()
            .chain(&self.members)
            .map(|c| c.name.to_string())
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
struct JobSecrets {
    license_key: Option<String>,
}

impl JobSecrets {
    /// What a job seals: its license key (None when the license is a Secret reference).
    fn sealed_bytes(license_key: Option<String>) -> Vec<u8> {
        serde_json::to_vec(&JobSecrets { license_key }).unwrap_or_default()
    }
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
/// A job's spec, read back from its JSON.
pub(crate) fn spec_of<T: serde::de::DeserializeOwned>(job: &JobRow) -> Result<T> {
    serde_json::from_str(&job.spec).map_err(|e| Error::Invalid {
        field: "spec",
        message: e.to_string(),
    })
}

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
    /// The running jobs' tasks, by job id.
    tasks: Mutex<Vec<(String, tokio::task::JoinHandle<()>)>>,
    /// Set when the console stops: no job starts a new step or a new task; see [`Jobs::hand_over`].
    stopping: std::sync::atomic::AtomicBool,
}

/// What [`Jobs::hand_over`] did.
#[derive(Debug, Default)]
pub struct HandOver {
    /// Jobs released for another console (their lease ended at once).
    pub released: Vec<String>,
    /// Of those, the ones stopped mid-step when the grace period ended (that step runs again).
    pub cut: Vec<String>,
}

mod change;
mod charts;
mod drift;
mod grow;
mod lifecycle;
mod now;
mod plan_links;
mod record;
mod reissue;
mod requests;
mod rollout;
mod roots;
mod rotate_root;
mod run;
mod take_apart;
mod upgrade;

pub use change::{CHANGE_KIND, ChangeSpec};
pub use charts::{MAX_CHART_BYTES, UPLOADED};
pub use drift::{REAPPLY_KIND, ReapplySpec};
pub use reissue::{REISSUE_KIND, ReissueSpec};
pub use rotate_root::{ROTATE_KIND, RotateSpec};
pub use take_apart::{REMOVE_KIND, RemoveSpec, UNLINK_KIND, UnlinkSpec};
pub use upgrade::{UPGRADE_KIND, UpgradeSpec};

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
                stopping: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.inner.updates.subscribe()
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

    /// Writes a note in a job's log.
    pub async fn record(&self, job: &str, level: &str, message: &str) {
        self.event(job, None, None, level, message).await;
    }

    /// The settings every cluster of `spec` shares (an uploaded chart as this console's copy of its file).
    async fn settings_of(&self, spec: &SetupSpec, license: License) -> Result<Settings> {
        let chart = self.helm_chart(&spec.chart).await?;
        Ok(self.settings_with(spec, license, chart))
    }

    /// The settings every cluster of `spec` shares, installing the operator from `chart`.
    fn settings_with(&self, spec: &SetupSpec, license: License, chart: Chart) -> Settings {
        Settings {
            istio_version: spec.istio_version.clone(),
            data_plane: spec.data_plane,
            peering: spec.peering.clone(),
            operator: operator::Install {
                chart,
                license,
                watch_namespaces: spec.watch_namespaces.clone(),
                helm: self.inner.helm.clone(),
            },
        }
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
        let clusters = spec.locked();
        self.may_change(&clusters, user).await?;
        let spec_json = serde_json::to_string(&spec).map_err(|e| Error::Invalid {
            field: "spec",
            message: e.to_string(),
        })?;
        let secret = JobSecrets::sealed_bytes(license_key);
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

    /// With per-user rights a job changes clusters as the single sign-on user who starts it. Someone the
    /// console cannot act as (a local break-glass account, a user no longer known) is refused at once, storing
    /// nothing, when one of the job's clusters (`keys`: its lock keys; those naming a registered cluster)
    /// lets the console's own account only read there — the job would fail at its first write.
    pub(crate) async fn may_change(&self, keys: &[String], user: &str) -> Result<()> {
        let registry = &self.inner.registry;
        if !registry.impersonates()
            || super::acting::of_username(&self.inner.store, user)
                .await
                .is_some()
        {
            return Ok(());
        }
        for key in keys {
            // A cluster's name, or a portal namespace's lock (`portal:<cluster>/<namespace>`).
            let cluster = key
                .strip_prefix("portal:")
                .and_then(|k| k.split_once('/'))
                .map_or(key.as_str(), |(c, _)| c);
            let Ok(name) = ClusterName::new(cluster) else {
                continue;
            };
            let Ok((record, _)) = registry.get(&name).await else {
                continue;
            };
            let reading = crate::ssr::registry::access_of(&record)
                .and_then(|a| a.per_user)
                .is_some_and(|p| p.reads_only);
            if reading {
                return Err(Error::Invalid {
                    field: "cluster",
                    message: format!(
                        "cluster {name} gives the console's own account reads only (per-user rights): changes \
                         there are made as the single sign-on user who starts them, and {user} is not one — sign \
                         in through the provider (the cluster's RBAC must let you make them)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Tells the console's streams (and the other replicas) that something changed.
    pub(crate) async fn notify(&self, notice: Notice) {
        self.inner.notifier.publish(notice).await;
    }

    /// The store the jobs are kept in (for flows that build on jobs, like the portal).
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
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

/// The clusters a job locks, whatever its kind.
fn locked_of(job: &JobRow) -> Result<Vec<String>> {
    Ok(if job.kind == crate::ssr::portal::JOB_KIND {
        crate::ssr::portal::lock_keys_of(&job.spec)
    } else if let Some(keys) = take_apart::lock_keys(&job.kind, &job.spec)
        .or_else(|| upgrade::lock_keys(&job.kind, &job.spec))
        .or_else(|| drift::lock_keys(&job.kind, &job.spec))
        .or_else(|| reissue::lock_keys(&job.kind, &job.spec))
        .or_else(|| rotate_root::lock_keys(&job.kind, &job.spec))
        .or_else(|| change::lock_keys(&job.kind, &job.spec))
    {
        keys
    } else {
        let spec: SetupSpec = spec_of(job)?;
        spec.locked()
    })
}

/// The kinds of job that change what a mesh is — its members, links, version, settings or root. A job planned
/// before one of them succeeded on its clusters is stale: retrying it would put back what that one changed.
/// So is one planned before a newer job of its own kind on its clusters, whatever became of that one (two
/// changes or upgrades would otherwise overwrite each other in turn).
const SHAPING: [&str; 6] = [
    "setup",
    UPGRADE_KIND,
    CHANGE_KIND,
    ROTATE_KIND,
    REMOVE_KIND,
    UNLINK_KIND,
];

impl Jobs {
    /// The newest job made after `job` on some of `locked` that makes it stale: one of a shaping kind that
    /// succeeded, or one of its own kind.
    async fn superseded(&self, job: &JobRow, locked: &[String]) -> Result<Option<JobRow>> {
        // A portal job applies a team's objects; a rotation works from the live `cacerts` pass by pass (and a
        // new one is refused while it is unfinished): both may always be retried.
        if job.kind == crate::ssr::portal::JOB_KIND || job.kind == ROTATE_KIND {
            return Ok(None);
        }
        for row in self.inner.store.list_jobs(500).await? {
            if row.id == job.id {
                break;
            }
            if ((row.state == "succeeded" && SHAPING.contains(&row.kind.as_str()))
                || row.kind == job.kind)
                && locked_of(&row).is_ok_and(|k| k.iter().any(|c| locked.contains(c)))
            {
                return Ok(Some(row));
            }
        }
        Ok(None)
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
    if let Some(title) = take_apart::step_title(key)
        .or_else(|| upgrade::step_title(key))
        .or_else(|| drift::step_title(key))
        .or_else(|| reissue::step_title(key))
        .or_else(|| rotate_root::step_title(key))
        .or_else(|| change::step_title(key))
    {
        return title;
    }
    match key {
        crate::ssr::portal::STEP => "Apply the team's labels".into(),
        "peers" => "Automatic peering".into(),
        "verify" => "Verify (all checks)".into(),
        other => other.to_string(),
    }
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
pub fn request_hash(req: &impl Serialize) -> String {
    use sha2::Digest;
    let mut r = serde_json::to_value(req).unwrap_or_default();
    if let Some(o) = r.as_object_mut() {
        o.remove("override_reason");
    }
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

#[cfg(test)]
mod tests {
    use super::requests::apply_settings;
    use super::run::peer_data_plane;
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
            members: vec![],
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
            members: vec![],
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
