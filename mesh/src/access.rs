//! Least-privilege access to a cluster (issue 13). Admin credentials, given once, **onboard** a cluster:
//! Meshdeck creates its own ServiceAccount (`meshdeck/meshdeck`), a ClusterRole with exactly the verbs its
//! flows use (no `*`, no escalate, no bind, no creation of role bindings), Roles for the Secrets it touches
//! in the mesh's own namespaces, and the bindings — then keeps only short-lived tokens of that account
//! (TokenRequest API), which the account renews itself. Everything it creates for itself is owned by the
//! Namespace `meshdeck`, so revoking is one delete (`kubectl delete namespace meshdeck`): the garbage
//! collector removes the cluster-wide role and binding with it.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::kubeconfig::Credentials;
use crate::objects::{EASTWEST_NAMESPACE, ISTIO_NAMESPACE, OPERATOR_NAMESPACE};

/// Meshdeck's own namespace and ServiceAccount (and the name of its roles and bindings). Not `meshdeck`: a
/// console installed with the chart into namespace `meshdeck` keeps its own objects apart from these.
pub const NAMESPACE: &str = "meshdeck-access";
pub const ACCOUNT: &str = "meshdeck";
/// The name of Meshdeck's ClusterRole, ClusterRoleBinding, Roles and RoleBindings.
pub const ROLE: &str = "meshdeck";
/// How long a token lives unless configured otherwise.
pub const DEFAULT_TOKEN_SECONDS: i64 = 3600;
/// The shortest token the API server issues.
pub const MIN_TOKEN_SECONDS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Apply(#[from] crate::apply::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

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

/// Meshdeck's Roles: namespace and rules.
pub fn roles() -> [(&'static str, &'static [Rule]); 4] {
    [
        (NAMESPACE, TOKEN_RULES),
        (ISTIO_NAMESPACE, ISTIO_RULES),
        (OPERATOR_NAMESPACE, OPERATOR_RULES),
        (EASTWEST_NAMESPACE, EASTWEST_RULES),
    ]
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

fn owned(mut obj: Value, owner_uid: &str) -> Value {
    obj["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "v1",
        "kind": "Namespace",
        "name": NAMESPACE,
        "uid": owner_uid,
    }]);
    obj["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "meshdeck"});
    obj
}

fn subjects() -> Value {
    json!([{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}])
}

/// Meshdeck's own namespace.
pub fn namespace() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "meshdeck"}},
    })
}

/// Everything onboarding applies after the namespace, each owned by it (`owner_uid`: the namespace's uid).
pub fn objects(owner_uid: &str) -> Vec<Value> {
    let mut out = vec![
        owned(
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": ACCOUNT, "namespace": NAMESPACE}}),
            owner_uid,
        ),
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": ROLE}, "rules": rules_json(CLUSTER_RULES)}),
            owner_uid,
        ),
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": ROLE},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
                   "subjects": subjects()}),
            owner_uid,
        ),
    ];
    for (ns, rules) in roles() {
        out.push(owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": ROLE, "namespace": ns}, "rules": rules_json(rules)}),
            owner_uid,
        ));
        out.push(owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": ROLE, "namespace": ns},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
                   "subjects": subjects()}),
            owner_uid,
        ));
    }
    out
}

/// The ClusterRole (and binding) that lets the console act as the signed-in user (`--oidc-impersonate`).
pub const IMPERSONATE_ROLE: &str = "meshdeck-impersonate";

/// With per-user rights (`--oidc-impersonate`): act as people and their groups — nothing else, never as
/// ServiceAccounts (RBAC then decides per user; impersonating a user gives no more than that user has).
pub const IMPERSONATE_RULES: &[Rule] = &[rule(
    &[""],
    &["users", "groups"],
    &["impersonate"],
    "act as the signed-in single sign-on user and their groups, so the cluster's RBAC decides (--oidc-impersonate)",
)];

/// The impersonation ClusterRole and its binding, owned by Meshdeck's namespace like the rest.
pub fn impersonation_objects(owner_uid: &str) -> Vec<Value> {
    vec![
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": IMPERSONATE_ROLE}, "rules": rules_json(IMPERSONATE_RULES)}),
            owner_uid,
        ),
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": IMPERSONATE_ROLE},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": IMPERSONATE_ROLE},
                   "subjects": subjects()}),
            owner_uid,
        ),
    ]
}

/// What onboarding applies after the namespace: `objects`, the impersonation role when asked, the guard.
pub fn all_objects(owner_uid: &str, impersonate: bool) -> Vec<Value> {
    let mut out = objects(owner_uid);
    if impersonate {
        out.extend(impersonation_objects(owner_uid));
    }
    out.extend(guard(owner_uid));
    out
}

