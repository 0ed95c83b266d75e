//! What the server answered to a flow's preflight, plan and start, shown the same way on every page that runs
//! a flow (setup, the Mesh page's day-two forms): per cluster findings with what to do and, when one failed,
//! the admin's way on; the plan per cluster (optionally downloadable); the start's error.

use leptos::prelude::*;

use super::plan_review::{PlanView, PreflightTable, plan_download};
use crate::components::{ErrorBox, INPUT};
use crate::model::{AppError, ClusterPlan, PreflightView};

type Answer<T> = Option<Result<T, AppError>>;

/// Whether a preflight's answer has a cluster blocked by a failed finding.
pub fn blocked(value: &Answer<Vec<PreflightView>>) -> bool {
    matches!(value, Some(Ok(list)) if list.iter().any(|c| c.blocked))
}

/// The preflight's findings per cluster; when one failed, what to do — and for an admin, the reason to go
/// on anyway, recorded with the job.
#[component]
pub fn PreflightOutcome(
    #[prop(into)] value: Signal<Answer<Vec<PreflightView>>>,
    is_admin: bool,
    override_reason: RwSignal<String>,
) -> impl IntoView {
    view! {
        {move || match value.get() {
            None => ().into_any(),
            Some(Err(e)) => view! { <div class="mt-3"><ErrorBox error=e /></div> }.into_any(),
            Some(Ok(list)) => view! { <PreflightTable list=list /> }.into_any(),
        }}
        <Show when=move || blocked(&value.get())>
            <div class="mt-3 rounded border border-red-300 p-3 dark:border-red-800" role="alert">
                <p class="font-medium">"✕ Preflight found failures: fix them and run it again."</p>
                {is_admin.then(|| view! {
                    <label class="mt-2 block">
                        <span class="text-sm font-medium">"Or, as an admin, go on anyway — the reason is recorded with the job"</span>
                        <input class=INPUT name="override_reason" prop:value=move || override_reason.get() on:input=move |ev| override_reason.set(event_target_value(&ev)) />
                    </label>
                })}
            </div>
        </Show>
    }
}

/// The plan per cluster, or why there is none; with `download` (a file name), a link to the whole plan as a
/// tar archive.
#[component]
pub fn PlanAnswer(
    #[prop(into)] value: Signal<Answer<Vec<ClusterPlan>>>,
    #[prop(optional)] download: Option<&'static str>,
) -> impl IntoView {
    move || match value.get() {
        None => ().into_any(),
        Some(Err(e)) => view! { <div class="mt-3"><ErrorBox error=e /></div> }.into_any(),
        Some(Ok(list)) => {
            let link = download.map(|file| {
                let href = plan_download(&list);
                view! {
                    <a class="mt-3 inline-block underline" href=href download=file data-testid="plan-download">
                        "Download the whole plan (a folder per cluster and step: YAML, diffs, commands)"
                    </a>
                }
            });
            view! { {link}<PlanView list=list /> }.into_any()
        }
    }
}

/// Why a flow did not start, when it did not.
#[component]
pub fn StartError(#[prop(into)] value: Signal<Answer<String>>) -> impl IntoView {
    move || {
        value
            .get()
            .and_then(Result::err)
            .map(|e| view! { <div class="mt-3"><ErrorBox error=e /></div> })
    }
}
