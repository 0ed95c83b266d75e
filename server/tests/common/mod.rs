//! Helpers for the HTTP tests: a started console on a throwaway database, and a client with a cookie jar
//! that talks to the router in-process.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const ADMIN_PASSWORD: &str = "a-long-admin-password";

pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("meshdeck-server-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// A console on `database_url` (or a fresh SQLite file), first admin "admin" with [`ADMIN_PASSWORD`].
pub async fn console(tag: &str, database_url: Option<String>, extra: &[&str]) -> server::Console {
    let dir = temp_dir(tag);
    let mut args: Vec<String> = vec![
        "--database-url".into(),
        database_url.unwrap_or_else(|| format!("sqlite://{}/meshdeck.db", dir.display())),
        "--key-file".into(),
        dir.join("secret.key").display().to_string(),
        // The test world's API servers listen on loopback.
        "--allow-loopback-clusters".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let env = |k: &str| (k == "MESHDECK_ADMIN_PASSWORD").then(|| ADMIN_PASSWORD.to_string());
    let config = server::Config::from_args(&args, env).expect("config");
    server::start(&config, env).await.expect("start")
}

/// A new, empty database on the test Postgres (MESHDECK_TEST_POSTGRES_URL, started by scripts/test).
pub async fn fresh_database(tag: &str) -> String {
    let admin = std::env::var("MESHDECK_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("MESHDECK_TEST_POSTGRES_URL is not set: run scripts/test, which starts a private Postgres")
    });
    let db = format!("meshdeck_{tag}_{}", std::process::id());
    let pool = sqlx::PgPool::connect(&admin).await.expect("connect");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&pool)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .expect("create");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("url");
    format!("{base}/{db}")
}

/// Registers contexts of the test world as `client` (an operator or an admin): `(context, name)` pairs.
pub async fn register_as(client: &mut Client, clusters: &[(&str, &str)]) {
    let kubeconfig = std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig");
    let forms: Vec<serde_json::Value> = clusters
        .iter()
        .map(|(context, name)| {
            serde_json::json!({"context": context, "name": name, "network": "", "env": "", "region": "", "allow_insecure": false})
        })
        .collect();
    let a = client
        .call_json(
            "register_clusters",
            serde_json::json!({"kubeconfig": kubeconfig, "clusters": forms}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<app::model::RegisterOutcome> =
        serde_json::from_str(&a.body).expect("outcomes");
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
}

/// Registers contexts of the test world under their own names.
pub async fn register(client: &mut Client, contexts: &[&str]) {
    let pairs: Vec<(&str, &str)> = contexts.iter().map(|c| (*c, *c)).collect();
    register_as(client, &pairs).await;
}

/// Creates a user directly in the store.
pub async fn add_user(console: &server::Console, name: &str, role: app::model::Role) -> String {
    let password = format!("{name}-password-long-enough");
    let hash = app::ssr::passwords::hash(&password).expect("hash");
    console
        .state
        .store
        .create_user(name, &hash, role)
        .await
        .expect("create user");
    password
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The session cookie this answer sets, as `name=value`, with its attributes.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("meshdeck_session="))
            .map(str::to_string)
    }

    pub fn error(&self) -> app::model::AppError {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an AppError ({e}): {} {}", self.status, self.body))
    }
}

/// Where a client's requests go: the router in this process, or a console process over HTTP.
#[derive(Clone)]
pub enum Transport {
    InProcess(Router),
    Remote(std::net::SocketAddr),
}

/// A browser-like client: keeps the session cookie between requests.
#[derive(Clone)]
pub struct Client {
    pub transport: Transport,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(app: Router) -> Self {
        Client {
            transport: Transport::InProcess(app),
            cookie: None,
        }
    }

    /// A client of a console listening on `addr`.
    pub fn remote(addr: std::net::SocketAddr) -> Self {
        Client {
            transport: Transport::Remote(addr),
            cookie: None,
        }
    }

    pub async fn send(&mut self, mut req: Request<Body>) -> Answer {
        // As a real HTTP client: the host it talks to (the pages' own origin is http://localhost).
        if !req.headers().contains_key(header::HOST) {
            req.headers_mut()
                .insert(header::HOST, "localhost".parse().expect("host"));
        }
        if let Some(c) = &self.cookie {
            req.headers_mut()
                .insert(header::COOKIE, c.parse().expect("cookie"));
        }
        let (status, headers, body) = match &self.transport {
            Transport::InProcess(app) => {
                let resp = app.clone().oneshot(req).await.expect("response");
                let (parts, body) = resp.into_parts();
                let body = body.collect().await.expect("body").to_bytes();
                (parts.status, parts.headers, body)
            }
            Transport::Remote(addr) => {
                use hyper_util::client::legacy::Client as Http;
                use hyper_util::rt::TokioExecutor;
                let (mut parts, body) = req.into_parts();
                parts.uri = format!("http://{addr}{}", parts.uri).parse().expect("uri");
                let http = Http::builder(TokioExecutor::new()).build_http::<Body>();
                let resp = http
                    .request(Request::from_parts(parts, body))
                    .await
                    .unwrap_or_else(|e| panic!("request to {addr}: {e}"));
                let (parts, body) = resp.into_parts();
                let body = body.collect().await.expect("body").to_bytes();
                (parts.status, parts.headers, body)
            }
        };
        let answer = Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        if let Some(set) = answer.session_cookie() {
            let pair = set.split(';').next().unwrap_or_default().to_string();
            // An emptied cookie (Max-Age=0) clears the jar.
            self.cookie = if set.contains("Max-Age=0") {
                None
            } else {
                Some(pair)
            };
        }
        answer
    }

