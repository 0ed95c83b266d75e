use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::topology::{ObjectYaml, TopologyView};
use crate::model::{AppError, ClusterName, ImportOutcome};

/// The topology graph as last computed from the watches (the page follows `/live/topology` after this).
#[server(endpoint = "topology_graph")]
pub async fn topology_graph() -> Result<TopologyView, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            let frame = state()?.topology.current();
            Ok(TopologyView {
                version: frame.version,
                graph: (*frame.graph).clone(),
            })
        }
        .await,
    )
}

/// The live objects behind a cluster, or behind the link `cluster`→`peer`, as YAML (read-only; never a
/// Secret).
#[server(endpoint = "topology_objects", input = Json)]
pub async fn topology_objects(
    cluster: ClusterName,
    peer: Option<ClusterName>,
) -> Result<Vec<ObjectYaml>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            let st = state()?;
            st.registry.get(&cluster).await?;
            if let Some(p) = &peer {
                st.registry.get(p).await?;
            }
            Ok(st.topology.objects(&cluster, peer.as_ref()).await)
        }
        .await,
    )
}

/// Links `from` to `to` again: the peer gateway for `to` built from `to`'s live state, server-side applied
/// in `from` (what the setup's link step does, for one link). Operators and admins.
#[server(endpoint = "relink", input = Json)]
pub async fn relink(from: ClusterName, to: ClusterName) -> Result<ImportOutcome, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            if from == to {
                return Err(AppError::invalid("to", "a cluster is not linked to itself"));
            }
            let st = state()?;
            st.registry.get(&from).await?;
            st.registry.get(&to).await?;
            let eastwest = match st
                .topology
                .snapshot(&to)
                .and_then(|s| s.eastwest)
                .map(|e| e.kind)
            {
                Some(mesh::ids::graph::EastWestKind::NodePort) => crate::model::EastWest::NodePort,
                _ => crate::model::EastWest::LoadBalancer,
            };
            let yaml = st
                .jobs
                .export_peers(std::slice::from_ref(&to), eastwest)
                .await?;
            let mut outcome = st
                .jobs
                .import_peers(std::slice::from_ref(&from), &yaml)
                .await?;
            tracing::info!(user = %user.username, %from, %to, "re-linked");
            outcome.pop().ok_or_else(|| {
                crate::ssr::errors::incident("import of the peer gateway gave no outcome")
            })
        }
        .await,
    )
}
