//! The Gloo Operator, installed as the guide does it: a Helm release made with the `helm` CLI (mesh-spec.md
//! §5), `helm upgrade --install` into `gloo-mesh`. The chart reference and version are settings; a local chart
//! folder or archive works too (air-gapped sites). Secrets never reach a command line: the license goes in a
//! Secret that the release references, and helm runs as `mesh::helm` says (its own environment and folders,
//! the kubeconfig in an unnamed file). A release already deployed with the same chart and values is left
//! alone, so a re-run changes nothing; one left pending by a helm that was killed (its console stopped
//! mid-step) is rolled back first, since the job holds the cluster and no other Meshdeck helm can be running.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::helm::Run;
use crate::kubeconfig::Credentials;
use crate::objects::OPERATOR_NAMESPACE;

pub const RELEASE: &str = "gloo-operator";
/// The Secret the release points the operator at for its license (key `license-key`).
pub const LICENSE_SECRET: &str = "meshdeck-license";
pub const DEFAULT_CHART: &str =
    "oci://us-docker.pkg.dev/solo-public/gloo-operator-helm/gloo-operator";
pub const DEFAULT_CHART_VERSION: &str = "0.4.2";
const SMC_CRD: &str = "servicemeshcontrollers.operator.gloo.solo.io";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Helm(#[from] crate::helm::Error),
    #[error("the operator did not become ready within {secs} s: {detail}")]
    NotReady { secs: u64, detail: String },
    #[error("{what}: {source}")]
    Kube {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Apply(#[from] crate::apply::Error),
    #[error(transparent)]
    Record(#[from] crate::platform::Error),
    #[error(
        "installing or upgrading the Gloo Operator creates its ClusterRole and ClusterRoleBinding, which the \
         console's credentials here may not (the cluster is onboarded with least privilege); an administrator \
         runs once: {command}"
    )]
    NeedsAdmin { command: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the chart comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chart {
    /// An OCI or repository reference, or a path to a chart folder or `.tgz` on the server.
    pub reference: String,
    /// Required for OCI/repository references; ignored for local charts.
    pub version: Option<String>,
}

impl Default for Chart {
    fn default() -> Self {
        Chart {
            reference: DEFAULT_CHART.into(),
            version: Some(DEFAULT_CHART_VERSION.into()),
        }
    }
}

/// The license, as the user gave it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum License {
    /// The key itself: written to the Secret [`LICENSE_SECRET`].
    Key(String),
    /// An existing Secret, `<namespace>/<name>`, with key `license-key`.
    SecretRef(String),
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            License::Key(_) => f.write_str("License::Key(<redacted>)"),
            License::SecretRef(r) => write!(f, "License::SecretRef({r})"),
        }
    }
}

/// What the release is installed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    pub chart: Chart,
    pub license: License,
    /// Extra namespaces the operator watches (needed when the SMC's installNamespace is not one of
    /// gloo-system, gloo-mesh, istio-system).
    pub watch_namespaces: Vec<String>,
    /// The helm binary.
    pub helm: PathBuf,
}

/// The values of the release (no secret in them).
pub fn values(install: &Install) -> Value {
    let secret_ref = match &install.license {
        License::Key(_) => format!("{OPERATOR_NAMESPACE}/{LICENSE_SECRET}"),
        License::SecretRef(r) => r.clone(),
    };
    let mut env = json!({"SOLO_ISTIO_LICENSE_KEY_SECRET_REF": secret_ref});
    if !install.watch_namespaces.is_empty() {
        env["WATCH_NAMESPACES"] = json!(install.watch_namespaces.join(","));
    }
    json!({"manager": {"env": env}})
}

/// The release as a plan shows it: chart, version and values (no secret in them).
pub fn release_yaml(install: &Install) -> String {
    serde_yaml::to_string(&json!({
        "release": RELEASE,
        "namespace": OPERATOR_NAMESPACE,
        "chart": install.chart.reference,
        "version": install.chart.version,
        "values": values(install),
    }))
    .unwrap_or_default()
}

