//! Restarting workloads as `kubectl rollout restart` does — the pod template's
//! `kubectl.kubernetes.io/restartedAt` annotation set by server-side apply with the console's field manager —
//! and waiting until each has rolled. istiod reads `cacerts` only when it starts (mesh-spec §6.1); the data
//! plane (ztunnel, which holds every ambient workload's certificate and the roots it trusts, and the east-west
//! gateway) renews its certificates and trust bundle when it restarts. The annotation's value is fixed by the
//! caller (a job's time), so a retry writes the same and restarts nothing twice.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::objects::{EASTWEST_NAME, EASTWEST_NAMESPACE};
use crate::setup::{Outcome, Progress, StepError, StepResult, Target, live_version};

pub const RESTART_TITLE: &str = "Restart istiod";
pub const DATA_PLANE_TITLE: &str = "Restart the data plane";
/// The pod-template annotation `kubectl rollout restart` sets; a new value rolls the pods.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The label of istiod's pods and Deployments.
pub(crate) const ISTIOD_SELECTOR: &str = "app=istiod";
/// ztunnel's DaemonSet, in istiod's namespace.
const ZTUNNEL: &str = "ztunnel";

/// A workload a restart rolls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `Deployment` or `DaemonSet`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Workload {
    fn deployment(namespace: &str, name: &str) -> Workload {
        Workload {
            kind: "Deployment",
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The restart at `at` (RFC 3339), as server-side apply writes it: only the annotation.
    pub fn restart_object(&self, at: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}
        })
    }

    /// Why it has not rolled to the template restarted at `at` yet (None when it has), reading it live.
    async fn not_rolled(
        &self,
        t: &Target,
        step: &str,
        at: &str,
    ) -> Result<Option<String>, StepError> {
        let what = format!("reading {} {}/{}", self.kind, self.namespace, self.name);
        let err = |e: kube::Error| StepError::kube(&t.name, step, &what, &e);
        Ok(if self.kind == "DaemonSet" {
            let api = Api::<DaemonSet>::namespaced(t.client.clone(), &self.namespace);
            daemonset_not_rolled(
                &crate::apply::retrying(|| api.get(&self.name))
                    .await
                    .map_err(err)?,
                at,
            )
        } else {
            let api = Api::<Deployment>::namespaced(t.client.clone(), &self.namespace);
            not_rolled(
                &crate::apply::retrying(|| api.get(&self.name))
                    .await
                    .map_err(err)?,
                at,
            )
        })
    }
}

/// A cluster's istiod Deployments (every revision), in its control plane's namespace `ns`
/// ([`Target::istio_namespace`]).
pub async fn istiod_deployments(
    t: &Target,
    step: &str,
    ns: &str,
) -> Result<Vec<Workload>, StepError> {
    let api = Api::<Deployment>::namespaced(t.client.clone(), ns);
    let lp = ListParams::default().labels(ISTIOD_SELECTOR);
    let list = crate::apply::retrying(|| api.list(&lp))
        .await
        .map_err(|e| {
            StepError::kube(
                &t.name,
                step,
                &format!("listing istiod Deployments in {ns}"),
                &e,
            )
        })?;
    if list.items.is_empty() {
        return Err(StepError::new(
            &t.name,
            step,
            format!("no istiod Deployment (label app=istiod) in {ns}"),
            "The control plane is not installed here: run the cluster's setup first",
        ));
    }
    Ok(list
        .items
        .iter()
        .map(|d| Workload::deployment(ns, &d.name_any()))
        .collect())
}

/// The data plane's workloads that hold certificates signed by the cluster's intermediate and the roots they
/// trust: the ztunnel DaemonSet (ambient, in the control plane's namespace `ns`) and the east-west gateway's
/// Deployment — those this cluster has.
pub async fn data_plane(t: &Target, step: &str, ns: &str) -> Result<Vec<Workload>, StepError> {
    let mut out = vec![];
    let ds = Api::<DaemonSet>::namespaced(t.client.clone(), ns);
    if crate::apply::retrying(|| ds.get_opt(ZTUNNEL))
        .await
        .map_err(|e| {
            StepError::kube(
                &t.name,
                step,
                &format!("reading DaemonSet {ns}/ztunnel"),
                &e,
            )
        })?
        .is_some()
    {
        out.push(Workload {
            kind: "DaemonSet",
            namespace: ns.into(),
            name: ZTUNNEL.into(),
        });
    }
    let gw = Api::<Deployment>::namespaced(t.client.clone(), EASTWEST_NAMESPACE);
    if crate::apply::retrying(|| gw.get_opt(EASTWEST_NAME))
        .await
        .map_err(|e| {
            StepError::kube(
                &t.name,
                step,
                "reading the east-west gateway's Deployment",
                &e,
            )
        })?
        .is_some()
    {
        out.push(Workload::deployment(EASTWEST_NAMESPACE, EASTWEST_NAME));
    }
    Ok(out)
}

