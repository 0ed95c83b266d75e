//! The cluster page's "Access" section: how the console reaches the cluster (the credentials given, or its
//! own least-privilege account), the token's life, onboarding (with a plan first) and revoking.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::allowed;
use super::plan_review::PlanView;
use crate::api::{
    RenewClusterToken, onboard_cluster, plan_onboarding, plan_revoke, revoke_cluster_access,
};
use crate::components::{BUTTON, BUTTON_DANGER, BUTTON_SECONDARY, ErrorBox, INPUT};
use crate::model::{ClusterName, ClusterSummary, Role, format_time};

/// The inputs of the onboarding form: an optional admin kubeconfig and its context, and the namespaces
/// control planes go to besides istio-system (comma or space separated).
#[derive(Clone, Copy)]
struct AdminCredentials {
    kubeconfig: RwSignal<String>,
    context: RwSignal<String>,
    control_planes: RwSignal<String>,
}

impl AdminCredentials {
    fn read(&self) -> (Option<String>, Option<String>, Option<Vec<String>>) {
        let k = self.kubeconfig.get_untracked();
        let c = self.context.get_untracked();
        let planes = self
            .control_planes
            .get_untracked()
            .split([',', ' ', '\n'])
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().to_string())
            .collect();
        (
            (!k.trim().is_empty()).then_some(k),
            (!c.trim().is_empty()).then_some(c.trim().to_string()),
            Some(planes),
        )
    }
}

