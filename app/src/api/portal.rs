//! The team portal's endpoints. Team members plan, submit, withdraw and retry their team's requests; platform
//! operators see every team and approve or reject; platform admins shape teams (members, grants, limits,
//! rules). Membership and grants are checked on the server for every team, cluster and namespace.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    AppError, AuditFilter, AuditRecord, ClusterName, PortalAction, PortalPlan, PortalRequestView,
    PortalSubmitted, TeamMember, TeamOverview, TeamRole, TeamScope, TeamSettings, TeamView,
};

#[cfg(feature = "ssr")]
async fn with_portal<T, F, Fut>(needed: crate::model::Role, f: F) -> Result<T, AppError>
where
    F: FnOnce(crate::ssr::portal::Portal, crate::ssr::portal::Caller) -> Fut,
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    use crate::ssr::portal::{Caller, Portal};
    use crate::ssr::{client, session, state::state};
    session::respond(
        async {
            let user = session::require(needed).await?;
            let portal = Portal::new(&state()?);
            let caller = Caller {
                user,
                source: client::address(),
            };
            f(portal, caller).await
        }
        .await,
    )
}

/// The teams the signed-in user is in, with their role in each.
#[server(endpoint = "my_teams")]
pub async fn my_teams() -> Result<Vec<(TeamView, TeamRole)>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move { p.my_teams(&c).await }).await
}

/// A team's page: what the portal keeps applied (with what is live and any drift), its shared services,
/// its requests and timeline. For the team's members and platform operators. An empty `team` is the caller's
/// first team; None when they are in none.
#[server(endpoint = "team_overview")]
pub async fn get_team_overview(team: String) -> Result<Option<TeamOverview>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        let team = if team.is_empty() {
            match p.first_team_of(&c.user).await? {
                Some(t) => t,
                None => return Ok(None),
            }
        } else {
            team
        };
        p.overview(&c, &team).await.map(Some)
    })
    .await
}

/// The teams the caller may look at on the Topology page (their own; every team for platform operators),
/// each with its grants and what the portal keeps applied, with the drift the watches see. Nothing is read
/// from the clusters.
#[server(endpoint = "topology_teams")]
pub async fn topology_teams() -> Result<Vec<TeamScope>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        let topology = crate::ssr::state::state()?.topology;
        p.scopes(&c, &topology).await
    })
    .await
}

/// What a request would write in each cluster (server-side dry runs; nothing is written), and whether it
/// would run at once or wait for an operator. For members of the request's team.
#[server(endpoint = "plan_portal_request", input = Json)]
pub async fn plan_portal_request(action: PortalAction) -> Result<PortalPlan, AppError> {
    use crate::model::Role;
    with_portal(
        Role::Viewer,
        |p, c| async move { p.plan(&c, &action).await },
    )
    .await
}

/// Records a request of the caller's team: it runs at once when the team's rules and limits allow,
/// otherwise it waits for a platform operator. Refused, writing nothing, outside the team's grants.
#[server(endpoint = "submit_portal_request", input = Json)]
pub async fn submit_portal_request(action: PortalAction) -> Result<PortalSubmitted, AppError> {
    use crate::model::Role;
    with_portal(
        Role::Viewer,
        |p, c| async move { p.submit(&c, &action).await },
    )
    .await
}

/// Withdraws a request still waiting (whoever asked, or an admin of the team).
#[server(endpoint = "withdraw_portal_request")]
pub async fn withdraw_portal_request(id: String) -> Result<(), AppError> {
    use crate::model::Role;
    with_portal(
        Role::Viewer,
        |p, c| async move { p.withdraw(&c, &id).await },
    )
    .await
}

/// Runs a request's failed job again, for one cluster or all (members of the team).
#[server(endpoint = "retry_portal_request")]
pub async fn retry_portal_request(
    id: String,
    cluster: Option<ClusterName>,
) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::ssr::state::state;
    with_portal(Role::Viewer, |p, c| async move {
        let req = p.request(&c.user, &id).await?;
        p.require_member(&c.user, &req.action.team).await?;
        let job = req
            .job_id
            .ok_or_else(|| AppError::Conflict(format!("request {id} has not started")))?;
        Ok(state()?
            .jobs
            .retry(&job, cluster.as_ref(), &c.user.username)
            .await?)
    })
    .await
}

