//! Setup: the mesh engine as a guided flow. 1 Choose the clusters, how they are linked (full mesh, or the
//! pairs of a link matrix — one-way allowed — or automatic peering), the Istio version, the license and the
//! east-west variant, each with why it matters; 2 Preflight (per cluster, pass/warn/fail with the fix; a
//! failure blocks the next step unless an admin overrides it with a reason, which the job records); 3 Root of
//! trust (the one in use, or an admin makes one: generated or imported; per chosen cluster, the chain its
//! `cacerts` holds with validity and problems, or what applying will mint); 4 Settings (the control plane's,
//! shared and per cluster — with the cluster's own east-west variant —, validated as typed: `setup_settings`);
//! 5 Review the plan (per cluster, tabs: the objects' YAML, their diff against what is live, the commands to
//! do it by hand — each copyable, the whole plan downloadable); 6 Apply: the job starts and its page follows it live; 7 Link a cluster Meshdeck has no
//! credentials for (`setup_link`).

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::allowed;
use super::answers::{PlanAnswer, PreflightOutcome, StartError};
use super::setup_link::ForeignLink;
use super::setup_settings::{ClusterOverrides, PerCluster, SettingsForm, per_cluster_settings};
use super::setup_trust::{RootMaker, TrustTable};
use crate::api::{PlanSetup, PreflightSetup, StartSetup, get_root, list_clusters};
use crate::components::{BUTTON, BUTTON_SECONDARY, ErrorBox, Gate, INPUT};
use crate::model::{
    ClusterName, ClusterSettings, EastWest, LicenseChoice, MeshSettings, PeeringChoice, Role,
    SetupRequest, format_time, settings_problems,
};

/// The Istio version offered first (the guide's).
pub const DEFAULT_ISTIO_VERSION: &str = "1.28.1-patch0";

const SECTION: &str =
    "mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900";
pub(super) const WHY: &str = "mt-1 text-sm text-slate-600 dark:text-slate-300";

