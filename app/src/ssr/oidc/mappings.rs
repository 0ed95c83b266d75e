//! Group mappings: the settings file (`--oidc-mappings`), checks, and applying a change to every single
//! sign-on account at once (roles, team memberships, and sessions of accounts left with no mapped group).
//!
//! The file (YAML):
//!
//! ```yaml
//! mappings:
//!   - group: platform-admins
//!     role: admin
//!   - group: payments-devs
//!     team: payments          # a portal team
//!     teamRole: member        # or admin; default member
//! ```

use serde::Deserialize;

use crate::model::{AppError, Grant, GroupMapping, Role, TeamRole, check_group, resolve};
use crate::ssr::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mappings: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Entry {
    group: String,
    role: Option<String>,
    team: Option<String>,
    team_role: Option<String>,
}

/// Checks one mapping as an admin or the file gives it.
pub fn check(m: &GroupMapping) -> Result<(), AppError> {
    check_group(&m.group).map_err(|e| AppError::invalid("group", e))?;
    if let Grant::Team { team, .. } = &m.grant {
        mesh::ids::check_dns1123_label("team", team)
            .map_err(|e| AppError::invalid("team", e.to_string()))?;
    }
    Ok(())
}

/// Reads the settings file; errors name the entry and say what is wrong.
pub fn parse_file(text: &str) -> Result<Vec<GroupMapping>, String> {
    let file: File = mesh::yaml::from_str(text, &mesh::yaml::Limits::INPUT)
        .map_err(|e| format!("not a mappings file: {e}"))?;
    let mut out = Vec::with_capacity(file.mappings.len());
    for (i, e) in file.mappings.into_iter().enumerate() {
        let at = |m: String| format!("mapping {} ({:?}): {m}", i + 1, e.group);
        let grant = match (&e.role, &e.team) {
            (Some(r), None) => Grant::Role {
                role: Role::parse(r)
                    .ok_or_else(|| at(format!("role {r:?} is not admin, operator or viewer")))?,
            },
            (None, Some(t)) => Grant::Team {
                team: t.clone(),
                role: match e.team_role.as_deref() {
                    None => TeamRole::Member,
                    Some(r) => TeamRole::parse(r)
                        .ok_or_else(|| at(format!("teamRole {r:?} is not admin or member")))?,
                },
            },
            _ => return Err(at("give either `role` or `team`".into())),
        };
        let m = GroupMapping {
            group: e.group.clone(),
            grant,
        };
        check(&m).map_err(|err| at(err.to_string()))?;
        out.push(m);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Reads `path` and replaces the stored mappings with it (at start).
pub async fn load_file(st: &AppState, path: &std::path::Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--oidc-mappings {}: {e}", path.display()))?;
    let list = parse_file(&text).map_err(|e| format!("--oidc-mappings {}: {e}", path.display()))?;
    st.store
        .replace_group_mappings(&list, &format!("file {}", path.display()))
        .await
        .map_err(|e| e.to_string())?;
    apply(st).await.map_err(|e| e.to_string())?;
    Ok(list.len())
}

/// Gives every single sign-on account the role and team memberships its last groups give under the current
/// mappings; an account left with none loses its sessions at once. Returns how many accounts changed role.
pub async fn apply(st: &AppState) -> Result<usize, AppError> {
    let mappings = st.store.group_mappings().await?;
    let mut changed = 0;
    for u in st.store.sso_users().await? {
        let r = resolve(&u.groups, &mappings);
        if r.role != Some(u.user.role) {
            changed += 1;
            st.store.set_sso_role(u.user.id, r.role).await?;
            if r.role.is_none() {
                st.notifier
                    .publish(crate::ssr::notify::Notice::UserSessionsEnded { user: u.user.id })
                    .await;
            }
        }
        st.store
            .sync_group_memberships(&u.user.username, &r.teams)
            .await?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_gives_roles_and_teams() {
        let list = parse_file(
            "mappings:\n  - group: platform-admins\n    role: admin\n  - group: payments-devs\n    team: payments\n  - group: leads\n    team: payments\n    teamRole: admin\n",
        )
        .expect("parses");
        assert_eq!(list.len(), 3);
        assert!(list.contains(&GroupMapping {
            group: "payments-devs".into(),
            grant: Grant::Team {
                team: "payments".into(),
                role: TeamRole::Member
            }
        }));
    }

    #[test]
    fn a_bad_file_names_the_entry() {
        let e = parse_file("mappings:\n  - group: a\n    role: root\n").expect_err("refused");
        assert!(e.contains("mapping 1") && e.contains("root"), "{e}");
        let e = parse_file("mappings:\n  - group: a\n    role: admin\n    team: t\n")
            .expect_err("refused");
        assert!(e.contains("either"), "{e}");
        let e = parse_file("mappings:\n  - group: a\n    team: Not_A_Team\n").expect_err("refused");
        assert!(e.contains("team"), "{e}");
        assert!(
            parse_file("roles: {}").is_err(),
            "unknown fields are refused"
        );
    }
}