/// The name of the admission policy (and its binding) that narrows what the console's account may write.
pub const GUARD: &str = "meshdeck-access-guard";

/// An admission policy bound to the console's account only: RBAC cannot say "this Secret, but not as a
/// ServiceAccount token" or "label a Service, but leave its spec", so the API server's own CEL does. It
/// refuses Secrets of type `kubernetes.io/service-account-token` (a way to another account's token), changes
/// to a Service's spec outside istio-eastwest (traffic interception), and CRDs with a webhook conversion.
pub fn guard(owner_uid: &str) -> [Value; 2] {
    let user = format!("system:serviceaccount:{NAMESPACE}:{ACCOUNT}");
    [
        owned(
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": GUARD},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {"resourceRules": [
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                         "resources": ["secrets", "services"]},
                        {"apiGroups": ["apiextensions.k8s.io"], "apiVersions": ["v1"],
                         "operations": ["CREATE", "UPDATE"], "resources": ["customresourcedefinitions"]}
                    ]},
                    "matchConditions": [{"name": "the-console", "expression": format!("request.userInfo.username == '{user}'")}],
                    "validations": [
                        {"expression": "request.resource.resource != 'secrets' || !has(object.type) || object.type != 'kubernetes.io/service-account-token'",
                         "message": "the console's account may not make ServiceAccount token Secrets"},
                        {"expression": "request.resource.resource != 'services' || request.operation != 'UPDATE' || request.namespace == 'istio-eastwest' || object.spec == oldObject.spec",
                         "message": "the console's account may label Services, not change their spec"},
                        {"expression": "request.resource.resource != 'customresourcedefinitions' || !has(object.spec.conversion) || !has(object.spec.conversion.strategy) || object.spec.conversion.strategy == 'None'",
                         "message": "the console's account may not install CRDs with a conversion webhook"}
                    ]
                }
            }),
            owner_uid,
        ),
        owned(
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": GUARD},
                "spec": {"policyName": GUARD, "validationActions": ["Deny"]}
            }),
            owner_uid,
        ),
    ]
}

/// The namespaces onboarding makes sure exist (for the Roles in them); one that exists is left untouched,
/// so the labels the setup gives it are never taken away.
pub fn needed_namespaces() -> [&'static str; 3] {
    [ISTIO_NAMESPACE, OPERATOR_NAMESPACE, EASTWEST_NAMESPACE]
}

/// The namespace's uid, when it exists.
pub async fn namespace_uid(client: &Client, name: &str) -> Result<Option<String>> {
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading namespace {name}")))?;
    Ok(ns.and_then(|n| n.metadata.uid))
}

/// Onboards a cluster with `admin` (a client with rights to grant those roles): applies Meshdeck's
/// namespace, account, roles and bindings. Safe to run again (re-onboarding puts back what was changed).
#[tracing::instrument(skip_all)]
pub async fn onboard(admin: &Client, impersonate: bool) -> Result<()> {
    crate::apply::apply(admin, &namespace(), false).await?;
    for ns in needed_namespaces() {
        if namespace_uid(admin, ns).await?.is_none() {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            crate::apply::apply(admin, &obj, false).await?;
        }
    }
    let uid = namespace_uid(admin, NAMESPACE)
        .await?
        .ok_or_else(|| Error::Other(format!("namespace {NAMESPACE} vanished while onboarding")))?;
    if namespace_terminating(admin).await? {
        return Err(Error::Other(format!(
            "namespace {NAMESPACE} is being deleted (access was revoked moments ago); wait until it is gone, \
             then onboard again"
        )));
    }
    for obj in all_objects(&uid, impersonate) {
        crate::apply::apply(admin, &obj, false).await?;
    }
    Ok(())
}

async fn namespace_terminating(client: &Client) -> Result<bool> {
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(NAMESPACE)
        .await
        .map_err(kube_err(format!("reading namespace {NAMESPACE}")))?;
    Ok(ns.and_then(|n| n.metadata.deletion_timestamp).is_some())
}

