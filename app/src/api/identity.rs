//! Single sign-on: what the sign-in page offers, and the group mappings admins keep.

use leptos::prelude::*;

use crate::model::{AppError, GroupMapping, GroupMappings, SignInOptions};

/// What the sign-in page offers, and why the last single sign-on of this browser was refused. Public: asked
/// before anyone is signed in; it tells nothing a stranger could not see on the page.
#[server(endpoint = "sign_in_options")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    use crate::model::Denied;
    use crate::ssr::oidc::flow_keys::{DENIED, FAILED};
    use crate::ssr::state::state;
    let st = state()?;
    let session = crate::ssr::session::session().await?;
    // Kept until the next sign-in starts or succeeds (the page may ask twice: server, then browser).
    let denied = session.get::<Denied>(DENIED).await.ok().flatten();
    let failed = session.get::<String>(FAILED).await.ok().flatten();
    let signed_out = session
        .get::<bool>(crate::ssr::oidc::SIGNED_OUT)
        .await
        .ok()
        .flatten()
        .unwrap_or(false);
    let end_session = match (&st.oidc, signed_out) {
        (Some(o), true) => o.end_session().await,
        _ => None,
    };
    Ok(SignInOptions {
        provider: st.oidc.as_ref().map(|o| o.config.label.clone()),
        break_glass_only: st.oidc.is_some() && st.break_glass.is_some(),
        denied,
        failed,
        end_session,
    })
}

/// The group mappings (admins).
#[server(endpoint = "list_group_mappings")]
pub async fn list_group_mappings() -> Result<GroupMappings, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Admin).await?;
            let st = state()?;
            Ok(GroupMappings {
                list: st.store.group_mappings().await?,
                file: st
                    .oidc
                    .as_ref()
                    .and_then(|o| o.config.mappings_file.as_ref())
                    .map(|p| p.display().to_string()),
                configured: st.oidc.is_some(),
                groups_claim: st
                    .oidc
                    .as_ref()
                    .map(|o| o.config.groups_claim.clone())
                    .unwrap_or_default(),
            })
        }
        .await,
    )
}

/// Adds or removes a mapping: gives or takes power, so an admin who confirmed it is them in the last few
/// minutes; refused while a settings file holds the mappings. Every single sign-on account follows at once.
#[cfg(feature = "ssr")]
async fn change_mapping(
    admin: crate::ssr::store::User,
    mapping: GroupMapping,
    add: bool,
) -> Result<usize, AppError> {
    use crate::ssr::oidc::mappings;
    use crate::ssr::{client, session, state::state, store::NewAudit};
    session::require_recent_auth().await?;
    let st = state()?;
    if let Some(path) = st
        .oidc
        .as_ref()
        .and_then(|o| o.config.mappings_file.as_ref())
    {
        return Err(AppError::Conflict(format!(
            "the group mappings come from the settings file {}; change them there",
            path.display()
        )));
    }
    mappings::check(&mapping)?;
    if add {
        st.store
            .add_group_mapping(&mapping, &admin.username)
            .await?;
    } else {
        st.store.remove_group_mapping(&mapping).await?;
    }
    let changed = mappings::apply(&st).await?;
    let what = match &mapping.grant {
        crate::model::Grant::Role { role } => format!("role {role}"),
        crate::model::Grant::Team { team, role } => format!("team {team} as {}", role.as_str()),
    };
    let detail = format!(
        "{} group {:?} → {what}; {changed} account(s) changed role",
        if add { "mapped" } else { "unmapped" },
        mapping.group
    );
    let source = client::attempter().source;
    st.store
        .audit_logged(&NewAudit {
            actor: &admin.username,
            source: &source,
            team: "",
            cluster: "",
            kind: "group-mapping",
            subject: &mapping.group,
            detail: &detail,
        })
        .await;
    tracing::info!(admin = %admin.username, "{detail}");
    Ok(changed)
}

#[server(endpoint = "add_group_mapping", input = leptos::server_fn::codec::Json)]
pub async fn add_group_mapping(mapping: GroupMapping) -> Result<usize, AppError> {
    use crate::model::Role;
    use crate::ssr::session;
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            change_mapping(admin, mapping, true).await
        }
        .await,
    )
}

#[server(endpoint = "remove_group_mapping", input = leptos::server_fn::codec::Json)]
pub async fn remove_group_mapping(mapping: GroupMapping) -> Result<usize, AppError> {
    use crate::model::Role;
    use crate::ssr::session;
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            change_mapping(admin, mapping, false).await
        }
        .await,
    )
}
