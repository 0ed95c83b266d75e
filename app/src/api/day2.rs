use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::{
    AppError, ClusterName, ClusterPlan, DriftReport, GrowRequest, MeshSummary, PreflightView,
    RemoveRequest, SettingsChangeRequest, UnlinkRequest, UpgradeRequest,
};

/// The running meshes the console set up (newest first), each with its members, version and linking, and
/// the registered clusters that could be added. Viewers may look.
#[server(endpoint = "list_meshes")]
pub async fn list_meshes() -> Result<Vec<MeshSummary>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.meshes().await?)
        }
        .await,
    )
}

/// Preflight of adding clusters to a running mesh: each added cluster's findings, with whether it fits the
/// mesh (unique name and network among the members, trust domain). Operators and admins only: the
/// load-balancer probe creates (and deletes) a Service in each added cluster.
#[server(endpoint = "preflight_grow", input = Json)]
pub async fn preflight_grow(request: GrowRequest) -> Result<Vec<PreflightView>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            Ok(state()?
                .jobs
                .grow_preflight_recorded(&request, &user.username)
                .await?)
        }
        .await,
    )
}

/// What adding clusters would change: every setup step of each added cluster and the new peer gateways in
/// every cluster that will hold one, each compared with the live cluster. Changes nothing; viewers may look.
#[server(endpoint = "plan_grow", input = Json)]
pub async fn plan_grow(request: GrowRequest) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.grow_plan(&request).await?)
        }
        .await,
    )
}

/// Adds clusters to a running mesh as a job (their setup steps, the links, the checks across the mesh);
/// returns its id. Refused, starting nothing, on invalid input, a busy cluster (the members are held too),
/// or a failed preflight unless an admin gives a reason, which the job records.
#[server(endpoint = "start_grow", input = Json)]
pub async fn start_grow(request: GrowRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let overridden = super::jobs::override_of(request.override_reason.as_deref());
            let mut user = session::require(Role::Operator).await?;
            if overridden.is_some() {
                // Going on despite failed preflight findings is an admin's call.
                user = session::require(Role::Admin).await?;
            }
            let overridden = overridden.transpose()?;
            let jobs = &state()?.jobs;
            // Checked before the preflight runs: an invalid request fails fast, with nothing probed.
            let (spec, license_key) = jobs.grow_spec(&request).await?;
            let failures = jobs
                .grow_preflight_failures(&request, &user.username)
                .await?;
            if !failures.is_empty() && overridden.is_none() {
                return Err(AppError::Conflict(format!(
                    "the preflight of adding these clusters failed: {}. Fix what it found and run the preflight again, or an admin may go on with a reason",
                    failures.join("; ")
                )));
            }
            let added: Vec<String> = spec.clusters.iter().map(|c| c.name.to_string()).collect();
            let id = jobs.start_setup(spec, license_key, &user.username).await?;
            jobs.record(
                &id,
                "info",
                &format!(
                    "adds {} to the mesh of job {}",
                    added.join(", "),
                    request.mesh
                ),
            )
            .await;
            // The topology expects the links chosen here from now on.
            let topology = state()?.topology.clone();
            tokio::spawn(async move { topology.read_choices().await });
            jobs.note_preflight(&id, &user.username, overridden, &failures)
                .await;
            Ok(id)
        }
        .await,
    )
}

/// What removing the mesh from a cluster would delete (Meshdeck's own objects) and leave (anyone else's),
/// in each peer and in the cluster, step by step, with the commands by hand. Changes nothing.
#[server(endpoint = "plan_remove", input = Json)]
pub async fn plan_remove(request: RemoveRequest) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.remove_plan(&request).await?)
        }
        .await,
    )
}

/// Removes the mesh from one of its clusters as a job: its peers' gateways for it first, then its own
/// objects in the reverse order of the setup. Operators and admins; returns the job's id.
#[server(endpoint = "start_remove", input = Json)]
pub async fn start_remove(request: RemoveRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let spec = jobs.remove_spec(&request).await?;
            let id = jobs.start_remove(spec, &user.username).await?;
            let topology = state()?.topology.clone();
            tokio::spawn(async move { topology.read_choices().await });
            Ok(id)
        }
        .await,
    )
}

/// What unlinking would delete (the peer gateways Meshdeck made) and leave, per cluster. Changes nothing.
#[server(endpoint = "plan_unlink", input = Json)]
pub async fn plan_unlink(request: UnlinkRequest) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.unlink_plan(&request).await?)
        }
        .await,
    )
}

/// Removes links between clusters of a mesh as a job (one direction per pair). Operators and admins.
#[server(endpoint = "start_unlink", input = Json)]
pub async fn start_unlink(request: UnlinkRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let spec = jobs.unlink_spec(&request).await?;
            let id = jobs.start_unlink(spec, &user.username).await?;
            let topology = state()?.topology.clone();
            tokio::spawn(async move { topology.read_choices().await });
            Ok(id)
        }
        .await,
    )
}

