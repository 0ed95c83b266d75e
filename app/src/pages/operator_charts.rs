//! The Gloo Operator charts (Setup page): the chart new setups install, and — for admins — a chart archive
//! uploaded from the browser for air-gapped sites, chosen for new setups (upgrades then offer it) or deleted.

use leptos::prelude::*;

use super::allowed;
use crate::api::{
    DeleteOperatorChart, UploadOperatorChart, UseOperatorChart, list_operator_charts,
};
use crate::components::{Alert, BUTTON_SECONDARY};
use crate::components::{DataTable, TD, TD_NOWRAP, TR};
use crate::model::{AppError, OperatorCharts as OperatorChartList, Role, format_time};

/// The largest archive the browser sends (the server says the same).
const MAX_BYTES: f64 = 4.0 * 1024.0 * 1024.0;

/// Shows in `problem` what an action said last (`said`: None before it answered; then its error, or None
/// once it succeeded), so one message stands: a refused upload's error goes once a later action succeeds.
fn follow(
    problem: RwSignal<Option<String>>,
    said: impl Fn() -> Option<Option<String>> + Send + Sync + 'static,
) {
    Effect::new(move |_| {
        if let Some(e) = said() {
            problem.set(e);
        }
    });
}

/// The panel's actions and the list they change. Made with the page, outside its sign-in gate: a resource
/// made inside the gate's Suspense may be made more than once on the server (each pass over a view whose
/// data are ready builds it again) and once in the browser, so the two would number it differently.
#[derive(Clone, Copy)]
pub struct OperatorCharts {
    upload: ServerAction<UploadOperatorChart>,
    choose: ServerAction<UseOperatorChart>,
    delete: ServerAction<DeleteOperatorChart>,
    charts: crate::data::Data<Result<OperatorChartList, AppError>>,
}

impl OperatorCharts {
    pub fn with_page() -> Self {
        let upload = ServerAction::<UploadOperatorChart>::new();
        let choose = ServerAction::<UseOperatorChart>::new();
        let delete = ServerAction::<DeleteOperatorChart>::new();
        let charts = crate::data::data(
            move || {
                (
                    upload.version().get(),
                    choose.version().get(),
                    delete.version().get(),
                )
            },
            |_| list_operator_charts(),
        );
        Self {
            upload,
            choose,
            delete,
            charts,
        }
    }
}

#[component]
pub fn OperatorChartsPanel(panel: OperatorCharts) -> impl IntoView {
    let OperatorCharts {
        upload,
        choose,
        delete,
        charts,
    } = panel;
    let is_admin = allowed(Role::Admin)();
    // One message: what the last thing done said (a refused upload's error goes once a later upload, choice
    // or deletion succeeds), or what is wrong with the file picked before it was sent.
    let problem = RwSignal::new(None::<String>);
    let said = |r: Option<Result<(), AppError>>| r.map(|r| r.err().map(|e| e.to_string()));
    follow(problem, move || {
        said(upload.value().get().map(|r| r.map(|_| ())))
    });
    follow(problem, move || {
        said(choose.value().get().map(|r| r.map(|_| ())))
    });
    follow(problem, move || {
        said(delete.value().get().map(|r| r.map(|_| ())))
    });
    let on_file = move |ev: leptos::ev::Event| read_archive(ev, upload, problem);
    let errors = move || problem.get();
    view! {
        <details class="mt-6 border-t border-slate-200 pt-3 dark:border-slate-800" data-testid="operator-charts">
            <summary class="cursor-pointer font-semibold">"Gloo Operator chart"</summary>
            <Suspense fallback=|| view! { <p class="mt-2 text-sm">"Loading…"</p> }>
                {move || charts.get().map(|r| match r {
                    Ok(c) => view! { <ChartList charts=c is_admin=is_admin choose=choose delete=delete /> }.into_any(),
                    Err(e) => view! { <Alert message=e.to_string() /> }.into_any(),
                })}
            </Suspense>
            {is_admin.then(|| view! {
                <label class="mt-3 block">
                    <span class="text-sm font-medium">"Upload a chart archive (.tgz, at most 4 MiB)"</span>
                    <input type="file" accept=".tgz,.tar.gz,application/gzip" name="operator_chart" on:change=on_file class="mt-1 block text-sm" />
                </label>
                <p class="mt-1 text-sm text-slate-600 dark:text-slate-300">"For sites where helm cannot pull the chart: helm reads it here first (it must be the gloo-operator chart); the console keeps it in its database, so every replica has it. Choose it for new setups, then an upgrade moves running meshes to it."</p>
            })}
            {move || upload.pending().get().then(|| view! { <p class="mt-2 text-sm">"Uploading…"</p> })}
            {move || errors().map(|e| view! { <p role="alert" class="mt-2 text-sm text-red-800 dark:text-red-300">{format!("✕ {e}")}</p> })}
        </details>
    }
}

