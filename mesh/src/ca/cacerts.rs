//! A `cacerts` Secret read without its key (§6.1): fingerprints of the roots it trusts, the intermediate and
//! who signed it, how it stands (expiry, another root, a chain that does not verify), and the same Secret
//! rewritten with another root bundle during a rotation.

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Error, Result, short};

/// The SHA-256 fingerprint (lowercase hex) of the first certificate of a PEM text.
pub fn fingerprint(pem_text: &str) -> Option<String> {
    let block = pem::parse_many(pem_text.as_bytes())
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")?;
    Some(
        Sha256::digest(block.contents())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

/// The fingerprint of the root in a `cacerts` Secret (`root-cert.pem`), when it has a readable one.
pub fn secret_root_fingerprint(secret: &k8s_openapi::api::core::v1::Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get("root-cert.pem")
        .and_then(|b| std::str::from_utf8(&b.0).ok())
        .and_then(fingerprint)
}

/// The fingerprints of every certificate of a PEM text (a root bundle during a rotation holds two), in order.
pub fn fingerprints(pem_text: &str) -> Vec<String> {
    certificates(pem_text)
        .iter()
        .map(|der| {
            Sha256::digest(der)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .collect()
}

/// A text key of a Secret's data, when present and UTF-8.
fn secret_text(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
}

/// The roots a `cacerts` Secret trusts (every certificate of `root-cert.pem`, by fingerprint).
pub fn secret_trusted_roots(secret: &k8s_openapi::api::core::v1::Secret) -> Vec<String> {
    secret_text(secret, "root-cert.pem")
        .map(|t| fingerprints(&t))
        .unwrap_or_default()
}

/// Whether the intermediate of a `cacerts` Secret (`ca-cert.pem`) is signed by `root_pem`'s key.
pub fn secret_issued_by(secret: &k8s_openapi::api::core::v1::Secret, root_pem: &str) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (Some(ca), Some(root)) = (
        secret_text(secret, "ca-cert.pem").and_then(|t| certificates(&t).into_iter().next()),
        certificates(root_pem).into_iter().next(),
    ) else {
        return false;
    };
    match (
        X509Certificate::from_der(&ca),
        X509Certificate::from_der(&root),
    ) {
        (Ok((_, c)), Ok((_, r))) => c.verify_signature(Some(r.public_key())).is_ok(),
        _ => false,
    }
}

/// `cacerts` as it is, with `root-cert.pem` replaced by `roots_pem` (a bundle during a rotation) and
/// `cert-chain.pem` ending in the root that signed the intermediate (`signing_root_pem`); its intermediate and
/// key are kept. None when the Secret is not the four-key form of §6.1 that Meshdeck writes.
pub fn cacerts_with_roots(
    secret: &k8s_openapi::api::core::v1::Secret,
    roots_pem: &str,
    signing_root_pem: &str,
) -> Option<Value> {
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let ca = secret_text(secret, "ca-cert.pem")?;
    let key = secret_text(secret, "ca-key.pem")?;
    if certificates(&ca).is_empty() || key.trim().is_empty() {
        return None;
    }
    let chain = format!("{}\n{}", ca.trim_end(), signing_root_pem.trim_end()) + "\n";
    let namespace = secret
        .metadata
        .namespace
        .as_deref()
        .unwrap_or(crate::objects::ISTIO_NAMESPACE);
    Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "cacerts", "namespace": namespace},
        "data": {
            "ca-cert.pem": b(&ca),
            "ca-key.pem": b(&key),
            "root-cert.pem": b(roots_pem),
            "cert-chain.pem": b(&chain),
        }
    }))
}

/// Two roots as one bundle (`root-cert.pem` trusting both), `first` first.
pub fn root_bundle(first: &str, second: &str) -> String {
    format!("{}\n{}\n", first.trim_end(), second.trim_end())
}

