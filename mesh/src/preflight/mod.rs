//! Preflight: what Meshdeck checks in each cluster before it changes anything (mesh-spec.md §9, §10.1), each
//! finding pass / warn / fail with what to do. Read-only, except one probe: to learn whether load-balancer
//! addresses get assigned, it creates a Service `meshdeck-lb-probe` of type LoadBalancer in
//! `istio-eastwest` (the namespace the east-west gateway will use, created if missing and kept, so a setup
//! right after does not race its deletion) and deletes the Service again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::checks::Status;
use crate::gateway_api::Action;
use crate::ids::ClusterName;
use crate::objects::{DataPlane, EASTWEST_NAMESPACE, gateway_resource};
use crate::setup::{ClusterSetup, Settings, Target};

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable key, e.g. "permissions".
    pub key: String,
    pub title: String,
    pub status: Status,
    pub message: String,
    pub remediation: Option<String>,
}

fn finding(key: &str, title: &str, status: Status, message: impl Into<String>) -> Finding {
    Finding {
        key: key.into(),
        title: title.into(),
        status,
        message: message.into(),
        remediation: None,
    }
}

impl Finding {
    fn fix(mut self, r: impl Into<String>) -> Self {
        if self.status != Status::Pass {
            self.remediation = Some(r.into());
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPreflight {
    pub cluster: ClusterName,
    pub findings: Vec<Finding>,
}

impl ClusterPreflight {
    pub fn blocked(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    pub fn get(&self, key: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.key == key)
    }
}

pub use crate::ids::{istio_version, nodeport_rule, upgrade_rule, version_rule};

mod infra;
mod installed;
#[cfg(test)]
mod tests;

use infra::*;
pub use installed::*;

/// Checks across the selection: unique cluster and network names, one Istio minor everywhere.
pub fn fleet(
    clusters: &[ClusterSetup],
    settings: &Settings,
) -> BTreeMap<ClusterName, Vec<Finding>> {
    let mut out: BTreeMap<ClusterName, Vec<Finding>> = BTreeMap::new();
    let mut networks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in clusters {
        networks
            .entry(c.network.as_str())
            .or_default()
            .push(c.name.as_str());
    }
    let minors: BTreeMap<(u64, u64), Vec<&str>> =
        clusters.iter().fold(BTreeMap::new(), |mut m, c| {
            let v = c.mesh_spec(settings).version;
            if let Some((a, b, _)) = istio_version(&v) {
                m.entry((a, b))
                    .or_insert_with(Vec::new)
                    .push(c.name.as_str());
            }
            m
        });
    for c in clusters {
        let f = out.entry(c.name.clone()).or_default();
        let dup = clusters.iter().filter(|o| o.name == c.name).count() > 1;
        f.push(
            finding(
                "names",
                "Unique cluster name",
                if dup { Status::Fail } else { Status::Pass },
                if dup { format!("{} is chosen twice", c.name) } else { format!("{} is unique", c.name) },
            )
            .fix("Each cluster needs its own name: it becomes the trust domain and the peer gateway's name."),
        );
        let same_net = &networks[c.network.as_str()];
        f.push(
            finding(
                "network",
                "Unique network",
                if same_net.len() > 1 { Status::Fail } else { Status::Pass },
                if same_net.len() > 1 {
                    format!("network {} is shared by {}: peers on one network are treated as flat, and traffic skips the gateways", c.network, same_net.join(", "))
                } else {
                    format!("network {} is unique", c.network)
                },
            )
            .fix("Give each cluster its own network name (the default is the cluster name), unless the clusters really share a flat pod network."),
        );
        let v = c.mesh_spec(settings).version;
        let rule = version_rule(&v);
        let skew = minors.len() > 1;
        f.push(match (&rule, skew) {
            (Err(e), _) => finding("istio-version", "Istio version", Status::Fail, e.clone())
                .fix("Choose a supported Solo Istio version, for example 1.28.1-patch0."),
            (Ok(()), true) => finding(
                "istio-version",
                "Istio version",
                Status::Warn,
                format!(
                    "{v}: the clusters run different Istio minors ({})",
                    minors
                        .keys()
                        .map(|(a, b)| format!("{a}.{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .fix("Use the same minor everywhere unless you are upgrading one cluster at a time."),
            (Ok(()), false) => {
                let note = if istio_version(&v).is_some_and(|x| x < (1, 27, 0)) {
                    " (the license check needs 1.27 or newer)"
                } else {
                    ""
                };
                finding(
                    "istio-version",
                    "Istio version",
                    Status::Pass,
                    format!("{v}{note}"),
                )
            }
        });
        if c.data_plane(settings) == DataPlane::NodePort {
            f.push(match nodeport_rule(&v) {
                Err(e) => finding("nodeport", "NodePort east-west (alpha)", Status::Fail, e)
                    .fix("Choose the LoadBalancer variant for this cluster, or an Istio version of 1.28 or newer."),
                Ok(()) => finding(
                    "nodeport",
                    "NodePort east-west (alpha)",
                    Status::Warn,
                    format!("{v} supports NodePort peering, which is alpha: likely to change, not fully tested, not supported for production"),
                )
                .fix("Fine for trials and cost-sensitive non-production meshes; choose LoadBalancer where support matters."),
            });
        }
    }
    out
}

/// The findings for one cluster (its own checks; add [`fleet`]'s for the selection).
#[tracing::instrument(skip_all, fields(cluster = %t.name))]
pub async fn cluster(
    t: &Target,
    c: &ClusterSetup,
    settings: &Settings,
    lb_probe: Duration,
) -> ClusterPreflight {
    let mut findings = vec![];
    let client = &t.client;
    match client.apiserver_version().await {
        Err(e) => {
            findings.push(
                finding("reachable", "Cluster reachable", Status::Fail, crate::connect::classify(&e).to_string())
                    .fix("Fix the address or credentials (Clusters → Re-test); nothing else can be checked."),
            );
            return ClusterPreflight {
                cluster: t.name.clone(),
                findings,
            };
        }
        Ok(v) => {
            let minor: u64 = v.minor.trim_end_matches('+').parse().unwrap_or(0);
            let (status, note) = match minor {
                0..=27 => (
                    Status::Fail,
                    "older than 1.28, which current Istio releases do not support",
                ),
                28..=29 => (
                    Status::Warn,
                    "near the end of Istio's support window; check the chosen Istio release's support matrix",
                ),
                _ => (Status::Pass, "supported"),
            };
            findings.push(
                finding("kubernetes", "Kubernetes version", status, format!("{}: {note}", v.git_version))
                    .fix("Upgrade the cluster, or choose an Istio release that supports this Kubernetes version."),
            );
        }
    }
    // Reviewed where this setup puts the control plane (its installNamespace), not only istio-system.
    let istio_ns = c.istio_namespace();
    let reviews = futures::future::join_all(
        crate::connect::REQUIRED
            .iter()
            .map(|p| crate::connect::review(client, p, istio_ns)),
    )
    .await;
    let missing: Vec<String> = reviews
        .iter()
        .filter_map(|r| match r {
            Ok(r) if !r.allowed => Some(format!(
                "{} — {}",
                r.permission.describe_in(istio_ns),
                r.permission.purpose
            )),
            Err(e) => Some(format!("(access review failed: {e})")),
            _ => None,
        })
        .collect();
    // Lacking rights where this setup installs the control plane, not istio-system: an onboarded account
    // given only istio-system's.
    let lacks_install_namespace = istio_ns != crate::objects::ISTIO_NAMESPACE
        && reviews.iter().any(|r| {
            matches!(r, Ok(r) if !r.allowed && r.permission.namespace_in(istio_ns) == Some(istio_ns))
        });
    // Only what an administrator holds is lacking (a cluster onboarded with least privilege): the setup can
    // go on; its Operator step stops, showing the helm command, unless the release is installed already.
    let admin_only = reviews.iter().all(|r| match r {
        Ok(r) => r.allowed || r.permission.admin_only,
        Err(_) => false,
    });
    let status = match (missing.is_empty(), admin_only) {
        (true, _) => Status::Pass,
        (false, true) => Status::Warn,
        (false, false) => Status::Fail,
    };
    findings.push(
        finding(
            "permissions",
            "Permissions",
            status,
            match status {
                Status::Pass => "every verb the setup needs is allowed".to_string(),
                Status::Warn => format!(
                    "every verb the setup needs is allowed but installing the Gloo Operator's chart, which only an \
                     administrator may do ({}): {}",
                    missing.len(),
                    missing.join("; ")
                ),
                _ => format!("missing {}: {}", missing.len(), missing.join("; ")),
            },
        )
        .fix(if status == Status::Warn {
            "If the Gloo Operator is not installed as planned yet, the Operator step stops and shows the helm command: an administrator runs it once, then retries the step.".to_string()
        } else if lacks_install_namespace {
            format!(
                "Grant these to the credentials Meshdeck uses for this cluster. A cluster onboarded with least privilege has \
                 rights in istio-system only: onboard it again (Clusters → {} → Access) with {istio_ns} among its \
                 control-plane namespaces (the cluster the console runs in: the chart's \
                 inCluster.controlPlaneNamespaces), then run the preflight again.",
                c.name
            )
        } else {
            "Grant these to the credentials Meshdeck uses for this cluster (for example bind cluster-admin for the setup), then run the preflight again.".to_string()
        }),
    );
    let (gw, istio, cacerts, legacy, lb, nodes, license) = tokio::join!(
        gateway_api(client),
        existing_istio(client, c),
        cacerts(client, c.istio_namespace()),
        legacy_secrets(client, c.istio_namespace()),
        load_balancers(client, c, settings, lb_probe),
        nodes(client, c, settings),
        license(client, settings),
    );
    findings.extend(gw);
    findings.extend(istio);
    findings.push(cacerts);
    findings.push(legacy);
    findings.push(lb);
    findings.extend(nodes);
    findings.push(license);
    if let crate::setup::Peering::Automatic { management } = &settings.peering {
        findings.push(crate::platform::automatic_peering(client, &t.name, management).await);
    }
    ClusterPreflight {
        cluster: t.name.clone(),
        findings,
    }
}

/// The label every load-balancer probe Service carries.
pub const PROBE_LABEL: &str = "meshdeck.dev/lb-probe";

fn probe_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.gen_range(0..36)]))
        .collect()
}

fn read_failed(key: &str, title: &str, what: &str, e: &kube::Error) -> Finding {
    finding(
        key,
        title,
        Status::Warn,
        format!("could not read {what}: {}", crate::connect::classify(e)),
    )
    .fix("Grant read access to it, or check it by hand.")
}

async fn license(client: &Client, settings: &Settings) -> Finding {
    match &settings.operator.license {
        crate::operator::License::Key(k) if k.trim().is_empty() => {
            finding("license", "License", Status::Fail, "no license key given")
                .fix("Paste the Solo license key, or reference a Secret that holds it.")
        }
        crate::operator::License::Key(_) => finding(
            "license",
            "License",
            Status::Pass,
            "a license key is given (the checks verify it with istiod after the install)",
        ),
        crate::operator::License::SecretRef(r) => {
            let Some((ns, name)) = r.split_once('/') else {
                return finding(
                    "license",
                    "License",
                    Status::Fail,
                    format!("{r:?} is not <namespace>/<name>"),
                )
                .fix("Reference the Secret as <namespace>/<name>.");
            };
            match Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
            {
                Ok(Some(s)) => {
                    let keys: Vec<String> =
                        s.data.map(|d| d.into_keys().collect()).unwrap_or_default();
                    let ok = [
                        "license-key",
                        "gloo-mesh-license-key",
                        "gloo-trial-license-key",
                    ]
                    .iter()
                    .any(|k| keys.iter().any(|x| x == k));
                    finding(
                        "license",
                        "License",
                        if ok { Status::Pass } else { Status::Fail },
                        if ok { format!("Secret {r} holds a license key") } else { format!("Secret {r} has none of the keys license-key, gloo-mesh-license-key, gloo-trial-license-key") },
                    )
                    .fix("Put the key under license-key in that Secret.")
                }
                Ok(None) => finding(
                    "license",
                    "License",
                    Status::Fail,
                    format!("Secret {r} does not exist in this cluster"),
                )
                .fix("Create it in every cluster, or paste the key instead."),
                Err(e) => read_failed("license", "License", &format!("Secret {r}"), &e),
            }
        }
    }
}
