//! Topology: the whole mesh as a live graph. Clusters are nodes grouped by network (or region), coloured by
//! health with an icon and a word (never colour alone); peering links are directed edges, A→B when A holds
//! a remote peer gateway for B, their state combining both sides. The page is rendered on the server
//! (complete without JavaScript); once hydrated it follows `/live/topology`, where the server pushes the
//! changes its watches see, and adds pan and zoom, search, filters, the side panel with each object's
//! YAML and the actions the user's role allows, and export as SVG, PNG or JSON (and import of a JSON
//! export, to look at a graph someone attached to a ticket).

mod canvas;
mod files;
mod links;
#[cfg(feature = "hydrate")]
mod live;
mod panel;
mod team;

use leptos::prelude::*;

use canvas::{Canvas, Legend, client_width};
use files::{back_to_live, export_json, export_png, export_svg, import_file};
#[cfg(feature = "hydrate")]
use live::follow;
use panel::{Findings, Panel};
use team::{FollowTeam, TeamPanel, TeamPicker};

use crate::api::{topology_graph, topology_teams};
use crate::components::{ErrorBox, Gate};
use crate::model::topology::{Filter, GroupBy, Health, TopologyView, layout, layout_key};
use crate::model::{ClusterName, TeamScope, team_map};

/// Colours of the health states, as SVG attributes (so an exported SVG keeps them).
fn colour(h: Health) -> &'static str {
    match h {
        Health::Healthy => "#059669",
        Health::Degraded => "#d97706",
        Health::Failing => "#dc2626",
        Health::Unknown => "#64748b",
    }
}

const SELECTED: &str = "#4f46e5";
const SMALL_BUTTON: &str = "rounded border border-slate-300 px-2 py-1 text-sm hover:bg-slate-100 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-500 disabled:opacity-50 dark:border-slate-700 dark:hover:bg-slate-800";
const PANEL: &str =
    "rounded border border-slate-200 bg-white p-3 dark:border-slate-800 dark:bg-slate-900";
/// The largest graph file the page imports.
const MAX_IMPORT: usize = 64 * 1024 * 1024;

/// What the side panel shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Selection {
    Cluster(ClusterName),
    Link(ClusterName, ClusterName),
}

