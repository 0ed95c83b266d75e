//! The checks every request passes before the console's own code runs, and the headers every answer gets.
//!
//! - **Who is calling** ([`client_addr`]): the client's address (see `app::ssr::client`), for throttling.
//! - **Same origin for every state change** ([`same_origin`]): a request that is not GET/HEAD/OPTIONS must come
//!   from the console's own pages. Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`,
//!   `Referer`); one that says it comes from elsewhere — another site, another port on the same host, a
//!   sibling subdomain, all "same-site" for the cookie — is refused with 403. Server functions take only
//!   `application/json` or `application/x-www-form-urlencoded` bodies, so a cross-site `text/plain` "simple
//!   request" cannot smuggle JSON either. Sign-in is covered too. Programs that are not browsers (curl, a
//!   script) send none of these headers and carry no browser cookie to abuse; they pass.
//! - **Real redirects** ([`redirect_status`]): a page answer carrying `Location` is a 3xx, so a browser without
//!   JavaScript, a probe or a crawler follows it.
//! - **Headers** ([`security_headers`]): `Content-Security-Policy` (the pages set their own, with the nonce of
//!   their inline scripts; everything else gets a policy that allows nothing), `frame-ancestors 'none'` and
//!   `X-Frame-Options`, `nosniff`, a referrer policy, and `Cache-Control: no-store` on every answer that does
//!   not set its own (pages and server-function answers carry user data, some of it secret).

use std::net::SocketAddr;
use std::sync::Arc;

use app::ssr::client::ClientAddr;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mesh::connect::IpNet;

/// What the guards need to know.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// The console's own origin when configured (`--public-url`), e.g. `https://meshdeck.example.com`.
    pub public_origin: Option<Arc<str>>,
}

/// Puts the client's address in the request (for throttling). Without a connection address (in-process
/// tests), the loopback address stands in.
pub async fn client_addr(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = app::ssr::client::resolve(peer, forwarded, &guard.trusted_proxies);
    req.extensions_mut().insert(ClientAddr(client));
    // A request id: the trusted proxy's (`X-Request-Id`, when well-formed), else a new one. Every log line of
    // the request carries it, and the answer names it, so a user's report finds its lines.
    let from_proxy = guard.trusted_proxies.iter().any(|n| n.contains(peer));
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| from_proxy && well_formed_id(v))
        .map(String::from)
        .unwrap_or_else(new_request_id);
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let kind = crate::telemetry::route_kind(req.uri().path());
    let started = std::time::Instant::now();
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    crate::telemetry::record(kind, resp.status(), started.elapsed());
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// The header that carries a request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// 1–64 characters of letters, digits, '-', '_', '.' (what proxies such as Envoy and nginx send).
fn well_formed_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_request_id() -> String {
    use rand::Rng;
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The origin a request says it comes from, when it says so: `Origin`, else the origin of `Referer`.
fn stated_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(o) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        return Some(o.to_string());
    }
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let (scheme, rest) = referer.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{host}"))
}

/// Whether `origin` is the console itself: the configured public origin, or the host this request was sent
/// to (the `Host` header) over http or https.
fn is_own_origin(origin: &str, headers: &HeaderMap, guard: &Guard) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if let Some(public) = &guard.public_origin
        && origin == public.to_ascii_lowercase()
    {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// Why a state-changing request is refused, if it is.
pub fn cross_site(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    guard: &Guard,
) -> Option<String> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Some(format!("a {site} request cannot change anything here"));
    }
    if let Some(origin) = stated_origin(headers)
        && !is_own_origin(&origin, headers, guard)
    {
        return Some(format!(
            "requests from {} cannot change anything here",
            origin.chars().take(100).collect::<String>()
        ));
    }
    if path.starts_with("/api/") {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ct != "application/json" && ct != "application/x-www-form-urlencoded" {
            return Some(format!(
                "server functions take application/json or application/x-www-form-urlencoded, not {:?}",
                ct.chars().take(60).collect::<String>()
            ));
        }
    }
    None
}

/// Refuses state changes that do not come from the console's own pages (see the module).
pub async fn same_origin(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if let Some(why) = cross_site(req.method(), req.uri().path(), req.headers(), &guard) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request: {why}");
        let body = app::model::AppError::Refused(why);
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    }
    next.run(req).await
}

