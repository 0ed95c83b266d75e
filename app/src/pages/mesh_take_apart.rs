//! The Mesh page's destructive forms: removing links (one direction each) and taking the mesh out of one of
//! its clusters. Each shows its plan — what would be deleted (Meshdeck's own objects) and left (anyone
//! else's) — before it can run, and the removal asks for the cluster's name to confirm.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::allowed;
use super::answers::{PlanAnswer, StartError};
use crate::api::{PlanRemove, PlanUnlink, StartRemove, StartUnlink};
use crate::components::{BUTTON, BUTTON_SECONDARY, INPUT};
use crate::model::{ClusterName, MeshSummary, RemoveRequest, Role, UnlinkRequest};

const WHY: &str = "mt-1 text-sm text-slate-600 dark:text-slate-300";

/// Follows a started job to its page.
pub(super) fn follow(start: impl Fn() -> Option<Result<String, crate::model::AppError>> + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = start() {
            navigate(&format!("/activity/{id}"), Default::default());
        }
    });
}

#[component]
pub fn RemoveCluster(mesh: MeshSummary) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let cluster = RwSignal::new(String::new());
    let cacerts = RwSignal::new(false);
    let gateway_api = RwSignal::new(false);
    let confirm = RwSignal::new(String::new());
    let job_id = mesh.job_id.clone();
    let request = move || -> Result<RemoveRequest, String> {
        let c = cluster.get();
        if c.is_empty() {
            return Err("Pick the cluster to take out of the mesh.".into());
        }
        Ok(RemoveRequest {
            mesh: job_id.clone(),
            cluster: ClusterName::new(&c).map_err(|e| e.to_string())?,
            cacerts: cacerts.get(),
            gateway_api: gateway_api.get(),
        })
    };
    let plan = ServerAction::<PlanRemove>::new();
    let start = ServerAction::<StartRemove>::new();
    {
        let request = request.clone();
        Effect::new(move |_| {
            let _ = request();
            plan.clear();
        });
    }
    follow(move || start.value().get());
    let confirmed = move || !cluster.get().is_empty() && confirm.get().trim() == cluster.get();
    let options = mesh
        .members
        .iter()
        .map(|m| view! { <option value=m.clone()>{m.clone()}</option> })
        .collect_view();
    let (r1, r2) = (request.clone(), request.clone());
    view! {
        <details class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="remove-cluster">
            <summary class="cursor-pointer font-semibold">"Take a cluster out of the mesh"</summary>
            <p class=WHY>"First every other member's peer gateway for it, so no cluster keeps sending it traffic; then its own peer gateways, east-west gateway, control plane and operator. Only what Meshdeck applied is deleted: anything else found is listed and left."</p>
            <label class="mt-2 block max-w-md">
                <span class="text-sm font-medium">"Cluster"</span>
                <select class=INPUT name="remove_cluster" prop:value=move || cluster.get() on:change=move |ev| cluster.set(event_target_value(&ev))>
                    <option value="">"(choose)"</option>
                    {options}
                </select>
            </label>
            <label class="mt-2 flex items-center gap-2">
                <input type="checkbox" name="remove_cacerts" prop:checked=move || cacerts.get() on:change=move |ev| cacerts.set(event_target_checked(&ev)) />
                "Also delete cacerts (its intermediate CA) — keep it if the cluster may rejoin with the same root"
            </label>
            <label class="mt-1 flex items-center gap-2">
                <input type="checkbox" name="remove_gateway_api" prop:checked=move || gateway_api.get() on:change=move |ev| gateway_api.set(event_target_checked(&ev)) />
                "Also delete the Gateway API CRDs Meshdeck installed — never while any Gateway or route remains"
            </label>
            <button
                type="button"
                class=format!("mt-3 {BUTTON_SECONDARY}")
                disabled={ let r = r1.clone(); move || r().is_err() || plan.pending().get() }
                on:click=move |_| { if let Ok(req) = r1() { plan.dispatch(PlanRemove { request: req }); } }
            >
                {move || if plan.pending().get() { "Planning…" } else { "Show what would be removed" }}
            </button>
            <PlanAnswer value=plan.value() />
            {can_apply.then(|| view! {
                <label class="mt-3 block max-w-md">
                    <span class="text-sm font-medium">"Type the cluster's name to confirm"</span>
                    <input class=INPUT name="remove_confirm" autocomplete="off" prop:value=move || confirm.get() on:input=move |ev| confirm.set(event_target_value(&ev)) />
                </label>
                <button
                    type="button"
                    class=format!("mt-3 {BUTTON}")
                    disabled=move || !confirmed() || !matches!(plan.value().get(), Some(Ok(_))) || start.pending().get()
                    on:click=move |_| { if let Ok(req) = r2() { start.dispatch(StartRemove { request: req }); } }
                >
                    {move || if start.pending().get() { "Starting…" } else { "Take it out of the mesh" }}
                </button>
            })}
            {(!can_apply).then(|| view! { <p class="mt-2 text-sm">"Viewers see the plan; operators and admins remove."</p> })}
            <StartError value=start.value() />
        </details>
    }
}

