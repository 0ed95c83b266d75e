//! My team: the team's namespaces and Services in each cluster (mode, shared, endpoints, drift with a
//! re-apply), its shared services with the name other clusters use, its requests (live), the form to ask
//! for a change, and the team's audit timeline with its export.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::super::setup::Copyable;
use super::form::{FormState, RequestForm};
use super::{AuditTable, describe, request_rows};
use crate::api::{
    SubmitPortalRequest, WithdrawPortalRequest, get_team_overview, plan_portal_request,
};
use crate::components::{Alert, BUTTON_SECONDARY, DataTable, ErrorBox, Gate, TD, TD_NOWRAP, TR};
use crate::model::{
    AppError, PortalAction, PortalObjectView, PortalPlan, PortalRequestView, TeamOverview,
};

/// Drift by (cluster, namespace, service), as the live stream last said.
type DriftMap = BTreeMap<(String, String, Option<String>), Vec<String>>;

#[component]
pub fn TeamPage() -> impl IntoView {
    let query = use_query_map();
    let wanted = move || query.read().get("team").unwrap_or_default();
    let refresh = RwSignal::new(0u32);
    let withdraw = ServerAction::<WithdrawPortalRequest>::new();
    let reapply = ServerAction::<SubmitPortalRequest>::new();
    // What the plain form sent back (without JavaScript: a preview, or a refused request to look at again),
    // and the request just made through it.
    let (draft, preview, just_made) = query.with_untracked(|q| {
        let mut pairs: Vec<(String, String)> = [
            "team",
            "kind",
            "namespace",
            "service",
            "mode",
            "scope",
            "spread",
        ]
        .iter()
        .filter_map(|k| q.get(k).map(|v| (k.to_string(), v)))
        .collect();
        pairs.extend(
            q.get_all("cluster")
                .unwrap_or_default()
                .into_iter()
                .map(|c| ("cluster".to_string(), c)),
        );
        let draft = q
            .get("kind")
            .and_then(|_| PortalAction::from_form(&pairs).ok());
        let preview = draft
            .clone()
            .filter(|_| q.get("preview").as_deref() == Some("1"));
        (draft, preview, q.get("request"))
    });
    let form = FormState::new(draft);
    let just_made = StoredValue::new(just_made);
    // The plain form's preview (or a refused request sent back to it), planned while the page is drawn.
    let previewed = crate::data::data(
        || (),
        move |_| {
            let a = preview.clone();
            async move {
                match a {
                    Some(a) => Some(plan_portal_request(a).await),
                    None => None,
                }
            }
        },
    );
    let overview = crate::data::data(
        move || {
            (
                wanted(),
                refresh.get(),
                withdraw.version().get(),
                reapply.version().get(),
                form.submitted().version().get(),
            )
        },
        |(team, ..)| get_team_overview(team),
    );
    // Live: the requests as they move, and drift as the watches see it.
    let requests = RwSignal::new(None::<Vec<PortalRequestView>>);
    let drift = RwSignal::new(DriftMap::new());
    let live = RwSignal::new(false);
    view! {
        <Gate title="My team">
            // A transition: the page stays as it is while it is read again (after a request settles).
            <Transition fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let preview = previewed.await;
                    match overview.await {
                        Ok(Some(o)) => view! {
                            <Overview o=o requests=requests drift=drift live=live withdraw=withdraw reapply=reapply refresh=refresh form=form preview=preview just_made=just_made.get_value() />
                        }
                        .into_any(),
                        Ok(None) => view! {
                            <h1 class="text-2xl font-bold">"My team"</h1>
                            <p class="mt-2 max-w-prose" data-testid="no-team">
                                "You are not in a team yet. A platform admin adds you to your team under Teams; then you can put your team's namespaces in the mesh and share its services from here."
                            </p>
                        }
                        .into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Transition>
        </Gate>
    }
}

/// Follows the team's live stream while the page shows it (browser only).
#[component]
fn Follow(
    team: String,
    requests: RwSignal<Option<Vec<PortalRequestView>>>,
    drift: RwSignal<DriftMap>,
    live: RwSignal<bool>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let url = format!("/live/portal/{team}");
        Effect::new(move |_| {
            let on_requests = move |text: String| {
                if let Ok(list) = crate::data::parse::<Vec<PortalRequestView>>(&text) {
                    let settled = |l: &[PortalRequestView]| {
                        l.iter()
                            .filter(|r| matches!(r.state.as_str(), "applied" | "failed"))
                            .count()
                    };
                    let before = requests.with_untracked(|r| r.as_deref().map(settled));
                    let now = settled(&list);
                    requests.set(Some(list));
                    if before.is_some_and(|b| b != now) {
                        refresh.update(|n| *n += 1);
                    }
                }
            };
            let on_drift = move |text: String| {
                if let Ok(list) = crate::data::parse::<Vec<crate::model::PortalDrift>>(&text) {
                    drift.set(
                        list.into_iter()
                            .map(|d| ((d.cluster, d.namespace, d.service), d.drift))
                            .collect(),
                    );
                }
            };
            super::super::live::listen(
                &url,
                vec![
                    ("requests", Box::new(on_requests)),
                    ("drift", Box::new(on_drift)),
                ],
                live,
            );
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (team, requests, drift, live, refresh);
}

#[component]
fn Overview(
    o: TeamOverview,
    requests: RwSignal<Option<Vec<PortalRequestView>>>,
    drift: RwSignal<DriftMap>,
    live: RwSignal<bool>,
    withdraw: ServerAction<WithdrawPortalRequest>,
    reapply: ServerAction<SubmitPortalRequest>,
    refresh: RwSignal<u32>,
    form: FormState,
    /// A plan to show at once (the plain form's preview).
    preview: Option<Result<PortalPlan, AppError>>,
    /// The request the plain form just made.
    just_made: Option<String>,
) -> impl IntoView {
    let s = &o.team.settings;
    let grants = o
        .team
        .grants
        .iter()
        .map(|g| format!("{}: {}", g.cluster, g.patterns.join(", ")))
        .collect::<Vec<_>>()
        .join(" · ");
    let initial = o.requests.clone();
    let shown_requests = move || requests.get().unwrap_or_else(|| initial.clone());
    let team = s.name.clone();
    let objects = o.objects.clone();
    let object_rows = {
        let team = team.clone();
        move || {
            let live_drift = drift.get();
            objects
                .iter()
                .map(|ob| object_row(ob, &live_drift, &team, reapply))
                .collect::<Vec<_>>()
        }
    };
    let shared = o
        .shared
        .iter()
        .map(|sv| {
            let warnings = sv.warnings.iter().map(|w| view! { <Alert message=w.clone() /> }).collect_view();
            view! {
                <li class="mt-2 rounded border border-slate-200 p-3 dark:border-slate-800" data-shared=sv.address.clone().unwrap_or_default()>
                    <p class="font-medium">
                        {match &sv.service {
                            Some(svc) => format!("Service {svc} of {}", sv.namespace),
                            None => format!("Every service of {}", sv.namespace),
                        }}
                    </p>
                    {sv.address.clone().map(|a| view! { <Copyable text=a label="Other clusters call it" /> })}
                    <p class="mt-1 text-sm">
                        {if sv.serving.is_empty() {
                            "No cluster has ready endpoints for it yet.".to_string()
                        } else {
                            format!("Endpoints in: {}", sv.serving.join(", "))
                        }}
                    </p>
                    {warnings}
                </li>
            }
        })
        .collect_view();
    let my_role = o.my_role;
    let switch = (o.my_teams.len() > 1).then(|| {
        let links = o
            .my_teams
            .iter()
            .map(|n| {
                let here = *n == o.team.settings.name;
                view! {
                    <a class="mr-3 underline" href=format!("/team?team={n}") aria-current=here.then_some("page")>
                        {n.clone()}
                    </a>
                }
            })
            .collect_view();
        view! { <nav aria-label="Teams" class="mb-2 text-sm">"Your teams: " {links}</nav> }
    });
    let timeline = o.timeline.clone();
    let export = format!("/export/audit?team={}", s.name);
    view! {
        {switch}
        <Follow team=s.name.clone() requests=requests drift=drift live=live refresh=refresh />
        <div class="flex flex-wrap items-center gap-3">
            <h1 class="text-2xl font-bold" data-testid="team-name">{format!("Team {}", s.name)}</h1>
            <span class="text-sm" data-testid="live">
                {move || if live.get() { "● following live" } else { "updates when you reload this page" }}
            </span>
            <a class="text-sm underline" href=format!("/topology?team={}", s.name) data-testid="team-topology">
                "See it on the topology"
            </a>
        </div>
        <p class="mt-1 text-sm">
            {s.description.clone()}
            {(!s.contact.is_empty()).then(|| format!(" — contact {}", s.contact))}
            {my_role.map(|r| format!(" — you are a team {}", r.as_str()))}
        </p>
        <p class="mt-1 text-sm" data-testid="limits">
            {format!(
                "Namespaces in the mesh: {} of {} · Shared services: {} of {} · Granted: {}",
                o.namespaces_used, s.max_namespaces, o.services_used, s.max_services,
                if grants.is_empty() { "nothing yet".to_string() } else { grants },
            )}
        </p>
        <section class="mt-6">
            <h2 class="text-lg font-semibold">"Namespaces and services"</h2>
            {move || view! {
                <DataTable
                    caption="What the portal keeps applied, per cluster".to_string()
                    head=vec!["Cluster", "Namespace", "Service", "State", "Applied", "Drift"]
                    rows=object_rows()
                    empty="Nothing yet: enrol a namespace below."
                    testid="team-objects"
                />
            }}
            {move || reapply.value().get().and_then(Result::err).map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
        </section>
        {(!o.shared.is_empty()).then(|| view! {
            <section class="mt-6">
                <h2 class="text-lg font-semibold">"Shared services"</h2>
                <ul>{shared}</ul>
            </section>
        })}
        {just_made.and_then(|id| o.requests.iter().find(|r| r.id == id).cloned()).map(|r| view! {
            <p class="mt-6" role="status" data-testid="request-outcome" data-request-state=r.state.clone()>
                {format!(
                    "✓ Request {} ({}): {}{}",
                    r.id,
                    describe(&r.action),
                    r.state,
                    r.waits_for.clone().map(|w| format!(" — waits for a platform operator: {w}")).unwrap_or_default()
                )}
            </p>
        })}
        {my_role.map(|_| view! { <RequestForm team=team.clone() clusters=o.clusters.clone() state=form preview=preview.clone() /> })}
        <section class="mt-6">
            <h2 class="text-lg font-semibold">"Requests"</h2>
            {move || withdraw.value().get().and_then(Result::err).map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
            {move || view! {
                <DataTable
                    caption="The team's requests, newest first".to_string()
                    head=vec!["When", "What", "State", "By", "Decision", "Action"] quiet=vec!["Action"]
                    rows=request_rows(&shown_requests(), my_role.map(|_| withdraw), false)
                    empty="No request yet."
                    testid="team-requests"
                />
            }}
        </section>
        <section class="mt-8">
            <div class="flex flex-wrap items-center justify-between gap-3">
                <h2 class="text-lg font-semibold">"Timeline"</h2>
                <p class="text-sm">
                    "Export: "
                    <a class="underline" href=format!("{export}&format=csv")>"CSV"</a>
                    " · "
                    <a class="underline" href=format!("{export}&format=json")>"JSON"</a>
                </p>
            </div>
            <AuditTable list=timeline />
        </section>
    }
}

fn object_row(
    o: &PortalObjectView,
    live_drift: &DriftMap,
    team: &str,
    reapply: ServerAction<SubmitPortalRequest>,
) -> AnyView {
    let key = (o.cluster.clone(), o.namespace.clone(), o.service.clone());
    let drift = live_drift
        .get(&key)
        .cloned()
        .unwrap_or_else(|| o.drift.clone());
    let state = match (&o.error, o.exists, &o.service) {
        (Some(e), _, _) => e.clone(),
        (None, false, _) => "missing".into(),
        (None, true, None) => [
            o.mode.clone().unwrap_or_else(|| "not in the mesh".into()),
            o.shared
                .clone()
                .map(|s| format!("shared ({s})"))
                .unwrap_or_default(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", "),
        (None, true, Some(_)) => format!(
            "{}; {} ready endpoints; ports {}",
            o.shared
                .clone()
                .map(|s| format!("shared ({s})"))
                .unwrap_or_else(|| "not shared".into()),
            o.endpoints.unwrap_or(0),
            if o.ports.is_empty() {
                "none".into()
            } else {
                o.ports.join(" ")
            }
        ),
    };
    let fix = (!drift.is_empty()).then(|| {
        let action = PortalAction::reapply(team, &o.namespace, &o.cluster);
        view! {
            <button
                type="button"
                class=format!("mt-1 {BUTTON_SECONDARY}")
                data-testid="reapply"
                on:click=move |_| { reapply.dispatch(SubmitPortalRequest { action: action.clone() }); }
            >
                "Re-apply"
            </button>
        }
    });
    let drifted = !drift.is_empty();
    view! {
        <tr class=TR data-object=format!("{}/{}/{}", o.cluster, o.namespace, o.service.clone().unwrap_or_default()) data-drift=drifted.to_string()>
            <td class=TD_NOWRAP>{o.cluster.clone()}</td>
            <td class=TD>{o.namespace.clone()}</td>
            <td class=TD>{o.service.clone().unwrap_or_else(|| "—".into())}</td>
            <td class=format!("{TD} text-sm")>{state}</td>
            <td class=format!("{TD} text-sm")>{o.applied.join(", ")}</td>
            <td class=format!("{TD} text-sm")>
                {if drifted {
                    view! { <span class="text-amber-800 dark:text-amber-300">{format!("⚠ {}", drift.join("; "))}</span> }.into_any()
                } else {
                    view! { <span>"✓ in step"</span> }.into_any()
                }}
                {fix}
            </td>
        </tr>
    }
    .into_any()
}