/// Turns a page answer that carries `Location` but not a redirect status into one (302 for GET/HEAD, 303
/// after a form post).
pub async fn redirect_status(req: Request, next: Next) -> Response {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let is_api = req.uri().path().starts_with("/api/");
    let accepts_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let mut resp = next.run(req).await;
    let has_location = resp.headers().contains_key(header::LOCATION);
    if has_location && !resp.status().is_redirection() && (get && !is_api || accepts_html) {
        *resp.status_mut() = if get {
            StatusCode::FOUND
        } else {
            StatusCode::SEE_OTHER
        };
    }
    resp
}

/// The policy of answers that are not pages: nothing may be loaded or framed.
const CSP_NONE: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The policy of a page whose inline scripts carry `nonce`: scripts only from the console itself and those
/// inline ones, styles from the console (and style attributes), images also from data: and blob: URLs (the
/// topology's PNG export), connections to the console only, no framing by anyone.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Adds the security headers every answer gets (see the module). Each request gets a fresh CSP nonce, which
/// the pages' inline scripts carry (the router provides it to Leptos) and an HTML answer's policy names.
pub async fn security_headers(mut req: Request, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/pkg/");
    let nonce = app::ssr::client::CspNonce::new();
    req.extensions_mut().insert(nonce.clone());
    let mut resp = next.run(req).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if html {
            HeaderValue::from_str(&page_policy(&nonce.0))
                .unwrap_or(HeaderValue::from_static(CSP_NONE))
        } else {
            HeaderValue::from_static(CSP_NONE)
        };
        h.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_new_ones_are_random() {
        assert!(well_formed_id("a1b2-c3_d4.e5"));
        assert!(!well_formed_id(""));
        assert!(!well_formed_id("has space"));
        assert!(!well_formed_id("line\nbreak"));
        assert!(!well_formed_id(&"x".repeat(65)));
        let (a, b) = (new_request_id(), new_request_id());
        assert_eq!(a.len(), 24);
        assert!(well_formed_id(&a));
        assert_ne!(a, b);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("value"));
        }
        h
    }

    #[test]
    fn only_the_consoles_own_pages_may_change_state() {
        let g = Guard::default();
        let post = Method::POST;
        let json = ("content-type", "application/json");
        let host = ("host", "127.0.0.1:3000");
        // Same origin, by each header a browser may send.
        for h in [
            headers(&[host, json, ("origin", "http://127.0.0.1:3000")]),
            headers(&[host, json, ("sec-fetch-site", "same-origin")]),
            headers(&[host, json, ("referer", "http://127.0.0.1:3000/setup")]),
            // Not a browser: nothing stated.
            headers(&[host, json]),
        ] {
            assert_eq!(cross_site(&post, "/api/start_setup", &h, &g), None, "{h:?}");
        }
        for h in [
            headers(&[host, json, ("origin", "http://127.0.0.1:3001")]),
            headers(&[host, json, ("origin", "http://evil.example")]),
            headers(&[host, json, ("origin", "null")]),
            headers(&[host, json, ("sec-fetch-site", "same-site")]),
            headers(&[host, json, ("sec-fetch-site", "cross-site")]),
            headers(&[host, json, ("referer", "http://sibling.127.0.0.1:3000/x")]),
            headers(&[host, ("content-type", "text/plain")]),
            headers(&[host, ("content-type", "multipart/form-data; boundary=x")]),
        ] {
            assert!(cross_site(&post, "/api/sign_in", &h, &g).is_some(), "{h:?}");
        }
        assert_eq!(
            cross_site(
                &Method::GET,
                "/api/x",
                &headers(&[("origin", "http://evil")]),
                &g
            ),
            None,
            "reads are not state changes"
        );
        let behind_proxy = Guard {
            public_origin: Some("https://meshdeck.example.com".into()),
            ..Guard::default()
        };
        let h = headers(&[
            ("host", "10.0.0.5:3000"),
            json,
            ("origin", "https://meshdeck.example.com"),
        ]);
        assert_eq!(cross_site(&post, "/api/x", &h, &behind_proxy), None);
    }
}
