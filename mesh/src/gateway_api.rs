//! The Gateway API CRDs (mesh-spec.md §8): the upstream v1.4.0 standard-channel bundle, vendored unmodified
//! in `mesh/crds/` (a test compares it with the upstream module), applied by server-side apply only where a
//! CRD is absent or older. Never downgrades, never replaces another channel, and notices the v1.5
//! `safe-upgrades` ValidatingAdmissionPolicy that refuses bundles before v1.5.

use std::cmp::Ordering;

use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::FIELD_MANAGER;

/// The vendored bundle, as upstream publishes it.
pub const BUNDLE: &str = include_str!("../crds/gateway-api-v1.4.0-standard.yaml");
pub const BUNDLE_VERSION: &str = "v1.4.0";
pub const CHANNEL: &str = "standard";
const VERSION_ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";
const CHANNEL_ANNOTATION: &str = "gateway.networking.k8s.io/channel";
/// The policy Gateway API v1.5 installs (§8).
pub const SAFE_UPGRADES_POLICY: &str = "safe-upgrades.gateway.networking.k8s.io";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the vendored Gateway API bundle is not valid YAML: {0}")]
    Bundle(String),
    #[error("{step}: {source}")]
    Kube {
        step: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The CRDs of the vendored bundle, parsed once per process (it is half a megabyte of YAML; parsing it on every
/// cluster's step held up an async worker for each).
pub fn bundle() -> Result<Vec<CustomResourceDefinition>> {
    static PARSED: std::sync::OnceLock<std::result::Result<Vec<CustomResourceDefinition>, String>> =
        std::sync::OnceLock::new();
    PARSED
        .get_or_init(parse_bundle)
        .clone()
        .map_err(Error::Bundle)
}

fn parse_bundle() -> std::result::Result<Vec<CustomResourceDefinition>, String> {
    // Our own vendored file, but read through the same bounded parser as everything else.
    let limits = crate::yaml::Limits {
        input_bytes: 4 * 1024 * 1024,
        nodes: 2_000_000,
        scalar_bytes: 32 * 1024 * 1024,
        depth: 128,
        documents: 100,
    };
    let docs: Vec<serde_json::Value> =
        crate::yaml::documents(BUNDLE, &limits).map_err(|e| e.to_string())?;
    docs.into_iter()
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        .collect()
}

/// `v1.4.0` → (1, 4, 0); pre-release suffixes are ignored for ordering.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.strip_prefix('v')?.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// What to do with one CRD of the bundle, given what the cluster has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Upgrade {
        from: String,
    },
    UpToDate,
    /// The cluster has a newer bundle: keep it (never downgrade).
    KeepNewer {
        installed: String,
    },
    /// The cluster has another channel (experimental): keep it, applying standard would drop its fields.
    KeepOtherChannel {
        installed: String,
    },
    /// Installed without the bundle annotations (by hand or another tool): keep it, it cannot be compared.
    KeepUnknown,
}

impl Action {
    pub fn writes(&self) -> bool {
        matches!(self, Action::Create | Action::Upgrade { .. })
    }

    /// One sentence for a preflight row or a plan.
    pub fn describe(&self, crd: &str) -> String {
        match self {
            Action::Create => {
                format!("{crd}: not installed; will install {BUNDLE_VERSION} ({CHANNEL})")
            }
            Action::Upgrade { from } => {
                format!("{crd}: {from} installed; will upgrade to {BUNDLE_VERSION}")
            }
            Action::UpToDate => format!("{crd}: {BUNDLE_VERSION} already installed"),
            Action::KeepNewer { installed } => {
                format!(
                    "{crd}: {installed} installed, newer than {BUNDLE_VERSION}; kept as is (never downgrade)"
                )
            }
            Action::KeepOtherChannel { installed } => format!(
                "{crd}: the {installed} channel is installed; kept as is (installing {CHANNEL} over it would remove fields)"
            ),
            Action::KeepUnknown => {
                format!(
                    "{crd}: installed without a Gateway API bundle version; kept as is — check it is at least {BUNDLE_VERSION}"
                )
            }
        }
    }
}

