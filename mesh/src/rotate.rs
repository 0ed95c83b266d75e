//! Day two — a cluster's intermediate CA issued again from the mesh's root (mesh-spec §6): a new `cacerts`
//! (new intermediate and key, the same root), then istiod restarted so it reads it (istiod decides its CA at
//! start-up, §6.1), waited on until every istiod pod runs the new template and is ready. Each step is safe to
//! run again: the intermediate is not re-issued when `cacerts` already holds one issued since the job began,
//! and the restart is one fixed annotation (`kubectl.kubernetes.io/restartedAt`, as `kubectl rollout
//! restart` writes it) applied with the console's field manager.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::ca::RootCa;
use crate::ids::ClusterName;
use crate::objects::ISTIO_NAMESPACE;
use crate::setup::{Outcome, Progress, StepError, StepResult, Target, live_version};

pub const REISSUE_TITLE: &str = "Issue a new intermediate";
pub const RESTART_TITLE: &str = "Restart istiod";
/// The pod-template annotation `kubectl rollout restart` sets; a new value rolls the pods.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The label of istiod's pods and Deployments.
const ISTIOD_SELECTOR: &str = "app=istiod";
/// An intermediate's validity starts this long before it was issued ([`crate::ca`]).
const BACKDATED_SECS: i64 = 300;

/// Writes a new intermediate for `t`'s cluster into `cacerts`, signed by `root` and valid `days`, unless the
/// intermediate there was issued at or after `since` (Unix seconds: the job's start), which makes a re-run a
/// no-op. Refuses a cluster without `cacerts` or whose `cacerts` names another root.
pub async fn reissue(
    t: &Target,
    root: &RootCa,
    since: i64,
    days: i64,
    progress: Progress<'_>,
) -> StepResult {
    let step = REISSUE_TITLE;
    let secrets = Api::<Secret>::namespaced(t.client.clone(), ISTIO_NAMESPACE);
    let live = crate::apply::retrying(|| secrets.get_opt("cacerts"))
        .await
        .map_err(|e| StepError::kube(&t.name, step, "reading Secret istio-system/cacerts", &e))?
        .ok_or_else(|| {
            StepError::new(
                &t.name,
                step,
                "istio-system/cacerts does not exist: this cluster's istiod signs with a root of its own",
                "Run the cluster's setup (its root of trust step writes cacerts), then re-issue",
            )
        })?;
    let ours = crate::ca::fingerprint(&root.cert_pem);
    let theirs = crate::ca::secret_root_fingerprint(&live);
    if ours.is_none() || theirs != ours {
        return Err(StepError::new(
            &t.name,
            step,
            format!(
                "istio-system/cacerts names another root ({}) than the mesh's ({})",
                theirs
                    .as_deref()
                    .map_or("unreadable".into(), crate::ca::short),
                ours.as_deref()
                    .map_or("unreadable".into(), crate::ca::short),
            ),
            "A re-issued intermediate must chain to the root every peer trusts: put the mesh's root back (re-apply \
             the cluster's root of trust) or rotate the root, then re-issue",
        ));
    }
    let info = crate::ca::inspect_cacerts(&live, ours.as_deref(), since);
    if info.not_before != 0 && info.not_before + BACKDATED_SECS >= since {
        return Ok(Outcome {
            changed: false,
            summary: format!(
                "cacerts already holds an intermediate issued by this job (valid until {})",
                crate::ca::format_unix(info.not_after)
            ),
        });
    }
    progress("generating this cluster's new intermediate CA".into());
    let intermediate = crate::setup::mint_intermediate(t, step, root, days).await?;
    let secret = intermediate.cacerts_secret();
    crate::apply::apply(&t.client, &secret, false)
        .await
        .map_err(|e| StepError::apply(&t.name, step, &e))?;
    Ok(Outcome {
        changed: true,
        summary: format!(
            "wrote cacerts: a new intermediate valid {days} days (was valid until {}), the same root {}",
            crate::ca::format_unix(info.not_after),
            ours.as_deref().map_or(String::new(), crate::ca::short),
        ),
    })
}

