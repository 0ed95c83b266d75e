//! Least-privilege access to a registered cluster: onboard it (admin credentials used once, then
//! forgotten), renew the console's token now, revoke the console's account (and remove the cluster).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{AppError, ClusterName, ClusterPlan, ClusterSummary};

#[cfg(feature = "ssr")]
fn given(
    kubeconfig: Option<String>,
    context: Option<String>,
    allow_insecure: bool,
) -> Result<Option<crate::ssr::registry::Given>, AppError> {
    match kubeconfig.filter(|k| !k.trim().is_empty()) {
        None => Ok(None),
        Some(k) if k.len() > 1024 * 1024 => Err(AppError::invalid(
            "kubeconfig",
            "the kubeconfig is over 1 MiB; paste only the context you need",
        )),
        Some(kubeconfig) => {
            let context = context.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                AppError::invalid(
                    "context",
                    "pick the context of the kubeconfig to onboard with",
                )
            })?;
            Ok(Some(crate::ssr::registry::Given {
                kubeconfig,
                context,
                allow_insecure,
            }))
        }
    }
}

/// What onboarding `name` would apply, compared with the cluster; nothing is written. Without a kubeconfig,
/// the credentials the cluster was registered with are used (they must be an administrator's).
/// `control_planes`: namespaces control planes are installed in besides istio-system, given its rights too
/// (None: those the cluster's account has now).
#[server(endpoint = "plan_onboarding", input = Json)]
pub async fn plan_onboarding(
    name: ClusterName,
    kubeconfig: Option<String>,
    context: Option<String>,
    allow_insecure: Option<bool>,
    control_planes: Option<Vec<String>>,
) -> Result<ClusterPlan, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            let given = given(kubeconfig, context, allow_insecure.unwrap_or(false))?;
            let st = state()?;
            st.registry.get(&name).await?;
            Ok(st
                .registry
                .plan_onboarding(&name, given, control_planes)
                .await)
        }
        .await,
    )
}

/// Onboards `name` with least privilege: the console's own ServiceAccount, roles and bindings are applied
/// with the admin credentials (given here, or those it was registered with), which are then forgotten.
/// `control_planes`: as for [`plan_onboarding`].
#[server(endpoint = "onboard_cluster", input = Json)]
pub async fn onboard_cluster(
    name: ClusterName,
    kubeconfig: Option<String>,
    context: Option<String>,
    allow_insecure: Option<bool>,
    control_planes: Option<Vec<String>>,
) -> Result<ClusterSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let given = given(kubeconfig, context, allow_insecure.unwrap_or(false))?;
            let st = state()?;
            st.registry
                .onboard(&name, given, control_planes, &user.username)
                .await?;
            tracing::info!(user = %user.username, cluster = %name, "onboarded a cluster with least privilege");
            // Its watches go on with the new credentials.
            st.topology.watch(&name).await;
            let (r, c) = st.registry.get(&name).await?;
            Ok(super::clusters::summary(r, c))
        }
        .await,
    )
}

/// Renews the console's token for an onboarded cluster now (it is also renewed on its own before it
/// expires).
#[server(endpoint = "renew_cluster_token")]
pub async fn renew_cluster_token(name: ClusterName) -> Result<ClusterSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            let st = state()?;
            let renewed = st.registry.renew(&name).await;
            if renewed.is_ok() {
                st.topology.watch(&name).await;
            }
            renewed?;
            let (r, c) = st.registry.get(&name).await?;
            Ok(super::clusters::summary(r, c))
        }
        .await,
    )
}

/// What revoking the console's access to `name` deletes.
#[server(endpoint = "plan_revoke")]
pub async fn plan_revoke(name: ClusterName) -> Result<ClusterPlan, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Admin).await?;
            let st = state()?;
            st.registry.get(&name).await?;
            Ok(st.registry.plan_revoke(&name).await?)
        }
        .await,
    )
}

/// Revokes the console's access to `name`: deletes its account, roles and bindings in the cluster (one
/// namespace owns them all), then removes the cluster from the registry. `confirm` must repeat the name.
#[server(endpoint = "revoke_cluster_access")]
pub async fn revoke_cluster_access(name: ClusterName, confirm: String) -> Result<(), AppError> {
    use crate::model::Role;
    super::clusters::leave(Role::Admin, name, confirm, super::clusters::Leaving::Revoke).await
}
