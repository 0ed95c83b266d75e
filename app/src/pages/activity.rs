//! Activity: every job with who started it, when, on which clusters and how it ended; and one job's
//! progress — a row per cluster with its steps, the failing step's message and a Retry for that cluster,
//! and the job's log. The page is rendered on the server (complete without JavaScript); once hydrated it
//! follows the job live over Server-Sent Events (`/live/jobs/<id>`), so leaving and coming back, or another
//! user opening it, shows the same job as it runs.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use super::allowed;
use crate::api::{RetryJob, get_job, list_jobs};
use crate::components::{BUTTON_SECONDARY, DataTable, ErrorBox, Gate, TD, TD_NOWRAP, TR};
use crate::model::{JobDetail, JobEvent, JobStep, JobSummary, Role, format_time};

/// A state as an icon and a word (never colour alone).
#[component]
pub fn StateBadge(state: String) -> impl IntoView {
    let (icon, word, class) = match state.as_str() {
        "done" | "succeeded" => (
            "✓",
            if state == "done" { "done" } else { "succeeded" },
            "bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100",
        ),
        "running" => (
            "●",
            "running",
            "bg-sky-100 text-sky-900 dark:bg-sky-900 dark:text-sky-100",
        ),
        "failed" => (
            "✕",
            "failed",
            "bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100",
        ),
        "skipped" => (
            "–",
            "skipped",
            "bg-slate-200 text-slate-800 dark:bg-slate-700 dark:text-slate-100",
        ),
        _ => (
            "○",
            "pending",
            "bg-slate-100 text-slate-700 dark:bg-slate-800 dark:text-slate-200",
        ),
    };
    view! {
        <span
            class=format!("inline-flex items-center gap-1 rounded px-2 py-0.5 text-sm font-medium {class}")
            data-state=state.clone()
        >
            <span aria-hidden="true">{icon}</span>
            {word}
        </span>
    }
}

fn duration(started: Option<i64>, finished: Option<i64>) -> String {
    match (started, finished) {
        (Some(s), Some(f)) => {
            let d = (f - s).max(0);
            if d >= 60 {
                format!("{} min {} s", d / 60, d % 60)
            } else {
                format!("{d} s")
            }
        }
        (Some(s), None) => format!("since {}", format_time(s)),
        _ => "—".into(),
    }
}

