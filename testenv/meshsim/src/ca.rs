//! Roots of trust as istiod sees them at start-up (mesh-spec.md §6.1): a plugged-in `cacerts` bundle, or
//! else a self-signed root of its own kept in `istio-ca-secret`.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

/// The SHA-256 fingerprint (lowercase hex) of the first certificate in a PEM text.
pub fn fingerprint(pem_text: &str) -> Option<String> {
    let block = pem::parse_many(pem_text.as_bytes())
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")?;
    let digest = Sha256::digest(block.contents());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn data(secret: &Secret) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in secret.data.iter().flatten() {
        out.insert(k.clone(), String::from_utf8_lossy(&v.0).into_owned());
    }
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// What istiod finds in `cacerts` when it starts (§6.1).
#[derive(Debug, PartialEq)]
pub enum Plugged {
    /// A complete bundle: the root certificate PEM to publish.
    Root(String),
    /// The bundle is there but istiod refuses it; it does not start.
    Broken(String),
    /// `istio-generated` key present: istiod treats it as self-signed.
    SelfSigned,
}

/// Reads a `cacerts` Secret as istiod does at start-up (§6.1: the four keys, or the `tls.crt`/`tls.key`/
/// `ca.crt` form; an incomplete bundle stops istiod; the intermediate must be issued by the root).
pub fn read_cacerts(secret: &Secret) -> Plugged {
    let d = data(secret);
    if d.contains_key("istio-generated") {
        return Plugged::SelfSigned;
    }
    let (cert, key, root) = if d.contains_key("tls.crt") {
        (d.get("tls.crt"), d.get("tls.key"), d.get("ca.crt"))
    } else {
        (
            d.get("ca-cert.pem"),
            d.get("ca-key.pem"),
            d.get("root-cert.pem"),
        )
    };
    let (Some(cert), Some(key), Some(root)) = (cert, key, root) else {
        return Plugged::Broken("incomplete signing CA bundle detected".into());
    };
    if !d.contains_key("tls.crt") && !d.contains_key("cert-chain.pem") {
        return Plugged::Broken("incomplete signing CA bundle detected".into());
    }
    if pem::parse(key.as_bytes()).is_err() {
        return Plugged::Broken("failed to parse the CA private key ca-key.pem".into());
    }
    let roots = all_certs(root);
    let (Some(cert_der), false) = (first_cert(cert), roots.is_empty()) else {
        return Plugged::Broken("failed to parse the CA certificates".into());
    };
    // `root-cert.pem` may hold several roots: istiod builds a certificate pool of every root in it and
    // verifies the signing certificate against that pool (§6.1, S2 `security/pkg/pki/util/keycertbundle.go`
    // `VerifyAndSetAll`), and serves the whole bundle as the roots workloads trust — how a root is rotated.
    let mut last = String::new();
    for root_der in &roots {
        match verify_issued_by(&cert_der, root_der) {
            Ok(()) => return Plugged::Root(root.clone()),
            Err(e) => last = e,
        }
    }
    Plugged::Broken(last)
}

fn all_certs(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text.as_bytes())
        .map(|v| {
            v.into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(|p| p.contents().to_vec())
                .collect()
        })
        .unwrap_or_default()
}

fn first_cert(text: &str) -> Option<Vec<u8>> {
    pem::parse_many(text.as_bytes())
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
}

/// istiod verifies the signing certificate against the root at start-up; so does the simulator: the
/// signature must verify with the root's key and the root must be a CA.
fn verify_issued_by(cert_der: &[u8], root_der: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("failed to parse ca-cert.pem: {e}"))?;
    let (_, root) = X509Certificate::from_der(root_der)
        .map_err(|e| format!("failed to parse root-cert.pem: {e}"))?;
    if !root.is_ca() {
        return Err(
            "failed to verify the certificate chain: root-cert.pem is not a CA certificate".into(),
        );
    }
    if !cert.is_ca() {
        return Err(
            "failed to verify the certificate chain: ca-cert.pem is not a CA certificate".into(),
        );
    }
    cert.verify_signature(Some(root.public_key())).map_err(|_| {
        "failed to verify the certificate chain: x509: certificate signed by unknown authority"
            .to_string()
    })
}

/// A new self-signed root, as istiod makes when no `cacerts` is plugged in: (cert PEM, key PEM).
pub fn self_signed_root(trust_domain: &str) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, trust_domain);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(entries: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    struct Root {
        params: rcgen::CertificateParams,
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn root() -> Root {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Root CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("root");
        Root { params, cert, key }
    }

    fn intermediate(root: &Root) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Intermediate CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        let issuer = rcgen::Issuer::from_params(&root.params, &root.key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn complete_bundle_signed_by_its_root_is_plugged() {
        let root = root();
        let root_cert = &root.cert;
        let (ca_cert, ca_key) = intermediate(&root);
        let chain = format!("{ca_cert}{}", root_cert.pem());
        let s = secret(&[
            ("ca-cert.pem", &ca_cert),
            ("ca-key.pem", &ca_key),
            ("root-cert.pem", &root_cert.pem()),
            ("cert-chain.pem", &chain),
        ]);
        assert_eq!(read_cacerts(&s), Plugged::Root(root_cert.pem()));
        assert_eq!(fingerprint(&root_cert.pem()).map(|f| f.len()), Some(64));
    }

    #[test]
    fn a_root_bundle_is_plugged_whichever_of_its_roots_signed() {
        let (old, new) = (root(), root());
        let (ca_cert, ca_key) = intermediate(&old);
        let bundle = format!("{}{}", new.cert.pem(), old.cert.pem());
        let s = secret(&[
            ("ca-cert.pem", &ca_cert),
            ("ca-key.pem", &ca_key),
            ("root-cert.pem", &bundle),
            ("cert-chain.pem", &ca_cert),
        ]);
        assert_eq!(read_cacerts(&s), Plugged::Root(bundle));
    }

    #[test]
    fn bundle_with_foreign_root_or_missing_key_is_refused() {
        let root = root();
        let root_cert = &root.cert;
        let other_root = self::root().cert;
        let (ca_cert, ca_key) = intermediate(&root);
        let foreign = secret(&[
            ("ca-cert.pem", &ca_cert),
            ("ca-key.pem", &ca_key),
            ("root-cert.pem", &other_root.pem()),
            ("cert-chain.pem", &ca_cert),
        ]);
        assert!(
            matches!(read_cacerts(&foreign), Plugged::Broken(m) if m.contains("unknown authority"))
        );
        let incomplete = secret(&[
            ("ca-cert.pem", &ca_cert),
            ("root-cert.pem", &root_cert.pem()),
        ]);
        assert_eq!(
            read_cacerts(&incomplete),
            Plugged::Broken("incomplete signing CA bundle detected".into())
        );
    }
}
