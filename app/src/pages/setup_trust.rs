//! Setup's root of trust: an admin makes one (generated or imported), and each chosen cluster's `cacerts`
//! chain is shown with its validity and problems, or what applying will mint.

use std::collections::BTreeSet;

use leptos::prelude::*;

use super::setup::WHY;
use crate::api::{CreateRoot, get_trust_chains};
use crate::components::{BUTTON_SECONDARY, ErrorBox, INPUT};
use crate::model::{ClusterName, format_time};
/// An admin makes the root of trust before the first setup: generated (ECDSA P-256 or RSA 4096) or imported
/// (a PEM certificate and its key, checked to match). Only the certificate is ever shown again.
#[component]
pub(super) fn RootMaker(
    root: crate::data::Data<Result<Option<crate::model::RootSummary>, crate::model::AppError>>,
) -> impl IntoView {
    use crate::model::RootAlgorithm;
    // "ecdsa", "rsa" or "import".
    let how = RwSignal::new("ecdsa".to_string());
    let cert = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let create = ServerAction::<CreateRoot>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            root.refetch();
        }
    });
    let radio = move |value: &'static str, label: &'static str| {
        view! {
            <label class="flex items-center gap-2">
                <input type="radio" name="root_how" value=value prop:checked=move || how.get() == value on:change=move |_| how.set(value.to_string()) />
                {label}
            </label>
        }
    };
    view! {
        <fieldset class="mt-3" data-testid="root-maker">
            <legend class="font-medium">"Make the root now (admins)"</legend>
            {radio("ecdsa", "Generate ECDSA P-256 (small and fast; Istio's default recipe uses RSA)")}
            {radio("rsa", "Generate RSA 4096 (what Istio's Makefile makes; takes a few seconds)")}
            {radio("import", "Import your organisation's root (PEM certificate and key)")}
            <Show when=move || how.get() == "import">
                <label class="mt-2 block">
                    <span class="text-sm font-medium">"Root certificate (PEM)"</span>
                    <textarea class=format!("{INPUT} h-24 font-mono text-xs") name="root_cert" spellcheck="false" bind:value=cert></textarea>
                </label>
                <label class="mt-2 block">
                    <span class="text-sm font-medium">"Root key (PEM) — stored encrypted, never shown again"</span>
                    <textarea class=format!("{INPUT} h-24 font-mono text-xs") name="root_key" spellcheck="false" autocomplete="off" bind:value=key></textarea>
                </label>
            </Show>
            <button
                type="button"
                class=format!("mt-2 {BUTTON_SECONDARY}")
                disabled=move || create.pending().get() || (how.get() == "import" && (cert.get().trim().is_empty() || key.get().trim().is_empty()))
                on:click=move |_| {
                    let h = how.get_untracked();
                    let import = h == "import";
                    create.dispatch(CreateRoot {
                        algorithm: if h == "rsa" { RootAlgorithm::Rsa4096 } else { RootAlgorithm::EcdsaP256 },
                        cert_pem: import.then(|| cert.get_untracked()),
                        key_pem: import.then(|| key.get_untracked()),
                    });
                }
            >
                {move || if create.pending().get() { "Making the root…" } else { "Make the root" }}
            </button>
            {move || create.value().get().and_then(Result::err).map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
        </fieldset>
    }
}

