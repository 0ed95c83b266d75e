//! The team self-service portal's shapes on the wire: teams (members, grants, limits, rules), the requests a
//! team makes (enrol a namespace, share a service, and their undoing), what the portal keeps applied in each
//! cluster, and the audit timeline.

use serde::{Deserialize, Serialize};

use super::ClusterPlan;

/// Namespaces no team may be granted, whatever the pattern: the platform's own. The control plane's install
/// namespace (found in each cluster) is refused as well.
pub const SYSTEM_NAMESPACES: [&str; 7] = [
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "default",
    "istio-system",
    "istio-eastwest",
    "gloo-mesh",
];

/// A member's role inside a team (orthogonal to the console role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamRole {
    Member,
    Admin,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Admin => "admin",
            TeamRole::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Option<TeamRole> {
        match s {
            "admin" => Some(TeamRole::Admin),
            "member" => Some(TeamRole::Member),
            _ => None,
        }
    }
}

/// What a team asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortalKind {
    /// Put a namespace in the mesh (creating it where it does not exist).
    Enrol,
    /// Take it out again (labels removed; the namespace stays).
    Leave,
    /// Make a Service (or every Service of a namespace) reachable from the other clusters.
    Share,
    /// Stop sharing it.
    Unshare,
    /// Put back what the portal applied where a cluster drifted from it.
    Reapply,
}

impl PortalKind {
    pub const ALL: [PortalKind; 5] = [
        PortalKind::Enrol,
        PortalKind::Leave,
        PortalKind::Share,
        PortalKind::Unshare,
        PortalKind::Reapply,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PortalKind::Enrol => "enrol",
            PortalKind::Leave => "leave",
            PortalKind::Share => "share",
            PortalKind::Unshare => "unshare",
            PortalKind::Reapply => "reapply",
        }
    }
    pub fn parse(s: &str) -> Option<PortalKind> {
        PortalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn title(self) -> &'static str {
        match self {
            PortalKind::Enrol => "Enrol a namespace in the mesh",
            PortalKind::Leave => "Take a namespace out of the mesh",
            PortalKind::Share => "Share across the mesh",
            PortalKind::Unshare => "Stop sharing",
            PortalKind::Reapply => "Re-apply after drift",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeshMode {
    #[default]
    Sidecar,
    Ambient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareScope {
    /// `solo.io/service-scope=global`: adds `<svc>.<ns>.mesh.internal`; the local name keeps local endpoints.
    #[default]
    Global,
    /// `global-only`: the plain `svc.ns.svc.cluster.local` gets every cluster's endpoints.
    GlobalOnly,
}

impl ShareScope {
    pub fn label_value(self) -> &'static str {
        match self {
            ShareScope::Global => "global",
            ShareScope::GlobalOnly => "global-only",
        }
    }
}

/// Whether a kind of request runs at once (within the grants and limits) or waits for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    Auto,
    Approval,
}

/// The platform team's auto-approve rules for one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalRules {
    pub enrol: Approval,
    pub leave: Approval,
    pub share: Approval,
    pub unshare: Approval,
}

impl Default for PortalRules {
    /// Enrolling granted namespaces and undoing are automatic; sharing a service needs an operator.
    fn default() -> Self {
        PortalRules {
            enrol: Approval::Auto,
            leave: Approval::Auto,
            share: Approval::Approval,
            unshare: Approval::Auto,
        }
    }
}

impl PortalRules {
    pub fn for_kind(&self, kind: PortalKind) -> Approval {
        match kind {
            PortalKind::Enrol => self.enrol,
            PortalKind::Leave => self.leave,
            PortalKind::Share => self.share,
            PortalKind::Unshare => self.unshare,
            // Putting back what was approved before needs no new approval.
            PortalKind::Reapply => Approval::Auto,
        }
    }
}

/// A team's own fields, as admins edit them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSettings {
    pub name: String,
    pub description: String,
    pub contact: String,
    /// At most this many namespaces in the mesh (across clusters, counted by name).
    pub max_namespaces: u32,
    /// At most this many shared services (a whole namespace shared counts as one).
    pub max_services: u32,
    pub rules: PortalRules,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub username: String,
    pub role: TeamRole,
}

/// The namespaces a team may touch in one cluster: names, or prefixes ending in `*` (`payments-*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamGrant {
    pub cluster: String,
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamView {
    pub settings: TeamSettings,
    pub members: Vec<TeamMember>,
    pub grants: Vec<TeamGrant>,
}

/// Whether `namespace` matches a grant pattern (`name`, or `prefix*`).
pub fn pattern_matches(pattern: &str, namespace: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => namespace.starts_with(prefix),
        None => pattern == namespace,
    }
}

