//! Day two — upgrading Istio across a running mesh in a safe order: one cluster at a time (or a chosen batch),
//! each cluster's ServiceMeshController given the new version and waited on until the operator reports this
//! generation Ready, then that cluster's checks until they pass; the rollout stops at the first cluster that
//! fails, naming it and why, and the clusters after it keep the version they run. The version rules hold: the
//! target follows [`mesh_ids::version_rule`] and moves one minor at a time ([`mesh_ids::upgrade_rule`]).
//!
//! The Gloo Operator's chart is upgraded the same way, alone or with the version: in each cluster its release
//! moves first (`helm upgrade`, waited on until the operator runs again), then the control plane, then the
//! checks. It moves to the chart the console is configured with (a new local chart for air-gapped sites) or
//! to another version of the mesh's OCI or repository chart; never to an older one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::model::{OperatorChart, OperatorMove, PlanObject, UpgradeRequest};

/// The job kind of an upgrade.
pub const UPGRADE_KIND: &str = "upgrade";
const OPERATOR: &str = "upgrade:operator";
const CONTROL_PLANE: &str = "upgrade:control-plane";
const VERIFY: &str = "upgrade:verify";

/// What an upgrade job does. Stored as JSON; the license key (the control plane's settings need it) is in
/// the job's sealed secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeSpec {
    /// The mesh (its latest setup or growth job).
    pub mesh: String,
    pub from_version: String,
    /// The mesh as set up, with `clusters` its current members in rollout order, `members` empty and
    /// `istio_version` the target.
    pub setup: SetupSpec,
    /// Clusters upgraded at a time.
    pub batch: usize,
    /// The operator chart the clusters ran, when this upgrade moves it (to `setup.chart`).
    #[serde(default)]
    pub from_chart: Option<Chart>,
}

impl UpgradeSpec {
    /// Whether the Istio version changes (an upgrade may move only the operator).
    fn moves_version(&self) -> bool {
        self.from_version != self.setup.istio_version
    }

    /// The steps of each cluster, in order.
    fn cluster_steps(&self) -> Vec<&'static str> {
        let mut v = vec![];
        if self.from_chart.is_some() {
            v.push(OPERATOR);
        }
        if self.moves_version() {
            v.push(CONTROL_PLANE);
        }
        v.push(VERIFY);
        v
    }

    fn steps(&self) -> Vec<(String, String)> {
        let steps = self.cluster_steps();
        self.setup
            .clusters
            .iter()
            .flat_map(|c| {
                steps
                    .iter()
                    .map(move |s| (c.name.to_string(), s.to_string()))
            })
            .collect()
    }

    /// What the clusters not reached keep, e.g. "Istio 1.27.3 and the operator chart … 0.4.2".
    fn kept(&self) -> String {
        let mut kept = vec![];
        if self.moves_version() {
            kept.push(format!("Istio {}", self.from_version));
        }
        if let Some(c) = &self.from_chart {
            kept.push(format!("the operator chart {}", chart_text(c)));
        }
        kept.join(" and ")
    }

    /// What the upgrade does, for the audit record and the job's title.
    fn what(&self) -> String {
        let mut what = vec![];
        if self.moves_version() {
            what.push(format!(
                "Istio {} → {}",
                self.from_version, self.setup.istio_version
            ));
        }
        if let Some(c) = &self.from_chart {
            what.push(format!(
                "operator chart {} → {}",
                chart_text(c),
                chart_text(&self.setup.chart)
            ));
        }
        what.join(", ")
    }
}

fn chart_text(c: &Chart) -> String {
    OperatorChart::from(c).to_string()
}

impl From<&Chart> for OperatorChart {
    fn from(c: &Chart) -> Self {
        OperatorChart {
            reference: c.reference.clone(),
            version: c.version.clone(),
            label: None,
        }
    }
}

/// A chart version as helm orders them (SemVer 2.0 precedence): three numbers, then an optional pre-release
/// — lower than the release it leads to, compared identifier by identifier, numbers numerically and below
/// words — and build metadata, which does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChartVersion {
    core: (u64, u64, u64),
    pre: Vec<PreRelease>,
}

/// One dot-separated identifier of a pre-release (`beta`, `1`); numbers sort before words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PreRelease {
    Number(u64),
    Word(String),
}

