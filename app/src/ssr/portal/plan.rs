//! A request's plan, as the setup wizard shows one: per cluster, each object the request writes with the
//! server-side dry-run diff against what is live, and the kubectl commands; plus the shared name other
//! clusters use and what the portal noticed (a client cluster without the namespace, ports that differ).

use std::collections::BTreeMap;

use mesh::portal;

use super::run::{before_after, objects_of, precheck, refuse_control_plane};
use super::{Caller, Portal};
use crate::model::{
    AppError, ClusterName, ClusterPlan, PlanObject, PlanStep, PortalAction, PortalKind, PortalPlan,
};

impl Portal {
    /// The plan of a request a team member is about to make.
    pub async fn plan(
        &self,
        caller: &Caller,
        action: &PortalAction,
    ) -> Result<PortalPlan, AppError> {
        self.require_member(&caller.user, &action.team).await?;
        self.plan_checked(action).await
    }

    /// The plan of a recorded request, for whoever may see its team (an operator deciding on it).
    pub async fn review_plan(
        &self,
        caller: &Caller,
        action: &PortalAction,
    ) -> Result<PortalPlan, AppError> {
        self.require_viewer_of(&caller.user, &action.team).await?;
        self.plan_checked(action).await
    }

    async fn plan_checked(&self, action: &PortalAction) -> Result<PortalPlan, AppError> {
        let checked = self.checked(action).await?;
        let waits_for = self.waits_for(&checked).await?;
        let a = &checked.action;
        let runs = a.clusters.iter().map(|c| self.plan_cluster(c, a));
        let results = futures::future::join_all(runs).await;
        let mut clusters = vec![];
        let mut ports: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut suffix = None;
        for (plan, p, s) in results {
            clusters.push(plan);
            if let Some(p) = p {
                ports.insert(p.0, p.1);
            }
            suffix = suffix.or(s);
        }
        let mut warnings = vec![];
        let mut address = None;
        if a.kind == PortalKind::Share {
            let suffix = suffix.unwrap_or_else(|| portal::DEFAULT_SUFFIX.to_string());
            address = Some(match &a.service {
                Some(s) => format!("{s}.{}.{suffix}", a.namespace),
                None => format!("<service>.{}.{suffix}", a.namespace),
            });
            warnings.extend(ports_differ(&ports));
            warnings.extend(self.clients_without_namespace(a).await);
        }
        Ok(PortalPlan {
            clusters,
            warnings,
            waits_for,
            address,
        })
    }

