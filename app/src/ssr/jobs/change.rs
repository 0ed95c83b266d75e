//! Day two — changing the settings of a running mesh: the same settings a setup takes (the
//! ServiceMeshController's fields, the extensions ConfigMap, the east-west variant and address), edited from
//! what the mesh runs now, planned as a server-side dry-run diff per cluster and applied one cluster at a time.
//! Each changed cluster runs only the steps whose objects change; when its east-west gateway changes, every
//! member holding a peer gateway for it is linked again (the peer gateway is built from the gateway's live
//! address and variant, §2.1); then that cluster's checks. The rollout stops at the first cluster that fails,
//! and the clusters after it keep the settings they run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::model::{ClusterSettings, MeshSettings, SettingsChangeRequest};

/// The job kind of a settings change.
pub const CHANGE_KIND: &str = "change-settings";
/// How many recent jobs are searched for a mesh's settings changes.
pub(super) const CHANGE_JOBS: i64 = 500;
const CONTROL_PLANE: &str = "change:control-plane";
const EAST_WEST: &str = "change:east-west";
const RELINK: &str = "change:relink";
const VERIFY: &str = "change:verify";

/// What a settings change does to one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterChange {
    pub cluster: ClusterName,
    /// Its ServiceMeshController or extensions ConfigMap changes.
    pub control_plane: bool,
    /// Its east-west gateway changes (variant, address override).
    pub east_west: bool,
    /// The members holding a peer gateway for it, linked again after its gateway changed.
    pub relink: Vec<ClusterName>,
}

/// What a settings change job does. Stored as JSON; the license key (the control plane's settings need it)
/// is in the job's sealed secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSpec {
    /// The mesh (its latest setup or growth job).
    pub mesh: String,
    /// The mesh with its new settings: `clusters` every member (what the mesh runs once the job succeeds).
    pub setup: SetupSpec,
    /// The clusters that change, in rollout order.
    pub changes: Vec<ClusterChange>,
}

impl ChangeSpec {
    fn steps(&self) -> Vec<(String, String)> {
        self.changes
            .iter()
            .flat_map(|c| {
                let name = c.cluster.to_string();
                [
                    (c.control_plane, CONTROL_PLANE),
                    (c.east_west, EAST_WEST),
                    (c.east_west && !c.relink.is_empty(), RELINK),
                    (true, VERIFY),
                ]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(move |(_, s)| (name.clone(), s.to_string()))
            })
            .collect()
    }
}

pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    (kind == CHANGE_KIND)
        .then(|| serde_json::from_str::<ChangeSpec>(spec).ok())
        .flatten()
        .map(|s| s.setup.locked())
}

pub(crate) fn step_title(key: &str) -> Option<String> {
    match key {
        CONTROL_PLANE => Some("Change the control plane".into()),
        EAST_WEST => Some("Change the east-west gateway".into()),
        RELINK => Some("Link its peers again".into()),
        VERIFY => Some("Checks after the change".into()),
        _ => None,
    }
}

/// A cluster's settings as the form shows them (the inverse of `apply_settings`).
pub(super) fn settings_of_cluster(c: &ClusterSetup) -> MeshSettings {
    MeshSettings {
        distribution: c.mesh.distribution.clone(),
        scaling_profile: c.mesh.scaling_profile.clone(),
        on_conflict: c.mesh.on_conflict.clone(),
        trust_domain: c.mesh.trust_domain.clone(),
        install_namespace: c.mesh.install_namespace.clone(),
        image_repository: c.mesh.image_repository.clone(),
        image_secrets: c.mesh.image_secrets.clone(),
        repository_secrets: c.mesh.repository_secrets.clone(),
        repository_insecure_skip_verify: c.mesh.repository_insecure_skip_verify,
        istiod_env: c.istiod_env.clone(),
        traffic_capture_mode: c.mesh.traffic_capture_mode.clone(),
        cni_conf_dir: c.cni.conf_dir.clone(),
        cni_bin_dir: c.cni.bin_dir.clone(),
        discovery_selectors: vec![],
        extensions_yaml: mesh::objects::extensions_yaml_text(&c.extensions),
    }
}

