//! The team self-service portal on the server: who may ask for what (membership, grants, system namespaces),
//! whether a request runs at once or waits (the team's rules and limits), the operators' decisions, and the
//! durable job that applies a request — the same jobs, locks and live progress as setup. Every decision and
//! change is an audit record.

mod drift;
mod export;
mod form;
mod live;
mod overview;
mod plan;
mod run;
mod teams;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{
    AppError, Approval, AuditFilter, AuditRecord, ClusterName, PortalAction, PortalKind,
    PortalRequestView, PortalSubmitted, Role, SYSTEM_NAMESPACES, TeamRole, TeamSettings,
    pattern_matches,
};
use mesh::portal::{Owned, SCOPE_LABEL};

use super::jobs::{self, Jobs};
use super::state::AppState;
use super::store::{NewAudit, ObjectRow, RequestRow, Store, User};

pub use drift::{record_drift, watched_drift};
pub use export::audit_export;
pub use form::request_form;
pub use live::portal_stream;
pub use run::run_job;

/// The kind of the portal's jobs, and the key of their one step per cluster.
pub const JOB_KIND: &str = "portal";
pub const STEP: &str = "portal";

/// What a portal job does (stored as the job's spec; no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortalSpec {
    pub request_id: String,
    pub action: PortalAction,
}

fn lock_key(cluster: &str, namespace: &str) -> String {
    format!("portal:{cluster}/{namespace}")
}

/// The locks a portal job holds: one per cluster and namespace (two requests on one namespace in one cluster
/// never run at once; setup and other namespaces are not held up).
pub fn lock_keys_of(spec_json: &str) -> Vec<String> {
    serde_json::from_str::<PortalSpec>(spec_json)
        .map(|s| {
            s.action
                .clusters
                .iter()
                .map(|c| lock_key(c, &s.action.namespace))
                .collect()
        })
        .unwrap_or_default()
}

/// A portal lock key for people ("namespace payments-web in cluster c1").
pub fn describe_lock(key: &str) -> Option<String> {
    let (cluster, ns) = key.strip_prefix("portal:")?.split_once('/')?;
    Some(format!("namespace {ns} in cluster {cluster}"))
}

/// The portal over the console's state.
#[derive(Clone)]
pub struct Portal {
    store: Store,
    jobs: Jobs,
}

/// Who is asking, and from where (for the audit).
pub struct Caller {
    pub user: User,
    pub source: String,
}

/// A checked request: its team's settings with the action.
pub struct Checked {
    pub team: TeamSettings,
    pub action: PortalAction,
}

impl Portal {
    pub fn new(state: &AppState) -> Portal {
        Portal {
            store: state.store.clone(),
            jobs: state.jobs.clone(),
        }
    }

    /// Tells the team's open pages (and other replicas) that its requests changed.
    pub(crate) async fn changed(&self, team: &str) {
        self.jobs
            .notify(super::notify::Notice::Portal {
                team: team.to_string(),
            })
            .await;
    }

    pub(crate) async fn audit(&self, c: &Caller, a: NewAudit<'_>) {
        let record = NewAudit {
            actor: &c.user.username,
            source: &c.source,
            ..a
        };
        self.store.audit_logged(&record).await;
    }

    /// The caller's role in `team`, if any.
    pub async fn membership(&self, user: &User, team: &str) -> Result<Option<TeamRole>, AppError> {
        self.membership_of(&user.username, team).await
    }

    /// The first team (by name) the user is in.
    pub async fn first_team_of(&self, user: &User) -> Result<Option<String>, AppError> {
        Ok(self
            .store
            .teams_of(&user.username)
            .await?
            .into_iter()
            .next()
            .map(|(t, _)| t))
    }

    /// Someone's role in `team`, if any.
    pub async fn membership_of(
        &self,
        username: &str,
        team: &str,
    ) -> Result<Option<TeamRole>, AppError> {
        Ok(self
            .store
            .teams_of(username)
            .await?
            .into_iter()
            .find(|(t, _)| t == team)
            .map(|(_, r)| r))
    }