/// A token of Meshdeck's account.
pub struct Token {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Asks for a new token of Meshdeck's account, valid `seconds` (the API server may shorten it).
pub async fn request_token(client: &Client, seconds: i64) -> Result<Token> {
    request_token_for(client, NAMESPACE, ACCOUNT, seconds).await
}

/// Asks for a new token of the ServiceAccount `namespace/name` (the console's own: a pod's account may mint
/// its next token when a Role lets it).
pub async fn request_token_for(
    client: &Client,
    namespace: &str,
    name: &str,
    seconds: i64,
) -> Result<Token> {
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(seconds.max(MIN_TOKEN_SECONDS)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let r = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &req)
        .await
        .map_err(kube_err(format!(
            "requesting a token for ServiceAccount {namespace}/{name}"
        )))?;
    let status = r
        .status
        .ok_or_else(|| Error::Other("the API server returned no token".into()))?;
    Ok(Token {
        token: status.token,
        expires_at: status.expiration_timestamp.0.as_second(),
    })
}

/// What a ServiceAccount token says of itself (its payload is not verified here: the API server does that
/// on every request): `namespace/name`, issued at, expires at (Unix seconds).
pub fn token_claims(token: &str) -> Option<(String, i64, i64)> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let sub = v["sub"].as_str()?.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = sub.split_once(':')?;
    Some((
        format!("{ns}/{name}"),
        v["iat"].as_i64()?,
        v["exp"].as_i64()?,
    ))
}

/// The credentials of Meshdeck's account: the cluster (server, CA) of `base`, with `token` as the user.
pub fn credentials(base: &Credentials, token: &str) -> Credentials {
    let mut kc = base.kubeconfig.clone();
    for user in &mut kc.auth_infos {
        user.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.to_string().into()),
            ..Default::default()
        });
    }
    Credentials {
        kubeconfig: kc,
        ..base.clone()
    }
}

/// Revokes Meshdeck's access: deletes its namespace, which owns its account, roles and bindings (the
/// garbage collector removes the cluster-wide ones). Works with Meshdeck's own credentials. Returns false
/// when there was nothing to delete.
pub async fn revoke(client: &Client) -> Result<bool> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(ns) = api
        .get_opt(NAMESPACE)
        .await
        .map_err(kube_err(format!("reading namespace {NAMESPACE}")))?
    else {
        return Ok(false);
    };
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    if labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        != Some("meshdeck")
        || labels.contains_key("helm.sh/chart")
    {
        return Err(Error::Other(format!(
            "namespace {NAMESPACE} was not made by onboarding (not labelled app.kubernetes.io/managed-by=meshdeck): \
             left alone; delete what you want gone by hand"
        )));
    }
    let mut dp = DeleteParams::foreground();
    dp.preconditions = ns.metadata.uid.map(|uid| kube::api::Preconditions {
        uid: Some(uid),
        resource_version: None,
    });
    match api.delete(NAMESPACE, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(kube_err(format!("deleting namespace {NAMESPACE}"))(e)),
    }
}

/// Whether Meshdeck's cluster-wide role and binding are gone (after [`revoke`], once the garbage collector
/// has run).
pub async fn gone(client: &Client) -> Result<bool> {
    let role = Api::<ClusterRole>::all(client.clone())
        .get_opt(ROLE)
        .await
        .map_err(kube_err(format!("reading ClusterRole {ROLE}")))?;
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt(ROLE)
        .await
        .map_err(kube_err(format!("reading ClusterRoleBinding {ROLE}")))?;
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(NAMESPACE)
        .await
        .map_err(kube_err(format!("reading namespace {NAMESPACE}")))?;
    let mesh_namespaces = needed_namespaces();
    let roles = futures::future::join_all(mesh_namespaces.iter().map(|ns| {
        let api = Api::<Role>::namespaced(client.clone(), ns);
        async move { api.get_opt(ROLE).await }
    }))
    .await;
    let bindings = futures::future::join_all(mesh_namespaces.iter().map(|ns| {
        let api = Api::<RoleBinding>::namespaced(client.clone(), ns);
        async move { api.get_opt(ROLE).await }
    }))
    .await;
    Ok(role.is_none()
        && binding.is_none()
        && ns.is_none()
        && roles.iter().all(|r| matches!(r, Ok(None)))
        && bindings.iter().all(|r| matches!(r, Ok(None))))
}

