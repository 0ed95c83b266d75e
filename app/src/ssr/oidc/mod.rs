//! Sign-in through the organisation's OpenID provider: the authorization code flow with PKCE and a nonce,
//! the state bound to the browser's session, against any provider with a discovery document.
//!
//! The provider is discovered on first use (not at start: a provider that is down does not keep the console
//! from starting, and local break-glass sign-in still works) and again every few minutes, so rotated signing
//! keys are picked up. The ID token is checked by `openidconnect` (signature with the provider's keys, issuer,
//! audience, expiry, nonce); its groups come from the verified token's own claims, or from the userinfo
//! endpoint when the token has none. The HTTP client never follows redirects (SSRF) and trusts the webpki
//! roots plus `--oidc-ca-file`.

mod flow;
pub mod mappings;

use std::path::PathBuf;
use std::time::Duration;

pub(crate) use flow::forget_outcomes;
pub use flow::{callback, start};

/// The session keys the sign-in page reads.
pub mod flow_keys {
    pub use super::flow::{DENIED, FAILED};
}

/// The settings, from the server's flags (`--oidc-*`).
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The issuer URL; its discovery document is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// From `MESHDECK_OIDC_CLIENT_SECRET` or a 0600 file; None for a public client (PKCE only).
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// The claim that holds the user's groups (default `groups`).
    pub groups_claim: String,
    /// The claim that names the user (default `email`).
    pub username_claim: String,
    /// The button's label ("Sign in with …").
    pub label: String,
    /// `<public URL>/auth/oidc/callback`.
    pub redirect_url: String,
    /// Where the browser goes after the provider's end-session (`<public URL>/sign-in?signed_out=1`).
    pub signed_out_url: String,
    /// Extra trusted roots for the provider's TLS (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// The longest a single sign-on session lasts: a user removed from a group loses the role by then.
    pub session_max: Duration,
    /// The group mappings as a settings file (then read-only in the UI).
    pub mappings_file: Option<PathBuf>,
    /// Per-user rights: work for a single sign-on user acts as that user on clusters (`acting`).
    pub impersonate: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("oidc::Config")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .field("username_claim", &self.username_claim)
            .field("redirect_url", &self.redirect_url)
            .field("session_max", &self.session_max)
            .field("mappings_file", &self.mappings_file)
            .field("impersonate", &self.impersonate)
            .finish_non_exhaustive()
    }
}

/// Why a single sign-on did not go through; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the OpenID provider at {issuer} cannot be reached ({detail}); try again in a moment, or ask an admin (the break-glass account still signs in with a password)"
    )]
    Unreachable { issuer: String, detail: String },
    #[error("the OpenID provider at {issuer} answered wrongly: {detail}")]
    Provider { issuer: String, detail: String },
    #[error(
        "this sign-in was not started in this browser, took longer than 10 minutes or was used already; start again"
    )]
    NoPending,
    #[error(
        "the provider's answer does not belong to this sign-in (the state differs); start again"
    )]
    StateMismatch,
    #[error("the provider did not sign you in: {0}")]
    Refused(String),
    #[error("the provider refused the sign-in code ({0}); start again")]
    BadCode(String),
    #[error("the provider's ID token is not valid: {0}")]
    BadToken(String),
    #[error(
        "the provider's token has no usable {claim:?} claim to name you; an admin sets --oidc-username-claim"
    )]
    NoUsername { claim: String },
    #[error("you confirmed as another user ({0}); sign out and sign in as that user instead")]
    OtherUser(String),
}

/// The console's side of the provider. Cheap to share (`Arc`).
pub struct Oidc {
    pub config: Config,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<(tokio::time::Instant, flow::Discovered)>>,
}

/// How long a discovery (and the provider's keys) is reused.
const REDISCOVER: Duration = Duration::from_secs(300);

impl Oidc {
    pub fn new(config: Config) -> Result<Oidc, String> {
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("meshdeck/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("--oidc-ca-file: not PEM certificates: {e}"))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| format!("the HTTP client for the OpenID provider: {e}"))?;
        Ok(Oidc {
            config,
            http,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's end-session URL, when its discovery document names one (known after a first use).
    pub async fn end_session(&self) -> Option<String> {
        let d = self.discovered.lock().await;
        let url = d.as_ref()?.1.end_session.clone()?;
        end_session_url(&url, &self.config.client_id, &self.config.signed_out_url)
    }
}

/// `endpoint` with the client and where to come back after signing out there (OpenID RP-initiated logout).
fn end_session_url(endpoint: &str, client_id: &str, back: &str) -> Option<String> {
    let mut u = openidconnect::url::Url::parse(endpoint).ok()?;
    if !matches!(u.scheme(), "https" | "http") {
        return None;
    }
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("post_logout_redirect_uri", back);
    Some(u.to_string())
}

/// The session key that says this browser just signed out of a single sign-on session.
pub const SIGNED_OUT: &str = "oidc_signed_out";

#[cfg(test)]
mod tests {
    #[test]
    fn the_end_session_url_names_the_client_and_the_way_back() {
        let u = super::end_session_url(
            "https://idp.example.com/logout?x=1",
            "meshdeck",
            "https://md.example.com/sign-in",
        )
        .expect("url");
        assert_eq!(
            u,
            "https://idp.example.com/logout?x=1&client_id=meshdeck&post_logout_redirect_uri=https%3A%2F%2Fmd.example.com%2Fsign-in"
        );
        assert_eq!(
            super::end_session_url("javascript:alert(1)", "m", "b"),
            None
        );
        assert_eq!(super::end_session_url("not a url", "m", "b"), None);
    }
}
