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

mod guard;
mod objects;
mod rules;

pub use guard::{Probe, probe, wait_until_guarded};
pub use objects::*;
pub use rules::*;

/// The namespaces onboarding makes sure exist (for the Roles in them): the mesh's, then `control_planes`
/// (other namespaces control planes are installed in, a ServiceMeshController's installNamespace). One that
/// exists is left untouched, so the labels the setup gives it are never taken away.
pub fn needed_namespaces(control_planes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = [ISTIO_NAMESPACE, OPERATOR_NAMESPACE, EASTWEST_NAMESPACE]
        .map(String::from)
        .to_vec();
    for ns in control_planes {
        if !out.contains(ns) {
            out.push(ns.clone());
        }
    }
    out
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
/// namespace, account, roles and bindings (see [`all_objects`] for `grant`), then takes away what an earlier
/// onboarding gave and this one does not ([`withdrawn`]: `dropped` control-plane namespaces, impersonation).
/// Safe to run again (re-onboarding puts back what was changed).
#[tracing::instrument(skip_all)]
pub async fn onboard(admin: &Client, grant: Grant<'_>, dropped: &[String]) -> Result<()> {
    crate::apply::apply(admin, &namespace(), false).await?;
    for ns in needed_namespaces(grant.control_planes) {
        if namespace_uid(admin, &ns).await?.is_none() {
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
    for obj in all_objects(&uid, grant) {
        crate::apply::apply(admin, &obj, false).await?;
    }
    for (w, api, obj_uid) in present(admin, &uid, grant, dropped).await? {
        let dp = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some(obj_uid),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(w.name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                return Err(Error::Kube {
                    what: format!("deleting {w}"),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// An object an earlier onboarding made that this one takes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: &'static str,
}

impl std::fmt::Display for Withdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What an onboarding with `grant` takes away, when an earlier one made it: the Role and binding in each
/// `dropped` control-plane namespace no longer named, and — without per-user rights — the impersonation
/// role and binding (an account that writes as itself must not keep `impersonate`).
pub fn withdrawn(grant: Grant<'_>, dropped: &[String]) -> Vec<Withdrawn> {
    let kept = needed_namespaces(grant.control_planes);
    let mut out = vec![];
    for ns in dropped.iter().filter(|ns| !kept.contains(ns)) {
        for kind in ["RoleBinding", "Role"] {
            out.push(Withdrawn {
                kind,
                namespace: Some(ns.clone()),
                name: ROLE,
            });
        }
    }
    if grant.impersonate.is_none() {
        for kind in ["ClusterRoleBinding", "ClusterRole"] {
            out.push(Withdrawn {
                kind,
                namespace: None,
                name: IMPERSONATE_ROLE,
            });
        }
    }
    out
}

type Present = (Withdrawn, Api<kube::api::DynamicObject>, String);

/// Of [`withdrawn`], those that exist and are owned by Meshdeck's namespace (`owner_uid`), with their uids;
/// one owned by anything else is left alone.
async fn present(
    client: &Client,
    owner_uid: &str,
    grant: Grant<'_>,
    dropped: &[String],
) -> Result<Vec<Present>> {
    let mut out = vec![];
    for w in withdrawn(grant, dropped) {
        let ar = kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            w.kind,
        ));
        let api = match &w.namespace {
            Some(ns) => Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), ns, &ar),
            None => Api::<kube::api::DynamicObject>::all_with(client.clone(), &ar),
        };
        let Some(obj) = api
            .get_opt(w.name)
            .await
            .map_err(kube_err(format!("reading {w}")))?
        else {
            continue;
        };
        let ours = obj
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == owner_uid);
        if let (true, Some(uid)) = (ours, obj.metadata.uid.clone()) {
            out.push((w, api, uid));
        }
    }
    Ok(out)
}

/// Of [`withdrawn`], what onboarding would delete on this cluster now (for the plan).
pub async fn to_withdraw(
    client: &Client,
    grant: Grant<'_>,
    dropped: &[String],
) -> Result<Vec<Withdrawn>> {
    let Some(uid) = namespace_uid(client, NAMESPACE).await? else {
        return Ok(vec![]);
    };
    Ok(present(client, &uid, grant, dropped)
        .await?
        .into_iter()
        .map(|(w, _, _)| w)
        .collect())
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

/// Whether Meshdeck's cluster-wide roles and bindings are gone (after [`revoke`], once the garbage collector
/// has run).
pub async fn gone(client: &Client, control_planes: &[String]) -> Result<bool> {
    let role = Api::<ClusterRole>::all(client.clone())
        .get_opt(ROLE)
        .await
        .map_err(kube_err(format!("reading ClusterRole {ROLE}")))?;
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt(ROLE)
        .await
        .map_err(kube_err(format!("reading ClusterRoleBinding {ROLE}")))?;
    let impersonation = Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt(IMPERSONATE_ROLE)
        .await
        .map_err(kube_err(format!(
            "reading ClusterRoleBinding {IMPERSONATE_ROLE}"
        )))?;
    let ns = Api::<Namespace>::all(client.clone())
        .get_opt(NAMESPACE)
        .await
        .map_err(kube_err(format!("reading namespace {NAMESPACE}")))?;
    let mesh_namespaces = needed_namespaces(control_planes);
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
        && impersonation.is_none()
        && ns.is_none()
        && roles.iter().all(|r| matches!(r, Ok(None)))
        && bindings.iter().all(|r| matches!(r, Ok(None))))
}

/// What `kubectl` does the same (the plan's CLI tab): the namespace first, then everything else owned by it
/// (its uid filled in), the mesh's namespaces when missing, and a first token.
/// `withdraw`: what an earlier onboarding made that this one deletes ([`to_withdraw`]).
pub fn commands(context: &str, grant: Grant<'_>, withdraw: &[Withdrawn]) -> Vec<String> {
    let k = format!("kubectl --context {context}");
    let mut yaml = String::new();
    for obj in all_objects("${OWNER_UID}", grant) {
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&obj).unwrap_or_default());
    }
    let ns = serde_yaml::to_string(&namespace()).unwrap_or_default();
    let deletes = withdraw.iter().map(|w| match &w.namespace {
        Some(ns) => format!("{k} -n {ns} delete {} {}", w.kind.to_lowercase(), w.name),
        None => format!("{k} delete {} {}", w.kind.to_lowercase(), w.name),
    });
    let mut out = vec![
        format!("{k} apply --server-side --field-manager=meshdeck -f - <<'EOF'\n{ns}EOF"),
        format!(
            "for ns in {}; do {k} get namespace $ns >/dev/null 2>&1 || {k} create namespace $ns; done",
            needed_namespaces(grant.control_planes).join(" ")
        ),
        format!("OWNER_UID=$({k} get namespace {NAMESPACE} -o jsonpath='{{.metadata.uid}}')"),
        format!(
            "sed \"s/\\${{OWNER_UID}}/$OWNER_UID/\" <<'EOF' | {k} apply --server-side --field-manager=meshdeck -f -\n{yaml}EOF"
        ),
    ];
    out.extend(deletes);
    out.push(format!(
        "{k} -n {NAMESPACE} create token {ACCOUNT} --duration={DEFAULT_TOKEN_SECONDS}s"
    ));
    out
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
        let all = roles(&["mesh-cp".to_string()])
            .into_iter()
            .flat_map(|(_, r)| r.iter());
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
    fn per_user_rights_impersonate_people_and_named_groups_and_leave_the_account_reading() {
        let plain = all_objects("u-1", Grant::default());
        let groups = [
            "sre".to_string(),
            "platform-admins".to_string(),
            "sre".to_string(),
            "system:masters".to_string(),
        ];
        let with = all_objects(
            "u-1",
            Grant {
                impersonate: Some(&groups),
                control_planes: &[],
            },
        );
        assert_eq!(with.len(), plain.len() + 2);
        let role = |objs: &[Value], kind: &str, name: &str, ns: Option<&str>| {
            objs.iter()
                .find(|o| {
                    o["kind"] == kind
                        && o["metadata"]["name"] == name
                        && o["metadata"]["namespace"].as_str() == ns
                })
                .unwrap_or_else(|| panic!("{kind} {name}"))["rules"]
                .clone()
        };
        assert_eq!(
            role(&with, "ClusterRole", IMPERSONATE_ROLE, None),
            json!([
                {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
                {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                 "resourceNames": ["platform-admins", "sre"]}
            ]),
            "never serviceaccounts, never a group not named (system:masters), never more than impersonate"
        );
        assert_eq!(
            impersonation_rules(&[]),
            json!([{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
            "no mapped group: no group at all (an empty resourceNames would be every group)"
        );
        // The account's own rules: reads, its token, its own namespace's deletion; no other write.
        for (kind, ns) in [
            ("ClusterRole", None),
            ("Role", Some(ISTIO_NAMESPACE)),
            ("Role", Some(OPERATOR_NAMESPACE)),
            ("Role", Some(EASTWEST_NAMESPACE)),
            ("Role", Some(NAMESPACE)),
        ] {
            let rules = role(&with, kind, ROLE, ns);
            assert!(
                !rules.as_array().expect("rules").is_empty(),
                "{kind} {ns:?}"
            );
            for r in rules.as_array().expect("rules") {
                let own = r["resources"] == json!(["serviceaccounts/token"])
                    || r["resourceNames"] == json!([NAMESPACE]);
                for v in r["verbs"].as_array().expect("verbs") {
                    let v = v.as_str().expect("verb");
                    assert!(is_read(v) || own, "{kind} {ns:?}: {r}");
                }
                assert!(
                    own || !r["resources"].to_string().contains('/'),
                    "no subresource: {r}"
                );
                assert!(
                    r["resources"] != json!(["secrets"])
                        || r["resourceNames"] == json!(["cacerts"]),
                    "no Secret but cacerts (the topology's): {r}"
                );
            }
            if ns != Some(NAMESPACE) {
                assert_ne!(
                    rules,
                    role(&plain, kind, ROLE, ns),
                    "fewer verbs: {kind} {ns:?}"
                );
            }
        }
        assert!(
            with.iter()
                .all(|o| o["metadata"]["ownerReferences"][0]["uid"] == "u-1"
                    || o["metadata"]["ownerReferences"].is_null() && o["kind"] == "Namespace")
        );
    }

    #[test]
    fn everything_is_owned_by_the_namespace() {
        let objs = objects("u-1", false, &[]);
        assert_eq!(objs.len(), 3 + 2 * roles(&[]).len());
        // Another control-plane namespace: istio-system's Role and binding there too, named once.
        let extra = ["mesh-cp".to_string(), ISTIO_NAMESPACE.to_string()];
        let more = objects("u-1", false, &extra);
        assert_eq!(more.len(), objs.len() + 2);
        let in_cp: Vec<&Value> = more
            .iter()
            .filter(|o| o["metadata"]["namespace"] == "mesh-cp")
            .collect();
        assert_eq!(in_cp.len(), 2);
        assert_eq!(in_cp[0]["rules"], rules_json(ISTIO_RULES));
        assert_eq!(
            needed_namespaces(&extra),
            [
                ISTIO_NAMESPACE,
                OPERATOR_NAMESPACE,
                EASTWEST_NAMESPACE,
                "mesh-cp"
            ]
        );
        for o in &objs {
            assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "u-1", "{o}");
            assert_eq!(o["metadata"]["ownerReferences"][0]["kind"], "Namespace");
        }
        let cmds = commands("c1", Grant::default(), &[]);
        assert!(!cmds.join("\n").contains(IMPERSONATE_ROLE));
        let sre = ["sre".to_string()];
        assert!(
            commands(
                "c1",
                Grant {
                    impersonate: Some(&sre),
                    control_planes: &[],
                },
                &[]
            )
            .join("\n")
            .contains("impersonate")
        );
        let cp = commands(
            "c1",
            Grant {
                impersonate: None,
                control_planes: &extra,
            },
            &[],
        );
        assert!(cp[1].contains("istio-eastwest mesh-cp; do"), "{}", cp[1]);
        assert!(cp[3].contains("namespace: mesh-cp"));
        // Taken away: the Role and binding of a namespace no longer named (never one still named, never
        // istio-system's), and impersonation when per-user rights are off.
        let dropped = [
            "old-cp".to_string(),
            "mesh-cp".to_string(),
            ISTIO_NAMESPACE.to_string(),
        ];
        let w = withdrawn(
            Grant {
                impersonate: Some(&sre),
                control_planes: &extra,
            },
            &dropped,
        );
        assert_eq!(
            w.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["RoleBinding old-cp/meshdeck", "Role old-cp/meshdeck"]
        );
        let w = withdrawn(Grant::default(), &[]);
        assert_eq!(
            w.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "ClusterRoleBinding meshdeck-impersonate",
                "ClusterRole meshdeck-impersonate"
            ]
        );
        let cmds = commands("c1", Grant::default(), &w);
        assert_eq!(
            cmds[4],
            "kubectl --context c1 delete clusterrolebinding meshdeck-impersonate"
        );
        assert!(cmds[6].contains("create token"));
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
