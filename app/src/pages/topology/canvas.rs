//! The graph drawing: clusters and links as keyed SVG lists, and its legend.

use leptos::prelude::*;

use super::{SELECTED, Selection, View, colour};
use crate::model::topology::{ClusterNode, Filter, Graph, Health, LinkEdge, health_icon};
use crate::model::{ClusterName, TeamMap};

/// Width of the element an event happened on, in CSS pixels (1 without a browser).
pub(super) fn client_width(ev: &leptos::ev::PointerEvent) -> f64 {
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
pub(super) fn has_reverse(graph: &Graph, l: &LinkEdge) -> bool {
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
    /// With a team picked: whether the team's shared services are reached along it.
    team: Option<bool>,
}

impl EdgeItem {
    fn new(
        e: &crate::model::topology::Edge,
        health: Health,
        one_way: bool,
        team: Option<bool>,
    ) -> Self {
        EdgeItem {
            key: format!("{}|{}|{one_way}|{}|{team:?}", e.id, health.label(), e.d),
            id: e.id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
            health,
            one_way,
            d: e.d.clone(),
            team,
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
    /// With a team picked: "home" (holds its namespaces), "reaching" (reaches its shared services) or
    /// "other"; and whether something of the team drifted here.
    team: Option<(&'static str, bool)>,
}

/// What a cluster is to the picked team.
fn team_role(map: &TeamMap, cluster: &str) -> (&'static str, bool) {
    let role = if map.home.contains(cluster) {
        "home"
    } else if map.reaching.contains(cluster) {
        "reaching"
    } else {
        "other"
    };
    (role, map.drifting.contains(cluster))
}

impl NodeItem {
    fn new(c: &ClusterNode, x: f64, y: f64, r: f64, team: Option<(&'static str, bool)>) -> Self {
        let exports = c
            .namespaces
            .iter()
            .flat_map(|n| n.services.iter())
            .filter(|s| s.exported)
            .count();
        NodeItem {
            key: format!(
                "{}|{}|{}|{exports}|{x}|{y}|{r}|{team:?}",
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
            team,
        }
    }
}

#[component]
pub(super) fn Canvas(
    graph: RwSignal<Graph>,
    placed: Memo<crate::model::topology::Layout>,
    filter: Memo<Filter>,
    search: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
    view_at: RwSignal<View>,
    /// The picked team's view, if any.
    team: Memo<Option<TeamMap>>,
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
                team.with(|team| {
                    hidden.with(|hide| {
                        l.edges
                            .iter()
                            .filter(|e| {
                                !hide.contains(e.from.as_str()) && !hide.contains(e.to.as_str())
                            })
                            .filter_map(|e| {
                                let link = g.link(&e.from, &e.to)?;
                                let carries = team.as_ref().map(|m| {
                                    m.links.contains(&(e.from.to_string(), e.to.to_string()))
                                });
                                Some(EdgeItem::new(
                                    e,
                                    link.health,
                                    !has_reverse(g, link),
                                    carries,
                                ))
                            })
                            .collect::<Vec<_>>()
                    })
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
                team,
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
                    data-team-link=team.map(|c| c.to_string())
                    opacity=if team == Some(false) { "0.2" } else { "1" }
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
                        stroke-width=move || if is_selected2() { "3.5" } else if team == Some(true) { "3" } else { "1.6" }
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
                team.with(|team| {
                    l.nodes
                        .iter()
                        .filter_map(|p| {
                            let c = g.cluster(&ClusterName::new(&p.name).ok()?)?;
                            let role = team.as_ref().map(|m| team_role(m, &p.name));
                            Some(NodeItem::new(c, p.x, p.y, l.node_r, role))
                        })
                        .collect::<Vec<_>>()
                })
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
                team,
                ..
            } = n;
            let label = format!(
                "Cluster {name}: {}{}{}",
                health.label(),
                if reachable { "" } else { ", unreachable" },
                match team {
                    Some(("home", drift)) => format!(
                        "; holds the team's namespaces{}",
                        if drift { ", with drift" } else { "" }
                    ),
                    Some(("reaching", _)) => "; reaches the team's shared services".to_string(),
                    Some(_) => "; not the team's".to_string(),
                    None => String::new(),
                }
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
                    data-team=team.map(|(role, _)| role)
                    data-team-drift=team.map(|(_, drift)| drift.to_string())
                    opacity=move || {
                        if matched.get() == Some(false) || matches!(team, Some(("other", _))) { "0.25" } else { "1" }
                    }
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
                    {matches!(team, Some((_, true))).then(|| view! {
                        <text x=r * 0.8 y=-r * 0.8 font-size=font fill="#b45309" font-weight="bold">"! drift"</text>
                    })}
                    {matches!(team, Some(("home", _))).then(|| view! {
                        <circle r=r + 5.0 fill="none" stroke=SELECTED stroke-width="1.5" stroke-dasharray="2 2" aria-hidden="true" />
                    })}
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
pub(super) fn Legend() -> impl IntoView {
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
            <li class="flex items-center gap-1">
                <svg width="20" height="20" aria-hidden="true"><circle cx="10" cy="10" r="6" fill="#64748b" /><circle cx="10" cy="10" r="9" fill="none" stroke="#4f46e5" stroke-width="1.5" stroke-dasharray="2 2" /></svg>
                "dotted ring: holds the picked team's namespaces (thick links: its shared services are reached along them)"
            </li>
        </ul>
    }
}