/// The restart of one istiod Deployment at `at` (RFC 3339), as server-side apply writes it.
pub fn restart_object(deployment: &str, at: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment, "namespace": ISTIO_NAMESPACE},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}
    })
}

/// The names of a cluster's istiod Deployments (every revision).
pub async fn istiod_deployments(t: &Target, step: &str) -> Result<Vec<String>, StepError> {
    let api = Api::<Deployment>::namespaced(t.client.clone(), ISTIO_NAMESPACE);
    let lp = ListParams::default().labels(ISTIOD_SELECTOR);
    let list = crate::apply::retrying(|| api.list(&lp))
        .await
        .map_err(|e| {
            StepError::kube(
                &t.name,
                step,
                "listing istiod Deployments in istio-system",
                &e,
            )
        })?;
    if list.items.is_empty() {
        return Err(StepError::new(
            &t.name,
            step,
            "no istiod Deployment (label app=istiod) in istio-system",
            "The control plane is not installed here: run the cluster's setup first",
        ));
    }
    Ok(list.items.iter().map(|d| d.name_any()).collect())
}

/// `cacerts` as the plan shows it: its keys are made when the job runs.
pub fn cacerts_placeholder() -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "cacerts", "namespace": ISTIO_NAMESPACE},
        "data": {"ca-cert.pem": "<a new intermediate for this cluster>", "ca-key.pem": "<its key, generated when the job runs>",
                 "root-cert.pem": "<the mesh's root, unchanged>", "cert-chain.pem": "<new intermediate + root>"}})
}

/// Restarts every istiod of the cluster (the annotation set to `at`, RFC 3339), then waits up to `wait` until
/// each Deployment has rolled: its template observed, every replica updated and ready, no old pod left.
pub async fn restart_istiod(
    t: &Target,
    at: &str,
    wait: Duration,
    progress: Progress<'_>,
) -> StepResult {
    let step = RESTART_TITLE;
    let mut changed = false;
    let mut names = vec![];
    for name in istiod_deployments(t, step).await? {
        let obj = restart_object(&name, at);
        let before = live_version(&t.client, &obj).await;
        let after = crate::apply::apply(&t.client, &obj, false)
            .await
            .map_err(|e| StepError::apply(&t.name, step, &e))?;
        changed |= before.as_deref() != after.resource_version().as_deref();
        names.push(name);
    }
    let api = Api::<Deployment>::namespaced(t.client.clone(), ISTIO_NAMESPACE);
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let mut waiting = vec![];
        for name in &names {
            let d = crate::apply::retrying(|| api.get(name))
                .await
                .map_err(|e| {
                    StepError::kube(&t.name, step, &format!("reading Deployment {name}"), &e)
                })?;
            if let Some(why) = not_rolled(&d, at) {
                waiting.push(format!("{name}: {why}"));
            }
        }
        if waiting.is_empty() {
            return Ok(Outcome {
                changed,
                summary: format!(
                    "{} restarted and ready: istiod read cacerts again",
                    names.join(", ")
                ),
            });
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
                format!("istiod did not roll within {}s: {last}", wait.as_secs()),
                "Look at istiod's pods (kubectl -n istio-system get pods -l app=istiod; their logs say why, e.g. an \
                 incomplete cacerts bundle), fix the cause and retry this cluster",
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Why a Deployment has not rolled to the template restarted at `at` yet; None when it has.
pub fn not_rolled(d: &Deployment, at: &str) -> Option<String> {
    let template_at = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT));
    if template_at.map(String::as_str) != Some(at) {
        return Some("its template was restarted by someone else since".into());
    }
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else {
        return Some("no status yet".into());
    };
    if s.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return Some("the new template is not observed yet".into());
    }
    let (updated, ready, all) = (
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.replicas.unwrap_or(0),
    );
    if updated < want {
        return Some(format!("{updated}/{want} pods restarted"));
    }
    if all > updated {
        return Some(format!("{} old pods still running", all - updated));
    }
    if ready < want {
        return Some(format!("{ready}/{want} restarted pods ready"));
    }
    None
}

