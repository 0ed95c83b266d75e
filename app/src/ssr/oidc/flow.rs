//! The two legs of a single sign-on: `/auth/oidc/start` sends the browser to the provider with a fresh state,
//! nonce and PKCE challenge kept in its session; `/auth/oidc/callback` takes the provider's answer, checks the
//! state against the session (single use, 10 minutes), exchanges the code with the PKCE verifier, checks the
//! ID token, maps the groups (deny by default) and begins the console session.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use super::{Error, Oidc, REDISCOVER};
use crate::model::{Denied, resolve};
use crate::ssr::client::ClientAddr;
use crate::ssr::state::AppState;
use crate::ssr::store::NewAudit;
use crate::ssr::{now, session};

/// Session keys: the sign-in under way, and what the sign-in page says after a refusal or a failure.
pub(crate) const PENDING: &str = "oidc_pending";
pub const DENIED: &str = "oidc_denied";
pub const FAILED: &str = "oidc_failed";
/// How long a started sign-in may take.
const PENDING_SECS: i64 = 600;

/// The provider, as discovered.
#[derive(Clone)]
pub(super) struct Discovered {
    metadata: CoreProviderMetadata,
    pub(super) end_session: Option<String>,
}

/// A sign-in under way, kept in the browser's session.
#[derive(Serialize, Deserialize)]
struct Pending {
    /// SHA-256 of the state sent to the provider (compared as hashes: no timing signal).
    state_hash: String,
    nonce: String,
    verifier: String,
    next: String,
    /// Confirming it is you (for actions that give power) rather than signing in: the signed-in user's id.
    reauth_of: Option<i64>,
    at: i64,
}

fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Oidc {
    /// The provider's metadata and keys, discovered again when older than `REDISCOVER`.
    async fn discover(&self) -> Result<Discovered, Error> {
        let mut cached = self.discovered.lock().await;
        if let Some((at, d)) = cached.as_ref()
            && at.elapsed() < REDISCOVER
        {
            return Ok(d.clone());
        }
        let issuer = &self.config.issuer;
        let unreachable = |detail: String| Error::Unreachable {
            issuer: issuer.clone(),
            detail,
        };
        let wrong = |detail: String| Error::Provider {
            issuer: issuer.clone(),
            detail,
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unreachable(format!("{url} answered {}", resp.status())));
        }
        let body = resp.bytes().await.map_err(|e| unreachable(e.to_string()))?;
        let metadata: CoreProviderMetadata = serde_json::from_slice(&body)
            .map_err(|e| wrong(format!("its discovery document does not parse: {e}")))?;
        if metadata.issuer().as_str().trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(wrong(format!(
                "its discovery document names the issuer {}, not {issuer}",
                metadata.issuer().as_str()
            )));
        }
        let end_session = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("end_session_endpoint")?.as_str().map(String::from));
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| unreachable(format!("its signing keys: {e}")))?;
        let d = Discovered {
            metadata: metadata.set_jwks(jwks),
            end_session,
        };
        *cached = Some((tokio::time::Instant::now(), d.clone()));
        Ok(d)
    }

    fn redirect(&self) -> Result<RedirectUrl, Error> {
        RedirectUrl::new(self.config.redirect_url.clone()).map_err(|e| Error::Provider {
            issuer: self.config.issuer.clone(),
            detail: format!("the redirect URL: {e}"),
        })
    }

    /// The provider's authorization URL for a new sign-in, and what to keep in the session.
    async fn begin(
        &self,
        next: String,
        reauth_of: Option<i64>,
    ) -> Result<(String, Pending), Error> {
        let d = self.discover().await?;
        let client = CoreClient::from_provider_metadata(
            d.metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect()?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new));
        if reauth_of.is_some() {
            // Confirming it is you: the provider asks for the credentials again.
            req = req
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(std::time::Duration::ZERO);
        }
        let (url, state, nonce) = req.url();
        Ok((
            url.to_string(),
            Pending {
                state_hash: digest(state.secret()),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
                next,
                reauth_of,
                at: now(),
            },
        ))
    }

    /// Exchanges `code`, checks the ID token and reads who it names and their groups.
    async fn finish(&self, pending: Pending, code: String) -> Result<Identity, Error> {
        let d = self.discover().await?;
        let client = CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect()?);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| Error::Provider {
                issuer: self.config.issuer.clone(),
                detail: e.to_string(),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| Error::BadCode(token_error(&e)))?;
        let id_token = token.id_token().ok_or_else(|| {
            Error::BadToken("the provider sent no ID token (is `openid` among the scopes?)".into())
        })?;
        let verifier = client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha384,
            CoreJwsSigningAlgorithm::RsaSsaPssSha512,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            CoreJwsSigningAlgorithm::EdDsa,
        ]);
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce))
            .map_err(|e| Error::BadToken(e.to_string()))?;
        let subject = format!("{} {}", claims.issuer().as_str(), claims.subject().as_str());
        // The token is verified: its own payload is the source of the other claims.
        let mut raw = payload(&id_token.to_string()).unwrap_or_default();
        let wanted = [&self.config.groups_claim, &self.config.username_claim];
        if wanted.iter().any(|c| raw.get(c.as_str()).is_none())
            && let Some(info) = self
                .userinfo(&d, token.access_token().secret(), claims.subject().as_str())
                .await
        {
            for c in wanted {
                if raw.get(c.as_str()).is_none()
                    && let Some(v) = info.get(c.as_str())
                {
                    raw.insert(c.clone(), v.clone());
                }
            }
        }
        let username = raw
            .get(&self.config.username_claim)
            .and_then(serde_json::Value::as_str)
            .map(|s| s.trim().to_lowercase())
            .filter(|s| crate::ssr::store::check_username(s).is_ok())
            .ok_or_else(|| Error::NoUsername {
                claim: self.config.username_claim.clone(),
            })?;
        let groups = groups_of(raw.get(&self.config.groups_claim));
        Ok(Identity {
            subject,
            username,
            groups,
        })
    }

    /// The userinfo claims, when the provider has the endpoint and they are about the same subject.
    async fn userinfo(
        &self,
        d: &Discovered,
        access_token: &str,
        subject: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let url = d.metadata.userinfo_endpoint()?.url().clone();
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .send()
            .await
            .ok()?;
        let info: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
        (info.get("sub").and_then(serde_json::Value::as_str) == Some(subject)).then_some(info)
    }
}