#[component]
fn ChartList(
    charts: OperatorChartList,
    is_admin: bool,
    choose: ServerAction<UseOperatorChart>,
    delete: ServerAction<DeleteOperatorChart>,
) -> impl IntoView {
    let uploaded_in_use = charts.uploaded.iter().any(|c| c.in_use);
    let rows = charts
        .uploaded
        .iter()
        .map(|c| {
            let (use_sha, del_sha) = (c.sha256.clone(), c.sha256.clone());
            let state = match (c.in_use, c.meshes.is_empty()) {
                (true, _) => "new setups install it".to_string(),
                (false, false) => format!("run by mesh {}", c.meshes.join(", ")),
                (false, true) => "—".to_string(),
            };
            let actions = is_admin.then(|| {
                view! {
                    {(!c.in_use).then(|| view! {
                        <button type="button" class=BUTTON_SECONDARY on:click=move |_| { choose.dispatch(UseOperatorChart { sha256: Some(use_sha.clone()) }); }>"Use for new setups"</button>
                    })}
                    {(!c.in_use && c.meshes.is_empty()).then(|| view! {
                        <button type="button" class=BUTTON_SECONDARY on:click=move |_| { delete.dispatch(DeleteOperatorChart { sha256: del_sha.clone() }); }>"Delete"</button>
                    })}
                }
            });
            view! {
                <tr class=TR data-chart=c.sha256.clone()>
                    <td class=TD_NOWRAP>{format!("{}-{}", c.name, c.version)}</td>
                    <td class=TD>{c.file_name.clone()}<br /><span class="font-mono text-xs">{format!("sha256 {}", c.sha256.chars().take(12).collect::<String>())}</span></td>
                    <td class=TD_NOWRAP>{format!("{} B", c.size)}</td>
                    <td class=TD>{format!("{}, {}", c.uploaded_by, format_time(c.uploaded_at))}</td>
                    <td class=TD>{state}</td>
                    <td class=TD><div class="flex flex-wrap gap-2">{actions}</div></td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    view! {
        <p class="mt-2 text-sm" data-testid="chart-in-use">{format!("New setups install {}.", charts.in_use)}</p>
        {uploaded_in_use.then(|| view! {
            <p class="mt-1 text-sm">
                {format!("The console was started with {}. ", charts.started_with)}
                {is_admin.then(|| view! {
                    <button type="button" class="underline" on:click=move |_| { choose.dispatch(UseOperatorChart { sha256: None }); }>"Use that one again"</button>
                })}
            </p>
        })}
        <DataTable
            caption="Uploaded operator charts".to_string()
            head=vec!["Chart", "File", "Size", "Uploaded", "Use", "Actions"]
            quiet=vec!["Actions"]
            rows=rows
            empty="No chart uploaded: setups install the chart the console was started with (--operator-chart)."
            testid="uploaded-charts"
        />
    }
}

/// Reads the chosen archive and uploads it (base64), refusing one over the limit before sending it.
fn read_archive(
    ev: leptos::ev::Event,
    upload: ServerAction<UploadOperatorChart>,
    problem: RwSignal<Option<String>>,
) {
    let Some(file) = super::chosen_file(&ev) else {
        return;
    };
    if file.size() > MAX_BYTES {
        problem.set(Some(format!(
            "{} is {} bytes; a chart archive is at most 4 MiB.",
            file.name(),
            file.size()
        )));
        return;
    }
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
            Ok(buf) => {
                let bytes = leptos::web_sys::js_sys::Uint8Array::new(&buf).to_vec();
                problem.set(None);
                upload.dispatch(UploadOperatorChart {
                    file_name: file.name(),
                    data: crate::model::plan_archive::base64(&bytes),
                });
            }
            Err(_) => problem.set(Some("The file could not be read.".into())),
        }
    });
}