#[component]
pub fn ActivityPage() -> impl IntoView {
    let jobs = crate::data::data(|| (), |_| list_jobs());
    view! {
        <Gate title="Activity">
            <h1 class="text-2xl font-bold">"Activity"</h1>
            <p class="mt-1 max-w-prose text-sm">"Every job the console ran: who started it, when, on which clusters, and how it ended."</p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match jobs.await {
                        Ok(list) if list.is_empty() => {
                            view! { <p class="mt-6">"No jobs yet. Jobs appear here when a setup is started."</p> }
                                .into_any()
                        }
                        Ok(list) => view! { <JobTable list=list /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

#[component]
fn JobTable(list: Vec<JobSummary>) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|j| {
            let href = format!("/activity/{}", j.id);
            view! {
                <tr class=TR data-job=j.id.clone()>
                    <td class=format!("{TD_NOWRAP} font-mono text-sm")>
                        <a class="text-indigo-700 underline dark:text-indigo-300" href=href>
                            {j.id.clone()}
                        </a>
                    </td>
                    <td class=TD>{j.kind.clone()}</td>
                    <td class=TD_NOWRAP>
                        <StateBadge state=j.state.clone() />
                    </td>
                    <td class=TD>{j.clusters.join(", ")}</td>
                    <td class=TD>{format!("{}/{} steps", j.steps_done, j.steps_total)}</td>
                    <td class=TD>{j.started_by.clone()}</td>
                    <td class=format!("{TD_NOWRAP} text-sm")>{format_time(j.created_at)}</td>
                    <td class=format!("{TD_NOWRAP} text-sm")>{duration(Some(j.created_at), j.finished_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    view! {
        <DataTable
            caption="Jobs".to_string()
            head=vec!["Job", "What", "State", "Clusters", "Progress", "Started by", "Started", "Took"]
            rows=rows
            empty="No job has run yet."
        />
    }
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let job = crate::data::data(
        move || params.read().get("id").unwrap_or_default(),
        |id| get_job(id, 0),
    );
    view! {
        <Gate title="Job">
            <p class="text-sm">
                <a class="text-indigo-700 underline dark:text-indigo-300" href="/activity">
                    "← Activity"
                </a>
            </p>
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match job.await {
                        Ok(d) => view! { <JobView initial=d /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

/// Applies a live message to what is shown: the job and its steps are replaced, new events appended.
#[cfg_attr(
    not(feature = "hydrate"),
    allow(dead_code, reason = "the browser build follows jobs live")
)]
fn merge(current: &mut JobDetail, update: JobDetail) {
    let seen = current.events.last().map_or(0, |e| e.id);
    current.job = update.job;
    current.steps = update.steps;
    current
        .events
        .extend(update.events.into_iter().filter(|e| e.id > seen));
}

/// The clusters of a job in the order of their steps; the steps across clusters (`*`) last.
fn groups(steps: &[JobStep]) -> Vec<(String, Vec<JobStep>)> {
    let mut out: Vec<(String, Vec<JobStep>)> = vec![];
    for s in steps {
        match out.iter_mut().find(|(c, _)| *c == s.cluster) {
            Some((_, v)) => v.push(s.clone()),
            None => out.push((s.cluster.clone(), vec![s.clone()])),
        }
    }
    out.sort_by_key(|(c, _)| c == "*");
    out
}

fn group_state(steps: &[JobStep]) -> &'static str {
    if steps.iter().any(|s| s.state == "failed") {
        "failed"
    } else if steps.iter().any(|s| s.state == "running") {
        "running"
    } else if steps.iter().all(|s| s.state == "done") {
        "done"
    } else {
        "pending"
    }
}

/// Events shown at most (the newest).
const EVENTS_SHOWN: usize = 300;

#[component]
fn JobView(initial: JobDetail) -> impl IntoView {
    let detail = RwSignal::new(initial);
    let live = RwSignal::new(false);
    let retry = ServerAction::<RetryJob>::new();
    let can_operate = allowed(Role::Operator)();
    let id = detail.with_untracked(|d| d.job.id.clone());
    #[cfg(feature = "hydrate")]
    {
        let id = id.clone();
        Effect::new(move |_| follow(&id, detail, live));
    }
    let header = move || {
        let j = detail.with(|d| d.job.clone());
        view! {
            <div class="mt-2 flex flex-wrap items-center gap-3">
                <h1 class="text-2xl font-bold">{format!("Job {}", j.id)}</h1>
                <span data-testid="job-state"><StateBadge state=j.state.clone() /></span>
                <span class="text-sm" data-testid="live">
                    {move || if live.get() { "● following live" } else { "updates when you reload this page" }}
                </span>
            </div>
            <p class="mt-1 text-sm">
                {format!(
                    "{} of {} — started by {} at {}; {} of {} steps done; {}",
                    j.kind,
                    j.clusters.join(", "),
                    j.started_by,
                    format_time(j.created_at),
                    j.steps_done,
                    j.steps_total,
                    match j.finished_at {
                        Some(_) => format!("took {}", duration(Some(j.created_at), j.finished_at)),
                        None => "still running".into(),
                    },
                )}
            </p>
        }
    };
    let clusters = move || {
        let (running, steps) = detail.with(|d| (d.job.state == "running", d.steps.clone()));
        let job_id = id.clone();
        groups(&steps)
            .into_iter()
            .map(|(cluster, steps)| {
                let state = group_state(&steps);
                let title = if cluster == "*" { "Across clusters".to_string() } else { format!("Cluster {cluster}") };
                let title_caption = title.clone();
                let retry_form = (can_operate && !running && state == "failed").then(|| {
                    let job_id = job_id.clone();
                    let target = (cluster != "*").then(|| cluster.clone());
                    let label = if target.is_some() { format!("Retry {cluster}") } else { "Retry".into() };
                    view! {
                        <ActionForm action=retry>
                            <input type="hidden" name="id" value=job_id />
                            {target.map(|c| view! { <input type="hidden" name="cluster" value=c /> })}
                            <button type="submit" class=BUTTON_SECONDARY disabled=move || retry.pending().get()>
                                {label}
                            </button>
                        </ActionForm>
                    }
                });
                let rows = steps
                    .into_iter()
                    .map(|s| {
                        let key = format!("{}/{}", s.cluster, s.step);
                        let failed = s.state == "failed";
                        view! {
                            <tr class=format!("{TR} align-top") data-step=key>
                                <td class="whitespace-nowrap px-3 py-2"><StateBadge state=s.state.clone() /></td>
                                <td class="px-3 py-2">{s.title.clone()}</td>
                                <td class="whitespace-nowrap px-3 py-2 text-sm">{duration(s.started_at, s.finished_at)}</td>
                                <td class=if failed { "px-3 py-2 text-sm text-red-800 dark:text-red-300" } else { "px-3 py-2 text-sm" }>
                                    {s.message.clone().unwrap_or_default()}
                                    {(s.changed == Some(false)).then_some(" (nothing to change)")}
                                </td>
                            </tr>
                        }
                        .into_any()
                    })
                    .collect();
                view! {
                    <section class="mt-6" data-cluster=cluster.clone()>
                        <div class="flex flex-wrap items-center justify-between gap-3">
                            <h2 class="flex items-center gap-2 text-lg font-semibold">
                                {title}
                                <StateBadge state=state.to_string() />
                            </h2>
                            {retry_form}
                        </div>
                        <DataTable
                            caption=format!("Steps: {title_caption}")
                            head=vec!["State", "Step", "Took", "Result"]
                            rows=rows
                            empty="No step."
                        />
                    </section>
                }
            })
            .collect_view()
    };
    let log = move || {
        detail.with(|d| {
            let skip = d.events.len().saturating_sub(EVENTS_SHOWN);
            d.events[skip..].iter().map(event_line).collect_view()
        })
    };
    view! {
        {header}
        {move || retry.value().get().and_then(Result::err).map(|e| view! { <div class="mt-3"><ErrorBox error=e /></div> })}
        {clusters}
        <section class="mt-6">
            <h2 class="text-lg font-semibold">"Log"</h2>
            <ol class="mt-2 max-h-96 overflow-y-auto rounded border border-slate-200 bg-white p-2 font-mono text-xs dark:border-slate-800 dark:bg-slate-900" data-testid="log">
                {log}
            </ol>
        </section>
    }
}

fn event_line(e: &JobEvent) -> impl IntoView + use<> {
    let icon = match e.level.as_str() {
        "error" => "✕",
        "warn" => "!",
        _ => "·",
    };
    let place = match (&e.cluster, &e.step) {
        (Some(c), Some(s)) => format!("{c}/{s}"),
        (Some(c), None) => c.clone(),
        _ => "job".into(),
    };
    view! {
        <li class=if e.level == "error" { "text-red-800 dark:text-red-300" } else { "" }>
            {format!("{} {icon} [{place}] {}", format_time(e.at), e.message)}
        </li>
    }
}

/// Follows the job over Server-Sent Events while the page shows it (browser only).
#[cfg(feature = "hydrate")]
fn follow(id: &str, detail: RwSignal<JobDetail>, live: RwSignal<bool>) {
    let on_job = move |text: String| {
        if let Ok(update) = crate::data::parse::<JobDetail>(&text) {
            detail.update(|d| merge(d, update));
        }
    };
    super::live::listen(
        &format!("/live/jobs/{id}"),
        vec![("job", Box::new(on_job))],
        live,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cluster: &str, step: &str, state: &str) -> JobStep {
        JobStep {
            cluster: cluster.into(),
            step: step.into(),
            title: step.into(),
            state: state.into(),
            changed: None,
            message: None,
            started_at: None,
            finished_at: None,
        }
    }

    fn event(id: i64) -> JobEvent {
        JobEvent {
            id,
            at: 0,
            cluster: None,
            step: None,
            level: "info".into(),
            message: format!("e{id}"),
        }
    }

    #[test]
    fn live_messages_replace_steps_and_append_only_new_events() {
        let job = JobSummary {
            id: "j".into(),
            kind: "setup".into(),
            state: "running".into(),
            started_by: "a".into(),
            created_at: 0,
            finished_at: None,
            clusters: vec!["c1".into()],
            steps_done: 0,
            steps_total: 1,
        };
        let mut shown = JobDetail {
            job: job.clone(),
            steps: vec![step("c1", "operator", "running")],
            events: vec![event(1), event(2)],
        };
        let mut done = job;
        done.state = "succeeded".into();
        merge(
            &mut shown,
            JobDetail {
                job: done,
                steps: vec![step("c1", "operator", "done")],
                events: vec![event(2), event(3)],
            },
        );
        assert_eq!(shown.job.state, "succeeded");
        assert_eq!(shown.steps[0].state, "done");
        assert_eq!(
            shown.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn clusters_are_grouped_in_order_with_the_fleet_last_and_summarised() {
        let steps = vec![
            step("c2", "operator", "done"),
            step("*", "verify", "pending"),
            step("c1", "operator", "failed"),
            step("c2", "link:c1", "running"),
        ];
        let g = groups(&steps);
        let names: Vec<&str> = g.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["c2", "c1", "*"]);
        assert_eq!(group_state(&g[0].1), "running");
        assert_eq!(group_state(&g[1].1), "failed");
        assert_eq!(group_state(&g[2].1), "pending");
    }
}