/// Decides the action for a CRD from the installed one's annotations.
pub fn decide(installed: Option<&CustomResourceDefinition>) -> Action {
    let Some(crd) = installed else {
        return Action::Create;
    };
    let ann = crd.annotations();
    let channel = ann.get(CHANNEL_ANNOTATION).cloned().unwrap_or_default();
    let Some(version) = ann.get(VERSION_ANNOTATION).cloned() else {
        return Action::KeepUnknown;
    };
    if !channel.is_empty() && channel != CHANNEL {
        return Action::KeepOtherChannel { installed: channel };
    }
    let (Some(have), Some(want)) = (parse_version(&version), parse_version(BUNDLE_VERSION)) else {
        return Action::KeepUnknown;
    };
    match have.cmp(&want) {
        Ordering::Less => Action::Upgrade { from: version },
        Ordering::Equal => Action::UpToDate,
        Ordering::Greater => Action::KeepNewer { installed: version },
    }
}

/// The plan for a cluster: one action per CRD of the bundle, and whether the v1.5 policy is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub actions: Vec<(String, Action)>,
    pub safe_upgrades_policy: bool,
}

impl Plan {
    pub fn writes(&self) -> bool {
        self.actions.iter().any(|(_, a)| a.writes())
    }
}

pub async fn plan(client: &Client) -> Result<Plan> {
    plan_for(client, &bundle()?).await
}

/// The plan for `crds` (the parsed bundle), one action per CRD in the same order.
async fn plan_for(client: &Client, crds: &[CustomResourceDefinition]) -> Result<Plan> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut actions = Vec::new();
    for crd in crds {
        let name = crd.name_any();
        let installed = api.get_opt(&name).await.map_err(|source| Error::Kube {
            step: format!("reading CRD {name}"),
            source,
        })?;
        actions.push((name, decide(installed.as_ref())));
    }
    let vap: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let safe_upgrades_policy = vap
        .get_opt(SAFE_UPGRADES_POLICY)
        .await
        .map_err(|source| Error::Kube {
            step: "reading ValidatingAdmissionPolicies".into(),
            source,
        })?
        .is_some();
    Ok(Plan {
        actions,
        safe_upgrades_policy,
    })
}

/// Applies the CRDs the plan says to write (server-side apply, one field manager) and returns the plan.
pub async fn apply(client: &Client) -> Result<Plan> {
    let crds = bundle()?;
    let plan = plan_for(client, &crds).await?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    for (crd, (name, action)) in crds.iter().zip(&plan.actions) {
        if action.writes() {
            api.patch(name, &pp, &Patch::Apply(crd))
                .await
                .map_err(|source| Error::Kube {
                    step: format!("applying CRD {name}"),
                    source,
                })?;
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_the_six_standard_crds_of_v1_4_0() {
        let crds = bundle().expect("bundle");
        let mut names: Vec<String> = crds.iter().map(|c| c.name_any()).collect();
        names.sort();
        // The six the console's least-privilege account may write, by name.
        assert_eq!(names, crate::access::WRITTEN_CRDS);
        for c in &crds {
            assert_eq!(
                c.annotations().get(VERSION_ANNOTATION).map(String::as_str),
                Some(BUNDLE_VERSION)
            );
            assert_eq!(
                c.annotations().get(CHANNEL_ANNOTATION).map(String::as_str),
                Some(CHANNEL)
            );
        }
    }

    fn installed(version: Option<&str>, channel: &str) -> CustomResourceDefinition {
        let mut crd = CustomResourceDefinition::default();
        let mut ann = std::collections::BTreeMap::new();
        if let Some(v) = version {
            ann.insert(VERSION_ANNOTATION.to_string(), v.to_string());
        }
        ann.insert(CHANNEL_ANNOTATION.to_string(), channel.to_string());
        crd.metadata.annotations = Some(ann);
        crd
    }

    #[test]
    fn only_absent_or_older_crds_are_written() {
        assert_eq!(decide(None), Action::Create);
        assert_eq!(
            decide(Some(&installed(Some("v1.2.1"), "standard"))),
            Action::Upgrade {
                from: "v1.2.1".into()
            }
        );
        assert_eq!(
            decide(Some(&installed(Some("v1.4.0"), "standard"))),
            Action::UpToDate
        );
        assert_eq!(
            decide(Some(&installed(Some("v1.5.0"), "standard"))),
            Action::KeepNewer {
                installed: "v1.5.0".into()
            }
        );
        assert_eq!(
            decide(Some(&installed(Some("v1.3.0"), "experimental"))),
            Action::KeepOtherChannel {
                installed: "experimental".into()
            }
        );
        assert_eq!(decide(Some(&installed(None, ""))), Action::KeepUnknown);
        assert!(
            decide(Some(&installed(Some("v1.5.0"), "standard")))
                .describe("gateways")
                .contains("never downgrade")
        );
        assert_eq!(parse_version("v1.10.2-rc1"), Some((1, 10, 2)));
        assert_eq!(parse_version("1.4.0"), None);
    }
}
