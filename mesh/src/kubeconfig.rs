//! Intake of kubeconfigs pasted or uploaded by users.
//!
//! A kubeconfig is code as much as data: `exec` and `auth-provider` entries run programs, and file
//! references (`tokenFile`, `client-certificate`, `certificate-authority`, …) read files — on the server, if
//! the console used them as given. Intake therefore accepts only self-contained credentials (inline token,
//! inline client certificate and key, inline CA data) and turns one chosen context into a minimal kubeconfig
//! holding just that context, which is what the registry stores (encrypted).

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// The largest kubeconfig accepted (a real one with a few dozen contexts is well under this).
pub const MAX_KUBECONFIG_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error(
        "the kubeconfig is {size} bytes; the limit is {limit} bytes (1 MiB). Paste only the contexts you need"
    )]
    TooLarge { size: usize, limit: usize },
    #[error("the kubeconfig is empty")]
    Empty,
    #[error("the kubeconfig cannot be read: {0}")]
    Malformed(String),
    #[error("the kubeconfig has no context named {context:?}; it has: {available}")]
    NoSuchContext { context: String, available: String },
    #[error("context {context:?} names cluster {cluster:?}, which the kubeconfig does not define")]
    NoSuchCluster { context: String, cluster: String },
    #[error("context {context:?} names user {user:?}, which the kubeconfig does not define")]
    NoSuchUser { context: String, user: String },
    #[error("context {context:?}: the cluster has no server address")]
    NoServer { context: String },
    #[error("context {context:?}: the server address {server:?} is not an https:// URL")]
    NotHttps { context: String, server: String },
    #[error(
        "context {context:?}: the user authenticates with {what}, which would run a program or read a file on the Meshdeck \
         server. Use a kubeconfig with an inline token or inline client certificate, for example one for a service account \
         (kubectl create token)"
    )]
    Refused { context: String, what: String },
    #[error(
        "context {context:?}: the user has no credentials (no token and no client certificate)"
    )]
    NoCredentials { context: String },
    #[error(
        "context {context:?}: the kubeconfig turns TLS verification off (insecure-skip-tls-verify). Give the cluster's CA \
         (certificate-authority-data) instead, or confirm skipping verification for this cluster explicitly"
    )]
    InsecureNotConfirmed { context: String },
    #[error("context {context:?}: {field} is not valid base64")]
    BadBase64 {
        context: String,
        field: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One context of a kubeconfig, as offered to the user to pick from.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextSummary {
    pub name: String,
    pub cluster: String,
    pub server: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
}

/// Parses a kubeconfig text, refusing oversize or malformed input.
pub fn parse(text: &str) -> Result<Kubeconfig> {
    if text.len() > MAX_KUBECONFIG_BYTES {
        return Err(Error::TooLarge {
            size: text.len(),
            limit: MAX_KUBECONFIG_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    // kube's parser accepts multi-document YAML and merges; a paste is one document. Bounded as expanded
    // (crate::yaml): a kubeconfig has no use for aliases that multiply its size.
    let limits = crate::yaml::Limits {
        input_bytes: MAX_KUBECONFIG_BYTES,
        documents: 1,
        ..crate::yaml::Limits::INPUT
    };
    crate::yaml::from_str(text, &limits).map_err(|e| Error::Malformed(e.to_string()))
}

/// The contexts of a kubeconfig.
pub fn contexts(kc: &Kubeconfig) -> Vec<ContextSummary> {
    kc.contexts
        .iter()
        .map(|nc| {
            let ctx = nc.context.clone().unwrap_or_default();
            let server = kc
                .clusters
                .iter()
                .find(|c| c.name == ctx.cluster)
                .and_then(|c| c.cluster.as_ref())
                .and_then(|c| c.server.clone());
            ContextSummary {
                name: nc.name.clone(),
                cluster: ctx.cluster,
                server,
                user: ctx.user,
                namespace: ctx.namespace,
            }
        })
        .collect()
}

/// The credentials of one context, validated and self-contained.
#[derive(Clone)]
pub struct Credentials {
    /// A kubeconfig with exactly this context (named after it), its cluster and its user, all inline.
    pub kubeconfig: Kubeconfig,
    pub context: String,
    pub server: String,
    pub insecure_skip_tls_verify: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the kubeconfig: it holds secrets.
        f.debug_struct("Credentials")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The minimal kubeconfig as YAML, for encrypted storage.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.kubeconfig).unwrap_or_default()
    }

    /// The same credentials acting as `user` in `groups` (`Impersonate-User` / `Impersonate-Group` on every
    /// request; `as` / `as-groups` in the kubeconfig, which helm honours too): the cluster's own RBAC decides
    /// what the user may do. The account behind the credentials needs only the `impersonate` verb for that.
    pub fn impersonating(&self, user: &str, groups: &[String]) -> Credentials {
        let mut c = self.clone();
        for a in &mut c.kubeconfig.auth_infos {
            if let Some(info) = a.auth_info.as_mut() {
                info.impersonate = Some(user.to_string());
                info.impersonate_groups = (!groups.is_empty()).then(|| groups.to_vec());
            }
        }
        c
    }

    /// Who these credentials act as, when they impersonate someone.
    pub fn acting_as(&self) -> Option<&str> {
        self.kubeconfig
            .auth_infos
            .iter()
            .find_map(|a| a.auth_info.as_ref()?.impersonate.as_deref())
    }
}

fn check_b64(context: &str, field: &'static str, value: Option<&str>) -> Result<()> {
    use base64::Engine;
    if let Some(v) = value {
        let cleaned: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned)
            .map_err(|_| Error::BadBase64 {
                context: context.to_string(),
                field,
            })?;
    }
    Ok(())
}

/// Extracts one context's credentials, refusing anything that is not self-contained.
/// `allow_insecure` is the user's explicit, per-cluster choice to skip TLS verification.
pub fn extract(kc: &Kubeconfig, context: &str, allow_insecure: bool) -> Result<Credentials> {
    let named = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .ok_or_else(|| Error::NoSuchContext {
            context: context.to_string(),
            available: {
                let names: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
                if names.is_empty() {
                    "no contexts".to_string()
                } else {
                    names.join(", ")
                }
            },
        })?;
    let ctx = named.context.clone().unwrap_or_default();
    let ctxs = context.to_string();
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| Error::NoSuchCluster {
            context: ctxs.clone(),
            cluster: ctx.cluster.clone(),
        })?;
    let user_name = ctx.user.clone().unwrap_or_default();
    let user = kc
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| Error::NoSuchUser {
            context: ctxs.clone(),
            user: user_name.clone(),
        })?;

    let server = cluster
        .server
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or(Error::NoServer {
            context: ctxs.clone(),
        })?;
    if !server.starts_with("https://") {
        return Err(Error::NotHttps {
            context: ctxs.clone(),
            server,
        });
    }
    let refuse = |what: &str| {
        Err(Error::Refused {
            context: ctxs.clone(),
            what: what.to_string(),
        })
    };
    if user.exec.is_some() {
        return refuse("an exec plugin (exec)");
    }
    if user.auth_provider.is_some() {
        return refuse("an auth-provider");
    }
    if user.token_file.is_some() {
        return refuse("a token file (tokenFile)");
    }
    if user.client_certificate.is_some() || user.client_key.is_some() {
        return refuse("certificate files (client-certificate / client-key)");
    }
    if cluster.certificate_authority.is_some() {
        return refuse("a CA file (certificate-authority)");
    }
    if user.username.is_some() || user.password.is_some() {
        return refuse(
            "a username and password (basic authentication is not supported by Kubernetes)",
        );
    }
    if user.impersonate.is_some() || user.impersonate_groups.is_some() {
        return refuse("impersonation (as / as-groups)");
    }
    let has_token = user.token.is_some();
    let has_cert = user.client_certificate_data.is_some() && user.client_key_data.is_some();
    if !has_token && !has_cert {
        return Err(Error::NoCredentials {
            context: ctxs.clone(),
        });
    }
    check_b64(
        &ctxs,
        "certificate-authority-data",
        cluster.certificate_authority_data.as_deref(),
    )?;
    check_b64(
        &ctxs,
        "client-certificate-data",
        user.client_certificate_data.as_deref(),
    )?;
    let insecure = cluster.insecure_skip_tls_verify.unwrap_or(false);
    if insecure && !allow_insecure {
        return Err(Error::InsecureNotConfirmed {
            context: ctxs.clone(),
        });
    }

    let minimal = Kubeconfig {
        clusters: vec![NamedCluster {
            name: context.to_string(),
            cluster: Some(Cluster {
                server: Some(server.clone()),
                insecure_skip_tls_verify: if insecure { Some(true) } else { None },
                certificate_authority_data: cluster.certificate_authority_data.clone(),
                tls_server_name: cluster.tls_server_name.clone(),
                proxy_url: cluster.proxy_url.clone(),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: context.to_string(),
            auth_info: Some(AuthInfo {
                token: user.token.clone(),
                client_certificate_data: user.client_certificate_data.clone(),
                client_key_data: user.client_key_data.clone(),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: context.to_string(),
            context: Some(Context {
                cluster: context.to_string(),
                user: Some(context.to_string()),
                namespace: ctx.namespace.clone(),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(context.to_string()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Default::default()
    };
    Ok(Credentials {
        kubeconfig: minimal,
        context: context.to_string(),
        server,
        insecure_skip_tls_verify: insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENCK3dJSkFLSE9nMzRFZ3cxSk1BMEdDU3FHU0liM0RRRUJDd1VBTUJFeER6QU5CZ05WQkFNTUJuUmwKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn kc(user: &str, cluster_extra: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod-cluster\n  cluster:\n    server: https://10.0.0.1:6443\n    \
             certificate-authority-data: {CA}\n{cluster_extra}contexts:\n- name: prod\n  context:\n    cluster: prod-cluster\n    user: prod-user\n    \
             namespace: team-a\nusers:\n- name: prod-user\n  user:\n{user}"
        )
    }

    #[test]
    fn an_inline_token_context_becomes_a_minimal_kubeconfig() {
        let text = kc("    token: abc.def\n", "");
        let parsed = parse(&text).expect("parse");
        assert_eq!(
            contexts(&parsed)[0].server.as_deref(),
            Some("https://10.0.0.1:6443")
        );
        let creds = extract(&parsed, "prod", false).expect("extract");
        assert_eq!(creds.server, "https://10.0.0.1:6443");
        let yaml = creds.to_yaml();
        let again = parse(&yaml).expect("round trip");
        assert_eq!(again.contexts.len(), 1);
        assert_eq!(
            again.contexts[0]
                .context
                .as_ref()
                .map(|c| c.namespace.clone()),
            Some(Some("team-a".into()))
        );
        assert!(
            !format!("{creds:?}").contains("abc.def"),
            "Debug never shows the token"
        );
    }

    #[test]
    fn impersonating_credentials_say_so_in_the_kubeconfig_helm_reads() {
        let creds = extract(
            &parse(&kc("    token: abc.def\n", "")).expect("parse"),
            "prod",
            false,
        )
        .expect("extract");
        assert_eq!(creds.acting_as(), None);
        let alice = creds.impersonating("alice@example.com", &["platform-admins".into()]);
        assert_eq!(alice.acting_as(), Some("alice@example.com"));
        let yaml = alice.to_yaml();
        assert!(yaml.contains("as: alice@example.com"), "{yaml}");
        assert!(
            yaml.contains("as-groups:") && yaml.contains("platform-admins"),
            "{yaml}"
        );
        assert_eq!(creds.acting_as(), None, "the original is unchanged");
    }

    #[test]
    fn credentials_that_run_programs_or_read_files_are_refused() {
        let cases = [
            (
                "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      args: [eks, get-token]\n",
                "",
                "exec",
            ),
            (
                "    auth-provider:\n      name: gcp\n      config: {}\n",
                "",
                "auth-provider",
            ),
            ("    tokenFile: /var/run/secrets/token\n", "", "tokenFile"),
            (
                "    client-certificate: /home/u/.kube/cert.pem\n    client-key: /home/u/.kube/key.pem\n",
                "",
                "client-certificate",
            ),
            (
                "    token: t\n",
                "    certificate-authority: /etc/passwd\n",
                "certificate-authority",
            ),
            (
                "    username: admin\n    password: hunter2\n",
                "",
                "basic authentication",
            ),
        ];
        for (user, extra, what) in cases {
            let parsed = parse(&kc(user, extra)).expect("parse");
            let err = extract(&parsed, "prod", false).expect_err(what);
            assert!(matches!(err, Error::Refused { .. }), "{what}: {err:?}");
            assert!(err.to_string().contains(what), "{what}: {err}");
            assert!(
                err.to_string().contains("\"prod\""),
                "names the context: {err}"
            );
        }
    }

    #[test]
    fn bad_input_gets_a_message_that_says_what_is_wrong() {
        assert!(matches!(parse(""), Err(Error::Empty)));
        assert!(matches!(
            parse("clusters: [unclosed"),
            Err(Error::Malformed(_))
        ));
        let big = "#".repeat(5 * 1024 * 1024);
        assert!(matches!(parse(&big), Err(Error::TooLarge { .. })));
        let parsed = parse(&kc("    token: t\n", "")).expect("parse");
        let err = extract(&parsed, "staging", false).expect_err("no such context");
        assert_eq!(
            err.to_string(),
            "the kubeconfig has no context named \"staging\"; it has: prod"
        );
        let no_creds = parse(&kc("    {}\n", "")).expect("parse");
        assert!(matches!(
            extract(&no_creds, "prod", false),
            Err(Error::NoCredentials { .. })
        ));
        let http = parse(&kc("    token: t\n", "").replace("https://10.0.0.1", "http://10.0.0.1"))
            .expect("parse");
        assert!(matches!(
            extract(&http, "prod", false),
            Err(Error::NotHttps { .. })
        ));
    }

    #[test]
    fn skipping_tls_verification_needs_an_explicit_choice() {
        let parsed = parse(&kc(
            "    token: t\n",
            "    insecure-skip-tls-verify: true\n",
        ))
        .expect("parse");
        assert!(matches!(
            extract(&parsed, "prod", false),
            Err(Error::InsecureNotConfirmed { .. })
        ));
        let creds = extract(&parsed, "prod", true).expect("confirmed");
        assert!(creds.insecure_skip_tls_verify);
    }
}