    /// Audit records: every one for platform operators and admins; a team's own for its members (the
    /// filter must name the team).
    pub async fn audit_records(
        &self,
        user: &User,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, AppError> {
        if let Some(t) = filter.team.as_deref() {
            self.team(t).await?;
        }
        if user.role < Role::Operator {
            match filter.team.as_deref() {
                Some(t) => {
                    self.require_member(user, t).await?;
                }
                None => {
                    return Err(AppError::Refused(
                        "choose your team: members see their team's records".into(),
                    ));
                }
            }
        }
        for (field, v) in [
            ("team", &filter.team),
            ("user", &filter.user),
            ("cluster", &filter.cluster),
            ("kind", &filter.kind),
        ] {
            if v.as_ref().is_some_and(|v| v.len() > 253) {
                return Err(AppError::invalid(field, "at most 253 characters"));
            }
        }
        Ok(self.store.audit_records(filter, limit).await?)
    }

    /// Refused unless the caller is in `team`.
    pub async fn require_member(&self, user: &User, team: &str) -> Result<TeamRole, AppError> {
        self.membership(user, team).await?.ok_or_else(|| {
            AppError::Refused(format!(
                "you are not a member of team {team}; a platform admin adds members under Teams"
            ))
        })
    }

    /// Refused unless the caller is in `team` or a platform operator (who may look at every team).
    pub async fn require_viewer_of(
        &self,
        user: &User,
        team: &str,
    ) -> Result<Option<TeamRole>, AppError> {
        let role = self.membership(user, team).await?;
        if role.is_none() && user.role < Role::Operator {
            return Err(AppError::Refused(format!(
                "you are not a member of team {team}"
            )));
        }
        Ok(role)
    }

    async fn team(&self, name: &str) -> Result<TeamSettings, AppError> {
        self.store
            .team(name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("team {name}")))
    }

    /// Validates a request and checks it against the team's grants: every cluster and the namespace.
    /// Nothing is read from the clusters here (their control-plane namespace is checked when planned and
    /// when applied).
    pub async fn checked(&self, action: &PortalAction) -> Result<Checked, AppError> {
        let team = self.team(&action.team).await?;
        let a = action.clone();
        mesh::ids::check_dns1123_label("namespace", &a.namespace)
            .map_err(|e| AppError::invalid("namespace", e.to_string()))?;
        if SYSTEM_NAMESPACES.contains(&a.namespace.as_str()) {
            return Err(AppError::Refused(format!(
                "namespace {} belongs to the platform; no team may change it",
                a.namespace
            )));
        }
        match (a.kind, &a.service) {
            (PortalKind::Enrol | PortalKind::Leave, Some(_)) => {
                return Err(AppError::invalid(
                    "service",
                    "enrolling or leaving is for a whole namespace; name no service",
                ));
            }
            (_, Some(s)) => check_service_name(s)?,
            _ => {}
        }
        if a.spread && (a.kind != PortalKind::Share || a.service.is_none()) {
            return Err(AppError::invalid(
                "spread",
                "spreading traffic across clusters is set on a shared Service",
            ));
        }
        if a.clusters.is_empty() {
            return Err(AppError::invalid("clusters", "pick at least one cluster"));
        }
        if a.clusters.len() > 200 {
            return Err(AppError::invalid("clusters", "at most 200 clusters"));
        }
        let mut seen = BTreeSet::new();
        let grants = self.store.grants(&team.name).await?;
        for c in &a.clusters {
            let name =
                ClusterName::new(c).map_err(|e| AppError::invalid("clusters", e.to_string()))?;
            if !seen.insert(c.clone()) {
                return Err(AppError::invalid(
                    "clusters",
                    format!("{c} is listed twice"),
                ));
            }
            if self.store.cluster(&name).await?.is_none() {
                return Err(AppError::NotFound(format!("cluster {c}")));
            }
            let patterns = grants
                .iter()
                .find(|g| &g.cluster == c)
                .map(|g| g.patterns.clone())
                .unwrap_or_default();
            if !patterns.iter().any(|p| pattern_matches(p, &a.namespace)) {
                let has = if patterns.is_empty() {
                    "it has no grant there".to_string()
                } else {
                    format!("its grants there are {}", patterns.join(", "))
                };
                return Err(AppError::Refused(format!(
                    "team {} may not touch namespace {} in cluster {c}: {has}; a platform admin can extend the team's grants under Teams",
                    team.name, a.namespace
                )));
            }
        }
        Ok(Checked { team, action: a })
    }

