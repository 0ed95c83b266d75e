//! The shared root of trust (mesh-spec.md §6): a root CA — generated here or imported — and one
//! intermediate per cluster, shaped like Istio's `tools/certs` recipe (§6.2: O=Istio, CN=Intermediate CA,
//! L=<cluster>, CA with pathlen 0, SAN istiod.istio-system.svc, SHA-256), written as the `cacerts` Secret
//! (§6.1). The root key never goes to a cluster; only each cluster's intermediate key does.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ids::ClusterName;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the root certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("the root key cannot be read: {0}")]
    BadKey(String),
    #[error("the root certificate is not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotCa,
    #[error("the root key does not belong to the root certificate")]
    KeyMismatch,
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("reading Secret istio-system/cacerts failed ({problem}): {advice}")]
    Read {
        problem: String,
        advice: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Validity of generated certificates, as in the recipe (§6.2: 3650 days).
pub const DEFAULT_DAYS: i64 = 3650;

/// The key algorithm of a root and of the intermediates it issues (§6.2: Istio's recipe uses RSA 4096;
/// ECDSA P-256 is smaller and much faster to generate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    pub fn label(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::Rsa4096 => "RSA 4096",
        }
    }

    /// A new key of this algorithm. RSA 4096 takes a second or more: call it off the async workers.
    fn generate(self) -> Result<KeyPair> {
        match self {
            KeyAlgorithm::EcdsaP256 => {
                KeyPair::generate().map_err(|e| Error::Generate(e.to_string()))
            }
            KeyAlgorithm::Rsa4096 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 4096)
                    .map_err(|e| Error::Generate(e.to_string()))?;
                let pem = key
                    .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                    .map_err(|e| Error::Generate(e.to_string()))?;
                KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
                    .map_err(|e| Error::Generate(e.to_string()))
            }
        }
    }

    /// The algorithm of an existing key.
    fn of(key: &KeyPair) -> KeyAlgorithm {
        if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
            KeyAlgorithm::Rsa4096
        } else {
            KeyAlgorithm::EcdsaP256
        }
    }
}

/// A root CA. The key is a secret: store it sealed, never log it, never send it to a cluster.
#[derive(Clone)]
pub struct RootCa {
    pub cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("fingerprint", &fingerprint(&self.cert_pem))
            .finish_non_exhaustive()
    }
}

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
    Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "cacerts", "namespace": "istio-system"},
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

/// What a certificate says about itself, as shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// The subject and validity of the first certificate of a PEM text.
pub fn describe(pem_text: &str) -> Result<CertInfo> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let block =
        ::pem::parse(pem_text.as_bytes()).map_err(|e| Error::BadCertificate(e.to_string()))?;
    let (_, x) = X509Certificate::from_der(block.contents())
        .map_err(|e| Error::BadCertificate(e.to_string()))?;
    Ok(CertInfo {
        subject: x.subject().to_string(),
        not_before: x.validity().not_before.timestamp(),
        not_after: x.validity().not_after.timestamp(),
    })
}

/// A Unix time as RFC 3339 (UTC), for messages; the number itself when it is out of range.
pub fn format_unix(secs: i64) -> String {
    ::time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
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

/// The `cacerts` Secret of a cluster, inspected (see [`inspect_cacerts`]); `None` when it has none yet.
pub async fn read_cacerts(
    client: &kube::Client,
    chosen_root: Option<&str>,
    now: i64,
) -> Result<Option<CacertsInfo>> {
    let api =
        kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "istio-system");
    let secret = crate::apply::retrying(|| api.get_opt("cacerts"))
        .await
        .map_err(|e| Error::Read {
            problem: crate::connect::classify(&e).to_string(),
            advice: match &e {
                kube::Error::Api(s) if s.code == 403 => {
                    "grant Meshdeck's credentials get on Secrets in istio-system, then look again"
                }
                _ => "re-test the cluster under Clusters, then look again",
            },
        })?;
    Ok(secret.map(|s| inspect_cacerts(&s, chosen_root, now)))
}

/// The first 16 hex digits of a fingerprint, as shown to users.
pub fn short(fingerprint: &str) -> String {
    fingerprint.chars().take(16).collect::<String>() + "…"
}

