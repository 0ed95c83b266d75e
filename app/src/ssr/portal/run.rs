//! Running a portal job: in each cluster (in parallel; a failing one stops alone and can be retried alone),
//! the object's owned labels are transformed by the request and applied server-side; what was applied is
//! recorded, so a re-run applies the same set again and changes nothing.

use mesh::portal::{self, Change, Owned};
use mesh::setup::Target;

use super::{PortalSpec, STEP, owned_of};
use crate::model::{ClusterName, MeshMode, PortalAction, PortalKind};
use crate::ssr::jobs::{Error, Jobs, Result};
use crate::ssr::notify::Notice;
use crate::ssr::store::{JobRow, NewAudit, ObjectRow};

pub async fn run_job(jobs: &Jobs, id: &str, job: &JobRow) -> Result<()> {
    let spec: PortalSpec = crate::ssr::jobs::spec_of(job)?;
    let st = jobs.store();
    let steps = st.job_steps(id).await?;
    let a = &spec.action;
    let runs = a.clusters.iter().map(|cluster| {
        let step_state = steps
            .iter()
            .find(|s| &s.cluster == cluster && s.step == STEP)
            .map(|s| s.state.clone());
        async move {
            if matches!(step_state.as_deref(), Some("done")) {
                return Ok(true);
            }
            if matches!(step_state.as_deref(), Some("failed")) {
                return Ok(false);
            }
            jobs.set_step(id, cluster, STEP, "running", None, None)
                .await?;
            match apply_in(jobs, id, cluster, a).await {
                Ok((changed, summary)) => {
                    jobs.set_step(id, cluster, STEP, "done", Some(changed), Some(&summary))
                        .await?;
                    jobs.notify(Notice::Portal {
                        team: a.team.clone(),
                    })
                    .await;
                    Ok(true)
                }
                Err(msg) => {
                    let msg = format!("cluster {cluster} (step: apply the team's labels): {msg}");
                    jobs.set_step(id, cluster, STEP, "failed", None, Some(&msg))
                        .await?;
                    jobs.event(id, Some(cluster), Some(STEP), "error", &msg)
                        .await;
                    Ok::<bool, Error>(false)
                }
            }
        }
    });
    let mut all = true;
    for r in futures::future::join_all(runs).await {
        all &= r?;
    }
    let state = if all { "succeeded" } else { "failed" };
    let _ = st
        .audit(&NewAudit {
            actor: "meshdeck",
            team: &a.team,
            cluster: &a.clusters.join(" "),
            kind: if all { "applied" } else { "failed" },
            subject: &format!("job {id} for request {}", spec.request_id),
            detail: &super::describe(a),
            ..Default::default()
        })
        .await;
    let done = jobs.finish(id, state).await;
    jobs.notify(Notice::Portal {
        team: a.team.clone(),
    })
    .await;
    done
}

/// The change a request makes to an object, given the cluster's istiod revision.
pub(super) fn change_of(a: &PortalAction, revision: Option<String>) -> Option<Change> {
    match a.kind {
        PortalKind::Enrol => Some(match a.mode {
            MeshMode::Sidecar => Change::Sidecar { revision },
            MeshMode::Ambient => Change::Ambient,
        }),
        PortalKind::Leave => Some(Change::Leave),
        PortalKind::Share => Some(Change::Share {
            scope: a.scope.label_value().to_string(),
            spread: a.spread,
        }),
        PortalKind::Unshare => Some(Change::Unshare),
        PortalKind::Reapply => None,
    }
}

/// The objects a request touches in one cluster: (service or None for the namespace). A re-apply touches
/// everything the portal keeps in that namespace.
pub(super) async fn objects_of(
    jobs_store: &crate::ssr::store::Store,
    cluster: &str,
    a: &PortalAction,
) -> std::result::Result<Vec<Option<String>>, String> {
    match a.kind {
        PortalKind::Enrol | PortalKind::Leave => Ok(vec![None]),
        PortalKind::Share | PortalKind::Unshare => Ok(vec![a.service.clone()]),
        PortalKind::Reapply => Ok(jobs_store
            .portal_objects(Some(&a.team))
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|o| o.cluster == cluster && o.namespace == a.namespace)
            .map(|o| (!o.service.is_empty()).then_some(o.service))
            .collect()),
    }
}

/// Before anything is written for one object: why nothing needs to be (an undo of what the portal never
/// applied here), or why the request cannot apply in this cluster (a Service that is not there, a namespace
/// shared before it exists).
pub(super) fn precheck(
    a: &PortalAction,
    svc: Option<&str>,
    managed: bool,
    exists: bool,
) -> std::result::Result<Option<String>, String> {
    match (a.kind, svc) {
        (PortalKind::Leave | PortalKind::Unshare, _) if !managed => Ok(Some(format!(
            "nothing to undo: the portal applied nothing to {} here",
            what(a, svc)
        ))),
        (_, Some(s)) if !exists => Err(format!(
            "service {s} does not exist in namespace {} of this cluster; create it there first (a shared service has the same namespace and name in every cluster that serves it), or leave this cluster out",
            a.namespace
        )),
        (PortalKind::Share, None) if !exists => Err(format!(
            "namespace {} does not exist in this cluster; enrol it here first",
            a.namespace
        )),
        _ => Ok(None),
    }
}

