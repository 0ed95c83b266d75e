//! Day two — a cluster's intermediate CA issued again from the mesh's root (mesh-spec §6): a new `cacerts`
//! (new intermediate and key, the same root), then istiod restarted so it reads it (istiod decides its CA at
//! start-up, §6.1), waited on until every istiod pod runs the new template and is ready. Each step is safe to
//! run again: the intermediate is not re-issued when `cacerts` already holds one issued since the job began,
//! and the restart is one fixed annotation (`kubectl.kubernetes.io/restartedAt`, as `kubectl rollout
//! restart` writes it) applied with the console's field manager ([`crate::restart`]).
//!
//! And the rotation of a mesh's root ([`Pass`], [`rotate_pass`]): every cluster trusts both roots, then signs
//! with the new, then trusts only the new — each pass restarting istiod and then the data plane.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::{Value, json};

use crate::ca::RootCa;
use crate::ids::ClusterName;
use crate::objects::{EASTWEST_NAME, EASTWEST_NAMESPACE};
use crate::setup::{Outcome, Progress, StepError, StepResult, Target};

use crate::restart::ISTIOD_SELECTOR;
pub use crate::restart::{
    RESTART_TITLE, RESTARTED_AT, Workload, istiod_deployments, restart_data_plane, restart_istiod,
};