/// The license Secret, when the license is a key.
pub fn license_secret(license: &License) -> Option<Value> {
    match license {
        License::Key(k) => Some(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": LICENSE_SECRET, "namespace": OPERATOR_NAMESPACE},
            "type": "Opaque",
            "stringData": {"license-key": k},
        })),
        License::SecretRef(_) => None,
    }
}

/// The command a user would run by hand (the license stays in the Secret).
pub fn command(install: &Install, context: &str) -> String {
    let version = install
        .chart
        .version
        .as_deref()
        .map(|v| format!(" --version {v}"))
        .unwrap_or_default();
    format!(
        "helm upgrade --install {RELEASE} {}{version} --kube-context {context} -n {OPERATOR_NAMESPACE} --create-namespace -f values.yaml --wait",
        install.chart.reference
    )
}

/// What helm recorded as deployed: (chart "name-version", values), or None. Read from helm's own records
/// through the API ([`crate::platform::latest`]), as `helm list` and `helm get values` would show them, without
/// starting helm twice per step. A release left pending by a helm that was killed is rolled back (an upgrade)
/// or removed (a first install) first.
async fn deployed(helm: &Path, run: &Run, client: &Client) -> Result<Option<(String, Value)>> {
    let Some((status, release)) = crate::platform::latest(client, RELEASE).await? else {
        return Ok(None);
    };
    match status.as_str() {
        "deployed" => Ok(Some((release.chart, release.config))),
        status @ ("pending-install" | "pending-upgrade" | "pending-rollback") => {
            tracing::warn!(
                status,
                "the operator release was left pending by a helm that stopped; recovering it"
            );
            recover(helm, run, status).await?;
            Box::pin(deployed(helm, run, client)).await
        }
        _ => Ok(None),
    }
}

/// Whether a chart reference is a folder or archive on this machine (not an OCI or repository reference).
pub fn is_local_chart(reference: &str) -> bool {
    !reference.contains("://")
        && (reference.starts_with('/')
            || reference.starts_with('.')
            || reference.ends_with(".tgz")
            || reference.ends_with(".tar.gz")
            || Path::new(reference).exists())
}

/// The chart's name and version: for a versioned (OCI or repository) reference, its last path segment and the
/// version; for a local chart (folder or `.tgz`), what its `Chart.yaml` says (read with `helm show chart`, so
/// a chart replaced in place at the same path counts as the new version it is).
pub async fn chart_meta(helm: &Path, chart: &Chart) -> Result<(String, String)> {
    if let Some(v) = &chart.version {
        let name = chart
            .reference
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(&chart.reference);
        return Ok((name.to_string(), v.clone()));
    }
    let run = Run::new("")?;
    let text = run
        .helm(helm, &["show", "chart", &chart.reference], "show chart")
        .await?;
    // What a chart says of itself: an uploaded chart's text is read as any user input is (bounded).
    let meta: Value =
        crate::yaml::from_str(&text, &crate::yaml::Limits::INPUT).unwrap_or(Value::Null);
    match (meta["name"].as_str(), meta["version"].as_str()) {
        (Some(n), Some(v)) => Ok((n.to_string(), v.to_string())),
        _ => Err(Error::Helm(crate::helm::Error::Failed {
            action: "show chart",
            message: format!(
                "{} has no name and version in its Chart.yaml",
                chart.reference
            ),
        })),
    }
}

/// The chart's `name-version`, as helm lists a release made from it ([`chart_meta`]).
pub async fn chart_label(helm: &Path, chart: &Chart) -> Result<String> {
    let (name, version) = chart_meta(helm, chart).await?;
    Ok(format!("{name}-{version}"))
}

/// The release as `helm list --all` shows it, read only from helm's records (a pending release is reported,
/// not recovered): its chart `name-version` and status, or None when there is none.
pub async fn release(client: &Client) -> Result<Option<(String, String)>> {
    Ok(crate::platform::latest(client, RELEASE)
        .await?
        .map(|(status, r)| (r.chart, status)))
}

