//! What is asked of the console before a job runs, and what reads clusters without changing them: a setup
//! request checked and turned into a job's spec, its preflight (recorded), its plan, the checks, the
//! clusters' chains of trust, and peer gateways exported for (or imported from) a cluster's owner.

use std::collections::BTreeMap;

use super::*;

impl Jobs {
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
                    trusted_roots: vec![],
                }),
            }
        }
        let mut all = mesh::checks::check_all(reachable).await;
        all.extend(unreachable);
        report_of(all)
    }

    /// Each cluster's root of trust as its `cacerts` Secret holds it (public certificates only: the key is
    /// never read out of the Secret's parse), judged against its mesh's root (a member) or else the console's;
    /// for a cluster without `cacerts`, what applying will write. Clusters are read concurrently; one that
    /// fails is named alone.
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
        // A mesh's member is judged against the mesh's root (after its rotations), which need not be the one
        // new setups use.
        let mut mesh_roots: BTreeMap<String, String> = BTreeMap::new();
        for m in self.meshes().await? {
            if !m
                .members
                .iter()
                .any(|c| names.iter().any(|n| n.as_str() == c))
            {
                continue;
            }
            let Some(row) = self.inner.store.job(&m.job_id).await? else {
                continue;
            };
            let Ok(base) = serde_json::from_str::<SetupSpec>(&row.spec) else {
                continue;
            };
            let id = self.mesh_root_id(&m.job_id, &base.root_id).await?;
            if let Some(r) = self.inner.store.root_row(&id).await? {
                for c in m.members {
                    mesh_roots.insert(c, r.fingerprint.clone());
                }
            }
        }
        let at = now();
        let runs = names.iter().map(|name| {
            let signer = signer.as_str();
            let chosen = mesh_roots
                .get(name.as_str())
                .map(String::as_str)
                .or(chosen.as_deref());
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

    /// The preflight of a setup: each cluster's own findings (concurrently; an unreachable cluster fails
    /// alone) with the findings across the selection.
    pub async fn preflight(&self, req: &SetupRequest) -> Result<Vec<PreflightView>> {
        let (spec, key) = self.checked_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key)).await?;
        let fleet = mesh::preflight::fleet(&spec.clusters, &settings);
        Ok(self.preflight_views(&spec.clusters, &settings, fleet).await)
    }

    /// The preflight of each of `clusters` (probed concurrently; an unreachable cluster fails alone), with
    /// the findings across clusters in `fleet`.
    pub(super) async fn preflight_views(
        &self,
        clusters: &[ClusterSetup],
        settings: &Settings,
        mut fleet: BTreeMap<ClusterName, Vec<mesh::preflight::Finding>>,
    ) -> Vec<PreflightView> {
        use mesh::checks::Status;
        use mesh::preflight::{ClusterPreflight, Finding};
        let runs = clusters.iter().map(|c| async move {
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
        });
        futures::future::join_all(runs)
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
            .collect()
    }

    /// The preflight of `req`, recorded under the request's hash so that starting exactly this setup soon
    /// after needs no second run (see [`Jobs::preflight_failures`]).
    pub async fn preflight_recorded(
        &self,
        req: &SetupRequest,
        user: &str,
    ) -> Result<Vec<PreflightView>> {
        let views = self.preflight(req).await?;
        self.record_preflight(&request_hash(req), user, &views)
            .await?;
        Ok(views)
    }

    /// The failed findings of the preflight of exactly `req`: the one recorded within [`PREFLIGHT_FRESH`],
    /// or one run now. Starting a setup uses this, so the server — not the browser — knows whether the
    /// setup goes on despite failures.
    pub async fn preflight_failures(&self, req: &SetupRequest, user: &str) -> Result<Vec<String>> {
        if let Some(list) = self.fresh_preflight(&request_hash(req)).await? {
            return Ok(list);
        }
        let views = self.preflight_recorded(req, user).await?;
        Ok(failures_of(&views))
    }

    /// Records on a job just started what its preflight found: passed, or failures an admin overrode (who,
    /// why and what), or an admin's note on a passing one.
    pub async fn note_preflight(
        &self,
        id: &str,
        user: &str,
        overridden: Option<String>,
        failures: &[String],
    ) {
        match (overridden, failures.is_empty()) {
            (Some(reason), false) => {
                tracing::warn!(job = %id, user, "preflight failures overridden");
                self.record(
                    id,
                    "warn",
                    &format!(
                        "preflight failures overridden by {user}: {reason} — overridden: {}",
                        failures.join("; ")
                    ),
                )
                .await;
            }
            (Some(reason), true) => {
                self.record(
                    id,
                    "info",
                    &format!("the preflight passed; {user} noted: {reason}"),
                )
                .await;
            }
            (None, _) => self.record(id, "info", "the preflight passed").await,
        }
    }

    /// Records a preflight's failed findings under the hash of what was asked.
    pub(super) async fn record_preflight(
        &self,
        hash: &str,
        user: &str,
        views: &[PreflightView],
    ) -> Result<()> {
        let failures = serde_json::to_string(&failures_of(views)).unwrap_or_else(|_| "[]".into());
        self.inner
            .store
            .record_preflight(hash, now(), user, &failures)
            .await?;
        Ok(())
    }

    /// The failed findings of a preflight recorded under `hash` within [`PREFLIGHT_FRESH`], if there is one.
    pub(super) async fn fresh_preflight(&self, hash: &str) -> Result<Option<Vec<String>>> {
        if let Some((at, failures)) = self.inner.store.preflight(hash).await?
            && now() - at <= PREFLIGHT_FRESH.as_secs() as i64
            && let Ok(list) = serde_json::from_str::<Vec<String>>(&failures)
        {
            return Ok(Some(list));
        }
        Ok(None)
    }

    /// What a setup would change on each cluster (server-side dry runs; nothing is written).
    pub async fn plan(&self, req: &SetupRequest) -> Result<Vec<ClusterPlan>> {
        let (spec, key) = self.checked_spec(req).await?;
        let settings = self.settings_of(&spec, license_of(&spec, key)).await?;
        let mut plans = self.cluster_plans(&spec.clusters, &settings).await;
        self.add_link_and_check_steps(&spec, &mut plans).await;
        Ok(plans)
    }

    /// Each of `clusters`' setup steps, its objects compared with the cluster (server-side dry runs).
    pub(super) async fn cluster_plans(
        &self,
        clusters: &[ClusterSetup],
        settings: &Settings,
    ) -> Vec<ClusterPlan> {
        let runs = clusters.iter().map(|c| async move {
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
                            .map(crate::ssr::registry::plan_object)
                            .collect(),
                    })
                    .collect(),
            }
        });
        futures::future::join_all(runs).await
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
        let mut clusters =
            with_settings(clusters, &req.settings, &req.per_cluster, &req.clusters).await?;
        // The guide's recommendation for fresh installs (§9 P15): istiod ignores legacy remote secrets, so
        // they cannot mix with peering. A user who keeps them sets the variable to false in the istiod
        // environment. (A running mesh's settings change keeps what it runs.)
        for c in &mut clusters {
            c.istiod_env
                .entry(crate::model::LEGACY_MULTICLUSTER_ENV.into())
                .or_insert_with(|| "true".into());
        }
        Ok((
            SetupSpec {
                clusters,
                istio_version: req.istio_version.trim().to_string(),
                data_plane: data_plane_of(req.eastwest),
                peering,
                chart: self.console_chart().await?,
                license_secret_ref,
                watch_namespaces: vec![],
                root_id: String::new(),
                verify_secs: 300,
                members: vec![],
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
}

/// `clusters` with a request's settings written into them (a setup's, or a running mesh's change): the settings
/// checked first (fields named `shared.<field>` and `<cluster>.<field>`, `chosen` the clusters they may name),
/// then each cluster's shared settings overridden by its own and applied. The settings hold YAML typed by the
/// user (the extensions ConfigMap): parsed on the blocking pool (mesh::yaml bounds its size as expanded).
pub(super) async fn with_settings(
    clusters: Vec<ClusterSetup>,
    settings: &crate::model::MeshSettings,
    per_cluster: &BTreeMap<ClusterName, crate::model::ClusterSettings>,
    chosen: &[ClusterName],
) -> Result<Vec<ClusterSetup>> {
    let invalid = |message: String| Error::Invalid {
        field: "settings",
        message,
    };
    let problems = crate::model::settings_problems(settings, per_cluster, chosen);
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect();
        return Err(invalid(list.join("; ")));
    }
    let (settings, per_cluster) = (settings.clone(), per_cluster.clone());
    mesh::yaml::parse_off_runtime(move || {
        let mut out = clusters;
        for c in &mut out {
            let over = per_cluster.get(&c.name);
            let m = match over {
                Some(o) => settings.overridden_by(&o.mesh),
                None => settings.clone(),
            };
            apply_settings(c, &m, over).map_err(|msg| format!("{}: {msg}", c.name))?;
        }
        Ok::<_, String>(out)
    })
    .await
    .map_err(invalid)
}

/// A cluster's control-plane settings (validated) written into what the engine applies: the
/// ServiceMeshController's fields, istiod's environment, and the extensions ConfigMap's further keys —
/// discovery selectors become the `stable` key, the raw YAML adds `stable` or `values.istio-ztunnel`.
///
/// `over` is the cluster's own part of the request: its east-west address override and variant (`None` keeps
/// the setup's shared variant).
pub(super) fn apply_settings(
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
    c.mesh.install_namespace = m.install_namespace.clone();
    c.mesh.image_repository = m.image_repository.clone();
    c.mesh.image_secrets = m.image_secrets.clone();
    c.mesh.repository_secrets = m.repository_secrets.clone();
    c.mesh.repository_insecure_skip_verify = m.repository_insecure_skip_verify;
    c.mesh.traffic_capture_mode = m.traffic_capture_mode.clone();
    c.cni = mesh::objects::CniDirs {
        conf_dir: m.cni_conf_dir.clone(),
        bin_dir: m.cni_bin_dir.clone(),
    };
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

impl Jobs {
    /// Keeps the checks a job ran as a check report, as a run from the Checks page is kept, and tells the
    /// topology (of every replica) to read it: a setup ending "every check passes" shows its clusters'
    /// licenses at once rather than "not read yet".
    pub(crate) async fn keep_checks(&self, job: &str, results: Vec<mesh::checks::ClusterChecks>) {
        let mut report = report_of(results);
        let id = random_id();
        let by = format!("job {job}");
        report.id = Some(id.clone());
        report.ran_by = Some(by.clone());
        let kept = match serde_json::to_string(&report) {
            Ok(json) => self
                .inner
                .store
                .insert_check_report(&id, report.ran_at, &by, &json)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match kept {
            Ok(()) => self.notify(Notice::Checked { report: id }).await,
            Err(e) => tracing::warn!(job, "keeping the checks of the job: {e}"),
        }
    }
}

/// A report of check results (sorted by cluster), as the Checks page shows it and the topology reads it.
pub(crate) fn report_of(mut all: Vec<mesh::checks::ClusterChecks>) -> ChecksReport {
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
