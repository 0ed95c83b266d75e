//! Teams as platform admins shape them: settings (limits, rules), members, grants. Every change is audited.

use super::{Caller, Portal};
use crate::model::{
    AppError, ClusterName, SYSTEM_NAMESPACES, TeamMember, TeamRole, TeamSettings, TeamView,
    pattern_matches,
};
use crate::ssr::store::NewAudit;

/// Limits a team may be given (more is a typo, not a plan).
const MAX_LIMIT: u32 = 10_000;

impl Portal {
    pub async fn team_view(&self, name: &str) -> Result<TeamView, AppError> {
        let settings = self.team(name).await?;
        Ok(TeamView {
            members: self.store.members(name).await?,
            grants: self.store.grants(name).await?,
            settings,
        })
    }

    pub async fn list_teams(&self) -> Result<Vec<TeamView>, AppError> {
        let mut out = vec![];
        for t in self.store.list_teams().await? {
            out.push(TeamView {
                members: self.store.members(&t.name).await?,
                grants: self.store.grants(&t.name).await?,
                settings: t,
            });
        }
        Ok(out)
    }

    /// The teams the caller is in, with their role there.
    pub async fn my_teams(&self, caller: &Caller) -> Result<Vec<(TeamView, TeamRole)>, AppError> {
        let mut out = vec![];
        for (t, r) in self.store.teams_of(&caller.user.username).await? {
            if let Ok(v) = self.team_view(&t).await {
                out.push((v, r));
            }
        }
        Ok(out)
    }

    /// Creates (`create`) or changes a team's settings.
    pub async fn save_team(
        &self,
        caller: &Caller,
        t: &TeamSettings,
        create: bool,
    ) -> Result<(), AppError> {
        let t = checked_settings(t)?;
        if create {
            self.store.create_team(&t, &caller.user.username).await?;
        } else {
            self.store.update_team(&t).await?;
        }
        let r = &t.rules;
        let detail = format!(
            "limits: {} namespaces, {} services; rules: enrol {:?}, leave {:?}, share {:?}, unshare {:?}; contact {:?}",
            t.max_namespaces, t.max_services, r.enrol, r.leave, r.share, r.unshare, t.contact
        )
        .to_lowercase();
        self.audit(
            caller,
            NewAudit {
                team: &t.name,
                kind: if create {
                    "team-created"
                } else {
                    "team-changed"
                },
                subject: &format!("team {}", t.name),
                detail: &detail,
                ..Default::default()
            },
        )
        .await;
        Ok(())
    }

    /// Removes a team that keeps nothing applied in any cluster (so nothing is left unowned).
    pub async fn delete_team(&self, caller: &Caller, name: &str) -> Result<(), AppError> {
        self.team(name).await?;
        let objects = self.store.portal_objects(Some(name)).await?;
        if !objects.is_empty() {
            return Err(AppError::Conflict(format!(
                "team {name} still keeps labels on {} namespaces or services (e.g. {} in cluster {}); have them leave the mesh or stop sharing first",
                objects.len(),
                objects[0].namespace,
                objects[0].cluster
            )));
        }
        self.store.delete_team(name).await?;
        self.audit(
            caller,
            NewAudit {
                team: name,
                kind: "team-deleted",
                subject: &format!("team {name}"),
                ..Default::default()
            },
        )
        .await;
        Ok(())
    }

    /// Adds a member, changes their role, or (None) removes them.
    pub async fn set_member(
        &self,
        caller: &Caller,
        team: &str,
        username: &str,
        role: Option<TeamRole>,
    ) -> Result<Vec<TeamMember>, AppError> {
        self.team(team).await?;
        match role {
            Some(r) => {
                if self.store.user_by_name(username).await?.is_none() {
                    return Err(AppError::NotFound(format!("user {username}")));
                }
                self.store.set_member(team, username, r).await?;
            }
            None => self.store.remove_member(team, username).await?,
        }
        self.audit(
            caller,
            NewAudit {
                team,
                kind: "member",
                subject: &format!("user {username}"),
                detail: &match role {
                    Some(r) => format!("is a team {} of {team}", r.as_str()),
                    None => format!("left team {team}"),
                },
                ..Default::default()
            },
        )
        .await;
        self.store.members(team).await.map_err(Into::into)
    }

