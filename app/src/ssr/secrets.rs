//! Encryption of secrets at rest (kubeconfigs, tokens, license keys, CA keys) with XChaCha20-Poly1305.
//!
//! The 32-byte key comes from `MESHDECK_SECRET_KEY` (base64) or from a key file, created with mode 0600 on
//! first start. Each sealed value is `v1:` + a random 24-byte nonce + the ciphertext; the name of what is
//! sealed is bound as associated data, so a value copied to another row does not open.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: &[u8] = b"v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the secret key must be 32 bytes, base64-encoded; {0}")]
    BadKey(String),
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    KeyFileMode { path: String, mode: u32 },
    #[error("a stored secret cannot be opened: it was sealed with another key or altered")]
    Open,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Seals and opens secrets. Its Debug output never shows the key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8]) -> Result<Self> {
        if key.len() != 32 {
            return Err(Error::BadKey(format!("got {} bytes", key.len())));
        }
        let cipher =
            XChaCha20Poly1305::new_from_slice(key).map_err(|e| Error::BadKey(e.to_string()))?;
        Ok(Self { cipher })
    }

    pub fn from_base64(key: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key.trim())
            .map_err(|_| Error::BadKey("it is not valid base64".into()))?;
        Self::from_key(&raw)
    }

    /// Loads the key file, or creates it (mode 0600) with a new random key when it does not exist.
    /// Refuses a key file that other users can read. Consoles starting at once on one key file all end up
    /// with the same key: the new key is written whole to a private file first and then published with a
    /// hard link, which never replaces a key another console published first (that one is read instead).
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let p = path.display().to_string();
        let io = |source| Error::KeyFile {
            path: p.clone(),
            source,
        };
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let mut tag = [0u8; 8];
                rand::rngs::OsRng.fill_bytes(&mut tag);
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                let draft = dir.join(format!(
                    ".{}.{}.new",
                    name.as_deref().unwrap_or("secret.key"),
                    tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ));
                let written = (|| {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&draft)?;
                    f.write_all(
                        base64::engine::general_purpose::STANDARD
                            .encode(key)
                            .as_bytes(),
                    )?;
                    f.sync_all()?;
                    std::fs::hard_link(&draft, path)
                })();
                let _ = std::fs::remove_file(&draft);
                match written {
                    Ok(()) => Self::from_key(&key),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Reads an existing key file, refusing one that other users can read.
    fn load(path: &Path) -> Result<Self> {
        let p = path.display().to_string();
        let io = |source| Error::KeyFile {
            path: p.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFileMode { path: p, mode });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_base64(&text)
    }

    /// Seals `plain`, bound to `context` (e.g. "cluster/c1/kubeconfig").
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(VERSION.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        let rest = sealed.strip_prefix(VERSION).ok_or(Error::Open)?;
        if rest.len() < NONCE_LEN {
            return Err(Error::Open);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let a = SecretBox::from_key(&[7u8; 32]).expect("key");
        let b = SecretBox::from_key(&[8u8; 32]).expect("key");
        let sealed = a.seal("cluster/c1/kubeconfig", b"token: s3cret");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cret"),
            "ciphertext hides the secret"
        );
        assert_eq!(
            a.open("cluster/c1/kubeconfig", &sealed).expect("open"),
            b"token: s3cret"
        );
        assert!(b.open("cluster/c1/kubeconfig", &sealed).is_err());
        assert!(
            a.open("cluster/c2/kubeconfig", &sealed).is_err(),
            "bound to its row"
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(a.open("cluster/c1/kubeconfig", &tampered).is_err());
        assert_ne!(a.seal("x", b"same"), a.seal("x", b"same"), "random nonces");
    }

    #[test]
    fn the_key_file_is_created_0600_reused_and_refused_when_readable_by_others() {
        let dir = std::env::temp_dir().join(format!("meshdeck-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("secret.key");
        let first = SecretBox::load_or_create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = first.seal("k", b"v");
        let again = SecretBox::load_or_create(&path).expect("reuse");
        assert_eq!(again.open("k", &sealed).expect("same key"), b"v");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = SecretBox::load_or_create(&path).expect_err("world-readable key");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn consoles_starting_at_once_share_one_whole_key() {
        let dir = std::env::temp_dir().join(format!("meshdeck-key-race-{}", std::process::id()));
        for round in 0..20 {
            let _ = std::fs::remove_dir_all(&dir);
            let path = dir.join(format!("{round}/secret.key"));
            let boxes: Vec<SecretBox> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|_| s.spawn(|| SecretBox::load_or_create(&path)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .expect("thread")
                            .expect("every console gets the key")
                    })
                    .collect()
            });
            let sealed = boxes[0].seal("k", b"v");
            for b in &boxes {
                assert_eq!(b.open("k", &sealed).expect("one key"), b"v");
            }
            let left: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(
                left,
                vec![std::ffi::OsString::from("secret.key")],
                "no drafts left"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_key_is_refused_with_a_reason() {
        assert!(SecretBox::from_base64("not base64!").is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(
            SecretBox::from_base64(&short)
                .expect_err("short")
                .to_string()
                .contains("16 bytes")
        );
    }
}