    /// A page, as a browser navigates to it.
    pub async fn page(&mut self, path: &str) -> Answer {
        self.send(
            Request::get(path)
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// A server function called the way the hydrated app calls it (URL-encoded arguments).
    pub async fn call(&mut self, name: &str, args: &[(&str, &str)]) -> Answer {
        let body = form(args);
        self.send(
            Request::post(format!("/api/{name}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
    }

    /// A server function with JSON arguments.
    pub async fn call_json(&mut self, name: &str, args: serde_json::Value) -> Answer {
        self.send(
            Request::post(format!("/api/{name}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json")
                .body(Body::from(args.to_string()))
                .expect("request"),
        )
        .await
    }

    /// A plain HTML form post (JavaScript off), from `referer`.
    pub async fn post_form(&mut self, name: &str, args: &[(&str, &str)], referer: &str) -> Answer {
        self.send(
            Request::post(format!("/api/{name}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "text/html,application/xhtml+xml")
                .header(header::REFERER, referer)
                .body(Body::from(form(args)))
                .expect("request"),
        )
        .await
    }

    /// Opens a live stream (in-process only): the status and, when it opened, the streaming body.
    pub async fn open_stream(&self, path: &str) -> (StatusCode, Option<Body>) {
        let Transport::InProcess(app) = &self.transport else {
            panic!("streams are opened in-process")
        };
        let mut req = Request::get(path)
            .header(header::HOST, "localhost")
            .header(header::ACCEPT, "text/event-stream")
            .body(Body::empty())
            .expect("request");
        if let Some(c) = &self.cookie {
            req.headers_mut()
                .insert(header::COOKIE, c.parse().expect("cookie"));
        }
        let resp = app.clone().oneshot(req).await.expect("response");
        let status = resp.status();
        (status, status.is_success().then(|| resp.into_body()))
    }

    pub async fn sign_in(&mut self, username: &str, password: &str) -> Answer {
        let a = self
            .call("sign_in", &[("username", username), ("password", password)])
            .await;
        assert_eq!(a.status, StatusCode::OK, "sign in {username}: {}", a.body);
        a
    }
}

pub fn form(args: &[(&str, &str)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The next data chunk of a stream within `wait`: Some(text), or None when the stream ended.
pub async fn next_chunk(body: &mut Body, wait: std::time::Duration) -> Option<String> {
    loop {
        match tokio::time::timeout(wait, body.frame()).await {
            Err(_) => panic!("no chunk within {wait:?}"),
            Ok(None) => return None,
            Ok(Some(Err(e))) => panic!("stream error: {e}"),
            Ok(Some(Ok(f))) => {
                if let Ok(data) = f.into_data() {
                    return Some(String::from_utf8_lossy(&data).into_owned());
                }
            }
        }
    }
}

/// Waits until the stream ends (None) within `wait`, skipping keep-alives and messages.
pub async fn stream_ends(body: &mut Body, wait: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        match tokio::time::timeout(left, body.frame()).await {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Waits until the console's account, roles and bindings are gone from `context` (after a revoke, once the
/// garbage collector ran).
pub async fn wait_access_gone(context: &str) {
    let world = testworld::client(context).await;
    testworld::wait_for(60, "the console's account, roles and bindings gone", || {
        let world = world.clone();
        async move {
            match mesh::access::gone(&world, &[]).await {
                Ok(true) => Ok(()),
                Ok(false) => Err("still there".to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
}

/// A setup request as the API takes it (`start_setup`, `preflight_setup`, `plan_setup`): the clusters, the
/// Istio version, load-balanced east-west gateways, `peering`, a license key.
pub fn setup_request(
    clusters: &[&str],
    version: &str,
    peering: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({"request": {
        "clusters": clusters, "istio_version": version, "eastwest": "load-balancer",
        "peering": peering, "license": {"kind": "key", "key": "a-license-key"}
    }})
}

/// The first cluster's preflight of `request`, and its finding `key`.
pub async fn preflight_finding(
    client: &mut Client,
    request: &serde_json::Value,
    key: &str,
) -> (app::model::PreflightView, app::model::FindingView) {
    let a = client.call_json("preflight_setup", request.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let views: Vec<app::model::PreflightView> = serde_json::from_str(&a.body).expect("preflight");
    let view = views.into_iter().next().expect("a cluster's preflight");
    let finding = view
        .findings
        .iter()
        .find(|f| f.key == key)
        .cloned()
        .unwrap_or_else(|| panic!("finding {key}: {:?}", view.findings));
    (view, finding)
}
