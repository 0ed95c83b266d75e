//! The team portal's pages: My team (a team's namespaces and shared services across clusters, its requests
//! and its timeline, and the form to ask for a change), Requests (the operators' queue, each request with
//! its plan, approve or reject), and Teams (members, grants, limits and rules).

mod form;
mod requests;
mod team;
mod teams;

pub use requests::RequestsPage;
pub use team::TeamPage;
pub use teams::TeamsPage;

use leptos::prelude::*;

use super::StateBadge;
use crate::api::WithdrawPortalRequest;
use crate::components::{BUTTON_SECONDARY, DataTable, TD, TD_NOWRAP, TR};
use crate::model::{
    AuditRecord, MeshMode, PortalAction, PortalKind, PortalRequestView, format_time,
};

/// A request in words.
pub fn describe(a: &PortalAction) -> String {
    let what = match (a.kind, &a.service) {
        (PortalKind::Enrol, _) => format!(
            "Enrol {} ({})",
            a.namespace,
            if a.mode == MeshMode::Ambient {
                "ambient"
            } else {
                "sidecar"
            }
        ),
        (PortalKind::Leave, _) => format!("Take {} out of the mesh", a.namespace),
        (PortalKind::Share, Some(s)) => format!(
            "Share {s}.{} ({}{})",
            a.namespace,
            a.scope.label_value(),
            if a.spread { ", traffic spread" } else { "" }
        ),
        (PortalKind::Share, None) => format!(
            "Share every service of {} ({})",
            a.namespace,
            a.scope.label_value()
        ),
        (PortalKind::Unshare, Some(s)) => format!("Stop sharing {s}.{}", a.namespace),
        (PortalKind::Unshare, None) => format!("Stop sharing {}", a.namespace),
        (PortalKind::Reapply, _) => format!("Re-apply the labels of {}", a.namespace),
    };
    format!("{what} in {}", a.clusters.join(", "))
}

/// A request's state as a badge: the job's words where it ran, the decision's otherwise.
#[component]
pub fn RequestState(state: String) -> impl IntoView {
    let badge = match state.as_str() {
        "applied" => "succeeded",
        "starting" => "running",
        "rejected" | "withdrawn" => "skipped",
        other => other,
    }
    .to_string();
    view! {
        <span class="inline-flex items-center gap-1" data-request-state=state.clone()>
            <StateBadge state=badge />
            {(!matches!(state.as_str(), "applied" | "running" | "failed" | "pending")).then(|| view! { <span class="text-sm">{state.clone()}</span> })}
        </span>
    }
}

/// Requests as a table; `withdraw` offered on waiting ones when given (the page decides who may).
pub fn request_rows(
    list: &[PortalRequestView],
    withdraw: Option<ServerAction<WithdrawPortalRequest>>,
    show_team: bool,
) -> Vec<AnyView> {
    list.iter()
        .map(|r| {
            let decision = match (&r.decided_by, &r.comment) {
                (Some(by), Some(c)) => format!("{by}: {c}"),
                (Some(by), None) => by.clone(),
                _ => r.waits_for.clone().map(|w| format!("waits: {w}")).unwrap_or_default(),
            };
            let job = r.job_id.clone().map(|j| {
                view! { <a class="text-indigo-700 underline dark:text-indigo-300" href=format!("/activity/{j}")>"progress"</a> }
            });
            let withdraw_form = withdraw.filter(|_| r.state == "pending").map(|action| {
                let id = r.id.clone();
                view! {
                    <ActionForm action=action>
                        <input type="hidden" name="id" value=id />
                        <button type="submit" class=BUTTON_SECONDARY>"Withdraw"</button>
                    </ActionForm>
                }
            });
            view! {
                <tr class=TR data-request=r.id.clone()>
                    <td class=format!("{TD_NOWRAP} text-sm")>{format_time(r.created_at)}</td>
                    {show_team.then(|| view! { <td class=TD>{r.action.team.clone()}</td> })}
                    <td class=TD>{describe(&r.action)}</td>
                    <td class=TD_NOWRAP><RequestState state=r.state.clone() /></td>
                    <td class=TD>{r.requested_by.clone()}</td>
                    <td class=format!("{TD} text-sm")>{decision}</td>
                    <td class=TD><div class="flex flex-wrap items-center gap-2">{job}{withdraw_form}</div></td>
                </tr>
            }
            .into_any()
        })
        .collect()
}

/// The audit timeline as a table.
#[component]
pub fn AuditTable(list: Vec<AuditRecord>) -> impl IntoView {
    let rows = list
        .into_iter()
        .rev()
        .map(|r| {
            view! {
                <tr class=TR data-audit=r.kind.clone()>
                    <td class=format!("{TD_NOWRAP} text-sm")>{format_time(r.at)}</td>
                    <td class=TD>{r.actor.clone()}</td>
                    <td class=TD>{r.kind.clone()}</td>
                    <td class=TD>{r.subject.clone()}</td>
                    <td class=format!("{TD} text-sm")>{r.detail.clone()}</td>
                    <td class=format!("{TD} text-sm")>{r.cluster.clone()}</td>
                    <td class=format!("{TD_NOWRAP} text-sm")>{r.source.clone()}</td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    view! {
        <DataTable
            caption="Audit timeline, newest first".to_string()
            head=vec!["When", "Who", "What", "Subject", "Detail", "Clusters", "From"]
            rows=rows
            empty="Nothing recorded yet."
            testid="audit"
        />
    }
}