/// The commands that re-issue `cluster`'s intermediate by hand (mesh-spec §6.2, then a restart).
pub fn commands(cluster: &ClusterName) -> Vec<String> {
    vec![
        format!(
            "make -f ../tools/certs/Makefile.selfsigned.mk {cluster}-cacerts   # a new intermediate from the same root"
        ),
        format!(
            "kubectl --context {cluster} create secret generic cacerts -n {ISTIO_NAMESPACE} --from-file={cluster}/ca-cert.pem \
             --from-file={cluster}/ca-key.pem --from-file={cluster}/root-cert.pem --from-file={cluster}/cert-chain.pem \
             --dry-run=client -o yaml | kubectl --context {cluster} apply --server-side -f -"
        ),
        format!(
            "kubectl --context {cluster} -n {ISTIO_NAMESPACE} rollout restart deployment -l {ISTIOD_SELECTOR}"
        ),
        format!(
            "kubectl --context {cluster} -n {ISTIO_NAMESPACE} rollout status deployment -l {ISTIOD_SELECTOR}"
        ),
    ]
}

/// The passes of a root rotation (mesh-spec §6.1: istiod trusts every root of `root-cert.pem` and reads
/// `cacerts` only when it starts). Each pass runs on every cluster, one at a time, istiod restarted and waited
/// on, before the next pass begins — so no cluster signs with the new root before every cluster trusts it,
/// and the old root is dropped only when no cluster signs with it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// `root-cert.pem` becomes the bundle old + new; the intermediate stays.
    Trust,
    /// A new intermediate from the new root; `root-cert.pem` the bundle new + old. Only after every cluster
    /// trusts the new root (the checks closing the first pass).
    Issue,
    /// `root-cert.pem` is the new root alone.
    Drop,
}

impl Pass {
    pub const ALL: [Pass; 3] = [Pass::Trust, Pass::Issue, Pass::Drop];

    pub fn key(self) -> &'static str {
        match self {
            Pass::Trust => "trust",
            Pass::Issue => "issue",
            Pass::Drop => "drop",
        }
    }

    pub fn from_key(key: &str) -> Option<Pass> {
        Pass::ALL.into_iter().find(|p| p.key() == key)
    }

    pub fn title(self) -> &'static str {
        match self {
            Pass::Trust => "Trust the old and the new root",
            Pass::Issue => "Sign with an intermediate of the new root",
            Pass::Drop => "Drop the old root",
        }
    }

    /// What `cacerts` holds after this pass, as the plan shows it (keys are made when the job runs).
    pub fn placeholder(self) -> Value {
        let (ca, root, chain) = match self {
            Pass::Trust => (
                "<this cluster's intermediate, unchanged>",
                "<the old root + the new root>",
                "<the intermediate + the old root>",
            ),
            Pass::Issue => (
                "<a new intermediate signed by the new root>",
                "<the new root + the old root>",
                "<the new intermediate + the new root>",
            ),
            Pass::Drop => (
                "<the new intermediate, unchanged>",
                "<the new root alone>",
                "<the new intermediate + the new root>",
            ),
        };
        let key = if self == Pass::Issue {
            "<its key, generated when the job runs>"
        } else {
            "<unchanged>"
        };
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": ISTIO_NAMESPACE},
            "data": {"ca-cert.pem": ca, "ca-key.pem": key, "root-cert.pem": root, "cert-chain.pem": chain}})
    }

    /// The commands of this pass on `cluster` by hand (the recipe of §6.2 in `old/` and `new/` directories).
    pub fn commands(self, cluster: &ClusterName) -> Vec<String> {
        let secret = |dir: &str, root: &str| {
            format!(
                "kubectl --context {cluster} create secret generic cacerts -n {ISTIO_NAMESPACE} \
                 --from-file={dir}/{cluster}/ca-cert.pem --from-file={dir}/{cluster}/ca-key.pem \
                 --from-file=root-cert.pem={root} --from-file={dir}/{cluster}/cert-chain.pem \
                 --dry-run=client -o yaml | kubectl --context {cluster} apply --server-side -f -"
            )
        };
        let mut out = match self {
            Pass::Trust => vec![
                format!("cat old/root-cert.pem new/root-cert.pem > {cluster}-both-roots.pem"),
                secret("old", &format!("{cluster}-both-roots.pem")),
            ],
            Pass::Issue => vec![
                format!(
                    "(cd new && make -f ../tools/certs/Makefile.selfsigned.mk {cluster}-cacerts)   # from the new root"
                ),
                format!("cat new/root-cert.pem old/root-cert.pem > {cluster}-both-roots.pem"),
                secret("new", &format!("{cluster}-both-roots.pem")),
            ],
            Pass::Drop => vec![secret("new", "new/root-cert.pem")],
        };
        out.extend(commands(cluster).split_off(2));
        out
    }
}

