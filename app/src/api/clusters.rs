use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    AppError, ClusterForm, ClusterName, ClusterSummary, ContextChoice, NetworkName, RegisterOutcome,
};

#[cfg(feature = "ssr")]
pub(super) fn summary(
    record: crate::ssr::store::ClusterRecord,
    connectivity: Option<crate::model::Connectivity>,
) -> ClusterSummary {
    let access = crate::ssr::registry::access_of(&record);
    ClusterSummary {
        name: record.name,
        network: record.network,
        labels: record.labels,
        server: record.server,
        insecure_skip_tls_verify: record.insecure_skip_tls_verify,
        access,
        connectivity,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

#[server(endpoint = "list_clusters")]
pub async fn list_clusters() -> Result<Vec<ClusterSummary>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            let list = state()?.registry.list().await?;
            Ok(list.into_iter().map(|(r, c)| summary(r, c)).collect())
        }
        .await,
    )
}

#[server(endpoint = "get_cluster")]
pub async fn get_cluster(name: ClusterName) -> Result<ClusterSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            let (r, c) = state()?.registry.get(&name).await?;
            Ok(summary(r, c))
        }
        .await,
    )
}

/// Reads a pasted kubeconfig and lists its contexts with what would stop each one from registering.
/// Nothing is stored.
#[server(endpoint = "read_kubeconfig", input = Json)]
pub async fn read_kubeconfig(kubeconfig: String) -> Result<Vec<ContextChoice>, AppError> {
    use crate::model::Role;
    use crate::ssr::{registry, session};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            Ok(registry::read_contexts(kubeconfig).await?)
        }
        .await,
    )
}

/// Registers the chosen contexts of one kubeconfig. Each cluster is registered or not on its own; the
/// outcome of each is returned.
#[server(endpoint = "register_clusters", input = Json)]
pub async fn register_clusters(
    kubeconfig: String,
    clusters: Vec<ClusterForm>,
) -> Result<Vec<RegisterOutcome>, AppError> {
    use crate::model::Role;
    use crate::ssr::{registry, session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            if clusters.is_empty() {
                return Err(AppError::invalid("clusters", "pick at least one context"));
            }
            if clusters.len() > 100 {
                return Err(AppError::invalid("clusters", "at most 100 clusters at once"));
            }
            let st = state()?;
            let mut out = Vec::with_capacity(clusters.len());
            for form in clusters {
                let result = async {
                    let reg = registry::Registration::from_form(&form, &kubeconfig, &user.username)?;
                    let (record, connectivity) = st.registry.register(reg).await?;
                    tracing::info!(user = %user.username, cluster = %record.name, "registered a cluster");
                    Ok::<_, AppError>(summary(record, Some(connectivity)))
                }
                .await;
                out.push(RegisterOutcome {
                    context: form.context,
                    name: form.name,
                    result,
                });
            }
            // Their watches start now (the topology), without holding up the answer.
            let topology = st.topology.clone();
            tokio::spawn(async move { topology.sync().await });
            Ok(out)
        }
        .await,
    )
}

/// Tests a registered cluster again (reachability, version, latency, permissions).
#[server(endpoint = "retest_cluster")]
pub async fn retest_cluster(name: ClusterName) -> Result<ClusterSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            let st = state()?;
            st.registry.retest(&name).await?;
            let (r, c) = st.registry.get(&name).await?;
            Ok(summary(r, c))
        }
        .await,
    )
}

/// Changes a cluster's network and labels.
#[server(endpoint = "update_cluster")]
pub async fn update_cluster(
    name: ClusterName,
    network: NetworkName,
    env: String,
    region: String,
) -> Result<ClusterSummary, AppError> {
    use crate::model::Role;
    use crate::ssr::{registry, session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let st = state()?;
            let labels = registry::labels_from(&env, &region);
            st.registry.update(&name, &network, &labels).await?;
            tracing::info!(user = %user.username, cluster = %name, "updated a cluster");
            let (r, c) = st.registry.get(&name).await?;
            Ok(summary(r, c))
        }
        .await,
    )
}

/// Removes a cluster from the registry (its credentials are deleted). The mesh in the cluster is left as
/// it is. `confirm` must repeat the name.
#[server(endpoint = "remove_cluster")]
pub async fn remove_cluster(name: ClusterName, confirm: String) -> Result<(), AppError> {
    use crate::model::Role;
    leave(Role::Admin, name, confirm, Leaving::Remove).await
}

/// How a cluster leaves the registry.
#[cfg(feature = "ssr")]
#[derive(Clone, Copy)]
pub(super) enum Leaving {
    /// Only the registry's record goes.
    Remove,
    /// The console's own account in the cluster is deleted first (least privilege).
    Revoke,
}

/// Takes a cluster out of the registry once `confirm` repeats its name (admins only); back to the list for a
/// plain form.
#[cfg(feature = "ssr")]
pub(super) async fn leave<S: AsRef<str>>(
    needed: crate::model::Role,
    name: ClusterName,
    confirm: S,
    how: Leaving,
) -> Result<(), AppError> {
    use crate::ssr::{session, state::state};
    let plain = crate::ssr::session::is_plain_form();
    let result = session::respond(
        async {
            let user = session::require(needed).await?;
            if confirm.as_ref().trim() != name.as_str() {
                let what = match how {
                    Leaving::Remove => "the removal",
                    Leaving::Revoke => "revoking the console's access",
                };
                return Err(AppError::invalid(
                    "confirm",
                    format!("type {name} to confirm {what}"),
                ));
            }
            let st = state()?;
            match how {
                Leaving::Remove => st.registry.remove(&name).await?,
                Leaving::Revoke => {
                    st.registry.revoke(&name).await?;
                }
            }
            st.topology.sync().await;
            let done = match how {
                Leaving::Remove => "removed a cluster",
                Leaving::Revoke => "revoked the console's access to a cluster",
            };
            tracing::info!(user = %user.username, cluster = %name, "{done}");
            Ok(())
        }
        .await,
    );
    if plain && result.is_ok() {
        leptos_axum::redirect("/clusters");
    }
    result
}