    /// Why a checked request waits for an operator (the team's rule, or a limit it would pass), or None
    /// when it runs at once.
    pub async fn waits_for(&self, c: &Checked) -> Result<Option<String>, AppError> {
        let a = &c.action;
        let mut why = vec![];
        if c.team.rules.for_kind(a.kind) == Approval::Approval {
            why.push(format!(
                "team {}'s rule: \"{}\" needs a platform operator's approval",
                c.team.name,
                a.kind.title()
            ));
        }
        let objects = self.store.portal_objects(Some(&c.team.name)).await?;
        let pending = self
            .store
            .list_requests(Some(&c.team.name), true, 1000)
            .await?;
        let pending: Vec<PortalAction> = pending
            .iter()
            .filter_map(|r| serde_json::from_str(&r.action).ok())
            .collect();
        match a.kind {
            PortalKind::Enrol => {
                let mut used = namespaces_in_mesh(&objects);
                used.extend(
                    pending
                        .iter()
                        .filter(|p| p.kind == PortalKind::Enrol)
                        .map(|p| p.namespace.clone()),
                );
                if !used.contains(&a.namespace) && used.len() as u32 >= c.team.max_namespaces {
                    why.push(format!(
                        "team {} may have at most {} namespaces in the mesh and has {} (enrolled or asked for)",
                        c.team.name,
                        c.team.max_namespaces,
                        used.len()
                    ));
                }
            }
            PortalKind::Share => {
                let mut used = services_shared(&objects);
                used.extend(
                    pending
                        .iter()
                        .filter(|p| p.kind == PortalKind::Share)
                        .map(|p| (p.namespace.clone(), p.service.clone().unwrap_or_default())),
                );
                let key = (a.namespace.clone(), a.service.clone().unwrap_or_default());
                if !used.contains(&key) && used.len() as u32 >= c.team.max_services {
                    why.push(format!(
                        "team {} may share at most {} services and shares {} (shared or asked for)",
                        c.team.name,
                        c.team.max_services,
                        used.len()
                    ));
                }
            }
            _ => {}
        }
        Ok((!why.is_empty()).then(|| why.join("; ")))
    }

    /// Records a request; one within the rules and limits starts its job at once.
    pub async fn submit(
        &self,
        caller: &Caller,
        action: &PortalAction,
    ) -> Result<PortalSubmitted, AppError> {
        self.require_member(&caller.user, &action.team).await?;
        let checked = self.checked(action).await?;
        let waits_for = self.waits_for(&checked).await?;
        let id = jobs::random_id();
        let a = &checked.action;
        let json =
            serde_json::to_string(a).map_err(|e| AppError::invalid("request", e.to_string()))?;
        self.store
            .insert_request(
                &id,
                &a.team,
                a.kind.as_str(),
                &json,
                waits_for.as_deref(),
                &caller.user.username,
                &caller.source,
            )
            .await?;
        self.audit(
            caller,
            NewAudit {
                team: &a.team,
                cluster: &a.clusters.join(" "),
                kind: "request",
                subject: &format!("request {id}: {}", describe(a)),
                detail: waits_for
                    .as_deref()
                    .unwrap_or("within the team's rules and limits: runs at once"),
                ..Default::default()
            },
        )
        .await;
        let mut job_id = None;
        let mut waits = waits_for.clone();
        if waits_for.is_none() {
            self.store
                .decide_request(
                    &id,
                    "started",
                    "auto-approved",
                    Some("matched the team's auto-approve rule"),
                )
                .await?;
            match self.start(caller, &id, a).await {
                Ok(j) => job_id = Some(j),
                Err(AppError::Conflict(busy)) => {
                    let why = format!("{busy}; it waits until an operator approves it again");
                    self.store.reopen_request(&id, &why).await?;
                    waits = Some(why);
                }
                Err(e) => return Err(e),
            }
        }
        self.changed(&a.team).await;
        Ok(PortalSubmitted {
            id,
            job_id,
            waits_for: waits,
        })
    }

    /// Starts the job applying a request that was just approved (by a rule or an operator).
    async fn start(
        &self,
        caller: &Caller,
        request_id: &str,
        a: &PortalAction,
    ) -> Result<String, AppError> {
        let spec = PortalSpec {
            request_id: request_id.to_string(),
            action: a.clone(),
        };
        let json = serde_json::to_string(&spec)
            .map_err(|e| AppError::invalid("request", e.to_string()))?;
        let steps: Vec<(String, String)> = a
            .clusters
            .iter()
            .map(|c| (c.clone(), STEP.to_string()))
            .collect();
        let locks: Vec<String> = a
            .clusters
            .iter()
            .map(|c| lock_key(c, &a.namespace))
            .collect();
        let job = self
            .jobs
            .start_job(
                JOB_KIND,
                &json,
                &steps,
                &locks,
                &caller.user.username,
                &format!("request {request_id}: {}", describe(a)),
            )
            .await?;
        self.store.set_request_job(request_id, &job).await?;
        self.audit(
            caller,
            NewAudit {
                team: &a.team,
                cluster: &a.clusters.join(" "),
                kind: "job",
                subject: &format!("job {job} for request {request_id}"),
                detail: &describe(a),
                ..Default::default()
            },
        )
        .await;
        Ok(job)
    }