#[component]
pub fn TopologyPage() -> impl IntoView {
    let initial = crate::data::data(|| (), |_| topology_graph());
    let teams = crate::data::data(|| (), |_| topology_teams());
    view! {
        <Gate title="Topology">
            <h1 class="text-2xl font-bold">"Topology"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "Every registered cluster and the peering links between them, kept current from watches on the clusters: a change shows here within a second. An arrow A → B means A holds a remote peer gateway for B, so A's workloads can reach B's exported services."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    // The team filter is an extra: without it the graph still shows.
                    let scopes = teams.await.unwrap_or_default();
                    match initial.await {
                        Ok(v) => view! { <Topology initial=v scopes /> }.into_any(),
                        Err(e) => view! { <div class="mt-4"><ErrorBox error=e /></div> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

/// Pan and zoom of the graph: scale, then translation in graph units.
#[derive(Clone, Copy, Debug, PartialEq)]
struct View {
    k: f64,
    x: f64,
    y: f64,
}

const HOME: View = View {
    k: 1.0,
    x: 0.0,
    y: 0.0,
};

#[component]
fn Topology(initial: TopologyView, scopes: Vec<TeamScope>) -> impl IntoView {
    let graph = RwSignal::new(initial.graph);
    let version = RwSignal::new(initial.version);
    let live = RwSignal::new(false);
    // "live", or the name of an imported file.
    let source = RwSignal::new(String::from("live"));
    let selected = RwSignal::new(None::<Selection>);
    let search = RwSignal::new(String::new());
    let health = RwSignal::new(String::new());
    let network = RwSignal::new(String::new());
    let region = RwSignal::new(String::new());
    let group_by = RwSignal::new(GroupBy::Network);
    let view_at = RwSignal::new(HOME);
    let import_error = RwSignal::new(None::<String>);
    let query = leptos_router::hooks::use_query_map();
    let team = RwSignal::new(query.read_untracked().get("team").unwrap_or_default());
    let scopes = RwSignal::new(scopes);
    let team_view = Memo::new(move |_| {
        let t = team.get();
        if t.is_empty() {
            return None;
        }
        scopes.with(|all| {
            all.iter()
                .find(|s| s.team == t)
                .map(|s| graph.with(|g| team_map(g, s)))
        })
    });

    #[cfg(feature = "hydrate")]
    follow(graph, version, live, source);

    // Laid out again only when what the layout depends on changed (not on a change of health).
    let layout_of = Memo::new(move |_| graph.with(|g| layout_key(g, group_by.get())));
    let placed = Memo::new(move |_| {
        // Read, not only tracked: a memo's `track` subscribes without computing it, and a memo never computed
        // never hears of the graph's changes.
        layout_of.with(|_| ());
        graph.with_untracked(|g| layout(g, group_by.get()))
    });
    let filter = Memo::new(move |_| Filter {
        health: health.get(),
        network: network.get(),
        region: region.get(),
    });
    let networks = Memo::new(move |_| {
        graph.with(|g| {
            let mut v: Vec<String> = g
                .clusters
                .iter()
                .filter_map(|c| c.network.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        })
    });
    let regions = Memo::new(move |_| {
        graph.with(|g| {
            let mut v: Vec<String> = g.clusters.iter().filter_map(|c| c.region.clone()).collect();
            v.sort();
            v.dedup();
            v
        })
    });

    let zoom = move |factor: f64| {
        view_at.update(|v| {
            let (w, h) = placed.with(|l| (l.width, l.height));
            let k = (v.k * factor).clamp(0.2, 8.0);
            // Zoom about the centre of the view.
            let (cx, cy) = (w / 2.0, h / 2.0);
            v.x = cx - (cx - v.x) * k / v.k;
            v.y = cy - (cy - v.y) * k / v.k;
            v.k = k;
        })
    };
    let pan = move |dx: f64, dy: f64| {
        view_at.update(|v| {
            v.x += dx;
            v.y += dy;
        })
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let step = placed.with(|l| l.width.max(l.height) / 12.0);
        match ev.key().as_str() {
            "+" | "=" => zoom(1.25),
            "-" | "_" => zoom(0.8),
            "0" => view_at.set(HOME),
            "ArrowLeft" => pan(step, 0.0),
            "ArrowRight" => pan(-step, 0.0),
            "ArrowUp" => pan(0.0, step),
            "ArrowDown" => pan(0.0, -step),
            "Escape" => selected.set(None),
            _ => return,
        }
        ev.prevent_default();
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        zoom(if ev.delta_y() < 0.0 { 1.15 } else { 1.0 / 1.15 });
    };
    // Dragging the background pans; the start point and view are kept while the button is down.
    let drag = StoredValue::new(None::<(f64, f64, View, f64)>);
    let on_down = move |ev: leptos::ev::PointerEvent| {
        let scale = placed.with(|l| l.width) / client_width(&ev).max(1.0);
        drag.set_value(Some((
            ev.client_x() as f64,
            ev.client_y() as f64,
            view_at.get_untracked(),
            scale,
        )));
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        if let Some((x0, y0, v, scale)) = drag.get_value() {
            let (dx, dy) = (
                (ev.client_x() as f64 - x0) * scale,
                (ev.client_y() as f64 - y0) * scale,
            );
            if dx.abs() + dy.abs() > 2.0 {
                view_at.set(View {
                    x: v.x + dx,
                    y: v.y + dy,
                    ..v
                });
            }
        }
    };
    let on_up = move |_| drag.set_value(None);

    let counts = move || {
        graph.with(|g| {
            let bad = g
                .clusters
                .iter()
                .filter(|c| c.health != Health::Healthy)
                .count();
            format!(
                "{} clusters ({} not healthy), {} links, {} findings",
                g.clusters.len(),
                bad,
                g.links.len(),
                g.findings.len()
            )
        })
    };
    let status = move || {
        let s = source.get();
        if s != "live" {
            view! {
                <span class="rounded bg-sky-100 px-2 py-0.5 text-sm text-sky-900 dark:bg-sky-900 dark:text-sky-100" data-testid="topology-status">
                    {format!("◆ Showing the file {s} (not live)")}
                </span>
                <button type="button" class=SMALL_BUTTON on:click=move |_| back_to_live(graph, version, source, selected)>
                    "Back to live"
                </button>
            }
                .into_any()
        } else if live.get() {
            view! {
                <span class="rounded bg-emerald-100 px-2 py-0.5 text-sm text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100" data-testid="topology-status">
                    "● Live"
                </span>
            }
                .into_any()
        } else {
            view! {
                <span class="rounded bg-slate-200 px-2 py-0.5 text-sm dark:bg-slate-700" data-testid="topology-status">
                    "○ Not live: showing the graph as loaded (the page connects once it has loaded; it reconnects by itself)"
                </span>
            }
                .into_any()
        }
    };

    view! {
        <div
            class="mt-4"
            data-testid="topology"
            data-live=move || live.get().to_string()
            data-source=move || if source.get() == "live" { "live".to_string() } else { "file".to_string() }
            data-version=move || version.get().to_string()
        >
            <div class="flex flex-wrap items-center gap-3">
                <p class="text-sm" data-testid="topology-counts">{counts}</p>
                {status}
            </div>
            <div class="mt-3 flex flex-wrap items-end gap-3" role="toolbar" aria-label="Graph tools">
                <label class="text-sm">
                    "Search "
                    <input
                        type="search"
                        class="ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900"
                        placeholder="cluster name"
                        data-testid="topology-search"
                        prop:value=move || search.get()
                        on:input=move |ev| search.set(event_target_value(&ev))
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" {
                                let q = search.get_untracked().to_lowercase();
                                let hit = graph.with_untracked(|g| {
                                    g.clusters.iter().find(|c| !q.is_empty() && c.name.as_str().contains(&q)).map(|c| c.name.clone())
                                });
                                if let Some(n) = hit {
                                    selected.set(Some(Selection::Cluster(n)));
                                }
                            }
                        }
                    />
                </label>
                <label class="text-sm">
                    "Health "
                    <select class="ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900" data-testid="filter-health"
                        on:change=move |ev| health.set(event_target_value(&ev))>
                        <option value="">"all"</option>
                        <option value="healthy">"✓ healthy"</option>
                        <option value="degraded">"! degraded"</option>
                        <option value="failing">"✕ failing"</option>
                        <option value="unknown">"? unknown"</option>
                    </select>
                </label>
                <label class="text-sm">
                    "Network "
                    <select class="ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900" data-testid="filter-network"
                        on:change=move |ev| network.set(event_target_value(&ev))>
                        <option value="">"all"</option>
                        {move || networks.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="text-sm">
                    "Region "
                    <select class="ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900" data-testid="filter-region"
                        on:change=move |ev| region.set(event_target_value(&ev))>
                        <option value="">"all"</option>
                        {move || regions.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <TeamPicker scopes team />
                <label class="text-sm">
                    "Group by "
                    <select class="ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900" data-testid="group-by"
                        on:change=move |ev| group_by.set(if event_target_value(&ev) == "region" { GroupBy::Region } else { GroupBy::Network })>
                        <option value="network">"network"</option>
                        <option value="region">"region"</option>
                    </select>
                </label>
                <span class="flex gap-1">
                    <button type="button" class=SMALL_BUTTON aria-label="Zoom in" on:click=move |_| zoom(1.25)>"+"</button>
                    <button type="button" class=SMALL_BUTTON aria-label="Zoom out" on:click=move |_| zoom(0.8)>"−"</button>
                    <button type="button" class=SMALL_BUTTON on:click=move |_| view_at.set(HOME)>"Fit"</button>
                </span>
                <span class="flex gap-1">
                    <button type="button" class=SMALL_BUTTON data-testid="export-svg" on:click=move |_| export_svg()>"Export SVG"</button>
                    <button type="button" class=SMALL_BUTTON data-testid="export-png" on:click=move |_| export_png()>"Export PNG"</button>
                    <button type="button" class=SMALL_BUTTON data-testid="export-json" on:click=move |_| graph.with_untracked(export_json)>"Export JSON"</button>
                </span>
                <label class="text-sm">
                    "Open a JSON export "
                    <input type="file" accept="application/json,.json" class="text-sm" data-testid="topology-import"
                        on:change=move |ev| import_file(ev, graph, source, selected, import_error) />
                </label>
            </div>
            {move || import_error.get().map(|e| view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> })}
            <div class="mt-3 grid gap-4 lg:grid-cols-[minmax(0,1fr)_24rem]">
                <div>
                    <div
                        class="overflow-hidden rounded border border-slate-200 bg-white text-slate-900 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-500 dark:border-slate-800 dark:bg-slate-900 dark:text-slate-100"
                        tabindex="0"
                        aria-label="Topology graph: Tab moves between clusters and links, Enter opens one; + and − zoom, arrows pan, 0 fits, Escape closes the panel"
                        on:keydown=on_key
                        on:wheel=on_wheel
                        on:pointerdown=on_down
                        on:pointermove=on_move
                        on:pointerup=on_up
                        on:pointerleave=on_up
                    >
                        <Canvas graph placed filter search selected view_at team=team_view />
                    </div>
                    <Legend />
                </div>
                <div class="space-y-4">
                    {move || {
                        let t = team.get();
                        (!t.is_empty()).then(|| view! { <FollowTeam team=t scopes /> })
                    }}
                    <TeamPanel map=team_view />
                    <Panel graph selected />
                    <Findings graph selected />
                </div>
            </div>
        </div>
    }
}
