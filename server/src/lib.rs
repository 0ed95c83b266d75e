//! The console server: configuration (flags and `MESHDECK_*` environment, validated at start), start-up
//! (store, secret key, first admin, optional kubeconfig import) and the HTTP router (health, the Leptos
//! pages and server functions, static files, sessions).

pub mod assets;
pub mod guard;
pub mod memory;
pub mod telemetry;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use app::ssr::registry::{Registration, Registry};
use app::ssr::secrets::SecretBox;
pub use app::ssr::state::AppState;
use app::ssr::store::Store;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};

/// The server's settings. Every flag has an environment variable with the `MESHDECK_` prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--addr` / `MESHDECK_ADDR`, default 127.0.0.1:3000.
    pub addr: SocketAddr,
    /// `--database-url` / `MESHDECK_DATABASE_URL` (or `DATABASE_URL`), default an embedded SQLite file.
    pub database_url: String,
    /// `--key-file` / `MESHDECK_KEY_FILE`: the secret key, created 0600 on first start. Ignored when
    /// `MESHDECK_SECRET_KEY` (base64) is set.
    pub key_file: PathBuf,
    /// `--import-kubeconfig` / `MESHDECK_IMPORT_KUBECONFIG`: register this file's contexts at start.
    pub import_kubeconfig: Option<PathBuf>,
    /// `--in-cluster NAME` / `MESHDECK_IN_CLUSTER`: register the cluster the console runs in under NAME, with
    /// its pod's ServiceAccount (`MESHDECK_SERVICEACCOUNT_DIR`, default the standard mount, and
    /// `KUBERNETES_SERVICE_HOST`/`PORT`).
    pub in_cluster: Option<String>,
    /// `--public-url` / `MESHDECK_PUBLIC_URL`: the address users open, when a TLS proxy is in front; an
    /// https:// URL makes the session cookie Secure.
    pub public_url: Option<String>,
    /// `--site-root` / `MESHDECK_SITE_ROOT` (or `LEPTOS_SITE_ROOT`): the built browser files, default
    /// `target/site`.
    pub site_root: PathBuf,
    /// `--helm` / `MESHDECK_HELM`: the helm binary the operator install uses, default `helm` on PATH.
    pub helm: PathBuf,
    /// `--operator-chart` / `MESHDECK_OPERATOR_CHART` and `--operator-chart-version` /
    /// `MESHDECK_OPERATOR_CHART_VERSION`: the gloo-operator chart setups install (an OCI or repository
    /// reference, or a chart folder or `.tgz` on this machine for air-gapped sites).
    pub chart: mesh::operator::Chart,
    /// `--job-lease` / `MESHDECK_JOB_LEASE_SECS`: how long a job stays with a console that stopped renewing it
    /// before another takes it over (default 30 s).
    pub job_lease: std::time::Duration,
    /// `--shutdown-grace` / `MESHDECK_SHUTDOWN_GRACE`: at SIGTERM, how long running jobs get to finish the
    /// step they are on before they are stopped there and handed over (default 20 s; keep it under the pod's
    /// termination grace period).
    pub shutdown_grace: std::time::Duration,
    /// `--cluster-token-ttl` / `MESHDECK_CLUSTER_TOKEN_TTL`: seconds the console's tokens for onboarded
    /// clusters live (600–86400, default 3600); each is renewed after two thirds of that.
    pub cluster_token_ttl: i64,
    /// `--cluster-networks` / `MESHDECK_CLUSTER_NETWORKS` and `--allow-loopback-clusters` /
    /// `MESHDECK_ALLOW_LOOPBACK_CLUSTERS`: which API server addresses clusters may have (mesh::connect::Reach).
    pub reach: mesh::connect::Reach,
    /// `--trusted-proxies` / `MESHDECK_TRUSTED_PROXIES`: proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<mesh::connect::IpNet>,
    /// `--live-streams` / `MESHDECK_LIVE_STREAMS` and `MESHDECK_LIVE_STREAMS_PER_USER`: open live views allowed.
    pub streams: app::ssr::notify::StreamLimits,
    /// `--oidc-*` / `MESHDECK_OIDC_*`: single sign-on through the organisation's OpenID provider.
    pub oidc: Option<app::ssr::oidc::Config>,
    /// `--break-glass USER` / `MESHDECK_BREAK_GLASS`: with single sign-on, the one local admin that still
    /// signs in with a password.
    pub break_glass: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{flag} needs a value")]
    MissingValue { flag: String },
    #[error("{flag}: {value:?} is not a valid address such as 127.0.0.1:3000")]
    BadAddr { flag: String, value: String },
    #[error("unknown argument {0:?}; see `meshdeck serve --help`")]
    Unknown(String),
    #[error("--job-lease: {0:?} is not a number of seconds between 2 and 3600")]
    BadLease(String),
    #[error("--shutdown-grace: {0:?} is not a number of seconds between 0 and 3600")]
    BadGrace(String),
    #[error("{flag}: {value:?} is not an http:// or https:// URL")]
    BadUrl { flag: String, value: String },
    #[error("{flag}: {message}")]
    BadValue { flag: String, message: String },
}

/// The version and the commit the binary was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MESHDECK_COMMIT"),
    ")"
);