/// Restarts `workloads` at `at`, then waits up to `wait` until each has rolled: its template observed, every
/// pod updated and ready, no old pod left. Returns whether any annotation changed and the names restarted.
async fn restart(
    t: &Target,
    step: &str,
    workloads: &[Workload],
    at: &str,
    wait: Duration,
    progress: Progress<'_>,
) -> Result<(bool, Vec<String>), StepError> {
    let mut changed = false;
    for w in workloads {
        let obj = w.restart_object(at);
        let before = live_version(&t.client, &obj).await;
        let after = crate::apply::apply(&t.client, &obj, false)
            .await
            .map_err(|e| StepError::apply(&t.name, step, &e))?;
        changed |= before.as_deref() != after.resource_version().as_deref();
    }
    let names: Vec<String> = workloads
        .iter()
        .map(|w| format!("{} {}/{}", w.kind, w.namespace, w.name))
        .collect();
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let mut waiting = vec![];
        for (w, name) in workloads.iter().zip(&names) {
            if let Some(why) = w.not_rolled(t, step, at).await? {
                waiting.push(format!("{name}: {why}"));
            }
        }
        if waiting.is_empty() {
            return Ok((changed, names));
        }
        let now = waiting.join("; ");
        if now != last {
            progress(format!("waiting for {now}"));
            last = now;
        }
        if started.elapsed() >= wait {
            return Err(StepError::new(
                &t.name,
                step,
                format!("not rolled within {}s: {last}", wait.as_secs()),
                "Look at the pods named (kubectl get pods -n <namespace>; their events and logs say why, e.g. an \
                 incomplete cacerts bundle or no room on a node), fix the cause and retry this cluster",
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Restarts every istiod of the cluster (in the control plane's namespace `ns`; the annotation set to `at`,
/// RFC 3339), then waits up to `wait` until each Deployment has rolled.
pub async fn restart_istiod(
    t: &Target,
    ns: &str,
    at: &str,
    wait: Duration,
    progress: Progress<'_>,
) -> StepResult {
    let step = RESTART_TITLE;
    let workloads = istiod_deployments(t, step, ns).await?;
    let (changed, _) = restart(t, step, &workloads, at, wait, progress).await?;
    Ok(Outcome {
        changed,
        summary: format!(
            "{} restarted and ready: istiod read cacerts again",
            workloads
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Restarts the cluster's data plane ([`data_plane`]) at `at` and waits until it has rolled, so its
/// certificates and trust bundle come from the istiod that now reads the new `cacerts`.
pub async fn restart_data_plane(
    t: &Target,
    ns: &str,
    at: &str,
    wait: Duration,
    progress: Progress<'_>,
) -> StepResult {
    let step = DATA_PLANE_TITLE;
    let workloads = data_plane(t, step, ns).await?;
    if workloads.is_empty() {
        return Ok(Outcome {
            changed: false,
            summary: "no ztunnel or east-west gateway to restart".into(),
        });
    }
    let (changed, names) = restart(t, step, &workloads, at, wait, progress).await?;
    Ok(Outcome {
        changed,
        summary: format!(
            "{} restarted and ready: new certificates and trust bundle",
            names.join(", ")
        ),
    })
}

/// Where a rollout stands, read from a Deployment's or a DaemonSet's spec and status.
struct Rollout<'a> {
    template: Option<&'a k8s_openapi::api::core::v1::PodTemplateSpec>,
    generation: i64,
    /// None while the object has no status.
    observed: Option<i64>,
    /// Pods wanted, updated to the template, running in all, ready.
    want: i32,
    updated: i32,
    all: i32,
    ready: i32,
}

impl Rollout<'_> {
    /// Why it has not rolled to the template restarted at `at` yet; None when it has.
    fn pending(&self, at: &str) -> Option<String> {
        let template_at = self
            .template
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(RESTARTED_AT));
        if template_at.map(String::as_str) != Some(at) {
            return Some("its template was restarted by someone else since".into());
        }
        let Some(observed) = self.observed else {
            return Some("no status yet".into());
        };
        if observed < self.generation {
            return Some("the new template is not observed yet".into());
        }
        let (want, updated) = (self.want, self.updated);
        if updated < want {
            return Some(format!("{updated}/{want} pods restarted"));
        }
        if self.all > updated {
            return Some(format!("{} old pods still running", self.all - updated));
        }
        if self.ready < want {
            return Some(format!("{}/{want} restarted pods ready", self.ready));
        }
        None
    }
}

/// Why a Deployment has not rolled to the template restarted at `at` yet; None when it has.
pub fn not_rolled(d: &Deployment, at: &str) -> Option<String> {
    let s = d.status.as_ref();
    Rollout {
        template: d.spec.as_ref().map(|s| &s.template),
        generation: d.metadata.generation.unwrap_or(0),
        observed: s.map(|s| s.observed_generation.unwrap_or(0)),
        want: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        updated: s.and_then(|s| s.updated_replicas).unwrap_or(0),
        all: s.and_then(|s| s.replicas).unwrap_or(0),
        ready: s.and_then(|s| s.ready_replicas).unwrap_or(0),
    }
    .pending(at)
}

/// Why a DaemonSet has not rolled to the template restarted at `at` yet; None when it has.
pub fn daemonset_not_rolled(d: &DaemonSet, at: &str) -> Option<String> {
    let s = d.status.as_ref();
    Rollout {
        template: d.spec.as_ref().map(|s| &s.template),
        generation: d.metadata.generation.unwrap_or(0),
        observed: s.map(|s| s.observed_generation.unwrap_or(0)),
        want: s.map_or(0, |s| s.desired_number_scheduled),
        updated: s.and_then(|s| s.updated_number_scheduled).unwrap_or(0),
        all: s.map_or(0, |s| s.current_number_scheduled),
        ready: s.map_or(0, |s| s.number_ready),
    }
    .pending(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetStatus, DeploymentSpec, DeploymentStatus,
    };
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(at: Option<&str>) -> PodTemplateSpec {
        let annotations = at.map(|a| [(RESTARTED_AT.to_string(), a.to_string())].into());
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                annotations,
                ..Default::default()
            }),
            spec: None,
        }
    }

    fn deployment(at: Option<&str>, generation: i64, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                template: template(at),
                ..Default::default()
            }),
            status: Some(status),
        }
    }

    fn status(observed: i64, replicas: i32, updated: i32, ready: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            ..Default::default()
        }
    }

    #[test]
    fn a_rollout_is_done_only_when_every_pod_is_new_and_ready() {
        let at = "2026-12-01T22:00:00Z";
        let cases = [
            (
                deployment(Some(at), 3, status(2, 2, 2, 2)),
                Some("not observed"),
            ),
            (
                deployment(Some(at), 3, status(3, 3, 1, 3)),
                Some("1/2 pods restarted"),
            ),
            (
                deployment(Some(at), 3, status(3, 3, 2, 3)),
                Some("1 old pods"),
            ),
            (
                deployment(Some(at), 3, status(3, 2, 2, 1)),
                Some("1/2 restarted pods ready"),
            ),
            (
                deployment(Some("earlier"), 3, status(3, 2, 2, 2)),
                Some("someone else"),
            ),
            (deployment(Some(at), 3, status(3, 2, 2, 2)), None),
        ];
        for (d, want) in cases {
            let got = not_rolled(&d, at);
            match want {
                None => assert_eq!(got, None),
                Some(w) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(w)),
                    "{got:?} lacks {w}"
                ),
            }
        }
    }

    #[test]
    fn a_daemonset_has_rolled_when_every_node_runs_a_new_ready_pod() {
        let at = "2026-12-01T22:00:00Z";
        let ds = |at: &str, updated: i32, current: i32, ready: i32| DaemonSet {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                template: template(Some(at)),
                ..Default::default()
            }),
            status: Some(DaemonSetStatus {
                observed_generation: Some(2),
                desired_number_scheduled: 3,
                current_number_scheduled: current,
                updated_number_scheduled: Some(updated),
                number_ready: ready,
                ..Default::default()
            }),
        };
        assert_eq!(daemonset_not_rolled(&ds(at, 3, 3, 3), at), None);
        let why = |d: DaemonSet| daemonset_not_rolled(&d, at).unwrap_or_default();
        assert!(why(ds(at, 2, 3, 3)).contains("2/3 pods restarted"));
        assert!(why(ds(at, 3, 4, 3)).contains("1 old pods"));
        assert!(why(ds(at, 3, 3, 2)).contains("2/3 restarted pods ready"));
        assert!(why(ds("earlier", 3, 3, 3)).contains("someone else"));
    }

    #[test]
    fn the_restart_sets_only_the_annotation() {
        let o = Workload::deployment("istio-custom", "istiod-gloo")
            .restart_object("2026-12-01T22:00:00Z");
        assert_eq!(o["metadata"]["namespace"], "istio-custom");
        assert_eq!(
            o["spec"],
            json!({"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-12-01T22:00:00Z"}}}})
        );
        let ds = Workload {
            kind: "DaemonSet",
            namespace: "istio-system".into(),
            name: "ztunnel".into(),
        };
        assert_eq!(ds.restart_object("x")["kind"], "DaemonSet");
    }
}
