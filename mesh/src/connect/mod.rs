//! Connecting to a registered cluster and reporting on it: reachable or not, server version, latency, and
//! which of the verbs Meshdeck needs are allowed (SelfSubjectAccessReview), so a user knows what to grant.
//! Every failure says what went wrong in words a user can act on.

use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::config::KubeConfigOptions;

use crate::kubeconfig::Credentials;
use crate::objects::ISTIO_NAMESPACE;

/// How long a connection attempt may take before the cluster counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A verb Meshdeck needs on a cluster, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    pub subresource: Option<&'static str>,
    /// The one object the verb is needed on, when the console only ever touches that one.
    pub name: Option<&'static str>,
    pub namespace: Option<&'static str>,
    pub purpose: &'static str,
    /// Only an administrator holds it: the Gloo Operator's chart creates a ClusterRole and its binding, which
    /// the console's least-privilege account (see [`crate::access`]) may not.
    pub admin_only: bool,
}

impl Permission {
    /// The namespace the verb is needed in when the control plane is installed in `istio_ns` (its
    /// installNamespace; the list names istio-system for it).
    pub fn namespace_in<'a>(&'a self, istio_ns: &'a str) -> Option<&'a str> {
        self.namespace
            .map(|ns| if ns == ISTIO_NAMESPACE { istio_ns } else { ns })
    }

    /// What is needed, said for a control plane installed in `istio_ns`.
    pub fn describe_in(&self, istio_ns: &str) -> String {
        match self.namespace_in(istio_ns) {
            Some(ns) => format!("{} in namespace {ns}", self.what()),
            None => format!("{} cluster-wide", self.what()),
        }
    }

    fn what(&self) -> String {
        let group = if self.group.is_empty() {
            "core".to_string()
        } else {
            self.group.to_string()
        };
        let res = match (self.subresource, self.name) {
            (Some(s), _) => format!("{}/{s}", self.resource),
            (None, Some(n)) => format!("{} {n}", self.resource),
            (None, None) => self.resource.to_string(),
        };
        format!("{} {res} ({group})", self.verb)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(ns) => write!(f, "{} in namespace {ns}", self.what()),
            None => write!(f, "{} cluster-wide", self.what()),
        }
    }
}

const fn perm(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
    purpose: &'static str,
) -> Permission {
    Permission {
        verb,
        group,
        resource,
        subresource: None,
        name: None,
        namespace,
        purpose,
        admin_only: false,
    }
}

const fn on(name: &'static str, p: Permission) -> Permission {
    Permission {
        name: Some(name),
        ..p
    }
}

const fn admin(p: Permission) -> Permission {
    Permission {
        admin_only: true,
        ..p
    }
}

/// The verbs setting up and running a mesh needs (mesh-spec.md §10), each with its purpose.
pub const REQUIRED: &[Permission] = &[
    perm(
        "list",
        "",
        "namespaces",
        None,
        "read the cluster's namespaces and their network labels",
    ),
    perm(
        "create",
        "",
        "namespaces",
        None,
        "create istio-system, gloo-mesh and istio-eastwest",
    ),
    perm(
        "patch",
        "",
        "namespaces",
        None,
        "label istio-system with its network",
    ),
    on(
        "cacerts",
        perm(
            "create",
            "",
            "secrets",
            Some("istio-system"),
            "write the cacerts intermediate CA",
        ),
    ),
    on(
        "cacerts",
        perm(
            "patch",
            "",
            "secrets",
            Some("istio-system"),
            "update the cacerts intermediate CA",
        ),
    ),
    on(
        "gateways.gateway.networking.k8s.io",
        perm(
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "install the Gateway API and operator CRDs",
        ),
    ),
    on(
        "gateways.gateway.networking.k8s.io",
        perm(
            "patch",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "upgrade the Gateway API CRDs",
        ),
    ),
    admin(perm(
        "create",
        "rbac.authorization.k8s.io",
        "clusterroles",
        None,
        "install the gloo-operator chart",
    )),
    admin(perm(
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        None,
        "install the gloo-operator chart",
    )),
    admin(perm(
        "create",
        "apps",
        "deployments",
        Some("gloo-mesh"),
        "install the gloo-operator chart",
    )),
    on(
        "gloo-extensions-config",
        perm(
            "patch",
            "",
            "configmaps",
            Some("gloo-mesh"),
            "write gloo-extensions-config",
        ),
    ),
    on(
        "managed-istio",
        perm(
            "patch",
            "operator.gloo.solo.io",
            "servicemeshcontrollers",
            Some("gloo-mesh"),
            "create the ServiceMeshController",
        ),
    ),
    perm(
        "patch",
        "gateway.networking.k8s.io",
        "gateways",
        Some("istio-eastwest"),
        "create east-west and peer gateways",
    ),
    perm(
        "delete",
        "gateway.networking.k8s.io",
        "gateways",
        Some("istio-eastwest"),
        "unlink clusters",
    ),
    perm(
        "list",
        "gateway.networking.k8s.io",
        "gateways",
        None,
        "run the gateway and peer checks",
    ),
    perm("list", "", "pods", None, "run the pod health checks"),
    perm(
        "list",
        "",
        "services",
        None,
        "read east-west gateway addresses",
    ),
    perm(
        "list",
        "apps",
        "deployments",
        None,
        "read istiod's settings",
    ),
    Permission {
        verb: "get",
        group: "",
        resource: "pods",
        subresource: Some("portforward"),
        name: None,
        namespace: Some("istio-system"),
        purpose: "check istiod's license through its debug endpoint (a WebSocket upgrade is a get)",
        admin_only: false,
    },
    Permission {
        verb: "create",
        group: "",
        resource: "pods",
        subresource: Some("portforward"),
        name: None,
        namespace: Some("istio-system"),
        purpose: "check istiod's license through its debug endpoint",
        admin_only: false,
    },
];

