//! The root of trust: made (generated or imported) once, stored with its key sealed, shown without it,
//! exported only to an admin.

use super::*;

impl Jobs {
    /// The root of trust in use, generating (ECDSA P-256) and storing one on first use. When another console
    /// stores one at the same moment, the database keeps only one active root and this one uses it.
    pub async fn root(&self, user: &str) -> Result<(String, RootCa)> {
        if let Some(r) = self.inner.store.active_root().await? {
            return Ok((r.id.clone(), self.open_root(&r)?));
        }
        let root = RootCa::generate(mesh::ca::DEFAULT_DAYS)?;
        match self.store_root(&root, user).await {
            Ok(id) => Ok((id, root)),
            Err(Error::Store(store::Error::Conflict(_))) => {
                let r = self
                    .inner
                    .store
                    .active_root()
                    .await?
                    .ok_or_else(|| Error::NotFound("root of trust".into()))?;
                tracing::info!(root = %r.id, "another console made the root of trust first; using it");
                Ok((r.id.clone(), self.open_root(&r)?))
            }
            Err(e) => Err(e),
        }
    }

    /// The root in use, as shown (no key).
    pub async fn root_summary(&self) -> Result<Option<RootSummary>> {
        let Some(r) = self.inner.store.active_root().await? else {
            return Ok(None);
        };
        let root = self.open_root(&r)?;
        let cert = mesh::ca::describe(&r.cert_pem)?;
        Ok(Some(RootSummary {
            id: r.id,
            fingerprint: r.fingerprint,
            algorithm: match root.algorithm() {
                KeyAlgorithm::EcdsaP256 => RootAlgorithm::EcdsaP256,
                KeyAlgorithm::Rsa4096 => RootAlgorithm::Rsa4096,
            },
            subject: cert.subject,
            not_before: cert.not_before,
            not_after: cert.not_after,
            created_by: r.created_by,
            created_at: r.created_at,
            cert_pem: r.cert_pem,
        }))
    }

    /// Makes the root of trust: generated with `algorithm`, or imported from PEM. Refused while a root is in
    /// use: clusters set up with it would no longer trust the others (rotation is a separate flow).
    pub async fn create_root(
        &self,
        algorithm: RootAlgorithm,
        import: Option<(String, String)>,
        user: &str,
    ) -> Result<String> {
        if let Some(r) = self.inner.store.active_root().await? {
            return Err(Error::Conflict(format!(
                "a root of trust is already in use ({}, made by {}); clusters set up with it trust only it",
                mesh::ca::short(&r.fingerprint),
                r.created_by
            )));
        }
        let root = match import {
            Some((cert, key)) => RootCa::import(&cert, &key)?,
            None => {
                let algorithm = match algorithm {
                    RootAlgorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
                    RootAlgorithm::Rsa4096 => KeyAlgorithm::Rsa4096,
                };
                // RSA 4096 takes a second or more: off the async workers.
                tokio::task::spawn_blocking(move || {
                    RootCa::generate_with(algorithm, mesh::ca::DEFAULT_DAYS)
                })
                .await
                .map_err(|e| mesh::ca::Error::Generate(e.to_string()))??
            }
        };
        match self.store_root(&root, user).await {
            Err(Error::Store(store::Error::Conflict(_))) => Err(Error::Conflict(
                "another root of trust was made a moment ago; reload to see it".into(),
            )),
            other => other,
        }
    }

    /// The root in use with its key, for an admin's export (the caller checks who asks and logs it).
    pub async fn export_root(&self) -> Result<RootCa> {
        let r = self
            .inner
            .store
            .active_root()
            .await?
            .ok_or_else(|| Error::NotFound("root of trust".into()))?;
        self.open_root(&r)
    }

    /// Stores `root` (generated or imported) as the root in use; its key sealed.
    pub async fn store_root(&self, root: &RootCa, user: &str) -> Result<String> {
        let id = random_id();
        self.inner
            .store
            .insert_root(&self.root_row_of(&id, root, user))
            .await?;
        tracing::info!(root = %id, user, "stored a root of trust");
        Ok(id)
    }

    /// A stored root with its key, whether or not new setups use it (a mesh keeps the root it was set up or
    /// rotated with).
    pub(super) async fn root_by_id(&self, id: &str) -> Result<RootCa> {
        let r = self.inner.store.root_row(id).await?.ok_or(Error::Invalid {
            field: "root",
            message: "the job's root of trust is not stored in this console".into(),
        })?;
        self.open_root(&r)
    }

    /// Stores `root` (a rotation's new root) sealed, without making it the one new setups use yet.
    pub(super) async fn store_root_kept(&self, root: &RootCa, user: &str) -> Result<String> {
        let id = random_id();
        self.inner
            .store
            .insert_root_as(&self.root_row_of(&id, root, user), false)
            .await?;
        tracing::info!(root = %id, user, "stored a new root of trust for a rotation");
        Ok(id)
    }

    fn root_row_of(&self, id: &str, root: &RootCa, user: &str) -> RootRow {
        RootRow {
            id: id.to_string(),
            cert_pem: root.cert_pem.clone(),
            key_sealed: self
                .inner
                .secrets
                .seal(&root_context(id), root.key_pem().as_bytes()),
            fingerprint: mesh::ca::fingerprint(&root.cert_pem).unwrap_or_default(),
            created_by: user.to_string(),
            created_at: now(),
        }
    }

    /// A stored root with its key unsealed (on the server only).
    pub(super) fn open_root(&self, r: &RootRow) -> Result<RootCa> {
        let key = self
            .inner
            .secrets
            .open(&root_context(&r.id), &r.key_sealed)
            .map_err(|_| Error::Sealed)?;
        let key = String::from_utf8(key).map_err(|_| Error::Sealed)?;
        Ok(RootCa::import(&r.cert_pem, &key)?)
    }
}
