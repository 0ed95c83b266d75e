//! `POST /portal/request`: the team page's request form without JavaScript. The request is checked and
//! recorded exactly as `submit_portal_request` does (membership, grants, rules, limits); then the browser is
//! sent back to the team page: to the request (`?request=<id>`, shown with where it stands) when it was made,
//! or to the form with what was typed and its plan (`&preview=1`, where the plan's checks say what refused
//! it) when it was not.

use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::{Caller, Portal};
use crate::model::{AppError, PortalAction};
use crate::pages::encode_query;
use crate::ssr::client::ClientAddr;
use crate::ssr::live::error;
use crate::ssr::session::user_in;
use crate::ssr::state::AppState;

pub async fn request_form(
    State(state): State<AppState>,
    session: Session,
    addr: Option<axum::Extension<ClientAddr>>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let user = match user_in(&session, &state).await {
        Ok(Some(u)) => u,
        Ok(None) => return see_other("/sign-in?next=/team".to_string()),
        Err(e) => return error(e),
    };
    let action = match PortalAction::from_form(&pairs) {
        Ok(a) => a,
        Err(e) => return error(e),
    };
    let caller = Caller {
        user,
        source: addr.map(|a| a.0.0.to_string()).unwrap_or_default(),
    };
    let team = encode_query(&action.team);
    match Portal::new(&state).submit(&caller, &action).await {
        Ok(s) => see_other(format!("/team?team={team}&request={}", encode_query(&s.id))),
        Err(AppError::Unauthenticated) => see_other("/sign-in?next=/team".to_string()),
        Err(e) => {
            tracing::info!(team = %action.team, "a request from the plain form was refused: {e}");
            see_other(format!("/team?{}&preview=1", query_of(&action)))
        }
    }
}

/// The form's fields as a query string.
pub fn query_of(a: &PortalAction) -> String {
    a.to_form()
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode_query(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn see_other(to: String) -> Response {
    match HeaderValue::from_str(&to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error(AppError::invalid("team", "not a name a link can carry")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MeshMode, PortalKind, ShareScope};

    #[test]
    fn the_form_link_back_carries_what_was_asked_encoded() {
        let a = PortalAction {
            team: "pay".into(),
            kind: PortalKind::Enrol,
            namespace: "a b&c".into(),
            service: None,
            clusters: vec!["c1".into(), "c2".into()],
            mode: MeshMode::Ambient,
            scope: ShareScope::Global,
            spread: false,
        };
        assert_eq!(
            query_of(&a),
            "team=pay&kind=enrol&namespace=a%20b%26c&service=&cluster=c1&cluster=c2&mode=ambient&scope=global"
        );
    }
}
