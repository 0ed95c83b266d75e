//! Server-side apply of built objects, with the one field manager (README, invariant 4). The API resource
//! of an object is found through discovery from its apiVersion and kind.

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery;
use serde_json::Value;

use crate::FIELD_MANAGER;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object without apiVersion, kind or metadata.name: {0}")]
    Shape(String),
    #[error("{kind} {name}: {source}")]
    Kube {
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Applies `obj` (a full object) server-side and returns what the server holds afterwards.
/// `dry_run` asks the server to validate and default without persisting.
pub async fn apply(client: &Client, obj: &Value, dry_run: bool) -> Result<DynamicObject> {
    let api_version = obj["apiVersion"]
        .as_str()
        .ok_or_else(|| Error::Shape(obj.to_string()))?;
    let kind = obj["kind"]
        .as_str()
        .ok_or_else(|| Error::Shape(obj.to_string()))?;
    let name = obj["metadata"]["name"]
        .as_str()
        .ok_or_else(|| Error::Shape(obj.to_string()))?;
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let kube_err = |source| Error::Kube {
        kind: kind.to_string(),
        name: name.to_string(),
        source,
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = retrying(|| discovery::pinned_kind(client, &gvk))
        .await
        .map_err(kube_err)?;
    let api: Api<DynamicObject> = match (caps.scope, obj["metadata"]["namespace"].as_str()) {
        (discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        (discovery::Scope::Namespaced, None) => Api::default_namespaced_with(client.clone(), &ar),
        (discovery::Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
    };
    patch(&api, kind, name, obj, dry_run).await
}

/// Applies `obj`, a namespaced object of the known resource `ar`, without discovery (one request): for
/// writes repeated many times whose resource an earlier step has seen served (the peer gateways).
pub async fn apply_known(
    client: &Client,
    ar: &kube::api::ApiResource,
    obj: &Value,
) -> Result<DynamicObject> {
    let (Some(kind), Some(name), Some(ns)) = (
        obj["kind"].as_str(),
        obj["metadata"]["name"].as_str(),
        obj["metadata"]["namespace"].as_str(),
    ) else {
        return Err(Error::Shape(obj.to_string()));
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    patch(&api, kind, name, obj, false).await
}

async fn patch(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
    obj: &Value,
    dry_run: bool,
) -> Result<DynamicObject> {
    let kube_err = |source| Error::Kube {
        kind: kind.to_string(),
        name: name.to_string(),
        source,
    };
    let mut pp = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        pp = pp.dry_run();
    }
    let patch = Patch::Apply(obj);
    retrying(|| api.patch(name, &pp, &patch))
        .await
        .map_err(kube_err)
}

/// Whether an error is worth trying again: the API server did not answer (connection refused or reset,
/// timeouts), or answered that it is overloaded or briefly unavailable (429, 500, 502, 503, 504).
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::Service(_) | kube::Error::HyperError(_) | kube::Error::HttpError(_) => true,
        _ => false,
    }
}

/// The pauses between the reads of a wait: short at first — what a step waits for (an operator's pod, a
/// status a controller writes) is often there within a few hundred milliseconds, and a fixed half-second or
/// second added that much to every wait of a setup — then half again as long each time, up to `longest`, so a
/// long wait reads no more often than a fixed interval would.
pub struct Pauses {
    next: std::time::Duration,
    longest: std::time::Duration,
}

impl Pauses {
    pub fn new(first: std::time::Duration, longest: std::time::Duration) -> Self {
        Pauses {
            next: first.min(longest),
            longest,
        }
    }

    /// The pauses of the setup's waits: 100 ms, then half again as long, up to 500 ms.
    pub fn for_waits() -> Self {
        Self::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_millis(500),
        )
    }

    /// The next pause (without sleeping).
    pub fn next_pause(&mut self) -> std::time::Duration {
        let now = self.next;
        self.next = (self.next * 3 / 2).min(self.longest);
        now
    }

    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.next_pause()).await;
    }
}

/// Runs `f` again on transient errors, up to 5 tries over about 7 s (0.5, 1, 2, 4 s apart), so a busy or
/// restarting API server does not fail a step; other errors return at once.
pub async fn retrying<T, F, Fut>(mut f: F) -> std::result::Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
{
    let mut delay = std::time::Duration::from_millis(500);
    for _ in 0..4 {
        match f().await {
            Err(e) if transient(&e) => {
                tracing::debug!("retrying after a transient error: {e}");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    f().await
}

#[cfg(test)]
mod tests {
    use super::Pauses;
    use std::time::Duration;

    #[test]
    fn pauses_grow_by_half_up_to_the_longest() {
        let mut p = Pauses::for_waits();
        let ms: Vec<u128> = (0..7).map(|_| p.next_pause().as_millis()).collect();
        assert_eq!(ms, [100, 150, 225, 337, 500, 500, 500]);
        let mut p = Pauses::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(
            p.next_pause(),
            Duration::from_secs(1),
            "never longer than the longest"
        );
    }
}
