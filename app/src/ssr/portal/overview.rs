//! A team's page: everything the portal keeps applied for it, compared with what is live in each cluster
//! (mode, shared, endpoints, ports, drift), its shared services with the name other clusters use, and its
//! requests.

use std::collections::BTreeMap;

use mesh::portal::{self, SCOPE_LABEL};

use super::plan::ports_differ;
use super::{Caller, Portal, owned_of};
use crate::model::{
    AppError, ClusterName, PortalAction, PortalDrift, PortalKind, PortalObjectView, Role,
    SharedServiceView, TeamOverview, TeamScope,
};
use crate::ssr::store::ObjectRow;

impl Portal {
    /// The teams the caller may look at (all of them for platform operators, else their own), each with its
    /// grants and what the portal keeps applied for it, with the drift the watches see: the Topology page's
    /// team filter. Nothing is read from the clusters.
    pub async fn scopes(
        &self,
        caller: &Caller,
        topology: &crate::ssr::topology::Topology,
    ) -> Result<Vec<TeamScope>, AppError> {
        let mine: std::collections::BTreeSet<String> = self
            .team_names_of(&caller.user)
            .await?
            .into_iter()
            .collect();
        let names: Vec<String> = if caller.user.role >= Role::Operator {
            self.store
                .list_teams()
                .await?
                .into_iter()
                .map(|t| t.name)
                .collect()
        } else {
            mine.iter().cloned().collect()
        };
        let mut out = vec![];
        for team in names {
            let rows = self.store.portal_objects(Some(&team)).await?;
            let seen = super::watched_drift(&rows, |c| {
                ClusterName::new(c).ok().and_then(|n| topology.snapshot(&n))
            });
            let objects = rows
                .iter()
                .map(|r| {
                    let service = (!r.service.is_empty()).then(|| r.service.clone());
                    let drift = seen
                        .iter()
                        .find(|d| {
                            d.cluster == r.cluster
                                && d.namespace == r.namespace
                                && d.service == service
                        })
                        .map(|d| d.drift.clone())
                        .unwrap_or_default();
                    PortalDrift {
                        cluster: r.cluster.clone(),
                        namespace: r.namespace.clone(),
                        service,
                        drift,
                    }
                })
                .collect();
            out.push(TeamScope {
                grants: self.store.grants(&team).await?,
                member: mine.contains(&team),
                team,
                objects,
            });
        }
        Ok(out)
    }

    pub async fn overview(&self, caller: &Caller, team: &str) -> Result<TeamOverview, AppError> {
        let view = self.team_view(team).await?;
        let my_role = self.require_viewer_of(&caller.user, team).await?;
        let rows = self.store.portal_objects(Some(team)).await?;
        let mut by_cluster: BTreeMap<String, Vec<ObjectRow>> = BTreeMap::new();
        for r in rows {
            by_cluster.entry(r.cluster.clone()).or_default().push(r);
        }
        let reads = by_cluster
            .iter()
            .map(|(cluster, rows)| self.read_cluster(cluster, rows));
        let mut objects = vec![];
        let mut suffixes: BTreeMap<String, String> = BTreeMap::new();
        for (cluster, list, suffix) in futures::future::join_all(reads).await {
            objects.extend(list);
            if let Some(s) = suffix {
                suffixes.insert(cluster, s);
            }
        }
        let shared = self.shared_services(&objects, &suffixes).await;
        let used_ns: std::collections::BTreeSet<&str> = objects
            .iter()
            .filter(|o| o.service.is_none() && o.applied.iter().any(|l| is_mode_label(l)))
            .map(|o| o.namespace.as_str())
            .collect();
        let services_used = shared.len() as u32;
        let requests = self.requests(&caller.user, Some(team), false).await?;
        let granted: Vec<String> = view.grants.iter().map(|g| g.cluster.clone()).collect();
        let mut timeline = self
            .store
            .audit_records(
                &crate::model::AuditFilter {
                    team: Some(team.to_string()),
                    ..Default::default()
                },
                i64::MAX,
            )
            .await?;
        timeline.drain(..timeline.len().saturating_sub(200));
        let my_teams = self.team_names_of(&caller.user).await?;
        Ok(TeamOverview {
            timeline,
            my_teams,
            namespaces_used: used_ns.len() as u32,
            services_used,
            team: view,
            my_role,
            objects,
            shared,
            requests,
            clusters: granted,
        })
    }