/// The owned set before and after the request, for one object; and whether the portal manages it already.
pub(super) async fn before_after(
    store: &crate::ssr::store::Store,
    cluster: &str,
    a: &PortalAction,
    service: Option<&str>,
    revision: Option<String>,
) -> std::result::Result<(Owned, Owned, bool), String> {
    let row = store
        .portal_object(cluster, &a.namespace, service.unwrap_or(""))
        .await
        .map_err(|e| e.to_string())?;
    if let Some(r) = &row
        && r.team != a.team
    {
        return Err(format!(
            "{} is managed by team {}, not {}",
            match service {
                Some(s) => format!("service {s} of namespace {}", a.namespace),
                None => format!("namespace {}", a.namespace),
            },
            r.team,
            a.team
        ));
    }
    let before = row.as_ref().map(owned_of).unwrap_or_default();
    let team = service.is_none().then_some(a.team.as_str());
    let after = match change_of(a, revision) {
        Some(c) => portal::transform(&before, &c, team),
        None => before.clone(),
    };
    Ok((before, after, row.is_some()))
}

/// Refuses the control plane's own namespace of this cluster.
pub(super) fn refuse_control_plane(
    cp: &portal::ControlPlane,
    namespace: &str,
) -> std::result::Result<(), String> {
    if cp.namespaces.iter().any(|n| n == namespace) {
        return Err(format!(
            "namespace {namespace} is where this cluster's control plane runs; no team may change it"
        ));
    }
    Ok(())
}

async fn target(jobs: &Jobs, cluster: &str) -> std::result::Result<Target, String> {
    let name = ClusterName::new(cluster).map_err(|e| e.to_string())?;
    jobs.target(&name)
        .await
        .map_err(|e| format!("{e}. Check it under Clusters (Re-test), then retry this cluster"))
}

/// Applies the request in one cluster; (changed, summary) or why it failed.
async fn apply_in(
    jobs: &Jobs,
    id: &str,
    cluster: &str,
    a: &PortalAction,
) -> std::result::Result<(bool, String), String> {
    let t = target(jobs, cluster).await?;
    let cp = portal::control_plane(&t.client)
        .await
        .map_err(|e| format!("reading istiod: {e}"))?;
    refuse_control_plane(&cp, &a.namespace)?;
    let store = jobs.store();
    let mut changed = false;
    let mut lines = vec![];
    for service in objects_of(store, cluster, a).await? {
        let svc = service.as_deref();
        let (before, after, managed) =
            before_after(store, cluster, a, svc, cp.revision.clone()).await?;
        let live = portal::live(&t.client, &a.namespace, svc)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(skip) = precheck(a, svc, managed, live.is_some())? {
            lines.push(skip);
            continue;
        }
        let drifted = live.is_none()
            || !portal::drift(&after, live.as_ref()).is_empty()
            || released(&before, &after, live.as_ref());
        let obj = portal::object(&a.namespace, svc, &after);
        mesh::apply::apply(&t.client, &obj, false)
            .await
            .map_err(|e| format!("applying {}: {e}", what(a, svc)))?;
        store
            .put_portal_object(&ObjectRow {
                cluster: cluster.to_string(),
                namespace: a.namespace.clone(),
                service: svc.unwrap_or("").to_string(),
                team: a.team.clone(),
                labels: serde_json::to_string(&after.labels).unwrap_or_else(|_| "{}".into()),
                annotations: serde_json::to_string(&after.annotations)
                    .unwrap_or_else(|_| "{}".into()),
                job_id: id.to_string(),
                updated_at: 0,
                // Kept by the store: only the drift audit changes it.
                drift: String::new(),
            })
            .await
            .map_err(|e| format!("recording what was applied: {e}"))?;
        changed |= drifted;
        let applied = after.describe();
        lines.push(format!(
            "{}: {}",
            what(a, svc),
            if applied.is_empty() {
                "no portal labels left".to_string()
            } else {
                applied.join(", ")
            }
        ));
    }
    Ok((changed, lines.join("; ")))
}

/// Whether applying `after` releases labels still live that the portal applied before.
fn released(before: &Owned, after: &Owned, live: Option<&portal::Live>) -> bool {
    let Some(live) = live else { return false };
    before
        .labels
        .keys()
        .any(|k| !after.labels.contains_key(k) && live.labels.contains_key(k))
        || before
            .annotations
            .keys()
            .any(|k| !after.annotations.contains_key(k) && live.annotations.contains_key(k))
}

fn what(a: &PortalAction, svc: Option<&str>) -> String {
    match svc {
        Some(s) => format!("service {s} of namespace {}", a.namespace),
        None => format!("namespace {}", a.namespace),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(kind: PortalKind) -> PortalAction {
        PortalAction {
            team: "pay".into(),
            kind,
            namespace: "pay-web".into(),
            service: None,
            clusters: vec!["c1".into()],
            mode: Default::default(),
            scope: Default::default(),
            spread: false,
        }
    }

    #[test]
    fn undoing_what_was_never_applied_writes_nothing_and_a_missing_target_is_named() {
        let skip = precheck(&action(PortalKind::Leave), None, false, false).expect("ok");
        assert!(skip.is_some_and(|s| s.contains("nothing to undo")));
        assert_eq!(
            precheck(&action(PortalKind::Leave), None, true, true),
            Ok(None)
        );
        let e = precheck(&action(PortalKind::Share), Some("web"), false, false)
            .expect_err("no service");
        assert!(
            e.contains("service web does not exist in namespace pay-web"),
            "{e}"
        );
        let e = precheck(&action(PortalKind::Share), None, false, false).expect_err("no namespace");
        assert!(e.contains("enrol it here first"), "{e}");
        assert_eq!(
            precheck(&action(PortalKind::Enrol), None, false, false),
            Ok(None)
        );
    }
}
