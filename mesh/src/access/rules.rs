//! Meshdeck's roles on a cluster: each rule with why the console needs it, as JSON, and the smaller set its
//! own account keeps with per-user rights.

use serde_json::{Value, json};

use super::{ACCOUNT, NAMESPACE};
use crate::objects::{EASTWEST_NAMESPACE, ISTIO_NAMESPACE, OPERATOR_NAMESPACE};

/// One rule of Meshdeck's roles, with why the console needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub groups: &'static [&'static str],
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Only these objects (empty: any).
    pub names: &'static [&'static str],
    pub why: &'static str,
}

const fn rule(
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    why: &'static str,
) -> Rule {
    named(groups, resources, verbs, &[], why)
}

const READ: &[&str] = &["get", "list", "watch"];
/// Server-side apply is authorized as `patch`, and as `create` too when the object does not exist yet.
const APPLY: &[&str] = &["get", "list", "watch", "create", "patch"];

const fn named(
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    names: &'static [&'static str],
    why: &'static str,
) -> Rule {
    Rule {
        groups,
        resources,
        verbs,
        names,
        why,
    }
}

/// The CRDs the console writes: the Gateway API bundle (`gateway_api::bundle`, checked by a test).
pub const WRITTEN_CRDS: &[&str] = &[
    "backendtlspolicies.gateway.networking.k8s.io",
    "gatewayclasses.gateway.networking.k8s.io",
    "gateways.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "referencegrants.gateway.networking.k8s.io",
];

/// The ClusterRole: what the setup, checks, topology and portal flows read or write across the cluster
/// (cluster-scoped objects, or namespaces that vary: the teams').
pub const CLUSTER_RULES: &[Rule] = &[
    rule(
        &[""],
        &["namespaces"],
        APPLY,
        "create the mesh's namespaces and label istio-system with its network; enrol (create or label) the \
         portal's team namespaces; the topology watches the mesh's namespaces",
    ),
    rule(
        &[""],
        &["services"],
        &["get", "list", "watch", "patch"],
        "read east-west gateway addresses and the services across the mesh (topology); label the services a \
         team shares (portal)",
    ),
    rule(
        &[""],
        &["pods"],
        &["list"],
        "run the pod health checks (istiod, ztunnel, east-west gateways)",
    ),
    rule(
        &[""],
        &["nodes"],
        &["list"],
        "preflight: nodes Istio cannot run on (Fargate, virtual nodes), and node addresses for NodePort peering",
    ),
    rule(
        &["discovery.k8s.io"],
        &["endpointslices"],
        &["list"],
        "see in which clusters a shared service has ready endpoints (portal)",
    ),
    rule(
        &["apps"],
        &["deployments"],
        &["list"],
        "find istiod's revision and peering suffix (portal)",
    ),
    rule(
        &["gateway.networking.k8s.io"],
        &["gateways"],
        &["list"],
        "the gateway and peer checks",
    ),
    rule(
        &["apiextensions.k8s.io"],
        &["customresourcedefinitions"],
        READ,
        "see which Gateway API version and whether the operator's CRD is served",
    ),
    named(
        &["apiextensions.k8s.io"],
        &["customresourcedefinitions"],
        &["create", "patch"],
        WRITTEN_CRDS,
        "install and upgrade the Gateway API CRDs (these six only)",
    ),
    named(
        &["admissionregistration.k8s.io"],
        &["validatingadmissionpolicies"],
        &["get"],
        &["safe-upgrades.gateway.networking.k8s.io"],
        "see whether the Gateway API's safe-upgrades policy is installed",
    ),
    named(
        &[""],
        &["namespaces"],
        &["delete"],
        &[NAMESPACE],
        "revoke Meshdeck's own access (its namespace owns its account, roles and bindings)",
    ),
];

/// The Role in istio-system.
pub const ISTIO_RULES: &[Rule] = &[
    named(
        &[""],
        &["secrets"],
        APPLY,
        &["cacerts"],
        "write the cluster's intermediate CA (cacerts) and read it back; no other Secret",
    ),
    named(
        &[""],
        &["configmaps"],
        READ,
        &["istio-ca-root-cert", "istio-gloo", "istio"],
        "read istiod's mesh settings and the CA root it distributes",
    ),
    rule(
        &[""],
        &["pods/portforward"],
        &["get", "create"],
        "read istiod's license through its debug endpoint",
    ),
    rule(
        &["apps"],
        &["deployments", "daemonsets"],
        &["get", "list", "watch", "patch"],
        "follow istiod and ztunnel; restart them after a CA change (the pod template's restartedAt annotation)",
    ),
    rule(
        &["networking.istio.io"],
        &["workloadentries"],
        &["list"],
        "the peer checks: workload entries istiod made for peer gateways",
    ),
];

/// The Role in gloo-mesh: the operator's namespace.
pub const OPERATOR_RULES: &[Rule] = &[
    rule(
        &[""],
        &["secrets"],
        READ,
        "read helm's records of the gloo-operator release (is it deployed as planned?)",
    ),
    named(
        &[""],
        &["secrets"],
        APPLY,
        &["meshdeck-license"],
        "write the license Secret the release points at; no other Secret",
    ),
    named(
        &[""],
        &["configmaps"],
        APPLY,
        &["gloo-extensions-config"],
        "write gloo-extensions-config",
    ),
    rule(&[""], &["pods"], &["list"], "wait for the operator's pod"),
    rule(
        &["apps"],
        &["deployments"],
        READ,
        "follow the operator's Deployment",
    ),
    named(
        &["operator.gloo.solo.io"],
        &["servicemeshcontrollers"],
        APPLY,
        &["managed-istio"],
        "create the ServiceMeshController and follow its status",
    ),
    rule(
        &["operator.gloo.solo.io"],
        &["servicemeshcontrollers"],
        &["list", "watch"],
        "follow the ServiceMeshController (watches list the namespace)",
    ),
];

