//! Gloo Platform's side of automatic peering (mesh-spec.md §7.1): the guide's three `helm upgrade` steps on the
//! platform team's releases, which Meshdeck does not own (their charts and values are the platform team's), so
//! it checks them before a setup instead of discovering only at the end that no peer gateway arrived:
//! - management cluster, `gloo-platform-crds`: `featureGates.ConfigDistribution=true`, `installEnterpriseCrds=true`;
//! - management cluster, `gloo-platform`: `featureGates.ConfigDistribution=true`;
//! - each workload cluster, `gloo-platform-crds`: `installEnterpriseCrds=true` (and its `gloo-platform` agent).
//!
//! The values are read from helm's own record of each release (the `sh.helm.release.v1.*` Secret in
//! `gloo-mesh`, which Meshdeck's role may read), so no helm binary is needed and nothing is changed.

use std::io::Read;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::checks::Status;
use crate::ids::ClusterName;
use crate::objects::OPERATOR_NAMESPACE;
use crate::preflight::Finding;

/// The namespace of the platform team's releases (the guide's `-n gloo-mesh`).
pub const NAMESPACE: &str = OPERATOR_NAMESPACE;
pub const CRDS_RELEASE: &str = "gloo-platform-crds";
pub const PLATFORM_RELEASE: &str = "gloo-platform";
pub const CONFIG_DISTRIBUTION: &str = "featureGates.ConfigDistribution";
pub const ENTERPRISE_CRDS: &str = "installEnterpriseCrds";

/// A deployed helm release, as helm records it. Its values are the platform team's (they may hold keys):
/// `Debug` leaves them out.
#[derive(Clone, PartialEq)]
pub struct Release {
    pub name: String,
    pub revision: u64,
    /// `name-version` of the chart.
    pub chart: String,
    /// The values given at install/upgrade (helm's `config`).
    pub config: Value,
    /// The chart's own defaults (`chart.values`).
    pub defaults: Value,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("name", &self.name)
            .field("revision", &self.revision)
            .field("chart", &self.chart)
            .finish_non_exhaustive()
    }
}

impl Release {
    /// The value at a dotted path: what was set, else the chart's default.
    pub fn value(&self, path: &str) -> Option<&Value> {
        value_at(&self.config, path).or_else(|| value_at(&self.defaults, path))
    }

    /// Whether the value at `path` is on (`true`, or the string "true" that `--set-string` leaves).
    pub fn is_on(&self, path: &str) -> bool {
        match self.value(path) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

fn value_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading helm's records in {NAMESPACE}: {0}")]
    Kube(#[from] kube::Error),
    #[error("helm's record of {release} cannot be read: {detail}")]
    Record { release: String, detail: String },
}

/// Decodes helm's release record: the Secret's `release` key holds base64 of (usually gzipped) JSON.
pub fn decode(release: &str, data: &[u8]) -> Result<Release, Error> {
    let bad = |detail: String| Error::Record {
        release: release.to_string(),
        detail,
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data.trim_ascii())
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(64 << 20)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("not gzip: {e}")))?;
        out
    } else {
        raw
    };
    let v: Value = serde_json::from_slice(&json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let meta = &v["chart"]["metadata"];
    Ok(Release {
        name: v["name"].as_str().unwrap_or(release).to_string(),
        revision: v["version"].as_u64().unwrap_or(0),
        chart: format!(
            "{}-{}",
            meta["name"].as_str().unwrap_or_default(),
            meta["version"].as_str().unwrap_or_default()
        ),
        config: v["config"].clone(),
        defaults: v["chart"]["values"].clone(),
    })
}

/// The deployed revision of `release` in [`NAMESPACE`], or None when helm records none.
pub async fn deployed(client: &Client, release: &str) -> Result<Option<Release>, Error> {
    Ok(newest(client, release, Some("deployed"))
        .await?
        .map(|(_, r)| r))
}

/// The newest revision of `release` in [`NAMESPACE`] whatever its status (`deployed`, `failed`,
/// `pending-install`, …), with that status, or None when helm records none — what `helm list --all` shows,
/// without running helm. Only that revision's record is decoded.
pub async fn latest(client: &Client, release: &str) -> Result<Option<(String, Release)>, Error> {
    newest(client, release, None).await
}