impl Ord for ChartVersion {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Equal,
                (true, false) => Greater,
                (false, true) => Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for ChartVersion {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A chart version (an optional `v`, three numbers, `-pre.release` and `+build`), or None.
fn chart_version(v: &str) -> Option<ChartVersion> {
    if v.len() > 64 {
        return None;
    }
    let core = v.strip_prefix('v').unwrap_or(v);
    let (rest, build) = match core.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (core, None),
    };
    let (nums, pre) = match rest.split_once('-') {
        Some((n, p)) => (n, Some(p)),
        None => (rest, None),
    };
    let ident = |i: &str| !i.is_empty() && i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if build.is_some_and(|b| !b.split('.').all(ident))
        || pre.is_some_and(|p| !p.split('.').all(ident))
    {
        return None;
    }
    let mut it = nums.split('.').map(|n| {
        (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            .then(|| n.parse::<u64>().ok())
            .flatten()
    });
    let core = (it.next()??, it.next()??, it.next()??);
    if it.next().is_some() {
        return None;
    }
    let pre = pre
        .map(|p| {
            p.split('.')
                .map(|i| match i.parse::<u64>() {
                    Ok(n) if i.chars().all(|c| c.is_ascii_digit()) => PreRelease::Number(n),
                    _ => PreRelease::Word(i.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ChartVersion { core, pre })
}

pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    (kind == UPGRADE_KIND)
        .then(|| serde_json::from_str::<UpgradeSpec>(spec).ok())
        .flatten()
        .map(|s| s.setup.locked())
}

pub(crate) fn step_title(key: &str) -> Option<String> {
    match key {
        OPERATOR => Some("Upgrade the Gloo Operator".into()),
        CONTROL_PLANE => Some("Upgrade the control plane".into()),
        VERIFY => Some("Checks after the upgrade".into()),
        _ => None,
    }
}

impl Jobs {
    /// An upgrade checked: the mesh runs, the version rules hold, the order names every member once, the
    /// batch is 1 to the number of clusters. Returns the spec and the license key to seal with it.
    pub async fn upgrade_spec(
        &self,
        req: &UpgradeRequest,
    ) -> Result<(UpgradeSpec, Option<String>)> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        let now = self.mesh_now(&req.mesh).await?;
        let mesh = &now.mesh;
        if let Some(open) = self.unfinished_change(&mesh.job_id).await? {
            return Err(Error::Conflict(format!(
                "job {} changing this mesh's settings is {}: finish it first (retry it from its page, or change the \
                 settings again), so the upgrade does not put back the settings it changed",
                open.id, open.state
            )));
        }
        let to = match req.version.trim() {
            "" => mesh.istio_version.clone(),
            v => v.to_string(),
        };
        let moves_version = to != mesh.istio_version;
        if moves_version {
            mesh::preflight::upgrade_rule(&mesh.istio_version, &to)
                .map_err(|m| invalid("version", m))?;
        }
        let chart = self
            .operator_target(&req.operator, &now.setup.chart, &mesh.job_id)
            .await?;
        if !moves_version && chart.is_none() {
            return Err(invalid(
                "version",
                format!(
                    "the mesh already runs {to} and the operator keeps its chart: choose a newer Istio version, or \
                     move the operator chart"
                ),
            ));
        }
        let order: Vec<String> = if req.order.is_empty() {
            mesh.members.clone()
        } else {
            req.order.iter().map(|c| c.to_string()).collect()
        };
        let unique: BTreeSet<&String> = order.iter().collect();
        let members: BTreeSet<&String> = mesh.members.iter().collect();
        if unique != members || order.len() != mesh.members.len() {
            return Err(invalid(
                "order",
                format!(
                    "the rollout order must name every cluster of the mesh once: {}",
                    mesh.members.join(", ")
                ),
            ));
        }
        if req.batch == 0 || req.batch > order.len() {
            return Err(invalid(
                "batch",
                format!("upgrade 1 to {} clusters at a time", order.len()),
            ));
        }
        // The members as they run now (their settings after any change; the version is the mesh's).
        let all: BTreeMap<String, ClusterSetup> = now
            .setup
            .clusters
            .iter()
            .map(|c| (c.name.to_string(), c.clone()))
            .collect();
        let clusters = order
            .iter()
            .map(|name| {
                all.get(name)
                    .cloned()
                    .ok_or_else(|| Error::Conflict(format!("{name} is not in the mesh's job")))
            })
            .collect::<Result<Vec<_>>>()?;
        // A cluster on NodePort peering cannot move below the first version that has it (§1.2).
        let nodeport: Vec<&str> = clusters
            .iter()
            .filter(|c| c.data_plane.unwrap_or(now.setup.data_plane) == DataPlane::NodePort)
            .map(|c| c.name.as_str())
            .collect();
        if moves_version && !nodeport.is_empty() {
            mesh::preflight::nodeport_rule(&to).map_err(|m| {
                invalid(
                    "version",
                    format!("{} peer over NodePort: {m}", nodeport.join(", ")),
                )
            })?;
        }
        let key = self.license_key_of(&now.row.id, &now.base).await?;
        let from_chart = chart.is_some().then(|| now.setup.chart.clone());
        let setup = SetupSpec {
            clusters,
            istio_version: to,
            chart: chart.unwrap_or_else(|| now.setup.chart.clone()),
            ..now.setup.clone()
        };
        Ok((
            UpgradeSpec {
                mesh: mesh.job_id.clone(),
                from_version: mesh.istio_version.clone(),
                setup,
                batch: req.batch,
                from_chart,
            },
            key,
        ))
    }

    /// The chart an upgrade moves the operator to (None: it keeps `from`). The console's chart must be
    /// readable (a local chart is read with helm); a version must be a chart version, of an OCI or repository
    /// chart, and not older than the one the mesh runs.
    async fn operator_target(
        &self,
        op: &OperatorMove,
        from: &Chart,
        mesh_job: &str,
    ) -> Result<Option<Chart>> {
        let invalid = |message: String| Error::Invalid {
            field: "operator",
            message,
        };
        let helm = &self.inner.helm;
        // Never back: compared by the charts' own versions (a local chart's from its Chart.yaml, when the file
        // is still there) — against the mesh's chart, and against the chart an unfinished upgrade already moved
        // some of its clusters to.
        let pending = match self.unfinished_upgrade(mesh_job).await? {
            Some(j) => spec_of::<UpgradeSpec>(&j)
                .ok()
                .filter(|s| s.from_chart.is_some())
                .map(|s| s.setup.chart),
            None => None,
        };
        let mut running = vec![];
        for c in std::iter::once(from).chain(pending.as_ref()) {
            let v = match &c.version {
                Some(v) => Some(v.clone()),
                None => match self.helm_chart(c).await {
                    Ok(local) => mesh::operator::chart_meta(helm, &local)
                        .await
                        .ok()
                        .map(|(_, v)| v),
                    Err(_) => None,
                },
            };
            running.extend(v);
        }
        let older = |to: &str| -> Result<()> {
            for cur in &running {
                let (Some(c), Some(n)) = (chart_version(cur), chart_version(to)) else {
                    continue;
                };
                if n < c {
                    return Err(invalid(format!(
                        "{to} is older than the operator chart the mesh runs ({cur}): an upgrade never moves the \
                         operator back; to undo an operator upgrade, follow Solo's release notes by hand"
                    )));
                }
            }
            Ok(())
        };
        match op {
            OperatorMove::Keep => Ok(None),
            OperatorMove::ConsoleChart => {
                let to = self.console_chart().await?;
                // The same versioned chart, or the same uploaded bytes: nothing would move.
                if to == *from && (to.version.is_some() || to.reference.starts_with(UPLOADED)) {
                    return Err(invalid(format!(
                        "the operator already runs the console's chart, {}",
                        chart_text(&to)
                    )));
                }
                let (_, version) = mesh::operator::chart_meta(helm, &self.helm_chart(&to).await?)
                    .await
                    .map_err(|e| {
                        invalid(format!("the console's chart {}: {e}", chart_text(&to)))
                    })?;
                older(&version)?;
                Ok(Some(to))
            }
            OperatorMove::Version { version } => {
                let v = version.trim();
                let Some(current) = &from.version else {
                    return Err(invalid(format!(
                        "the operator runs the local chart {}, which has no versions to choose from: put the new \
                         chart on the console's machine, start the console with --operator-chart pointing at it, \
                         and move the operator to the console's chart",
                        from.reference
                    )));
                };
                if chart_version(v).is_none() {
                    return Err(invalid(format!(
                        "{v:?} is not a chart version such as 0.4.3 or 1.0.0-beta.1"
                    )));
                }
                // The same version however written (`v1.0.0`, `1.0.0+build.2`): nothing would move.
                if v == current.as_str() || chart_version(v) == chart_version(current) {
                    return Err(invalid(format!(
                        "the operator already runs chart version {v}"
                    )));
                }
                older(v)?;
                Ok(Some(Chart {
                    reference: from.reference.clone(),
                    version: Some(v.to_string()),
                }))
            }
        }
    }

    /// What an upgrade changes in each cluster, in rollout order: the operator's release (the chart it runs
    /// now, read from helm, against the one it moves to) and the control plane's objects diffed against the
    /// live ones (the ServiceMeshController's version), with the commands by hand.
    pub async fn upgrade_plan(&self, req: &UpgradeRequest) -> Result<Vec<ClusterPlan>> {
        let (spec, key) = self.upgrade_spec(req).await?;
        let settings = self
            .settings_of(&spec.setup, license_of(&spec.setup, key))
            .await?;
        let wanted = match &spec.from_chart {
            Some(_) => Some(
                mesh::operator::chart_label(
                    &self.inner.helm,
                    &self.helm_chart(&spec.setup.chart).await?,
                )
                .await
                .map_err(|e| Error::Conflict(e.to_string()))?,
            ),
            None => None,
        };
        let runs = spec.setup.clusters.iter().map(|c| {
            let (settings, spec, wanted) = (&settings, &spec, &wanted);
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
                let mut steps = vec![];
                if let Some(wanted) = wanted {
                    let install = c.operator_install(settings);
                    steps.push(PlanStep {
                        title: "Upgrade the Gloo Operator".into(),
                        objects: vec![self.operator_release_plan(&t, &install, wanted).await],
                        commands: vec![mesh::operator::command(&install, c.name.as_str())],
                    });
                }
                if spec.moves_version() {
                    let mut objects = vec![];
                    for obj in setup::objects(Step::ControlPlane, c, settings) {
                        objects.push(crate::ssr::registry::plan_object(
                            setup::diff_object(&t.client, &obj).await,
                        ));
                    }
                    steps.push(PlanStep {
                        title: "Upgrade the control plane".into(),
                        objects,
                        commands: setup::commands(Step::ControlPlane, c, settings),
                    });
                }
                ClusterPlan {
                    cluster: c.name.to_string(),
                    error: None,
                    steps,
                }
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// The operator's release in one cluster as a plan object: the chart helm lists now against `wanted`
    /// (`name-version`), with the values the release gets (no secret: the license is a Secret reference).
    async fn operator_release_plan(
        &self,
        t: &Target,
        install: &mesh::operator::Install,
        wanted: &str,
    ) -> PlanObject {
        let yaml = mesh::operator::release_yaml(install);
        let (change, detail) = match mesh::operator::release(&t.client).await {
            Ok(Some((now, status))) if now == wanted && status == "deployed" => {
                ("unchanged", Some(format!("{now} is deployed already")))
            }
            Ok(Some((now, status))) => ("update", Some(format!("{now} ({status}) → {wanted}"))),
            Ok(None) => (
                "create",
                Some(format!(
                    "no gloo-operator release in gloo-mesh; {wanted} is installed"
                )),
            ),
            Err(e) => (
                "unknown",
                Some(format!("helm could not list the release: {e}")),
            ),
        };
        PlanObject {
            kind: "HelmRelease".into(),
            namespace: Some(mesh::objects::OPERATOR_NAMESPACE.into()),
            name: mesh::operator::RELEASE.into(),
            yaml,
            change: change.into(),
            detail,
        }
    }

    /// Starts an upgrade job; returns its id.
    pub async fn start_upgrade(
        &self,
        spec: UpgradeSpec,
        license_key: Option<String>,
        user: &str,
    ) -> Result<String> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let secret = JobSecrets::sealed_bytes(license_key);
        let what = format!(
            "upgrade {} on {} ({} at a time)",
            spec.what(),
            spec.setup
                .clusters
                .iter()
                .map(|c| c.name.to_string())
                .collect::<Vec<_>>()
                .join(", then "),
            spec.batch
        );
        self.start_job_sealed(
            UPGRADE_KIND,
            &json,
            Some(&secret),
            &spec.steps(),
            &spec.setup.locked(),
            user,
            &what,
        )
        .await
    }

    /// Runs an upgrade: batch after batch in the rollout order; within a batch, clusters in parallel; the
    /// rollout stops after a batch where a cluster failed.
    pub(super) async fn run_upgrade(&self, id: &str, job: &JobRow) -> Result<()> {
        let spec: UpgradeSpec = spec_of(job)?;
        let (settings, root) = self.settings_and_root(id, &spec.setup).await?;
        let holders = self.holders_of_mesh(&spec.setup).await?;
        let done = self.done_steps(id).await?;
        let size = spec.batch.max(1);
        for (i, batch) in spec.setup.clusters.chunks(size).enumerate() {
            let runs = batch.iter().map(|c| {
                let (settings, root, holders, done, spec) =
                    (&settings, &root, &holders, &done, &spec);
                async move {
                    self.upgrade_cluster(id, c, settings, root, holders, done, spec)
                        .await
                }
            });
            let mut failed = vec![];
            for (c, ok) in batch.iter().zip(futures::future::join_all(runs).await) {
                if !ok? {
                    failed.push(c.name.to_string());
                }
            }
            if !failed.is_empty() {
                // The clusters after this batch in the rollout order are not touched.
                let rest: Vec<String> = spec.setup.clusters
                    [((i + 1) * size).min(spec.setup.clusters.len())..]
                    .iter()
                    .map(|c| c.name.to_string())
                    .collect();
                let kept = spec.kept();
                return self
                    .stop_rollout(
                        id,
                        &format!("the rollout stopped at {}", failed.join(", ")),
                        &rest,
                        (&format!("keeps {kept}"), &format!("keep {kept}")),
                    )
                    .await;
            }
        }
        self.finish(id, "succeeded").await
    }

    /// One cluster of the rollout: its operator (when the chart moves), its control plane (when the version
    /// does), then its checks. Returns whether all passed.
    #[allow(clippy::too_many_arguments)]
    async fn upgrade_cluster(
        &self,
        id: &str,
        c: &ClusterSetup,
        settings: &Settings,
        root: &RootCa,
        holders: &BTreeSet<ClusterName>,
        done: &BTreeSet<(String, String)>,
        spec: &UpgradeSpec,
    ) -> Result<bool> {
        let name = c.name.to_string();
        let is_done = |s: &str| done.contains(&(name.clone(), s.to_string()));
        let Some(first) = spec.cluster_steps().into_iter().find(|s| !is_done(s)) else {
            return Ok(true);
        };
        let t = match self.target(&c.name).await {
            Ok(t) => t,
            Err(e) => {
                let msg = format!(
                    "cluster {name} (step: {}): {e}. Check it under Clusters (Re-test), then retry this cluster",
                    step_title(first).unwrap_or_default().to_lowercase()
                );
                self.set_step(id, &name, first, "failed", None, Some(&msg))
                    .await?;
                return Ok(false);
            }
        };
        let steps = [
            (
                OPERATOR,
                Step::Operator,
                spec.from_chart.is_some(),
                format!("chart {}", chart_text(&spec.setup.chart)),
            ),
            (
                CONTROL_PLANE,
                Step::ControlPlane,
                spec.moves_version(),
                format!("Istio {}", spec.setup.istio_version),
            ),
        ];
        for (key, step, wanted, what) in steps {
            if !wanted || is_done(key) {
                continue;
            }
            let (t, what) = (&t, &what);
            let outcome = self
                .job_step(id, &name, key, |progress| async move {
                    setup::run_step(step, t, c, settings, root, &*progress)
                        .await
                        .map(|o| setup::Outcome {
                            summary: format!("{what}: {}", o.summary),
                            ..o
                        })
                })
                .await?;
            if let Err(e) = outcome {
                self.event(id, Some(&name), Some(key), "error", &e).await;
                return Ok(false);
            }
        }
        let wait = Duration::from_secs(spec.setup.verify_secs);
        self.verify_cluster(id, &name, VERIFY, t, holders, wait)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_versions_are_three_numbers_and_an_optional_suffix() {
        let v = |s: &str| chart_version(s).unwrap_or_else(|| panic!("{s:?} is a version"));
        assert_eq!(v("0.4.3").core, (0, 4, 3));
        assert_eq!(v("v1.2.10-beta.1").core, (1, 2, 10));
        assert_eq!(v("2.0.0+build.5").core, (2, 0, 0));
        for bad in [
            "",
            "0.4",
            "0.4.3.1",
            "0.4.x",
            "0.4.3-",
            "0.4.3 ",
            "0.4.3;rm",
            "-1.0.0",
            "...",
            "1.0.0-beta..1",
            "1.0.0+",
            "1.0.0-rc.1+b;x",
        ] {
            assert_eq!(chart_version(bad), None, "{bad:?}");
        }
        // SemVer precedence, lowest first: numbers, not text; a pre-release below its release; identifiers
        // one by one, numbers below words, a longer set above its prefix; build metadata ignored.
        let ordered = [
            "0.4.9",
            "0.4.10",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1-0",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.0.0+build.1"), v("1.0.0+build.2"));
        assert_eq!(v("v1.0.0"), v("1.0.0"));
    }
}
