//! Asking for a change: what (enrol, leave, share, stop sharing), which namespace (and Service), in which of
//! the team's clusters; the plan first (objects per cluster with the server-side dry-run diff, the kubectl
//! commands, what the portal noticed, whether it runs at once or waits for an operator), then the request.
//! A plain form too: without JavaScript, "Preview" reloads the team page with the plan (a GET) and "Submit"
//! posts to `/portal/request`, which sends the browser back to the request or, refused, to its plan.

use std::collections::BTreeSet;

use leptos::prelude::*;

use super::super::plan_review::PlanView;
use super::super::setup::Copyable;
use crate::api::{PlanPortalRequest, SubmitPortalRequest};
use crate::components::{Alert, BUTTON, BUTTON_SECONDARY, ErrorBox, INPUT, field_error};
use crate::model::{AppError, MeshMode, PortalAction, PortalKind, PortalPlan, ShareScope};

/// What the form holds, kept by the page: the team's page is drawn again when a request settles, and what
/// was typed, the plan and the last outcome stay.
#[derive(Clone, Copy)]
pub struct FormState {
    kind: RwSignal<PortalKind>,
    namespace: RwSignal<String>,
    service: RwSignal<String>,
    /// None: every granted cluster (until one is unticked).
    chosen: RwSignal<Option<BTreeSet<String>>>,
    mode: RwSignal<MeshMode>,
    scope: RwSignal<ShareScope>,
    spread: RwSignal<bool>,
    plan: ServerAction<PlanPortalRequest>,
    submit: ServerAction<SubmitPortalRequest>,
}

impl FormState {
    /// An empty form, or one holding `draft` (what the plain form sent).
    pub fn new(draft: Option<PortalAction>) -> Self {
        let d = draft.as_ref();
        FormState {
            kind: RwSignal::new(d.map_or(PortalKind::Enrol, |d| d.kind)),
            namespace: RwSignal::new(d.map(|d| d.namespace.clone()).unwrap_or_default()),
            service: RwSignal::new(d.and_then(|d| d.service.clone()).unwrap_or_default()),
            chosen: RwSignal::new(d.map(|d| d.clusters.iter().cloned().collect())),
            mode: RwSignal::new(d.map(|d| d.mode).unwrap_or_default()),
            scope: RwSignal::new(d.map(|d| d.scope).unwrap_or_default()),
            spread: RwSignal::new(d.is_some_and(|d| d.spread)),
            plan: ServerAction::new(),
            submit: ServerAction::new(),
        }
    }

    /// Bumped when a request was made.
    pub fn submitted(&self) -> ServerAction<SubmitPortalRequest> {
        self.submit
    }
}

