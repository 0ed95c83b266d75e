//! What a user may set of each cluster's control plane: the ServiceMeshController's fields (mesh-spec.md §4.1),
//! the `gloo-extensions-config` ConfigMap (§4.3) as fields plus a raw escape hatch, and the east-west
//! gateway's address override and variant (LoadBalancer or NodePort). Set once for all clusters, and overridden per cluster where needed. The
//! validation here runs in the browser as the user types and again on the server before anything is planned.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ClusterName, EastWest};

/// Choices of the operator's enums (§4.1), first = the operator's default.
pub const DISTRIBUTIONS: [&str; 2] = ["Standard", "FIPS"];
pub const SCALING_PROFILES: [&str; 3] = ["Default", "Demo", "Large"];
pub const ON_CONFLICT: [&str; 2] = ["Abort", "Force"];
/// `trafficCaptureMode` (§4.1): `InitContainer` works only with the Sidecar data plane mode, which a
/// multicluster mesh cannot use (peering runs in istiod's ambient controllers, §2.4), so only `Auto` is offered.
pub const TRAFFIC_CAPTURE_MODES: [&str; 1] = ["Auto"];
/// The istiod variable the guide recommends on fresh installs (§9 P15): remote secrets of the legacy
/// multicluster are ignored, so they cannot mix with peering. Set unless the user sets it otherwise.
pub const LEGACY_MULTICLUSTER_ENV: &str = "DISABLE_LEGACY_MULTICLUSTER";
/// Keys of the extensions ConfigMap the raw YAML may set (§4.3); `beta` and `values.istiod` are written
/// from the peering choice and the istiod environment fields.
pub const RAW_EXTENSION_KEYS: [&str; 2] = ["stable", "values.istio-ztunnel"];
/// istiod environment that Meshdeck sets itself.
pub const RESERVED_ENV: [&str; 1] = ["PEERING_AUTOMATIC_LOCAL_GATEWAY"];
pub const MAX_ENV: usize = 64;
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// Settings of a control plane; empty fields leave the operator's default (or, per cluster, the shared value).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MeshSettings {
    /// `Standard` or `FIPS`.
    pub distribution: Option<String>,
    /// `Default`, `Demo` or `Large`.
    pub scaling_profile: Option<String>,
    /// `Abort` (keep an existing Istio install untouched) or `Force` (take it over).
    pub on_conflict: Option<String>,
    /// Defaults to the cluster name.
    pub trust_domain: Option<String>,
    /// The namespace istiod, ztunnel and `cacerts` live in (`installNamespace`); istio-system by default. One
    /// outside gloo-system, gloo-mesh and istio-system makes the operator watch it (`WATCH_NAMESPACES`).
    pub install_namespace: Option<String>,
    /// A private registry for Istio's images.
    pub image_repository: Option<String>,
    /// Image pull secrets (dockerconfigjson) in the install namespace.
    pub image_secrets: Vec<String>,
    /// Secrets for pulling the operator's manifests.
    pub repository_secrets: Vec<String>,
    pub repository_insecure_skip_verify: Option<bool>,
    /// Extra istiod environment (`values.istiod` → `env`).
    pub istiod_env: BTreeMap<String, String>,
    /// `Auto` (the operator's default); `InitContainer` is refused (it needs the Sidecar data plane mode).
    pub traffic_capture_mode: Option<String>,
    /// The node's CNI configuration directory, where the platform moved it (`beta` → `cni.confDir`).
    pub cni_conf_dir: Option<String>,
    /// The node's CNI binary directory, where the platform moved it (`beta` → `cni.binDir`).
    pub cni_bin_dir: Option<String>,
    /// Namespaces istiod watches, as `key=value` label selectors (`stable` → `istiod.discoverySelectors`).
    pub discovery_selectors: Vec<String>,
    /// More ConfigMap keys as YAML: `stable: |` … or `values.istio-ztunnel: |` … (the escape hatch).
    pub extensions_yaml: String,
}

/// One cluster's overrides of the shared settings, and its east-west address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    pub mesh: MeshSettings,
    /// The address peers dial when the gateway gets none (or the wrong one) from a load balancer
    /// (`istio.io/expose-istiod-address`-style override, §1): an IP or a DNS name.
    pub address_override: Option<String>,
    /// How peers reach this cluster's east-west gateway, when it differs from the shared choice (§1.2):
    /// `None` takes the shared one.
    pub eastwest: Option<EastWest>,
}