/// One pass of a root rotation on `t`'s cluster: `cacerts` rewritten for the pass (unless it already is —
/// so a retry after a failure halfway changes nothing twice), then istiod restarted at `at` and waited on.
/// `old` is the root the mesh used, `new` the one it moves to.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_pass(
    t: &Target,
    pass: Pass,
    old: &RootCa,
    new: &RootCa,
    days: i64,
    at: &str,
    wait: Duration,
    progress: Progress<'_>,
) -> StepResult {
    let step = pass.title();
    let secrets = Api::<Secret>::namespaced(t.client.clone(), ISTIO_NAMESPACE);
    let live = crate::apply::retrying(|| secrets.get_opt("cacerts"))
        .await
        .map_err(|e| StepError::kube(&t.name, step, "reading Secret istio-system/cacerts", &e))?
        .ok_or_else(|| {
            StepError::new(
                &t.name,
                step,
                "istio-system/cacerts does not exist: this cluster's istiod signs with a root of its own",
                "Run the cluster's setup (its root of trust step writes cacerts), then retry the rotation",
            )
        })?;
    let fp = |r: &RootCa| crate::ca::fingerprint(&r.cert_pem).unwrap_or_default();
    let (old_fp, new_fp) = (fp(old), fp(new));
    let trusted = crate::ca::secret_trusted_roots(&live);
    let by_old = crate::ca::secret_issued_by(&live, &old.cert_pem);
    let by_new = crate::ca::secret_issued_by(&live, &new.cert_pem);
    let refuse = |problem: String, fix: &str| Err(StepError::new(&t.name, step, problem, fix));
    let unreadable = || {
        StepError::new(
            &t.name,
            step,
            "istio-system/cacerts is not the four-key form (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)",
            "Re-apply the cluster's root of trust from its setup, then retry the rotation",
        )
    };
    let written = match pass {
        Pass::Trust if trusted.contains(&old_fp) && trusted.contains(&new_fp) => None,
        Pass::Trust if by_old => Some(
            crate::ca::cacerts_with_roots(
                &live,
                &crate::ca::root_bundle(&old.cert_pem, &new.cert_pem),
                &old.cert_pem,
            )
            .ok_or_else(unreadable)?,
        ),
        Pass::Issue | Pass::Drop if !by_old && !by_new => {
            return refuse(
                "istio-system/cacerts holds an intermediate signed by neither the old nor the new root".into(),
                "Put the mesh's root back (re-apply the cluster's root of trust), then retry the rotation",
            );
        }
        Pass::Trust => {
            return refuse(
                "istio-system/cacerts holds an intermediate not signed by the mesh's root".into(),
                "Put the mesh's root back (re-apply the cluster's root of trust), then retry the rotation",
            );
        }
        Pass::Issue if by_new => None,
        // Signing with the new root is safe once every cluster trusts it (the job's checks after the first
        // pass); this cluster gets the bundle of both with its new intermediate, whatever its bundle held.
        Pass::Issue => {
            progress("generating this cluster's intermediate from the new root".into());
            let mut i = crate::setup::mint_intermediate(t, step, new, days).await?;
            i.root_pem = crate::ca::root_bundle(&new.cert_pem, &old.cert_pem);
            Some(i.cacerts_secret())
        }
        Pass::Drop if trusted == [new_fp.clone()] => None,
        Pass::Drop if !by_new => {
            return refuse(
                "this cluster still signs with the old root: dropping it would break its workloads' certificates"
                    .into(),
                "Retry the rotation: its second pass gives every cluster an intermediate of the new root",
            );
        }
        Pass::Drop => Some(
            crate::ca::cacerts_with_roots(&live, &new.cert_pem, &new.cert_pem)
                .ok_or_else(unreadable)?,
        ),
    };
    let changed = written.is_some();
    if let Some(secret) = written {
        crate::apply::apply(&t.client, &secret, false)
            .await
            .map_err(|e| StepError::apply(&t.name, step, &e))?;
        progress(format!(
            "wrote cacerts: {}",
            pass_summary(pass, &old_fp, &new_fp)
        ));
    }
    let restarted = restart_istiod(t, at, wait, progress).await?;
    Ok(Outcome {
        changed: changed || restarted.changed,
        summary: format!(
            "{}{}; {}",
            if changed { "" } else { "cacerts already so: " },
            pass_summary(pass, &old_fp, &new_fp),
            restarted.summary
        ),
    })
}

