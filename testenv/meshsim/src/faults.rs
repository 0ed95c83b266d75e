//! Fault knobs, per cluster, settable at run time: data keys of ConfigMap `kube-system/meshsim-faults`
//! (testenv/up creates it empty). Each knob reproduces a pain point of mesh-spec.md §9.
//!
//! | key | effect |
//! |---|---|
//! | `lb-never-assigned: "true"` | the cloud LB controller never assigns an address (§9 P1) |
//! | `lb-address-type: Hostname` | LB addresses are hostnames instead of IPs (§9 P12) |
//! | `license-invalid: "true"` | the license is not valid for multicluster (§9 P7) |
//! | `operator-fail: <reason>` | the operator fails every ServiceMeshController with that reason (§4.2) |
//! | `peering-delay-seconds: <n>` | peer gateways in this cluster connect only after n seconds (§9 P12) |
//! | `istiod-not-ready: "true"` | istiod pods never become Ready (§3 check 3) |

use std::time::Duration;

use crate::cluster::Cluster;

pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "meshsim-faults";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Faults {
    pub lb_never_assigned: bool,
    pub lb_hostname: bool,
    pub license_invalid: bool,
    pub operator_fail: Option<String>,
    pub peering_delay: Duration,
    pub istiod_not_ready: bool,
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )
    })
}

impl Faults {
    pub fn read(cluster: &Cluster) -> Faults {
        let Some(cm) = cluster.configmap(NAMESPACE, NAME) else {
            return Faults::default();
        };
        let Some(d) = cm.data.as_ref() else {
            return Faults::default();
        };
        Faults {
            lb_never_assigned: truthy(d.get("lb-never-assigned")),
            lb_hostname: d
                .get("lb-address-type")
                .is_some_and(|v| v.eq_ignore_ascii_case("hostname")),
            license_invalid: truthy(d.get("license-invalid")),
            operator_fail: d
                .get("operator-fail")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            peering_delay: d
                .get("peering-delay-seconds")
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or_default(),
            istiod_not_ready: truthy(d.get("istiod-not-ready")),
        }
    }
}