/// The Role in istio-eastwest: the gateways' namespace.
pub const EASTWEST_RULES: &[Rule] = &[
    rule(
        &["gateway.networking.k8s.io"],
        &["gateways"],
        &["get", "list", "watch", "create", "patch", "delete"],
        "create the east-west and peer gateways, follow their status, remove peer gateways",
    ),
    rule(
        &[""],
        &["services"],
        &["get", "create", "patch", "delete"],
        "the load-balancer probe of the preflight (a Service made and deleted)",
    ),
    rule(
        &["apps"],
        &["deployments"],
        &["get", "patch"],
        "restart the east-west gateway after a root rotation (the pod template's restartedAt annotation)",
    ),
];

/// The Role in Meshdeck's own namespace: renewing its own token, nothing else.
pub const TOKEN_RULES: &[Rule] = &[named(
    &[""],
    &["serviceaccounts/token"],
    &["create"],
    &[ACCOUNT],
    "renew the console's own short-lived token before it expires",
)];

/// The ClusterRole of the console's pod account when it manages the cluster it runs in (the chart's
/// `inCluster`): the same, but for revoking, which the chart does instead.
pub fn in_cluster_rules() -> Vec<Rule> {
    CLUSTER_RULES
        .iter()
        .filter(|r| r.names != [NAMESPACE])
        .copied()
        .collect()
}

/// Meshdeck's Roles: namespace and rules. `control_planes`: other namespaces control planes are installed
/// in (a ServiceMeshController's installNamespace), each given istio-system's Role.
pub fn roles(control_planes: &[String]) -> Vec<(String, &'static [Rule])> {
    let mut out: Vec<(String, &'static [Rule])> = vec![
        (NAMESPACE.into(), TOKEN_RULES),
        (ISTIO_NAMESPACE.into(), ISTIO_RULES),
        (OPERATOR_NAMESPACE.into(), OPERATOR_RULES),
        (EASTWEST_NAMESPACE.into(), EASTWEST_RULES),
    ];
    for ns in control_planes {
        if !out.iter().any(|(n, _)| n == ns) {
            out.push((ns.clone(), ISTIO_RULES));
        }
    }
    out
}

/// Rules as a Role's or ClusterRole's `rules` (JSON).
pub fn rules_json(rules: &[Rule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|r| {
                let mut v = json!({
                    "apiGroups": r.groups,
                    "resources": r.resources,
                    "verbs": r.verbs,
                });
                if !r.names.is_empty() {
                    v["resourceNames"] = json!(r.names);
                }
                v
            })
            .collect(),
    )
}

/// Whether `verb` only reads.
pub fn is_read(verb: &str) -> bool {
    READ.contains(&verb)
}

/// The rules of the console's own account as JSON: all of them, or — with per-user rights, where work done
/// for people goes out as them — only what work nobody started needs: reading (the topology's watches, the
/// mesh's state), renewing its own token, and deleting its own namespace (revoking). Writes and
/// subresources (port-forward) are dropped: the people the console acts for need them in the cluster's RBAC.
pub fn own_rules_json(rules: &[Rule], reads_only: bool) -> Value {
    if !reads_only {
        return rules_json(rules);
    }
    Value::Array(
        rules
            .iter()
            .filter_map(|r| {
                let own = r.resources == ["serviceaccounts/token"] || r.names == [NAMESPACE];
                // Secrets: only cacerts, which the topology watches; the license and helm's records are
                // read for people, as them.
                let other_secrets = r.resources == ["secrets"] && r.names != ["cacerts"];
                let verbs: Vec<&str> = if own {
                    r.verbs.to_vec()
                } else if other_secrets || r.resources.iter().any(|res| res.contains('/')) {
                    vec![]
                } else {
                    r.verbs
                        .iter()
                        .copied()
                        .filter(|v| READ.contains(v))
                        .collect()
                };
                if verbs.is_empty() {
                    return None;
                }
                let mut v =
                    json!({"apiGroups": r.groups, "resources": r.resources, "verbs": verbs});
                if !r.names.is_empty() {
                    v["resourceNames"] = json!(r.names);
                }
                Some(v)
            })
            .collect(),
    )
}

/// With per-user rights (`--oidc-impersonate`): the impersonation ClusterRole's rules — people, and the
/// `groups` the console's mappings name, by name (never ServiceAccounts, never a group it was not told of
/// when onboarded, never a `system:` group such as system:masters; no groups rule when none is left: an
/// empty resourceNames would mean every group). RBAC cannot narrow impersonation of *users* by name or
/// prefix, and Kubernetes binds its own components' rights to user names (system:kube-controller-manager
/// may read every Secret): an account holding this role is as strong as cluster-admin (README).
pub fn impersonation_rules(groups: &[String]) -> Value {
    let mut groups: Vec<&str> = groups
        .iter()
        .map(String::as_str)
        .filter(|g| !g.starts_with("system:"))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let mut rules =
        vec![json!({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]})];
    if !groups.is_empty() {
        rules.push(
            json!({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                          "resourceNames": groups}),
        );
    }
    Value::Array(rules)
}
