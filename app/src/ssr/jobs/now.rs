//! A running mesh as it is now, for every day-two flow to start from: its setup (or growth) job, with the
//! version and operator chart of its newest succeeded upgrade, the root of its newest succeeded rotation, and each member's
//! settings from its newest succeeded settings change — so an upgrade, a growth, a drift comparison or a
//! rotation never puts back what a later flow changed.

use std::collections::BTreeMap;

use super::change::{CHANGE_JOBS, CHANGE_KIND, ChangeSpec};
use super::*;
use crate::model::MeshSummary;

/// A running mesh as it is now.
pub(super) struct MeshNow {
    pub(super) mesh: MeshSummary,
    /// The mesh's setup (or growth) job.
    pub(super) row: JobRow,
    /// That job's spec as it was written.
    pub(super) base: SetupSpec,
    /// The mesh now: `clusters` its members (base order) with their current settings and no version of their
    /// own (the mesh's), `members` empty, `istio_version`, `chart`, `root_id` and `data_plane` as they are now.
    pub(super) setup: SetupSpec,
}

impl Jobs {
    /// The mesh of job `id` as it runs now.
    pub(super) async fn mesh_now(&self, id: &str) -> Result<MeshNow> {
        self.mesh_now_of(self.mesh_of(id).await?).await
    }

    /// `mesh` (as [`Jobs::meshes`] lists it) as it runs now.
    pub(super) async fn mesh_now_of(&self, mesh: MeshSummary) -> Result<MeshNow> {
        let row = self
            .inner
            .store
            .job(&mesh.job_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("mesh {}", mesh.job_id)))?;
        let base: SetupSpec = spec_of(&row)?;
        let root_id = self.mesh_root_id(&mesh.job_id, &base.root_id).await?;
        let (changed, data_plane) = match self.newest_change(&mesh.job_id, true).await? {
            Some((_, spec)) => (
                spec.setup
                    .clusters
                    .into_iter()
                    .map(|c| (c.name.clone(), c))
                    .collect::<BTreeMap<_, _>>(),
                spec.setup.data_plane,
            ),
            None => (BTreeMap::new(), base.data_plane),
        };
        let clusters = base
            .clusters
            .iter()
            .chain(&base.members)
            .filter(|c| mesh.members.contains(&c.name.to_string()))
            .map(|c| {
                let mut c = changed.get(&c.name).cloned().unwrap_or_else(|| c.clone());
                // The version is the mesh's now (after its upgrades), not the one first applied.
                c.mesh.version = String::new();
                c
            })
            .collect();
        let setup = SetupSpec {
            clusters,
            members: vec![],
            istio_version: mesh.istio_version.clone(),
            chart: Chart {
                reference: mesh.operator_chart.reference.clone(),
                version: mesh.operator_chart.version.clone(),
            },
            root_id,
            data_plane,
            ..base.clone()
        };
        Ok(MeshNow {
            mesh,
            row,
            base,
            setup,
        })
    }

    /// The newest settings change of `mesh_job` (only a succeeded one when `succeeded`), with its spec.
    pub(super) async fn newest_change(
        &self,
        mesh_job: &str,
        succeeded: bool,
    ) -> Result<Option<(JobRow, ChangeSpec)>> {
        Ok(self
            .inner
            .store
            .list_jobs(CHANGE_JOBS)
            .await?
            .into_iter()
            .filter(|j| j.kind == CHANGE_KIND && (!succeeded || j.state == "succeeded"))
            .filter_map(|j| Some((spec_of::<ChangeSpec>(&j).ok()?, j)))
            .find(|(s, _)| s.mesh == mesh_job)
            .map(|(s, j)| (j, s)))
    }

    /// The newest settings change of `mesh_job` when it has not succeeded (running, failed, cancelled): its
    /// clusters may run the new settings or the old ones.
    pub(super) async fn unfinished_change(&self, mesh_job: &str) -> Result<Option<JobRow>> {
        Ok(self
            .newest_change(mesh_job, false)
            .await?
            .map(|(j, _)| j)
            .filter(|j| j.state != "succeeded"))
    }

    /// The newest upgrade of `mesh_job` when it has not succeeded: its clusters may run either version.
    pub(super) async fn unfinished_upgrade(&self, mesh_job: &str) -> Result<Option<JobRow>> {
        Ok(self
            .inner
            .store
            .list_jobs(CHANGE_JOBS)
            .await?
            .into_iter()
            .filter(|j| j.kind == UPGRADE_KIND)
            .find(|j| spec_of::<UpgradeSpec>(j).is_ok_and(|s| s.mesh == mesh_job))
            .filter(|j| j.state != "succeeded"))
    }
}