pub const USAGE: &str = "usage: meshdeck serve [--addr HOST:PORT] [--database-url URL] [--key-file PATH] [--import-kubeconfig PATH]
                      [--in-cluster NAME]
                      [--public-url URL] [--site-root DIR] [--helm PATH] [--operator-chart REF]
                      [--operator-chart-version V] [--job-lease SECONDS] [--cluster-token-ttl SECONDS]
                      [--shutdown-grace SECONDS] [--cluster-networks CIDRS]
                      [--allow-loopback-clusters] [--trusted-proxies CIDRS] [--live-streams N]
                      [--oidc-issuer URL --oidc-client-id ID [--oidc-client-secret-file PATH] [--oidc-scopes S]
                       [--oidc-groups-claim C] [--oidc-username-claim C] [--oidc-label TEXT] [--oidc-ca-file PEM]
                       [--oidc-mappings FILE] [--oidc-session-max SECONDS] [--break-glass USER]
                       [--oidc-impersonate]]
  --addr               MESHDECK_ADDR               where to listen (default 127.0.0.1:3000)
  --database-url       MESHDECK_DATABASE_URL       sqlite://PATH (default sqlite://meshdeck-data/meshdeck.db) or postgres://...
  --key-file           MESHDECK_KEY_FILE           secret key file, created 0600 (default meshdeck-data/secret.key);
                       MESHDECK_SECRET_KEY         or the key itself, base64 (32 bytes)
  --import-kubeconfig  MESHDECK_IMPORT_KUBECONFIG  register this kubeconfig's contexts at start
  --in-cluster NAME    MESHDECK_IN_CLUSTER         register the cluster the console runs in, with its pod's ServiceAccount
                       (MESHDECK_SERVICEACCOUNT_DIR, KUBERNETES_SERVICE_HOST/PORT as a pod has them;
                       MESHDECK_IN_CLUSTER_CONTROL_PLANES: control-plane namespaces besides istio-system
                       the chart granted it, comma separated)
  --public-url         MESHDECK_PUBLIC_URL         the URL users open (https:// makes the session cookie Secure)
  --site-root          MESHDECK_SITE_ROOT          the built browser files (default target/site)
  --helm               MESHDECK_HELM               the helm binary for the operator install (default: helm on PATH)
  --operator-chart     MESHDECK_OPERATOR_CHART     the gloo-operator chart: OCI/repository reference, or a local folder or .tgz
                                                   (default oci://us-docker.pkg.dev/solo-public/gloo-operator-helm/gloo-operator)
  --operator-chart-version MESHDECK_OPERATOR_CHART_VERSION  its version (needed for OCI/repository references)
  --job-lease          MESHDECK_JOB_LEASE_SECS     seconds before a job whose console stopped is taken over (default 30)
  --shutdown-grace     MESHDECK_SHUTDOWN_GRACE     at SIGTERM, seconds running jobs get to finish their step before they
                                                   are handed over to another console (default 20)
  --cluster-token-ttl  MESHDECK_CLUSTER_TOKEN_TTL  seconds the tokens of onboarded clusters live (600-86400, default 3600)
  --cluster-networks   MESHDECK_CLUSTER_NETWORKS   address ranges cluster API servers may be in, e.g. 10.0.0.0/8,fd00::/8
                                                   (default: any but loopback, link-local, multicast)
  --allow-loopback-clusters MESHDECK_ALLOW_LOOPBACK_CLUSTERS=1  allow API servers on this machine's loopback (demos, tests)
  --trusted-proxies    MESHDECK_TRUSTED_PROXIES    proxies whose X-Forwarded-For names the client, e.g. 10.0.0.0/8
  --live-streams       MESHDECK_LIVE_STREAMS       open live views allowed in total (default 2000);
                       MESHDECK_LIVE_STREAMS_PER_USER  per user (default 32)
  --oidc-issuer        MESHDECK_OIDC_ISSUER        sign in through this OpenID provider (its discovery document);
                                                   needs --public-url: the redirect URL is <public-url>/auth/oidc/callback
  --oidc-client-id     MESHDECK_OIDC_CLIENT_ID     the console's client id at the provider
  --oidc-client-secret-file MESHDECK_OIDC_CLIENT_SECRET_FILE  its secret, in a file only its owner reads (0600);
                       MESHDECK_OIDC_CLIENT_SECRET or the secret itself (never as a flag); neither: a public client (PKCE)
  --oidc-scopes        MESHDECK_OIDC_SCOPES        scopes asked for (default \"openid email profile groups\")
  --oidc-groups-claim  MESHDECK_OIDC_GROUPS_CLAIM  the claim holding the user's groups (default groups)
  --oidc-username-claim MESHDECK_OIDC_USERNAME_CLAIM  the claim naming the user (default email)
  --oidc-label         MESHDECK_OIDC_LABEL         the sign-in button says \"Sign in with LABEL\" (default single sign-on)
  --oidc-ca-file       MESHDECK_OIDC_CA_FILE       extra trusted CA certificates (PEM) for the provider
  --oidc-mappings      MESHDECK_OIDC_MAPPINGS      group mappings as a settings file (YAML; then read-only in the UI)
  --oidc-session-max   MESHDECK_OIDC_SESSION_MAX   seconds a single sign-on session lasts at most (300-86400, default 3600)
  --break-glass USER   MESHDECK_BREAK_GLASS        with single sign-on: only this local admin signs in with a password
  --oidc-impersonate   MESHDECK_OIDC_IMPERSONATE=1 per-user rights: what the console does on a cluster for a provider
                                                   user goes out as that user (Impersonate-User/-Group): the cluster's RBAC decides
                       MESHDECK_ADMIN_PASSWORD     password of the first admin (else one is generated and logged once)
                       MESHDECK_METRICS_TOKEN      turns on /metrics for a scraper bearing this token
                       MESHDECK_LOG                the log filter (default info); MESHDECK_LOG_FORMAT=json for JSON lines
       meshdeck backup OUT [--database-url URL]    a consistent copy of the SQLite store, taken while it runs
       meshdeck restore IN [--database-url URL]    put a backup in place (stop the console first; the old store is kept)
       meshdeck --version";

impl Config {
    /// Reads flags (after `serve`) over environment variables over defaults.
    pub fn from_args(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut addr = env("MESHDECK_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let mut database_url = env("MESHDECK_DATABASE_URL")
            .or_else(|| env("DATABASE_URL"))
            .unwrap_or_else(|| "sqlite://meshdeck-data/meshdeck.db".into());
        let mut key_file =
            env("MESHDECK_KEY_FILE").unwrap_or_else(|| "meshdeck-data/secret.key".into());
        let mut import = env("MESHDECK_IMPORT_KUBECONFIG");
        let mut in_cluster = env("MESHDECK_IN_CLUSTER");
        let mut public_url = env("MESHDECK_PUBLIC_URL");
        let mut helm = env("MESHDECK_HELM").unwrap_or_else(|| "helm".into());
        let default_chart = mesh::operator::Chart::default();
        let mut chart =
            env("MESHDECK_OPERATOR_CHART").unwrap_or_else(|| default_chart.reference.clone());
        let mut chart_version = env("MESHDECK_OPERATOR_CHART_VERSION");
        let mut lease = env("MESHDECK_JOB_LEASE_SECS").unwrap_or_else(|| "30".into());
        let mut grace = env("MESHDECK_SHUTDOWN_GRACE").unwrap_or_else(|| "20".into());
        let mut token_ttl = env("MESHDECK_CLUSTER_TOKEN_TTL").unwrap_or_else(|| "3600".into());
        let mut site_root = env("MESHDECK_SITE_ROOT")
            .or_else(|| env("LEPTOS_SITE_ROOT"))
            .unwrap_or_else(|| "target/site".into());
        let mut networks = env("MESHDECK_CLUSTER_NETWORKS").unwrap_or_default();
        let mut loopback = env("MESHDECK_ALLOW_LOOPBACK_CLUSTERS")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let mut proxies = env("MESHDECK_TRUSTED_PROXIES").unwrap_or_default();
        let mut streams = env("MESHDECK_LIVE_STREAMS").unwrap_or_else(|| "2000".into());
        let streams_per_user = env("MESHDECK_LIVE_STREAMS_PER_USER").unwrap_or_else(|| "32".into());
        let mut o = OidcFlags::from_env(&env);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| ConfigError::MissingValue { flag: a.clone() })
            };
            match a.as_str() {
                "--addr" => addr = value()?,
                "--database-url" => database_url = value()?,
                "--key-file" => key_file = value()?,
                "--import-kubeconfig" => import = Some(value()?),
                "--in-cluster" => in_cluster = Some(value()?),
                "--public-url" => public_url = Some(value()?),
                "--site-root" => site_root = value()?,
                "--helm" => helm = value()?,
                "--operator-chart" => chart = value()?,
                "--operator-chart-version" => chart_version = Some(value()?),
                "--job-lease" => lease = value()?,
                "--shutdown-grace" => grace = value()?,
                "--cluster-token-ttl" => token_ttl = value()?,
                "--cluster-networks" => networks = value()?,
                "--allow-loopback-clusters" => loopback = true,
                "--trusted-proxies" => proxies = value()?,
                "--live-streams" => streams = value()?,
                "--oidc-issuer" => o.issuer = Some(value()?),
                "--oidc-client-id" => o.client_id = Some(value()?),
                "--oidc-client-secret-file" => o.secret_file = Some(value()?),
                "--oidc-scopes" => o.scopes = Some(value()?),
                "--oidc-groups-claim" => o.groups_claim = Some(value()?),
                "--oidc-username-claim" => o.username_claim = Some(value()?),
                "--oidc-label" => o.label = Some(value()?),
                "--oidc-ca-file" => o.ca_file = Some(value()?),
                "--oidc-mappings" => o.mappings = Some(value()?),
                "--oidc-session-max" => o.session_max = Some(value()?),
                "--break-glass" => o.break_glass = Some(value()?),
                "--oidc-impersonate" => o.impersonate = true,
                other => return Err(ConfigError::Unknown(other.to_string())),
            }
        }
        let addr = addr.parse().map_err(|_| ConfigError::BadAddr {
            flag: "--addr".into(),
            value: addr.clone(),
        })?;
        let job_lease = lease
            .parse::<u64>()
            .ok()
            .filter(|s| (2..=3600).contains(s))
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| ConfigError::BadLease(lease.clone()))?;
        let shutdown_grace = grace
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 3600)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| ConfigError::BadGrace(grace.clone()))?;
        let cluster_token_ttl = token_ttl
            .parse::<i64>()
            .ok()
            .filter(|s| (mesh::access::MIN_TOKEN_SECONDS..=86_400).contains(s))
            .ok_or_else(|| ConfigError::BadValue {
                flag: "--cluster-token-ttl".into(),
                message: format!("{token_ttl:?} is not a number of seconds from 600 to 86400"),
            })?;
        let public_url = public_url.filter(|s| !s.is_empty());
        if let Some(u) = &public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(ConfigError::BadUrl {
                flag: "--public-url".into(),
                value: u.clone(),
            });
        }
        let bad = |flag: &str, message: String| ConfigError::BadValue {
            flag: flag.into(),
            message,
        };
        let networks = mesh::connect::Reach::parse_networks(&networks)
            .map_err(|m| bad("--cluster-networks", m))?;
        let trusted_proxies = mesh::connect::Reach::parse_networks(&proxies)
            .map_err(|m| bad("--trusted-proxies", m))?;
        let count = |flag: &str, v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| bad(flag, format!("{v:?} is not a number from 1 to 100000")))
        };
        let streams = app::ssr::notify::StreamLimits {
            total: count("--live-streams", &streams)?,
            per_user: count("MESHDECK_LIVE_STREAMS_PER_USER", &streams_per_user)?,
        };
        let (oidc, break_glass) = o.build(public_url.as_deref())?;
        Ok(Config {
            addr,
            database_url,
            key_file: PathBuf::from(key_file),
            import_kubeconfig: import.filter(|s| !s.is_empty()).map(PathBuf::from),
            in_cluster: in_cluster.filter(|s| !s.is_empty()),
            public_url,
            site_root: PathBuf::from(site_root),
            helm: PathBuf::from(helm),
            chart: mesh::operator::Chart {
                // A chart folder or archive on this machine has its version in its own Chart.yaml; an OCI or
                // repository reference without one gets the default version.
                version: chart_version.filter(|v| !v.is_empty()).or_else(|| {
                    (!mesh::operator::is_local_chart(&chart))
                        .then(|| default_chart.version.clone())
                        .flatten()
                }),
                reference: chart,
            },
            job_lease,
            shutdown_grace,
            cluster_token_ttl,
            reach: mesh::connect::Reach {
                networks,
                allow_loopback: loopback,
            },
            trusted_proxies,
            streams,
            oidc,
            break_glass,
        })
    }
}