/// What `kubectl` does the same (the plan's CLI tab): the namespace first, then everything else owned by it
/// (its uid filled in), the mesh's namespaces when missing, and a first token.
pub fn commands(context: &str, impersonate: bool) -> Vec<String> {
    let k = format!("kubectl --context {context}");
    let mut yaml = String::new();
    for obj in all_objects("${OWNER_UID}", impersonate) {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&obj).unwrap_or_default());
    }
    let ns = serde_yaml::to_string(&namespace()).unwrap_or_default();
    vec![
        format!("{k} apply --server-side --field-manager=meshdeck -f - <<'EOF'\n{ns}EOF"),
        format!(
            "for ns in {}; do {k} get namespace $ns >/dev/null 2>&1 || {k} create namespace $ns; done",
            needed_namespaces().join(" ")
        ),
        format!("OWNER_UID=$({k} get namespace {NAMESPACE} -o jsonpath='{{.metadata.uid}}')"),
        format!(
            "sed \"s/\\${{OWNER_UID}}/$OWNER_UID/\" <<'EOF' | {k} apply --server-side --field-manager=meshdeck -f -\n{yaml}EOF"
        ),
        format!("{k} -n {NAMESPACE} create token {ACCOUNT} --duration={DEFAULT_TOKEN_SECONDS}s"),
    ]
}

/// The commands revoking does.
pub fn revoke_commands(context: &str) -> Vec<String> {
    vec![format!(
        "kubectl --context {context} delete namespace {NAMESPACE}   # owns the ServiceAccount, its roles, bindings and admission policy"
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_no_escalation_no_bindings() {
        let all = roles().into_iter().flat_map(|(_, r)| r.iter());
        for r in CLUSTER_RULES.iter().chain(all) {
            for v in r.verbs {
                assert!(
                    !["*", "escalate", "bind", "impersonate"].contains(v),
                    "{r:?}"
                );
            }
            assert!(
                !r.resources.contains(&"*") && !r.groups.contains(&"*"),
                "{r:?}"
            );
            assert!(
                !r.groups.contains(&"rbac.authorization.k8s.io"),
                "no role or binding may be made: {r:?}"
            );
            assert!(!r.why.is_empty());
        }
        assert!(
            CLUSTER_RULES
                .iter()
                .all(|r| !r.resources.contains(&"secrets")),
            "no Secret is readable cluster-wide"
        );
    }

    #[test]
    fn per_user_rights_add_only_impersonating_people_and_groups() {
        let plain = all_objects("u-1", false);
        let with = all_objects("u-1", true);
        assert_eq!(with.len(), plain.len() + 2);
        let role = with
            .iter()
            .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == IMPERSONATE_ROLE)
            .expect("the impersonation role");
        assert_eq!(
            role["rules"],
            json!([{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]),
            "never serviceaccounts, never more than impersonate"
        );
        assert!(
            with.iter()
                .all(|o| o["metadata"]["ownerReferences"][0]["uid"] == "u-1"
                    || o["metadata"]["ownerReferences"].is_null() && o["kind"] == "Namespace")
        );
    }

    #[test]
    fn everything_is_owned_by_the_namespace() {
        let objs = objects("u-1");
        assert_eq!(objs.len(), 3 + 2 * roles().len());
        for o in &objs {
            assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "u-1", "{o}");
            assert_eq!(o["metadata"]["ownerReferences"][0]["kind"], "Namespace");
        }
        let cmds = commands("c1", false);
        assert!(!cmds.join("\n").contains(IMPERSONATE_ROLE));
        assert!(commands("c1", true).join("\n").contains("impersonate"));
        assert!(cmds[0].contains("kind: Namespace") && cmds[0].contains("--context c1"));
        assert!(cmds[3].contains("kind: ClusterRole\n") && cmds[3].contains("uid: ${OWNER_UID}"));
        assert!(
            cmds[2].starts_with("OWNER_UID=$(kubectl --context c1 get namespace meshdeck-access")
        );
        assert!(revoke_commands("c1")[0].contains("delete namespace meshdeck-access"));
        for o in guard("u-1") {
            assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "u-1");
        }
    }

    #[test]
    fn a_service_account_token_names_its_account_and_life() {
        use base64::Engine;
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!(
            "{}.{}.sig",
            enc(json!({"alg": "RS256"})),
            enc(json!({"sub": "system:serviceaccount:tools:meshdeck", "iat": 10, "exp": 3610}))
        );
        assert_eq!(
            token_claims(&token),
            Some(("tools/meshdeck".into(), 10, 3610))
        );
        assert_eq!(token_claims("not-a-jwt"), None);
        let user = format!(
            "{}.{}.sig",
            enc(json!({})),
            enc(json!({"sub": "alice", "iat": 1, "exp": 2}))
        );
        assert_eq!(token_claims(&user), None, "not a ServiceAccount");
    }

    #[test]
    fn the_crds_written_are_those_of_the_bundle() {
        use kube::ResourceExt;
        let mut bundle: Vec<String> = crate::gateway_api::bundle()
            .expect("bundle")
            .iter()
            .map(|c| c.name_any())
            .collect();
        bundle.sort();
        assert_eq!(bundle, WRITTEN_CRDS);
    }
}
