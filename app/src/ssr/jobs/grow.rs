//! Day two — growing a running mesh. The meshes are the console's own succeeded setups (a cluster belongs to
//! the newest one that included it); a growth is a setup job whose spec carries the mesh's members: the
//! added clusters get every setup step with the mesh's root of trust, version, settings, license and
//! east-west variant, then they are linked with the members as chosen and everything is verified together.
//! The members are locked while it runs, and nothing of theirs is applied again: only their new peer
//! gateways are written.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::model::{GrowRequest, MeshSummary, grow_pairs};

/// How many of the latest jobs are read to find the meshes.
const MESH_JOBS: i64 = 500;

impl Jobs {
    /// The running meshes, newest first: each succeeded setup or growth none of whose clusters a newer one
    /// (succeeded) took, with the registered clusters outside it (what can be added; the preflight says
    /// whether one still runs another mesh).
    pub async fn meshes(&self) -> Result<Vec<MeshSummary>> {
        let rows = self.inner.store.list_jobs(MESH_JOBS).await?;
        let uploaded = self.inner.store.charts().await?;
        let console_chart = self.console_chart().await?;
        let registered: Vec<String> = self
            .inner
            .store
            .list_clusters()
            .await?
            .into_iter()
            .map(|c| c.name.to_string())
            .collect();
        // Newest first: a cluster belongs to the newest succeeded setup or growth that included it, unless a
        // newer removal took the mesh out of it.
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut removed: BTreeSet<String> = BTreeSet::new();
        // Each mesh's version and operator chart after its newest succeeded upgrade.
        let mut upgraded: BTreeMap<String, (String, Chart)> = BTreeMap::new();
        // Each mesh's shared east-west variant after its newest succeeded settings change.
        let mut changed: BTreeMap<String, DataPlane> = BTreeMap::new();
        let mut meshes = vec![];
        for row in rows.iter().filter(|r| r.state == "succeeded") {
            if row.kind == super::CHANGE_KIND {
                if let Ok(spec) = serde_json::from_str::<super::ChangeSpec>(&row.spec) {
                    changed.entry(spec.mesh).or_insert(spec.setup.data_plane);
                }
                continue;
            }
            if row.kind == UPGRADE_KIND {
                if let Ok(spec) = serde_json::from_str::<UpgradeSpec>(&row.spec) {
                    upgraded
                        .entry(spec.mesh)
                        .or_insert((spec.setup.istio_version, spec.setup.chart));
                }
                continue;
            }
            if row.kind == REMOVE_KIND {
                if let Ok(spec) = serde_json::from_str::<RemoveSpec>(&row.spec)
                    && !taken.contains(spec.cluster.as_str())
                {
                    removed.insert(spec.cluster.to_string());
                }
                continue;
            }
            if row.kind != "setup" {
                continue;
            }
            let Ok(spec) = serde_json::from_str::<SetupSpec>(&row.spec) else {
                continue;
            };
            let all = spec.locked();
            let mut members: Vec<String> = all
                .iter()
                .filter(|m| !removed.contains(*m))
                .cloned()
                .collect();
            if !members.is_empty() && !all.iter().any(|m| taken.contains(m)) {
                members.sort();
                meshes.push((row, spec, members));
            }
            taken.extend(all);
        }
        Ok(meshes
            .into_iter()
            .map(|(row, spec, members)| {
                let candidates: Vec<String> = registered
                    .iter()
                    .filter(|c| !members.contains(c))
                    .cloned()
                    .collect();
                MeshSummary {
                    job_id: row.id.clone(),
                    finished_at: row.finished_at,
                    linking: describe_linking(&spec),
                    manual_links: matches!(spec.peering, Peering::Manual { .. }),
                    members,
                    istio_version: upgraded
                        .get(&row.id)
                        .map_or_else(|| spec.istio_version.clone(), |(v, _)| v.clone()),
                    operator_chart: super::charts::chart_view(
                        upgraded.get(&row.id).map_or(&spec.chart, |(_, c)| c),
                        &uploaded,
                    ),
                    console_chart: super::charts::chart_view(&console_chart, &uploaded),
                    eastwest: match changed.get(&row.id).copied().unwrap_or(spec.data_plane) {
                        DataPlane::LoadBalancer => "LoadBalancer".into(),
                        DataPlane::NodePort => "NodePort".into(),
                    },
                    candidates,
                }
            })
            .collect())
    }