/// Brings a pending release back to a settled state: a first install that never finished is uninstalled (the
/// step installs it again); an upgrade or rollback is rolled back to the last deployed revision.
async fn recover(helm: &Path, run: &Run, status: &str) -> Result<()> {
    let kc = run.kubeconfig();
    let args: Vec<&str> = if status == "pending-install" {
        vec![
            "uninstall",
            RELEASE,
            "--kubeconfig",
            kc,
            "-n",
            OPERATOR_NAMESPACE,
            "--wait",
            "--timeout",
            "120s",
        ]
    } else {
        vec![
            "rollback",
            RELEASE,
            "--kubeconfig",
            kc,
            "-n",
            OPERATOR_NAMESPACE,
            "--wait",
            "--timeout",
            "120s",
        ]
    };
    run.helm(helm, &args, "recovery of a pending release")
        .await?;
    Ok(())
}

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Installed,
    Upgraded,
    Unchanged,
}

/// Installs or upgrades the release when needed, then waits for the operator to run and its
/// ServiceMeshController CRD to be served.
#[tracing::instrument(skip_all)]
pub async fn ensure(install: &Install, creds: &Credentials, client: &Client) -> Result<Outcome> {
    let run = Run::new(&creds.to_yaml())?;
    let wanted = values(install);
    if let Some(secret) = license_secret(&install.license) {
        crate::apply::apply(client, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}), false).await?;
        crate::apply::apply(client, &secret, false).await?;
    }
    let current = deployed(&install.helm, &run, client).await?;
    // A local chart is compared by what its Chart.yaml says, so a newer chart at the same path upgrades.
    let local = match (&current, &install.chart.version) {
        (Some(_), None) => Some(chart_label(&install.helm, &install.chart).await?),
        _ => None,
    };
    let chart_matches = |chart: &str| match (&install.chart.version, &local) {
        (Some(v), _) => chart.ends_with(&format!("-{v}")),
        (None, Some(label)) => chart == label,
        (None, None) => true,
    };
    let outcome = match &current {
        Some((chart, values)) if chart_matches(chart) && *values == wanted => Outcome::Unchanged,
        Some(_) => Outcome::Upgraded,
        None => Outcome::Installed,
    };
    if outcome != Outcome::Unchanged {
        may_bind(client, install, &creds.context).await?;
        let values_file = run.write(
            "values.yaml",
            &serde_json::to_string(&wanted).unwrap_or_default(),
        )?;
        let kc = run.kubeconfig().to_string();
        let vf = values_file.to_str().unwrap_or_default().to_string();
        let mut args: Vec<&str> = vec![
            "upgrade",
            "--install",
            RELEASE,
            &install.chart.reference,
            "--kubeconfig",
            &kc,
            "-n",
            OPERATOR_NAMESPACE,
            "--create-namespace",
            "-f",
            &vf,
            "--reset-values",
        ];
        // An upgrade waits in helm until the new pods run: the old pod stays ready meanwhile, so
        // `wait_ready` below could not tell. A first install has no old pod: `wait_ready` is the wait, reading
        // every few hundred milliseconds where helm's --wait reads every 2 s.
        if outcome == Outcome::Upgraded {
            args.extend(["--wait", "--timeout", "300s"]);
        }
        if let Some(v) = &install.chart.version {
            args.extend(["--version", v]);
        }
        run.helm(&install.helm, &args, "upgrade --install").await?;
    }
    drop(run);
    wait_ready(client, Duration::from_secs(120)).await?;
    Ok(outcome)
}

/// Refuses, saying what an administrator runs, when the credentials may not create the chart's
/// ClusterRoleBinding (helm would fail halfway, leaving a release pending).
async fn may_bind(client: &Client, install: &Install, context: &str) -> Result<()> {
    let p = crate::connect::REQUIRED
        .iter()
        .find(|p| p.admin_only && p.resource == "clusterrolebindings");
    let Some(p) = p else {
        return Ok(());
    };
    let allowed = crate::connect::review(client, p, crate::objects::ISTIO_NAMESPACE)
        .await
        .map(|r| r.allowed)
        .unwrap_or(true);
    if allowed {
        Ok(())
    } else {
        Err(Error::NeedsAdmin {
            command: command(install, context),
        })
    }
}

