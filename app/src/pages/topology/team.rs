//! The team filter: pick a team (yours, or any for platform operators) and the graph keeps its clusters and
//! those that reach its shared services, highlights the links they are reached along, and marks drift; the
//! panel lists its namespaces and shared services with where they are reachable from. A plain form (a
//! `?team=` link) without JavaScript; with it, the drift follows the team's live stream.

use leptos::prelude::*;

use super::PANEL;
use crate::api::SubmitPortalRequest;
use crate::components::{BUTTON_SECONDARY, DataTable, ErrorBox, TD, TD_NOWRAP, TR};
use crate::model::{PortalAction, TeamMap, TeamScope};

const SELECT: &str =
    "ml-1 rounded border border-slate-300 px-2 py-1 dark:border-slate-700 dark:bg-slate-900";

/// The team picker: a GET form, so it works without JavaScript; with it, a change applies at once.
#[component]
pub(super) fn TeamPicker(
    scopes: RwSignal<Vec<TeamScope>>,
    team: RwSignal<String>,
) -> impl IntoView {
    let names = move || scopes.with(|s| s.iter().map(|t| t.team.clone()).collect::<Vec<_>>());
    view! {
        <Show when=move || scopes.with(|s| !s.is_empty())>
            <form method="get" action="/topology" class="flex items-end gap-1 text-sm" data-testid="team-filter">
                <label>
                    "Team "
                    <select
                        name="team"
                        class=SELECT
                        data-testid="filter-team"
                        on:change=move |ev| team.set(event_target_value(&ev))
                    >
                        <option value="" selected=move || team.get().is_empty()>"all"</option>
                        {move || {
                            names()
                                .into_iter()
                                .map(|n| {
                                    let chosen = n.clone();
                                    view! {
                                        <option value=n.clone() selected=move || team.get() == chosen>
                                            {n.clone()}
                                        </option>
                                    }
                                })
                                .collect_view()
                        }}
                    </select>
                </label>
                <noscript>
                    <button type="submit" class="rounded border border-slate-300 px-2 py-1 dark:border-slate-700">
                        "Show"
                    </button>
                </noscript>
            </form>
        </Show>
    }
}

/// Merges what the team's live stream says of drift: the objects of the clusters it speaks of are
/// replaced (it lists every object of each cluster it can see); those of other clusters are kept.
#[cfg(any(feature = "hydrate", test))]
pub(super) fn merge_drift(scope: &mut TeamScope, seen: Vec<crate::model::PortalDrift>) {
    let clusters: std::collections::BTreeSet<String> =
        seen.iter().map(|d| d.cluster.clone()).collect();
    scope.objects.retain(|o| !clusters.contains(&o.cluster));
    scope.objects.extend(seen);
    scope.objects.sort_by(|a, b| {
        (&a.namespace, &a.service, &a.cluster).cmp(&(&b.namespace, &b.service, &b.cluster))
    });
}

/// Follows the team's live stream while the team is picked (browser only): its drift, as the watches see it.
#[component]
pub(super) fn FollowTeam(team: String, scopes: RwSignal<Vec<TeamScope>>) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let live = RwSignal::new(false);
        let url = format!("/live/portal/{team}");
        let on_drift = move |text: String| {
            if let Ok(seen) = crate::data::parse::<Vec<crate::model::PortalDrift>>(&text) {
                scopes.update(|all| {
                    if let Some(s) = all.iter_mut().find(|s| s.team == team) {
                        merge_drift(s, seen);
                    }
                });
            }
        };
        crate::pages::live::listen(&url, vec![("drift", Box::new(on_drift))], live);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (team, scopes);
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "—".to_string()
    } else {
        names.join(", ")
    }
}