/// What a team asks for, as sent by the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalAction {
    pub team: String,
    pub kind: PortalKind,
    pub namespace: String,
    /// For share/unshare: one Service; None shares (or stops sharing) the whole namespace.
    #[serde(default)]
    pub service: Option<String>,
    pub clusters: Vec<String>,
    #[serde(default)]
    pub mode: MeshMode,
    #[serde(default)]
    pub scope: ShareScope,
    /// `networking.istio.io/traffic-distribution=Any` on the Service: spread across clusters instead of
    /// preferring the local one.
    #[serde(default)]
    pub spread: bool,
}

impl PortalAction {
    /// Putting back what the portal keeps applied on `namespace` (and its Services) in `cluster`.
    pub fn reapply(team: &str, namespace: &str, cluster: &str) -> PortalAction {
        PortalAction {
            team: team.to_string(),
            kind: PortalKind::Reapply,
            namespace: namespace.to_string(),
            service: None,
            clusters: vec![cluster.to_string()],
            mode: Default::default(),
            scope: Default::default(),
            spread: false,
        }
    }

    /// A request as the team page's form sends it without JavaScript: `team`, `kind`, `namespace`, `service`,
    /// `cluster` (once per ticked cluster), `mode`, `scope`, `spread` (`on` when ticked). Checked on the
    /// server as every request is.
    pub fn from_form(pairs: &[(String, String)]) -> Result<PortalAction, super::AppError> {
        let one = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let kind = PortalKind::parse(&one("kind"))
            .ok_or_else(|| super::AppError::invalid("kind", "pick what to ask for"))?;
        let service = Some(one("service"))
            .filter(|s| !s.is_empty() && matches!(kind, PortalKind::Share | PortalKind::Unshare));
        let spread = matches!(one("spread").as_str(), "on" | "true")
            && kind == PortalKind::Share
            && service.is_some();
        Ok(PortalAction {
            team: one("team"),
            kind,
            namespace: one("namespace"),
            service,
            clusters: pairs
                .iter()
                .filter(|(n, v)| n == "cluster" && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
                .collect(),
            mode: if one("mode") == "ambient" {
                MeshMode::Ambient
            } else {
                MeshMode::Sidecar
            },
            scope: if one("scope") == "global-only" {
                ShareScope::GlobalOnly
            } else {
                ShareScope::Global
            },
            spread,
        })
    }

    /// The request as the form's fields, the other way round (a link back to the form with what was asked).
    pub fn to_form(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("team", self.team.clone()),
            ("kind", self.kind.as_str().to_string()),
            ("namespace", self.namespace.clone()),
            ("service", self.service.clone().unwrap_or_default()),
        ];
        out.extend(self.clusters.iter().map(|c| ("cluster", c.clone())));
        out.push((
            "mode",
            match self.mode {
                MeshMode::Sidecar => "sidecar",
                MeshMode::Ambient => "ambient",
            }
            .to_string(),
        ));
        out.push(("scope", self.scope.label_value().to_string()));
        if self.spread {
            out.push(("spread", "on".to_string()));
        }
        out
    }
}

/// A request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalRequestView {
    pub id: String,
    pub action: PortalAction,
    /// pending, rejected, withdrawn, running, applied, failed.
    pub state: String,
    /// Why it waits for an operator (the rule or limit), when it does.
    pub waits_for: Option<String>,
    pub requested_by: String,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
    pub job_id: Option<String>,
}

/// A request's plan, exactly as the setup wizard shows one: per cluster, the objects with their server-side
/// dry-run diff, and the kubectl commands; plus what the portal noticed and what happens on submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalPlan {
    pub clusters: Vec<ClusterPlan>,
    pub warnings: Vec<String>,
    /// None: runs at once when submitted; Some(why): waits for a platform operator.
    pub waits_for: Option<String>,
    /// For a shared service: the name other clusters use.
    pub address: Option<String>,
}

/// What `submit_portal_request` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSubmitted {
    pub id: String,
    /// The job applying it, when it ran at once.
    pub job_id: Option<String>,
    pub waits_for: Option<String>,
}

/// One namespace or Service the portal keeps applied in one cluster, with what is live there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalObjectView {
    pub cluster: String,
    pub namespace: String,
    /// None for the namespace itself.
    pub service: Option<String>,
    /// What the portal applied: `key=value` labels and annotations.
    pub applied: Vec<String>,
    /// The object exists in the cluster.
    pub exists: bool,
    /// sidecar, ambient, or none (namespaces).
    pub mode: Option<String>,
    /// global, global-only (the scope label), when shared.
    pub shared: Option<String>,
    /// Ready endpoints of the Service in this cluster.
    pub endpoints: Option<u32>,
    /// The Service's ports (`name/port/protocol`).
    pub ports: Vec<String>,
    /// What differs from what the portal applied (empty: in step).
    pub drift: Vec<String>,
    /// Why the cluster could not be read.
    pub error: Option<String>,
}

