//! Topology: the whole mesh as a live graph. Clusters are nodes grouped by network (or region), coloured by
//! health with an icon and a word (never colour alone); peering links are directed edges, A→B when A holds
//! a remote peer gateway for B, their state combining both sides. The page is rendered on the server
//! (complete without JavaScript); once hydrated it follows `/live/topology`, where the server pushes the
//! changes its watches see, and adds pan and zoom, search, filters, the side panel with each object's
//! YAML and the actions the user's role allows, and export as SVG, PNG or JSON (and import of a JSON
//! export, to look at a graph someone attached to a ticket).

use leptos::prelude::*;

use crate::api::{relink, run_checks, topology_graph, topology_objects};
use crate::components::{ErrorBox, Gate};
use crate::model::topology::{
    ClusterNode, Filter, Graph, GroupBy, Health, LinkEdge, TopologyView, health_icon, layers,
    layout,
};
use crate::model::{ClusterName, Role};

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
    let initial = Resource::new(|| (), |_| topology_graph());
    view! {
        <Gate title="Topology">
            <h1 class="text-2xl font-bold">"Topology"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "Every registered cluster and the peering links between them, kept current from watches on the clusters: a change shows here within a second. An arrow A → B means A holds a remote peer gateway for B, so A's workloads can reach B's exported services."
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match initial.await {
                        Ok(v) => view! { <Topology initial=v /> }.into_any(),
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
fn Topology(initial: TopologyView) -> impl IntoView {
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

    #[cfg(feature = "hydrate")]
    follow(graph, version, live, source);

    let placed = Memo::new(move |_| graph.with(|g| layout(g, group_by.get())));
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
                        <Canvas graph placed filter search selected view_at />
                    </div>
                    <Legend />
                </div>
                <div class="space-y-4">
                    <Panel graph selected />
                    <Findings graph selected />
                </div>
            </div>
        </div>
    }
}

/// Width of the element an event happened on, in CSS pixels (1 without a browser).
fn client_width(ev: &leptos::ev::PointerEvent) -> f64 {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        if let Some(el) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        {
            return el.client_width() as f64;
        }
    }
    let _ = ev;
    1.0
}

/// Whether `graph` holds the link `to`→`from` too.
fn has_reverse(graph: &Graph, l: &LinkEdge) -> bool {
    graph.link(&l.to, &l.from).is_some()
}

/// What one link draws; `key` holds all of it, so a keyed list redraws the link only when it changed.
#[derive(Clone)]
struct EdgeItem {
    key: String,
    id: String,
    from: ClusterName,
    to: ClusterName,
    health: Health,
    one_way: bool,
    d: String,
}

impl EdgeItem {
    fn new(e: &crate::model::topology::Edge, health: Health, one_way: bool) -> Self {
        EdgeItem {
            key: format!("{}|{}|{one_way}|{}", e.id, health.label(), e.d),
            id: e.id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            health,
            one_way,
            d: e.d.clone(),
        }
    }
}

/// What one cluster draws; `key` holds all of it (see [`EdgeItem`]).
#[derive(Clone)]
struct NodeItem {
    key: String,
    name: ClusterName,
    health: Health,
    reachable: bool,
    exports: usize,
    x: f64,
    y: f64,
    r: f64,
}

impl NodeItem {
    fn new(c: &ClusterNode, x: f64, y: f64, r: f64) -> Self {
        let exports = c
            .namespaces
            .iter()
            .flat_map(|n| n.services.iter())
            .filter(|s| s.exported)
            .count();
        NodeItem {
            key: format!(
                "{}|{}|{}|{exports}|{x}|{y}|{r}",
                c.name,
                c.health.label(),
                c.reachable
            ),
            name: c.name.clone(),
            health: c.health,
            reachable: c.reachable,
            exports,
            x,
            y,
            r,
        }
    }
}

