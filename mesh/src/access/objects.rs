//! What onboarding applies: the console's account, roles and bindings, the impersonation role, and the
//! admission guard — each owned by Meshdeck's namespace.

use serde_json::{Value, json};

use super::rules::{CLUSTER_RULES, impersonation_rules, own_rules_json, roles};
use super::{ACCOUNT, NAMESPACE, ROLE};

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

/// What an onboarding gives the console's account beyond what every onboarding gives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grant<'a> {
    /// Per-user rights (`--oidc-impersonate`): the groups the account may assert for people; None: it does
    /// not act as people.
    pub impersonate: Option<&'a [String]>,
    /// Namespaces control planes are installed in besides istio-system (a ServiceMeshController's
    /// installNamespace): each gets istio-system's Role (cacerts, istiod's settings and restarts).
    pub control_planes: &'a [String],
}

/// Everything onboarding applies after the namespace, each owned by it (`owner_uid`: the namespace's uid);
/// `reads_only`: per-user rights (see [`own_rules_json`]); `control_planes`: see [`Grant`].
pub fn objects(owner_uid: &str, reads_only: bool, control_planes: &[String]) -> Vec<Value> {
    let mut out = vec![
        owned(
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": ACCOUNT, "namespace": NAMESPACE}}),
            owner_uid,
        ),
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": ROLE}, "rules": own_rules_json(CLUSTER_RULES, reads_only)}),
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
    for (ns, rules) in roles(control_planes) {
        out.push(owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": ROLE, "namespace": ns}, "rules": own_rules_json(rules, reads_only)}),
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

/// The impersonation ClusterRole and its binding, owned by Meshdeck's namespace like the rest.
pub fn impersonation_objects(owner_uid: &str, groups: &[String]) -> Vec<Value> {
    vec![
        owned(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": IMPERSONATE_ROLE}, "rules": impersonation_rules(groups)}),
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

/// What onboarding applies after the namespace: `objects` (reads only with per-user rights), the
/// impersonation role when asked (the groups it may assert), the guard.
pub fn all_objects(owner_uid: &str, grant: Grant<'_>) -> Vec<Value> {
    let mut out = objects(owner_uid, grant.impersonate.is_some(), grant.control_planes);
    if let Some(groups) = grant.impersonate {
        out.extend(impersonation_objects(owner_uid, groups));
    }
    out.extend(guard(owner_uid));
    out
}

/// The guard's rule for namespaces: every `pod-security.kubernetes.io/` label the namespace has after the
/// write it had before with the same value, and none it had is gone (a new namespace has none).
const PSA_UNCHANGED: &str = "request.resource.resource != 'namespaces' || (\
    (!has(object.metadata.labels) || object.metadata.labels.all(k, !k.startsWith('pod-security.kubernetes.io/') || \
       (oldObject != null && has(oldObject.metadata.labels) && k in oldObject.metadata.labels && \
        oldObject.metadata.labels[k] == object.metadata.labels[k]))) && \
    (oldObject == null || !has(oldObject.metadata.labels) || oldObject.metadata.labels.all(k, \
       !k.startsWith('pod-security.kubernetes.io/') || (has(object.metadata.labels) && k in object.metadata.labels))))";

/// The name of the admission policy (and its binding) that narrows what the console's account may write.
pub const GUARD: &str = "meshdeck-access-guard";

/// An admission policy bound to the console's account only: RBAC cannot say "this Secret, but not as a
/// ServiceAccount token" or "label a Service, but leave its spec", so the API server's own CEL does. It
/// refuses Secrets of type `kubernetes.io/service-account-token` (a way to another account's token), changes
/// to a Service's spec outside istio-eastwest (traffic interception), CRDs with a webhook conversion, and
/// any change to a namespace's Pod Security labels (`pod-security.kubernetes.io/*`: the console labels
/// namespaces for the mesh and the portal, and must not be a way to lift a namespace's pod security), and any
/// change to what a Deployment's or DaemonSet's pods run (it may patch them only to restart them — the pod
/// template's annotations — and must not be a way to run code as a ServiceAccount of a control plane's
/// namespace).
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
                         "operations": ["CREATE", "UPDATE"], "resources": ["customresourcedefinitions"]},
                        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                         "resources": ["namespaces"]},
                        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
                         "resources": ["deployments", "daemonsets"]}
                    ]},
                    "matchConditions": [{"name": "the-console", "expression": format!("request.userInfo.username == '{user}'")}],
                    "validations": [
                        {"expression": "request.resource.resource != 'secrets' || !has(object.type) || object.type != 'kubernetes.io/service-account-token'",
                         "message": "the console's account may not make ServiceAccount token Secrets"},
                        {"expression": "request.resource.resource != 'services' || request.operation != 'UPDATE' || request.namespace == 'istio-eastwest' || object.spec == oldObject.spec",
                         "message": "the console's account may label Services, not change their spec"},
                        {"expression": "request.resource.resource != 'customresourcedefinitions' || !has(object.spec.conversion) || !has(object.spec.conversion.strategy) || object.spec.conversion.strategy == 'None'",
                         "message": "the console's account may not install CRDs with a conversion webhook"},
                        {"expression": PSA_UNCHANGED,
                         "message": "the console's account may not set or change a namespace's Pod Security labels (pod-security.kubernetes.io/*)"},
                        {"expression": "(request.resource.resource != 'deployments' && request.resource.resource != 'daemonsets') || object.spec.template.spec == oldObject.spec.template.spec",
                         "message": "the console's account may restart Deployments and DaemonSets (their pod template's annotations), not change what their pods run"}
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