/// Drift of one object the portal keeps applied, as the cluster watches see it (pushed to the team page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDrift {
    pub cluster: String,
    pub namespace: String,
    pub service: Option<String>,
    /// Empty: in step.
    pub drift: Vec<String>,
}

/// A shared service across clusters, for the team page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedServiceView {
    pub namespace: String,
    pub service: Option<String>,
    /// The name other clusters use (`<svc>.<ns>.<suffix>`).
    pub address: Option<String>,
    /// Clusters where it has ready endpoints.
    pub serving: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamOverview {
    pub team: TeamView,
    /// The caller's role in the team; None for platform operators and admins looking on.
    pub my_role: Option<TeamRole>,
    pub objects: Vec<PortalObjectView>,
    pub shared: Vec<SharedServiceView>,
    pub requests: Vec<PortalRequestView>,
    /// The clusters the console knows, with the mesh (for the request form).
    pub clusters: Vec<String>,
    pub namespaces_used: u32,
    pub services_used: u32,
    /// The team's audit records, newest last (the latest 200).
    pub timeline: Vec<AuditRecord>,
    /// Every team the caller is in (to switch between them).
    pub my_teams: Vec<String>,
}

/// One append-only audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub source: String,
    pub team: String,
    pub cluster: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

/// Filters of the audit timeline (all optional; times are Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub since: Option<i64>,
    #[serde(default)]
    pub until: Option<i64>,
}

/// The audit records as CSV (RFC 4180: fields quoted when needed, quotes doubled). Cells that a spreadsheet
/// would run as a formula are prefixed with `'`.
pub fn audit_csv(records: &[AuditRecord]) -> String {
    fn cell(s: &str) -> String {
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let mut out = String::from("id,at,actor,source,team,cluster,kind,subject,detail\r\n");
    for r in records {
        let row = [
            r.id.to_string(),
            r.at.to_string(),
            cell(&r.actor),
            cell(&r.source),
            cell(&r.team),
            cell(&r.cluster),
            cell(&r.kind),
            cell(&r.subject),
            cell(&r.detail),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_a_name_or_a_prefix() {
        assert!(pattern_matches("payments-*", "payments-web"));
        assert!(pattern_matches("payments", "payments"));
        assert!(!pattern_matches("payments", "payments-web"));
        assert!(!pattern_matches("payments-*", "billing"));
    }

    #[test]
    fn sharing_waits_for_an_operator_by_default_and_undoing_does_not() {
        let r = PortalRules::default();
        assert_eq!(r.for_kind(PortalKind::Enrol), Approval::Auto);
        assert_eq!(r.for_kind(PortalKind::Share), Approval::Approval);
        assert_eq!(r.for_kind(PortalKind::Unshare), Approval::Auto);
    }

    #[test]
    fn audit_csv_quotes_and_defuses_formulas() {
        let r = AuditRecord {
            id: 1,
            at: 2,
            actor: "ann".into(),
            source: "127.0.0.1".into(),
            team: "payments".into(),
            cluster: "".into(),
            kind: "request".into(),
            subject: "=HYPERLINK(\"x\")".into(),
            detail: "a, \"b\"\nc".into(),
        };
        let csv = audit_csv(&[r]);
        let line = csv.lines().nth(1).expect("row");
        assert!(line.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{line}");
        assert!(csv.contains("\"a, \"\"b\"\"\nc\""), "{csv}");
    }

    #[test]
    fn a_request_read_from_a_plain_form_and_written_back_is_the_same() {
        let pairs: Vec<(String, String)> = [
            ("team", "pay"),
            ("kind", "share"),
            ("namespace", " pay-web "),
            ("service", "web"),
            ("cluster", "c1"),
            ("cluster", "c3"),
            ("mode", "sidecar"),
            ("scope", "global-only"),
            ("spread", "on"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let a = PortalAction::from_form(&pairs).expect("action");
        assert_eq!(a.namespace, "pay-web");
        assert_eq!(a.clusters, ["c1", "c3"]);
        assert_eq!((a.scope, a.spread), (ShareScope::GlobalOnly, true));
        let back: Vec<(String, String)> = a
            .to_form()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(PortalAction::from_form(&back).expect("again"), a);
        // A namespace request names no service, and spreading is for a shared Service only.
        let enrol: Vec<(String, String)> =
            [("kind", "enrol"), ("service", "web"), ("spread", "on")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let e = PortalAction::from_form(&enrol).expect("enrol");
        assert_eq!((e.service, e.spread), (None, false));
        assert!(PortalAction::from_form(&[]).is_err(), "no kind");
    }
}