/// The single sign-on flags as given, before they are checked.
#[derive(Default)]
struct OidcFlags {
    issuer: Option<String>,
    client_id: Option<String>,
    secret: Option<String>,
    secret_file: Option<String>,
    scopes: Option<String>,
    groups_claim: Option<String>,
    username_claim: Option<String>,
    label: Option<String>,
    ca_file: Option<String>,
    mappings: Option<String>,
    session_max: Option<String>,
    break_glass: Option<String>,
    impersonate: bool,
}

impl OidcFlags {
    fn from_env(env: &impl Fn(&str) -> Option<String>) -> OidcFlags {
        let e = |k: &str| env(k).filter(|v| !v.is_empty());
        OidcFlags {
            issuer: e("MESHDECK_OIDC_ISSUER"),
            client_id: e("MESHDECK_OIDC_CLIENT_ID"),
            secret: e("MESHDECK_OIDC_CLIENT_SECRET"),
            secret_file: e("MESHDECK_OIDC_CLIENT_SECRET_FILE"),
            scopes: e("MESHDECK_OIDC_SCOPES"),
            groups_claim: e("MESHDECK_OIDC_GROUPS_CLAIM"),
            username_claim: e("MESHDECK_OIDC_USERNAME_CLAIM"),
            label: e("MESHDECK_OIDC_LABEL"),
            ca_file: e("MESHDECK_OIDC_CA_FILE"),
            mappings: e("MESHDECK_OIDC_MAPPINGS"),
            session_max: e("MESHDECK_OIDC_SESSION_MAX"),
            break_glass: e("MESHDECK_BREAK_GLASS"),
            impersonate: e("MESHDECK_OIDC_IMPERSONATE")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
        }
    }

