use leptos::prelude::*;

use crate::api::{read_kubeconfig, register_clusters};
use crate::components::{Alert, BUTTON, BUTTON_SECONDARY, ErrorBox, Gate, HealthBadge, INPUT};
use crate::model::{AppError, ClusterForm, ContextChoice, RegisterOutcome, Role};

/// The largest kubeconfig accepted (the server enforces the same limit).
const MAX_KUBECONFIG: usize = 1024 * 1024;

/// One context offered for registration, with what the user typed for it.
#[derive(Clone)]
struct Row {
    choice: ContextChoice,
    selected: RwSignal<bool>,
    name: RwSignal<String>,
    network: RwSignal<String>,
    env: RwSignal<String>,
    region: RwSignal<String>,
    allow_insecure: RwSignal<bool>,
}

impl Row {
    fn new(choice: ContextChoice) -> Row {
        Row {
            selected: RwSignal::new(choice.refused.is_none()),
            name: RwSignal::new(choice.suggested_name.clone()),
            network: RwSignal::new(String::new()),
            env: RwSignal::new(String::new()),
            region: RwSignal::new(String::new()),
            allow_insecure: RwSignal::new(false),
            choice,
        }
    }

    fn form(&self, onboard: bool) -> ClusterForm {
        ClusterForm {
            context: self.choice.context.clone(),
            name: self.name.get_untracked(),
            network: self.network.get_untracked(),
            env: self.env.get_untracked(),
            region: self.region.get_untracked(),
            allow_insecure: self.allow_insecure.get_untracked(),
            onboard,
        }
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    view! {
        <Gate title="Register clusters" needs=Role::Operator>
            <RegisterFlow />
        </Gate>
    }
}

#[component]
fn RegisterFlow() -> impl IntoView {
    let kubeconfig = RwSignal::new(String::new());
    let local_error = RwSignal::new(None::<String>);
    let rows = RwSignal::new(Vec::<Row>::new());
    let onboard = RwSignal::new(false);
    let read = Action::new(move |text: &String| {
        let text = text.clone();
        async move { read_kubeconfig(text).await }
    });
    let register = Action::new(move |input: &(String, Vec<ClusterForm>)| {
        let (text, forms) = input.clone();
        async move { register_clusters(text, forms).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(choices)) = read.value().get() {
            rows.set(choices.into_iter().map(Row::new).collect());
        }
    });
    let on_read = move |_| {
        let text = kubeconfig.get_untracked();
        local_error.set(None);
        register.value().set(None);
        if text.trim().is_empty() {
            local_error.set(Some("Paste a kubeconfig or choose a file first.".into()));
        } else if text.len() > MAX_KUBECONFIG {
            local_error.set(Some(format!(
                "The kubeconfig is {} bytes; the limit is {MAX_KUBECONFIG} bytes (1 MiB). Paste only the contexts you need.",
                text.len()
            )));
        } else {
            read.dispatch(text);
        }
    };
    let on_file = move |ev: leptos::ev::Event| {
        super::read_chosen_file(ev, MAX_KUBECONFIG, "1 MiB", kubeconfig, local_error)
    };
    let on_register = move |_| {
        let forms: Vec<ClusterForm> = rows
            .get_untracked()
            .iter()
            .filter(|r| r.selected.get_untracked())
            .map(|r| r.form(onboard.get_untracked()))
            .collect();
        if forms.is_empty() {
            local_error.set(Some("Pick at least one context.".into()));
            return;
        }
        local_error.set(None);
        register.dispatch((kubeconfig.get_untracked(), forms));
    };
    let selected_count = move || rows.get().iter().filter(|r| r.selected.get()).count();
    view! {
        <h1 class="text-2xl font-bold">"Register clusters"</h1>
        <p class="mt-2 max-w-prose">
            "Paste a kubeconfig or choose a file, pick the contexts to register, and name them. Credentials are stored encrypted on the server and never shown again. Kubeconfigs that run programs (exec, auth-provider) or read files on the server are refused: use an inline token or client certificate, for example a service account's (kubectl create token)."
        </p>
        <section class="mt-4 space-y-3">
            <label class="block">
                <span class="text-sm font-medium">"Kubeconfig"</span>
                <textarea
                    class=format!("{INPUT} h-48 font-mono text-xs")
                    name="kubeconfig"
                    spellcheck="false"
                    bind:value=kubeconfig
                ></textarea>
            </label>
            <div class="flex flex-wrap items-center gap-3">
                <label class="text-sm">
                    <span class="sr-only">"Kubeconfig file"</span>
                    <input type="file" on:change=on_file class="text-sm" />
                </label>
                <button type="button" class=BUTTON_SECONDARY on:click=on_read disabled=move || read.pending().get()>
                    {move || if read.pending().get() { "Reading…" } else { "Read contexts" }}
                </button>
            </div>
            {move || local_error.get().map(|m| view! { <Alert message=m /> })}
            {move || read.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
        </section>
        <Show when=move || !rows.get().is_empty()>
            <section class="mt-6">
                <h2 class="text-lg font-semibold">"Contexts"</h2>
                <div class="mt-2 space-y-3">
                    <For each=move || rows.get() key=|r| r.choice.context.clone() let:row>
                        <ContextRow row=row />
                    </For>
                </div>
                <label class="mt-4 flex max-w-prose items-start gap-2 rounded border border-slate-200 p-3 text-sm dark:border-slate-800">
                    <input type="checkbox" name="onboard" bind:checked=onboard data-testid="onboard" />
                    <span>
                        <span class="font-medium">"Onboard with least privilege. "</span>
                        "These credentials (cluster-admin) are used once: Meshdeck creates its own ServiceAccount (meshdeck-access/meshdeck) with only the verbs its flows need, keeps short-lived tokens of it (renewed before they expire), and forgets the credentials pasted here. Installing or upgrading the Gloo Operator then needs an administrator once (its chart creates a ClusterRoleBinding)."
                    </span>
                </label>
                <button type="button" class=format!("{BUTTON} mt-4") on:click=on_register disabled=move || register.pending().get() || selected_count() == 0>
                    {move || {
                        if register.pending().get() {
                            "Registering and testing…".to_string()
                        } else {
                            format!("Register {} cluster(s)", selected_count())
                        }
                    }}
                </button>
            </section>
        </Show>
        {move || {
            register
                .value()
                .get()
                .map(|r| match r {
                    Ok(outcomes) => view! { <Outcomes outcomes=outcomes /> }.into_any(),
                    Err(e) => view! { <div class="mt-4"><ErrorBox error=e /></div> }.into_any(),
                })
        }}
    }
}

#[component]
fn ContextRow(row: Row) -> impl IntoView {
    let id = crate::model::suggest_cluster_name(&row.choice.context);
    let refused = row.choice.refused.clone();
    let insecure = row.choice.insecure;
    let disabled = refused.is_some();
    view! {
        <fieldset
            class="rounded border border-slate-200 bg-white p-3 dark:border-slate-800 dark:bg-slate-900"
            data-context=row.choice.context.clone()
        >
            <legend class="px-1">
                <label class="inline-flex items-center gap-2 font-medium">
                    <input type="checkbox" bind:checked=row.selected disabled=disabled />
                    {format!("context {}", row.choice.context)}
                </label>
                <span class="ml-2 text-sm text-slate-600 dark:text-slate-400">
                    {row.choice.server.clone().unwrap_or_default()}
                </span>
            </legend>
            {refused.map(|r| view! { <p role="alert" class="text-sm text-red-800 dark:text-red-300">{format!("✕ {r}")}</p> })}
            <div class="grid gap-3 md:grid-cols-4">
                <label class="block">
                    <span class="text-sm font-medium">"Cluster name"</span>
                    <input class=INPUT id=format!("name-{id}") bind:value=row.name disabled=disabled />
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"Network (default: the name)"</span>
                    <input class=INPUT bind:value=row.network disabled=disabled />
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"env label"</span>
                    <input class=INPUT bind:value=row.env disabled=disabled placeholder="prod" />
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"region label"</span>
                    <input class=INPUT bind:value=row.region disabled=disabled placeholder="us-east-1" />
                </label>
            </div>
            <Show when=move || insecure>
                <label class="mt-2 flex items-start gap-2 rounded bg-amber-50 p-2 text-sm dark:bg-amber-950">
                    <input type="checkbox" bind:checked=row.allow_insecure />
                    <span>
                        "⚠ This context turns TLS verification off. Tick to register it anyway: anyone between Meshdeck and this cluster could read and change what Meshdeck sends, including its credentials. Better: add the cluster's CA (certificate-authority-data)."
                    </span>
                </label>
            </Show>
        </fieldset>
    }
}

#[component]
fn Outcomes(outcomes: Vec<RegisterOutcome>) -> impl IntoView {
    let items = outcomes
        .into_iter()
        .map(|o| match o.result {
            Ok(c) => {
                let href = format!("/clusters/{}", c.name);
                view! {
                    <li class="flex flex-wrap items-center gap-2" data-outcome=o.name.clone()>
                        <a class="font-medium text-indigo-700 underline dark:text-indigo-300" href=href>
                            {o.name.clone()}
                        </a>
                        <HealthBadge health=c.health() />
                        <span class="text-sm">
                            {c.connectivity.as_ref().and_then(|x| x.server_version.clone()).unwrap_or_default()}
                        </span>
                    </li>
                }
                    .into_any()
            }
            Err(e) => view! {
                <li data-outcome=o.name.clone()>
                    <span class="font-medium">{format!("{} (context {})", o.name, o.context)}</span>
                    <Alert message=describe(&e) />
                </li>
            }
                .into_any(),
        })
        .collect_view();
    view! {
        <section class="mt-6">
            <h2 class="text-lg font-semibold">"Result"</h2>
            <ul class="mt-2 space-y-2">{items}</ul>
            <p class="mt-3">
                <a class="text-indigo-700 underline dark:text-indigo-300" href="/clusters">
                    "Go to the clusters"
                </a>
            </p>
        </section>
    }
}

fn describe(e: &AppError) -> String {
    match e {
        AppError::Invalid { field, message } if field == "name" => {
            format!("cluster name: {message}")
        }
        other => other.to_string(),
    }
}