/// Why a cluster could not be reached or used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unreachable(String),
    Tls(String),
    Unauthorized(String),
    /// The address is outside what the console may connect to ([`Reach`]).
    NotAllowed(String),
    Other(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreachable(d) => write!(
                f,
                "cannot reach the API server ({d}); check the server address and that this machine can connect to it"
            ),
            Problem::Tls(d) => write!(
                f,
                "the API server's certificate is not trusted ({d}); check certificate-authority-data belongs to this cluster"
            ),
            Problem::Unauthorized(d) => write!(
                f,
                "the API server refused the credentials ({d}); the token or certificate is wrong or expired — issue a new one"
            ),
            Problem::NotAllowed(d) => write!(f, "the console may not connect there: {d}"),
            Problem::Other(d) => write!(f, "{d}"),
        }
    }
}

/// Classifies a client error into what the user can act on. The words are ours: nothing the far end sent is
/// echoed but a Kubernetes `Status` message (from a server that speaks the Kubernetes API), cut short. An
/// operator may name any https address, so an answer that is not the Kubernetes API — a web page, an internal
/// service's error body, a TLS library's account of the peer — must not come back through the console; the
/// full chain goes to the server's log at debug level instead.
pub fn classify(err: &kube::Error) -> Problem {
    if let kube::Error::Api(s) = err {
        // kube fills `reason` with this when the body was not a Kubernetes Status (then `message` is the body).
        let kubernetes = !s.reason.is_empty() && s.reason != "Failed to parse error data";
        let said = if kubernetes {
            format!(": {}", safe_message(&s.message))
        } else {
            String::new()
        };
        return match s.code {
            401 => Problem::Unauthorized(format!("HTTP 401{said}")),
            403 => Problem::Other(format!("HTTP 403 forbidden{said}")),
            code if kubernetes => Problem::Other(format!("HTTP {code}{said}")),
            code => Problem::Other(format!(
                "the server answered HTTP {code} but does not speak the Kubernetes API; check the server address"
            )),
        };
    }
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::debug!(error = %chain, "cluster request failed");
    let lower = chain.to_ascii_lowercase();
    let has = |keys: &[&str]| keys.iter().any(|k| lower.contains(k));
    if has(&[
        "notvalidforname",
        "not valid for name",
        "certnotvalidforname",
    ]) {
        Problem::Tls("the certificate is not valid for this host name".into())
    } else if has(&["expired", "notvalidyet"]) {
        Problem::Tls("the certificate has expired or is not yet valid".into())
    } else if has(&[
        "unknownissuer",
        "badsignature",
        "invalidcertificate",
        "certificate",
    ]) {
        Problem::Tls(
            "the certificate is not signed by the kubeconfig's certificate authority".into(),
        )
    } else if has(&[
        "tls handshake",
        "handshake",
        "alert",
        "invalidcontenttype",
        "corrupt message",
    ]) {
        Problem::Tls("the TLS handshake failed; the address may not serve https".into())
    } else if has(&["connection refused"]) {
        Problem::Unreachable("connection refused".into())
    } else if has(&[
        "dns",
        "failed to lookup",
        "name or service not known",
        "no such host",
    ]) {
        Problem::Unreachable("the host name does not resolve".into())
    } else if has(&["timed out", "timeout", "elapsed"]) {
        Problem::Unreachable("no answer in time".into())
    } else if has(&["no route", "unreachable", "network is down"]) {
        Problem::Unreachable("no network route to the address".into())
    } else if has(&[
        "connect error",
        "connection reset",
        "broken pipe",
        "connection closed",
    ]) {
        Problem::Unreachable("the connection failed".into())
    } else if has(&[
        "invalid http",
        "parse",
        "invalid response",
        "http2",
        "frame",
    ]) {
        Problem::Other(
            "the server's answer was not the Kubernetes API; check the server address".into(),
        )
    } else {
        Problem::Other(
            "the request failed; the console's log has the details (MESHDECK_LOG=debug)".into(),
        )
    }
}