    /// Checks the flags; the client secret file must be the owner's alone (0600), the issuer an https://
    /// URL (http:// only on loopback, for tests and demos).
    fn build(
        self,
        public_url: Option<&str>,
    ) -> Result<(Option<app::ssr::oidc::Config>, Option<String>), ConfigError> {
        let bad = |flag: &str, message: String| ConfigError::BadValue {
            flag: flag.into(),
            message,
        };
        let Some(issuer) = self.issuer else {
            if self.impersonate {
                return Err(bad(
                    "--oidc-impersonate",
                    "only with single sign-on (--oidc-issuer): it acts as the signed-in provider user".into(),
                ));
            }
            if self.break_glass.is_some() {
                return Err(bad(
                    "--break-glass",
                    "only with single sign-on (--oidc-issuer): without it every local account signs in".into(),
                ));
            }
            return Ok((None, None));
        };
        let issuer = issuer.trim_end_matches('/').to_string();
        let loopback = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
            .iter()
            .any(|p| issuer.starts_with(p));
        if !(issuer.starts_with("https://") || loopback) {
            return Err(bad(
                "--oidc-issuer",
                format!(
                    "{issuer:?} is not an https:// URL (http:// only on this machine's loopback)"
                ),
            ));
        }
        let public = public_url.ok_or_else(|| {
            bad(
                "--oidc-issuer",
                "needs --public-url: the provider sends people back to <public-url>/auth/oidc/callback".into(),
            )
        })?;
        let public = public.trim_end_matches('/');
        let client_id = self
            .client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| bad("--oidc-client-id", "needed with --oidc-issuer".into()))?;
        let client_secret = match (self.secret, self.secret_file) {
            (Some(s), _) => Some(s),
            (None, Some(path)) => Some(read_private("--oidc-client-secret-file", &path)?),
            (None, None) => None,
        };
        let mut scopes: Vec<String> = self
            .scopes
            .unwrap_or_else(|| "openid email profile groups".into())
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        let session_max = match self.session_max {
            None => 3600,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (300..=86_400).contains(n))
                .ok_or_else(|| {
                    bad(
                        "--oidc-session-max",
                        format!("{v:?} is not a number of seconds from 300 to 86400"),
                    )
                })?,
        };
        let ca_pem = match self.ca_file {
            None => None,
            Some(p) => {
                Some(std::fs::read(&p).map_err(|e| bad("--oidc-ca-file", format!("{p}: {e}")))?)
            }
        };
        let claim = |flag: &str, v: Option<String>, default: &str| {
            let v = v.unwrap_or_else(|| default.into());
            if v.is_empty() || v.len() > 128 || v.chars().any(char::is_control) {
                Err(bad(flag, format!("{v:?} is not a claim name")))
            } else {
                Ok(v)
            }
        };
        if let Some(u) = &self.break_glass {
            app::ssr::store::check_username(u).map_err(|e| bad("--break-glass", e.to_string()))?;
        }
        let config = app::ssr::oidc::Config {
            issuer,
            client_id,
            client_secret,
            scopes,
            groups_claim: claim("--oidc-groups-claim", self.groups_claim, "groups")?,
            username_claim: claim("--oidc-username-claim", self.username_claim, "email")?,
            label: self
                .label
                .map(|l| l.chars().take(60).collect())
                .unwrap_or_else(|| "single sign-on".into()),
            redirect_url: format!("{public}/auth/oidc/callback"),
            signed_out_url: format!("{public}/sign-in"),
            ca_pem,
            session_max: std::time::Duration::from_secs(session_max),
            mappings_file: self.mappings.map(PathBuf::from),
            impersonate: self.impersonate,
        };
        Ok((Some(config), self.break_glass))
    }
}