/// A CA certificate of the recipe (§6.2): the subject `dn`, CA with `constraints`, the recipe's key usages
/// (digitalSignature, nonRepudiation, keyEncipherment, keyCertSign), valid `days` from now.
fn ca_params(
    mut params: CertificateParams,
    dn: &[(DnType, &str)],
    constraints: BasicConstraints,
    days: i64,
) -> CertificateParams {
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in dn {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let now = ::time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
    params
}

impl RootCa {
    /// A new ECDSA P-256 root, O=Istio, CN=Root CA (§6.2), valid `days`.
    pub fn generate(days: i64) -> Result<RootCa> {
        RootCa::generate_with(KeyAlgorithm::EcdsaP256, days)
    }

    /// A new root with a key of `algorithm`, O=Istio, CN=Root CA (§6.2), valid `days`.
    pub fn generate_with(algorithm: KeyAlgorithm, days: i64) -> Result<RootCa> {
        let key = algorithm.generate()?;
        let params = ca_params(
            CertificateParams::default(),
            &[
                (DnType::OrganizationName, "Istio"),
                (DnType::CommonName, "Root CA"),
            ],
            BasicConstraints::Unconstrained,
            days,
        );
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::Generate(e.to_string()))?;
        Ok(RootCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// An existing root (PEM certificate and PKCS#8 key), checked: a CA certificate whose key is this key.
    pub fn import(cert_pem: &str, key_pem: &str) -> Result<RootCa> {
        use rcgen::PublicKeyData;
        use x509_parser::prelude::{FromDer, X509Certificate};
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::BadKey(e.to_string()))?;
        let block =
            ::pem::parse(cert_pem.as_bytes()).map_err(|e| Error::BadCertificate(e.to_string()))?;
        let (_, x) = X509Certificate::from_der(block.contents())
            .map_err(|e| Error::BadCertificate(e.to_string()))?;
        if !x.is_ca() {
            return Err(Error::NotCa);
        }
        if x.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(Error::KeyMismatch);
        }
        Ok(RootCa {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    /// The root key, for the admin's export only.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The key algorithm of this root (its intermediates use the same).
    pub fn algorithm(&self) -> KeyAlgorithm {
        KeyPair::from_pem(&self.key_pem)
            .map(|k| KeyAlgorithm::of(&k))
            .unwrap_or_default()
    }

    /// Issues the intermediate of one cluster (§6.2), with a key of the root's algorithm. With RSA this takes a
    /// second or more: call it off the async workers.
    pub fn intermediate(&self, cluster: &ClusterName, days: i64) -> Result<Intermediate> {
        let root_key =
            KeyPair::from_pem(&self.key_pem).map_err(|e| Error::BadKey(e.to_string()))?;
        let key = KeyAlgorithm::of(&root_key).generate()?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, root_key)
            .map_err(|e| Error::BadCertificate(e.to_string()))?;
        let san = CertificateParams::new(vec!["istiod.istio-system.svc".to_string()])
            .map_err(|e| Error::Generate(e.to_string()))?;
        let mut params = ca_params(
            san,
            &[
                (DnType::OrganizationName, "Istio"),
                (DnType::CommonName, "Intermediate CA"),
                (DnType::LocalityName, cluster.as_str()),
            ],
            BasicConstraints::Constrained(0),
            days,
        );
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| Error::Generate(e.to_string()))?;
        let cert_pem = cert.pem();
        Ok(Intermediate {
            cert_chain_pem: format!("{cert_pem}{}", self.cert_pem),
            cert_pem,
            key_pem: key.serialize_pem(),
            root_pem: self.cert_pem.clone(),
        })
    }
}

/// One cluster's signing CA, as `cacerts` carries it.
pub struct Intermediate {
    pub cert_pem: String,
    key_pem: String,
    pub cert_chain_pem: String,
    pub root_pem: String,
}

impl Intermediate {
    /// The `cacerts` Secret of §6.1 (namespace istio-system), created before istiod exists.
    pub fn cacerts_secret(&self) -> Value {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": "istio-system"},
            "data": {
                "ca-cert.pem": b(&self.cert_pem),
                "ca-key.pem": b(&self.key_pem),
                "root-cert.pem": b(&self.root_pem),
                "cert-chain.pem": b(&self.cert_chain_pem),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn der(pem_text: &str) -> Vec<u8> {
        ::pem::parse(pem_text.as_bytes())
            .expect("pem")
            .contents()
            .to_vec()
    }

    #[test]
    fn intermediates_follow_the_istio_recipe_and_chain_to_the_root() {
        let root = RootCa::generate(DEFAULT_DAYS).expect("root");
        let c1 = ClusterName::new("cluster1").expect("name");
        let i = root.intermediate(&c1, DEFAULT_DAYS).expect("intermediate");
        let root_der = der(&root.cert_pem);
        let cert_der = der(&i.cert_pem);
        let (_, root_x) = X509Certificate::from_der(&root_der).expect("root x509");
        let (_, x) = X509Certificate::from_der(&cert_der).expect("x509");
        x.verify_signature(Some(root_x.public_key()))
            .expect("signed by the root");
        let bc = x
            .basic_constraints()
            .expect("ext")
            .expect("basicConstraints")
            .value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let subject = x.subject().to_string();
        assert!(
            subject.contains("O=Istio")
                && subject.contains("CN=Intermediate CA")
                && subject.contains("L=cluster1"),
            "{subject}"
        );
        let san = x
            .subject_alternative_name()
            .expect("ext")
            .expect("san")
            .value;
        assert!(
            san.general_names
                .iter()
                .any(|g| matches!(g, GeneralName::DNSName("istiod.istio-system.svc")))
        );
        let days =
            (x.validity().not_after.timestamp() - x.validity().not_before.timestamp()) / 86400;
        assert!((3649..=3651).contains(&days), "{days}");
        assert!(
            i.cert_chain_pem.starts_with(&i.cert_pem) && i.cert_chain_pem.ends_with(&root.cert_pem)
        );
        let secret = i.cacerts_secret();
        let keys: Vec<&String> = secret["data"].as_object().expect("data").keys().collect();
        assert_eq!(
            keys,
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem"
            ]
        );
        assert!(
            !format!("{root:?}").contains("PRIVATE KEY"),
            "Debug hides the key"
        );
    }

    #[test]
    fn an_rsa_4096_root_issues_rsa_4096_intermediates() {
        let root = RootCa::generate_with(KeyAlgorithm::Rsa4096, 30).expect("rsa root");
        assert_eq!(root.algorithm(), KeyAlgorithm::Rsa4096);
        let info = describe(&root.cert_pem).expect("describe");
        assert!(info.subject.contains("CN=Root CA"), "{}", info.subject);
        assert!((29..=31).contains(&((info.not_after - info.not_before) / 86400)));
        let again = RootCa::import(&root.cert_pem, root.key_pem()).expect("import");
        assert_eq!(again.algorithm(), KeyAlgorithm::Rsa4096);
        let c = ClusterName::new("east").expect("name");
        let i = root.intermediate(&c, 30).expect("intermediate");
        let root_der = der(&root.cert_pem);
        let cert_der = der(&i.cert_pem);
        let (_, root_x) = X509Certificate::from_der(&root_der).expect("root x509");
        let (_, x) = X509Certificate::from_der(&cert_der).expect("x509");
        x.verify_signature(Some(root_x.public_key()))
            .expect("signed by the root");
        for cert in [&root_x, &x] {
            match cert.public_key().parsed().expect("public key") {
                x509_parser::public_key::PublicKey::RSA(k) => {
                    assert_eq!(k.key_size(), 4096)
                }
                other => panic!("not RSA: {other:?}"),
            }
        }
        assert_eq!(
            x.signature_algorithm.algorithm,
            x509_parser::oid_registry::OID_PKCS1_SHA256WITHRSA
        );
    }

    #[test]
    fn an_imported_root_must_be_a_ca_with_its_own_key() {
        let root = RootCa::generate(30).expect("root");
        let again = RootCa::import(&root.cert_pem, root.key_pem()).expect("import");
        assert_eq!(fingerprint(&again.cert_pem), fingerprint(&root.cert_pem));
        let other = RootCa::generate(30).expect("other");
        assert!(matches!(
            RootCa::import(&root.cert_pem, other.key_pem()),
            Err(Error::KeyMismatch)
        ));
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = CertificateParams::new(vec!["x.example".to_string()])
            .expect("params")
            .self_signed(&leaf_key)
            .expect("leaf");
        assert!(matches!(
            RootCa::import(&leaf.pem(), &leaf_key.serialize_pem()),
            Err(Error::NotCa)
        ));
        assert!(matches!(
            RootCa::import("not pem", root.key_pem()),
            Err(Error::BadCertificate(_))
        ));
    }

    fn secret_of(v: &Value) -> k8s_openapi::api::core::v1::Secret {
        serde_json::from_value(v.clone()).expect("secret")
    }

    #[test]
    fn cacerts_are_read_without_the_key_and_judged_against_the_chosen_root() {
        let root = RootCa::generate(DEFAULT_DAYS).expect("root");
        let ours = fingerprint(&root.cert_pem).expect("fp");
        let c = ClusterName::new("c3").expect("name");
        let i = root.intermediate(&c, DEFAULT_DAYS).expect("intermediate");
        let secret = secret_of(&i.cacerts_secret());
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
                .cacerts_secret(),
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
        let signing_new = secret_of(&i.cacerts_secret());
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
            .cacerts_secret();
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
            .cacerts_secret();
        v["data"]["ca-cert.pem"] = json!("");
        let info = inspect_cacerts(&secret_of(&v), None, 0);
        assert!(
            info.problems[0].contains("ca-cert.pem is missing"),
            "{:?}",
            info.problems
        );
    }
}