/// How far ahead an expiry is reported (`expires within 30 days`).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What a cluster's `cacerts` Secret holds, read without its key (§6.1): the intermediate (`ca-cert.pem`),
/// the root it names (`root-cert.pem`), the public chain, and what is wrong with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacertsInfo {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `ECDSA P-256`, `RSA 4096`, …
    pub key_algorithm: String,
    /// The basicConstraints path length, when the certificate sets one.
    pub pathlen: Option<u32>,
    /// SHA-256 of `root-cert.pem`.
    pub root_fingerprint: Option<String>,
    /// `root-cert.pem` is the console's chosen root (by fingerprint).
    pub root_matches: bool,
    /// The public certificates, intermediate first (`cert-chain.pem`, else `ca-cert.pem` + `root-cert.pem`).
    pub chain_pem: String,
    /// Each problem as a sentence: expired, expires soon, another root, a chain that does not verify.
    pub problems: Vec<String>,
}

/// The certificates of a PEM text, DER each.
fn certificates(pem_text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(pem_text.as_bytes())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
        .collect()
}

fn key_algorithm(x: &x509_parser::certificate::X509Certificate<'_>) -> String {
    use x509_parser::public_key::PublicKey;
    match x.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => format!("RSA {}", k.key_size()),
        Ok(PublicKey::EC(k)) if k.key_size() == 256 => "ECDSA P-256".into(),
        Ok(PublicKey::EC(k)) if k.key_size() == 384 => "ECDSA P-384".into(),
        Ok(PublicKey::EC(k)) => format!("ECDSA ({} bits)", k.key_size()),
        Ok(_) | Err(_) => x.public_key().algorithm.algorithm.to_id_string(),
    }
}

/// Reads a `cacerts` Secret's public parts (`ca-key.pem` is never looked at) and judges them at `now`
/// (Unix seconds) against the console's root `chosen_root` (a fingerprint; `None` when there is none yet).
pub fn inspect_cacerts(
    secret: &k8s_openapi::api::core::v1::Secret,
    chosen_root: Option<&str>,
    now: i64,
) -> CacertsInfo {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let text = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .unwrap_or_default()
    };
    let (ca, root, chain) = (
        text("ca-cert.pem"),
        text("root-cert.pem"),
        text("cert-chain.pem"),
    );
    let root_fingerprint = fingerprint(&root);
    // A bundle (during a rotation) matches when it holds the console's root.
    let trusted = fingerprints(&root);
    let root_matches = chosen_root.is_some_and(|c| trusted.iter().any(|t| t == c));
    let chain_pem = if chain.trim().is_empty() {
        format!("{ca}{root}")
    } else if root.trim().is_empty() || chain.contains(root.trim()) {
        chain.clone()
    } else {
        format!("{chain}{root}")
    };
    let mut info = CacertsInfo {
        subject: String::new(),
        issuer: String::new(),
        not_before: 0,
        not_after: 0,
        key_algorithm: String::new(),
        pathlen: None,
        root_fingerprint: root_fingerprint.clone(),
        root_matches,
        chain_pem,
        problems: vec![],
    };
    let ca_der = certificates(&ca);
    let root_der = certificates(&root);
    let Some(Ok((_, x))) = ca_der.first().map(|d| X509Certificate::from_der(d)) else {
        info.problems
            .push("ca-cert.pem is missing or not a certificate: the chain does not verify".into());
        return info;
    };
    info.subject = x.subject().to_string();
    info.issuer = x.issuer().to_string();
    info.not_before = x.validity().not_before.timestamp();
    info.not_after = x.validity().not_after.timestamp();
    info.key_algorithm = key_algorithm(&x);
    info.pathlen = x
        .basic_constraints()
        .ok()
        .flatten()
        .and_then(|b| b.value.path_len_constraint);
    if info.not_after <= now {
        info.problems.push(format!(
            "expired: the intermediate was valid until {}",
            x.validity().not_after
        ));
    } else if info.not_after - now <= EXPIRY_WARNING_DAYS * 86_400 {
        info.problems.push(format!(
            "expires within {EXPIRY_WARNING_DAYS} days ({}): rotate the intermediate",
            x.validity().not_after
        ));
    }
    if info.not_before > now {
        info.problems
            .push(format!("not valid yet: from {}", x.validity().not_before));
    }
    match (&root_fingerprint, chosen_root) {
        (None, _) => info
            .problems
            .push("root-cert.pem is missing or not a certificate".into()),
        (Some(theirs), Some(ours)) if !root_matches => info.problems.push(format!(
            "root differs: root-cert.pem is {}, the console's root is {}",
            short(theirs),
            short(ours)
        )),
        _ => {}
    }
    // The intermediate must be signed by the root it ships with (directly: the recipe has no further level).
    // During a rotation `root-cert.pem` is a bundle: the intermediate must be signed by one of its roots.
    let verified = (!root_der.is_empty()).then(|| {
        root_der.iter().any(|d| {
            X509Certificate::from_der(d)
                .is_ok_and(|(_, r)| x.verify_signature(Some(r.public_key())).is_ok())
        })
    });
    if verified == Some(false) {
        info.problems
            .push("chain does not verify: ca-cert.pem is not signed by root-cert.pem".into());
    }
    info
}

