//! Sign-in through the organisation's OpenID provider: what the sign-in page offers, and how the provider's
//! groups map to console roles and team memberships. Deny by default: a group nobody mapped gives nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Role, TeamRole};

/// What the sign-in page offers (public: asked before anyone is signed in).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// The provider's button label, when single sign-on is configured.
    pub provider: Option<String>,
    /// Local accounts: every one, or only the break-glass admin (then the form is tucked away).
    pub break_glass_only: bool,
    /// The last single sign-on of this browser was refused: no mapped group.
    pub denied: Option<Denied>,
    /// The last single sign-on of this browser failed (a tampered or expired answer, the provider down).
    pub failed: Option<String>,
    /// This browser just signed out of a single sign-on session: the provider's end-session URL, when its
    /// discovery document names one (to sign out there too).
    #[serde(default)]
    pub end_session: Option<String>,
}

/// A single sign-on that proved who the user is but found no group that gives access.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Denied {
    pub username: String,
    pub groups: Vec<String>,
}

/// What members of a group get.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Grant {
    /// A console role.
    Role { role: Role },
    /// Membership of a portal team (and at least the viewer role, to reach the portal).
    Team { team: String, role: TeamRole },
}

/// One group of the provider mapped to a grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupMapping {
    pub group: String,
    #[serde(flatten)]
    pub grant: Grant,
}

/// The mappings as the admin page shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupMappings {
    pub list: Vec<GroupMapping>,
    /// Set when the mappings come from a settings file (`--oidc-mappings`): the page shows them read-only.
    pub file: Option<String>,
    /// Whether single sign-on is configured at all, and the claim that carries groups.
    pub configured: bool,
    pub groups_claim: String,
}

/// What a user with `groups` gets: the highest mapped role, and each mapped team with the highest team role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub role: Option<Role>,
    /// Team → (team role, the group that gave it).
    pub teams: BTreeMap<String, (TeamRole, String)>,
}

impl Resolved {
    /// True when nothing was mapped: the user gets no access at all.
    pub fn denied(&self) -> bool {
        self.role.is_none()
    }
}

/// Resolves `groups` against `mappings`. A team grant alone gives the viewer role (the portal needs one).
pub fn resolve(groups: &[String], mappings: &[GroupMapping]) -> Resolved {
    let mut out = Resolved::default();
    for m in mappings.iter().filter(|m| groups.contains(&m.group)) {
        match &m.grant {
            Grant::Role { role } => out.role = out.role.max(Some(*role)),
            Grant::Team { team, role } => {
                out.role = out.role.max(Some(Role::Viewer));
                let e = out
                    .teams
                    .entry(team.clone())
                    .or_insert((*role, m.group.clone()));
                if *role > e.0 {
                    *e = (*role, m.group.clone());
                }
            }
        }
    }
    out
}

/// Checks a group name as providers send them (names, paths such as `/org/team`, or ids): 1–256 printable
/// characters, no control characters.
pub fn check_group(group: &str) -> Result<(), String> {
    if group.is_empty() || group.len() > 256 {
        return Err("a group name has 1 to 256 characters".into());
    }
    if group.chars().any(char::is_control) || group.trim() != group {
        return Err("a group name has no control characters and no spaces at its ends".into());
    }
    if group.starts_with("system:") {
        return Err(
            "a group named system:… is Kubernetes' own (system:masters is cluster-admin): the console never \
             maps or asserts one"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(group: &str, grant: Grant) -> GroupMapping {
        GroupMapping {
            group: group.into(),
            grant,
        }
    }

    #[test]
    fn the_highest_role_wins_and_unmapped_groups_give_nothing() {
        let maps = vec![
            map("admins", Grant::Role { role: Role::Admin }),
            map("sre", Grant::Role { role: Role::Viewer }),
            map(
                "payments",
                Grant::Team {
                    team: "payments".into(),
                    role: TeamRole::Member,
                },
            ),
            map(
                "payments-leads",
                Grant::Team {
                    team: "payments".into(),
                    role: TeamRole::Admin,
                },
            ),
        ];
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = resolve(&g(&["sre", "admins"]), &maps);
        assert_eq!(r.role, Some(Role::Admin));
        assert!(r.teams.is_empty());
        let r = resolve(&g(&["payments", "payments-leads"]), &maps);
        assert_eq!(r.role, Some(Role::Viewer), "a team gives the viewer role");
        assert_eq!(
            r.teams.get("payments"),
            Some(&(TeamRole::Admin, "payments-leads".to_string()))
        );
        assert!(resolve(&g(&["contractors"]), &maps).denied());
        assert!(resolve(&[], &maps).denied());
        assert!(resolve(&g(&["ADMINS"]), &maps).denied(), "exact names");
    }

    #[test]
    fn group_names_are_bounded() {
        assert!(check_group("platform-admins").is_ok());
        assert!(check_group("/org/payments").is_ok());
        assert!(check_group("").is_err());
        assert!(check_group(" x").is_err());
        assert!(check_group("a\nb").is_err());
        assert!(check_group("system:masters").is_err());
        assert!(check_group(&"g".repeat(257)).is_err());
    }
}