/// Copies `text` to the clipboard (browser only).
pub(super) fn copy_text(text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(w) = web_sys::window() {
        let _ = w.navigator().clipboard().write_text(text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}

/// A block of text with a Copy button.
#[component]
pub(super) fn Copyable(text: String, #[prop(optional)] label: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let t = text.clone();
    view! {
        <div class="mt-2">
            <div class="flex items-center justify-between">
                <span class="text-sm font-medium">{label}</span>
                <button type="button" class="text-sm underline" on:click=move |_| { copy_text(&t); copied.set(true); }>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
            <pre class="mt-1 max-h-80 overflow-auto rounded bg-slate-100 p-2 text-xs dark:bg-slate-800">{text}</pre>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let clusters = crate::data::data(|| (), |_| list_clusters());
    // Created here, with the page, so the server and the browser create resources in the same order.
    let root = crate::data::data(|| (), |_| get_root());
    let charts = super::operator_charts::OperatorCharts::with_page();
    view! {
        <Gate title="Setup">
            <h1 class="text-2xl font-bold">"Set up a mesh"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "Installs the Gloo Operator, a shared root of trust, the control plane and an east-west gateway in each cluster, then links them — the whole guide, previewed before anything changes and resumable if something fails."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match clusters.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="mt-6">"No clusters yet. "<a class="underline" href="/clusters/new">"Register the clusters"</a>" of your mesh first."</p>
                        }.into_any(),
                        Ok(list) => {
                            let names: Vec<(String, String)> = list
                                .into_iter()
                                .map(|c| (c.name.to_string(), c.network.to_string()))
                                .collect();
                            view! { <Wizard clusters=names root=root /> }.into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <super::operator_charts::OperatorChartsPanel panel=charts />
        </Gate>
    }
}

#[component]
fn Wizard(
    clusters: Vec<(String, String)>,
    root: crate::data::Data<Result<Option<crate::model::RootSummary>, crate::model::AppError>>,
) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let is_admin = allowed(Role::Admin)();
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let automatic = RwSignal::new(false);
    let management = RwSignal::new(clusters.first().map(|c| c.0.clone()).unwrap_or_default());
    let version = RwSignal::new(DEFAULT_ISTIO_VERSION.to_string());
    let license_is_key = RwSignal::new(true);
    let license_key = RwSignal::new(String::new());
    let license_ref = RwSignal::new("gloo-mesh/gloo-license".to_string());
    let nodeport = RwSignal::new(false);
    let override_reason = RwSignal::new(String::new());
    // Ordered pairs (from, to) taken out of the full mesh in the link matrix.
    let excluded = RwSignal::new(BTreeSet::<(String, String)>::new());
    let shared = RwSignal::new(MeshSettings::default());
    // Per cluster: its overrides, its east-west address override and its east-west variant (None = shared).
    let per_list: Vec<PerCluster> = clusters
        .iter()
        .map(|(n, _)| {
            (
                n.clone(),
                RwSignal::new(MeshSettings::default()),
                RwSignal::new(String::new()),
                RwSignal::new(None::<EastWest>),
            )
        })
        .collect();
    let per = StoredValue::new(per_list.clone());
    let per_cluster = move || -> BTreeMap<ClusterName, ClusterSettings> {
        let chosen = selected.get();
        per.with_value(|per| per_cluster_settings(per, |n| chosen.contains(n)))
    };
    let chosen_names = move || -> Vec<ClusterName> {
        selected
            .get()
            .iter()
            .filter_map(|n| ClusterName::new(n).ok())
            .collect()
    };
    let problems =
        Memo::new(move |_| settings_problems(&shared.get(), &per_cluster(), &chosen_names()));

    let request = move || -> Result<SetupRequest, String> {
        let names = chosen_names();
        if names.is_empty() {
            return Err("Pick at least one cluster.".into());
        }
        let peering = if automatic.get() {
            let m = ClusterName::new(&management.get()).map_err(|e| e.to_string())?;
            PeeringChoice::Automatic { management: m }
        } else {
            let out = excluded.get();
            let all = crate::model::full_mesh_pairs(&names);
            if all
                .iter()
                .any(|(a, b)| out.contains(&(a.to_string(), b.to_string())))
            {
                PeeringChoice::Pairs {
                    pairs: all
                        .into_iter()
                        .filter(|(a, b)| !out.contains(&(a.to_string(), b.to_string())))
                        .collect(),
                }
            } else {
                PeeringChoice::FullMesh
            }
        };
        if !problems.get().is_empty() {
            return Err("Fix the settings marked in step 4.".into());
        }
        let license = if license_is_key.get() {
            LicenseChoice::Key {
                key: license_key.get(),
            }
        } else {
            LicenseChoice::Secret {
                reference: license_ref.get(),
            }
        };
        let reason = override_reason.get();
        Ok(SetupRequest {
            clusters: names,
            istio_version: version.get(),
            eastwest: if nodeport.get() {
                EastWest::NodePort
            } else {
                EastWest::LoadBalancer
            },
            peering,
            license,
            override_reason: (!reason.trim().is_empty()).then_some(reason),
            settings: shared.get(),
            per_cluster: per_cluster(),
        })
    };
    let version_problem = move || crate::model::version_rule(version.get().trim()).err();
    // NodePort needs 1.28 or newer: said next to the choice, and the preflight refuses it too (any cluster
    // with its own NodePort choice included).
    let nodeport_problem = move || {
        let v = version.get();
        let per_cluster_nodeport = per_cluster()
            .values()
            .any(|c| c.eastwest == Some(EastWest::NodePort));
        (nodeport.get() || per_cluster_nodeport)
            .then(|| crate::model::nodeport_rule(v.trim()).err())
            .flatten()
    };

    let preflight = ServerAction::<PreflightSetup>::new();
    let plan = ServerAction::<PlanSetup>::new();
    let start = ServerAction::<StartSetup>::new();
    // A changed choice invalidates what was checked and planned.
    Effect::new(move |_| {
        let _ = request();
        preflight.clear();
        plan.clear();
    });
    let blocked = move || super::answers::blocked(&preflight.value().get());
    let preflight_done = move || matches!(preflight.value().get(), Some(Ok(_)));
    let may_review =
        move || preflight_done() && (!blocked() || !override_reason.get().trim().is_empty());
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = start.value().get() {
            navigate(&format!("/activity/{id}"), Default::default());
        }
    });

    let cluster_boxes = clusters
        .iter()
        .map(|(name, network)| {
            let n = name.clone();
            let n2 = name.clone();
            view! {
                <label class="flex items-center gap-2">
                    <input
                        type="checkbox"
                        name="cluster"
                        value=name.clone()
                        prop:checked=move || selected.get().contains(&n)
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            selected.update(|s| { if on { s.insert(n2.clone()); } else { s.remove(&n2); } });
                        }
                    />
                    <span class="font-medium">{name.clone()}</span>
                    <span class="text-sm">{format!("network {network}")}</span>
                </label>
            }
        })
        .collect_view();
    let management_names: Vec<String> = clusters.iter().map(|(n, _)| n.clone()).collect();
    let all_names = management_names.clone();

    view! {
        <section class=SECTION aria-labelledby="choose">
            <h2 id="choose" class="text-lg font-semibold">"1. Choose"</h2>
            <fieldset class="mt-3">
                <legend class="font-medium">"Clusters"</legend>
                <p class=WHY>"Every chosen cluster gets the operator, the control plane and an east-west gateway; their cluster and network names must be unique."</p>
                <div class="mt-2 grid gap-1">{cluster_boxes}</div>
            </fieldset>
            <fieldset class="mt-4">
                <legend class="font-medium">"Linking"</legend>
                <p class=WHY>"Manual linking makes a peer gateway for every ordered pair here; automatic peering lets the management plane distribute them, which scales past a handful of clusters."</p>
                <label class="mt-2 flex items-center gap-2">
                    <input type="radio" name="peering" value="full-mesh" prop:checked=move || !automatic.get() on:change=move |_| automatic.set(false) />
                    "Linked by Meshdeck (full mesh, or the pairs you pick)"
                </label>
                <label class="flex items-center gap-2">
                    <input type="radio" name="peering" value="automatic" prop:checked=move || automatic.get() on:change=move |_| automatic.set(true) />
                    "Automatic peering through a management cluster"
                </label>
                <Show when=move || { !automatic.get() && selected.get().len() >= 2 }>
                    <LinkMatrix selected=selected excluded=excluded />
                </Show>
                <Show when=move || automatic.get()>
                    <label class="mt-2 block max-w-xs">
                        <span class="text-sm font-medium">"Management cluster"</span>
                        <select class=INPUT name="management" on:change=move |ev| management.set(event_target_value(&ev)) prop:value=move || management.get()>
                            {management_names.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <p class=WHY data-testid="automatic-peering-needs">"Automatic peering (beta) needs the platform team's Gloo Platform releases in gloo-mesh: in the management cluster gloo-platform-crds with featureGates.ConfigDistribution=true and installEnterpriseCrds=true, and gloo-platform with featureGates.ConfigDistribution=true; in every other cluster gloo-platform-crds with installEnterpriseCrds=true and the Gloo agent. The preflight reads each release and gives the exact helm upgrade for whatever is missing."</p>
                </Show>
            </fieldset>
            <label class="mt-4 block max-w-xs">
                <span class="font-medium">"Istio version"</span>
                <input class=INPUT name="istio_version" prop:value=move || version.get() on:input=move |ev| version.set(event_target_value(&ev)) aria-describedby="version-why" />
            </label>
            <p id="version-why" class=WHY>"At least 1.24.3 for multicluster peering; never 1.26.0 or 1.26.1 without a -patch suffix (broken peering; 1.26.1-patch0 and later are fine); the same minor in every cluster."</p>
            {move || version_problem().map(|p| view! { <p role="alert" class="mt-1 text-sm text-red-800 dark:text-red-300">{p}</p> })}
            <fieldset class="mt-4">
                <legend class="font-medium">"License"</legend>
                <p class=WHY>"The operator will not install the Solo distribution without it. A pasted key is stored encrypted with the job and written to a Secret — never on a command line."</p>
                <label class="mt-2 flex items-center gap-2">
                    <input type="radio" name="license_kind" prop:checked=move || license_is_key.get() on:change=move |_| license_is_key.set(true) />
                    "Paste a license key"
                </label>
                <label class="flex items-center gap-2">
                    <input type="radio" name="license_kind" prop:checked=move || !license_is_key.get() on:change=move |_| license_is_key.set(false) />
                    "Use a Secret already in every cluster"
                </label>
                <Show
                    when=move || license_is_key.get()
                    fallback=move || view! {
                        <label class="mt-2 block max-w-md">
                            <span class="text-sm font-medium">"Secret (namespace/name)"</span>
                            <input class=INPUT name="license_ref" prop:value=move || license_ref.get() on:input=move |ev| license_ref.set(event_target_value(&ev)) />
                        </label>
                    }
                >
                    <label class="mt-2 block max-w-md">
                        <span class="text-sm font-medium">"License key"</span>
                        <input class=INPUT type="password" autocomplete="off" name="license_key" prop:value=move || license_key.get() on:input=move |ev| license_key.set(event_target_value(&ev)) />
                    </label>
                </Show>
            </fieldset>
            <fieldset class="mt-4">
                <legend class="font-medium">"How peers reach each cluster"</legend>
                <p class=WHY>"LoadBalancer gives the east-west gateway its own address; choose NodePort where no load balancer assigns addresses (on-premises, kind), and peers will dial the nodes."</p>
                <p class=WHY>"NodePort is alpha in Solo Istio 1.28 (likely to change, not fully tested, not supported for production) and needs 1.28 or newer."</p>
                <label class="mt-2 flex items-center gap-2">
                    <input type="radio" name="eastwest" value="load-balancer" prop:checked=move || !nodeport.get() on:change=move |_| nodeport.set(false) />
                    "LoadBalancer"
                </label>
                <label class="flex items-center gap-2">
                    <input type="radio" name="eastwest" value="node-port" prop:checked=move || nodeport.get() on:change=move |_| nodeport.set(true) />
                    "NodePort"
                    <span class="rounded bg-amber-100 px-1.5 text-xs font-medium text-amber-900 dark:bg-amber-900 dark:text-amber-100">"alpha"</span>
                </label>
                {move || nodeport_problem().map(|p| view! { <p role="alert" class="mt-1 text-sm text-red-800 dark:text-red-300" data-problem="eastwest">{format!("✕ {p}")}</p> })}
            </fieldset>
            {move || request().err().map(|e| view! { <p class="mt-3 text-sm">{e}</p> })}
        </section>

        <section class=SECTION aria-labelledby="preflight">
            <h2 id="preflight" class="text-lg font-semibold">"2. Preflight"</h2>
            <p class=WHY>"Checks each cluster before anything is installed: versions, every permission the setup needs, existing Istio or Gateway API CRDs, load-balancer addresses, the license."</p>
            {can_apply.then(|| view! {
                <button
                    type="button"
                    class=format!("mt-3 {BUTTON}")
                    disabled=move || request().is_err() || preflight.pending().get()
                    on:click=move |_| { if let Ok(r) = request() { preflight.dispatch(PreflightSetup { request: r }); } }
                >
                    {move || if preflight.pending().get() { "Checking…" } else { "Run preflight" }}
                </button>
            })}
            {(!can_apply).then(|| view! { <p class="mt-3 text-sm">"Operators and admins run the preflight (it briefly creates a probe Service in each cluster)."</p> })}
            <PreflightOutcome value=preflight.value() is_admin=is_admin override_reason=override_reason />
        </section>

        <section class=SECTION aria-labelledby="root">
            <h2 id="root" class="text-lg font-semibold">"3. Root of trust"</h2>
            <p class=WHY>"One root signs an intermediate CA per cluster (O=Istio, CN=Intermediate CA, L=<cluster>, pathlen 0), written as cacerts before istiod starts, so workloads in every cluster trust each other. The root's key stays encrypted in Meshdeck."</p>
            <Suspense fallback=|| view! { <p class="mt-2">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match root.await {
                        Ok(Some(r)) => {
                            let href = format!("data:application/x-pem-file;charset=utf-8,{}", super::encode_query(&r.cert_pem));
                            view! {
                                <dl class="mt-2 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm" data-testid="root">
                                    <dt class="font-medium">"Subject"</dt><dd>{r.subject.clone()}</dd>
                                    <dt class="font-medium">"Key"</dt><dd>{match r.algorithm { crate::model::RootAlgorithm::EcdsaP256 => "ECDSA P-256", crate::model::RootAlgorithm::Rsa4096 => "RSA 4096" }}</dd>
                                    <dt class="font-medium">"SHA-256"</dt><dd class="break-all font-mono">{r.fingerprint.clone()}</dd>
                                    <dt class="font-medium">"Valid"</dt><dd>{format!("{} to {}", format_time(r.not_before), format_time(r.not_after))}</dd>
                                    <dt class="font-medium">"Made by"</dt><dd>{format!("{} at {}", r.created_by, format_time(r.created_at))}</dd>
                                </dl>
                                <a class="mt-2 inline-block underline" href=href download="root-cert.pem">"Download the root certificate"</a>
                            }.into_any()
                        }
                        Ok(None) => view! {
                            <p class="mt-2" data-testid="root">"No root yet: applying generates an ECDSA P-256 root (an admin can make an RSA 4096 one or import one first)."</p>
                            {is_admin.then(|| view! { <RootMaker root=root /> })}
                        }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <TrustTable selected=selected root=root />
        </section>

        <section class=SECTION aria-labelledby="settings">
            <h2 id="settings" class="text-lg font-semibold">"4. Settings"</h2>
            <p class=WHY>"The control plane's settings (ServiceMeshController and gloo-extensions-config). Set them once for every cluster; override per cluster below. Empty fields keep the operator's defaults."</p>
            <dl class="mt-2 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                <dt class="font-medium">"Data plane mode"</dt><dd>"Ambient — multicluster peering runs in istiod's ambient controllers, so it is required here."</dd>
                <dt class="font-medium">"Traffic capture"</dt><dd>"Auto — InitContainer capture exists only for the sidecar data plane."</dd>
                <dt class="font-medium">"Cluster, network, version"</dt><dd>"From each cluster's registration and step 1."</dd>
            </dl>
            <h3 class="mt-3 font-semibold">"Every cluster"</h3>
            <SettingsForm value=shared problems=problems prefix="shared.".to_string() overrides=false />
            {per_list
                .iter()
                .map(|(name, mesh, address, eastwest)| {
                    let (name, mesh, address, eastwest) = (name.clone(), *mesh, *address, *eastwest);
                    let shown = name.clone();
                    let shared_variant = Signal::derive(move || if nodeport.get() { "NodePort" } else { "LoadBalancer" });
                    view! {
                        <Show when={ let n = shown.clone(); move || selected.get().contains(&n) }>
                            <ClusterOverrides name=name.clone() mesh=mesh address=address eastwest=eastwest problems=problems shared_variant=shared_variant />
                        </Show>
                    }
                })
                .collect_view()}
        </section>

        <section class=SECTION aria-labelledby="review">
            <h2 id="review" class="text-lg font-semibold">"5. Review"</h2>
            <p class=WHY>"What will change in each cluster, compared with what is there now. Nothing is applied before you confirm."</p>
            <button
                type="button"
                class=format!("mt-3 {BUTTON_SECONDARY}")
                disabled=move || request().is_err() || plan.pending().get() || (can_apply && !may_review())
                on:click=move |_| { if let Ok(r) = request() { plan.dispatch(PlanSetup { request: r }); } }
            >
                {move || if plan.pending().get() { "Planning…" } else { "Show the plan" }}
            </button>
            <PlanAnswer value=plan.value() download="meshdeck-plan.tar" />
        </section>

        <section class=SECTION aria-labelledby="apply">
            <h2 id="apply" class="text-lg font-semibold">"6. Apply"</h2>
            <p class=WHY>"Starts a job: clusters in parallel, then the links, then every check until green. You can leave the page; the job goes on and Activity shows it live."</p>
            {can_apply.then(|| view! {
                <button
                    type="button"
                    class=format!("mt-3 {BUTTON}")
                    disabled=move || !matches!(plan.value().get(), Some(Ok(_))) || start.pending().get()
                    on:click=move |_| { if let Ok(r) = request() { start.dispatch(StartSetup { request: r }); } }
                >
                    {move || if start.pending().get() { "Starting…" } else { "Apply" }}
                </button>
            })}
            {(!can_apply).then(|| view! { <p class="mt-3 text-sm">"Viewers see the plan; operators and admins apply it."</p> })}
            <StartError value=start.value() />
        </section>

        <section class=SECTION aria-labelledby="foreign">
            <h2 id="foreign" class="text-lg font-semibold">"7. Link a cluster Meshdeck cannot reach"</h2>
            <p class=WHY>"For a cluster whose credentials you do not have: its owner applies the peer gateways you export, and sends back theirs for you to import. Links made this way are checked like any other."</p>
            {if can_apply {
                view! { <ForeignLink clusters=all_names nodeport=nodeport /> }.into_any()
            } else {
                view! { <p class="mt-3 text-sm">"Operators and admins export and import peer gateways."</p> }.into_any()
            }}
        </section>
    }
}

/// Which cluster holds a peer gateway for which: rows are the holders, columns the clusters they reach.
/// Everything is linked by default (a full mesh); clearing one box makes that link one-way.
#[component]
fn LinkMatrix(
    selected: RwSignal<BTreeSet<String>>,
    excluded: RwSignal<BTreeSet<(String, String)>>,
) -> impl IntoView {
    let names = move || selected.get().into_iter().collect::<Vec<_>>();
    view! {
        <div class="mt-3" data-testid="link-matrix">
            <p class="text-sm">"Tick where the row's cluster should reach the column's cluster (it gets a peer gateway for it). Clear one box of a pair for a one-way link."</p>
            <div class="mt-1 flex gap-3 text-sm">
                <button type="button" class="underline" on:click=move |_| excluded.set(BTreeSet::new())>"Link all (full mesh)"</button>
                <button type="button" class="underline" on:click=move |_| {
                    let n = names();
                    excluded.set(n.iter().flat_map(|a| n.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone()))).collect());
                }>"Clear all"</button>
            </div>
            <table class="mt-2 text-sm">
                <thead>
                    <tr>
                        <th class="px-2 text-left" scope="col">"from ↓ / to →"</th>
                        {move || names().into_iter().map(|n| view! { <th class="px-2" scope="col">{n}</th> }).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        let all = names();
                        all.clone()
                            .into_iter()
                            .map(|from| {
                                let cells = all
                                    .iter()
                                    .map(|to| {
                                        if *to == from {
                                            view! { <td class="px-2 text-center" aria-label="the same cluster">"—"</td> }.into_any()
                                        } else {
                                            let key = (from.clone(), to.clone());
                                            let k2 = key.clone();
                                            let label = format!("{from} reaches {to}");
                                            view! {
                                                <td class="px-2 text-center">
                                                    <input
                                                        type="checkbox"
                                                        aria-label=label
                                                        data-link=format!("{from}->{to}")
                                                        prop:checked=move || !excluded.get().contains(&key)
                                                        on:change=move |ev| {
                                                            let on = event_target_checked(&ev);
                                                            excluded.update(|x| { if on { x.remove(&k2); } else { x.insert(k2.clone()); } });
                                                        }
                                                    />
                                                </td>
                                            }.into_any()
                                        }
                                    })
                                    .collect_view();
                                view! { <tr><th class="px-2 text-left" scope="row">{from.clone()}</th>{cells}</tr> }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            {move || {
                let out = excluded.get();
                let n = names();
                let one_way: Vec<String> = n.iter().flat_map(|a| n.iter().map(move |b| (a, b)))
                    .filter(|(a, b)| a < b && (out.contains(&((*a).clone(), (*b).clone())) != out.contains(&((*b).clone(), (*a).clone()))))
                    .map(|(a, b)| format!("{a}–{b}"))
                    .collect();
                (!one_way.is_empty()).then(|| view! { <p class="mt-1 text-sm">{format!("⚠ One-way: {} — traffic flows only towards the cluster that is reached.", one_way.join(", "))}</p> })
            }}
        </div>
    }
}
