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
    pub namespace: Option<&'static str>,
    pub purpose: &'static str,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core".to_string()
        } else {
            self.group.to_string()
        };
        let res = match self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.to_string(),
        };
        match self.namespace {
            Some(ns) => write!(f, "{} {res} ({group}) in namespace {ns}", self.verb),
            None => write!(f, "{} {res} ({group}) cluster-wide", self.verb),
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
        namespace,
        purpose,
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
    perm(
        "create",
        "",
        "secrets",
        Some("istio-system"),
        "write the cacerts intermediate CA",
    ),
    perm(
        "patch",
        "",
        "secrets",
        Some("istio-system"),
        "update the cacerts intermediate CA",
    ),
    perm(
        "create",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
        "install the Gateway API and operator CRDs",
    ),
    perm(
        "patch",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
        "upgrade the Gateway API CRDs",
    ),
    perm(
        "create",
        "rbac.authorization.k8s.io",
        "clusterroles",
        None,
        "install the gloo-operator chart",
    ),
    perm(
        "create",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        None,
        "install the gloo-operator chart",
    ),
    perm(
        "create",
        "apps",
        "deployments",
        Some("gloo-mesh"),
        "install the gloo-operator chart",
    ),
    perm(
        "patch",
        "",
        "configmaps",
        Some("gloo-mesh"),
        "write gloo-extensions-config",
    ),
    perm(
        "patch",
        "operator.gloo.solo.io",
        "servicemeshcontrollers",
        Some("gloo-mesh"),
        "create the ServiceMeshController",
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
        verb: "create",
        group: "",
        resource: "pods",
        subresource: Some("portforward"),
        namespace: Some("istio-system"),
        purpose: "check istiod's license through its debug endpoint",
    },
];

/// Why a cluster could not be reached or used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unreachable(String),
    Tls(String),
    Unauthorized(String),
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
            Problem::Other(d) => write!(f, "{d}"),
        }
    }
}

/// Classifies a client error into what the user can act on.
pub fn classify(err: &kube::Error) -> Problem {
    if let kube::Error::Api(s) = err {
        return match s.code {
            401 => Problem::Unauthorized(format!("HTTP 401 {}", s.message)),
            _ => Problem::Other(format!("HTTP {} {}", s.code, s.message)),
        };
    }
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if [
        "certificate",
        "unknownissuer",
        "invalidcertificate",
        "tls handshake",
        "badsignature",
    ]
    .iter()
    .any(|k| lower.contains(k))
    {
        Problem::Tls(chain)
    } else if [
        "connection refused",
        "timed out",
        "timeout",
        "dns",
        "no route",
        "unreachable",
        "connect error",
        "elapsed",
    ]
    .iter()
    .any(|k| lower.contains(k))
    {
        Problem::Unreachable(chain)
    } else {
        Problem::Other(chain)
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

pub(crate) async fn review(
    client: &Client,
    p: &Permission,
) -> Result<PermissionResult, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(p.verb.into()),
                group: Some(p.group.into()),
                resource: Some(p.resource.into()),
                subresource: p.subresource.map(String::from),
                namespace: p.namespace.map(String::from),
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
    let results = futures::future::join_all(REQUIRED.iter().map(|p| review(&client, p))).await;
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