/// The team's namespaces and shared services, with where they are reachable from and any drift.
#[component]
pub(super) fn TeamPanel(map: Memo<Option<TeamMap>>) -> impl IntoView {
    // Kept across live redraws of the panel, so a re-apply's outcome stays.
    let reapply = ServerAction::<SubmitPortalRequest>::new();
    let outcome = move || {
        reapply.value().get().map(|r| match r {
            Ok(s) => view! {
                <p class="mt-1 text-sm" role="status" data-testid="topology-reapply-outcome">
                    {match s.job_id {
                        Some(_) => format!("✓ Re-apply {} is running; the drift clears here when it is done.", s.id),
                        None => format!("Re-apply {} waits for a platform operator.", s.id),
                    }}
                </p>
            }
            .into_any(),
            Err(e) => view! { <div class="mt-1"><ErrorBox error=e /></div> }.into_any(),
        })
    };
    let panel = move || {
        map.get().map(|m| {
            let team = m.team.clone();
            let buttons = m
                .to_reapply
                .iter()
                .filter(|_| m.member)
                .map(|(cluster, namespace)| {
                    let action = PortalAction::reapply(&team, namespace, cluster);
                    view! {
                        <button
                            type="button"
                            class=format!("mr-2 mt-1 {BUTTON_SECONDARY}")
                            data-testid="topology-reapply"
                            data-target=format!("{cluster}/{namespace}")
                            disabled=move || reapply.pending().get()
                            on:click=move |_| {
                                reapply.dispatch(SubmitPortalRequest { action: action.clone() });
                            }
                        >
                            {format!("Re-apply {namespace} in {cluster}")}
                        </button>
                    }
                })
                .collect_view();
            let summary = format!(
                "{} namespace(s) in {} cluster(s); {} shared service(s), reachable from {} cluster(s)",
                m.namespaces.len(),
                m.home.len(),
                m.services.iter().filter(|s| !s.shared_in.is_empty()).count(),
                m.reaching.len()
            );
            let drifting = (!m.drifting.is_empty()).then(|| {
                let clusters = m.drifting.iter().cloned().collect::<Vec<_>>().join(", ");
                view! {
                    <p role="status" class="mt-1 text-sm font-medium text-amber-800 dark:text-amber-300" data-testid="team-drift">
                        {format!("! Drift in {clusters}: a label the portal applied was changed or removed by hand. ")}
                        <a class="underline" href=format!("/team?team={team}")>"See it on the team's page"</a>
                    </p>
                    <div>{buttons}</div>
                }
            });
            let ns_rows = m
                .namespaces
                .iter()
                .map(|n| {
                    let state = if !n.drift.is_empty() {
                        format!("! drift: {}", n.drift.join("; "))
                    } else if n.meshed {
                        "✓ in the mesh".to_string()
                    } else {
                        "not in the mesh".to_string()
                    };
                    view! {
                        <tr class=TR data-team-namespace=format!("{}/{}", n.cluster, n.namespace) data-drift=(!n.drift.is_empty()).to_string()>
                            <td class=TD_NOWRAP>{n.namespace.clone()}</td>
                            <td class=TD_NOWRAP>{n.cluster.clone()}</td>
                            <td class=TD>{state}</td>
                        </tr>
                    }
                    .into_any()
                })
                .collect::<Vec<_>>();
            let svc_rows = m
                .services
                .iter()
                .map(|s| {
                    let drift = s
                        .drift
                        .iter()
                        .map(|(c, d)| format!("{c}: {d}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    view! {
                        <tr class=TR data-team-service=format!("{}/{}", s.namespace, s.service) data-drift=(!drift.is_empty()).to_string()>
                            <td class=TD>
                                <span class="font-medium">{format!("{}/{}", s.namespace, s.service)}</span>
                                <br />
                                <code class="text-xs break-all">{s.hostname.clone().unwrap_or_else(|| "not shared".into())}</code>
                            </td>
                            <td class=TD data-shared-in>{list(&s.shared_in)}</td>
                            <td class=TD data-reachable-from>{list(&s.reachable_from)}</td>
                            <td class=TD>{if drift.is_empty() { "✓".to_string() } else { format!("! {drift}") }}</td>
                        </tr>
                    }
                    .into_any()
                })
                .collect::<Vec<_>>();
            view! {
                <section class=PANEL data-testid="team-panel" aria-live="polite">
                    <h2 class="font-semibold">{format!("Team {team}")}</h2>
                    <p class="mt-1 text-sm" data-testid="team-summary">{summary}</p>
                    {drifting}
                    <h3 class="mt-2 text-sm font-semibold">"Namespaces"</h3>
                    <DataTable
                        caption=format!("Namespaces of team {team}")
                        head=vec!["Namespace", "Cluster", "State"]
                        rows=ns_rows
                        empty="None yet: the team enrols namespaces on its page."
                        testid="team-namespaces"
                    />
                    <h3 class="mt-2 text-sm font-semibold">"Shared services"</h3>
                    <DataTable
                        caption=format!("Shared services of team {team}")
                        head=vec!["Service and address", "Shared in", "Reachable from", "Drift"]
                        rows=svc_rows
                        empty="None shared."
                        testid="team-services"
                    />
                    <p class="mt-2 text-sm">
                        <a class="underline" href=format!("/team?team={team}")>"Open the team's page"</a>
                    </p>
                </section>
            }
        })
    };
    view! {
        {panel}
        {outcome}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PortalDrift;

    fn d(cluster: &str, ns: &str, drift: &[&str]) -> PortalDrift {
        PortalDrift {
            cluster: cluster.into(),
            namespace: ns.into(),
            service: None,
            drift: drift.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_stream_replaces_what_it_says_of_a_cluster_and_keeps_the_others() {
        let mut s = TeamScope {
            member: true,
            team: "t".into(),
            grants: vec![],
            objects: vec![d("c1", "a", &[]), d("c2", "a", &[]), d("c2", "b", &[])],
        };
        merge_drift(&mut s, vec![d("c2", "a", &["label x removed"])]);
        assert_eq!(
            s.objects,
            vec![d("c1", "a", &[]), d("c2", "a", &["label x removed"])]
        );
    }
}