/// The `cacerts` Secret of a cluster (in its control plane's namespace), inspected (see [`inspect_cacerts`]);
/// `None` when it has none yet.
pub async fn read_cacerts(
    client: &kube::Client,
    chosen_root: Option<&str>,
    now: i64,
) -> Result<Option<CacertsInfo>> {
    let failed = |namespace: &str, e: kube::Error| Error::Read {
        namespace: namespace.to_string(),
        problem: crate::connect::classify(&e).to_string(),
        advice: match &e {
            kube::Error::Api(s) if s.code == 403 => {
                "grant Meshdeck's credentials get on Secrets in the control plane's namespace, then look again"
            }
            _ => "re-test the cluster under Clusters, then look again",
        },
    };
    let namespace = crate::apply::retrying(|| crate::objects::istio_namespace(client))
        .await
        .map_err(|e| failed("<the ServiceMeshController's installNamespace>", e))?;
    let api =
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), &namespace);
    let secret = crate::apply::retrying(|| api.get_opt("cacerts"))
        .await
        .map_err(|e| failed(&namespace, e))?;
    Ok(secret.map(|s| inspect_cacerts(&s, chosen_root, now)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{DEFAULT_DAYS, RootCa};
    use crate::ids::ClusterName;

    fn secret_of(v: &Value) -> k8s_openapi::api::core::v1::Secret {
        serde_json::from_value(v.clone()).expect("secret")
    }

    #[test]
    fn cacerts_are_read_without_the_key_and_judged_against_the_chosen_root() {
        let root = RootCa::generate(DEFAULT_DAYS).expect("root");
        let ours = fingerprint(&root.cert_pem).expect("fp");
        let c = ClusterName::new("c3").expect("name");
        let i = root.intermediate(&c, DEFAULT_DAYS).expect("intermediate");
        let secret = secret_of(&i.cacerts_secret("istio-system"));
        let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
        let info = inspect_cacerts(&secret, Some(&ours), now);
        assert_eq!(info.problems, Vec::<String>::new());
        assert!(info.subject.contains("L=c3"), "{}", info.subject);
        assert!(info.issuer.contains("CN=Root CA"), "{}", info.issuer);
        assert_eq!(info.key_algorithm, "ECDSA P-256");
        assert_eq!(info.pathlen, Some(0));
        assert!(info.root_matches);
        assert_eq!(info.root_fingerprint.as_deref(), Some(ours.as_str()));
        assert_eq!(info.chain_pem, i.cert_chain_pem);
        assert!(!info.chain_pem.contains("PRIVATE KEY"));

        // Another root: named, with both fingerprints.
        let other = RootCa::generate(DEFAULT_DAYS).expect("other");
        let theirs = fingerprint(&other.cert_pem).expect("fp");
        let info = inspect_cacerts(&secret, Some(&theirs), now);
        assert!(!info.root_matches);
        assert!(
            info.problems[0].starts_with("root differs"),
            "{:?}",
            info.problems
        );

        // Close to the end, and past it.
        let soon = inspect_cacerts(&secret, Some(&ours), info.not_after - 86_400);
        assert!(
            soon.problems[0].starts_with("expires within 30 days"),
            "{:?}",
            soon.problems
        );
        let late = inspect_cacerts(&secret, Some(&ours), info.not_after + 1);
        assert!(
            late.problems[0].starts_with("expired"),
            "{:?}",
            late.problems
        );
    }

    #[test]
    fn a_rotation_bundle_keeps_the_intermediate_and_verifies_against_either_root() {
        let (old, new) = (
            RootCa::generate(DEFAULT_DAYS).expect("old"),
            RootCa::generate(DEFAULT_DAYS).expect("new"),
        );
        let (old_fp, new_fp) = (
            fingerprint(&old.cert_pem).expect("fp"),
            fingerprint(&new.cert_pem).expect("fp"),
        );
        let c = ClusterName::new("c1").expect("name");
        let live = secret_of(
            &old.intermediate(&c, DEFAULT_DAYS)
                .expect("i")
                .cacerts_secret("istio-system"),
        );
        assert!(secret_issued_by(&live, &old.cert_pem));
        assert!(!secret_issued_by(&live, &new.cert_pem));
        assert_eq!(secret_trusted_roots(&live), std::slice::from_ref(&old_fp));

        // Trust both: the same intermediate and key, a bundle of the two roots, the old one first.
        let both = secret_of(
            &cacerts_with_roots(
                &live,
                &root_bundle(&old.cert_pem, &new.cert_pem),
                &old.cert_pem,
            )
            .expect("four keys"),
        );
        assert_eq!(
            secret_trusted_roots(&both),
            [old_fp.clone(), new_fp.clone()]
        );
        let data = |s: &k8s_openapi::api::core::v1::Secret, k: &str| {
            s.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.clone())
        };
        assert_eq!(data(&both, "ca-cert.pem"), data(&live, "ca-cert.pem"));
        assert_eq!(data(&both, "ca-key.pem"), data(&live, "ca-key.pem"));
        let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
        // Judged against either root, the bundle holds it and the chain verifies.
        for chosen in [&old_fp, &new_fp] {
            let info = inspect_cacerts(&both, Some(chosen), now);
            assert!(
                info.root_matches && info.problems.is_empty(),
                "{:?}",
                info.problems
            );
        }
        // Signed by the new root, the new root first: still verifies; a third root is not in the bundle.
        let mut i = new.intermediate(&c, DEFAULT_DAYS).expect("i");
        i.root_pem = root_bundle(&new.cert_pem, &old.cert_pem);
        let signing_new = secret_of(&i.cacerts_secret("istio-system"));
        assert!(secret_issued_by(&signing_new, &new.cert_pem));
        assert!(
            inspect_cacerts(&signing_new, Some(&old_fp), now)
                .problems
                .is_empty()
        );
        let third = fingerprint(&RootCa::generate(DEFAULT_DAYS).expect("r").cert_pem).expect("fp");
        assert!(!inspect_cacerts(&signing_new, Some(&third), now).root_matches);
        // A Secret without the intermediate's key is not rewritten.
        let mut partial = live.clone();
        partial.data.as_mut().expect("data").remove("ca-key.pem");
        assert_eq!(
            cacerts_with_roots(&partial, &new.cert_pem, &new.cert_pem),
            None
        );
    }

    #[test]
    fn an_intermediate_not_signed_by_its_root_does_not_verify() {
        let root = RootCa::generate(30).expect("root");
        let other = RootCa::generate(30).expect("other");
        let c = ClusterName::new("c3").expect("name");
        let mut v = root
            .intermediate(&c, 30)
            .expect("intermediate")
            .cacerts_secret("istio-system");
        // root-cert.pem replaced by another root: the intermediate does not chain to it.
        v["data"]["root-cert.pem"] =
            json!(base64::engine::general_purpose::STANDARD.encode(&other.cert_pem));
        let ours = fingerprint(&other.cert_pem);
        let info = inspect_cacerts(
            &secret_of(&v),
            ours.as_deref(),
            ::time::OffsetDateTime::now_utc().unix_timestamp(),
        );
        assert!(info.root_matches);
        assert!(
            info.problems
                .iter()
                .any(|p| p.starts_with("chain does not verify")),
            "{:?}",
            info.problems
        );
        let mut v = root
            .intermediate(&c, 30)
            .expect("intermediate")
            .cacerts_secret("istio-system");
        v["data"]["ca-cert.pem"] = json!("");
        let info = inspect_cacerts(&secret_of(&v), None, 0);
        assert!(
            info.problems[0].contains("ca-cert.pem is missing"),
            "{:?}",
            info.problems
        );
    }
}
