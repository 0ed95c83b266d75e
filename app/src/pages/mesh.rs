//! Mesh: day two on a running mesh. Each mesh the console set up, with its members, version, linking and
//! east-west variant; adding clusters to it — chosen among the registered clusters outside it, linked with
//! the members both ways, one way, or as chosen pair by pair — with the same preflight, plan (each added
//! cluster's steps, then the new peer gateways in every cluster that will hold one) and live job as a setup;
//! removing links and taking the mesh out of a cluster (`mesh_take_apart`).

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;

use super::allowed;
use super::answers::{PlanAnswer, PreflightOutcome, StartError};
use super::mesh_settings::ChangeSettings;
use super::mesh_take_apart::{RemoveCluster, Unlink, follow};
use super::mesh_trust::{ChainsResource, Trust};
use super::mesh_upgrade::Upgrade;
use crate::api::{PlanGrow, PreflightGrow, StartGrow, get_trust_chains, list_meshes};
use crate::components::{BUTTON, BUTTON_SECONDARY, ErrorBox, Gate};
use crate::model::{ClusterName, GrowLinks, GrowRequest, MeshSummary, Role, format_time};

const SECTION: &str =
    "mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900";
const WHY: &str = "mt-1 text-sm text-slate-600 dark:text-slate-300";