/// What upgrading the mesh's Istio version changes in each cluster, in rollout order: the control plane's
/// objects diffed against the live ones, and the commands by hand. Changes nothing.
#[server(endpoint = "plan_upgrade", input = Json)]
pub async fn plan_upgrade(request: UpgradeRequest) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.upgrade_plan(&request).await?)
        }
        .await,
    )
}

/// Upgrades the mesh's Istio version cluster by cluster (or a batch at a time) as a job that stops at the
/// first failing cluster. Operators and admins; returns the job's id.
#[server(endpoint = "start_upgrade", input = Json)]
pub async fn start_upgrade(request: UpgradeRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let (spec, key) = jobs.upgrade_spec(&request).await?;
            Ok(jobs.start_upgrade(spec, key, &user.username).await?)
        }
        .await,
    )
}

/// How a cluster's mesh objects differ from what Meshdeck last applied (a server-side dry run against the live
/// objects; changes nothing); None when the cluster is in no mesh Meshdeck set up. Anyone signed in: SREs read
/// drift.
#[server(endpoint = "cluster_drift", input = Json)]
pub async fn cluster_drift(cluster: ClusterName) -> Result<Option<DriftReport>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.drift_if_meshed(&cluster).await?)
        }
        .await,
    )
}

/// Re-applies what drifted in a cluster (compared again first) as a job: the drifted steps, then the cluster's
/// checks. Operators and admins; returns the job's id.
#[server(endpoint = "start_reapply", input = Json)]
pub async fn start_reapply(cluster: ClusterName) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let (spec, key) = jobs.reapply_spec(&cluster).await?;
            Ok(jobs.start_reapply(spec, key, &user.username).await?)
        }
        .await,
    )
}

/// What re-issuing one cluster's intermediate CA from its mesh's root would change: `cacerts` and istiod's
/// restart (a server-side dry run; changes nothing), with the commands by hand. Anyone signed in may look.
#[server(endpoint = "plan_reissue", input = Json)]
pub async fn plan_reissue(cluster: ClusterName) -> Result<ClusterPlan, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.reissue_plan(&cluster).await?)
        }
        .await,
    )
}

/// Re-issues one cluster's intermediate CA from its mesh's root, then restarts its istiod and runs its checks,
/// as a job. Operators and admins; returns the job's id.
#[server(endpoint = "start_reissue", input = Json)]
pub async fn start_reissue(cluster: ClusterName) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let spec = jobs.reissue_spec(&cluster).await?;
            Ok(jobs.start_reissue(spec, &user.username).await?)
        }
        .await,
    )
}

/// What rotating a mesh's root of trust would change, per cluster in rotation order: each pass's `cacerts`
/// and istiod's restart (a server-side dry run; changes nothing), with the commands by hand. Anyone signed in
/// may look.
#[server(endpoint = "plan_rotation", input = Json)]
pub async fn plan_rotation(mesh: String) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.rotate_plan(&mesh).await?)
        }
        .await,
    )
}

/// Rotates a mesh's root of trust as a job: a new root; every cluster trusts both, then signs with the new,
/// then drops the old — istiod restarted cluster by cluster, the mesh's checks after each pass. Operators and
/// admins; returns the job's id.
#[server(endpoint = "start_rotation", input = Json)]
pub async fn start_rotation(mesh: String) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let spec = jobs.rotate_spec(&mesh).await?;
            Ok(jobs.start_rotation(spec, &user.username).await?)
        }
        .await,
    )
}

/// The settings a mesh runs now, as the change form starts from them: what every member shares, and each
/// member's own values, east-west variant and address. Anyone signed in may look.
#[server(endpoint = "current_settings", input = Json)]
pub async fn current_settings(mesh: String) -> Result<SettingsChangeRequest, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.current_settings(&mesh).await?)
        }
        .await,
    )
}

/// What changing a mesh's settings does to each cluster that changes, in rollout order: its control plane's
/// and east-west gateway's objects diffed against the live ones (a server-side dry run; changes nothing), the
/// peers linked to it again, and the commands by hand. Anyone signed in may look.
#[server(endpoint = "plan_settings_change", input = Json)]
pub async fn plan_settings_change(
    request: SettingsChangeRequest,
) -> Result<Vec<ClusterPlan>, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Viewer).await?;
            Ok(state()?.jobs.change_plan(&request).await?)
        }
        .await,
    )
}

/// Changes a mesh's settings as a job, one cluster at a time, each cluster's checks passing before the next
/// starts; it stops at the first cluster that fails. Operators and admins; returns the job's id.
#[server(endpoint = "start_settings_change", input = Json)]
pub async fn start_settings_change(request: SettingsChangeRequest) -> Result<String, AppError> {
    use crate::model::Role;
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Operator).await?;
            let jobs = &state()?.jobs;
            let (spec, key) = jobs.change_spec(&request).await?;
            Ok(jobs.start_change(spec, key, &user.username).await?)
        }
        .await,
    )
}