    /// A platform operator approves (the job starts) or rejects (nothing is written) a pending request.
    pub async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        comment: &str,
    ) -> Result<PortalRequestView, AppError> {
        let comment = comment.trim();
        if comment.chars().count() > 2000 {
            return Err(AppError::invalid("comment", "at most 2000 characters"));
        }
        if !approve && comment.is_empty() {
            return Err(AppError::invalid(
                "comment",
                "say why the request is rejected",
            ));
        }
        let row = self.request_row(id).await?;
        let action: PortalAction = parse_action(&row)?;
        if approve {
            // The grants may have changed since it was asked: check again.
            self.checked(&action).await?;
        }
        let state = if approve { "started" } else { "rejected" };
        let comment_opt = (!comment.is_empty()).then_some(comment);
        if !self
            .store
            .decide_request(id, state, &caller.user.username, comment_opt)
            .await?
        {
            return Err(AppError::Conflict(format!(
                "request {id} is no longer waiting ({}); reload to see who decided it",
                self.view(&self.request_row(id).await?).state
            )));
        }
        self.audit(
            caller,
            NewAudit {
                team: &action.team,
                cluster: &action.clusters.join(" "),
                kind: if approve { "approve" } else { "reject" },
                subject: &format!("request {id}: {}", describe(&action)),
                detail: comment,
                ..Default::default()
            },
        )
        .await;
        if approve && let Err(e) = self.start(caller, id, &action).await {
            if let AppError::Conflict(busy) = &e {
                self.store.reopen_request(id, busy).await?;
            }
            self.changed(&action.team).await;
            return Err(e);
        }
        self.changed(&action.team).await;
        Ok(self.view(&self.request_row(id).await?))
    }

    /// The requester (or a team admin) withdraws a request still waiting.
    pub async fn withdraw(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let row = self.request_row(id).await?;
        let role = self.require_member(&caller.user, &row.team).await?;
        if row.requested_by != caller.user.username && role != TeamRole::Admin {
            return Err(AppError::Refused(
                "only whoever asked, or an admin of the team, may withdraw a request".into(),
            ));
        }
        if !self
            .store
            .decide_request(id, "withdrawn", &caller.user.username, None)
            .await?
        {
            return Err(AppError::Conflict(format!(
                "request {id} is no longer waiting; undo what it did with a new request instead"
            )));
        }
        let action = parse_action(&row)?;
        self.changed(&row.team).await;
        self.audit(
            caller,
            NewAudit {
                team: &row.team,
                kind: "withdraw",
                subject: &format!("request {id}: {}", describe(&action)),
                ..Default::default()
            },
        )
        .await;
        Ok(())
    }

    async fn request_row(&self, id: &str) -> Result<RequestRow, AppError> {
        if id.is_empty() || id.len() > 64 {
            return Err(AppError::invalid("id", "not a request id"));
        }
        self.store
            .request(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("request {id}")))
    }

    /// One request, for whoever may see its team.
    pub async fn request(&self, user: &User, id: &str) -> Result<PortalRequestView, AppError> {
        let row = self.request_row(id).await?;
        self.require_viewer_of(user, &row.team).await?;
        Ok(self.view(&row))
    }

    /// Requests of one team (members, operators) or, for operators, of every team; waiting ones only when
    /// asked.
    pub async fn requests(
        &self,
        user: &User,
        team: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<PortalRequestView>, AppError> {
        match team {
            Some(t) => {
                self.team(t).await?;
                self.require_viewer_of(user, t).await?;
            }
            None if user.role >= Role::Operator => {}
            None => {
                return Err(AppError::Forbidden {
                    needed: Role::Operator,
                    have: user.role,
                });
            }
        }
        let rows = self.store.list_requests(team, pending_only, 500).await?;
        Ok(rows.iter().map(|r| self.view(r)).collect())
    }

    pub(crate) fn view(&self, r: &RequestRow) -> PortalRequestView {
        let state = match (r.state.as_str(), r.job_state.as_deref()) {
            ("started", Some("running")) => "running",
            ("started", Some("succeeded")) => "applied",
            ("started", Some("failed")) => "failed",
            ("started", _) => "starting",
            (s, _) => s,
        };
        PortalRequestView {
            id: r.id.clone(),
            action: serde_json::from_str(&r.action).unwrap_or_else(|_| PortalAction {
                team: r.team.clone(),
                kind: PortalKind::parse(&r.kind).unwrap_or(PortalKind::Enrol),
                namespace: String::new(),
                service: None,
                clusters: vec![],
                mode: Default::default(),
                scope: Default::default(),
                spread: false,
            }),
            state: state.to_string(),
            waits_for: r.waits_for.clone(),
            requested_by: r.requested_by.clone(),
            created_at: r.created_at,
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at,
            comment: r.comment.clone(),
            job_id: r.job_id.clone(),
        }
    }
}