pub const REISSUE_TITLE: &str = "Issue a new intermediate";
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
    let live = live_cacerts(t, step, "re-issue").await?;
    let ns = live.metadata.namespace.clone().unwrap_or_default();
    let ours = crate::ca::fingerprint(&root.cert_pem);
    let theirs = crate::ca::secret_root_fingerprint(&live);
    if ours.is_none() || theirs != ours {
        return Err(StepError::new(
            &t.name,
            step,
            format!(
                "{ns}/cacerts names another root ({}) than the mesh's ({})",
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
    let secret = intermediate.cacerts_secret(&ns);
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

/// The cluster's `cacerts` Secret as it is (in its control plane's namespace), or the error that says it is
/// missing (then `step`'s user should run the cluster's setup and `then`).
async fn live_cacerts(t: &Target, step: &str, then: &str) -> Result<Secret, StepError> {
    let ns = t.istio_namespace(step).await?;
    let secrets = Api::<Secret>::namespaced(t.client.clone(), &ns);
    let mut secret = crate::apply::retrying(|| secrets.get_opt("cacerts"))
        .await
        .map_err(|e| StepError::kube(&t.name, step, &format!("reading Secret {ns}/cacerts"), &e))?
        .ok_or_else(|| {
            StepError::new(
                &t.name,
                step,
                format!("{ns}/cacerts does not exist: this cluster's istiod signs with a root of its own"),
                format!("Run the cluster's setup (its root of trust step writes cacerts), then {then}"),
            )
        })?;
    secret.metadata.namespace.get_or_insert(ns);
    Ok(secret)
}

/// `cacerts` in `ns` as the plan shows it: its keys are made when the job runs.
pub fn cacerts_placeholder(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "cacerts", "namespace": ns},
        "data": {"ca-cert.pem": "<a new intermediate for this cluster>", "ca-key.pem": "<its key, generated when the job runs>",
                 "root-cert.pem": "<the mesh's root, unchanged>", "cert-chain.pem": "<new intermediate + root>"}})
}

/// The commands that re-issue `cluster`'s intermediate by hand (mesh-spec §6.2, then a restart); its control
/// plane runs in `ns`.
pub fn commands(cluster: &ClusterName, ns: &str) -> Vec<String> {
    vec![
        format!(
            "make -f ../tools/certs/Makefile.selfsigned.mk {cluster}-cacerts   # a new intermediate from the same root"
        ),
        format!(
            "kubectl --context {cluster} create secret generic cacerts -n {ns} --from-file={cluster}/ca-cert.pem \
             --from-file={cluster}/ca-key.pem --from-file={cluster}/root-cert.pem --from-file={cluster}/cert-chain.pem \
             --dry-run=client -o yaml | kubectl --context {cluster} apply --server-side -f -"
        ),
        format!(
            "kubectl --context {cluster} -n {ns} rollout restart deployment -l {ISTIOD_SELECTOR}"
        ),
        format!(
            "kubectl --context {cluster} -n {ns} rollout status deployment -l {ISTIOD_SELECTOR}"
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

    /// What `cacerts` (in `ns`) holds after this pass, as the plan shows it (keys are made when the job runs).
    pub fn placeholder(self, ns: &str) -> Value {
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
            "metadata": {"name": "cacerts", "namespace": ns},
            "data": {"ca-cert.pem": ca, "ca-key.pem": key, "root-cert.pem": root, "cert-chain.pem": chain}})
    }

    /// The commands of this pass on `cluster` by hand (the recipe of §6.2 in `old/` and `new/` directories);
    /// its control plane runs in `ns`.
    pub fn commands(self, cluster: &ClusterName, ns: &str) -> Vec<String> {
        let secret = |dir: &str, root: &str| {
            format!(
                "kubectl --context {cluster} create secret generic cacerts -n {ns} \
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
        out.extend(commands(cluster, ns).split_off(2));
        out.extend([
            format!("kubectl --context {cluster} -n {ns} rollout restart daemonset ztunnel"),
            format!(
                "kubectl --context {cluster} -n {EASTWEST_NAMESPACE} rollout restart deployment {EASTWEST_NAME}"
            ),
            format!(
                "kubectl --context {cluster} -n {ns} rollout status daemonset ztunnel && \
                 kubectl --context {cluster} -n {EASTWEST_NAMESPACE} rollout status deployment {EASTWEST_NAME}"
            ),
        ]);
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
    let live = live_cacerts(t, step, "retry the rotation").await?;
    let ns = live.metadata.namespace.clone().unwrap_or_default();
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
            format!(
                "{ns}/cacerts is not the four-key form (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem)"
            ),
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
                format!(
                    "{ns}/cacerts holds an intermediate signed by neither the old nor the new root"
                ),
                "Put the mesh's root back (re-apply the cluster's root of trust), then retry the rotation",
            );
        }
        Pass::Trust => {
            return refuse(
                format!("{ns}/cacerts holds an intermediate not signed by the mesh's root"),
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
            Some(i.cacerts_secret(&ns))
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
    let restarted = restart_istiod(t, &ns, at, wait, progress).await?;
    // The data plane's certificates and trust bundle come from istiod: restarted after it, they are renewed
    // now rather than when each certificate would have been (up to a day later), so the next pass starts
    // with every workload trusting (then presenting) what this pass wrote.
    let data_plane = restart_data_plane(t, &ns, at, wait, progress).await?;
    Ok(Outcome {
        changed: changed || restarted.changed || data_plane.changed,
        summary: format!(
            "{}{}; {}; {}",
            if changed { "" } else { "cacerts already so: " },
            pass_summary(pass, &old_fp, &new_fp),
            restarted.summary,
            data_plane.summary
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

    #[test]
    fn each_pass_has_its_key_title_and_hand_commands() {
        let c = ClusterName::new("c2").unwrap_or_else(|e| panic!("{e}"));
        for p in Pass::ALL {
            assert_eq!(Pass::from_key(p.key()), Some(p));
            let cmds = p.commands(&c, "istio-system");
            assert!(
                cmds.iter().any(|l| l.contains("apply --server-side")),
                "{cmds:?}"
            );
            assert!(
                cmds.iter().any(|l| l.contains("rollout restart")),
                "{cmds:?}"
            );
            assert_eq!(p.placeholder("istio-system")["metadata"]["name"], "cacerts");
        }
        assert!(
            Pass::Trust.commands(&c, "istio-system")[0]
                .contains("old/root-cert.pem new/root-cert.pem")
        );
        assert_eq!(
            Pass::Drop.placeholder("istio-system")["data"]["root-cert.pem"],
            "<the new root alone>"
        );
    }

    #[test]
    fn the_commands_restart_istiod_by_its_label() {
        let c = commands(
            &ClusterName::new("c1").unwrap_or_else(|e| panic!("{e}")),
            "istio-system",
        );
        assert!(
            c.iter()
                .any(|l| l.contains("rollout restart deployment -l app=istiod"))
        );
    }
}