fn pass_summary(pass: Pass, old: &str, new: &str) -> String {
    let (old, new) = (crate::ca::short(old), crate::ca::short(new));
    match pass {
        Pass::Trust => {
            format!("trusts the old root {old} and the new root {new}, signs with the old")
        }
        Pass::Issue => {
            format!("signs with a new intermediate of the new root {new}, trusts {new} and {old}")
        }
        Pass::Drop => format!("trusts only the new root {new}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use k8s_openapi::api::core::v1::PodTemplateSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deployment(at: Option<&str>, generation: i64, status: DeploymentStatus) -> Deployment {
        let annotations = at.map(|a| [(RESTARTED_AT.to_string(), a.to_string())].into());
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(2),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        annotations,
                        ..Default::default()
                    }),
                    spec: None,
                },
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
    fn each_pass_has_its_key_title_and_hand_commands() {
        let c = ClusterName::new("c2").unwrap_or_else(|e| panic!("{e}"));
        for p in Pass::ALL {
            assert_eq!(Pass::from_key(p.key()), Some(p));
            let cmds = p.commands(&c);
            assert!(
                cmds.iter().any(|l| l.contains("apply --server-side")),
                "{cmds:?}"
            );
            assert!(
                cmds.iter().any(|l| l.contains("rollout restart")),
                "{cmds:?}"
            );
            assert_eq!(p.placeholder()["metadata"]["name"], "cacerts");
        }
        assert!(Pass::Trust.commands(&c)[0].contains("old/root-cert.pem new/root-cert.pem"));
        assert_eq!(
            Pass::Drop.placeholder()["data"]["root-cert.pem"],
            "<the new root alone>"
        );
    }

    #[test]
    fn the_restart_sets_only_the_annotation() {
        let o = restart_object("istiod-gloo", "2026-12-01T22:00:00Z");
        assert_eq!(o["metadata"]["namespace"], "istio-system");
        assert_eq!(
            o["spec"],
            json!({"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-12-01T22:00:00Z"}}}})
        );
        let c = commands(&ClusterName::new("c1").unwrap_or_else(|e| panic!("{e}")));
        assert!(
            c.iter()
                .any(|l| l.contains("rollout restart deployment -l app=istiod"))
        );
    }
}