/// A Kubernetes Status message fit to show: one line, printable, at most 300 characters.
fn safe_message(m: &str) -> String {
    let clean: String = m
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > 300 {
        format!("{}…", clean.chars().take(300).collect::<String>())
    } else {
        clean.to_string()
    }
}

/// Which addresses the console may connect to as a cluster's API server. An operator names the address at
/// registration, so without limits registration is a probe of whatever the console's host can reach (cloud
/// metadata endpoints, services on its own loopback). By default every address is allowed except loopback
/// (unless `allow_loopback`), link-local (169.254.0.0/16 — where cloud metadata lives — and fe80::/10),
/// unspecified, multicast and broadcast addresses; when `networks` is not empty, only addresses inside them
/// (plus loopback when allowed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub networks: Vec<IpNet>,
    pub allow_loopback: bool,
}

/// An address range such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<IpNet, String> {
        let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: std::net::IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an address range such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?
        };
        Ok(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl Reach {
    /// Parses a comma-separated list of ranges (empty: no restriction beyond the defaults).
    pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect()
    }

    /// Why the console may not connect to `ip`, if so.
    pub fn refuses(&self, ip: std::net::IpAddr) -> Option<String> {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback() {
            return (!self.allow_loopback).then(|| {
                format!(
                    "{ip} is a loopback address of the console's own machine; start the console with                      --allow-loopback-clusters to register clusters there (test and demo set-ups)"
                )
            });
        }
        if self.networks.iter().any(|n| n.contains(ip)) {
            return None;
        }
        let special = match ip {
            IpAddr::V4(a) => {
                a.is_link_local() || a.is_unspecified() || a.is_multicast() || a.is_broadcast()
            }
            IpAddr::V6(a) => {
                a.is_unspecified() || a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80
            }
        };
        if special {
            return Some(format!(
                "{ip} is a link-local, multicast or unspecified address (cloud metadata services live there);                  list it in --cluster-networks if a cluster's API server really is there"
            ));
        }
        if !self.networks.is_empty() {
            let list: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
            return Some(format!(
                "{ip} is outside the address ranges clusters may use ({}; setting --cluster-networks)",
                list.join(", ")
            ));
        }
        None
    }

    /// Resolves the host of `server` (an https:// URL) and checks every address it resolves to.
    pub async fn check(&self, server: &str) -> Result<(), Problem> {
        let uri: http::Uri = server
            .parse()
            .map_err(|_| Problem::Other(format!("{server:?} is not a URL")))?;
        let host = uri
            .host()
            .ok_or_else(|| Problem::Other(format!("{server:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let addrs: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| Problem::Unreachable("the host name did not resolve in time".into()))?
            .map_err(|_| Problem::Unreachable("the host name does not resolve".into()))?
            .map(|a| a.ip())
            .collect(),
        };
        if addrs.is_empty() {
            return Err(Problem::Unreachable(
                "the host name does not resolve".into(),
            ));
        }
        for ip in addrs {
            if let Some(why) = self.refuses(ip) {
                return Err(Problem::NotAllowed(why));
            }
        }
        Ok(())
    }
}

/// A client for stored credentials, with timeouts so an unreachable cluster fails fast.
pub async fn client(creds: &Credentials) -> Result<Client, Problem> {
    build(creds, Some(READ_TIMEOUT)).await
}

/// A client for the long-lived watches of [`crate::watch`]: like [`client`], but without the read timeout,
/// which cuts every watch that stays quiet for longer than [`READ_TIMEOUT`] (on an idle test cluster every
/// watch was cut, and listed again, within 25 s). A dead connection is noticed by the watches themselves:
/// each ends after [`crate::watch::WATCH_TIMEOUT`] and is resumed, and one silent for longer is dropped.
pub async fn watch_client(creds: &Credentials) -> Result<Client, Problem> {
    build(creds, None).await
}

async fn build(creds: &Credentials, read_timeout: Option<Duration>) -> Result<Client, Problem> {
    let opts = KubeConfigOptions {
        context: Some(creds.context.clone()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(creds.kubeconfig.clone(), &opts)
        .await
        .map_err(|e| Problem::Other(format!("the kubeconfig cannot be used: {e}")))?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = read_timeout;
    let counter = Counter(requests_of(&creds.server));
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(|e| classify(&e))?
        .with_layer(&counter)
        .build())
}

/// Requests this process sent to one API server: plain requests and watches (long-running) apart, so
/// polling shows as a growing request count while watches stay flat.
#[derive(Debug, Default)]
pub struct RequestCount {
    pub requests: std::sync::atomic::AtomicU64,
    pub watches: std::sync::atomic::AtomicU64,
}

type Counts = std::sync::Mutex<std::collections::BTreeMap<String, std::sync::Arc<RequestCount>>>;

static COUNTS: std::sync::LazyLock<Counts> = std::sync::LazyLock::new(Default::default);

fn requests_of(server: &str) -> std::sync::Arc<RequestCount> {
    let mut m = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    m.entry(server.to_string()).or_default().clone()
}

/// The requests sent so far per API server URL: `(server, requests, watches)`.
pub fn request_counts() -> Vec<(String, u64, u64)> {
    use std::sync::atomic::Ordering::Relaxed;
    let m = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    m.iter()
        .map(|(k, c)| (k.clone(), c.requests.load(Relaxed), c.watches.load(Relaxed)))
        .collect()
}

/// A tower layer counting the requests of a client.
#[derive(Clone)]
struct Counter(std::sync::Arc<RequestCount>);

impl<S> tower::Layer<S> for Counter {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    count: std::sync::Arc<RequestCount>,
}

impl<S, B> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        use std::sync::atomic::Ordering::Relaxed;
        let watch = req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        if watch {
            self.count.watches.fetch_add(1, Relaxed);
        } else {
            self.count.requests.fetch_add(1, Relaxed);
        }
        self.inner.call(req)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PermissionResult {
    pub permission: Permission,
    pub allowed: bool,
    /// The authorizer's reason, when it gave one.
    pub reason: Option<String>,
}

/// What a connectivity test found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub reachable: bool,
    pub server_version: Option<String>,
    pub latency: Option<Duration>,
    pub permissions: Vec<PermissionResult>,
    pub problem: Option<Problem>,
}

impl Report {
    /// The permissions Meshdeck lacks, for the "what to grant" list.
    pub fn missing(&self) -> Vec<&Permission> {
        self.permissions
            .iter()
            .filter(|p| !p.allowed)
            .map(|p| &p.permission)
            .collect()
    }
}

/// Asks the API server whether the credentials may do `p`, for a control plane installed in `istio_ns`.
pub(crate) async fn review(
    client: &Client,
    p: &Permission,
    istio_ns: &str,
) -> Result<PermissionResult, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(p.verb.into()),
                group: Some(p.group.into()),
                resource: Some(p.resource.into()),
                subresource: p.subresource.map(String::from),
                name: p.name.map(String::from),
                namespace: p.namespace_in(istio_ns).map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let status = r.status.unwrap_or_default();
    Ok(PermissionResult {
        permission: p.clone(),
        allowed: status.allowed,
        reason: status.reason.filter(|r| !r.is_empty()),
    })
}

/// Tests a cluster: version and latency, then every permission of [`REQUIRED`].
#[tracing::instrument(skip_all, fields(context = %creds.context))]
pub async fn probe(creds: &Credentials) -> Report {
    let failed = |problem: Problem| Report {
        reachable: !matches!(problem, Problem::Unreachable(_) | Problem::Tls(_)),
        server_version: None,
        latency: None,
        permissions: Vec::new(),
        problem: Some(problem),
    };
    let client = match client(creds).await {
        Ok(c) => c,
        Err(p) => return failed(p),
    };
    let start = Instant::now();
    let version = match client.apiserver_version().await {
        Ok(v) => v,
        Err(e) => return failed(classify(&e)),
    };
    let latency = start.elapsed();
    let results =
        futures::future::join_all(REQUIRED.iter().map(|p| review(&client, p, ISTIO_NAMESPACE)))
            .await;
    let mut permissions = Vec::new();
    for r in results {
        match r {
            Ok(p) => permissions.push(p),
            Err(e) => {
                return Report {
                    reachable: true,
                    server_version: Some(version.git_version.clone()),
                    latency: Some(latency),
                    permissions: Vec::new(),
                    problem: Some(classify(&e)),
                };
            }
        }
    }
    Report {
        reachable: true,
        server_version: Some(version.git_version),
        latency: Some(latency),
        permissions,
        problem: None,
    }
}

#[cfg(test)]
mod tests;
