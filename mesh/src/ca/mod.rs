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

use crate::ids::ClusterName;

mod cacerts;
pub use cacerts::*;

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
    #[error("reading Secret {namespace}/cacerts failed ({problem}): {advice}")]
    Read {
        namespace: String,
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
    /// The `cacerts` Secret of §6.1 in the control plane's `namespace` (istio-system unless the mesh's
    /// `installNamespace` says otherwise), created before istiod exists.
    pub fn cacerts_secret(&self, namespace: &str) -> Value {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "cacerts", "namespace": namespace},
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
        let secret = i.cacerts_secret("istio-system");
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
}