impl ClusterSettings {
    /// This cluster's east-west variant: its own choice, else the shared one.
    pub fn eastwest_or(&self, shared: EastWest) -> EastWest {
        self.eastwest.unwrap_or(shared)
    }
}

/// The form value of an east-west choice (`""` = as shared), and back; an unknown value is refused.
pub fn eastwest_value(v: Option<EastWest>) -> &'static str {
    match v {
        None => "",
        Some(EastWest::LoadBalancer) => "load-balancer",
        Some(EastWest::NodePort) => "node-port",
    }
}

pub fn parse_eastwest(v: &str) -> Result<Option<EastWest>, String> {
    match v.trim() {
        "" => Ok(None),
        "load-balancer" => Ok(Some(EastWest::LoadBalancer)),
        "node-port" => Ok(Some(EastWest::NodePort)),
        other => Err(format!(
            "{other:?} is not an east-west variant: load-balancer or node-port (or empty for the shared choice)"
        )),
    }
}

/// A problem with one field, for the form to show next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingProblem {
    pub field: String,
    pub message: String,
}

fn problem(out: &mut Vec<SettingProblem>, field: &str, message: impl Into<String>) {
    out.push(SettingProblem {
        field: field.into(),
        message: message.into(),
    });
}

fn is_dns1123_subdomain(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns1123_subdomain) && is_label_value(name) && !name.is_empty()
}

