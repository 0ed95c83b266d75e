//! The wire types: the only things the server sends to the browser (README, invariant 2). No Kubernetes
//! client types and no secrets; credentials never leave the server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use mesh_ids::{ClusterName, InvalidName, NetworkName, nodeport_rule, version_rule};

mod checks;
mod day2;
mod error;
mod identity;
mod jobs;
pub mod plan_archive;
mod portal;
mod settings;
mod setup;
mod team_map;
pub mod topology;
pub use checks::*;
pub use day2::*;
pub use error::{AppError, FieldError};
pub use identity::*;
pub use jobs::*;
pub use portal::*;
pub use settings::*;
pub use setup::*;
pub use team_map::*;

/// The three roles of the console. Ordered: each role can do what the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the role may do, in one sentence (shown next to the role picker).
    pub fn describe(self) -> &'static str {
        match self {
            Role::Admin => "everything, including users and removing clusters",
            Role::Operator => "register clusters and run setup and linking flows",
            Role::Viewer => "read only",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub role: Role,
    /// Signed in through the OpenID provider (confirming it is you then goes through the provider too).
    #[serde(default)]
    pub sso: bool,
}

/// A console account as an admin sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    /// Signed in through the OpenID provider: the role follows the groups, set again at each sign-in.
    #[serde(default)]
    pub sso: bool,
    /// The provider's groups at the last sign-in (single sign-on accounts).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A sign-in lock in force, as an admin sees it (Users page), with what lifts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInLock {
    /// "source", "user and source" or "user" (from browsers it never signed in from).
    pub kind: String,
    pub username: String,
    pub source: String,
    pub attempts: i64,
    /// Unix seconds when it lifts by itself.
    pub until: i64,
}

/// The last connectivity test of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connectivity {
    pub reachable: bool,
    pub server_version: Option<String>,
    pub latency_ms: Option<u64>,
    /// Verbs Meshdeck needs and lacks, e.g. "create namespaces (core) cluster-wide — create istio-system, …".
    pub missing: Vec<String>,
    /// Verbs only an administrator's credentials hold and the console, onboarded with least privilege, does
    /// not (installing the Gloo Operator's chart): not a fault of the cluster, a step someone with admin
    /// rights takes once.
    #[serde(default)]
    pub needs_admin: Vec<String>,
    /// With per-user rights on an onboarded cluster: the writes the console's own account may not do, which
    /// go out as the signed-in user (the cluster's RBAC must grant them to the people doing the work).
    #[serde(default)]
    pub as_user: Vec<String>,
    pub problem: Option<String>,
    pub checked_at: i64,
}

impl Connectivity {
    /// Healthy: reachable, credentials accepted, nothing missing.
    pub fn healthy(&self) -> bool {
        self.reachable && self.problem.is_none() && self.missing.is_empty()
    }

    pub fn health(&self) -> Health {
        if !self.reachable || self.problem.is_some() {
            Health::Down
        } else if !self.missing.is_empty() {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }
}

/// Health at a glance; shown with an icon and a word, never colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    Healthy,
    Degraded,
    Down,
    Unknown,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Degraded => "Missing permissions",
            Health::Down => "Unreachable",
            Health::Unknown => "Not tested",
        }
    }
}

/// A registered cluster, as listed and shown. Never carries its credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub name: ClusterName,
    pub network: NetworkName,
    pub labels: BTreeMap<String, String>,
    pub server: String,
    pub insecure_skip_tls_verify: bool,
    pub connectivity: Option<Connectivity>,
    /// How the console reaches the cluster: `None` with the credentials given at registration.
    pub access: Option<ClusterAccess>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A cluster onboarded with least privilege: the console holds only short-lived tokens of its own
/// ServiceAccount there, renewed before they expire; the admin credentials used once are forgotten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterAccess {
    /// `<namespace>/<name>` of the console's ServiceAccount in the cluster.
    pub account: String,
    pub onboarded_at: i64,
    pub onboarded_by: String,
    /// Unix seconds: when the token held now was issued and when it expires.
    pub token_issued_at: i64,
    pub token_expires_at: i64,
    /// Why the token could not be renewed, and what to do.
    pub problem: Option<String>,
    /// Per-user rights (`--oidc-impersonate`) as the account was given them; None: it cannot act as people.
    #[serde(default)]
    pub per_user: Option<PerUser>,
    /// Namespaces control planes may be installed in besides istio-system (a mesh setting's install
    /// namespace), where the account was given istio-system's rights too.
    #[serde(default)]
    pub control_planes: Vec<String>,
}

