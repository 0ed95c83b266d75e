//! The graph drawing: clusters as a keyed SVG list, the links as one layer (see [`super::links`]), and its
//! legend.

use leptos::prelude::*;

use super::links::{link_draws, markup};
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

/// What one cluster draws; `key` holds all of it, so a keyed list redraws the cluster only when it changed.
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
    // Which cluster is selected, one signal per cluster: a change of selection wakes the two it concerns.
    let is_selected = Selector::new(move || selected.get());
    // The links: written once as markup (by the server, or when the canvas is built in the browser), then
    // kept in step by one effect that rewrites only the links a change touched.
    let draws = move || {
        graph.with(|g| {
            placed.with(|l| {
                team.with(|t| {
                    hidden.with(|h| selected.with(|s| link_draws(g, l, t.as_ref(), h, s.as_ref())))
                })
            })
        })
    };
    let first = untrack(draws);
    let layer = NodeRef::<leptos::svg::G>::new();
    #[cfg(feature = "hydrate")]
    {
        let drawn = StoredValue::new_local(super::links::Drawn::new(&first));
        Effect::new(move |_| {
            let links = draws();
            if let Some(el) = layer.get() {
                drawn.update_value(|d| d.update(&el, links));
            }
        });
    }
    let first = markup(&first);
    let pick = move |ev: &leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        if let Some((from, to)) = super::links::link_of(ev) {
            selected.set(Some(Selection::Link(from, to)));
            return true;
        }
        let _ = ev;
        false
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
    let node = move |n: NodeItem| {
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
                <g
                    data-testid="links"
                    node_ref=layer
                    inner_html=first
                    on:click=move |ev| {
                        pick(&ev);
                    }
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if (ev.key() == "Enter" || ev.key() == " ") && pick(&ev) {
                            ev.prevent_default();
                        }
                    }
                    on:pointerover=move |ev| {
                        #[cfg(feature = "hydrate")]
                        super::links::name_on_hover(&ev);
                        let _ = ev;
                    }
                ></g>
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
