//! Whether the API server enforces the guard ([`super::guard`]) on the console's account yet. An admission
//! policy is in force once the API server has loaded it — moments after its write, not with it — so right
//! after onboarding the account is held by RBAC alone. Onboarding hands the account's token over only once
//! the guard refuses it.

use std::time::{Duration, Instant};

use kube::Client;
use serde_json::json;

use super::{Error, GUARD, NAMESPACE, Result};

/// The label the probe asks to add to the console's own namespace: a Pod Security label, which the guard
/// refuses to the account whatever its value (and which the API server's Pod Security admission ignores: it
/// reads only its own keys).
const PROBE_LABEL: &str = "pod-security.kubernetes.io/meshdeck-guard-probe";

/// How the API server answered the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Refused by the guard: the policy is in force for this account.
    Refused,
    /// Refused by RBAC before admission: the account may not change namespaces at all (a reads-only grant),
    /// so there is nothing for the guard to hold back there.
    Forbidden,
    /// Accepted (a dry run: nothing was written): the guard is not in force yet.
    Accepted,
}

/// Asks once, as `account` (a client with the console's own token), for a dry-run change the guard refuses:
/// a Pod Security label on the console's namespace. Nothing is written.
pub async fn probe(account: &Client) -> Result<Probe> {
    let obj = json!({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": NAMESPACE, "labels": {PROBE_LABEL: "probe"}}});
    match crate::apply::apply(account, &obj, true).await {
        Ok(_) => Ok(Probe::Accepted),
        Err(crate::apply::Error::Kube {
            source: kube::Error::Api(s),
            ..
        }) if s.message.contains(GUARD) => Ok(Probe::Refused),
        Err(crate::apply::Error::Kube {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 403 => Ok(Probe::Forbidden),
        Err(e) => Err(Error::Other(format!(
            "asking whether the admission policy {GUARD} is in force: {e}"
        ))),
    }
}

/// Waits, up to `timeout`, until the API server enforces the guard on `account` (or RBAC alone already
/// refuses what the guard would), asking again after short pauses. Returns how long it took; an error
/// when the guard is still not in force after `timeout` — say, an API server without
/// ValidatingAdmissionPolicy (Kubernetes before 1.30, or the API turned off).
pub async fn wait_until_guarded(account: &Client, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    loop {
        match probe(account).await? {
            Probe::Refused | Probe::Forbidden => return Ok(start.elapsed()),
            Probe::Accepted if start.elapsed() >= timeout => {
                return Err(Error::Other(format!(
                    "the API server still lets the console's account change what the admission policy {GUARD} \
                     forbids {} s after onboarding wrote it; it needs ValidatingAdmissionPolicy \
                     (admissionregistration.k8s.io/v1, Kubernetes 1.30 or later) — check that the API server \
                     serves it, then onboard again",
                    timeout.as_secs()
                )));
            }
            Probe::Accepted => pauses.sleep().await,
        }
    }
}