#[component]
pub fn Unlink(mesh: MeshSummary) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let chosen = RwSignal::new(std::collections::BTreeSet::<(String, String)>::new());
    let job_id = mesh.job_id.clone();
    let request = move || -> Result<UnlinkRequest, String> {
        let pairs = chosen
            .get()
            .iter()
            .map(|(a, b)| {
                Ok((
                    ClusterName::new(a).map_err(|e| e.to_string())?,
                    ClusterName::new(b).map_err(|e| e.to_string())?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if pairs.is_empty() {
            return Err("Tick the links to remove.".into());
        }
        Ok(UnlinkRequest {
            mesh: job_id.clone(),
            pairs,
        })
    };
    let plan = ServerAction::<PlanUnlink>::new();
    let start = ServerAction::<StartUnlink>::new();
    {
        let request = request.clone();
        Effect::new(move |_| {
            let _ = request();
            plan.clear();
        });
    }
    follow(move || start.value().get());
    let boxes = mesh
        .members
        .iter()
        .flat_map(|a| mesh.members.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| a != b)
        .map(|(a, b)| {
            let key = (a.clone(), b.clone());
            let key2 = key.clone();
            view! {
                <label class="flex items-center gap-2">
                    <input
                        type="checkbox"
                        name="unlink"
                        value=format!("{a}>{b}")
                        prop:checked=move || chosen.get().contains(&key)
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            chosen.update(|c| { if on { c.insert(key2.clone()); } else { c.remove(&key2); } });
                        }
                    />
                    {format!("{a} stops reaching {b}")}
                </label>
            }
        })
        .collect_view();
    let (r1, r2) = (request.clone(), request.clone());
    view! {
        <details class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="unlink">
            <summary class="cursor-pointer font-semibold">"Remove links"</summary>
            <p class=WHY>"Each link is one direction: the peer gateway one cluster holds for another. Removing it stops the first cluster's workloads from reaching the other's services; tick both directions to separate two clusters. The topology then expects them unlinked."</p>
            <fieldset class="mt-2 grid gap-1 sm:grid-cols-2"><legend class="sr-only">"Links to remove"</legend>{boxes}</fieldset>
            <div class="mt-3 flex flex-wrap gap-2">
                <button
                    type="button"
                    class=BUTTON_SECONDARY
                    disabled={ let r = r1.clone(); move || r().is_err() || plan.pending().get() }
                    on:click=move |_| { if let Ok(req) = r1() { plan.dispatch(PlanUnlink { request: req }); } }
                >
                    {move || if plan.pending().get() { "Planning…" } else { "Show what would be removed" }}
                </button>
                {can_apply.then(|| view! {
                    <button
                        type="button"
                        class=BUTTON
                        disabled=move || !matches!(plan.value().get(), Some(Ok(_))) || start.pending().get()
                        on:click=move |_| { if let Ok(req) = r2() { start.dispatch(StartUnlink { request: req }); } }
                    >
                        {move || if start.pending().get() { "Starting…" } else { "Remove these links" }}
                    </button>
                })}
            </div>
            <PlanAnswer value=plan.value() />
            <StartError value=start.value() />
        </details>
    }
}