/// Per chosen cluster: the chain its `cacerts` holds (intermediate, validity, key, pathlen, the root's
/// fingerprint and whether it is the console's root) with what is wrong and the public chain to download — or,
/// for a cluster without one yet, what applying will write. Read in the browser as the selection or the root
/// changes.
#[component]
pub(super) fn TrustTable(
    selected: RwSignal<BTreeSet<String>>,
    root: crate::data::Data<Result<Option<crate::model::RootSummary>, crate::model::AppError>>,
) -> impl IntoView {
    use crate::model::ClusterTrust;
    // Read in an effect (browser only) into a plain signal, not a resource: the table must not suspend the
    // page around it, and server and browser both render "Reading the clusters…" first.
    let chains = RwSignal::new(None::<Result<Vec<ClusterTrust>, crate::model::AppError>>);
    let asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        // Read again when the root changes (an admin just made one), so the table judges against it.
        root.track();
        let names: Vec<ClusterName> = selected
            .get()
            .iter()
            .filter_map(|n| ClusterName::new(n).ok())
            .collect();
        asked.update_value(|n| *n += 1);
        let this = asked.get_value();
        leptos::task::spawn_local(async move {
            let got = if names.is_empty() {
                Ok(vec![])
            } else {
                get_trust_chains(names).await
            };
            // Only the answer to the latest selection is shown.
            if asked.try_get_value() == Some(this) {
                chains.set(Some(got));
            }
        });
    });
    let row = |t: ClusterTrust| {
        let (icon, status) = if t.error.is_some() {
            ("✕", "cannot be read")
        } else if t.intermediate.is_none() {
            ("○", "no cacerts yet")
        } else if t.problems.iter().any(|p| !p.starts_with("expires within")) {
            ("✕", "problem")
        } else if !t.problems.is_empty() {
            ("⚠", "expires soon")
        } else {
            ("✓", "signed by the console's root")
        };
        let notes = t
            .error
            .iter()
            .chain(t.problems.iter())
            .map(|p| view! { <p role=if t.error.is_some() { "alert" } else { "note" }>{p.clone()}</p> })
            .collect_view();
        let cluster = t.cluster.clone();
        let details = match t.intermediate {
            Some(i) => {
                let href = format!(
                    "data:application/x-pem-file;charset=utf-8,{}",
                    super::encode_query(&i.chain_pem)
                );
                let fp = i.root_fingerprint.clone().unwrap_or_default();
                view! {
                    <td class="px-3 py-1">
                        <span class="block">{i.subject.clone()}</span>
                        <span class="block text-xs">{format!("issued by {}", i.issuer)}</span>
                    </td>
                    <td class="whitespace-nowrap px-3 py-1">{format!("{} to {}", format_time(i.not_before), format_time(i.not_after))}</td>
                    <td class="px-3 py-1">
                        {i.key_algorithm.clone()}
                        {i.pathlen.map(|p| format!(", pathlen {p}"))}
                    </td>
                    <td class="px-3 py-1">
                        <span class="block break-all font-mono text-xs" title=fp.clone()>{if fp.is_empty() { "—".to_string() } else { fp.clone() }}</span>
                        <span class="block text-xs">{if i.root_matches { "✓ the console's root" } else { "✕ not the console's root" }}</span>
                    </td>
                    <td class="px-3 py-1">
                        <a class="underline" href=href download=format!("{cluster}-cert-chain.pem") data-testid="trust-download">
                            "Download the chain"
                        </a>
                    </td>
                }
                .into_any()
            }
            None => view! {
                <td class="px-3 py-1" colspan="5">{t.planned.clone().unwrap_or_default()}</td>
            }
            .into_any(),
        };
        view! {
            <tr class="border-t border-slate-200 align-top dark:border-slate-800" data-trust=t.cluster.clone()>
                <th scope="row" class="px-3 py-1 text-left font-medium">{t.cluster.clone()}</th>
                <td class="px-3 py-1">
                    <span class="whitespace-nowrap font-medium">{format!("{icon} {status}")}</span>
                    <div class="text-sm">{notes}</div>
                </td>
                {details}
            </tr>
        }
    };
    view! {
        <h3 class="mt-4 font-semibold">"Each chosen cluster"</h3>
        <p class=WHY>"What each cluster's cacerts Secret holds now — only public certificates are read out — or what applying will write. A cluster with another root keeps it: Meshdeck never overwrites a root of trust."</p>
        {move || match chains.get() {
            None => view! { <p class="mt-2 text-sm">"Reading the clusters…"</p> }.into_any(),
            Some(Err(e)) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! { <p class="mt-2 text-sm">"Choose clusters in step 1 to see theirs."</p> }.into_any(),
            Some(Ok(list)) => view! {
                <div class="mt-2 overflow-x-auto">
                    <table class="w-full text-left text-sm" data-testid="trust-table">
                        <thead>
                            <tr>
                                <th scope="col" class="px-3 py-1">"Cluster"</th>
                                <th scope="col" class="px-3 py-1">"Status"</th>
                                <th scope="col" class="px-3 py-1">"Intermediate"</th>
                                <th scope="col" class="px-3 py-1">"Valid"</th>
                                <th scope="col" class="px-3 py-1">"Key"</th>
                                <th scope="col" class="px-3 py-1">"Root (SHA-256)"</th>
                                <th scope="col" class="px-3 py-1">"Certificates"</th>
                            </tr>
                        </thead>
                        <tbody>{list.into_iter().map(row).collect_view()}</tbody>
                    </table>
                </div>
            }.into_any(),
        }}
    }
}