/// A secret file's text (trimmed), refused when others may read it.
fn read_private(flag: &str, path: &str) -> Result<String, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |message: String| ConfigError::BadValue {
        flag: flag.into(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("{path}: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad(format!(
            "{path} may be read by others: chmod 600 it (it holds a secret)"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("{path}: {e}")))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(bad(format!("{path} is empty")));
    }
    Ok(text)
}

/// The console, started: its services and the built site's options.
#[derive(Clone)]
pub struct Console {
    pub state: AppState,
    pub sessions: app::ssr::session::SessionBackend,
    pub leptos: LeptosOptions,
    /// `MESHDECK_METRICS_TOKEN`: when set, `/metrics` answers requests bearing it (Prometheus format).
    pub metrics_token: Option<std::sync::Arc<str>>,
    /// The built browser files (`/pkg`), served compressed.
    pub assets: assets::Assets,
    /// What the request guards need.
    pub guard: guard::Guard,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the data folder {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] app::ssr::store::Error),
    #[error("session store: {0}")]
    Sessions(app::ssr::store::Error),
    #[error("secret key: {0}")]
    Secrets(#[from] app::ssr::secrets::Error),
    #[error("first admin: {0}")]
    Auth(#[from] app::ssr::auth::Error),
    #[error("kubeconfig import {path}: {message}")]
    Import { path: String, message: String },
    #[error("--in-cluster {name}: {message}")]
    InCluster { name: String, message: String },
    #[error("single sign-on: {0}")]
    Oidc(String),
}

/// Opens the store and the secret key, creates the first admin when there is none, and imports the
/// kubeconfig given at start.
pub async fn start(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Console, StartError> {
    if let Some(path) = config.database_url.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        let data_dir_err = |source| StartError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        if !dir.exists() {
            // The database holds password hashes and sealed credentials: keep the folder private.
            std::fs::create_dir_all(dir).map_err(data_dir_err)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(data_dir_err)?;
        }
    }
    let store = Store::connect(&config.database_url).await?;
    let secrets = match env("MESHDECK_SECRET_KEY") {
        Some(k) => SecretBox::from_base64(&k)?,
        None => SecretBox::load_or_create(&config.key_file)?,
    };
    let secrets = Arc::new(secrets);
    // helm folders a killed console left behind (they may hold a kubeconfig) go before anything runs.
    let removed = mesh::helm::clean_leftovers();
    if removed > 0 {
        tracing::info!(removed, "removed helm folders of consoles that stopped");
    }
    let registry = Registry::new(store.clone(), secrets.clone(), config.reach.clone())
        .with_token_seconds(config.cluster_token_ttl)
        .with_impersonation(config.oidc.as_ref().is_some_and(|o| o.impersonate));
    let notifier = app::ssr::notify::Notifier::new(
        store.clone(),
        format!("{}-{}", std::process::id(), random_suffix()),
        config.streams,
    );
    let jobs = app::ssr::jobs::Jobs::new(
        store.clone(),
        registry.clone(),
        secrets.clone(),
        config.helm.clone(),
        config.job_lease,
        config.chart.clone(),
        notifier.clone(),
    );
    let admin_password = env("MESHDECK_ADMIN_PASSWORD");
    if let Some(generated) =
        app::ssr::auth::bootstrap_admin(&store, admin_password.as_deref()).await?
    {
        // Printed once, on the first start only; it is not stored anywhere in clear.
        tracing::warn!(
            "created the first admin: username \"admin\", password \"{generated}\" — change it after signing in"
        );
    }
    if let Some(path) = &config.import_kubeconfig {
        import(&registry, path).await?;
    }
    if let Some(name) = &config.in_cluster {
        let failed = |message: String| StartError::InCluster {
            name: name.clone(),
            message,
        };
        let cluster = mesh::ids::ClusterName::new(name).map_err(|e| failed(e.to_string()))?;
        let pod = app::ssr::registry::InCluster {
            dir: env("MESHDECK_SERVICEACCOUNT_DIR")
                .unwrap_or_else(|| "/var/run/secrets/kubernetes.io/serviceaccount".into())
                .into(),
            host: env("KUBERNETES_SERVICE_HOST").ok_or_else(|| {
                failed("KUBERNETES_SERVICE_HOST is not set: is the console in a pod?".into())
            })?,
            port: env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into()),
            control_planes: app::model::control_plane_namespaces(
                &env("MESHDECK_IN_CLUSTER_CONTROL_PLANES")
                    .unwrap_or_default()
                    .split(',')
                    .map(String::from)
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| failed(format!("MESHDECK_IN_CLUSTER_CONTROL_PLANES: {e}")))?,
        };
        let c = registry
            .register_in_cluster(&cluster, &pod)
            .await
            .map_err(|e| failed(e.to_string()))?;
        tracing::info!(cluster = %cluster, healthy = c.healthy(), missing = c.missing.len(), "the cluster the console runs in is registered");
    }
    let oidc = match &config.oidc {
        None => None,
        Some(c) => Some(Arc::new(
            app::ssr::oidc::Oidc::new(c.clone()).map_err(StartError::Oidc)?,
        )),
    };
    if let Some(name) = &config.break_glass {
        match store.user_by_name(name).await? {
            Some((u, _)) if u.role == app::model::Role::Admin && !u.sso => {}
            _ => {
                return Err(StartError::Oidc(format!(
                    "--break-glass {name}: there is no local admin of that name"
                )));
            }
        }
    }
    let sessions = session_backend(&store).await?;
    let policy = app::ssr::session::Policy {
        secure: config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        ..Default::default()
    };
    let leptos = LeptosOptions::builder()
        .output_name("meshdeck")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.addr)
        .env(leptos::config::Env::PROD)
        .build();
    // Jobs a stopped console left running continue here (once their lease has run out).
    match jobs.resume_orphans().await {
        Ok(ids) if !ids.is_empty() => tracing::info!(jobs = ids.join(","), "continuing jobs"),
        Ok(_) => {}
        Err(e) => tracing::warn!("looking for jobs to continue: {e}"),
    }
    let topology = app::ssr::topology::Topology::new(registry.clone(), store.clone());
    let public_origin = config.public_url.as_deref().map(|u| {
        let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
        let host = rest.split('/').next().unwrap_or(rest);
        Arc::<str>::from(format!("{scheme}://{host}"))
    });
    let console = Console {
        state: AppState {
            store,
            registry,
            jobs,
            topology,
            sessions: policy,
            notifier,
            secrets,
            throttle: app::ssr::store::Limits::default(),
            session_store: sessions.clone(),
            oidc,
            break_glass: config.break_glass.clone(),
        },
        sessions,
        leptos,
        metrics_token: env("MESHDECK_METRICS_TOKEN").map(std::sync::Arc::from),
        assets: assets::Assets::new(config.site_root.join("pkg")),
        guard: guard::Guard {
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            public_origin,
        },
    };
    if let Some(path) = config.oidc.as_ref().and_then(|o| o.mappings_file.as_ref()) {
        let n = app::ssr::oidc::mappings::load_file(&console.state, path)
            .await
            .map_err(StartError::Oidc)?;
        tracing::info!(mappings = n, file = %path.display(), "group mappings read from the settings file");
    }
    Ok(console)
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

