//! Linking a cluster Meshdeck has no credentials for (another team's, another company's): export for its
//! owner the peer gateways their cluster needs to reach ours (download or copy), and import what they send
//! back — their cluster's peer gateway, validated before anything is applied — into the clusters that should
//! reach it.

use std::collections::BTreeSet;

use leptos::prelude::*;

use super::setup::Copyable;
use crate::api::{ExportPeers, ImportPeers};
use crate::components::{BUTTON, BUTTON_SECONDARY, ErrorBox, INPUT};
use crate::model::{ClusterName, EastWest};

/// The largest YAML accepted (the server enforces the same).
const MAX_YAML: usize = 256 * 1024;

fn names(set: &BTreeSet<String>) -> Vec<ClusterName> {
    set.iter()
        .filter_map(|n| ClusterName::new(n).ok())
        .collect()
}

#[component]
pub fn ForeignLink(clusters: Vec<String>, nodeport: RwSignal<bool>) -> impl IntoView {
    let export_set = RwSignal::new(clusters.iter().cloned().collect::<BTreeSet<_>>());
    let import_set = RwSignal::new(clusters.iter().cloned().collect::<BTreeSet<_>>());
    let yaml = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<String>);
    let export = ServerAction::<ExportPeers>::new();
    let import = ServerAction::<ImportPeers>::new();

    let boxes = move |set: RwSignal<BTreeSet<String>>, group: &'static str| {
        clusters
            .iter()
            .map(|n| {
                let (n1, n2) = (n.clone(), n.clone());
                view! {
                    <label class="mr-4 inline-flex items-center gap-1">
                        <input
                            type="checkbox"
                            name=group
                            value=n.clone()
                            prop:checked=move || set.get().contains(&n1)
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                set.update(|s| { if on { s.insert(n2.clone()); } else { s.remove(&n2); } });
                            }
                        />
                        {n.clone()}
                    </label>
                }
            })
            .collect_view()
    };
    let export_boxes = boxes(export_set, "export_cluster");
    let import_boxes = boxes(import_set, "import_cluster");

    let on_file = move |ev: leptos::ev::Event| {
        super::read_chosen_file(ev, MAX_YAML, "256 KiB", yaml, local_error)
    };

    view! {
        <div class="mt-2 grid gap-6 md:grid-cols-2">
            <div data-testid="export-peers">
                <h3 class="font-semibold">"Export for its owner"</h3>
                <p class="mt-1 text-sm">"The peer gateways their cluster needs to reach these clusters, built from each one's live east-west gateway. They apply the file with kubectl apply -f."</p>
                <div class="mt-2">{export_boxes}</div>
                <button
                    type="button"
                    class=format!("mt-2 {BUTTON_SECONDARY}")
                    disabled=move || export_set.get().is_empty() || export.pending().get()
                    on:click=move |_| {
                        export.dispatch(ExportPeers {
                            clusters: names(&export_set.get_untracked()),
                            eastwest: if nodeport.get_untracked() { EastWest::NodePort } else { EastWest::LoadBalancer },
                        });
                    }
                >
                    {move || if export.pending().get() { "Exporting…" } else { "Export" }}
                </button>
                {move || match export.value().get() {
                    None => ().into_any(),
                    Some(Err(e)) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
                    Some(Ok(text)) => {
                        let href = format!("data:application/yaml;charset=utf-8,{}", super::encode_query(&text));
                        view! {
                            <a class="mt-2 inline-block underline" href=href download="meshdeck-peers.yaml" data-testid="export-download">"Download meshdeck-peers.yaml"</a>
                            <Copyable text=text label="Peer gateways" />
                        }.into_any()
                    }
                }}
            </div>
            <div data-testid="import-peers">
                <h3 class="font-semibold">"Import what they sent"</h3>
                <p class="mt-1 text-sm">"Their cluster's peer gateway (istio-remote-peer-<cluster>, e.g. from istioctl multicluster link or their own export). Every document is checked before anything is applied; then it is applied in each cluster ticked here."</p>
                <label class="mt-2 block">
                    <span class="text-sm font-medium">"YAML"</span>
                    <textarea class=format!("{INPUT} h-32 font-mono text-xs") name="peer_yaml" spellcheck="false" bind:value=yaml></textarea>
                </label>
                <label class="text-sm">
                    <span class="sr-only">"YAML file"</span>
                    <input type="file" accept=".yaml,.yml,text/yaml" on:change=on_file class="text-sm" />
                </label>
                <div class="mt-2">{import_boxes}</div>
                <button
                    type="button"
                    class=format!("mt-2 {BUTTON}")
                    disabled=move || yaml.get().trim().is_empty() || import_set.get().is_empty() || import.pending().get()
                    on:click=move |_| {
                        import.dispatch(ImportPeers { into: names(&import_set.get_untracked()), yaml: yaml.get_untracked() });
                    }
                >
                    {move || if import.pending().get() { "Importing…" } else { "Import" }}
                </button>
                {move || local_error.get().map(|m| view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300">{format!("✕ {m}")}</p> })}
                {move || match import.value().get() {
                    None => ().into_any(),
                    Some(Err(e)) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
                    Some(Ok(list)) => view! {
                        <ul class="mt-2 text-sm">
                            {list.into_iter().map(|o| view! {
                                <li data-import=o.cluster.clone()>
                                    {match o.error {
                                        None => format!("✓ {}: {} in place", o.cluster, o.applied.join(", ")),
                                        Some(e) => format!("✕ {}: {e}", o.cluster),
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </div>
        </div>
    }
}