/// The control-plane namespaces an onboarding is asked for (besides istio-system), checked: each one a
/// namespace the control plane may be installed in, at most 8, without repeats (istio-system dropped).
pub fn control_plane_namespaces(list: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = vec![];
    for ns in list.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if let Some(p) = settings::install_namespace_problem(ns) {
            return Err(p);
        }
        if ns == "meshdeck-access" || ns == "meshdeck" {
            return Err(format!(
                "{ns} is the console's own namespace, not a control plane's"
            ));
        }
        if ns != "istio-system" && !out.iter().any(|o| o == ns) {
            out.push(ns.to_string());
        }
    }
    if out.len() > 8 {
        return Err("at most 8 control-plane namespaces besides istio-system".into());
    }
    Ok(out)
}

/// Per-user rights on an onboarded cluster, as onboarding (or the chart) gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerUser {
    /// The groups the account may assert: those mapped when it was onboarded. None: the console's mappings
    /// as they are (the chart's in-cluster role is made from the same settings).
    pub groups: Option<Vec<String>>,
    /// The account itself only reads: what it does for people goes out as them (onboarded with the flag;
    /// the chart's in-cluster account keeps the flows' rights).
    pub reads_only: bool,
}

impl ClusterAccess {
    /// The token expired without being renewed: nothing works until the cluster is onboarded again.
    pub fn expired(&self, now: i64) -> bool {
        now >= self.token_expires_at
    }

    /// Time to renew: two thirds of the token's life are over, or the last renewal failed (and the token
    /// still works).
    pub fn renewal_due(&self, now: i64) -> bool {
        let at = self.token_issued_at + (self.token_expires_at - self.token_issued_at) * 2 / 3;
        !self.expired(now) && (self.problem.is_some() || now >= at)
    }
}

impl ClusterSummary {
    pub fn health(&self) -> Health {
        self.connectivity
            .as_ref()
            .map_or(Health::Unknown, Connectivity::health)
    }
}

/// One context of a pasted kubeconfig, offered for registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextChoice {
    pub context: String,
    pub server: Option<String>,
    pub user: Option<String>,
    /// A valid cluster name derived from the context name.
    pub suggested_name: String,
    /// Why this context cannot be registered as it is (exec plugin, file paths, …), if so.
    pub refused: Option<String>,
    /// The context turns TLS verification off; registering it needs the explicit per-cluster choice.
    pub insecure: bool,
}

/// What the user chose for one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterForm {
    pub context: String,
    pub name: String,
    /// Empty: the cluster name.
    pub network: String,
    pub env: String,
    pub region: String,
    pub allow_insecure: bool,
    /// Onboard with least privilege: the credentials given create the console's own ServiceAccount and
    /// roles, then are forgotten.
    #[serde(default)]
    pub onboard: bool,
}

/// The outcome of registering one context: the cluster, or what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterOutcome {
    pub context: String,
    pub name: String,
    pub result: Result<ClusterSummary, AppError>,
}

/// The console's own pages, as `next=` may name them: a fixed path, or a prefix followed by one id segment.
const PAGES: [&str; 12] = [
    "/",
    "/team",
    "/requests",
    "/teams",
    "/clusters",
    "/clusters/new",
    "/users",
    "/account",
    "/setup",
    "/topology",
    "/checks",
    "/activity",
];
const PAGES_WITH_ID: [&str; 2] = ["/clusters/", "/activity/"];

/// Where to go after signing in: `next` when it is one of the console's own pages (an allow-list of paths,
/// each with an optional plain query), else the clusters. Anything a browser could read as another site
/// (`//host`, `/\host`, tabs or newlines that browsers strip, encoded slashes) falls back, and what is
/// returned is always a valid `Location` header value.
pub fn after_sign_in(next: Option<&str>) -> String {
    next.and_then(safe_next)
        .unwrap_or_else(|| "/clusters".to_string())
}