    /// The names of the teams `user` is in.
    async fn team_names_of(&self, user: &crate::ssr::store::User) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .teams_of(&user.username)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// What is live of one cluster's portal objects; with the cluster's global-name suffix.
    async fn read_cluster(
        &self,
        cluster: &str,
        rows: &[ObjectRow],
    ) -> (String, Vec<PortalObjectView>, Option<String>) {
        let base = |r: &ObjectRow| PortalObjectView {
            cluster: r.cluster.clone(),
            namespace: r.namespace.clone(),
            service: (!r.service.is_empty()).then(|| r.service.clone()),
            applied: owned_of(r).describe(),
            exists: false,
            mode: None,
            shared: None,
            endpoints: None,
            ports: vec![],
            drift: vec![],
            error: None,
        };
        let unreadable = |e: String| {
            rows.iter()
                .map(|r| PortalObjectView {
                    error: Some(e.clone()),
                    ..base(r)
                })
                .collect::<Vec<_>>()
        };
        let Ok(name) = ClusterName::new(cluster) else {
            return (
                cluster.into(),
                unreadable("not a cluster name".into()),
                None,
            );
        };
        let t = match self.jobs.target(&name).await {
            Ok(t) => t,
            Err(e) => return (cluster.into(), unreadable(e), None),
        };
        let suffix = portal::control_plane(&t.client)
            .await
            .ok()
            .map(|cp| cp.suffix);
        let mut out = vec![];
        for r in rows {
            let svc = (!r.service.is_empty()).then_some(r.service.as_str());
            let mut v = base(r);
            match portal::live(&t.client, &r.namespace, svc).await {
                Ok(live) => {
                    v.drift = portal::drift(&owned_of(r), live.as_ref());
                    if let Some(l) = live {
                        v.exists = true;
                        if svc.is_none() {
                            v.mode = portal::mode_of(&l.labels).map(String::from);
                        } else {
                            v.endpoints = Some(l.endpoints);
                            v.ports = l.ports.clone();
                        }
                        v.shared = l.labels.get(SCOPE_LABEL).cloned();
                    }
                }
                Err(e) => v.error = Some(format!("cluster {cluster}: {e}")),
            }
            out.push(v);
        }
        (cluster.into(), out, suffix)
    }

    async fn shared_services(
        &self,
        objects: &[PortalObjectView],
        suffixes: &BTreeMap<String, String>,
    ) -> Vec<SharedServiceView> {
        let mut groups: BTreeMap<(String, Option<String>), Vec<&PortalObjectView>> =
            BTreeMap::new();
        for o in objects.iter().filter(|o| {
            o.applied
                .iter()
                .any(|l| l.starts_with(&format!("label {SCOPE_LABEL}=")))
        }) {
            groups
                .entry((o.namespace.clone(), o.service.clone()))
                .or_default()
                .push(o);
        }
        let mut out = vec![];
        for ((namespace, service), list) in groups {
            let suffix = list
                .iter()
                .find_map(|o| suffixes.get(&o.cluster))
                .cloned()
                .unwrap_or_else(|| portal::DEFAULT_SUFFIX.into());
            let ports: BTreeMap<String, Vec<String>> = list
                .iter()
                .filter(|o| o.service.is_some() && o.exists)
                .map(|o| (o.cluster.clone(), o.ports.clone()))
                .collect();
            let mut warnings: Vec<String> = ports_differ(&ports).into_iter().collect();
            let probe = PortalAction {
                team: String::new(),
                kind: PortalKind::Share,
                namespace: namespace.clone(),
                service: service.clone(),
                clusters: list.iter().map(|o| o.cluster.clone()).collect(),
                mode: Default::default(),
                scope: Default::default(),
                spread: false,
            };
            warnings.extend(self.clients_without_namespace(&probe).await);
            out.push(SharedServiceView {
                address: Some(match &service {
                    Some(s) => format!("{s}.{namespace}.{suffix}"),
                    None => format!("<service>.{namespace}.{suffix}"),
                }),
                serving: list
                    .iter()
                    .filter(|o| o.endpoints.unwrap_or(0) > 0)
                    .map(|o| o.cluster.clone())
                    .collect(),
                namespace,
                service,
                warnings,
            });
        }
        out
    }
}

fn is_mode_label(l: &str) -> bool {
    [
        portal::INJECTION_LABEL,
        portal::REVISION_LABEL,
        portal::DATAPLANE_LABEL,
    ]
    .iter()
    .any(|k| l.starts_with(&format!("label {k}=")))
}