/// Waits for a ready operator pod and an established ServiceMeshController CRD.
pub async fn wait_ready(client: &Client, timeout: Duration) -> Result<()> {
    let pods = Api::<Pod>::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let start = std::time::Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    loop {
        let pod_ready = pods
            .list(&ListParams::default().labels("app.kubernetes.io/name=gloo-operator"))
            .await
            .map_err(|source| Error::Kube {
                what: "operator pods",
                source,
            })?
            .items
            .iter()
            .any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            });
        let crd_ready = crds
            .get_opt(SMC_CRD)
            .await
            .map_err(|source| Error::Kube {
                what: "CRDs",
                source,
            })?
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if pod_ready && crd_ready {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(Error::NotReady {
                secs: timeout.as_secs(),
                detail: format!(
                    "operator pod ready: {pod_ready}; {SMC_CRD} established: {crd_ready}. Look at: kubectl -n gloo-mesh describe pods -l app.kubernetes.io/name=gloo-operator"
                ),
            });
        }
        pauses.sleep().await;
    }
}

/// Uninstalls the release (a re-run when it is gone does nothing). Returns whether it was there.
pub async fn uninstall(helm: &Path, creds: &Credentials, client: &Client) -> Result<bool> {
    let run = Run::new(&creds.to_yaml())?;
    if deployed(helm, &run, client).await?.is_none() {
        return Ok(false);
    }
    let kc = run.kubeconfig().to_string();
    run.helm(
        helm,
        &[
            "uninstall",
            RELEASE,
            "--kubeconfig",
            &kc,
            "-n",
            OPERATOR_NAMESPACE,
            "--wait",
            "--timeout",
            "300s",
        ],
        "uninstall",
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(license: License) -> Install {
        Install {
            chart: Chart::default(),
            license,
            watch_namespaces: vec![],
            helm: "helm".into(),
        }
    }

    #[tokio::test]
    async fn a_versioned_chart_is_labelled_as_helm_lists_its_release() {
        let helm = Path::new("helm-is-not-needed-here");
        assert_eq!(
            chart_label(helm, &Chart::default()).await.expect("label"),
            "gloo-operator-0.4.2"
        );
        let repo = Chart {
            reference: "gloo/gloo-operator/".into(),
            version: Some("0.5.0".into()),
        };
        assert_eq!(
            chart_label(helm, &repo).await.expect("label"),
            "gloo-operator-0.5.0"
        );
    }

    #[test]
    fn the_license_key_goes_in_a_secret_and_never_in_the_values_or_the_command() {
        let i = install(License::Key("SECRET-KEY-123".into()));
        let v = values(&i).to_string();
        assert!(!v.contains("SECRET-KEY-123"), "{v}");
        assert!(v.contains("gloo-mesh/meshdeck-license"), "{v}");
        assert!(!command(&i, "c1").contains("SECRET-KEY-123"));
        let s = license_secret(&i.license).expect("secret");
        assert_eq!(s["stringData"]["license-key"], "SECRET-KEY-123");
        assert!(
            !format!("{:?}", i.license).contains("SECRET"),
            "Debug redacts"
        );
    }

    #[test]
    fn a_secret_reference_is_passed_through() {
        let i = install(License::SecretRef("gloo-mesh/license-keys".into()));
        assert_eq!(
            values(&i)["manager"]["env"]["SOLO_ISTIO_LICENSE_KEY_SECRET_REF"],
            "gloo-mesh/license-keys"
        );
        assert!(license_secret(&i.license).is_none());
    }

    #[test]
    fn the_command_names_chart_version_and_namespace() {
        assert_eq!(
            command(&install(License::SecretRef("a/b".into())), "c1"),
            "helm upgrade --install gloo-operator oci://us-docker.pkg.dev/solo-public/gloo-operator-helm/gloo-operator --version 0.4.2 --kube-context c1 -n gloo-mesh --create-namespace -f values.yaml --wait"
        );
    }
}