fn parse_action(row: &RequestRow) -> Result<PortalAction, AppError> {
    serde_json::from_str(&row.action).map_err(|e| AppError::invalid("request", e.to_string()))
}

/// A Service name: a DNS-1035 label (starts with a letter).
fn check_service_name(s: &str) -> Result<(), AppError> {
    mesh::ids::check_dns1123_label("service", s)
        .map_err(|e| AppError::invalid("service", e.to_string()))?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(AppError::invalid(
            "service",
            "a Service name starts with a letter",
        ));
    }
    Ok(())
}

/// A request for people: "enrol payments-web (sidecar) in c1, c2".
pub fn describe(a: &PortalAction) -> String {
    let what = match a.kind {
        PortalKind::Enrol => format!(
            "enrol namespace {} ({})",
            a.namespace,
            match a.mode {
                crate::model::MeshMode::Sidecar => "sidecar",
                crate::model::MeshMode::Ambient => "ambient",
            }
        ),
        PortalKind::Leave => format!("take namespace {} out of the mesh", a.namespace),
        PortalKind::Share => match &a.service {
            Some(s) => format!(
                "share service {s} of {} ({}{})",
                a.namespace,
                a.scope.label_value(),
                if a.spread { ", traffic spread" } else { "" }
            ),
            None => format!(
                "share every service of namespace {} ({})",
                a.namespace,
                a.scope.label_value()
            ),
        },
        PortalKind::Unshare => match &a.service {
            Some(s) => format!("stop sharing service {s} of {}", a.namespace),
            None => format!("stop sharing namespace {}", a.namespace),
        },
        PortalKind::Reapply => format!("re-apply the team's labels in namespace {}", a.namespace),
    };
    format!("{what} in {}", a.clusters.join(", "))
}

/// The owned set stored in a row.
pub fn owned_of(row: &ObjectRow) -> Owned {
    Owned {
        labels: serde_json::from_str(&row.labels).unwrap_or_default(),
        annotations: serde_json::from_str(&row.annotations).unwrap_or_default(),
    }
}

/// Namespace names the team has in the mesh (any cluster).
fn namespaces_in_mesh(objects: &[ObjectRow]) -> BTreeSet<String> {
    objects
        .iter()
        .filter(|o| o.service.is_empty() && mesh::portal::mode_of(&owned_of(o).labels).is_some())
        .map(|o| o.namespace.clone())
        .collect()
}

/// (namespace, service or '' for a whole namespace) the team shares (any cluster).
fn services_shared(objects: &[ObjectRow]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .filter(|o| owned_of(o).labels.contains_key(SCOPE_LABEL))
        .map(|o| (o.namespace.clone(), o.service.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portal_jobs_locks_are_its_namespace_in_each_cluster() {
        let spec = PortalSpec {
            request_id: "r".into(),
            action: PortalAction {
                team: "pay".into(),
                kind: PortalKind::Enrol,
                namespace: "pay-web".into(),
                service: None,
                clusters: vec!["c1".into(), "c2".into()],
                mode: Default::default(),
                scope: Default::default(),
                spread: false,
            },
        };
        let keys = lock_keys_of(&serde_json::to_string(&spec).expect("json"));
        assert_eq!(keys, vec!["portal:c1/pay-web", "portal:c2/pay-web"]);
        assert_eq!(
            describe_lock(&keys[0]).as_deref(),
            Some("namespace pay-web in cluster c1")
        );
        assert_eq!(describe_lock("c1"), None);
        assert!(describe(&spec.action).contains("enrol namespace pay-web (sidecar) in c1, c2"));
    }
}
