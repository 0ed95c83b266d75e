//! The cluster page's drift section: the cluster's mesh objects compared with what Meshdeck last applied
//! (read when the page opens, again on demand), each drifted object with its diff, YAML and the commands by
//! hand; operators re-apply what drifted as a job (followed on its page).

use leptos::prelude::*;

use super::allowed;
use super::answers::StartError;
use super::mesh_take_apart::follow;
use super::plan_review::PlanView;
use crate::api::StartReapply;
use crate::components::{BUTTON, BUTTON_SECONDARY, ErrorBox};
use crate::model::{AppError, ClusterName, DriftReport, Role, format_time};

const WHY: &str = "mt-1 max-w-prose text-sm text-slate-600 dark:text-slate-300";

/// The comparison, made by the page (with its other resources) and read here; `again` compares again.
pub type DriftResource = crate::data::Data<Result<Option<DriftReport>, AppError>>;

#[component]
pub fn DriftSection(
    name: ClusterName,
    report: DriftResource,
    again: RwSignal<u32>,
) -> impl IntoView {
    let start = ServerAction::<StartReapply>::new();
    follow(move || start.value().get());
    view! {
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" data-testid="drift">
            <div class="flex flex-wrap items-center justify-between gap-3">
                <h2 class="text-lg font-semibold">"Drift"</h2>
                <button type="button" class=BUTTON_SECONDARY on:click=move |_| again.update(|n| *n += 1)>
                    "Compare again"
                </button>
            </div>
            <p class=WHY>
                "This cluster's mesh objects compared with what Meshdeck last applied to it, by a server-side dry run: an object changed by hand shows its diff, a deleted one shows as to be created. Nothing is changed until you re-apply."
            </p>
            <Suspense fallback=|| view! { <p class="mt-3 text-sm">"Comparing…"</p> }>
                {move || {
                    let name = name.clone();
                    Suspend::new(async move {
                    match report.await {
                        Ok(Some(r)) => view! { <DriftAnswer r=r start=start name=name.clone() /> }.into_any(),
                        Ok(None) => view! {
                            <p class="mt-3 text-sm" data-drift="none">
                                "Not part of a mesh Meshdeck set up: there is nothing it applied to compare with."
                            </p>
                        }
                        .into_any(),
                        Err(e) => view! { <div class="mt-3"><ErrorBox error=e /></div> }.into_any(),
                    }
                    })
                }}
            </Suspense>
            <StartError value=start.value() />
        </section>
    }
}

#[component]
fn DriftAnswer(
    r: DriftReport,
    start: ServerAction<StartReapply>,
    name: ClusterName,
) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let when = format!(
        "compared at {} against the mesh's job {} (Istio {})",
        format_time(r.checked_at),
        r.mesh,
        r.istio_version
    );
    let count = r.drifted();
    let not_compared = view! {
        <details class="mt-3 text-sm">
            <summary class="cursor-pointer">"Not compared"</summary>
            <ul class="ml-5 list-disc">{r.not_compared.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul>
        </details>
    };
    let body = if let Some(e) = r.plan.error.clone() {
        view! { <p role="alert" class="mt-3 text-sm text-red-800 dark:text-red-300" data-drift="error">{format!("✕ {e}")}</p> }
            .into_any()
    } else if count == 0 {
        view! { <p class="mt-3" data-drift="clean">{format!("✓ No drift: every compared object is as Meshdeck applied it ({when}).")}</p> }
            .into_any()
    } else {
        view! {
            <p class="mt-3 font-medium" data-drift="drifted">
                {format!("! {count} {} drifted from what Meshdeck applied ({when}).", if count == 1 { "object has" } else { "objects have" })}
            </p>
            <PlanView list=vec![r.plan.clone()] />
            {can_apply.then(|| view! {
                <button
                    type="button"
                    class=format!("{BUTTON} mt-3")
                    disabled=move || start.pending().get()
                    on:click={ let name = name.clone(); move |_| { start.dispatch(StartReapply { cluster: name.clone() }); } }
                >
                    {move || if start.pending().get() { "Starting…" } else { "Re-apply" }}
                </button>
            })}
        }
        .into_any()
    };
    view! {
        {body}
        {not_compared}
    }
}