    /// Other registered clusters (possible clients of a shared service) that lack the namespace: their
    /// workloads cannot call the service by its namespace's name until it exists there.
    pub(super) async fn clients_without_namespace(&self, a: &PortalAction) -> Vec<String> {
        let Ok(all) = self.store.list_clusters().await else {
            return vec![];
        };
        let others: Vec<String> = all
            .into_iter()
            .map(|c| c.name.to_string())
            .filter(|c| !a.clusters.contains(c))
            .collect();
        let checks = others.iter().map(|c| async move {
            let name = ClusterName::new(c).ok()?;
            let t = self.jobs.target(&name).await.ok()?;
            match portal::live(&t.client, &a.namespace, None).await {
                Ok(None) => Some(format!(
                    "cluster {c} has no namespace {}: its workloads reach the service only once the namespace exists there (enrol it in {c} too)",
                    a.namespace
                )),
                _ => None,
            }
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// One cluster's plan; with the Service's ports there and the cluster's global-name suffix.
    async fn plan_cluster(
        &self,
        cluster: &str,
        a: &PortalAction,
    ) -> (ClusterPlan, Option<(String, Vec<String>)>, Option<String>) {
        let fail = |e: String| ClusterPlan {
            cluster: cluster.to_string(),
            error: Some(e),
            steps: vec![],
        };
        let Ok(name) = ClusterName::new(cluster) else {
            return (fail("not a cluster name".into()), None, None);
        };
        let t = match self.jobs.target(&name).await {
            Ok(t) => t,
            Err(e) => return (fail(e), None, None),
        };
        let cp = match portal::control_plane(&t.client).await {
            Ok(cp) => cp,
            Err(e) => {
                return (
                    fail(format!("cluster {cluster}: reading istiod: {e}")),
                    None,
                    None,
                );
            }
        };
        if let Err(e) = refuse_control_plane(&cp, &a.namespace) {
            return (fail(format!("cluster {cluster}: {e}")), None, None);
        }
        let services = match objects_of(&self.store, cluster, a).await {
            Ok(s) => s,
            Err(e) => return (fail(e), None, None),
        };
        let mut objects = vec![];
        let mut commands = vec![];
        let mut ports = None;
        for service in services {
            let svc = service.as_deref();
            let (before, after, managed) =
                match before_after(&self.store, cluster, a, svc, cp.revision.clone()).await {
                    Ok(x) => x,
                    Err(e) => return (fail(format!("cluster {cluster}: {e}")), None, None),
                };
            let live = match portal::live(&t.client, &a.namespace, svc).await {
                Ok(l) => l,
                Err(e) => return (fail(format!("cluster {cluster}: {e}")), None, None),
            };
            match precheck(a, svc, managed, live.is_some()) {
                Err(e) => return (fail(format!("cluster {cluster}: {e}")), None, None),
                Ok(Some(skip)) => {
                    objects.push(PlanObject {
                        kind: if svc.is_some() {
                            "Service"
                        } else {
                            "Namespace"
                        }
                        .into(),
                        namespace: svc.map(|_| a.namespace.clone()),
                        name: svc.unwrap_or(&a.namespace).to_string(),
                        yaml: String::new(),
                        change: "unchanged".into(),
                        detail: Some(skip),
                    });
                    continue;
                }
                Ok(None) => {}
            }
            if let (Some(_), Some(l)) = (svc, &live) {
                ports = Some((cluster.to_string(), l.ports.clone()));
            }
            // Labels the portal no longer owns but another hand set stay; the diff shows exactly that.
            let before_live = live
                .as_ref()
                .map(|l| portal::Owned {
                    labels: before
                        .labels
                        .keys()
                        .filter_map(|k| l.labels.get(k).map(|v| (k.clone(), v.clone())))
                        .collect(),
                    annotations: before
                        .annotations
                        .keys()
                        .filter_map(|k| l.annotations.get(k).map(|v| (k.clone(), v.clone())))
                        .collect(),
                })
                .unwrap_or_default();
            commands.extend(portal::commands(
                cluster,
                &a.namespace,
                svc,
                &before_live,
                &after,
                svc.is_none() && live.is_none(),
            ));
            let obj = portal::object(&a.namespace, svc, &after);
            objects.push(crate::ssr::registry::plan_object(
                mesh::setup::diff_object(&t.client, &obj).await,
            ));
        }
        let plan = ClusterPlan {
            cluster: cluster.to_string(),
            error: None,
            steps: vec![PlanStep {
                title: a.kind.title().to_string(),
                objects,
                commands,
            }],
        };
        (plan, ports, Some(cp.suffix))
    }
}

/// A warning when the shared Service's ports are not the same in every cluster serving it.
pub(super) fn ports_differ(ports: &BTreeMap<String, Vec<String>>) -> Option<String> {
    let mut distinct: Vec<&Vec<String>> = ports.values().collect();
    distinct.sort();
    distinct.dedup();
    (distinct.len() > 1).then(|| {
        format!(
            "the service's ports differ between clusters ({}): clients may reach a port one cluster does not serve",
            ports
                .iter()
                .map(|(c, p)| format!("{c}: {}", if p.is_empty() { "none".into() } else { p.join(" ") }))
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_ports_are_named_per_cluster() {
        let mut p = BTreeMap::new();
        p.insert("c1".to_string(), vec!["http/80/TCP".to_string()]);
        p.insert("c2".to_string(), vec!["http/80/TCP".to_string()]);
        assert_eq!(ports_differ(&p), None);
        p.insert("c3".to_string(), vec!["http/8080/TCP".to_string()]);
        let w = ports_differ(&p).expect("warned");
        assert!(w.contains("c3: http/8080/TCP"), "{w}");
    }
}