/// Requests: of one team (its members, operators), or of every team (operators); waiting ones only when
/// `pending_only`.
#[server(endpoint = "list_portal_requests")]
pub async fn list_portal_requests(
    team: Option<String>,
    pending_only: bool,
) -> Result<Vec<PortalRequestView>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        p.requests(
            &c.user,
            team.as_deref().filter(|t| !t.is_empty()),
            pending_only,
        )
        .await
    })
    .await
}

/// A request with its plan, for the operator deciding on it.
#[server(endpoint = "review_portal_request")]
pub async fn review_portal_request(
    id: String,
) -> Result<(PortalRequestView, PortalPlan), AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        let req = p.request(&c.user, &id).await?;
        let plan = p.review_plan(&c, &req.action).await?;
        Ok((req, plan))
    })
    .await
}

/// A platform operator approves (its job starts) or rejects (nothing is written; a comment says why) a
/// waiting request.
#[server(endpoint = "decide_portal_request")]
pub async fn decide_portal_request(
    id: String,
    approve: bool,
    comment: String,
) -> Result<PortalRequestView, AppError> {
    use crate::model::Role;
    with_portal(Role::Operator, |p, c| async move {
        p.decide(&c, &id, approve, &comment).await
    })
    .await
}

/// Every team (platform operators and admins).
#[server(endpoint = "list_teams")]
pub async fn list_teams() -> Result<Vec<TeamView>, AppError> {
    use crate::model::Role;
    with_portal(Role::Operator, |p, _| async move {
        let teams = p.list_teams().await?;
        Ok(teams)
    })
    .await
}

/// Creates (`create`) or changes a team: description, contact, limits, rules. Admins.
#[server(endpoint = "save_team", input = Json)]
pub async fn save_team(team: TeamSettings, create: bool) -> Result<(), AppError> {
    use crate::model::Role;
    with_portal(Role::Admin, |p, c| async move {
        p.save_team(&c, &team, create).await
    })
    .await
}

/// Removes a team that keeps nothing applied. Admins.
#[server(endpoint = "delete_team")]
pub async fn delete_team(name: String) -> Result<(), AppError> {
    use crate::model::Role;
    with_portal(
        Role::Admin,
        |p, c| async move { p.delete_team(&c, &name).await },
    )
    .await
}

/// Adds a member, changes their team role, or (`role` empty) removes them. Platform admins; a team's own
/// admins may add and remove plain members of their team.
#[server(endpoint = "set_team_member")]
pub async fn set_team_member(
    team: String,
    username: String,
    role: Option<TeamRole>,
) -> Result<Vec<TeamMember>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        p.team_view(&team).await?;
        if c.user.role < Role::Admin {
            let mine = p.membership(&c.user, &team).await?;
            let target = p.membership_of(&username, &team).await?;
            let plain = role != Some(TeamRole::Admin) && target != Some(TeamRole::Admin);
            if mine != Some(TeamRole::Admin) || !plain {
                return Err(AppError::Refused(format!(
                    "only a platform admin, or an admin of team {team} for its plain members, may change who is in it"
                )));
            }
        }
        p.set_member(&c, &team, &username, role)
            .await
    })
    .await
}

/// Sets which namespaces (names, or prefixes ending in `*`) a team may touch in one cluster. Admins.
#[server(endpoint = "set_team_grant")]
pub async fn set_team_grant(
    team: String,
    cluster: String,
    // Absent from a form when the list is empty (the cluster is no longer granted).
    #[server(default)] patterns: Vec<String>,
) -> Result<(), AppError> {
    use crate::model::Role;
    with_portal(Role::Admin, |p, c| async move {
        p.set_grant(&c, &team, &cluster, &patterns).await
    })
    .await
}

/// The audit timeline, oldest first: everything for platform operators and admins; a team member sees
/// their team's records only (the filter must name it).
#[server(endpoint = "list_audit", input = Json)]
pub async fn list_audit(filter: AuditFilter) -> Result<Vec<AuditRecord>, AppError> {
    use crate::model::Role;
    with_portal(Role::Viewer, |p, c| async move {
        p.audit_records(&c.user, &filter, 1000).await
    })
    .await
}
