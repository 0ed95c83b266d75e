//! What the team portal writes in a cluster: labels and annotations on a team's namespaces and Services
//! (portal.md, "the objects a team's action becomes"). The portal keeps, per object, the whole set it owns
//! ([`Owned`]) and applies that set server-side with the one field manager; a label that leaves the set is
//! released by the apply and so removed — the same apply adds and undoes, and running it again changes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::apply::retrying;

/// The team a namespace belongs to (set by the portal on every namespace it manages).
pub const TEAM_LABEL: &str = "meshdeck.io/team";
/// Sidecar injection without a revision.
pub const INJECTION_LABEL: &str = "istio-injection";
/// Sidecar injection by an istiod revision (the Gloo Operator's istiod runs under one).
pub const REVISION_LABEL: &str = "istio.io/rev";
/// Ambient mode.
pub const DATAPLANE_LABEL: &str = "istio.io/dataplane-mode";
/// Solo's global service scope (on a Service, or on a namespace for all of its Services).
pub const SCOPE_LABEL: &str = "solo.io/service-scope";
/// Spread traffic across clusters instead of preferring the local one.
pub const TRAFFIC_ANNOTATION: &str = "networking.istio.io/traffic-distribution";
/// The default of istiod's `PEERING_DISCOVERY_SUFFIX`.
pub const DEFAULT_SUFFIX: &str = "mesh.internal";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Apply(#[from] crate::apply::Error),
}

/// The labels and annotations the portal owns on one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Owned {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
    /// `key=value` of each label and annotation, for people.
    pub fn describe(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|(k, v)| format!("label {k}={v}"))
            .chain(
                self.annotations
                    .iter()
                    .map(|(k, v)| format!("annotation {k}={v}")),
            )
            .collect()
    }
}

/// One change a request makes to an object's owned set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Sidecar mode: `istio.io/rev=<revision>` when istiod runs under one, else `istio-injection=enabled`.
    Sidecar {
        revision: Option<String>,
    },
    Ambient,
    /// Out of the mesh: every data-plane label removed.
    Leave,
    /// Shared with `scope` (`global` or `global-only`); `spread` adds the traffic-distribution annotation.
    Share {
        scope: String,
        spread: bool,
    },
    Unshare,
}

/// The owned set after `change`. The team label stays on a namespace as long as the portal manages it.
pub fn transform(before: &Owned, change: &Change, team: Option<&str>) -> Owned {
    let mut o = before.clone();
    if let Some(team) = team {
        o.labels.insert(TEAM_LABEL.into(), team.into());
    }
    let leave = |o: &mut Owned| {
        for k in [INJECTION_LABEL, REVISION_LABEL, DATAPLANE_LABEL] {
            o.labels.remove(k);
        }
    };
    match change {
        Change::Sidecar { revision } => {
            leave(&mut o);
            match revision {
                Some(r) => o.labels.insert(REVISION_LABEL.into(), r.clone()),
                None => o.labels.insert(INJECTION_LABEL.into(), "enabled".into()),
            };
        }
        Change::Ambient => {
            leave(&mut o);
            o.labels.insert(DATAPLANE_LABEL.into(), "ambient".into());
        }
        Change::Leave => leave(&mut o),
        Change::Share { scope, spread } => {
            o.labels.insert(SCOPE_LABEL.into(), scope.clone());
            if *spread {
                o.annotations
                    .insert(TRAFFIC_ANNOTATION.into(), "Any".into());
            } else {
                o.annotations.remove(TRAFFIC_ANNOTATION);
            }
        }
        Change::Unshare => {
            o.labels.remove(SCOPE_LABEL);
            o.annotations.remove(TRAFFIC_ANNOTATION);
        }
    }
    o
}

/// The object to apply for a namespace (`service` None) or a Service: only the owned metadata.
pub fn object(namespace: &str, service: Option<&str>, owned: &Owned) -> Value {
    let mut metadata = match service {
        None => json!({ "name": namespace }),
        Some(s) => json!({ "name": s, "namespace": namespace }),
    };
    if !owned.labels.is_empty() {
        metadata["labels"] = json!(owned.labels);
    }
    if !owned.annotations.is_empty() {
        metadata["annotations"] = json!(owned.annotations);
    }
    json!({
        "apiVersion": "v1",
        "kind": if service.is_some() { "Service" } else { "Namespace" },
        "metadata": metadata,
    })
}