/// The session table, created on first start. Replicas starting together may race on creating it; the
/// loser tries again.
async fn session_backend(store: &Store) -> Result<app::ssr::session::SessionBackend, StartError> {
    let mut attempt = 0;
    loop {
        match store.session_backend().await {
            Ok(b) => return Ok(b),
            Err(e) if attempt < 3 => {
                attempt += 1;
                tracing::debug!("creating the session table, attempt {attempt}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(StartError::Sessions(e)),
        }
    }
}

/// Registers every context of a kubeconfig file given by the local user at start. Contexts whose names are
/// not valid cluster names, or that are already registered, are skipped with a log line saying why.
async fn import(registry: &Registry, path: &std::path::Path) -> Result<(), StartError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| StartError::Import {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let parsed = text.clone();
    let kc = mesh::yaml::parse_off_runtime(move || mesh::kubeconfig::parse(&parsed))
        .await
        .map_err(|e| StartError::Import {
            path: p.clone(),
            message: e.to_string(),
        })?;
    for ctx in mesh::kubeconfig::contexts(&kc) {
        let name = match mesh::ids::ClusterName::new(&ctx.name) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(context = %ctx.name, "not imported: {e}");
                continue;
            }
        };
        let reg = Registration {
            name: name.clone(),
            network: None,
            labels: BTreeMap::new(),
            kubeconfig: text.clone(),
            context: ctx.name.clone(),
            allow_insecure: false,
            onboard: false,
            by: "meshdeck (import)".into(),
        };
        match registry.register(reg).await {
            Ok((_, c)) => {
                tracing::info!(cluster = %name, healthy = c.healthy(), missing = c.missing.len(), "imported")
            }
            Err(e) => tracing::warn!(cluster = %name, "not imported: {e}"),
        }
    }
    Ok(())
}

