//! The Mesh page's upgrade form: a new Istio version for the whole mesh, and or a new Gloo Operator chart
//! (the console's, or another version of the mesh's), rolled out one cluster (or a batch) at a time in the
//! order shown, each cluster's checks passing before the next starts. The plan shows each operator release's
//! chart now and after, and each ServiceMeshController's change against the live one.

use leptos::prelude::*;

use super::allowed;
use super::answers::{PlanAnswer, StartError};
use super::mesh_take_apart::follow;
use crate::api::{PlanUpgrade, StartUpgrade};
use crate::components::{BUTTON, BUTTON_SECONDARY, INPUT};
use crate::model::{MeshSummary, OperatorMove, Role, UpgradeRequest};

#[component]
pub fn Upgrade(mesh: MeshSummary) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let version = RwSignal::new(String::new());
    let batch = RwSignal::new(1usize);
    // "keep", "console" or "version".
    let operator = RwSignal::new("keep".to_string());
    let chart_version = RwSignal::new(String::new());
    let running = mesh.istio_version.clone();
    let count = mesh.members.len();
    let job_id = mesh.job_id.clone();
    let (chart_now, console_chart) = (mesh.operator_chart.clone(), mesh.console_chart.clone());
    // The console's chart is worth offering when it differs, or is local (a new chart may sit at the same path).
    let offer_console = console_chart != chart_now || console_chart.version.is_none();
    let versioned = chart_now.version.is_some();
    let request = move || -> Result<UpgradeRequest, String> {
        let v = version.get().trim().to_string();
        let op = match operator.get().as_str() {
            "console" => OperatorMove::ConsoleChart,
            "version" => match chart_version.get().trim() {
                "" => return Err("Type the operator chart version to move to.".into()),
                cv => OperatorMove::Version {
                    version: cv.to_string(),
                },
            },
            _ => OperatorMove::Keep,
        };
        if v.is_empty() && op == OperatorMove::Keep {
            return Err("Type the Istio version to upgrade to, or move the operator chart.".into());
        }
        if !v.is_empty() && v != running {
            mesh_ids::upgrade_rule(&running, &v)?;
        }
        Ok(UpgradeRequest {
            mesh: job_id.clone(),
            version: v,
            operator: op,
            order: vec![],
            batch: batch.get(),
        })
    };
    let plan = ServerAction::<PlanUpgrade>::new();
    let start = ServerAction::<StartUpgrade>::new();
    {
        let request = request.clone();
        Effect::new(move |_| {
            let _ = request();
            plan.clear();
        });
    }
    follow(move || start.value().get());
    let (r0, r1, r2) = (request.clone(), request.clone(), request.clone());
    view! {
        <details class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="upgrade">
            <summary class="cursor-pointer font-semibold">{format!("Upgrade Istio (runs {}) or the operator", mesh.istio_version)}</summary>
            <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">
                {format!("In this order: {}. Each cluster's operator release moves first when its chart changes (helm upgrade, then the operator must run again), then its ServiceMeshController gets the new version; the next cluster starts once the operator reports it Ready and the cluster's checks pass. The rollout stops at the first cluster that fails, and the clusters after it keep what they run. One minor version at a time; never 1.26.0 or 1.26.1 without a -patch suffix. Leave the version empty to move only the operator.", mesh.members.join(" → "))}
            </p>
            <div class="mt-2 flex flex-wrap gap-4">
                <label class="block">
                    <span class="text-sm font-medium">"New version"</span>
                    <input class=INPUT name="upgrade_version" placeholder="e.g. 1.28.1-patch0" prop:value=move || version.get() on:input=move |ev| version.set(event_target_value(&ev)) />
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"Clusters at a time"</span>
                    <input class=INPUT type="number" min="1" max=count.to_string() name="upgrade_batch" prop:value=move || batch.get().to_string()
                        on:input=move |ev| { if let Ok(n) = event_target_value(&ev).parse::<usize>() { batch.set(n.clamp(1, count.max(1))); } } />
                </label>
            </div>
            <fieldset class="mt-3" data-testid="operator-chart">
                <legend class="text-sm font-medium">"Gloo Operator chart"</legend>
                <label class="flex items-center gap-2 text-sm">
                    <input type="radio" name="upgrade_operator" value="keep" prop:checked=move || operator.get() == "keep" on:change=move |_| operator.set("keep".into()) />
                    {format!("Keep {chart_now}")}
                </label>
                {offer_console.then(|| view! {
                    <label class="flex items-center gap-2 text-sm">
                        <input type="radio" name="upgrade_operator" value="console" prop:checked=move || operator.get() == "console" on:change=move |_| operator.set("console".into()) />
                        {format!("Move to the console's chart: {console_chart}")}
                    </label>
                })}
                {versioned.then(|| view! {
                    <label class="flex flex-wrap items-center gap-2 text-sm">
                        <input type="radio" name="upgrade_operator" value="version" prop:checked=move || operator.get() == "version" on:change=move |_| operator.set("version".into()) />
                        "Another version of this chart:"
                        <input class=INPUT name="upgrade_chart_version" placeholder="e.g. 0.4.3" prop:value=move || chart_version.get()
                            on:input=move |ev| { chart_version.set(event_target_value(&ev)); operator.set("version".into()); } />
                    </label>
                })}
            </fieldset>
            {move || r0().err().filter(|_| !version.get().trim().is_empty() || operator.get() != "keep").map(|e| view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> })}
            <div class="mt-3 flex flex-wrap gap-2">
                <button
                    type="button"
                    class=BUTTON_SECONDARY
                    disabled={ let r = r1.clone(); move || r().is_err() || plan.pending().get() }
                    on:click=move |_| { if let Ok(req) = r1() { plan.dispatch(PlanUpgrade { request: req }); } }
                >
                    {move || if plan.pending().get() { "Planning…" } else { "Show the plan" }}
                </button>
                {can_apply.then(|| view! {
                    <button
                        type="button"
                        class=BUTTON
                        disabled=move || !matches!(plan.value().get(), Some(Ok(_))) || start.pending().get()
                        on:click=move |_| { if let Ok(req) = r2() { start.dispatch(StartUpgrade { request: req }); } }
                    >
                        {move || if start.pending().get() { "Starting…" } else { "Upgrade" }}
                    </button>
                })}
            </div>
            <PlanAnswer value=plan.value() />
            <StartError value=start.value() />
        </details>
    }
}
