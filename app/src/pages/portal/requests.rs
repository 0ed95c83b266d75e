//! Requests, for platform operators: the queue of requests waiting for a decision (why each waits), each
//! reviewed with its plan, approved (its job starts) or rejected with a comment; and the latest decided.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::super::plan_review::PlanView;
use super::{describe, request_rows};
use crate::api::{DecidePortalRequest, list_portal_requests, review_portal_request};
use crate::components::{Alert, BUTTON, DataTable, ErrorBox, Gate, INPUT, field_error};
use crate::model::{AppError, PortalPlan, PortalRequestView, Role};

#[component]
pub fn RequestsPage() -> impl IntoView {
    let query = use_query_map();
    let decide = ServerAction::<DecidePortalRequest>::new();
    let queue = crate::data::data(
        move || decide.version().get(),
        |_| list_portal_requests(None, true),
    );
    let recent = crate::data::data(
        move || decide.version().get(),
        |_| list_portal_requests(None, false),
    );
    let review_id = move || query.read().get("review");
    // Made here, not in the panel: a resource created inside the Gate's Suspense is created at another
    // moment on the server than in the browser, and hydration then reads the wrong answer.
    let review = crate::data::data(
        move || (review_id(), decide.version().get()),
        |(id, _)| async move {
            match id {
                Some(id) => review_portal_request(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Gate title="Requests" needs=Role::Operator>
            <h1 class="text-2xl font-bold">"Requests"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "What teams asked for that their rules or limits do not let run at once. Review the plan, then approve (its job starts) or reject with a comment (nothing is written)."
            </p>
            {move || decide.value().get().map(|r| match r {
                Ok(v) => view! { <p class="mt-3" role="status" data-testid="decided">{format!("✓ Request {} is {}.", v.id, v.state)}</p> }.into_any(),
                Err(e) => view! { <div class="mt-3"><ErrorBox error=e /></div> }.into_any(),
            })}
            <section class="mt-4">
                <h2 class="text-lg font-semibold">"Waiting"</h2>
                <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match queue.await {
                            Ok(list) => {
                                let rows = list
                                    .iter()
                                    .map(|r| {
                                        let href = format!("/requests?review={}", r.id);
                                        view! {
                                            <tr class=crate::components::TR data-request=r.id.clone()>
                                                <td class=crate::components::TD>{r.action.team.clone()}</td>
                                                <td class=crate::components::TD>{describe(&r.action)}</td>
                                                <td class=format!("{} text-sm", crate::components::TD)>{r.waits_for.clone().unwrap_or_default()}</td>
                                                <td class=crate::components::TD>{r.requested_by.clone()}</td>
                                                <td class=crate::components::TD>
                                                    <a class="underline" href=href data-testid="review">"Review"</a>
                                                </td>
                                            </tr>
                                        }
                                        .into_any()
                                    })
                                    .collect::<Vec<_>>();
                                view! {
                                    <DataTable
                                        caption="Requests waiting for a decision".to_string()
                                        head=vec!["Team", "What", "Why it waits", "By", "Action"] quiet=vec!["Action"]
                                        rows=rows
                                        empty="Nothing waits for a decision."
                                        testid="queue"
                                    />
                                }
                                .into_any()
                            }
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
            {move || review_id().map(|id| view! { <Review id=id review=review decide=decide /> })}
            <section class="mt-8">
                <h2 class="text-lg font-semibold">"Latest requests"</h2>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        match recent.await {
                            Ok(list) => view! {
                                <DataTable
                                    caption="Every team's latest requests".to_string()
                                    head=vec!["When", "Team", "What", "State", "By", "Decision", "Action"] quiet=vec!["Action"]
                                    rows=request_rows(&list[..list.len().min(100)], None, true)
                                    empty="No request yet."
                                    testid="recent"
                                />
                            }
                            .into_any(),
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </Gate>
    }
}

/// The request under review (`?review=`) with its plan; None when none is chosen.
type ReviewResource = crate::data::Data<Result<Option<(PortalRequestView, PortalPlan)>, AppError>>;

/// One request with its plan and the decision form (a plain form: works without JavaScript).
#[component]
fn Review(
    id: String,
    review: ReviewResource,
    decide: ServerAction<DecidePortalRequest>,
) -> impl IntoView {
    let error = move || decide.value().get().and_then(Result::err);
    view! {
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" data-testid="review-panel">
            <Suspense fallback=|| view! { <p>"Planning…"</p> }>
                {move || {
                    let id = id.clone();
                    Suspend::new(async move {
                        match review.await {
                            Ok(None) => ().into_any(),
                            Ok(Some((req, plan))) => {
                                let warnings = plan.warnings.iter().map(|w| view! { <Alert message=w.clone() /> }).collect_view();
                                let pending = req.state == "pending";
                                view! {
                                    <h2 class="text-lg font-semibold">{format!("Request {} of team {}", req.id, req.action.team)}</h2>
                                    <p class="mt-1">{describe(&req.action)}</p>
                                    <p class="mt-1 text-sm">{format!("Asked by {}; {}", req.requested_by, req.waits_for.clone().map(|w| format!("waits: {w}")).unwrap_or_else(|| req.state.clone()))}</p>
                                    {plan.address.clone().map(|a| view! { <p class="mt-1 text-sm">{format!("Other clusters would call it {a}")}</p> })}
                                    {warnings}
                                    <PlanView list=plan.clusters.clone() />
                                    {pending.then(|| view! {
                                        <ActionForm action=decide attr:class="mt-4 grid gap-3">
                                            <input type="hidden" name="id" value=id.clone() />
                                            <label class="block">
                                                <span class="text-sm font-medium">"Comment (needed to reject)"</span>
                                                <textarea class=INPUT name="comment" rows="2" maxlength="2000"></textarea>
                                                {field_error(error, "comment")}
                                            </label>
                                            <fieldset class="flex flex-wrap gap-4">
                                                <legend class="text-sm font-medium">"Decision"</legend>
                                                <label class="inline-flex items-center gap-1">
                                                    <input type="radio" name="approve" value="true" required data-testid="approve" />
                                                    "Approve: run it now"
                                                </label>
                                                <label class="inline-flex items-center gap-1">
                                                    <input type="radio" name="approve" value="false" data-testid="reject" />
                                                    "Reject: write nothing"
                                                </label>
                                            </fieldset>
                                            <div>
                                                <button type="submit" class=BUTTON data-testid="decide" disabled=move || decide.pending().get()>"Decide"</button>
                                            </div>
                                        </ActionForm>
                                    })}
                                }
                                .into_any()
                            }
                            Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}