/// The kubectl commands that do what applying `after` over `before` does.
pub fn commands(
    context: &str,
    namespace: &str,
    service: Option<&str>,
    before: &Owned,
    after: &Owned,
    create_namespace: bool,
) -> Vec<String> {
    let mut out = vec![];
    if create_namespace {
        out.push(format!(
            "kubectl --context {context} create namespace {namespace}"
        ));
    }
    let target = match service {
        None => format!("namespace {namespace}"),
        Some(s) => format!("-n {namespace} service {s}"),
    };
    let verb_args = |verb: &str, now: &BTreeMap<String, String>, was: &BTreeMap<String, String>| {
        let mut args: Vec<String> = now
            .iter()
            .filter(|(k, v)| was.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.extend(
            was.keys()
                .filter(|k| !now.contains_key(*k))
                .map(|k| format!("{k}-")),
        );
        (!args.is_empty()).then(|| {
            format!(
                "kubectl --context {context} {verb} {target} {} --overwrite",
                args.join(" ")
            )
        })
    };
    out.extend(verb_args("label", &after.labels, &before.labels));
    out.extend(verb_args(
        "annotate",
        &after.annotations,
        &before.annotations,
    ));
    out
}

/// What the portal needs to know of a cluster's control plane: where istiod runs, its revision, and the
/// suffix of global service names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlPlane {
    /// The namespaces holding an istiod (the install namespace).
    pub namespaces: Vec<String>,
    /// `istio.io/rev` of istiod's Deployment, unless `default`.
    pub revision: Option<String>,
    /// `PEERING_DISCOVERY_SUFFIX` of istiod, or `mesh.internal`.
    pub suffix: String,
}

/// Reads the istiod Deployments (`app=istiod`, any namespace).
pub async fn control_plane(client: &Client) -> Result<ControlPlane, Error> {
    let api: Api<Deployment> = Api::all(client.clone());
    let lp = ListParams::default().labels("app=istiod");
    let list = retrying(|| api.list(&lp)).await?;
    let mut cp = ControlPlane {
        suffix: DEFAULT_SUFFIX.into(),
        ..Default::default()
    };
    for d in &list.items {
        if let Some(ns) = d.namespace()
            && !cp.namespaces.contains(&ns)
        {
            cp.namespaces.push(ns);
        }
        if cp.revision.is_none() {
            cp.revision = d
                .labels()
                .get(REVISION_LABEL)
                .filter(|r| r.as_str() != "default" && !r.is_empty())
                .cloned();
        }
        let env = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .into_iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| c.name == "discovery")
            .flat_map(|c| c.env.iter().flatten());
        for e in env {
            if e.name == "PEERING_DISCOVERY_SUFFIX"
                && let Some(v) = e.value.as_deref().filter(|v| !v.is_empty())
            {
                cp.suffix = v.trim_matches('.').to_string();
            }
        }
    }
    Ok(cp)
}

/// What is live of one namespace or Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Services: `name/port/protocol` of each port.
    pub ports: Vec<String>,
    /// Services: ready endpoints over every EndpointSlice.
    pub endpoints: u32,
}

/// Reads a namespace (`service` None) or a Service; None when it does not exist.
pub async fn live(
    client: &Client,
    namespace: &str,
    service: Option<&str>,
) -> Result<Option<Live>, Error> {
    match service {
        None => {
            let api: Api<Namespace> = Api::all(client.clone());
            let Some(ns) = retrying(|| api.get_opt(namespace)).await? else {
                return Ok(None);
            };
            Ok(Some(Live {
                labels: ns.labels().clone(),
                annotations: ns.annotations().clone(),
                ..Default::default()
            }))
        }
        Some(name) => {
            let api: Api<Service> = Api::namespaced(client.clone(), namespace);
            let Some(svc) = retrying(|| api.get_opt(name)).await? else {
                return Ok(None);
            };
            let ports = svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}/{}",
                                p.name.as_deref().unwrap_or(""),
                                p.port,
                                p.protocol.as_deref().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
            let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
            let endpoints = retrying(|| slices.list(&lp))
                .await?
                .items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
                .count() as u32;
            Ok(Some(Live {
                labels: svc.labels().clone(),
                annotations: svc.annotations().clone(),
                ports,
                endpoints,
            }))
        }
    }
}