/// The token endpoint's refusal, without the noise (never the code or the verifier).
fn token_error<E: std::error::Error>(e: &E) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s.chars().take(300).collect()
}

/// The claims of a JWT's payload (only for a token already verified).
fn payload(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Groups as providers send them: a list of strings, or one string. Names that fail `check_group` are left
/// out; at most 1000.
fn groups_of(v: Option<&serde_json::Value>) -> Vec<String> {
    let mut out: Vec<String> = match v {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|g| g.as_str().map(String::from))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => vec![],
    };
    out.retain(|g| crate::model::check_group(g).is_ok());
    out.sort();
    out.dedup();
    out.truncate(1000);
    out
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Identity {
    pub subject: String,
    pub username: String,
    pub groups: Vec<String>,
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    /// `1`: confirm it is you (the signed-in user signs in at the provider again).
    reauth: Option<String>,
}

/// Forgets what the sign-in page says about this browser's last single sign-on (a new one starts, or a
/// sign-in succeeded).
pub(crate) async fn forget_outcomes(session: &Session) {
    let _ = session.remove::<String>(FAILED).await;
    let _ = session.remove::<Denied>(DENIED).await;
    let _ = session.remove::<bool>(super::SIGNED_OUT).await;
}

/// Back to the sign-in page, saying why.
async fn fail(session: &Session, e: &Error) -> Response {
    tracing::info!("single sign-on refused: {e}");
    let _ = session.insert(FAILED, e.to_string()).await;
    Redirect::to("/sign-in").into_response()
}

/// `GET /auth/oidc/start?next=/page[&reauth=1]`.
pub async fn start(
    State(st): State<AppState>,
    session: Session,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(oidc) = st.oidc.clone() else {
        return Redirect::to("/sign-in").into_response();
    };
    let next = crate::model::after_sign_in(q.next.as_deref());
    let reauth_of = if q.reauth.as_deref() == Some("1") {
        match session::user_in(&session, &st).await {
            Ok(Some(u)) if u.sso => Some(u.id),
            _ => return Redirect::to("/sign-in").into_response(),
        }
    } else {
        None
    };
    forget_outcomes(&session).await;
    match oidc.begin(next, reauth_of).await {
        Ok((url, pending)) => {
            if let Err(e) = session.insert(PENDING, &pending).await {
                tracing::error!("single sign-on: the session store: {e}");
                return crate::ssr::live::error(crate::ssr::errors::incident(e.to_string()));
            }
            Redirect::to(&url).into_response()
        }
        Err(e) => fail(&session, &e).await,
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/oidc/callback?code=…&state=…` (or `?error=…`).
pub async fn callback(
    State(st): State<AppState>,
    session: Session,
    addr: Option<axum::Extension<ClientAddr>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = st.oidc.clone() else {
        return Redirect::to("/sign-in").into_response();
    };
    let source = addr.map(|a| a.0.0.to_string()).unwrap_or_default();
    // Single use: taken out of the session whatever happens next.
    let pending = session.remove::<Pending>(PENDING).await.ok().flatten();
    let Some(pending) = pending.filter(|p| now() - p.at <= PENDING_SECS) else {
        return fail(&session, &Error::NoPending).await;
    };
    if let Some(err) = q.error {
        let detail = match q.error_description {
            Some(d) => format!("{err}: {d}"),
            None => err,
        };
        return fail(
            &session,
            &Error::Refused(detail.chars().take(300).collect()),
        )
        .await;
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return fail(&session, &Error::NoPending).await;
    };
    if digest(&state) != pending.state_hash {
        tracing::warn!(source = %source, "single sign-on: a callback with a state this session did not send");
        return fail(&session, &Error::StateMismatch).await;
    }
    let (next, reauth_of) = (pending.next.clone(), pending.reauth_of);
    let who = match oidc.finish(pending, code).await {
        Ok(w) => w,
        Err(e) => return fail(&session, &e).await,
    };
    match complete(&st, &oidc, &session, &who, reauth_of, &source).await {
        Ok(true) => Redirect::to(&next).into_response(),
        Ok(false) => Redirect::to("/no-access").into_response(),
        Err(e) => {
            tracing::info!(user = %who.username, "single sign-on refused: {e}");
            let _ = session.insert(FAILED, e.to_string()).await;
            Redirect::to("/sign-in").into_response()
        }
    }
}

/// Maps the groups and begins the session (or confirms the signed-in user). `Ok(false)`: no mapped group.
async fn complete(
    st: &AppState,
    oidc: &Oidc,
    session: &Session,
    who: &Identity,
    reauth_of: Option<i64>,
    source: &str,
) -> Result<bool, crate::model::AppError> {
    let mappings = st.store.group_mappings().await?;
    let resolved = resolve(&who.groups, &mappings);
    let audit = |kind: &'static str, detail: String| async move {
        st.store
            .audit_logged(&NewAudit {
                actor: &who.username,
                source,
                team: "",
                cluster: "",
                kind,
                subject: &who.username,
                detail: &detail,
            })
            .await
    };
    if let Some(id) = reauth_of {
        let me = st.store.sso_user(&who.subject).await?;
        if me.as_ref().map(|u| u.id) != Some(id) {
            return Err(crate::model::AppError::Refused(
                Error::OtherUser(who.username.clone()).to_string(),
            ));
        }
        session::mark_reauthenticated_in(session).await?;
        return Ok(true);
    }
    let Some(role) = resolved.role else {
        audit(
            "sign-in-refused",
            format!("no mapped group among [{}]", who.groups.join(", ")),
        )
        .await;
        // An earlier account of this user loses its sessions too.
        if let Some(u) = st.store.sso_user(&who.subject).await? {
            st.store.set_sso_role(u.id, None).await?;
            st.notifier
                .publish(crate::ssr::notify::Notice::UserSessionsEnded { user: u.id })
                .await;
        }
        let _ = session
            .insert(
                DENIED,
                Denied {
                    username: who.username.clone(),
                    groups: who.groups.clone(),
                },
            )
            .await;
        return Ok(false);
    };
    let user = st
        .store
        .sign_in_sso(&who.subject, &who.username, &who.groups, role)
        .await
        .map_err(|e| match e {
            crate::ssr::store::Error::Conflict(_) => crate::model::AppError::Refused(format!(
                "a local account is already named {:?}; an admin renames or removes it before {} can sign in with single sign-on",
                who.username, who.username
            )),
            e => e.into(),
        })?;
    if user.disabled {
        return Err(crate::model::AppError::Refused(
            "your Meshdeck account is disabled; ask an admin".into(),
        ));
    }
    st.store
        .sync_group_memberships(&user.username, &resolved.teams)
        .await?;
    let until = now() + oidc.config.session_max.as_secs() as i64;
    session::begin_in(session, &user, Some(until)).await?;
    audit(
        "sign-in",
        format!(
            "single sign-on as {} from groups [{}]",
            role.as_str(),
            who.groups.join(", ")
        ),
    )
    .await;
    tracing::info!(user = %user.username, role = role.as_str(), "signed in with single sign-on");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_as_a_list_or_one_string_and_bad_names_are_left_out() {
        let v = serde_json::json!(["b", "a", "a", "", "x\ny", 5]);
        assert_eq!(groups_of(Some(&v)), vec!["a".to_string(), "b".into()]);
        assert_eq!(
            groups_of(Some(&serde_json::json!("admins"))),
            vec!["admins".to_string()]
        );
        assert!(groups_of(None).is_empty());
        assert!(groups_of(Some(&serde_json::json!({"a": 1}))).is_empty());
    }

    #[test]
    fn a_payload_is_read_from_the_middle_part() {
        use base64::Engine;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"1","groups":["g"]}"#);
        let p = payload(&format!("h.{body}.s")).expect("parses");
        assert_eq!(p["sub"], "1");
        assert!(payload("no-dots").is_none());
    }

    #[test]
    fn states_are_compared_as_digests() {
        assert_eq!(digest("abc"), digest("abc"));
        assert_ne!(digest("abc"), digest("abd"));
        assert_eq!(digest("abc").len(), 64);
    }
}