async fn newest(
    client: &Client,
    release: &str,
    status: Option<&str>,
) -> Result<Option<(String, Release)>, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let mut selector = format!("owner=helm,name={release}");
    if let Some(status) = status {
        selector.push_str(&format!(",status={status}"));
    }
    let list = secrets
        .list(&ListParams::default().labels(&selector))
        .await?;
    let label = |s: &Secret, key: &str| {
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let newest = list
        .items
        .iter()
        .max_by_key(|s| label(s, "version").parse::<u64>().unwrap_or(0));
    let Some(secret) = newest else {
        return Ok(None);
    };
    match secret.data.as_ref().and_then(|d| d.get("release")) {
        Some(data) => Ok(Some((label(secret, "status"), decode(release, &data.0)?))),
        None => Ok(None),
    }
}

/// What automatic peering needs from one release: the flags that must be on.
fn needs(management: bool, release: &str) -> &'static [&'static str] {
    match (management, release) {
        (true, CRDS_RELEASE) => &[CONFIG_DISTRIBUTION, ENTERPRISE_CRDS],
        (true, _) => &[CONFIG_DISTRIBUTION],
        (false, CRDS_RELEASE) => &[ENTERPRISE_CRDS],
        (false, _) => &[],
    }
}

/// The guide's commands that turn `flags` on in `release` on `cluster`, keeping its other values.
pub fn upgrade_command(cluster: &ClusterName, release: &str, flags: &[&str]) -> String {
    let sets: String = flags.iter().map(|f| format!(" --set {f}=true")).collect();
    format!(
        "helm get values {release} -n {NAMESPACE} -o yaml --kube-context {cluster} > {cluster}-{release}.yaml && \
         helm upgrade {release} gloo-platform/{release} --kube-context {cluster} --namespace {NAMESPACE} \
         -f {cluster}-{release}.yaml{sets}"
    )
}

