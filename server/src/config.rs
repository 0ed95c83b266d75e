//! The console's configuration: flags and `MESHDECK_*` environment variables, validated at start (a bad
//! value says which flag and what is wrong).

use super::*;

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