/// Server functions accept bodies up to this size, so an oversize kubeconfig reaches the validation that
/// explains the limit instead of a bare 413.
const BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The pages' routes, generated once per process. Generating them sets a process-wide flag in leptos_server
/// that makes any resource first polled meanwhile wait forever (leptos issue #4773): a second console built in
/// the same process (tests, replicas side by side) while the first renders a page could hang that page.
static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();

/// The whole HTTP surface: health, the pages (server-rendered), the server functions under `/api`, the
/// built browser files, all behind the session layer.
pub fn router(console: Console) -> Router {
    let Console {
        state,
        sessions,
        leptos,
        metrics_token,
        assets,
        guard,
    } = console;
    let routes = ROUTES.get_or_init(|| generate_route_list(app::App)).clone();
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            // This response's CSP nonce (guard::security_headers), for the page's inline scripts: provided
            // after Leptos' own, so it is the one `use_nonce` returns and the header names.
            if let Some(n) = use_context::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<app::ssr::client::CspNonce>().cloned())
            {
                provide_context(leptos::nonce::Nonce::from_value(n.0));
            }
        }
    };
    let pages = Router::new()
        .leptos_routes_with_context(&leptos, routes, context, {
            let leptos = leptos.clone();
            move || app::shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(leptos);
    let health = Router::new()
        .route("/healthz", get(telemetry::healthz))
        .route("/readyz", get(telemetry::readyz))
        .route("/metrics", get(telemetry::metrics))
        .with_state((state.clone(), metrics_token));
    let live = Router::new()
        .route("/live/jobs/{id}", get(app::ssr::live::job_stream))
        .route("/live/topology", get(app::ssr::live::topology_stream))
        .route("/live/portal/{team}", get(app::ssr::portal::portal_stream))
        .route("/export/audit", get(app::ssr::portal::audit_export))
        .route("/auth/oidc/start", get(app::ssr::oidc::start))
        .route("/auth/oidc/callback", get(app::ssr::oidc::callback))
        .route(
            "/portal/request",
            axum::routing::post(app::ssr::portal::request_form),
        )
        .with_state(state.clone());
    let files = Router::new()
        .route("/pkg/{file}", get(assets::serve))
        .with_state(assets);
    // Pages and server-function answers are compressed as they go (gzip; the browser files come
    // precompressed and carry their encoding already, event streams are never compressed).
    let compress = tower_http::compression::CompressionLayer::new();
    health
        .merge(live)
        .merge(files)
        .merge(pages)
        .layer(axum::middleware::map_response(error_status))
        .layer(axum::middleware::from_fn(guard::redirect_status))
        .layer(compress)
        .layer(app::ssr::session::layer(sessions, state.sessions))
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::client_addr,
        ))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Server-function errors raised before our code runs (arguments that fail to decode, such as an invalid
/// cluster name in JSON) leave the framework's 500: give them the status of the `AppError` they carry, as
/// the errors of our own code have.
async fn error_status(resp: axum::response::Response) -> axum::response::Response {
    use axum::http::StatusCode;
    if resp.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !resp
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    if let Ok(e) = serde_json::from_slice::<app::model::AppError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(e.status())
    {
        parts.status = status;
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Background work for as long as the process runs: the topology's watches (and the licenses the checks
/// found), the drift audit, every 15 s
/// taking over jobs whose console stopped (their lease ran out); every `every`, deleting expired sessions.
pub fn spawn_background(console: &Console, every: std::time::Duration) {
    console.state.topology.start();
    console.state.notifier.start();
    app::ssr::portal::record_drift(&console.state);
    spawn_license_reader(console);
    spawn_token_renewal(console);
    let assets = console.assets.clone();
    tokio::spawn(async move { assets.warm().await });
    let jobs = console.state.jobs.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            match jobs.resume_orphans().await {
                Ok(ids) if !ids.is_empty() => {
                    tracing::info!(jobs = ids.join(","), "continuing jobs")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("looking for jobs to continue: {e}"),
            }
        }
    });
    spawn_session_cleanup(console, every);
    memory::spawn_trimmer(std::time::Duration::from_secs(30));
}

/// Renews the console's tokens for onboarded clusters after two thirds of their life. A renewal that fails
/// is recorded on the cluster (its page says what to do) and tried again each round until the token
/// expires. Whenever a cluster's token changed — renewed here or by another replica, or the cluster
/// onboarded again — its watches restart with the new one (the old token expires under them otherwise).
fn spawn_token_renewal(console: &Console) {
    let registry = console.state.registry.clone();
    let topology = console.state.topology.clone();
    tokio::spawn(async move {
        let mut seen: std::collections::HashMap<mesh::ids::ClusterName, i64> = Default::default();
        loop {
            for (name, outcome) in registry.renew_due().await {
                if let Err(e) = outcome {
                    tracing::warn!(cluster = %name, "renewing the console's token: {e}");
                }
            }
            let issued = registry.tokens_issued().await;
            for (name, at) in &issued {
                if seen.get(name).is_some_and(|before| before != at) {
                    topology.watch(name).await;
                }
            }
            seen = issued.into_iter().collect();
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
}

/// The topology reads the licenses of every check report kept, by this replica or another (a setup's
/// verification, a run from the Checks page), and what every drift comparison found.
fn spawn_license_reader(console: &Console) {
    use app::ssr::notify::Notice;
    use tokio::sync::broadcast::error::RecvError;
    let mut notices = console.state.notifier.subscribe();
    let topology = console.state.topology.clone();
    tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(Notice::Checked { report }) => topology.record_report(&report).await,
                Ok(Notice::Drift { cluster, drifted }) => topology.record_drift(&cluster, drifted),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
}

fn spawn_session_cleanup(console: &Console, every: std::time::Duration) {
    use tower_sessions::ExpiredDeletion;
    let backend = console.sessions.clone();
    let store = console.state.store.clone();
    let window = console.state.throttle.window;
    tokio::spawn(async move {
        loop {
            if let Err(e) = backend.delete_expired().await {
                tracing::warn!("deleting expired sessions: {e}");
            }
            // Sign-in attempts older than the window no longer count.
            if let Err(e) = store.prune_attempts(app::ssr::now() - window).await {
                tracing::warn!("deleting old sign-in attempts: {e}");
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn flags_override_environment_which_overrides_defaults() {
        let c = Config::from_args(&[], env(&[])).expect("defaults");
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.database_url, "sqlite://meshdeck-data/meshdeck.db");
        let c = Config::from_args(
            &[],
            env(&[
                ("MESHDECK_ADDR", "127.0.0.1:4000"),
                ("DATABASE_URL", "postgres://x/y"),
            ]),
        )
        .expect("env");
        assert_eq!(
            (c.addr.port(), c.database_url.as_str()),
            (4000, "postgres://x/y")
        );
        let args: Vec<String> = ["--addr", "0.0.0.0:5000", "--import-kubeconfig", "/k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c =
            Config::from_args(&args, env(&[("MESHDECK_ADDR", "127.0.0.1:4000")])).expect("flags");
        assert_eq!(
            (c.addr.port(), c.import_kubeconfig.as_deref()),
            (5000, Some(std::path::Path::new("/k")))
        );
    }

    #[test]
    fn the_default_chart_version_goes_with_the_default_chart_only() {
        let c = Config::from_args(&[], env(&[])).expect("defaults");
        assert_eq!(c.chart, mesh::operator::Chart::default());
        let args: Vec<String> = ["--operator-chart", "/charts/gloo-operator-0.4.3.tgz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = Config::from_args(&args, env(&[])).expect("local chart");
        assert_eq!(c.chart.version, None, "a local chart's Chart.yaml says");
        let mirror = Config::from_args(
            &[],
            env(&[(
                "MESHDECK_OPERATOR_CHART",
                "oci://mirror.example/solo/gloo-operator",
            )]),
        )
        .expect("a mirror");
        assert_eq!(
            mirror.chart.version,
            mesh::operator::Chart::default().version,
            "an OCI mirror keeps the default version"
        );
        let c = Config::from_args(&args, env(&[("MESHDECK_OPERATOR_CHART_VERSION", "0.4.3")]))
            .expect("with a version");
        assert_eq!(c.chart.version.as_deref(), Some("0.4.3"));
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Config::from_args(&args(&["--addr", "localhost"]), env(&[])),
            Err(ConfigError::BadAddr {
                flag: "--addr".into(),
                value: "localhost".into()
            })
        );
        assert_eq!(
            Config::from_args(&args(&["--addr"]), env(&[])),
            Err(ConfigError::MissingValue {
                flag: "--addr".into()
            })
        );
        assert_eq!(
            Config::from_args(&args(&["--verbose"]), env(&[])),
            Err(ConfigError::Unknown("--verbose".into()))
        );
        assert_eq!(
            Config::from_args(&args(&["--shutdown-grace", "soon"]), env(&[])),
            Err(ConfigError::BadGrace("soon".into()))
        );
        assert_eq!(
            Config::from_args(&[], env(&[("MESHDECK_SHUTDOWN_GRACE", "7")]))
                .map(|c| c.shutdown_grace),
            Ok(std::time::Duration::from_secs(7))
        );
    }
}
