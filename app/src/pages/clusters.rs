use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use super::allowed;
use super::cluster_access::AccessSection;
use super::cluster_drift::{DriftResource, DriftSection};
use crate::api::{
    RemoveCluster, RetestCluster, UpdateCluster, cluster_drift, get_cluster, list_clusters,
};
use crate::components::{
    BUTTON, BUTTON_DANGER, BUTTON_SECONDARY, DataTable, ErrorBox, Gate, HealthBadge, INPUT,
    TD_WIDE, TR,
};
use crate::model::{AppError, ClusterName, ClusterSummary, Role, format_time};

fn labels_text(c: &ClusterSummary) -> String {
    c.labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[component]
pub fn ClustersPage() -> impl IntoView {
    let clusters = crate::data::data(|| (), |_| list_clusters());
    let can_register = allowed(Role::Operator);
    view! {
        <Gate title="Clusters">
            <div class="flex flex-wrap items-center justify-between gap-3">
                <h1 class="text-2xl font-bold">"Clusters"</h1>
                <Show when=can_register>
                    <a href="/clusters/new" class=BUTTON>
                        "Register clusters"
                    </a>
                </Show>
            </div>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match clusters.await {
                        Ok(list) if list.is_empty() => {
                            view! {
                                <p class="mt-6 max-w-prose">
                                    "No clusters yet. Register the clusters of your mesh from a kubeconfig: Meshdeck tests each one and lists the permissions it lacks."
                                </p>
                            }
                                .into_any()
                        }
                        Ok(list) => view! { <ClusterTable list=list /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

#[component]
fn ClusterTable(list: Vec<ClusterSummary>) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|c| {
            let href = format!("/clusters/{}", c.name);
            let version = c
                .connectivity
                .as_ref()
                .and_then(|x| x.server_version.clone())
                .unwrap_or_else(|| "—".into());
            let latency = c
                .connectivity
                .as_ref()
                .and_then(|x| x.latency_ms)
                .map_or("—".into(), |ms| format!("{ms} ms"));
            let missing = c.connectivity.as_ref().map_or(0, |x| x.missing.len());
            let access = match &c.access {
                None => ("given", "credentials given".to_string()),
                Some(a) if a.problem.is_some() => ("problem", "✕ least privilege: token not renewed".to_string()),
                Some(_) => ("least-privilege", "least privilege".to_string()),
            };
            let checked = c
                .connectivity
                .as_ref()
                .map_or("never".into(), |x| format_time(x.checked_at));
            view! {
                <tr class=TR data-cluster=c.name.to_string()>
                    <td class="whitespace-nowrap px-3 py-2 font-medium">
                        <a class="text-indigo-700 underline dark:text-indigo-300" href=href>
                            {c.name.to_string()}
                        </a>
                    </td>
                    <td class="whitespace-nowrap px-3 py-2">
                        <HealthBadge health=c.health() />
                    </td>
                    <td class="px-3 py-2">{c.network.to_string()}</td>
                    <td class="px-3 py-2">{labels_text(&c)}</td>
                    <td class="px-3 py-2">{version}</td>
                    <td class=TD_WIDE>{latency}</td>
                    <td class="px-3 py-2">
                        {if missing == 0 { "none".to_string() } else { format!("{missing} missing") }}
                    </td>
                    <td class="px-3 py-2 text-sm" data-access=access.0>{access.1}</td>
                    <td class=TD_WIDE>
                        <span class="text-sm">{checked}</span>
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <DataTable
            caption="Registered clusters".to_string()
            head=vec!["Name", "Health", "Network", "Labels", "Kubernetes", "Latency", "Permissions", "Access", "Last tested"]
            wide=vec!["Latency", "Last tested"]
            rows=rows
            empty="No clusters yet."
            testid="clusters"
        />
    }
}

#[component]
pub fn ClusterPage() -> impl IntoView {
    let params = use_params_map();
    let retest = ServerAction::<RetestCluster>::new();
    let update = ServerAction::<UpdateCluster>::new();
    let remove = ServerAction::<RemoveCluster>::new();
    // Bumped when the Access section changed how the cluster is reached (onboarded, token renewed).
    let changed = RwSignal::new(0u32);
    let cluster = crate::data::data(
        move || {
            (
                params.read().get("name").unwrap_or_default(),
                retest.version().get(),
                update.version().get(),
                changed.get(),
            )
        },
        |(name, _, _, _)| async move {
            let name = ClusterName::new(&name).map_err(|e| AppError::NotFound(e.to_string()))?;
            get_cluster(name).await
        },
    );
    // Created here with the cluster's, not inside its Suspense: a resource made while another one's view
    // resolves is made at a different moment on the server and in the browser, and hydration then fails.
    let drift_again = RwSignal::new(0u32);
    let drift = crate::data::data(
        move || {
            (
                params.read().get("name").unwrap_or_default(),
                drift_again.get(),
            )
        },
        |(name, _)| async move {
            let name = ClusterName::new(&name).map_err(|e| AppError::NotFound(e.to_string()))?;
            cluster_drift(name).await
        },
    );
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = remove.value().get() {
            navigate("/clusters", Default::default());
        }
    });
    view! {
        <Gate title="Cluster">
            <p class="text-sm">
                <a class="text-indigo-700 underline dark:text-indigo-300" href="/clusters">
                    "← Clusters"
                </a>
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match cluster.await {
                        Ok(c) => view! { <ClusterDetail c=c retest=retest update=update remove=remove changed=changed drift=drift drift_again=drift_again /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

#[component]
fn ClusterDetail(
    c: ClusterSummary,
    retest: ServerAction<RetestCluster>,
    update: ServerAction<UpdateCluster>,
    remove: ServerAction<RemoveCluster>,
    changed: RwSignal<u32>,
    drift: DriftResource,
    drift_again: RwSignal<u32>,
) -> impl IntoView {
    // The role is known here (the gate loaded it); actions are shown once, the server checks again.
    let can_operate = allowed(Role::Operator)();
    let can_remove = allowed(Role::Admin)();
    let name = c.name.to_string();
    let (name_retest, name_update, name_remove) = (name.clone(), name.clone(), name.clone());
    let conn = c.connectivity.clone();
    let update_error = move || update.value().get().and_then(Result::err);
    let remove_error = move || remove.value().get().and_then(Result::err);
    let report = match conn {
        None => view! { <p>"Not tested yet."</p> }.into_any(),
        Some(x) => {
            let missing = x.missing.clone();
            view! {
                <dl class="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1">
                    <dt class="font-medium">"Reachable"</dt>
                    <dd>{if x.reachable { "yes" } else { "no" }}</dd>
                    <dt class="font-medium">"Kubernetes"</dt>
                    <dd>{x.server_version.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt class="font-medium">"Latency"</dt>
                    <dd>{x.latency_ms.map_or("—".into(), |ms| format!("{ms} ms"))}</dd>
                    <dt class="font-medium">"Last tested"</dt>
                    <dd>{format_time(x.checked_at)}</dd>
                </dl>
                {x.problem.clone().map(|p| view! { <p role="alert" class="mt-3 text-red-800 dark:text-red-300">{p}</p> })}
                {if missing.is_empty() {
                    view! { <p class="mt-3" data-testid="permissions">"✓ Meshdeck has every permission it needs."</p> }.into_any()
                } else {
                    view! {
                        <div class="mt-3" data-testid="permissions">
                            <p class="font-medium">
                                {format!("! Missing {} permissions — grant these to the credentials Meshdeck uses:", missing.len())}
                            </p>
                            <ul class="ml-5 list-disc text-sm">
                                {missing.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                            </ul>
                        </div>
                    }
                        .into_any()
                }}
            }
                .into_any()
        }
    };
    view! {
        <div class="mt-2 flex flex-wrap items-center gap-3">
            <h1 class="text-2xl font-bold">{name.clone()}</h1>
            <HealthBadge health=c.health() />
        </div>
        <dl class="mt-4 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1">
            <dt class="font-medium">"API server"</dt>
            <dd class="break-all">{c.server.clone()}</dd>
            <dt class="font-medium">"Network"</dt>
            <dd>{c.network.to_string()}</dd>
            <dt class="font-medium">"Labels"</dt>
            <dd>{labels_text(&c)}</dd>
            <dt class="font-medium">"TLS verification"</dt>
            <dd>
                {if c.insecure_skip_tls_verify {
                    "⚠ off — chosen explicitly when this cluster was registered"
                } else {
                    "on"
                }}
            </dd>
            <dt class="font-medium">"Registered"</dt>
            <dd>{format_time(c.created_at)}</dd>
        </dl>
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
            <div class="flex items-center justify-between">
                <h2 class="text-lg font-semibold">"Connectivity"</h2>
                {can_operate.then(|| view! {
                    <ActionForm action=retest>
                        <input type="hidden" name="name" value=name_retest />
                        <button type="submit" class=BUTTON_SECONDARY disabled=move || retest.pending().get()>
                            {move || if retest.pending().get() { "Testing…" } else { "Re-test" }}
                        </button>
                    </ActionForm>
                })}
            </div>
            <div class="mt-3">{report}</div>
            {move || retest.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
        </section>
        <AccessSection c=c.clone() changed=changed />
        <DriftSection name=c.name.clone() report=drift again=drift_again />
        {can_operate.then(|| view! {
            <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
                <h2 class="text-lg font-semibold">"Edit"</h2>
                <ActionForm action=update attr:class="mt-3 grid gap-3 md:grid-cols-3">
                    <input type="hidden" name="name" value=name_update.clone() />
                    <label class="block">
                        <span class="text-sm font-medium">"Network"</span>
                        <input class=INPUT name="network" value=c.network.to_string() required />
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"env label"</span>
                        <input class=INPUT name="env" value=c.labels.get("env").cloned().unwrap_or_default() />
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"region label"</span>
                        <input class=INPUT name="region" value=c.labels.get("region").cloned().unwrap_or_default() />
                    </label>
                    <div class="md:col-span-3">
                        <button type="submit" class=BUTTON disabled=move || update.pending().get()>
                            "Save"
                        </button>
                    </div>
                </ActionForm>
                {move || update_error().map(|e| view! { <ErrorBox error=e /> })}
            </section>
        })}
        {can_remove.then(|| view! {
            <section class="mt-6 rounded border border-red-300 bg-white p-4 dark:border-red-900 dark:bg-slate-900">
                <h2 class="text-lg font-semibold">"Remove from Meshdeck"</h2>
                <p class="mt-1 max-w-prose text-sm">
                    "Deletes this cluster and its stored credentials from Meshdeck. Nothing in the cluster is changed (to delete the console's own account there too, use Revoke under Access)."
                </p>
                <ActionForm action=remove attr:class="mt-3 flex flex-wrap items-end gap-3">
                    <input type="hidden" name="name" value=name_remove.clone() />
                    <label class="block">
                        <span class="text-sm font-medium">{format!("Type {name_remove} to confirm")}</span>
                        <input class=INPUT name="confirm" autocomplete="off" />
                    </label>
                    <button type="submit" class=BUTTON_DANGER disabled=move || remove.pending().get()>
                        "Remove"
                    </button>
                </ActionForm>
                {move || remove_error().map(|e| view! { <ErrorBox error=e /> })}
            </section>
        })}
    }
}
