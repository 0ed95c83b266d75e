use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    AppError, ClusterName, ClusterPlan, ClusterTrust, EastWest, ImportOutcome, PreflightView,
    SetupRequest,
};

/// Preflight of a setup before it starts: per cluster, each finding pass/warn/fail with what to do. Operators
/// and admins only: the load-balancer probe creates (and deletes) a Service in each cluster.
#[server(endpoint = "preflight_setup", input = Json)]
pub async fn preflight_setup(request: SetupRequest) -> Result<Vec<PreflightView>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            Ok(state()?
                .jobs
                .preflight_recorded(&request, &user.username)
                .await?)
        }
        .await,
    )
}

/// What a setup would change, per cluster and step: the objects (YAML), each compared with the live one by
/// a server-side dry run, and the commands to do the same by hand. Changes nothing; viewers may look.
#[server(endpoint = "plan_setup", input = Json)]
pub async fn plan_setup(request: SetupRequest) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.plan(&request).await?)
        }
        .await,
    )
}

/// For the owner of a cluster Meshdeck has no credentials for: the peer gateways their cluster needs to
/// reach `clusters`, as YAML to apply there. Read-only here; operators and admins, who run linking.
#[server(endpoint = "export_peers", input = Json)]
pub async fn export_peers(
    clusters: Vec<ClusterName>,
    eastwest: EastWest,
) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            Ok(state()?.jobs.export_peers(&clusters, eastwest).await?)
        }
        .await,
    )
}

/// What the owner of such a cluster sent back: its peer gateway(s), validated, then applied (server-side
/// apply) in each of `into`, so they reach that cluster. Per cluster: what was applied or what failed.
#[server(endpoint = "import_peers", input = Json)]
pub async fn import_peers(
    into: Vec<ClusterName>,
    yaml: String,
) -> Result<Vec<ImportOutcome>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Operator).await?;
            Ok(state()?.jobs.import_peers(&into, &yaml).await?)
        }
        .await,
    )
}

/// Each chosen cluster's root of trust: what its `cacerts` holds (intermediate, validity, key, the root's
/// fingerprint and whether it is the console's root, the public chain) or what applying will write. Reads
/// only; never returns key material; viewers may look.
#[server(endpoint = "get_trust_chains", input = Json)]
pub async fn get_trust_chains(clusters: Vec<ClusterName>) -> Result<Vec<ClusterTrust>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.trust_chains(&clusters).await?)
        }
        .await,
    )
}