    /// Sets the namespaces a team may touch in one cluster (no patterns: none there). Each pattern may be a
    /// list separated by commas or spaces (what the form without JavaScript sends in one field).
    pub async fn set_grant(
        &self,
        caller: &Caller,
        team: &str,
        cluster: &str,
        patterns: &[String],
    ) -> Result<(), AppError> {
        let split: Vec<String> = patterns
            .iter()
            .flat_map(|p| p.split([',', ' ']))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        let patterns = split.as_slice();
        self.team(team).await?;
        let name =
            ClusterName::new(cluster).map_err(|e| AppError::invalid("cluster", e.to_string()))?;
        if self.store.cluster(&name).await?.is_none() {
            return Err(AppError::NotFound(format!("cluster {cluster}")));
        }
        if patterns.len() > 100 {
            return Err(AppError::invalid("patterns", "at most 100 per cluster"));
        }
        let mut clean: Vec<String> = vec![];
        for p in patterns {
            let p = p.trim();
            check_pattern(p)?;
            if !clean.iter().any(|c| c == p) {
                clean.push(p.to_string());
            }
        }
        self.store.set_grant(team, cluster, &clean).await?;
        self.audit(
            caller,
            NewAudit {
                team,
                cluster,
                kind: "grant",
                subject: &format!("namespaces of team {team} in cluster {cluster}"),
                detail: &if clean.is_empty() {
                    "none".to_string()
                } else {
                    clean.join(", ")
                },
                ..Default::default()
            },
        )
        .await;
        Ok(())
    }
}

fn checked_settings(t: &TeamSettings) -> Result<TeamSettings, AppError> {
    mesh::ids::check_dns1123_label("team", &t.name)
        .map_err(|e| AppError::invalid("name", e.to_string()))?;
    let text = |field: &str, v: &str, max: usize| {
        if v.chars().count() > max {
            Err(AppError::invalid(
                field,
                format!("at most {max} characters"),
            ))
        } else if v.chars().any(|c| c.is_control()) {
            Err(AppError::invalid(field, "no control characters"))
        } else {
            Ok(v.trim().to_string())
        }
    };
    if t.max_namespaces > MAX_LIMIT || t.max_services > MAX_LIMIT {
        return Err(AppError::invalid("limits", format!("at most {MAX_LIMIT}")));
    }
    Ok(TeamSettings {
        name: t.name.clone(),
        description: text("description", &t.description, 500)?,
        contact: text("contact", &t.contact, 200)?,
        max_namespaces: t.max_namespaces,
        max_services: t.max_services,
        rules: t.rules.clone(),
    })
}

/// A grant pattern: a namespace name, or a prefix followed by `*`; never one that covers a system
/// namespace.
pub fn check_pattern(p: &str) -> Result<(), AppError> {
    let bad = |m: String| Err(AppError::invalid("patterns", m));
    let body = p.strip_suffix('*').unwrap_or(p);
    if body.is_empty() {
        return bad(format!(
            "{p:?}: name a namespace or a prefix such as team-*"
        ));
    }
    if body.contains('*') {
        return bad(format!("{p:?}: '*' only at the end"));
    }
    let valid = body.len() <= 63
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !body.starts_with('-')
        && (p.ends_with('*') || !body.ends_with('-'));
    if !valid {
        return bad(format!(
            "{p:?}: use lowercase letters, digits and '-' (a namespace name, or a prefix ending in '*')"
        ));
    }
    if let Some(sys) = SYSTEM_NAMESPACES.iter().find(|s| pattern_matches(p, s)) {
        return bad(format!(
            "{p:?} covers {sys}, a namespace of the platform that no team may be granted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_patterns_are_names_or_prefixes_and_never_cover_the_platform() {
        assert!(check_pattern("payments-*").is_ok());
        assert!(check_pattern("payments").is_ok());
        for bad in [
            "*",
            "kube-*",
            "istio-*",
            "default",
            "gloo-mesh",
            "pay*ments",
            "Pay",
            "-x",
            "x-",
            "",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad:?} accepted");
        }
    }
}