    /// A growth as a setup job's spec: the mesh's latest job must have succeeded; each added cluster is
    /// registered, named once and not in the mesh; it gets the mesh's shared settings (those of the mesh's
    /// first cluster, without its own address or variant), version, chart, root and license. Returns the
    /// license key when the mesh's job holds one (sealed again for the new job).
    pub async fn grow_spec(&self, req: &GrowRequest) -> Result<(SetupSpec, Option<String>)> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        let base = self
            .inner
            .store
            .job(&req.mesh)
            .await?
            .filter(|j| j.kind == "setup")
            .ok_or_else(|| Error::NotFound(format!("mesh {}", req.mesh)))?;
        if base.state != "succeeded" {
            return Err(invalid(
                "mesh",
                format!(
                    "job {} is {}: a mesh grows from a setup that succeeded — retry it first",
                    base.id, base.state
                ),
            ));
        }
        let base_spec: SetupSpec =
            serde_json::from_str(&base.spec).map_err(|e| Error::Invalid {
                field: "mesh",
                message: e.to_string(),
            })?;
        let current = match self.mesh_of(&base.id).await {
            Ok(m) => m,
            Err(e) => {
                let newer = self
                    .meshes()
                    .await?
                    .into_iter()
                    .find(|m| base_spec.locked().iter().any(|c| m.members.contains(c)));
                return Err(match newer {
                    Some(m) => invalid(
                        "mesh",
                        format!(
                            "job {} is no longer the latest of its clusters: grow the mesh of job {} instead",
                            base.id, m.job_id
                        ),
                    ),
                    None => e,
                });
            }
        };
        // The members now, with the settings they run now: a cluster the mesh was removed from is no longer
        // one. Added clusters take the settings all members share — not one member's own overrides (its
        // istiod variables, its trust domain), which the change form shows as that member's.
        let now = self.mesh_now_of(current).await?;
        let current = &now.mesh;
        let mut template = now
            .setup
            .clusters
            .first()
            .cloned()
            .ok_or_else(|| invalid("mesh", format!("job {} has no clusters", base.id)))?;
        let all: Vec<_> = now
            .setup
            .clusters
            .iter()
            .map(super::change::settings_of_cluster)
            .collect();
        let (shared, _) = super::change::split_shared(&all);
        super::requests::apply_settings(&mut template, &shared, None)
            .map_err(|m| invalid("mesh", format!("the settings the members share: {m}")))?;
        let mut members: Vec<ClusterSetup> = now.setup.clusters.clone();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        if req.clusters.is_empty() || req.clusters.len() > 100 {
            return Err(invalid("clusters", "pick 1 to 100 clusters to add".into()));
        }
        let mut clusters: Vec<ClusterSetup> = vec![];
        for name in &req.clusters {
            if clusters.iter().any(|c| &c.name == name) {
                return Err(invalid("clusters", format!("{name} is listed twice")));
            }
            if members.iter().any(|m| &m.name == name) {
                return Err(invalid(
                    "clusters",
                    format!("{name} is already in this mesh"),
                ));
            }
            let record =
                self.inner.store.cluster(name).await?.ok_or_else(|| {
                    invalid("clusters", format!("cluster {name} is not registered"))
                })?;
            let mut c = template.clone();
            c.name = name.clone();
            c.network = record.network;
            c.mesh.cluster = None;
            c.mesh.network = None;
            c.locality = Default::default();
            clusters.push(c);
        }
        let member_names: Vec<ClusterName> = members.iter().map(|m| m.name.clone()).collect();
        let added: Vec<ClusterName> = clusters.iter().map(|c| c.name.clone()).collect();
        let peering = match &base_spec.peering {
            Peering::Manual { .. } => Peering::Manual {
                pairs: grow_pairs(&member_names, &added, &req.links)
                    .map_err(|m| invalid("links", m))?,
            },
            Peering::Automatic { management } => Peering::Automatic {
                management: management.clone(),
            },
        };
        // The mesh's root must still be there (and open with this server's key).
        let root_id = self.mesh_root_id(&base.id, &base_spec.root_id).await?;
        self.root_by_id(&root_id).await?;
        if let Some(open) = self.unfinished_change(&base.id).await? {
            return Err(invalid(
                "mesh",
                format!(
                    "job {} changing this mesh's settings is {}: finish it first (retry it from its page), so the \
                     added clusters get the settings the others run",
                    open.id, open.state
                ),
            ));
        }
        if let Some(open) = self.unfinished_rotation(&base.id).await? {
            return Err(invalid(
                "mesh",
                format!(
                    "job {} rotating this mesh's root is {}: finish it first (retry it from its page), so the \
                     added clusters get the root the others sign with",
                    open.id, open.state
                ),
            ));
        }
        let license_key = self.license_key_of(&base.id, &base_spec).await?;
        Ok((
            SetupSpec {
                clusters,
                // The mesh's version now (after any upgrade).
                istio_version: current.istio_version.clone(),
                data_plane: now.setup.data_plane,
                peering,
                // The operator chart the members run now (after any upgrade), not the one first installed.
                chart: now.setup.chart.clone(),
                license_secret_ref: base_spec.license_secret_ref,
                watch_namespaces: base_spec.watch_namespaces,
                root_id,
                verify_secs: base_spec.verify_secs,
                members,
            },
            license_key,
        ))
    }

    /// The license key a setup job holds sealed (None when it names a license Secret instead).
    pub(super) async fn license_key_of(
        &self,
        job: &str,
        spec: &SetupSpec,
    ) -> Result<Option<String>> {
        if spec.license_secret_ref.is_some() {
            return Ok(None);
        }
        let secrets: JobSecrets = self
            .inner
            .store
            .job_secret(job)
            .await?
            .and_then(|s| self.inner.secrets.open(&job_context(job), &s).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Error::Sealed)?;
        Ok(secrets.license_key)
    }

    /// The preflight of a growth: each added cluster's own findings, with the findings across the whole
    /// mesh (names and networks unique among members and added clusters, versions) and whether it fits the
    /// mesh (its trust domain beside the members').
    pub async fn grow_preflight(&self, req: &GrowRequest) -> Result<Vec<PreflightView>> {
        let (spec, key) = self.grow_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key)).await?;
        let all: Vec<ClusterSetup> = spec.members.iter().chain(&spec.clusters).cloned().collect();
        let mut fleet = mesh::preflight::fleet(&all, &settings);
        for c in &spec.clusters {
            fleet
                .entry(c.name.clone())
                .or_default()
                .push(fits_trust_domain(c, &spec.members, &settings));
        }
        Ok(self.preflight_views(&spec.clusters, &settings, fleet).await)
    }

    /// [`Jobs::grow_preflight`], recorded so that starting exactly this growth soon after needs no second
    /// run.
    pub async fn grow_preflight_recorded(
        &self,
        req: &GrowRequest,
        user: &str,
    ) -> Result<Vec<PreflightView>> {
        let views = self.grow_preflight(req).await?;
        self.record_preflight(&request_hash(req), user, &views)
            .await?;
        Ok(views)
    }

    /// The failed findings of the preflight of exactly this growth (recorded recently, or run now).
    pub async fn grow_preflight_failures(
        &self,
        req: &GrowRequest,
        user: &str,
    ) -> Result<Vec<String>> {
        if let Some(list) = self.fresh_preflight(&request_hash(req)).await? {
            return Ok(list);
        }
        Ok(failures_of(&self.grow_preflight_recorded(req, user).await?))
    }

    /// What a growth would change: every setup step of each added cluster, then, per cluster that will hold
    /// new peer gateways, the links (see `plan_links`), then the checks of every cluster. Members' other
    /// objects are not touched and not listed.
    pub async fn grow_plan(&self, req: &GrowRequest) -> Result<Vec<ClusterPlan>> {
        let (spec, key) = self.grow_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key)).await?;
        let mut plans = self.cluster_plans(&spec.clusters, &settings).await;
        self.add_link_and_check_steps(&spec, &mut plans).await;
        Ok(plans)
    }
}

