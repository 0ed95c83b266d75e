//! Checks: the checks of `istioctl multicluster check` (and the root of trust) for any set of clusters, at
//! any time, read-only — viewers too. A run is a form post (it does work, so never a GET); its report is kept
//! and shown at `/checks?report=<id>`, which works without JavaScript and can be linked to from a ticket;
//! "Copy as text" gives the report as text.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::{StartChecks, get_check_report, list_clusters};
use crate::components::{BUTTON, BUTTON_SECONDARY, DataTable, ErrorBox, Gate, TR};
use crate::model::{CheckStatus, ChecksReport, format_time};

#[component]
pub fn CheckBadge(status: CheckStatus) -> impl IntoView {
    let (icon, word) = status.label();
    let class = match status {
        CheckStatus::Pass => {
            "bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100"
        }
        CheckStatus::Pending => "bg-sky-100 text-sky-900 dark:bg-sky-900 dark:text-sky-100",
        CheckStatus::Warn => "bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100",
        CheckStatus::Fail => "bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100",
    };
    view! {
        <span
            class=format!("inline-flex items-center gap-1 rounded px-2 py-0.5 text-sm font-medium {class}")
            data-check=word
        >
            <span aria-hidden="true">{icon}</span>
            {word}
        </span>
    }
}

#[component]
pub fn ChecksPage() -> impl IntoView {
    let query = use_query_map();
    // Clusters named in the address are ticked (a link from the topology); a report id shows that run.
    let chosen = move || query.read().get_all("cluster").unwrap_or_default();
    let report_id = move || query.read().get("report");
    let start = ServerAction::<StartChecks>::new();
    let clusters = crate::data::data(|| (), |_| list_clusters());
    let report = crate::data::data(report_id, |id| async move {
        match id {
            Some(id) => Some(get_check_report(id).await),
            None => None,
        }
    });
    view! {
        <Gate title="Checks">
            <h1 class="text-2xl font-bold">"Checks"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "The checks of istioctl multicluster check for the clusters you pick — operator license, istiod, ztunnel and east-west pods, gateways, peers, stale workloads — plus the root of trust across clusters. Read-only: nothing is changed. Each run is kept for 7 days under its own address, to link to from a ticket."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let list = match clusters.await {
                        Ok(list) => list,
                        Err(e) => return view! { <ErrorBox error=e /> }.into_any(),
                    };
                    if list.is_empty() {
                        return view! { <p class="mt-6">"No clusters yet: register clusters first."</p> }.into_any();
                    }
                    let picked = chosen();
                    let shown: Vec<String> = match report.get_untracked().flatten() {
                        Some(Ok(r)) => r.clusters.iter().map(|c| c.cluster.clone()).collect(),
                        _ => vec![],
                    };
                    let boxes = list
                        .into_iter()
                        .map(|c| {
                            let name = c.name.to_string();
                            let checked = if !picked.is_empty() {
                                picked.contains(&name)
                            } else if !shown.is_empty() {
                                shown.contains(&name)
                            } else {
                                true
                            };
                            view! {
                                <label class="inline-flex items-center gap-2">
                                    <input type="checkbox" name="clusters[]" value=name.clone() checked=checked />
                                    {name.clone()}
                                </label>
                            }
                        })
                        .collect_view();
                    view! {
                        <ActionForm action=start attr:class="mt-4 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
                            <fieldset>
                                <legend class="font-medium">"Clusters"</legend>
                                <div class="mt-2 flex flex-wrap gap-4">{boxes}</div>
                            </fieldset>
                            <button type="submit" class=format!("mt-3 {BUTTON}") disabled=move || start.pending().get()>"Run checks"</button>
                        </ActionForm>
                    }
                        .into_any()
                })}
            </Suspense>
            {move || start.pending().get().then(|| view! { <p class="mt-4" data-testid="running">"Running the checks…"</p> })}
            {move || start.value().get().and_then(Result::err).map(|e| view! { <div class="mt-4"><ErrorBox error=e /></div> })}
            <Suspense fallback=|| view! { <p class="mt-4">"Loading the report…"</p> }>
                {move || Suspend::new(async move {
                    match report.await {
                        None => ().into_any(),
                        Some(Ok(r)) => view! { <Report report=r /> }.into_any(),
                        Some(Err(e)) => view! { <div class="mt-4"><ErrorBox error=e /></div> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

#[component]
fn Report(report: ChecksReport) -> impl IntoView {
    let text = report.text.clone();
    let copied = RwSignal::new(false);
    let copy = move |_| {
        super::setup::copy_text(&text);
        copied.set(true);
    };
    let clusters = report
        .clusters
        .into_iter()
        .map(|c| {
            let rows = c
                .results
                .into_iter()
                .map(|r| {
                    view! {
                        <tr class=format!("{TR} align-top") data-result=r.title.clone()>
                            <td class="whitespace-nowrap px-3 py-2"><CheckBadge status=r.status /></td>
                            <td class="px-3 py-2 font-medium">{r.title.clone()}</td>
                            <td class="px-3 py-2 text-sm">
                                <p>{r.message.clone()}</p>
                                {(!r.details.is_empty()).then(|| view! {
                                    <ul class="ml-4 list-disc">
                                        {r.details.iter().map(|d| view! { <li>{d.clone()}</li> }).collect_view()}
                                    </ul>
                                })}
                                {r.remediation.clone().map(|fix| view! { <p class="mt-1 font-medium">{format!("What to do: {fix}")}</p> })}
                            </td>
                        </tr>
                    }
                    .into_any()
                })
                .collect();
            view! {
                <section class="mt-6" data-cluster=c.cluster.clone()>
                    <h2 class="flex items-center gap-2 text-lg font-semibold">
                        {format!("Cluster {}", c.cluster)}
                        <CheckBadge status=c.worst />
                    </h2>
                    <DataTable
                        caption=format!("Checks of cluster {}", c.cluster)
                        head=vec!["Result", "Check", "Details"]
                        rows=rows
                        empty="No check ran in this cluster."
                    />
                </section>
            }
        })
        .collect_view();
    view! {
        <div class="mt-6 flex flex-wrap items-center gap-3">
            <p class="text-sm">
                {format!(
                    "Ran at {}{}.",
                    format_time(report.ran_at),
                    report.ran_by.as_deref().map(|u| format!(" by {u}")).unwrap_or_default(),
                )}
            </p>
            {report.id.clone().map(|id| view! {
                <a class="text-sm text-indigo-700 underline dark:text-indigo-300" href=format!("/checks?report={id}") data-testid="report-link">
                    "Link to this report"
                </a>
            })}
            <button type="button" class=BUTTON_SECONDARY on:click=copy>
                {move || if copied.get() { "Copied" } else { "Copy as text" }}
            </button>
        </div>
        {clusters}
        <details class="mt-4">
            <summary class="cursor-pointer">"The report as text"</summary>
            <pre class="mt-2 overflow-x-auto rounded bg-slate-100 p-3 text-xs dark:bg-slate-800" data-testid="report-text">
                {report.text}
            </pre>
        </details>
    }
}