fn safe_next(next: &str) -> Option<String> {
    if next.len() > 512 {
        return None;
    }
    let (path, query) = match next.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (next, None),
    };
    let id_ok = |id: &str| {
        !id.is_empty()
            && id.len() <= 63
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let known = PAGES.contains(&path)
        || PAGES_WITH_ID
            .iter()
            .any(|p| path.strip_prefix(p).is_some_and(id_ok));
    // A plain query: names and values of letters, digits and - _ . ~ = & + and percent-escapes of those.
    let query_ok = query.is_none_or(|q| {
        q.len() <= 400
            && q.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=' | b'&' | b'+' | b'%')
            })
            && !q.to_ascii_lowercase().contains("%2f")
            && !q.to_ascii_lowercase().contains("%5c")
    });
    (known && query_ok).then(|| next.to_string())
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM UTC` (no time zone database in the browser build).
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Turns a kubeconfig context name into a valid cluster name suggestion ("kind-Prod_1" → "kind-prod-1").
pub fn suggest_cluster_name(context: &str) -> String {
    let mut out = String::new();
    for c in context.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "cluster".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_own_pages_are_followed_after_sign_in() {
        for good in [
            "/clusters/c1",
            "/clusters",
            "/",
            "/activity/abc123",
            "/checks?cluster=c1&cluster=c2",
            "/topology",
        ] {
            assert_eq!(after_sign_in(Some(good)), good);
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "/\tevil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%2F%2Fevil.example",
            "/clusters/%2F%2Fevil",
            "clusters",
            "/nowhere",
            "/clusters/c1/../../x",
            "/clusters?next=%2F%2Fevil",
            "/clusters?a=\r\nSet-Cookie:x=y",
            "/clusters/é",
            "",
        ] {
            assert_eq!(after_sign_in(Some(bad)), "/clusters", "{bad:?}");
        }
        assert_eq!(after_sign_in(None), "/clusters");
        assert_eq!(after_sign_in(Some(&"/clusters?".repeat(100))), "/clusters");
    }

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_795_791_600), "2026-11-27 15:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn suggested_names_are_valid_cluster_names() {
        for (ctx, want) in [
            ("c1", "c1"),
            ("kind-Prod_1", "kind-prod-1"),
            (
                "arn:aws:eks:us-east-1:1234:cluster/prod",
                "arn-aws-eks-us-east-1-1234-cluster-prod",
            ),
            ("--", "cluster"),
            (
                "gke_proj_europe-west1_mesh-a",
                "gke-proj-europe-west1-mesh-a",
            ),
        ] {
            let got = suggest_cluster_name(ctx);
            assert_eq!(got, want);
            ClusterName::new(&got).expect("valid");
        }
        let long = "a".repeat(100);
        assert_eq!(suggest_cluster_name(&long).len(), 63);
    }

    #[test]
    fn control_plane_namespaces_are_checked_and_istio_system_is_implied() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            control_plane_namespaces(&l(&[" mesh-a", "istio-system", "mesh-a", "", "mesh-b"])),
            Ok(l(&["mesh-a", "mesh-b"]))
        );
        for bad in [
            "kube-system",
            "Mesh",
            "a.b",
            "gloo-mesh",
            "istio-eastwest",
            "meshdeck-access",
            "default",
        ] {
            assert!(control_plane_namespaces(&l(&[bad])).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..9).map(|i| format!("cp-{i}")).collect();
        assert!(control_plane_namespaces(&many).is_err());
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn tokens_are_renewed_after_two_thirds_of_their_life_or_after_a_failure() {
        let mut a = ClusterAccess {
            account: "meshdeck/meshdeck".into(),
            onboarded_at: 1000,
            onboarded_by: "admin".into(),
            token_issued_at: 1000,
            token_expires_at: 4600,
            problem: None,
            per_user: None,
            control_planes: vec![],
        };
        assert!(!a.renewal_due(3399));
        assert!(a.renewal_due(3400));
        assert!(!a.renewal_due(4600), "expired: only onboarding again helps");
        a.problem = Some("forbidden".into());
        assert!(a.renewal_due(1001), "a failed renewal is tried again");
    }

    #[test]
    fn health_follows_the_report() {
        let mut c = Connectivity {
            reachable: true,
            server_version: Some("v1.34.4".into()),
            latency_ms: Some(3),
            missing: vec![],
            needs_admin: vec!["create clusterrolebindings".into()],
            as_user: vec!["create secrets".into()],
            problem: None,
            checked_at: 0,
        };
        assert_eq!(
            c.health(),
            Health::Healthy,
            "what only an admin may do is no fault"
        );
        c.missing.push("create namespaces".into());
        assert_eq!(c.health(), Health::Degraded);
        c.reachable = false;
        assert_eq!(c.health(), Health::Down);
    }
}
