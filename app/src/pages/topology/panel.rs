//! The side panel (a cluster's or a link's parts, conditions, objects and actions) and the findings.

use leptos::prelude::*;

use super::canvas::has_reverse;
use super::{PANEL, SMALL_BUTTON, Selection, colour};
use crate::api::{relink, run_checks, topology_objects};
use crate::components::ErrorBox;
use crate::model::topology::{ClusterNode, Graph, Health, LinkEdge, health_icon, layers};
use crate::model::{ClusterName, Role};

#[component]
pub(super) fn Findings(
    graph: RwSignal<Graph>,
    selected: RwSignal<Option<Selection>>,
) -> impl IntoView {
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
pub(super) fn Panel(
    graph: RwSignal<Graph>,
    selected: RwSignal<Option<Selection>>,
) -> impl IntoView {
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
                {c.drift.clone().map(|d| part_row("Drift", d.state, d.detail))}
            </tbody>
        </table>
        <p class="mt-1 text-sm">
            <a class="text-indigo-700 underline dark:text-indigo-300" href=format!("/clusters/{}", c.name)>
                {if c.drift.is_some() { "Drift and re-apply on the cluster's page" } else { "Compare with what Meshdeck applied (drift) on the cluster's page" }}
            </a>
        </p>
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
    let can_link = crate::pages::allowed(Role::Operator);
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
                            <crate::pages::CheckBadge status=c.worst />
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
                        Ok(y) => view! { <crate::pages::setup::Copyable text=y /> }.into_any(),
                        Err(e) => view! { <p class="text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> }.into_any(),
                    }}
                </details>
            }).collect_view().into_any(),
            Err(e) => view! { <div class="mt-2"><ErrorBox error=e /></div> }.into_any(),
        })}
    }
}