#[component]
pub fn RequestForm(
    team: String,
    /// The clusters the team is granted.
    clusters: Vec<String>,
    state: FormState,
    /// A plan to show at once: the plain form's preview (planned while the page was drawn).
    preview: Option<Result<PortalPlan, AppError>>,
) -> impl IntoView {
    let FormState {
        kind,
        namespace,
        service,
        chosen,
        mode,
        scope,
        spread,
        plan,
        submit,
    } = state;
    if chosen.get_untracked().is_none() {
        chosen.set(Some(clusters.iter().cloned().collect()));
    }
    let chosen_set = move || chosen.get().unwrap_or_default();
    let team_name = StoredValue::new(team);
    let action = move || PortalAction {
        team: team_name.get_value(),
        kind: kind.get(),
        namespace: namespace.get().trim().to_string(),
        service: Some(service.get().trim().to_string()).filter(|s| {
            !s.is_empty() && matches!(kind.get(), PortalKind::Share | PortalKind::Unshare)
        }),
        clusters: chosen_set().into_iter().collect(),
        mode: mode.get(),
        scope: scope.get(),
        spread: spread.get() && kind.get() == PortalKind::Share && !service.get().trim().is_empty(),
    };
    let previewed = RwSignal::new(preview);
    // A change of the request makes the plan shown stale.
    Effect::new(move |before: Option<PortalAction>| {
        let now = action();
        if before.is_some_and(|b| b != now) {
            plan.clear();
            previewed.set(None);
        }
        now
    });
    let preview_result = move || previewed.get();
    let plan_error = move || {
        plan.value()
            .get()
            .or_else(preview_result)
            .and_then(Result::err)
    };
    let submit_error = move || submit.value().get().and_then(Result::err);
    let any_error = move || submit_error().or_else(plan_error);
    let kinds = [
        (PortalKind::Enrol, "Enrol a namespace in the mesh"),
        (PortalKind::Leave, "Take a namespace out of the mesh"),
        (PortalKind::Share, "Share a service (or a whole namespace)"),
        (PortalKind::Unshare, "Stop sharing"),
    ];
    let kind_options = kinds
        .into_iter()
        .map(|(k, label)| view! { <option value=k.as_str() selected=move || kind.get() == k>{label}</option> })
        .collect_view();
    let boxes = clusters
        .iter()
        .map(|c| {
            let (c1, c2) = (c.clone(), c.clone());
            view! {
                <label class="mr-4 inline-flex items-center gap-1">
                    <input
                        type="checkbox"
                        name="cluster"
                        value=c.clone()
                        checked=chosen.with_untracked(|s| s.as_ref().is_some_and(|s| s.contains(c)))
                        prop:checked=move || chosen_set().contains(&c1)
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            chosen.update(|s| {
                                let s = s.get_or_insert_with(BTreeSet::new);
                                if on { s.insert(c2.clone()); } else { s.remove(&c2); }
                            });
                        }
                    />
                    {c.clone()}
                </label>
            }
        })
        .collect_view();
    let sharing = move || matches!(kind.get(), PortalKind::Share | PortalKind::Unshare);
    view! {
        <form
            method="post"
            action="/portal/request"
            class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900"
            data-testid="request-form"
            on:submit=move |ev| ev.prevent_default()
        >
            <input type="hidden" name="team" value=team_name.get_value() />
            <h2 class="text-lg font-semibold">"Ask for a change"</h2>
            <p class="mt-1 max-w-prose text-sm">
                "Preview the plan first: it shows what would change in each cluster. Within your team's rules and limits the change runs at once; otherwise a platform operator approves it."
            </p>
            <div class="mt-3 grid gap-3 md:grid-cols-3">
                <label class="block">
                    <span class="text-sm font-medium">"What"</span>
                    <select
                        class=INPUT
                        name="kind"
                        on:change=move |ev| {
                            if let Some(k) = PortalKind::parse(&event_target_value(&ev)) {
                                kind.set(k);
                            }
                        }
                    >
                        {kind_options}
                    </select>
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"Namespace"</span>
                    <input
                        class=INPUT
                        name="namespace"
                        autocomplete="off"
                        placeholder="e.g. payments-web"
                        value=namespace.get_untracked()
                        prop:value=move || namespace.get()
                        on:input=move |ev| namespace.set(event_target_value(&ev))
                    />
                    {field_error(any_error, "namespace")}
                </label>
                <label class="block" class:hidden=move || !sharing()>
                    <span class="text-sm font-medium">"Service (empty: every service of the namespace)"</span>
                    <input
                        class=INPUT
                        name="service"
                        autocomplete="off"
                        value=service.get_untracked()
                        prop:value=move || service.get()
                        on:input=move |ev| service.set(event_target_value(&ev))
                    />
                    {field_error(any_error, "service")}
                </label>
            </div>
            <fieldset class="mt-3">
                <legend class="text-sm font-medium">"Clusters"</legend>
                <div class="mt-1">{boxes}</div>
                {field_error(any_error, "clusters")}
            </fieldset>
            <fieldset class="mt-3" class:hidden=move || kind.get() != PortalKind::Enrol>
                <legend class="text-sm font-medium">"Data plane"</legend>
                {radio("mode", mode, MeshMode::Sidecar, "sidecar", "Sidecar")}
                {radio("mode", mode, MeshMode::Ambient, "ambient", "Ambient")}
            </fieldset>
            <fieldset class="mt-3" class:hidden=move || kind.get() != PortalKind::Share>
                <legend class="text-sm font-medium">"Scope"</legend>
                {radio("scope", scope, ShareScope::Global, "global", "global: also reachable as <service>.<namespace>.mesh.internal")}
                {radio("scope", scope, ShareScope::GlobalOnly, "global-only", "global-only: the usual name reaches every cluster")}
                <label class="mt-2 flex items-center gap-1">
                    <input type="checkbox" name="spread" value="on" checked=spread.get_untracked() prop:checked=move || spread.get() on:change=move |ev| spread.set(event_target_checked(&ev)) />
                    "Spread traffic across clusters (instead of preferring the local one)"
                </label>
            </fieldset>
            <div class="mt-4 flex flex-wrap gap-3">
                <button
                    type="submit"
                    formmethod="get"
                    formaction="/team"
                    name="preview"
                    value="1"
                    class=BUTTON_SECONDARY
                    data-testid="preview"
                    disabled=move || plan.pending().get()
                    on:click=move |ev| {
                        ev.prevent_default();
                        plan.dispatch(PlanPortalRequest { action: action() });
                    }
                >
                    {move || if plan.pending().get() { "Planning…" } else { "Preview the plan" }}
                </button>
                <button
                    type="submit"
                    class=BUTTON
                    data-testid="submit-request"
                    disabled=move || submit.pending().get()
                    on:click=move |ev| {
                        ev.prevent_default();
                        submit.dispatch(SubmitPortalRequest { action: action() });
                    }
                >
                    "Submit the request"
                </button>
            </div>
            {move || any_error().filter(|e| ["namespace", "service", "clusters"].iter().all(|f| e.for_field(f).is_none())).map(|e| view! { <div class="mt-3"><ErrorBox error=e /></div> })}
            {move || submit.value().get().and_then(Result::ok).map(|s| match (s.job_id, s.waits_for) {
                (Some(job), _) => view! {
                    <p class="mt-3" role="status" data-testid="request-outcome">
                        "✓ Request " {s.id.clone()} " is running. "
                        <a class="underline" href=format!("/activity/{job}")>"Follow its progress"</a>
                    </p>
                }.into_any(),
                (None, why) => view! {
                    <p class="mt-3" role="status" data-testid="request-outcome">
                        {format!("Request {} waits for a platform operator: {}", s.id, why.unwrap_or_default())}
                    </p>
                }.into_any(),
            })}
            {move || plan.value().get().or_else(preview_result).and_then(Result::ok).map(plan_view)}
        </form>
    }
}