#[component]
pub fn MeshPage() -> impl IntoView {
    let meshes = crate::data::data(|| (), |_| list_meshes());
    // Every member's intermediate CA, read once here from the meshes' answer (a resource made inside their
    // Suspense would be made at a different moment on the server and in the browser).
    let chains: ChainsResource = crate::data::data(
        || (),
        move |_| async move {
            let members: Vec<ClusterName> = meshes
                .await?
                .iter()
                .flat_map(|m| m.members.iter().filter_map(|c| ClusterName::new(c).ok()))
                .collect();
            if members.is_empty() {
                return Ok(vec![]);
            }
            get_trust_chains(members).await
        },
    );
    view! {
        <Gate title="Mesh">
            <h1 class="text-2xl font-bold">"Running meshes"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "The meshes set up from this console, and what you can do with one that runs: add clusters with its root of trust, version and settings, linked with its members — previewed and checked first, then applied as a job you can follow, retry per cluster, and resume after a restart."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match meshes.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="mt-6" data-testid="no-mesh">
                                "No running mesh yet: a mesh shows here once its setup has succeeded. "
                                <a class="underline" href="/setup">"Set one up"</a>
                                "."
                            </p>
                        }.into_any(),
                        Ok(list) => {
                            // A registered cluster may run another of these meshes: its box says which.
                            let elsewhere: BTreeMap<String, String> = list
                                .iter()
                                .flat_map(|m| {
                                    let what = format!("in the mesh of {}", m.members.join(", "));
                                    m.members.iter().map(move |c| (c.clone(), what.clone()))
                                })
                                .collect();
                            list.into_iter()
                                .map(|m| view! { <MeshCard mesh=m elsewhere=elsewhere.clone() chains=chains /> })
                                .collect_view()
                                .into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

/// One mesh: what it is, and the form that adds clusters to it.
#[component]
fn MeshCard(
    mesh: MeshSummary,
    elsewhere: BTreeMap<String, String>,
    chains: ChainsResource,
) -> impl IntoView {
    let heading = format!("Mesh of {}", mesh.members.join(", "));
    let heading_id = format!("mesh-{}", mesh.job_id);
    let job_href = format!("/activity/{}", mesh.job_id);
    let (labelled_by, data_mesh) = (heading_id.clone(), mesh.job_id.clone());
    let (members, version, linking, eastwest) = (
        mesh.members.join(", "),
        mesh.istio_version.clone(),
        mesh.linking.clone(),
        mesh.eastwest.clone(),
    );
    let job = format!("job {}", mesh.job_id);
    let finished = mesh
        .finished_at
        .map(|t| format!(", finished {}", format_time(t)));
    view! {
        <section class=SECTION aria-labelledby=labelled_by data-mesh=data_mesh>
            <h2 id=heading_id class="text-lg font-semibold">{heading}</h2>
            <dl class="mt-2 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                <dt class="font-medium">"Clusters"</dt><dd data-testid="members">{members}</dd>
                <dt class="font-medium">"Istio version"</dt><dd>{version}</dd>
                <dt class="font-medium">"Linking"</dt><dd>{linking}</dd>
                <dt class="font-medium">"East-west gateways"</dt><dd>{eastwest}</dd>
                <dt class="font-medium">"Last changed by"</dt>
                <dd><a class="underline" href=job_href>{job}</a>{finished}</dd>
            </dl>
            <AddClusters mesh=mesh.clone() elsewhere=elsewhere />
            <Upgrade mesh=mesh.clone() />
            <ChangeSettings mesh=mesh.clone() />
            <Trust mesh=mesh.clone() chains=chains />
            {mesh.manual_links.then(|| view! { <Unlink mesh=mesh.clone() /> })}
            <RemoveCluster mesh=mesh />
        </section>
    }
}

/// How the added clusters are linked, as chosen in the form.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    BothWays,
    FromNew,
    ToNew,
    Chosen,
}

#[component]
fn AddClusters(mesh: MeshSummary, elsewhere: BTreeMap<String, String>) -> impl IntoView {
    let can_apply = allowed(Role::Operator)();
    let is_admin = allowed(Role::Admin)();
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let direction = RwSignal::new(Direction::BothWays);
    // With "as chosen": the ordered pairs (from, to) ticked.
    let pairs = RwSignal::new(BTreeSet::<(String, String)>::new());
    let override_reason = RwSignal::new(String::new());
    let members = mesh.members.clone();
    let job_id = mesh.job_id.clone();
    let request = {
        let members = members.clone();
        move || -> Result<GrowRequest, String> {
            let added = selected.get();
            if added.is_empty() {
                return Err("Pick at least one cluster to add.".into());
            }
            let name = |n: &String| ClusterName::new(n).map_err(|e| e.to_string());
            let clusters = added.iter().map(name).collect::<Result<Vec<_>, _>>()?;
            let links = match direction.get() {
                Direction::BothWays => GrowLinks::BothWays,
                Direction::FromNew => GrowLinks::FromNew,
                Direction::ToNew => GrowLinks::ToNew,
                Direction::Chosen => {
                    let chosen: Vec<(ClusterName, ClusterName)> = pairs
                        .get()
                        .iter()
                        .filter(|(a, b)| {
                            (added.contains(a) || added.contains(b))
                                && (added.contains(a) || members.contains(a))
                                && (added.contains(b) || members.contains(b))
                        })
                        .map(|(a, b)| Ok((name(a)?, name(b)?)))
                        .collect::<Result<_, String>>()?;
                    if chosen.is_empty() {
                        return Err(
                            "Tick at least one link, or choose another way of linking.".into()
                        );
                    }
                    GrowLinks::Pairs { pairs: chosen }
                }
            };
            let reason = override_reason.get();
            Ok(GrowRequest {
                mesh: job_id.clone(),
                clusters,
                links,
                override_reason: (!reason.trim().is_empty()).then_some(reason),
            })
        }
    };
    let preflight = ServerAction::<PreflightGrow>::new();
    let plan = ServerAction::<PlanGrow>::new();
    let start = ServerAction::<StartGrow>::new();
    // A changed choice invalidates what was checked and planned.
    {
        let request = request.clone();
        Effect::new(move |_| {
            let _ = request();
            preflight.clear();
            plan.clear();
        });
    }
    let blocked = move || super::answers::blocked(&preflight.value().get());
    let preflight_done = move || matches!(preflight.value().get(), Some(Ok(_)));
    let may_apply = move || {
        preflight_done()
            && (!blocked() || !override_reason.get().trim().is_empty())
            && matches!(plan.value().get(), Some(Ok(_)))
    };
    follow(move || start.value().get());

    let form_id = format!("add-{}", mesh.job_id);
    if mesh.candidates.is_empty() {
        return view! {
            <p class="mt-4 text-sm" data-testid="no-candidates">
                "Every registered cluster is in a mesh. "
                <a class="underline" href="/clusters/new">"Register a cluster"</a>
                " to add it here."
            </p>
        }
        .into_any();
    }
    let boxes = mesh
        .candidates
        .iter()
        .map(|c| {
            let (n, n2) = (c.clone(), c.clone());
            view! {
                <label class="flex items-center gap-2">
                    <input
                        type="checkbox"
                        name="add"
                        value=c.clone()
                        prop:checked=move || selected.get().contains(&n)
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            selected.update(|s| { if on { s.insert(n2.clone()); } else { s.remove(&n2); } });
                        }
                    />
                    {c.clone()}
                    {elsewhere.get(c).map(|w| view! { <span class="text-xs text-slate-600 dark:text-slate-300">{format!("({w})")}</span> })}
                </label>
            }
        })
        .collect_view();
    let radio = move |value: Direction, label: &'static str, key: &'static str| {
        view! {
            <label class="flex items-center gap-2">
                <input type="radio" name="links" value=key prop:checked=move || direction.get() == value on:change=move |_| direction.set(value) />
                {label}
            </label>
        }
    };
    let matrix = {
        let members = members.clone();
        move || {
            let added: Vec<String> = selected.get().into_iter().collect();
            let all: Vec<String> = members
                .iter()
                .cloned()
                .chain(added.iter().cloned())
                .collect();
            let rows = all
                .iter()
                .flat_map(|a| all.iter().map(move |b| (a.clone(), b.clone())))
                .filter(|(a, b)| a != b && (added.contains(a) || added.contains(b)))
                .map(|(a, b)| {
                    let key = (a.clone(), b.clone());
                    let key2 = key.clone();
                    view! {
                        <label class="flex items-center gap-2">
                            <input
                                type="checkbox"
                                name="pair"
                                value=format!("{a}>{b}")
                                prop:checked=move || pairs.get().contains(&key)
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    pairs.update(|p| { if on { p.insert(key2.clone()); } else { p.remove(&key2); } });
                                }
                            />
                            {format!("{a} reaches {b}")}
                        </label>
                    }
                })
                .collect_view();
            view! { <fieldset class="mt-2 ml-6 grid gap-1 sm:grid-cols-2" data-testid="pairs"><legend class="sr-only">"Links"</legend>{rows}</fieldset> }
        }
    };
    let (r1, r2, r3) = (request.clone(), request.clone(), request.clone());
    view! {
        <div class="mt-4 border-t border-slate-200 pt-3 dark:border-slate-800" id=form_id>
            <h3 class="font-semibold">"Add clusters"</h3>
            <p class=WHY>"The added clusters get every setup step with this mesh's root of trust, Istio version, settings and license; the members keep everything they have and only gain peer gateways for the added clusters. A cluster that runs another mesh is checked by the preflight (its root of trust and control plane must fit this mesh)."</p>
            <fieldset class="mt-2">
                <legend class="text-sm font-medium">"Clusters to add"</legend>
                <div class="mt-1 flex flex-wrap gap-4">{boxes}</div>
            </fieldset>
            {mesh.manual_links.then(|| view! {
                <fieldset class="mt-3">
                    <legend class="text-sm font-medium">"Links with the members"</legend>
                    {radio(Direction::BothWays, "Both ways: every member and every added cluster reach each other", "both-ways")}
                    {radio(Direction::FromNew, "Only the added clusters reach the members", "from-new")}
                    {radio(Direction::ToNew, "Only the members reach the added clusters", "to-new")}
                    {radio(Direction::Chosen, "As chosen, link by link", "pairs")}
                    <Show when=move || direction.get() == Direction::Chosen>{matrix.clone()}</Show>
                </fieldset>
            })}
            {(!mesh.manual_links).then(|| view! {
                <p class="mt-3 text-sm">"Links: the management plane distributes the peer gateways to and from the added clusters (automatic peering); the job waits until every cluster holds them."</p>
            })}
            {move || r1().err().map(|e| view! { <p class="mt-2 text-sm">{e}</p> })}
            <div class="mt-3 flex flex-wrap gap-2">
                {can_apply.then(|| {
                    let r = r2.clone();
                    view! {
                        <button
                            type="button"
                            class=BUTTON_SECONDARY
                            disabled={ let r = r.clone(); move || r().is_err() || preflight.pending().get() }
                            on:click=move |_| { if let Ok(req) = r() { preflight.dispatch(PreflightGrow { request: req }); } }
                        >
                            {move || if preflight.pending().get() { "Checking…" } else { "Run preflight" }}
                        </button>
                    }
                })}
                <button
                    type="button"
                    class=BUTTON_SECONDARY
                    disabled={ let r = r3.clone(); move || r().is_err() || plan.pending().get() }
                    on:click={ let r = r3.clone(); move |_| { if let Ok(req) = r() { plan.dispatch(PlanGrow { request: req }); } } }
                >
                    {move || if plan.pending().get() { "Planning…" } else { "Show the plan" }}
                </button>
                {can_apply.then(|| view! {
                    <button
                        type="button"
                        class=BUTTON
                        disabled=move || !may_apply() || start.pending().get()
                        on:click={ let r = request.clone(); move |_| { if let Ok(req) = r() { start.dispatch(StartGrow { request: req }); } } }
                    >
                        {move || if start.pending().get() { "Starting…" } else { "Add to the mesh" }}
                    </button>
                })}
            </div>
            {(!can_apply).then(|| view! { <p class="mt-2 text-sm">"Viewers see the plan; operators and admins run the preflight and add clusters."</p> })}
            <PreflightOutcome value=preflight.value() is_admin=is_admin override_reason=override_reason />
            <PlanAnswer value=plan.value() download="meshdeck-add-clusters-plan.tar" />
            <StartError value=start.value() />
        </div>
    }
    .into_any()
}