#[component]
pub fn AccessSection(c: ClusterSummary, changed: RwSignal<u32>) -> impl IntoView {
    let can_operate = allowed(Role::Operator)();
    let can_revoke = allowed(Role::Admin)();
    let name = c.name.clone();
    let needs_admin = c
        .connectivity
        .as_ref()
        .map(|x| x.needs_admin.clone())
        .unwrap_or_default();
    let as_user = c
        .connectivity
        .as_ref()
        .map(|x| x.as_user.clone())
        .unwrap_or_default();
    let renew = ServerAction::<RenewClusterToken>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = renew.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let mode = match &c.access {
        None => view! {
            <p data-testid="access-mode">
                "With the credentials given at registration (stored encrypted). Onboard the cluster to hold only a least-privilege account of the console's own instead."
            </p>
        }
        .into_any(),
        Some(a) => {
            view! {
                <p data-testid="access-mode">
                    {format!("Least privilege: the console's own ServiceAccount {} — the admin credentials used to onboard were not kept.", a.account)}
                </p>
                {a.per_user.clone().map(|p| view! {
                    <p class="mt-1 text-sm" data-testid="per-user">
                        {match p.groups {
                            Some(groups) if groups.is_empty() => "Per-user rights: it acts as the signed-in user, with none of their groups (no group was mapped when it was onboarded).".to_string(),
                            Some(groups) => format!("Per-user rights: it acts as the signed-in user, with those of their groups mapped when it was onboarded: {}. Onboard again after mapping another group.", groups.join(", ")),
                            None => "Per-user rights: it acts as the signed-in user, with their mapped groups (the chart's role).".to_string(),
                        }}
                    </p>
                })}
                <dl class="mt-2 grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
                    <dt class="font-medium">"Onboarded"</dt>
                    <dd>{format!("{} by {}", format_time(a.onboarded_at), a.onboarded_by)}</dd>
                    <dt class="font-medium">"Control planes"</dt>
                    <dd data-testid="control-planes">{std::iter::once("istio-system".to_string()).chain(a.control_planes.iter().cloned()).collect::<Vec<_>>().join(", ")}</dd>
                    <dt class="font-medium">"Token"</dt>
                    <dd data-testid="token-state" data-issued=a.token_issued_at.to_string()>
                        {format!("issued {}, expires {}; renewed on its own after two thirds of its life", format_time(a.token_issued_at), format_time(a.token_expires_at))}
                    </dd>
                </dl>
                {a.problem.clone().map(|p| view! {
                    <p role="alert" class="mt-2 text-red-800 dark:text-red-300" data-testid="access-problem">
                        {format!("✕ The token could not be renewed: {p}. Onboard the cluster again with admin credentials.")}
                    </p>
                })}
            }
            .into_any()
        }
    };
    let onboarded = c.access.is_some();
    let planes = c
        .access
        .as_ref()
        .map(|a| a.control_planes.join(", "))
        .unwrap_or_default();
    let name_renew = name.to_string();
    view! {
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" data-testid="access">
            <div class="flex flex-wrap items-center justify-between gap-2">
                <h2 class="text-lg font-semibold">"Access"</h2>
                {(can_operate && onboarded).then(|| view! {
                    <ActionForm action=renew>
                        <input type="hidden" name="name" value=name_renew />
                        <button type="submit" class=BUTTON_SECONDARY disabled=move || renew.pending().get()>
                            {move || if renew.pending().get() { "Renewing…" } else { "Renew the token now" }}
                        </button>
                    </ActionForm>
                })}
            </div>
            <div class="mt-2">{mode}</div>
            {move || renew.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
            {(!needs_admin.is_empty()).then(|| view! {
                <div class="mt-3 text-sm" data-testid="needs-admin">
                    <p class="font-medium">"Only an administrator may (the console's account may not, by design):"</p>
                    <ul class="ml-5 list-disc">
                        {needs_admin.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                    </ul>
                    <p class="mt-1">"When the Gloo Operator is not installed as a setup plans it, its step stops and shows the helm command for an administrator to run once."</p>
                </div>
            })}
            {(!as_user.is_empty()).then(|| view! {
                <div class="mt-3 text-sm" data-testid="as-user">
                    <p class="font-medium">"Per-user rights: the console's own account only reads, renews its token and acts as the signed-in user and the groups the mappings name. These it does as that user, so the cluster's RBAC must grant them to the people who set up and change the mesh:"</p>
                    <ul class="ml-5 list-disc">
                        {as_user.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                    </ul>
                    <p class="mt-1">"A local (break-glass) account acts as the console itself here: it can look, not change."</p>
                </div>
            })}
            {can_operate.then(|| view! { <Onboard name=name.clone() onboarded=onboarded planes=planes.clone() changed=changed /> })}
            {(can_revoke && onboarded).then(|| view! { <Revoke name=name.clone() /> })}
        </section>
    }
}

#[component]
fn Onboard(
    name: ClusterName,
    onboarded: bool,
    planes: String,
    changed: RwSignal<u32>,
) -> impl IntoView {
    let creds = AdminCredentials {
        kubeconfig: RwSignal::new(String::new()),
        context: RwSignal::new(String::new()),
        control_planes: RwSignal::new(planes),
    };
    let n1 = name.clone();
    let preview = Action::new(move |_: &()| {
        let (kubeconfig, context, planes) = creds.read();
        let name = n1.clone();
        async move { plan_onboarding(name, kubeconfig, context, None, planes).await }
    });
    let n2 = name.clone();
    let onboard = Action::new(move |_: &()| {
        let (kubeconfig, context, planes) = creds.read();
        let name = n2.clone();
        async move { onboard_cluster(name, kubeconfig, context, None, planes).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = onboard.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let hint = if onboarded {
        "Onboard again (to restore the console's account, roles or token): paste admin credentials for this cluster. They apply the plan below once and are not kept."
    } else {
        "Paste admin credentials for this cluster, or leave the field empty to use those it was registered with (they must be an administrator's). The console applies the plan below once, keeps a one-hour token of its own account, and forgets those credentials."
    };
    view! {
        <details class="mt-4" data-testid="onboard">
            <summary class="cursor-pointer font-medium">
                {if onboarded { "Onboard again" } else { "Onboard with least privilege" }}
            </summary>
            <p class="mt-2 max-w-prose text-sm">{hint}</p>
            <div class="mt-2 grid gap-3 md:grid-cols-[1fr_16rem]">
                <label class="block">
                    <span class="text-sm font-medium">"Admin kubeconfig"</span>
                    <textarea class=format!("{INPUT} h-28 font-mono text-xs") spellcheck="false" name="kubeconfig" bind:value=creds.kubeconfig></textarea>
                </label>
                <label class="block">
                    <span class="text-sm font-medium">"Context"</span>
                    <input class=INPUT name="context" bind:value=creds.context autocomplete="off" />
                </label>
            </div>
            <label class="mt-2 block max-w-xl">
                <span class="text-sm font-medium">"Other control-plane namespaces"</span>
                <input class=INPUT name="control_planes" bind:value=creds.control_planes autocomplete="off" placeholder="e.g. istio-prod" />
                <span class="mt-1 block text-xs text-slate-600 dark:text-slate-300">"Besides istio-system: the install namespaces meshes here use (comma separated). The account gets istio-system's rights there too (cacerts, istiod's settings and restarts); one left out loses them."</span>
            </label>
            <div class="mt-2 flex flex-wrap gap-3">
                <button type="button" class=BUTTON_SECONDARY on:click=move |_| { preview.dispatch(()); } disabled=move || preview.pending().get()>
                    {move || if preview.pending().get() { "Planning…" } else { "Preview" }}
                </button>
                <button type="button" class=BUTTON on:click=move |_| { onboard.dispatch(()); } disabled=move || onboard.pending().get()>
                    {move || if onboard.pending().get() { "Onboarding…" } else { "Onboard" }}
                </button>
            </div>
            {move || preview.value().get().map(|r| match r {
                Ok(plan) => view! { <PlanView list=vec![plan] /> }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
            {move || onboard.value().get().map(|r| match r {
                Ok(_) => view! { <p class="mt-2" role="status" data-testid="onboarded">"✓ Onboarded: the console now holds only its own account's token."</p> }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
        </details>
    }
}

#[component]
fn Revoke(name: ClusterName) -> impl IntoView {
    let n1 = name.clone();
    let plan = Action::new(move |_: &()| {
        let name = n1.clone();
        async move { plan_revoke(name).await }
    });
    let confirm = RwSignal::new(String::new());
    let n2 = name.clone();
    let revoke = Action::new(move |_: &()| {
        let name = n2.clone();
        let typed = confirm.get_untracked();
        async move { revoke_cluster_access(name, typed).await }
    });
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            navigate("/clusters", Default::default());
        }
    });
    let label = format!("Type {name} to confirm");
    view! {
        <details class="mt-4" data-testid="revoke">
            <summary class="cursor-pointer font-medium">"Revoke the console's access"</summary>
            <p class="mt-2 max-w-prose text-sm">
                "Deletes the console's namespace meshdeck in the cluster, which owns its ServiceAccount, roles and bindings (the cluster-wide ones go with it), then removes the cluster from Meshdeck. The mesh itself is left as it is."
            </p>
            <button type="button" class=format!("{BUTTON_SECONDARY} mt-2") on:click=move |_| { plan.dispatch(()); }>
                "Show what is deleted"
            </button>
            {move || plan.value().get().map(|r| match r {
                Ok(p) => view! { <PlanView list=vec![p] /> }.into_any(),
                Err(e) => view! { <ErrorBox error=e /> }.into_any(),
            })}
            <div class="mt-3 flex flex-wrap items-end gap-3">
                <label class="block">
                    <span class="text-sm font-medium">{label}</span>
                    <input class=INPUT name="confirm" autocomplete="off" bind:value=confirm />
                </label>
                <button type="button" class=BUTTON_DANGER on:click=move |_| { revoke.dispatch(()); } disabled=move || revoke.pending().get()>
                    "Revoke and remove"
                </button>
            </div>
            {move || revoke.value().get().and_then(Result::err).map(|e| view! { <ErrorBox error=e /> })}
        </details>
    }
}