/// The preflight finding `automatic-peering` for `cluster` when the management plane is `management`.
pub async fn automatic_peering(
    client: &Client,
    cluster: &ClusterName,
    management: &ClusterName,
) -> Finding {
    const KEY: &str = "automatic-peering";
    const TITLE: &str = "Automatic peering (Gloo Platform)";
    let is_mgmt = cluster == management;
    let role = if is_mgmt {
        "the management cluster"
    } else {
        "a workload cluster"
    };
    let mut missing: Vec<String> = vec![];
    let mut commands: Vec<String> = vec![];
    let mut seen: Vec<String> = vec![];
    for release in [CRDS_RELEASE, PLATFORM_RELEASE] {
        match deployed(client, release).await {
            Err(e) => {
                return Finding {
                    key: KEY.into(),
                    title: TITLE.into(),
                    status: Status::Fail,
                    message: format!("{cluster}: {e}"),
                    remediation: Some(match &e {
                        Error::Kube(kube::Error::Api(a)) if a.code == 403 => format!(
                            "Let Meshdeck's credentials for {cluster} read Secrets in {NAMESPACE} (helm's records), \
                             then run the preflight again."
                        ),
                        Error::Record { release, .. } => format!(
                            "Look at the release's history (helm history {release} -n {NAMESPACE} --kube-context \
                             {cluster}); upgrading it again writes a new record. Then run the preflight again."
                        ),
                        Error::Kube(_) => format!(
                            "Check that {cluster} answers (Clusters → Re-test), then run the preflight again."
                        ),
                    }),
                };
            }
            Ok(None) => {
                missing.push(format!("no deployed {release} release in {NAMESPACE}"));
                commands.push(if release == CRDS_RELEASE {
                    format!(
                        "helm upgrade --install {release} gloo-platform/{release} --kube-context {cluster} \
                         --namespace {NAMESPACE} --create-namespace{}",
                        needs(is_mgmt, release)
                            .iter()
                            .map(|f| format!(" --set {f}=true"))
                            .collect::<String>()
                    )
                } else if is_mgmt {
                    format!(
                        "install the Gloo management plane ({release} with glooMgmtServer.enabled=true) on \
                         {cluster} as the Gloo Mesh guide says, with --set {CONFIG_DISTRIBUTION}=true"
                    )
                } else {
                    format!(
                        "register {cluster} with the management server: install the Gloo agent ({release} with \
                         glooAgent.enabled=true) as the Gloo Mesh guide says"
                    )
                });
            }
            Ok(Some(r)) => {
                seen.push(format!("{release} revision {} ({})", r.revision, r.chart));
                let off: Vec<&str> = needs(is_mgmt, release)
                    .iter()
                    .copied()
                    .filter(|f| !r.is_on(f))
                    .collect();
                if !off.is_empty() {
                    missing.push(format!(
                        "{release} lacks {}",
                        off.iter()
                            .map(|f| format!("{f}=true"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                    commands.push(upgrade_command(cluster, release, &off));
                }
            }
        }
    }
    if missing.is_empty() {
        Finding {
            key: KEY.into(),
            title: TITLE.into(),
            status: Status::Pass,
            message: format!(
                "{cluster} is {role} and its Gloo Platform releases have what automatic peering needs: {}",
                seen.join(", ")
            ),
            remediation: None,
        }
    } else {
        Finding {
            key: KEY.into(),
            title: TITLE.into(),
            status: Status::Fail,
            message: format!(
                "{cluster} is {role} of automatic peering through {management}, but {}; the management plane would \
                 not distribute the peer gateways",
                missing.join("; ")
            ),
            remediation: Some(format!(
                "Run on {cluster} (the guide's \"Enable automatic peering of clusters\"), then run the preflight \
                 again: {}",
                commands.join(" ; ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    fn record(v: &Value, gzip: bool) -> Vec<u8> {
        let json = serde_json::to_vec(v).expect("json");
        let bytes = if gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&json).expect("gzip");
            e.finish().expect("gzip")
        } else {
            json
        };
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    fn release() -> Value {
        json!({
            "name": "gloo-platform-crds",
            "version": 3,
            "chart": {
                "metadata": {"name": "gloo-platform-crds", "version": "2.10.0"},
                "values": {"featureGates": {"ConfigDistribution": false}, "installEnterpriseCrds": false},
            },
            "config": {"installEnterpriseCrds": true},
        })
    }

    #[test]
    fn a_record_decodes_with_set_values_over_the_charts_defaults() {
        for gzip in [true, false] {
            let r = decode(CRDS_RELEASE, &record(&release(), gzip)).expect("decodes");
            assert_eq!(r.revision, 3);
            assert_eq!(r.chart, "gloo-platform-crds-2.10.0");
            assert!(r.is_on(ENTERPRISE_CRDS), "set on the command line");
            assert!(!r.is_on(CONFIG_DISTRIBUTION), "the chart's default");
            assert_eq!(r.value("nothing.here"), None);
        }
        let mut v = release();
        v["config"] = json!({"featureGates": {"ConfigDistribution": "True"}});
        let r = decode(CRDS_RELEASE, &record(&v, true)).expect("decodes");
        assert!(r.is_on(CONFIG_DISTRIBUTION), "a string from --set-string");
        assert!(!r.is_on(ENTERPRISE_CRDS));
    }

    #[test]
    fn a_damaged_record_names_the_release() {
        let e = decode(CRDS_RELEASE, b"%%%").expect_err("not base64");
        assert!(e.to_string().contains("gloo-platform-crds"), "{e}");
        let e = decode(
            CRDS_RELEASE,
            base64::engine::general_purpose::STANDARD
                .encode([0x1f, 0x8b, 1, 2])
                .as_bytes(),
        )
        .expect_err("bad gzip");
        assert!(e.to_string().contains("not gzip"), "{e}");
    }

    #[test]
    fn the_command_keeps_the_release_values_and_sets_only_what_is_off() {
        let c = ClusterName::new("mgmt").expect("name");
        let cmd = upgrade_command(&c, CRDS_RELEASE, &[ENTERPRISE_CRDS]);
        assert!(
            cmd.starts_with(
                "helm get values gloo-platform-crds -n gloo-mesh -o yaml --kube-context mgmt"
            ),
            "{cmd}"
        );
        assert!(
            cmd.ends_with("-f mgmt-gloo-platform-crds.yaml --set installEnterpriseCrds=true"),
            "{cmd}"
        );
        assert_eq!(needs(true, CRDS_RELEASE).len(), 2);
        assert_eq!(needs(true, PLATFORM_RELEASE), &[CONFIG_DISTRIBUTION]);
        assert!(needs(false, PLATFORM_RELEASE).is_empty());
    }
}