/// A request's plan: whether it runs at once, the address other clusters use, what the portal noticed, and
/// the objects per cluster with their diff and commands.
fn plan_view(p: PortalPlan) -> impl IntoView {
    let warnings = p
        .warnings
        .iter()
        .map(|w| view! { <Alert message=w.clone() /> })
        .collect_view();
    view! {
        <div class="mt-4" data-testid="portal-plan">
            <p class="font-medium">
                {match &p.waits_for {
                    None => "Runs at once when submitted.".to_string(),
                    Some(w) => format!("Waits for a platform operator: {w}"),
                }}
            </p>
            {p.address.clone().map(|a| view! { <Copyable text=a label="Other clusters call it" /> })}
            {warnings}
            <PlanView list=p.clusters.clone() />
        </div>
    }
}

/// One choice of a radio group bound to `signal`.
/// (`sent` is what the plain form sends for it; `checked` is also an attribute, so the page drawn on the
/// server shows the choice.)
fn radio<T>(
    name: &'static str,
    signal: RwSignal<T>,
    value: T,
    sent: &'static str,
    label: &'static str,
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    view! {
        <label class="mr-4 inline-flex items-center gap-1">
            <input
                type="radio"
                name=name
                value=sent
                checked=signal.get_untracked() == value
                prop:checked=move || signal.get() == value
                on:change=move |_| signal.set(value)
            />
            {label}
        </label>
    }
}
