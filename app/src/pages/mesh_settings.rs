//! The Mesh page's settings change: the form the setup wizard uses (shared settings, the shared east-west
//! variant, each cluster's overrides, variant and address), filled with what the mesh runs now; the plan shows
//! each changing cluster's objects against the live ones, then a job applies them one cluster at a time (its
//! page follows it live).

use std::collections::BTreeMap;

use leptos::prelude::*;

use super::allowed;
use super::answers::{PlanAnswer, StartError};
use super::mesh_take_apart::follow;
use super::setup_settings::{ClusterOverrides, PerCluster, SettingsForm, per_cluster_settings};
use crate::api::{CurrentSettings, PlanSettingsChange, StartSettingsChange};
use crate::components::{BUTTON, BUTTON_SECONDARY, ErrorBox, INPUT};
use crate::model::{
    ClusterName, ClusterSettings, EastWest, MeshSummary, Role, SettingsChangeRequest,
    settings_problems,
};

#[component]
pub fn ChangeSettings(mesh: MeshSummary) -> impl IntoView {
    let load = ServerAction::<CurrentSettings>::new();
    let mesh_id = mesh.job_id.clone();
    let members = mesh.members.clone();
    view! {
        <details class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="settings">
            <summary class="cursor-pointer font-semibold">"Settings"</summary>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">
                "The control plane's settings (ServiceMeshController, gloo-extensions-config) and how peers reach each cluster. Changes are planned against the live objects, then applied one cluster at a time: a cluster's checks must pass before the next starts, and the change stops at the first cluster that fails. When a cluster's east-west gateway changes, the clusters linked to it get their peer gateway for it again. The trust domain cannot change on a running mesh."
            </p>
            <button
                type="button"
                class=format!("{BUTTON_SECONDARY} mt-2")
                disabled=move || load.pending().get()
                on:click={ let id = mesh_id.clone(); move |_| { load.dispatch(CurrentSettings { mesh: id.clone() }); } }
            >
                {move || if load.pending().get() { "Reading…" } else { "Change settings…" }}
            </button>
            {move || match load.value().get() {
                None => None,
                Some(Err(e)) => Some(view! { <ErrorBox error=e /> }.into_any()),
                Some(Ok(current)) => Some(view! { <Editor current=current members=members.clone() /> }.into_any()),
            }}
        </details>
    }
}

#[component]
fn Editor(current: SettingsChangeRequest, members: Vec<String>) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let shared = RwSignal::new(current.settings.clone());
    let nodeport = RwSignal::new(current.eastwest == EastWest::NodePort);
    let per_list: Vec<PerCluster> = members
        .iter()
        .map(|n| {
            let own = ClusterName::new(n)
                .ok()
                .and_then(|c| current.per_cluster.get(&c).cloned())
                .unwrap_or_default();
            (
                n.clone(),
                RwSignal::new(own.mesh),
                RwSignal::new(own.address_override.unwrap_or_default()),
                RwSignal::new(own.eastwest),
            )
        })
        .collect();
    let per = StoredValue::new(per_list.clone());
    let per_cluster = move || -> BTreeMap<ClusterName, ClusterSettings> {
        per.with_value(|per| per_cluster_settings(per, |_| true))
    };
    let names: Vec<ClusterName> = members
        .iter()
        .filter_map(|n| ClusterName::new(n).ok())
        .collect();
    let problems = Memo::new(move |_| settings_problems(&shared.get(), &per_cluster(), &names));
    let mesh = current.mesh.clone();
    let request = move || -> Result<SettingsChangeRequest, String> {
        if !problems.get().is_empty() {
            return Err("Fix the settings marked above.".into());
        }
        Ok(SettingsChangeRequest {
            mesh: mesh.clone(),
            eastwest: if nodeport.get() {
                EastWest::NodePort
            } else {
                EastWest::LoadBalancer
            },
            settings: shared.get(),
            per_cluster: per_cluster(),
        })
    };
    let plan = ServerAction::<PlanSettingsChange>::new();
    let start = ServerAction::<StartSettingsChange>::new();
    {
        let request = request.clone();
        // A changed field invalidates the plan shown.
        Effect::new(move |_| {
            let _ = request();
            plan.clear();
        });
    }
    follow(move || start.value().get());
    let shared_variant = Signal::derive(move || {
        if nodeport.get() {
            "NodePort"
        } else {
            "LoadBalancer"
        }
    });
    let (r0, r1, r2) = (request.clone(), request.clone(), request);
    view! {
        <div class="mt-3" data-testid="settings-form">
            <label class="block max-w-md">
                <span class="text-sm font-medium">"How peers reach the clusters (shared)"</span>
                <select
                    class=INPUT
                    name="settings_eastwest"
                    prop:value=move || if nodeport.get() { "node-port" } else { "load-balancer" }
                    on:change=move |ev| nodeport.set(event_target_value(&ev) == "node-port")
                >
                    <option value="load-balancer">"LoadBalancer"</option>
                    <option value="node-port">"NodePort (alpha)"</option>
                </select>
            </label>
            <h3 class="mt-3 font-semibold">"Every cluster"</h3>
            <SettingsForm value=shared problems=problems prefix="shared.".to_string() overrides=false />
            {per_list
                .into_iter()
                .map(|(name, mesh, address, eastwest)| view! {
                    <ClusterOverrides name=name mesh=mesh address=address eastwest=eastwest problems=problems shared_variant=shared_variant />
                })
                .collect_view()}
            {move || r0().err().map(|e| view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> })}
            <div class="mt-3 flex flex-wrap gap-2">
                <button
                    type="button"
                    class=BUTTON_SECONDARY
                    disabled={ let r = r1.clone(); move || r().is_err() || plan.pending().get() }
                    on:click=move |_| { if let Ok(req) = r1() { plan.dispatch(PlanSettingsChange { request: req }); } }
                >
                    {move || if plan.pending().get() { "Planning…" } else { "Show the plan" }}
                </button>
                {can_apply.then(|| view! {
                    <button
                        type="button"
                        class=BUTTON
                        disabled=move || !matches!(plan.value().get(), Some(Ok(ref p)) if !p.is_empty() && p.iter().all(|c| c.error.is_none())) || start.pending().get()
                        on:click=move |_| { if let Ok(req) = r2() { start.dispatch(StartSettingsChange { request: req }); } }
                    >
                        {move || if start.pending().get() { "Starting…" } else { "Apply the settings" }}
                    </button>
                })}
            </div>
            <PlanAnswer value=plan.value() />
            <StartError value=start.value() />
        </div>
    }
}