/// What every cluster shares: a field is shared when all clusters hold the same value, an istiod variable when
/// all set it alike. Each cluster's override is what it holds beyond that, so `shared.overridden_by(own)` gives
/// back exactly its settings.
pub(super) fn split_shared(all: &[MeshSettings]) -> (MeshSettings, Vec<MeshSettings>) {
    let Some(first) = all.first() else {
        return (MeshSettings::default(), vec![]);
    };
    fn same<T: PartialEq + Clone + Default>(
        all: &[MeshSettings],
        f: impl Fn(&MeshSettings) -> &T,
    ) -> T {
        let v = f(&all[0]);
        if all.iter().all(|s| f(s) == v) {
            v.clone()
        } else {
            T::default()
        }
    }
    let env: BTreeMap<String, String> = first
        .istiod_env
        .iter()
        .filter(|(k, v)| all.iter().all(|s| s.istiod_env.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let shared = MeshSettings {
        distribution: same(all, |s| &s.distribution),
        scaling_profile: same(all, |s| &s.scaling_profile),
        on_conflict: same(all, |s| &s.on_conflict),
        trust_domain: same(all, |s| &s.trust_domain),
        install_namespace: same(all, |s| &s.install_namespace),
        image_repository: same(all, |s| &s.image_repository),
        image_secrets: same(all, |s| &s.image_secrets),
        repository_secrets: same(all, |s| &s.repository_secrets),
        repository_insecure_skip_verify: same(all, |s| &s.repository_insecure_skip_verify),
        istiod_env: env.clone(),
        traffic_capture_mode: same(all, |s| &s.traffic_capture_mode),
        cni_conf_dir: same(all, |s| &s.cni_conf_dir),
        cni_bin_dir: same(all, |s| &s.cni_bin_dir),
        discovery_selectors: vec![],
        extensions_yaml: same(all, |s| &s.extensions_yaml),
    };
    let own = all
        .iter()
        .map(|s| {
            let differs =
                |a: &Option<String>, b: &Option<String>| (a != b).then(|| a.clone()).flatten();
            MeshSettings {
                distribution: differs(&s.distribution, &shared.distribution),
                scaling_profile: differs(&s.scaling_profile, &shared.scaling_profile),
                on_conflict: differs(&s.on_conflict, &shared.on_conflict),
                trust_domain: differs(&s.trust_domain, &shared.trust_domain),
                install_namespace: differs(&s.install_namespace, &shared.install_namespace),
                image_repository: differs(&s.image_repository, &shared.image_repository),
                image_secrets: if s.image_secrets == shared.image_secrets {
                    vec![]
                } else {
                    s.image_secrets.clone()
                },
                repository_secrets: if s.repository_secrets == shared.repository_secrets {
                    vec![]
                } else {
                    s.repository_secrets.clone()
                },
                repository_insecure_skip_verify: (s.repository_insecure_skip_verify
                    != shared.repository_insecure_skip_verify)
                    .then_some(s.repository_insecure_skip_verify)
                    .flatten(),
                istiod_env: s
                    .istiod_env
                    .iter()
                    .filter(|(k, _)| !env.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                traffic_capture_mode: differs(
                    &s.traffic_capture_mode,
                    &shared.traffic_capture_mode,
                ),
                cni_conf_dir: differs(&s.cni_conf_dir, &shared.cni_conf_dir),
                cni_bin_dir: differs(&s.cni_bin_dir, &shared.cni_bin_dir),
                discovery_selectors: vec![],
                extensions_yaml: if s.extensions_yaml == shared.extensions_yaml {
                    String::new()
                } else {
                    s.extensions_yaml.clone()
                },
            }
        })
        .collect();
    (shared, own)
}

/// A step's objects as text, to tell whether they change.
fn objects(step: Step, c: &ClusterSetup, settings: &Settings) -> Vec<String> {
    setup::objects(step, c, settings)
        .into_iter()
        .map(|v| v.to_string())
        .collect()
}

fn eastwest_of(d: DataPlane) -> EastWest {
    match d {
        DataPlane::LoadBalancer => EastWest::LoadBalancer,
        DataPlane::NodePort => EastWest::NodePort,
    }
}

impl Jobs {
    /// The settings a mesh runs now, as the change form starts from: what all members share, and each
    /// member's own values, east-west variant and address.
    pub async fn current_settings(&self, mesh_id: &str) -> Result<SettingsChangeRequest> {
        check_mesh_id(mesh_id)?;
        let now = self.mesh_now(mesh_id).await?;
        let all: Vec<MeshSettings> = now.setup.clusters.iter().map(settings_of_cluster).collect();
        let (shared, own) = split_shared(&all);
        let per_cluster = now
            .setup
            .clusters
            .iter()
            .zip(own)
            .map(|(c, mesh)| {
                (
                    c.name.clone(),
                    ClusterSettings {
                        mesh,
                        address_override: c.address_override.clone(),
                        eastwest: c.data_plane.map(eastwest_of),
                    },
                )
            })
            .filter(|(_, s)| *s != ClusterSettings::default())
            .collect();
        Ok(SettingsChangeRequest {
            mesh: now.mesh.job_id,
            eastwest: eastwest_of(now.setup.data_plane),
            settings: shared,
            per_cluster,
        })
    }

    /// A settings change checked: the mesh runs with no unfinished change, upgrade or rotation of its own; the
    /// settings are valid (as a setup's) for its members; trust domains stay (workload identities and peers
    /// name them); NodePort needs a version that has it; something changes. Returns the spec and the license
    /// key to seal with it.
    pub async fn change_spec(
        &self,
        req: &SettingsChangeRequest,
    ) -> Result<(ChangeSpec, Option<String>)> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        check_mesh_id(&req.mesh)?;
        let now = self.mesh_now(&req.mesh).await?;
        // A change that stopped halfway: its clusters may run its settings or the ones before it, so a new
        // change applies wherever the wanted settings differ from either (which also rolls it back).
        let halfway = match self.newest_change(&now.mesh.job_id, false).await? {
            Some((open, _)) if open.state == "running" => {
                return Err(Error::Conflict(format!(
                    "job {} is changing this mesh's settings now: follow it on its page",
                    open.id
                )));
            }
            Some((open, spec)) if open.state != "succeeded" => Some(spec),
            _ => None,
        };
        if let Some(open) = self.unfinished_upgrade(&now.mesh.job_id).await? {
            return Err(Error::Conflict(format!(
                "job {} upgrading this mesh is {}: finish it first (retry it from its page, or upgrade again), so \
                 the change does not move a cluster back to the version the mesh ran before",
                open.id, open.state
            )));
        }
        if let Some(open) = self.unfinished_rotation(&now.mesh.job_id).await? {
            return Err(Error::Conflict(format!(
                "job {} rotating this mesh's root is {}: finish it first (retry it from its page)",
                open.id, open.state
            )));
        }
        let names: Vec<ClusterName> = now.setup.clusters.iter().map(|c| c.name.clone()).collect();
        let after = super::requests::with_settings(
            now.setup.clusters.clone(),
            &req.settings,
            &req.per_cluster,
            &names,
        )
        .await?;
        let data_plane = data_plane_of(req.eastwest);
        let mut setup = SetupSpec {
            clusters: after,
            data_plane,
            ..now.setup.clone()
        };
        // The trust domain names every workload's identity and is read by peers when linking: it stays.
        let license = license_of(&now.setup, None);
        let (old_settings, new_settings) = (
            self.settings_of(&now.setup, license.clone()).await?,
            self.settings_of(&setup, license).await?,
        );
        for (old, new) in now.setup.clusters.iter().zip(&setup.clusters) {
            // The control plane's namespace stays too: moving istiod is a new install, not a change.
            if old.istio_namespace() != new.istio_namespace() {
                return Err(invalid(
                    "settings",
                    format!(
                        "{}: the install namespace cannot change on a running mesh ({} → {}): istiod, ztunnel and \
                         cacerts would move, which is a new installation. Remove the mesh from the cluster and add \
                         the cluster again to change it",
                        old.name,
                        old.istio_namespace(),
                        new.istio_namespace()
                    ),
                ));
            }
            let (a, b) = (
                old.mesh_spec(&old_settings).trust_domain,
                new.mesh_spec(&new_settings).trust_domain,
            );
            if a != b {
                return Err(invalid(
                    "settings",
                    format!(
                        "{}: the trust domain cannot change on a running mesh ({} → {}): every workload's identity and \
                         every peer's gateway names it. Remove the mesh from the cluster and add the cluster again to \
                         change it",
                        old.name,
                        a.as_deref().unwrap_or("the cluster name"),
                        b.as_deref().unwrap_or("the cluster name")
                    ),
                ));
            }
        }
        let nodeport: Vec<&str> = setup
            .clusters
            .iter()
            .filter(|c| c.data_plane(&new_settings) == DataPlane::NodePort)
            .map(|c| c.name.as_str())
            .collect();
        if !nodeport.is_empty() {
            mesh::preflight::nodeport_rule(&setup.istio_version).map_err(|m| {
                invalid(
                    "settings",
                    format!("{} would peer over NodePort: {m}", nodeport.join(", ")),
                )
            })?;
        }
        let chosen = if matches!(setup.peering, Peering::Manual { .. }) {
            let rows = self.inner.store.list_jobs(CHANGE_JOBS).await?;
            crate::ssr::topology::chosen_links(&rows)
        } else {
            Default::default()
        };
        let halfway = match halfway {
            Some(h) => {
                let settings = self
                    .settings_of(&h.setup, license_of(&h.setup, None))
                    .await?;
                Some((h, settings))
            }
            None => None,
        };
        let differs = |step: Step, old: &ClusterSetup, new: &ClusterSetup| {
            let wanted = objects(step, new, &new_settings);
            objects(step, old, &old_settings) != wanted
                || halfway.as_ref().is_some_and(|(h, settings)| {
                    h.setup
                        .clusters
                        .iter()
                        .find(|c| c.name == new.name)
                        .is_some_and(|c| objects(step, c, settings) != wanted)
                })
        };
        let mut changes = vec![];
        for (old, new) in now.setup.clusters.iter().zip(&setup.clusters) {
            let control_plane = differs(Step::ControlPlane, old, new);
            let east_west = differs(Step::EastWest, old, new);
            if !control_plane && !east_west {
                continue;
            }
            let relink = names
                .iter()
                .filter(|from| {
                    **from != new.name
                        && chosen
                            .get(*from)
                            .and_then(|row| row.get(&new.name))
                            .copied()
                            .unwrap_or(false)
                })
                .cloned()
                .collect();
            changes.push(ClusterChange {
                cluster: new.name.clone(),
                control_plane,
                east_west,
                relink,
            });
        }
        if changes.is_empty() {
            return Err(invalid(
                "settings",
                "nothing changes: these are the settings the mesh runs now".into(),
            ));
        }
        let key = self.license_key_of(&now.row.id, &now.base).await?;
        setup.members = vec![];
        Ok((
            ChangeSpec {
                mesh: now.mesh.job_id,
                setup,
                changes,
            },
            key,
        ))
    }

    /// What a settings change does to each cluster that changes, in rollout order: its control plane's and
    /// east-west gateway's objects diffed against the live ones (server-side dry run), the peers that link to
    /// it again, and the commands by hand.
    pub async fn change_plan(&self, req: &SettingsChangeRequest) -> Result<Vec<ClusterPlan>> {
        let (spec, key) = self.change_spec(req).await?;
        let settings = self
            .settings_of(&spec.setup, license_of(&spec.setup, key))
            .await?;
        let runs = spec.changes.iter().map(|change| {
            let (settings, spec) = (&settings, &spec);
            async move {
                let name = change.cluster.to_string();
                let c = spec.setup.clusters.iter().find(|c| c.name == change.cluster);
                let (t, c) = match (self.target(&change.cluster).await, c) {
                    (Ok(t), Some(c)) => (t, c),
                    (Err(e), _) => {
                        return ClusterPlan {
                            cluster: name,
                            error: Some(e),
                            steps: vec![],
                        };
                    }
                    (_, None) => {
                        return ClusterPlan {
                            cluster: name.clone(),
                            error: Some(format!("{name} is not in the change")),
                            steps: vec![],
                        };
                    }
                };
                let mut steps = vec![];
                for (on, step, title) in [
                    (change.control_plane, Step::ControlPlane, "Change the control plane"),
                    (change.east_west, Step::EastWest, "Change the east-west gateway"),
                ] {
                    if !on {
                        continue;
                    }
                    let mut objects = vec![];
                    for obj in setup::objects(step, c, settings) {
                        objects.push(crate::ssr::registry::plan_object(
                            setup::diff_object(&t.client, &obj).await,
                        ));
                    }
                    steps.push(PlanStep {
                        title: title.into(),
                        objects,
                        commands: setup::commands(step, c, settings),
                    });
                }
                if change.east_west && !change.relink.is_empty() {
                    steps.push(PlanStep {
                        title: format!(
                            "Link its peers again: {} (their peer gateway for {name} is built from its changed gateway)",
                            change
                                .relink
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        objects: vec![],
                        commands: change
                            .relink
                            .iter()
                            .map(|from| {
                                format!(
                                    "istioctl multicluster link --from {from} --to {name} -n {}",
                                    mesh::objects::EASTWEST_NAMESPACE
                                )
                            })
                            .collect(),
                    });
                }
                ClusterPlan {
                    cluster: name,
                    error: None,
                    steps,
                }
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// Starts a settings change job; returns its id.
    pub async fn start_change(
        &self,
        spec: ChangeSpec,
        license_key: Option<String>,
        user: &str,
    ) -> Result<String> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let secret = JobSecrets::sealed_bytes(license_key);
        let what = format!(
            "change the settings of {}",
            spec.changes
                .iter()
                .map(|c| c.cluster.to_string())
                .collect::<Vec<_>>()
                .join(", then ")
        );
        self.start_job_sealed(
            CHANGE_KIND,
            &json,
            Some(&secret),
            &spec.steps(),
            &spec.setup.locked(),
            user,
            &what,
        )
        .await
    }

    /// Runs a settings change: the changed clusters one at a time; stops at the first that fails.
    pub(super) async fn run_change(&self, id: &str, job: &JobRow) -> Result<()> {
        let spec: ChangeSpec = spec_of(job)?;
        let (settings, root) = self.settings_and_root(id, &spec.setup).await?;
        let holders = self.holders_of_mesh(&spec.setup).await?;
        let done = self.done_steps(id).await?;
        let wait = Duration::from_secs(spec.setup.verify_secs);
        for (i, change) in spec.changes.iter().enumerate() {
            let ok = self
                .change_cluster(id, change, &spec, &settings, &root, &holders, &done, wait)
                .await?;
            if !ok {
                let rest: Vec<String> = spec.changes[i + 1..]
                    .iter()
                    .map(|c| c.cluster.to_string())
                    .collect();
                return self
                    .stop_rollout(
                        id,
                        &format!("the change stopped at {}", change.cluster),
                        &rest,
                        ("keeps its settings", "keep their settings"),
                    )
                    .await;
            }
        }
        self.finish(id, "succeeded").await
    }

    /// One cluster of a settings change: its control plane, its east-west gateway, its peers linked again,
    /// then its checks — each only when it changes, each skipped when done. Returns whether all passed.
    #[allow(clippy::too_many_arguments)]
    async fn change_cluster(
        &self,
        id: &str,
        change: &ClusterChange,
        spec: &ChangeSpec,
        settings: &Settings,
        root: &RootCa,
        holders: &BTreeSet<ClusterName>,
        done: &BTreeSet<(String, String)>,
        wait: Duration,
    ) -> Result<bool> {
        let name = change.cluster.to_string();
        let is_done = |s: &str| done.contains(&(name.clone(), s.to_string()));
        let steps: Vec<String> = spec
            .steps()
            .into_iter()
            .filter(|(c, _)| *c == name)
            .map(|(_, s)| s)
            .collect();
        if steps.iter().all(|s| is_done(s)) {
            return Ok(true);
        }
        let c = spec
            .setup
            .clusters
            .iter()
            .find(|c| c.name == change.cluster)
            .ok_or_else(|| Error::Conflict(format!("{name} is not in the change")))?;
        let Some((_, t)) = self.one_cluster(id, &change.cluster, &steps).await? else {
            return Ok(false);
        };
        for (key, step) in [
            (CONTROL_PLANE, Step::ControlPlane),
            (EAST_WEST, Step::EastWest),
        ] {
            if !steps.iter().any(|s| s == key) || is_done(key) {
                continue;
            }
            let t = &t;
            let outcome = self
                .job_step(id, &name, key, |progress| async move {
                    setup::run_step(step, t, c, settings, root, &*progress).await
                })
                .await?;
            if let Err(e) = outcome {
                self.event(id, Some(&name), Some(key), "error", &e).await;
                return Ok(false);
            }
        }
        // The peers linked to it again are checked with it: their peer gateway for it is new.
        let mut peers = vec![];
        if steps.iter().any(|s| s == RELINK) {
            let pending = if is_done(RELINK) { VERIFY } else { RELINK };
            for from in &change.relink {
                match self.target(from).await {
                    Ok(p) => peers.push(p),
                    Err(e) => {
                        let msg = format!(
                            "cluster {from} (step: {}): {e}. Check it under Clusters (Re-test), then retry",
                            super::step_title(pending).to_lowercase()
                        );
                        self.set_step(id, &name, pending, "failed", None, Some(&msg))
                            .await?;
                        return Ok(false);
                    }
                }
            }
        }
        if steps.iter().any(|s| s == RELINK) && !is_done(RELINK) {
            let data_plane = c.data_plane(settings);
            let (t, peers) = (&t, &peers);
            let outcome = self
                .job_step(id, &name, RELINK, |progress| async move {
                    let mut changed = false;
                    for p in peers {
                        progress(format!("{} links to {} again", p.name, t.name));
                        changed |= setup::link(p, t, data_plane).await?.changed;
                    }
                    Ok(setup::Outcome {
                        changed,
                        summary: format!(
                            "{} reach {} through its changed gateway",
                            peers
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                            t.name
                        ),
                    })
                })
                .await?;
            if let Err(e) = outcome {
                self.event(id, Some(&name), Some(RELINK), "error", &e).await;
                return Ok(false);
            }
        }
        if is_done(VERIFY) {
            return Ok(true);
        }
        let targets = std::iter::once(t).chain(peers).collect();
        self.verify_clusters(id, &name, VERIFY, targets, holders, wait)
            .await
    }
}

/// A mesh is named by its job's id.
pub(super) fn check_mesh_id(mesh_id: &str) -> Result<()> {
    if mesh_id.is_empty()
        || mesh_id.len() > 64
        || !mesh_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::Invalid {
            field: "mesh",
            message: "a mesh is named by its job's id (letters, digits and dashes)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(env: &[(&str, &str)], profile: Option<&str>, extensions: &str) -> MeshSettings {
        MeshSettings {
            scaling_profile: profile.map(str::to_string),
            istiod_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extensions_yaml: extensions.into(),
            ..Default::default()
        }
    }

    #[test]
    fn shared_settings_and_overrides_give_back_each_clusters_settings() {
        let all = vec![
            settings(&[("A", "1"), ("B", "1")], Some("Large"), ""),
            settings(
                &[("A", "1"), ("B", "2")],
                Some("Large"),
                "stable: |\n  x: 1\n",
            ),
            settings(&[("A", "1")], None, ""),
        ];
        let (shared, own) = split_shared(&all);
        assert_eq!(
            shared.istiod_env,
            [("A".to_string(), "1".to_string())].into()
        );
        assert_eq!(shared.scaling_profile, None, "not every cluster has it");
        assert_eq!(shared.extensions_yaml, "");
        assert_eq!(own[0].scaling_profile.as_deref(), Some("Large"));
        assert_eq!(
            own[2],
            MeshSettings::default(),
            "the third holds nothing of its own"
        );
        for (s, o) in all.iter().zip(&own) {
            assert_eq!(&shared.overridden_by(o), s);
        }
        let same = vec![all[0].clone(), all[0].clone()];
        let (shared, own) = split_shared(&same);
        assert_eq!(shared, all[0]);
        assert!(own.iter().all(|o| *o == MeshSettings::default()));
    }

    #[test]
    fn a_change_runs_only_the_steps_that_change() {
        let c = |n: &str| ClusterName::new(n).expect("name");
        let spec = ChangeSpec {
            mesh: "m".into(),
            setup: SetupSpec {
                clusters: vec![],
                istio_version: "1.28.1-patch0".into(),
                data_plane: DataPlane::LoadBalancer,
                peering: Peering::Manual { pairs: vec![] },
                chart: Chart::default(),
                license_secret_ref: None,
                watch_namespaces: vec![],
                root_id: "r".into(),
                verify_secs: 60,
                members: vec![],
            },
            changes: vec![
                ClusterChange {
                    cluster: c("a"),
                    control_plane: true,
                    east_west: false,
                    relink: vec![c("b")],
                },
                ClusterChange {
                    cluster: c("b"),
                    control_plane: false,
                    east_west: true,
                    relink: vec![c("a")],
                },
            ],
        };
        let steps: Vec<String> = spec
            .steps()
            .into_iter()
            .map(|(c, s)| format!("{c}/{s}"))
            .collect();
        assert_eq!(
            steps,
            [
                "a/change:control-plane",
                "a/change:verify",
                "b/change:east-west",
                "b/change:relink",
                "b/change:verify"
            ]
        );
        assert!(check_mesh_id("abc-123").is_ok());
        assert!(check_mesh_id("../x").is_err());
    }
}