/// How a mesh's clusters are linked, in words.
fn describe_linking(spec: &SetupSpec) -> String {
    match &spec.peering {
        Peering::Automatic { management } => format!("automatic (management: {management})"),
        Peering::Manual { .. } if !spec.members.is_empty() => {
            "grown: links chosen per added cluster".into()
        }
        Peering::Manual { pairs } => {
            let names: Vec<ClusterName> = spec.clusters.iter().map(|c| c.name.clone()).collect();
            let mut full = setup::full_mesh(&names);
            let mut chosen = pairs.clone();
            full.sort();
            chosen.sort();
            if full == chosen {
                "full mesh".into()
            } else {
                "selected pairs".into()
            }
        }
    }
}

/// Whether an added cluster's trust domain fits the mesh: the members' convention (their own names, or one
/// trust domain shared by all) is what the added cluster gets from the mesh's settings.
fn fits_trust_domain(
    c: &ClusterSetup,
    members: &[ClusterSetup],
    settings: &Settings,
) -> mesh::preflight::Finding {
    use mesh::checks::Status;
    let domain = |s: &ClusterSetup| {
        s.mesh_spec(settings)
            .trust_domain
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| s.name.to_string())
    };
    let mine = domain(c);
    let clash: Vec<String> = members
        .iter()
        .filter(|m| domain(m) == mine && m.name.as_str() != mine)
        .map(|m| m.name.to_string())
        .collect();
    let shared = members.iter().all(|m| domain(m) == mine);
    let (status, message) = if shared && !members.is_empty() {
        (
            Status::Pass,
            format!("{mine}, the trust domain every member uses"),
        )
    } else if clash.is_empty() {
        (
            Status::Pass,
            format!("{mine}, beside the members' own trust domains"),
        )
    } else {
        (
            Status::Fail,
            format!(
                "{mine} is already the trust domain of {} alone",
                clash.join(", ")
            ),
        )
    };
    mesh::preflight::Finding {
        key: "trust-domain".into(),
        title: "Trust domain fits the mesh".into(),
        status,
        message,
        remediation: (status == Status::Fail).then(|| {
            "Give the cluster its own name (registered under another name) or set the mesh's trust domain for every cluster".into()
        }),
    }
}