fn is_label_value(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

fn is_env_name(k: &str) -> bool {
    let mut b = k.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// An IPv4/IPv6 address or a DNS name.
pub fn valid_address(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok() || is_dns1123_subdomain(v)
}

/// `key=value` into its parts, when both are valid label parts.
pub fn parse_selector(s: &str) -> Option<(String, String)> {
    let (k, v) = s.split_once('=')?;
    let (k, v) = (k.trim(), v.trim());
    (is_label_key(k) && is_label_value(v)).then(|| (k.to_string(), v.to_string()))
}

/// Why `ns` cannot be the control plane's install namespace (None: it can): a DNS-1123 label, and not a
/// namespace of Kubernetes, of the operator's own release or of the east-west gateway.
pub fn install_namespace_problem(ns: &str) -> Option<String> {
    if !is_dns1123_subdomain(ns) || ns.contains('.') {
        return Some(format!(
            "{ns:?} is not a namespace name: lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"
        ));
    }
    if ns == "default" || ns.starts_with("kube-") || ns == "gloo-mesh" || ns == "istio-eastwest" {
        return Some(format!(
            "{ns} is taken: Kubernetes' own namespaces, gloo-mesh (the operator's release) and istio-eastwest (the east-west gateway) cannot hold the control plane"
        ));
    }
    None
}

impl MeshSettings {
    /// Every problem of these settings, per field. `prefix` names the form (e.g. `shared.` or `c1.`).
    pub fn problems(&self, prefix: &str) -> Vec<SettingProblem> {
        let mut out = Vec::new();
        let f = |name: &str| format!("{prefix}{name}");
        let one_of =
            |out: &mut Vec<SettingProblem>, name: &str, v: &Option<String>, allowed: &[&str]| {
                if let Some(v) = v
                    && !allowed.contains(&v.as_str())
                {
                    problem(
                        out,
                        &f(name),
                        format!("{v:?} is not one of {}", allowed.join(", ")),
                    );
                }
            };
        one_of(&mut out, "distribution", &self.distribution, &DISTRIBUTIONS);
        one_of(
            &mut out,
            "scaling_profile",
            &self.scaling_profile,
            &SCALING_PROFILES,
        );
        one_of(&mut out, "on_conflict", &self.on_conflict, &ON_CONFLICT);
        match self.traffic_capture_mode.as_deref() {
            Some("InitContainer") => problem(
                &mut out,
                &f("traffic_capture_mode"),
                "InitContainer works only with the Sidecar data plane mode, and a multicluster mesh runs Ambient (peering needs istiod's ambient controllers): use Auto",
            ),
            _ => one_of(
                &mut out,
                "traffic_capture_mode",
                &self.traffic_capture_mode,
                &TRAFFIC_CAPTURE_MODES,
            ),
        }
        for (name, dir) in [
            ("cni_conf_dir", &self.cni_conf_dir),
            ("cni_bin_dir", &self.cni_bin_dir),
        ] {
            if let Some(d) = dir
                && !(d.starts_with('/')
                    && d.len() <= 255
                    && !d.contains("//")
                    && d.chars().all(|c| !c.is_control() && !c.is_whitespace()))
            {
                problem(
                    &mut out,
                    &f(name),
                    format!(
                        "{d:?} is not an absolute directory on the node, such as /opt/cni/bin (no spaces, at most 255 characters)"
                    ),
                );
            }
        }
        if let Some(td) = &self.trust_domain
            && !(td.len() <= 255
                && !td.is_empty()
                && td.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
                }))
        {
            problem(
                &mut out,
                &f("trust_domain"),
                "a trust domain is lowercase letters, digits, '.', '-' and '_' (SPIFFE), at most 255 characters",
            );
        }
        if let Some(ns) = &self.install_namespace
            && let Some(why) = install_namespace_problem(ns)
        {
            problem(&mut out, &f("install_namespace"), why);
        }
        if let Some(r) = &self.image_repository
            && (r.is_empty()
                || r.len() > 255
                || !r.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(b, b'.' | b'-' | b'_' | b'/' | b':')
                }))
        {
            problem(
                &mut out,
                &f("image_repository"),
                "an image repository looks like registry.example.com/istio: lowercase letters, digits, '.', '-', '_', '/', ':'",
            );
        }
        for (name, list) in [
            ("image_secrets", &self.image_secrets),
            ("repository_secrets", &self.repository_secrets),
        ] {
            if let Some(bad) = list.iter().find(|s| !is_dns1123_subdomain(s)) {
                problem(
                    &mut out,
                    &f(name),
                    format!(
                        "{bad:?} is not a Secret name (lowercase letters, digits, '-' and '.')"
                    ),
                );
            }
        }
        if self.istiod_env.len() > MAX_ENV {
            problem(
                &mut out,
                &f("istiod_env"),
                format!("at most {MAX_ENV} variables"),
            );
        }
        for (k, v) in &self.istiod_env {
            if !is_env_name(k) {
                problem(
                    &mut out,
                    &f("istiod_env"),
                    format!(
                        "{k:?} is not an environment variable name (letters, digits and '_', not starting with a digit)"
                    ),
                );
            } else if RESERVED_ENV.contains(&k.as_str()) {
                problem(
                    &mut out,
                    &f("istiod_env"),
                    format!(
                        "{k} is set by Meshdeck from the linking choice (automatic peering); choose it there"
                    ),
                );
            } else if v.len() > 4096 {
                problem(
                    &mut out,
                    &f("istiod_env"),
                    format!("the value of {k} is longer than 4096 characters"),
                );
            }
        }
        if let Some(bad) = self
            .discovery_selectors
            .iter()
            .find(|s| parse_selector(s).is_none())
        {
            problem(
                &mut out,
                &f("discovery_selectors"),
                format!("{bad:?} is not a label selector of the form key=value"),
            );
        }
        if self.extensions_yaml.len() > MAX_RAW_BYTES {
            problem(
                &mut out,
                &f("extensions_yaml"),
                format!("at most {} KiB", MAX_RAW_BYTES / 1024),
            );
        }
        out
    }

    /// These settings with `over`'s non-empty fields taking their place (per-cluster overrides).
    pub fn overridden_by(&self, over: &MeshSettings) -> MeshSettings {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        let list =
            |a: &Vec<String>, b: &Vec<String>| if b.is_empty() { a.clone() } else { b.clone() };
        let mut env = self.istiod_env.clone();
        env.extend(over.istiod_env.clone());
        MeshSettings {
            distribution: pick(&self.distribution, &over.distribution),
            scaling_profile: pick(&self.scaling_profile, &over.scaling_profile),
            on_conflict: pick(&self.on_conflict, &over.on_conflict),
            trust_domain: pick(&self.trust_domain, &over.trust_domain),
            install_namespace: pick(&self.install_namespace, &over.install_namespace),
            image_repository: pick(&self.image_repository, &over.image_repository),
            image_secrets: list(&self.image_secrets, &over.image_secrets),
            repository_secrets: list(&self.repository_secrets, &over.repository_secrets),
            repository_insecure_skip_verify: over
                .repository_insecure_skip_verify
                .or(self.repository_insecure_skip_verify),
            traffic_capture_mode: pick(&self.traffic_capture_mode, &over.traffic_capture_mode),
            cni_conf_dir: pick(&self.cni_conf_dir, &over.cni_conf_dir),
            cni_bin_dir: pick(&self.cni_bin_dir, &over.cni_bin_dir),
            istiod_env: env,
            discovery_selectors: list(&self.discovery_selectors, &over.discovery_selectors),
            extensions_yaml: if over.extensions_yaml.trim().is_empty() {
                self.extensions_yaml.clone()
            } else {
                over.extensions_yaml.clone()
            },
        }
    }
}

