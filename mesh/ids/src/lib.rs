//! Validated identifiers. A cluster or network name is a DNS-1123 label: it becomes part of object names
//! (`istio-remote-peer-<cluster>`), label values and the trust domain, so it must be valid in all of them.

use std::fmt;

pub mod graph;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {reason}")]
pub struct InvalidName {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Parses "1.28.1-patch0" or "1.28.1-solo" into (1, 28, 1).
pub fn istio_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// The Istio version rules (§9 P14): at least 1.24.3; never 1.26.0, nor 1.26.1 without a `-patchN` suffix
/// (the guide: "use patch version 1.26.1-patch0 and later only").
pub fn version_rule(v: &str) -> Result<(), String> {
    let Some(ver) = istio_version(v) else {
        return Err(format!(
            "{v:?} is not an Istio version such as 1.28.1-patch0"
        ));
    };
    if ver < (1, 24, 3) {
        return Err(format!(
            "Istio {v} is too old: multicluster peering needs 1.24.3 or newer"
        ));
    }
    let patched = v
        .split_once('-')
        .is_some_and(|(_, suffix)| suffix.starts_with("patch"));
    if ver.0 == 1 && ver.1 == 26 && (ver.2 == 0 || (ver.2 == 1 && !patched)) {
        return Err(format!(
            "Istio {v} must not be used (known multicluster defects in 1.26.0 and 1.26.1): use 1.26.1-patch0 or newer"
        ));
    }
    Ok(())
}

/// The rule of an upgrade (or downgrade) of a running mesh: the target version follows [`version_rule`] and
/// moves at most one minor version from the one running (Istio supports skew of one minor between istiod,
/// ztunnel and peers while the rollout goes cluster by cluster).
pub fn upgrade_rule(from: &str, to: &str) -> Result<(), String> {
    version_rule(to)?;
    let (Some(a), Some(b)) = (istio_version(from), istio_version(to)) else {
        return Err(format!("{from:?} is not an Istio version"));
    };
    if a.0 != b.0 || a.1.abs_diff(b.1) > 1 {
        return Err(format!(
            "{from} → {to} skips a minor version: upgrade one minor at a time (e.g. {}.{}.x first)",
            a.0,
            if b.1 > a.1 { a.1 + 1 } else { a.1 - 1 }
        ));
    }
    Ok(())
}

/// The first Istio minor with NodePort peering (§1.2, §9 P14: "1.28 adds NodePort"; alpha in 1.28, the
/// guide says).
pub const NODEPORT_SINCE: (u64, u64) = (1, 28);

/// The NodePort east-west variant's version rule: the mesh's Istio must be 1.28 or newer.
pub fn nodeport_rule(v: &str) -> Result<(), String> {
    match istio_version(v) {
        Some((a, b, _)) if (a, b) >= NODEPORT_SINCE => Ok(()),
        Some(_) => Err(format!(
            "NodePort peering needs Solo Istio {}.{} or newer (alpha there); {v} has no NodePort support: choose LoadBalancer, or a newer version",
            NODEPORT_SINCE.0, NODEPORT_SINCE.1
        )),
        None => Err(format!(
            "{v:?} is not an Istio version such as 1.28.1-patch0"
        )),
    }
}

/// Checks a DNS-1123 label: 1–63 characters, lowercase letters, digits and '-', starting and ending with a
/// letter or digit.
pub fn check_dns1123_label(what: &'static str, value: &str) -> Result<(), InvalidName> {
    let err = |reason| {
        Err(InvalidName {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return err("it is empty");
    }
    if value.len() > 63 {
        return err("it is longer than 63 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return err("use only lowercase letters, digits and '-'");
    }
    if value.starts_with('-') || value.ends_with('-') {
        return err("it must start and end with a letter or digit");
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        ///
        /// Shared text: a clone is a count raised, not a copy (the topology's graph names both clusters of
        /// each of its links, 9,900 of them in a full mesh of 100).
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            pub fn new(value: &str) -> Result<Self, InvalidName> {
                check_dns1123_label($what, value)?;
                Ok(Self(value.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name of a cluster in Meshdeck's registry; also its mesh cluster ID by default.
    ClusterName,
    "cluster name"
);
name_type!(
    /// The mesh network of a cluster (`topology.istio.io/network`).
    NetworkName,
    "network name"
);

/// The default network of a cluster is its name (the rules are the same).
impl From<&ClusterName> for NetworkName {
    fn from(c: &ClusterName) -> Self {
        NetworkName(c.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodeport_needs_1_28() {
        assert!(nodeport_rule("1.28.0").is_ok());
        assert!(nodeport_rule("1.28.1-patch0").is_ok());
        assert!(nodeport_rule("1.29.0-solo").is_ok());
        let e = nodeport_rule("1.27.3").expect_err("1.27 has no NodePort");
        assert!(
            e.contains("1.28 or newer") && e.contains("LoadBalancer"),
            "{e}"
        );
        assert!(nodeport_rule("latest").is_err());
    }

    #[test]
    fn dns1123_labels_are_accepted_and_everything_else_refused_with_a_reason() {
        for ok in ["c1", "cluster-east-1", "a", &"a".repeat(63)] {
            assert!(ClusterName::new(ok).is_ok(), "{ok}");
        }
        for (bad, reason) in [
            ("", "empty"),
            ("Cluster1", "lowercase"),
            ("c_1", "lowercase"),
            ("-c1", "start and end"),
            ("c1-", "start and end"),
            ("c1.example", "lowercase"),
            (&"a".repeat(64), "63"),
        ] {
            let e = ClusterName::new(bad).expect_err(bad);
            assert!(e.to_string().contains(reason), "{bad}: {e}");
            assert!(e.to_string().starts_with("cluster name"), "{e}");
        }
    }

    #[test]
    fn names_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<NetworkName>("\"net-1\"").is_ok());
        assert!(serde_json::from_str::<NetworkName>("\"Net 1\"").is_err());
    }
}