#[component]
fn Canvas(
    graph: RwSignal<Graph>,
    placed: Memo<crate::model::topology::Layout>,
    filter: Memo<Filter>,
    search: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
    view_at: RwSignal<View>,
) -> impl IntoView {
    let view_box = move || placed.with(|l| format!("0 0 {} {}", l.width, l.height));
    let transform = move || {
        let v = view_at.get();
        format!("translate({:.1} {:.1}) scale({:.3})", v.x, v.y, v.k)
    };
    // Hidden by a filter: the cluster, and the links that touch a hidden cluster. A memo, so a live update
    // that hides or shows nothing wakes none of the thousands of links and nodes that read it.
    let hidden = Memo::new(move |_| {
        filter.with(|f| {
            if f.is_empty() {
                return std::collections::HashSet::new();
            }
            graph.with(|g| {
                g.clusters
                    .iter()
                    .filter(|c| !f.keeps(c))
                    .map(|c| c.name.to_string())
                    .collect::<std::collections::HashSet<String>>()
            })
        })
    });
    let groups = move || {
        placed.with(|l| {
            l.groups
                .iter()
                .map(|g| {
                    view! {
                        <g data-group=g.label.clone()>
                            <circle cx=g.x cy=g.y r=g.r fill="none" stroke="#94a3b8" stroke-dasharray="4 4" />
                            <text x=g.x y=g.y - g.r - 6.0 text-anchor="middle" font-size="12" fill="currentColor">{g.label.clone()}</text>
                        </g>
                    }
                })
                .collect_view()
        })
    };
    // Which item is selected, one signal per item: a change of selection wakes the two items it concerns,
    // not all of them. (Ten thousand readers of one signal make every change to them quadratic: each one
    // re-subscribing shifts the signal's subscriber list.)
    let is_selected = Selector::new(move || selected.get());
    // Links and clusters are keyed lists: the key holds everything an item draws, so an update redraws only
    // the items it changed (a 100-cluster mesh has 9,900 links). Links touching a hidden cluster are left
    // out of the list, for the same reason as above.
    let edge_items = move || {
        graph.with(|g| {
            placed.with(|l| {
                hidden.with(|hide| {
                    l.edges
                        .iter()
                        .filter(|e| {
                            !hide.contains(e.from.as_str()) && !hide.contains(e.to.as_str())
                        })
                        .filter_map(|e| {
                            let link = g.link(&e.from, &e.to)?;
                            Some(EdgeItem::new(e, link.health, !has_reverse(g, link)))
                        })
                        .collect::<Vec<_>>()
                })
            })
        })
    };
    let edge = {
        let is_selected = is_selected.clone();
        move |e: EdgeItem| {
            let EdgeItem {
                id,
                from,
                to,
                health: h,
                one_way,
                d,
                ..
            } = e;
            let label = format!(
                "Link {from} to {to}: {}{}",
                h.label(),
                if one_way { ", one-way" } else { "" }
            );
            let (f3, t3) = (from.clone(), to.clone());
            let me = Some(Selection::Link(from.clone(), to.clone()));
            let is_selected = {
                let sel = is_selected.clone();
                move || sel.selected(&me)
            };
            let is_selected2 = is_selected.clone();
            view! {
                <g
                    data-link=id
                    data-health=h.label()
                    data-one-way=one_way.to_string()
                    tabindex="0"
                    role="button"
                    aria-label=label.clone()
                    class="cursor-pointer focus:outline-none"
                    on:click=move |_| selected.set(Some(Selection::Link(f3.clone(), t3.clone())))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" || ev.key() == " " {
                            ev.prevent_default();
                            selected.set(Some(Selection::Link(from.clone(), to.clone())));
                        }
                    }
                >
                    <title>{label.clone()}</title>
                    <path d=d.clone() fill="none" stroke="transparent" stroke-width="10" />
                    <path
                        d=d
                        fill="none"
                        stroke=move || if is_selected() { SELECTED } else { colour(h) }
                        stroke-width=move || if is_selected2() { "3.5" } else { "1.6" }
                        stroke-dasharray=if one_way { "6 4" } else if h == Health::Unknown { "2 3" } else { "" }
                        marker-end=format!("url(#arrow-{})", h.label())
                    />
                </g>
            }
        }
    };
    let node_items = move || {
        graph.with(|g| {
            placed.with(|l| {
                l.nodes
                    .iter()
                    .filter_map(|p| {
                        let c = g.cluster(&ClusterName::new(&p.name).ok()?)?;
                        Some(NodeItem::new(c, p.x, p.y, l.node_r))
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    let node = {
        let is_selected = is_selected.clone();
        move |n: NodeItem| {
            let NodeItem {
                name,
                health,
                reachable,
                exports,
                x,
                y,
                r,
                ..
            } = n;
            let label = format!(
                "Cluster {name}: {}{}",
                health.label(),
                if reachable { "" } else { ", unreachable" }
            );
            let (n3, n4) = (name.clone(), name.to_string());
            let me = Some(Selection::Cluster(name.clone()));
            let is_selected = {
                let sel = is_selected.clone();
                Signal::derive(move || sel.selected(&me))
            };
            let matched = Signal::derive(move || {
                let q = search.get().to_lowercase();
                if q.is_empty() {
                    None
                } else {
                    Some(n4.contains(&q))
                }
            });
            let visible = {
                let n = name.to_string();
                move || hidden.with(|h| !h.contains(&n))
            };
            let font = (r * 0.9).clamp(9.0, 16.0);
            view! {
                <g
                    data-cluster=name.to_string()
                    data-health=health.label()
                    data-reachable=reachable.to_string()
                    data-exports=exports.to_string()
                    transform=format!("translate({x} {y})")
                    tabindex="0"
                    role="button"
                    aria-label=label.clone()
                    class="cursor-pointer focus:outline-none"
                    style:display=move || if visible() { "inline" } else { "none" }
                    opacity=move || if matched.get() == Some(false) { "0.25" } else { "1" }
                    on:click=move |_| selected.set(Some(Selection::Cluster(n3.clone())))
                    on:keydown={
                        let n = name.clone();
                        move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Enter" || ev.key() == " " {
                                ev.prevent_default();
                                selected.set(Some(Selection::Cluster(n.clone())));
                            }
                        }
                    }
                >
                    <title>{label.clone()}</title>
                    <circle
                        r=r
                        fill=colour(health)
                        stroke=move || if is_selected.get() || matched.get() == Some(true) { SELECTED } else { "#ffffff" }
                        stroke-width=move || if is_selected.get() || matched.get() == Some(true) { "4" } else { "2" }
                        stroke-dasharray=if reachable { "" } else { "3 2" }
                    />
                    <text text-anchor="middle" dominant-baseline="central" font-size=font fill="#ffffff" aria-hidden="true">
                        {health_icon(health)}
                    </text>
                    <text y=r + font + 2.0 text-anchor="middle" font-size=font fill="currentColor">
                        {name.to_string()}
                    </text>
                </g>
            }
        }
    };
    let markers = [Health::Healthy, Health::Degraded, Health::Failing, Health::Unknown]
        .into_iter()
        .map(|h| {
            view! {
                <marker id=format!("arrow-{}", h.label()) viewBox="0 0 10 10" refX="8" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                    <path d="M 0 0 L 10 5 L 0 10 z" fill=colour(h) />
                </marker>
            }
        })
        .collect_view();
    view! {
        <svg
            id="topology-svg"
            data-testid="topology-graph"
            xmlns="http://www.w3.org/2000/svg"
            viewBox=view_box
            width=move || placed.with(|l| l.width.to_string())
            height=move || placed.with(|l| l.height.to_string())
            class="block h-auto max-h-[75vh] w-full select-none"
            role="group"
            aria-label="Clusters and peering links"
            font-family="ui-sans-serif, system-ui, sans-serif"
        >
            <defs>{markers}</defs>
            <g transform=transform>
                {groups}
                <For each=edge_items key=|e: &EdgeItem| e.key.clone() children=edge />
                <For each=node_items key=|n: &NodeItem| n.key.clone() children=node />
            </g>
        </svg>
        {move || graph.with(|g| g.clusters.is_empty()).then(|| view! {
            <p class="p-4">"No clusters yet: register clusters (Clusters → Register) and they appear here as their watches start."</p>
        })}
    }
}

#[component]
fn Legend() -> impl IntoView {
    let item = |h: Health| {
        view! {
            <li class="flex items-center gap-1">
                <svg width="16" height="16" aria-hidden="true"><circle cx="8" cy="8" r="7" fill=colour(h) /></svg>
                {format!("{} {}", health_icon(h), h.label())}
            </li>
        }
    };
    view! {
        <ul class="mt-2 flex flex-wrap gap-4 text-sm" data-testid="legend" aria-label="Legend">
            {item(Health::Healthy)}
            {item(Health::Degraded)}
            {item(Health::Failing)}
            {item(Health::Unknown)}
            <li class="flex items-center gap-1">
                <svg width="30" height="10" aria-hidden="true"><line x1="0" y1="5" x2="30" y2="5" stroke="#64748b" stroke-width="2" /></svg>
                "link, both ways"
            </li>
            <li class="flex items-center gap-1">
                <svg width="30" height="10" aria-hidden="true"><line x1="0" y1="5" x2="30" y2="5" stroke="#64748b" stroke-width="2" stroke-dasharray="6 4" /></svg>
                "one-way link"
            </li>
            <li class="flex items-center gap-1">
                <svg width="16" height="16" aria-hidden="true"><circle cx="8" cy="8" r="6" fill="#64748b" stroke="#0f172a" stroke-dasharray="3 2" /></svg>
                "dashed rim: unreachable (last seen state)"
            </li>
        </ul>
    }
}

#[component]
fn Findings(graph: RwSignal<Graph>, selected: RwSignal<Option<Selection>>) -> impl IntoView {
    let list = move || {
        graph.with(|g| {
            if g.findings.is_empty() {
                return view! { <p class="text-sm" data-testid="no-findings">"✓ No findings: every link is healthy and the mesh is whole."</p> }
                    .into_any();
            }
            g.findings
                .iter()
                .map(|f| {
                    let kind = serde_json::to_value(f.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    let clusters = f
                        .clusters
                        .iter()
                        .map(|c| {
                            let n = c.clone();
                            view! {
                                <button type="button" class="underline" on:click=move |_| selected.set(Some(Selection::Cluster(n.clone())))>
                                    {c.to_string()}
                                </button>
                            }
                        })
                        .collect_view();
                    view! {
                        <li class="border-t border-slate-200 py-2 dark:border-slate-800" data-finding=kind>
                            <p class="font-medium" style:color=colour(f.severity)>
                                {format!("{} {}", health_icon(f.severity), f.kind.title())}
                            </p>
                            <p class="text-sm">{f.message.clone()}</p>
                            <p class="text-sm">"Clusters: "<span class="inline-flex gap-2">{clusters}</span></p>
                        </li>
                    }
                })
                .collect_view()
                .into_any()
        })
    };
    view! {
        <section class=PANEL data-testid="findings" aria-live="polite">
            <h2 class="font-semibold">"Findings"</h2>
            <ul class="mt-1">{list}</ul>
        </section>
    }
}

#[component]
fn Panel(graph: RwSignal<Graph>, selected: RwSignal<Option<Selection>>) -> impl IntoView {
    view! {
        <section class=PANEL data-testid="side-panel">
            {move || match selected.get() {
                None => view! {
                    <h2 class="font-semibold">"Details"</h2>
                    <p class="mt-1 text-sm">"Select a cluster or a link (click, or Tab to it and press Enter) to see its parts, conditions, objects and actions."</p>
                }.into_any(),
                Some(Selection::Cluster(name)) => match graph.with(|g| g.cluster(&name).cloned()) {
                    Some(c) => view! { <ClusterDetails cluster=c graph selected /> }.into_any(),
                    None => view! { <p>{format!("Cluster {name} is no longer in the graph.")}</p> }.into_any(),
                },
                Some(Selection::Link(from, to)) => match graph.with(|g| g.link(&from, &to).cloned().map(|l| (l.clone(), has_reverse(g, &l)))) {
                    Some((l, reverse)) => view! { <LinkDetails link=l reverse selected /> }.into_any(),
                    None => view! { <p>{format!("There is no longer a link {from} → {to}.")}</p> }.into_any(),
                },
            }}
            // The actions depend on the selection only, not on the graph: their results (a re-check, a re-link,
            // the YAML) stay when a live update redraws the details above.
            {move || selected.get().map(|s| match s {
                Selection::Cluster(name) => view! { <Actions cluster=name peer=None /> }.into_any(),
                Selection::Link(from, to) => view! { <Actions cluster=from peer=Some(to) /> }.into_any(),
            })}
        </section>
    }
}

fn part_row(title: &'static str, state: Health, detail: String) -> impl IntoView {
    view! {
        <tr class="border-t border-slate-200 align-top dark:border-slate-800" data-part=title>
            <th scope="row" class="py-1 pr-2 text-left font-medium">{title}</th>
            <td class="py-1 pr-2 whitespace-nowrap" style:color=colour(state)>{format!("{} {}", health_icon(state), state.label())}</td>
            <td class="py-1 text-sm break-words">{detail}</td>
        </tr>
    }
}

#[component]
fn ClusterDetails(
    cluster: ClusterNode,
    graph: RwSignal<Graph>,
    selected: RwSignal<Option<Selection>>,
) -> impl IntoView {
    let c = cluster;
    let name = c.name.clone();
    let links = graph.with_untracked(|g| {
        g.links
            .iter()
            .filter(|l| l.from == name || l.to == name)
            .cloned()
            .collect::<Vec<_>>()
    });
    let link_list = links
        .into_iter()
        .map(|l| {
            let (f, t) = (l.from.clone(), l.to.clone());
            view! {
                <li>
                    <button type="button" class="underline" on:click=move |_| selected.set(Some(Selection::Link(f.clone(), t.clone())))>
                        {format!("{} → {}", l.from, l.to)}
                    </button>
                    <span style:color=colour(l.health)>{format!(" {} {}", health_icon(l.health), l.health.label())}</span>
                </li>
            }
        })
        .collect_view();
    let ew = match &c.eastwest {
        Some(e) => (
            e.state,
            format!(
                "{}; address {}; {}. {}",
                e.kind.label(),
                e.address.clone().unwrap_or_else(|| "none yet".into()),
                if e.programmed {
                    "programmed"
                } else {
                    "not programmed"
                },
                e.detail
            ),
        ),
        None => (Health::Unknown, "no east-west gateway".into()),
    };
    let cp = format!(
        "{}{}{}",
        c.control_plane.detail,
        c.revision
            .as_ref()
            .map(|r| format!(" Revision {r}."))
            .unwrap_or_default(),
        c.version
            .as_ref()
            .map(|v| format!(" Version {v}."))
            .unwrap_or_default()
    );
    let reasons = c
        .reasons
        .iter()
        .map(|r| view! { <li>{r.clone()}</li> })
        .collect_view();
    view! {
        <h2 class="font-semibold" data-testid="panel-title">{format!("Cluster {}", c.name)}</h2>
        <p style:color=colour(c.health) data-testid="panel-health">
            {format!("{} {}{}", health_icon(c.health), c.health.label(), if c.reachable { "" } else { " — unreachable, showing the state last seen" })}
        </p>
        {(!c.reasons.is_empty()).then(|| view! { <ul class="mt-1 ml-4 list-disc text-sm" data-testid="panel-reasons">{reasons}</ul> })}
        <p class="mt-1 text-sm">
            {format!(
                "Network {} · region {} · trust domain {} · root {}",
                c.network.clone().unwrap_or_else(|| "—".into()),
                c.region.clone().unwrap_or_else(|| "—".into()),
                c.trust_domain.clone().unwrap_or_else(|| "—".into()),
                c.root_fingerprint.as_deref().map(|f| f.chars().take(23).collect::<String>()).unwrap_or_else(|| "—".into()),
            )}
        </p>
        <table class="mt-2 w-full text-sm">
            <tbody>
                {part_row("Operator", c.operator.state, c.operator.detail.clone())}
                {part_row("Control plane", c.control_plane.state, cp)}
                {part_row("ztunnel / CNI", c.ztunnel.state, c.ztunnel.detail.clone())}
                {part_row("East-west gateway", ew.0, ew.1)}
                {part_row("License", c.license.state, c.license.detail.clone())}
            </tbody>
        </table>
        <h3 class="mt-3 font-medium">"Links"</h3>
        <ul class="text-sm">{link_list}</ul>
        <DrillDown cluster=c.clone() />
    }
}

/// The cluster opened up: its meshed namespaces and their services, exported ones marked, with the
/// clusters they are reachable from (layered: cluster → namespaces → services).
#[component]
fn DrillDown(cluster: ClusterNode) -> impl IntoView {
    let (rows, height) = layers(&cluster);
    if rows.is_empty() {
        return view! { <p class="mt-3 text-sm" data-testid="drill-down">"No meshed namespaces and no exported services."</p> }
            .into_any();
    }
    let from = if cluster.exports_reachable_from.is_empty() {
        "no cluster yet (no healthy link to this cluster)".to_string()
    } else {
        cluster
            .exports_reachable_from
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mid = height / 2.0;
    let drawn = rows
        .iter()
        .map(|row| {
            let services = row
                .services
                .iter()
                .map(|(s, exported, y)| {
                    let fill = if *exported { "#4f46e5" } else { "#94a3b8" };
                    view! {
                        <g data-service=format!("{}/{}", row.namespace, s) data-exported=exported.to_string()>
                            <line x1="150" y1=row.y x2="200" y2=*y stroke="#94a3b8" />
                            <circle cx="206" cy=*y r="5" fill=fill />
                            <text x="216" y=*y dominant-baseline="central" font-size="12" fill="currentColor">
                                {if *exported { format!("⇄ {s} (exported)") } else { s.clone() }}
                            </text>
                        </g>
                    }
                })
                .collect_view();
            view! {
                <g data-namespace=row.namespace.clone()>
                    <line x1="40" y1=mid x2="80" y2=row.y stroke="#94a3b8" />
                    <rect x="80" y=row.y - 10.0 width="70" height="20" rx="4" fill=if row.meshed { "#e0e7ff" } else { "#f1f5f9" } stroke="#6366f1" />
                    <text x="115" y=row.y dominant-baseline="central" text-anchor="middle" font-size="11" fill="#1e1b4b">
                        {row.namespace.chars().take(11).collect::<String>()}
                    </text>
                    {services}
                </g>
            }
        })
        .collect_view();
    view! {
        <div class="mt-3" data-testid="drill-down">
            <h3 class="font-medium">"Namespaces and services"</h3>
            <p class="text-sm">{format!("Exported services (⇄) are reachable from: {from}.")}</p>
            <svg class="mt-1 w-full" viewBox=format!("0 0 380 {height}") role="img" aria-label=format!("Namespaces and services of {}", cluster.name)>
                <circle cx="22" cy=mid r="16" fill=colour(cluster.health) />
                <text x="22" y=mid dominant-baseline="central" text-anchor="middle" font-size="12" fill="#ffffff">{health_icon(cluster.health)}</text>
                {drawn}
            </svg>
        </div>
    }
    .into_any()
}

#[component]
fn LinkDetails(
    link: LinkEdge,
    reverse: bool,
    selected: RwSignal<Option<Selection>>,
) -> impl IntoView {
    let l = link;
    let conditions = if l.conditions.is_empty() {
        view! {
            <p class="mt-2 text-sm">
                {if l.health == Health::Healthy {
                    "All peering conditions are True (the gateway's YAML below has them in full)."
                } else {
                    "No peering conditions reported yet: pending, not connected."
                }}
            </p>
        }
        .into_any()
    } else {
        let rows = l
            .conditions
            .iter()
            .map(|c| {
                let ok = c.status == "True";
                view! {
                    <tr class="border-t border-slate-200 align-top dark:border-slate-800">
                        <td class="py-1 pr-2">{format!("{} {}", if ok { "✓" } else { "✕" }, c.type_)}</td>
                        <td class="py-1 pr-2">{c.status.clone()}</td>
                        <td class="py-1">{format!("{} {}", c.reason, c.message)}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="mt-2 w-full text-sm" data-testid="link-conditions">
                <thead><tr><th scope="col" class="text-left">"Condition"</th><th scope="col" class="text-left">"Status"</th><th scope="col" class="text-left">"Reason"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    let reasons = l
        .reasons
        .iter()
        .map(|r| view! { <li>{r.clone()}</li> })
        .collect_view();
    let (f, t) = (l.to.clone(), l.from.clone());
    view! {
        <h2 class="font-semibold" data-testid="panel-title">{format!("Link {} → {}", l.from, l.to)}</h2>
        <p class="text-sm">{format!("{} holds the peer gateway istio-remote-peer-{}: its workloads reach {}'s exported services.", l.from, l.to, l.to)}</p>
        <p style:color=colour(l.health) data-testid="panel-health">{format!("{} {}", health_icon(l.health), l.health.label())}</p>
        {(!l.reasons.is_empty()).then(|| view! { <ul class="mt-1 ml-4 list-disc text-sm" data-testid="panel-reasons">{reasons}</ul> })}
        <p class="mt-1 text-sm">
            {format!(
                "Dials {} · {}'s east-west address is {}",
                l.address.clone().unwrap_or_else(|| "—".into()),
                l.to,
                l.expected_address.clone().unwrap_or_else(|| "—".into()),
            )}
        </p>
        <p class="mt-1 text-sm">
            {if reverse {
                view! { <button type="button" class="underline" on:click=move |_| selected.set(Some(Selection::Link(f.clone(), t.clone())))>{format!("The other direction: {} → {}", l.to, l.from)}</button> }.into_any()
            } else {
                view! { <span>{format!("! One-way: {} holds no peer gateway for {}.", l.to, l.from)}</span> }.into_any()
            }}
        </p>
        {conditions}
    }
}

/// What the user may do from the panel: everyone re-checks and reads the YAML; operators re-link.
#[component]
fn Actions(cluster: ClusterName, peer: Option<ClusterName>) -> impl IntoView {
    let can_link = super::allowed(Role::Operator);
    let names: Vec<ClusterName> = std::iter::once(cluster.clone())
        .chain(peer.clone())
        .collect();
    let check = Action::new(move |names: &Vec<ClusterName>| run_checks(names.clone()));
    let (c2, p2) = (cluster.clone(), peer.clone());
    let yaml = Action::new(move |_: &()| topology_objects(c2.clone(), p2.clone()));
    let (c3, p3) = (cluster.clone(), peer.clone());
    let link = Action::new(move |_: &()| {
        let (from, to) = (c3.clone(), p3.clone());
        async move {
            match to {
                Some(to) => relink(from, to).await,
                None => Err(crate::model::AppError::invalid("to", "pick a link")),
            }
        }
    });
    let wizard = format!(
        "/setup?{}",
        names
            .iter()
            .map(|n| format!("cluster={n}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let checks_href = format!(
        "/checks?{}",
        names
            .iter()
            .map(|n| format!("cluster={n}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let names2 = names.clone();
    view! {
        <div class="mt-3 flex flex-wrap gap-2" data-testid="panel-actions">
            <button type="button" class=SMALL_BUTTON data-testid="action-recheck" on:click=move |_| { check.dispatch(names2.clone()); }>
                "Re-check"
            </button>
            <button type="button" class=SMALL_BUTTON data-testid="action-yaml" on:click=move |_| { yaml.dispatch(()); }>
                "Show YAML"
            </button>
            {move || (can_link() && peer.is_some()).then(|| view! {
                <button type="button" class=SMALL_BUTTON data-testid="action-relink" on:click=move |_| { link.dispatch(()); }>
                    "Re-link"
                </button>
            })}
            <a class=SMALL_BUTTON href=wizard>"Open in the setup wizard"</a>
            <a class=SMALL_BUTTON href=checks_href>"Checks page"</a>
        </div>
        {move || check.pending().get().then(|| view! { <p class="mt-2 text-sm">"Running the checks…"</p> })}
        {move || check.value().get().map(|r| match r {
            Ok(report) => {
                let rows = report.clusters.into_iter().map(|c| {
                    let failing: Vec<String> = c.results.iter().filter(|r| !matches!(r.status, crate::model::CheckStatus::Pass)).map(|r| format!("{}: {}", r.title, r.message)).collect();
                    view! {
                        <li>
                            <span class="font-medium">{format!("{}: ", c.cluster)}</span>
                            <super::CheckBadge status=c.worst />
                            <ul class="ml-4 list-disc">{failing.into_iter().map(|f| view! { <li>{f}</li> }).collect_view()}</ul>
                        </li>
                    }
                }).collect_view();
                let link = report.id.map(|id| view! {
                    <a class="text-sm underline" href=format!("/checks?report={id}")>"The whole report"</a>
                });
                view! { <ul class="mt-2 space-y-1 text-sm" data-testid="recheck-result">{rows}</ul> {link} }.into_any()
            }
            Err(e) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
        })}
        {move || link.value().get().map(|r| match r {
            Ok(o) => match o.error {
                None => view! { <p class="mt-2 text-sm" data-testid="relink-result">{format!("✓ Applied {} in {}.", o.applied.join(", "), o.cluster)}</p> }.into_any(),
                Some(e) => view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300" data-testid="relink-result">{format!("✕ {e}")}</p> }.into_any(),
            },
            Err(e) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
        })}
        {move || yaml.value().get().map(|r| match r {
            Ok(objects) => objects.into_iter().map(|o| view! {
                <details class="mt-2" open data-testid="object-yaml">
                    <summary class="cursor-pointer text-sm font-medium">{o.title.clone()}</summary>
                    {match o.yaml {
                        Ok(y) => view! { <super::setup::Copyable text=y /> }.into_any(),
                        Err(e) => view! { <p class="text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> }.into_any(),
                    }}
                </details>
            }).collect_view().into_any(),
            Err(e) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
        })}
    }
}

/// Reads a JSON export (a `Graph`, or `{"version", "graph"}`) and shows it instead of the live graph.
fn import_file(
    ev: leptos::ev::Event,
    graph: RwSignal<Graph>,
    source: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
    error: RwSignal<Option<String>>,
) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        if file.size() > MAX_IMPORT as f64 {
            error.set(Some(format!(
                "{} is {} bytes; the limit is {MAX_IMPORT} bytes (64 MiB).",
                file.name(),
                file.size()
            )));
            return;
        }
        let name = file.name();
        leptos::task::spawn_local(async move {
            let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(v) => v.as_string().unwrap_or_default(),
                Err(_) => {
                    error.set(Some(format!("{name} could not be read.")));
                    return;
                }
            };
            match crate::model::topology::parse_export(&text) {
                Ok(g) => {
                    selected.set(None);
                    source.set(name);
                    graph.set(g);
                    error.set(None);
                }
                Err(e) => error.set(Some(format!(
                    "{name} is not a Meshdeck topology export: {e}"
                ))),
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, graph, source, selected, error, MAX_IMPORT);
}

/// Leaves an imported file: fetches the live graph again (the stream goes on by itself).
fn back_to_live(
    graph: RwSignal<Graph>,
    version: RwSignal<u64>,
    source: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
) {
    leptos::task::spawn_local(async move {
        if let Ok(v) = topology_graph().await {
            selected.set(None);
            graph.set(v.graph);
            version.set(v.version);
            source.set("live".into());
        }
    });
}

/// Offers `bytes` as a download named `name` (browser only).
#[cfg(feature = "hydrate")]
fn download(name: &str, href: &str) {
    use leptos::wasm_bindgen::JsCast;
    let Some(doc) = leptos::web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(a) = doc
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<leptos::web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(href);
        a.set_download(name);
        a.click();
    }
}

#[cfg(feature = "hydrate")]
fn blob_url(text: &str, mime: &str) -> Option<String> {
    let parts = leptos::web_sys::js_sys::Array::of1(&leptos::wasm_bindgen::JsValue::from_str(text));
    let opts = leptos::web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = leptos::web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).ok()?;
    leptos::web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// The graph drawing as a standalone SVG document (colours are attributes, so it keeps them).
#[cfg(feature = "hydrate")]
fn svg_text() -> Option<String> {
    let doc = leptos::web_sys::window()?.document()?;
    let svg = doc.get_element_by_id("topology-svg")?;
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        svg.outer_html().replacen(
            "<svg ",
            "<svg style=\"color:#0f172a;background:#ffffff\" ",
            1
        )
    ))
}

fn export_json(graph: &Graph) {
    #[cfg(feature = "hydrate")]
    if let Ok(text) = serde_json::to_string_pretty(graph)
        && let Some(url) = blob_url(&text, "application/json")
    {
        download("meshdeck-topology.json", &url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = graph;
}

fn export_svg() {
    #[cfg(feature = "hydrate")]
    if let Some(text) = svg_text()
        && let Some(url) = blob_url(&text, "image/svg+xml")
    {
        download("meshdeck-topology.svg", &url);
    }
}

/// Draws the SVG on a canvas at twice its size and downloads it as PNG.
fn export_png() {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        use leptos::wasm_bindgen::closure::Closure;
        let Some(text) = svg_text() else { return };
        let Some(url) = blob_url(&text, "image/svg+xml") else {
            return;
        };
        let Ok(img) = leptos::web_sys::HtmlImageElement::new() else {
            return;
        };
        let img2 = img.clone();
        let onload = Closure::once_into_js(move || {
            let Some(doc) = leptos::web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            let Some(canvas) = doc
                .create_element("canvas")
                .ok()
                .and_then(|c| c.dyn_into::<leptos::web_sys::HtmlCanvasElement>().ok())
            else {
                return;
            };
            let (w, h) = (
                img2.natural_width().max(1) * 2,
                img2.natural_height().max(1) * 2,
            );
            canvas.set_width(w);
            canvas.set_height(h);
            let Some(ctx) = canvas.get_context("2d").ok().flatten().and_then(|c| {
                c.dyn_into::<leptos::web_sys::CanvasRenderingContext2d>()
                    .ok()
            }) else {
                return;
            };
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, w as f64, h as f64);
            let _ = ctx.draw_image_with_html_image_element_and_dw_and_dh(
                &img2, 0.0, 0.0, w as f64, h as f64,
            );
            if let Ok(data) = canvas.to_data_url_with_type("image/png") {
                download("meshdeck-topology.png", &data);
            }
        });
        img.set_onload(Some(onload.unchecked_ref()));
        img.set_src(&url);
    }
}

/// Follows `/live/topology` while the page is open: the whole graph first, then updates (browser only).
/// Ignored while an imported file is shown.
#[cfg(feature = "hydrate")]
fn follow(
    graph: RwSignal<Graph>,
    version: RwSignal<u64>,
    live: RwSignal<bool>,
    source: RwSignal<String>,
) {
    use crate::model::topology::GraphUpdate;
    use leptos::wasm_bindgen::JsCast;
    use leptos::wasm_bindgen::closure::Closure;

    #[derive(serde::Deserialize)]
    struct Update {
        version: u64,
        update: GraphUpdate,
    }

    let Ok(es) = leptos::web_sys::EventSource::new("/live/topology") else {
        return;
    };
    let on_graph = Closure::<dyn FnMut(leptos::web_sys::MessageEvent)>::new(
        move |ev: leptos::web_sys::MessageEvent| {
            live.set(true);
            let Some(text) = ev.data().as_string() else {
                return;
            };
            if let Ok(v) = serde_json::from_str::<TopologyView>(&text)
                && source.get_untracked() == "live"
            {
                graph.set(v.graph);
                version.set(v.version);
            }
        },
    );
    let on_update = Closure::<dyn FnMut(leptos::web_sys::MessageEvent)>::new(
        move |ev: leptos::web_sys::MessageEvent| {
            live.set(true);
            let Some(text) = ev.data().as_string() else {
                return;
            };
            if let Ok(u) = serde_json::from_str::<Update>(&text)
                && source.get_untracked() == "live"
            {
                graph.update(|g| mesh_ids::graph::apply(g, u.update));
                version.set(u.version);
            }
        },
    );
    let on_open = Closure::<dyn FnMut(leptos::web_sys::Event)>::new(move |_| live.set(true));
    let on_error = Closure::<dyn FnMut(leptos::web_sys::Event)>::new(move |_| live.set(false));
    let _ = es.add_event_listener_with_callback("graph", on_graph.as_ref().unchecked_ref());
    let _ = es.add_event_listener_with_callback("update", on_update.as_ref().unchecked_ref());
    es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let kept = StoredValue::new_local((es, on_graph, on_update, on_open, on_error));
    on_cleanup(move || {
        kept.try_with_value(|(es, ..)| es.close());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topology::parse_export;

    #[test]
    fn an_export_is_read_with_or_without_its_version() {
        let g = Graph::default();
        let bare = serde_json::to_string(&g).expect("json");
        assert_eq!(parse_export(&bare).expect("bare"), g);
        let wrapped = serde_json::to_string(&TopologyView {
            version: 7,
            graph: g.clone(),
        })
        .expect("json");
        assert_eq!(parse_export(&wrapped).expect("wrapped"), g);
        let err = parse_export("{\"clusters\": 3}").expect_err("not a graph");
        assert!(err.contains("invalid type"), "{err}");
    }
}