/// What differs between what the portal applied and what is live (empty: in step).
pub fn drift(owned: &Owned, live: Option<&Live>) -> Vec<String> {
    let Some(live) = live else {
        return if owned.is_empty() {
            vec![]
        } else {
            vec!["the object no longer exists".into()]
        };
    };
    let mut out = vec![];
    let mut compare =
        |what: &str, want: &BTreeMap<String, String>, have: &BTreeMap<String, String>| {
            for (k, v) in want {
                match have.get(k) {
                    None => out.push(format!("{what} {k}={v} was removed")),
                    Some(h) if h != v => {
                        out.push(format!("{what} {k} is {h:?}, the portal applied {v:?}"))
                    }
                    Some(_) => {}
                }
            }
        };
    compare("label", &owned.labels, &live.labels);
    compare("annotation", &owned.annotations, &live.annotations);
    out
}

/// The mode a namespace's labels put it in: sidecar, ambient, or None.
pub fn mode_of(labels: &BTreeMap<String, String>) -> Option<&'static str> {
    if labels.get(DATAPLANE_LABEL).map(String::as_str) == Some("ambient") {
        Some("ambient")
    } else if labels.get(INJECTION_LABEL).map(String::as_str) == Some("enabled")
        || labels.contains_key(REVISION_LABEL)
    {
        Some("sidecar")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrolling_then_leaving_keeps_only_the_team_label() {
        let o = transform(
            &Owned::default(),
            &Change::Sidecar {
                revision: Some("gloo".into()),
            },
            Some("pay"),
        );
        assert_eq!(
            o.labels.get(REVISION_LABEL).map(String::as_str),
            Some("gloo")
        );
        assert_eq!(o.labels.get(TEAM_LABEL).map(String::as_str), Some("pay"));
        let amb = transform(&o, &Change::Ambient, Some("pay"));
        assert!(!amb.labels.contains_key(REVISION_LABEL));
        assert_eq!(mode_of(&amb.labels), Some("ambient"));
        let out = transform(&amb, &Change::Leave, Some("pay"));
        assert_eq!(out.labels.len(), 1);
        // Again: nothing changes.
        assert_eq!(transform(&out, &Change::Leave, Some("pay")), out);
    }

    #[test]
    fn sharing_sets_the_scope_and_optionally_spreads_traffic() {
        let o = transform(
            &Owned::default(),
            &Change::Share {
                scope: "global".into(),
                spread: true,
            },
            None,
        );
        assert_eq!(
            o.labels.get(SCOPE_LABEL).map(String::as_str),
            Some("global")
        );
        assert_eq!(
            o.annotations.get(TRAFFIC_ANNOTATION).map(String::as_str),
            Some("Any")
        );
        let v = object("pay", Some("web"), &o);
        assert_eq!(v["kind"], "Service");
        assert_eq!(v["metadata"]["namespace"], "pay");
        let back = transform(&o, &Change::Unshare, None);
        assert!(back.is_empty());
        assert!(
            object("pay", Some("web"), &back)["metadata"]
                .get("labels")
                .is_none()
        );
    }

    #[test]
    fn commands_add_and_remove_exactly_what_changes() {
        let before = transform(
            &Owned::default(),
            &Change::Sidecar { revision: None },
            Some("pay"),
        );
        let after = transform(&before, &Change::Ambient, Some("pay"));
        let cmds = commands("c1", "pay-web", None, &before, &after, false);
        assert_eq!(
            cmds,
            vec![
                "kubectl --context c1 label namespace pay-web istio.io/dataplane-mode=ambient istio-injection- --overwrite"
            ]
        );
        assert!(commands("c1", "n", None, &after, &after, false).is_empty());
    }

    #[test]
    fn drift_names_each_label_removed_or_changed() {
        let owned = transform(
            &Owned::default(),
            &Change::Share {
                scope: "global".into(),
                spread: false,
            },
            None,
        );
        let mut live = Live::default();
        assert_eq!(
            drift(&owned, Some(&live)),
            vec!["label solo.io/service-scope=global was removed"]
        );
        live.labels.insert(SCOPE_LABEL.into(), "global-only".into());
        assert!(drift(&owned, Some(&live))[0].contains("is \"global-only\""));
        live.labels.insert(SCOPE_LABEL.into(), "global".into());
        assert!(drift(&owned, Some(&live)).is_empty());
        assert_eq!(drift(&owned, None).len(), 1);
    }
}