/// Every problem of a request's settings: the shared ones, then each cluster's (fields named
/// `shared.<field>` and `<cluster>.<field>`), including overrides for clusters not chosen.
pub fn settings_problems(
    shared: &MeshSettings,
    per_cluster: &BTreeMap<ClusterName, ClusterSettings>,
    chosen: &[ClusterName],
) -> Vec<SettingProblem> {
    let mut out = shared.problems("shared.");
    for (name, c) in per_cluster {
        if !chosen.contains(name) {
            problem(
                &mut out,
                &format!("{name}.cluster"),
                format!("settings are given for {name}, which is not among the chosen clusters"),
            );
        }
        out.extend(c.mesh.problems(&format!("{name}.")));
        if let Some(a) = &c.address_override
            && !valid_address(a)
        {
            problem(
                &mut out,
                &format!("{name}.address_override"),
                format!("{a:?} is neither an IP address nor a DNS name"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_settings_have_no_problems() {
        let s = MeshSettings {
            distribution: Some("FIPS".into()),
            scaling_profile: Some("Large".into()),
            on_conflict: Some("Abort".into()),
            trust_domain: Some("prod.example.com".into()),
            install_namespace: Some("istio-prod".into()),
            image_repository: Some("registry.example.com:5000/istio".into()),
            image_secrets: vec!["pull-secret".into()],
            repository_secrets: vec!["repo.creds".into()],
            repository_insecure_skip_verify: Some(false),
            istiod_env: [("PILOT_TRACE_SAMPLING".to_string(), "1.0".to_string())].into(),
            traffic_capture_mode: Some("Auto".into()),
            cni_conf_dir: Some("/var/lib/rancher/k3s/agent/etc/cni/net.d".into()),
            cni_bin_dir: Some("/opt/cni/bin".into()),
            discovery_selectors: vec!["istio.io/rev=gloo".into(), "team=payments".into()],
            extensions_yaml: "stable: |\n  serviceMeshController: {}\n".into(),
        };
        assert_eq!(s.problems("shared."), vec![]);
    }

    #[test]
    fn each_bad_field_is_named_with_the_reason() {
        let s = MeshSettings {
            distribution: Some("Fips".into()),
            scaling_profile: Some("Huge".into()),
            on_conflict: Some("Overwrite".into()),
            trust_domain: Some("Prod Domain".into()),
            install_namespace: Some("Istio_System".into()),
            image_repository: Some("Registry/Istio".into()),
            image_secrets: vec!["Bad_Name".into()],
            repository_secrets: vec!["ok".into()],
            repository_insecure_skip_verify: None,
            istiod_env: [
                ("1BAD".to_string(), "x".to_string()),
                (
                    "PEERING_AUTOMATIC_LOCAL_GATEWAY".to_string(),
                    "true".to_string(),
                ),
            ]
            .into(),
            traffic_capture_mode: Some("InitContainer".into()),
            cni_conf_dir: Some("etc/cni".into()),
            cni_bin_dir: Some("/opt/cni bin".into()),
            discovery_selectors: vec!["team".into()],
            extensions_yaml: String::new(),
        };
        let p = s.problems("c1.");
        let fields: Vec<&str> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "c1.distribution",
                "c1.scaling_profile",
                "c1.on_conflict",
                "c1.traffic_capture_mode",
                "c1.cni_conf_dir",
                "c1.cni_bin_dir",
                "c1.trust_domain",
                "c1.install_namespace",
                "c1.image_repository",
                "c1.image_secrets",
                "c1.istiod_env",
                "c1.istiod_env",
                "c1.discovery_selectors"
            ]
        );
        assert!(p[0].message.contains("Standard, FIPS"));
        assert!(p[3].message.contains("Sidecar"), "{:?}", p[3]);
        assert!(p[4].message.contains("absolute"), "{:?}", p[4]);
        assert!(p[7].message.contains("not a namespace name"), "{:?}", p[7]);
        assert!(p[11].message.contains("linking choice"), "{:?}", p[11]);
        for taken in ["kube-system", "default", "gloo-mesh", "istio-eastwest"] {
            assert!(
                install_namespace_problem(taken).is_some_and(|m| m.contains("is taken")),
                "{taken}"
            );
        }
        for fine in ["istio-system", "gloo-system", "istio-prod"] {
            assert_eq!(install_namespace_problem(fine), None, "{fine}");
        }
    }

    #[test]
    fn per_cluster_values_override_the_shared_ones() {
        let shared = MeshSettings {
            scaling_profile: Some("Large".into()),
            image_secrets: vec!["a".into()],
            istiod_env: [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "1".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let over = MeshSettings {
            trust_domain: Some("east".into()),
            istiod_env: [("B".to_string(), "2".to_string())].into(),
            ..Default::default()
        };
        let m = shared.overridden_by(&over);
        assert_eq!(m.scaling_profile.as_deref(), Some("Large"));
        assert_eq!(m.trust_domain.as_deref(), Some("east"));
        assert_eq!(m.image_secrets, ["a"]);
        assert_eq!(m.istiod_env["A"], "1");
        assert_eq!(m.istiod_env["B"], "2");
    }

    #[test]
    fn a_cluster_without_its_own_eastwest_variant_takes_the_shared_one() {
        let own = ClusterSettings {
            eastwest: Some(EastWest::NodePort),
            ..Default::default()
        };
        assert_eq!(own.eastwest_or(EastWest::LoadBalancer), EastWest::NodePort);
        assert_eq!(
            ClusterSettings::default().eastwest_or(EastWest::NodePort),
            EastWest::NodePort
        );
        // Requests stored before the field existed still read, as "the shared choice".
        let old: ClusterSettings =
            serde_json::from_str(r#"{"address_override":"10.0.0.7"}"#).expect("old form");
        assert_eq!(old.eastwest, None);
        let json = serde_json::to_string(&own).expect("json");
        assert!(json.contains(r#""eastwest":"node-port""#), "{json}");
    }

    #[test]
    fn an_unknown_eastwest_variant_is_refused_in_the_form_and_on_the_wire() {
        for v in [None, Some(EastWest::LoadBalancer), Some(EastWest::NodePort)] {
            assert_eq!(parse_eastwest(eastwest_value(v)), Ok(v));
        }
        assert!(
            parse_eastwest("ingress")
                .expect_err("refused")
                .contains("load-balancer or node-port")
        );
        assert!(serde_json::from_str::<ClusterSettings>(r#"{"eastwest":"ingress"}"#).is_err());
    }

    #[test]
    fn an_eastwest_override_for_an_unchosen_cluster_is_refused() {
        let c1 = ClusterName::new("c1").expect("name");
        let c9 = ClusterName::new("c9").expect("name");
        let nodeport = ClusterSettings {
            eastwest: Some(EastWest::NodePort),
            ..Default::default()
        };
        let per: BTreeMap<_, _> = [(c1.clone(), nodeport.clone()), (c9, nodeport)].into();
        let p = settings_problems(&MeshSettings::default(), &per, &[c1]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "c9.cluster");
    }

    #[test]
    fn overrides_for_unchosen_clusters_and_bad_addresses_are_refused() {
        let c1 = ClusterName::new("c1").expect("name");
        let c9 = ClusterName::new("c9").expect("name");
        let per: BTreeMap<_, _> = [
            (
                c1.clone(),
                ClusterSettings {
                    address_override: Some("not an address".into()),
                    ..Default::default()
                },
            ),
            (c9.clone(), ClusterSettings::default()),
        ]
        .into();
        let p = settings_problems(&MeshSettings::default(), &per, &[c1]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].field, "c1.address_override");
        assert_eq!(p[1].field, "c9.cluster");
        assert!(
            valid_address("10.0.0.7")
                && valid_address("fd00::1")
                && valid_address("ew.example.com")
        );
    }
}
