//! The console server: configuration ([`config`]: flags and `MESHDECK_*` environment, validated at start), start-up
//! (store, secret key, first admin, optional kubeconfig import) and the HTTP router (health, the Leptos
//! pages and server functions, static files, sessions).

pub mod assets;
pub mod config;
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

pub use config::{Config, ConfigError, USAGE, VERSION};

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
    #[error("browser files: {0}")]
    Site(String),
}

/// The browser files' name (`target/site/pkg/meshdeck.{js,wasm,css}`), as `.cargo/config.toml` gives it
/// to cargo-leptos.
const OUTPUT_NAME: &str = "meshdeck";

/// Opens the store and the secret key, creates the first admin when there is none, and imports the
/// kubeconfig given at start.
pub async fn start(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Console, StartError> {
    // Before anything is created: a console whose pages cannot load is refused at once.
    assets::check_build(&config.site_root.join("pkg"), OUTPUT_NAME).map_err(StartError::Site)?;
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
        .output_name(OUTPUT_NAME)
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
