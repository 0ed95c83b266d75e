//! Teams: every team with its members, grants (which namespaces in which clusters), limits and
//! auto-approve rules. Platform operators see them; admins change them.

use leptos::prelude::*;

use super::super::allowed;
use crate::api::{DeleteTeam, SaveTeam, SetTeamGrant, SetTeamMember, list_clusters, list_teams};
use crate::components::{
    BUTTON, BUTTON_DANGER, BUTTON_SECONDARY, DataTable, ErrorBox, Gate, INPUT, TD, TR, field_error,
};
use crate::model::{Approval, PortalRules, Role, TeamSettings, TeamView};

#[component]
pub fn TeamsPage() -> impl IntoView {
    let save = ServerAction::<SaveTeam>::new();
    let member = ServerAction::<SetTeamMember>::new();
    let grant = ServerAction::<SetTeamGrant>::new();
    let delete = ServerAction::<DeleteTeam>::new();
    let teams = crate::data::data(
        move || {
            (
                save.version().get(),
                member.version().get(),
                grant.version().get(),
                delete.version().get(),
            )
        },
        |_| list_teams(),
    );
    let clusters = crate::data::data(|| (), |_| list_clusters());
    // Which grant was set last ("team/cluster"), to say so next to it.
    let last_grant = RwSignal::new(None::<String>);
    let is_admin = allowed(Role::Admin);
    let errors = move || {
        member
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| grant.value().get().and_then(Result::err))
            .or_else(|| delete.value().get().and_then(Result::err))
    };
    view! {
        <Gate title="Teams" needs=Role::Operator>
            <h1 class="text-2xl font-bold">"Teams"</h1>
            <p class="mt-1 max-w-prose text-sm">
                "Application teams put their namespaces in the mesh and share their services themselves, within what is set here: the namespaces each team may touch in each cluster (a name, or a prefix ending in *; never a platform namespace), how many, and which requests run at once."
            </p>
            {move || is_admin().then(|| view! { <TeamEditor save=save existing=None /> })}
            {move || errors().map(|e| view! { <div class="mt-3"><ErrorBox error=e /></div> })}
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let names: Vec<String> = clusters
                        .await
                        .map(|l| l.into_iter().map(|c| c.name.to_string()).collect())
                        .unwrap_or_default();
                    match teams.await {
                        Ok(list) if list.is_empty() => view! { <p class="mt-4">"No team yet."</p> }.into_any(),
                        Ok(list) => list
                            .into_iter()
                            .map(|t| view! { <TeamCard t=t clusters=names.clone() save=save member=member grant=grant delete=delete last_grant=last_grant /> })
                            .collect_view()
                            .into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
        </Gate>
    }
}

#[component]
fn TeamCard(
    t: TeamView,
    clusters: Vec<String>,
    save: ServerAction<SaveTeam>,
    member: ServerAction<SetTeamMember>,
    grant: ServerAction<SetTeamGrant>,
    delete: ServerAction<DeleteTeam>,
    last_grant: RwSignal<Option<String>>,
) -> impl IntoView {
    // Known when the page renders (the gate has read the session).
    let is_admin = allowed(Role::Admin)();
    let name = t.settings.name.clone();
    let members = t
        .members
        .iter()
        .map(|m| {
            let (team, user) = (name.clone(), m.username.clone());
            view! {
                <tr class=TR data-member=m.username.clone()>
                    <td class=TD>{m.username.clone()}</td>
                    <td class=TD>{m.role.as_str()}</td>
                    <td class=TD>
                        {is_admin.then(|| view! {
                            <ActionForm action=member>
                                <input type="hidden" name="team" value=team.clone() />
                                <input type="hidden" name="username" value=user.clone() />
                                <button type="submit" class=BUTTON_SECONDARY>"Remove"</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    let grant_fields = clusters
        .iter()
        .map(|c| {
            let form = grant_form_id(&name, c);
            view! {
                <input type="hidden" form=form.clone() name="team" value=name.clone() />
                <input type="hidden" form=form name="cluster" value=c.clone() />
            }
        })
        .collect_view();
    let grants = clusters
        .iter()
        .map(|c| {
            let patterns = t
                .grants
                .iter()
                .find(|g| &g.cluster == c)
                .map(|g| g.patterns.join(", "))
                .unwrap_or_default();
            let (team, cluster) = (name.clone(), c.clone());
            view! {
                <tr class=TR data-grant=c.clone()>
                    <td class=TD>{c.clone()}</td>
                    <td class=TD>
                        {if is_admin {
                            view! { <GrantForm team=team.clone() cluster=cluster.clone() patterns=patterns.clone() grant=grant last_grant=last_grant /> }.into_any()
                        } else {
                            view! { <span>{if patterns.is_empty() { "—".to_string() } else { patterns.clone() }}</span> }.into_any()
                        }}
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    let s = t.settings.clone();
    let rules = &s.rules;
    let rule = |a: Approval| {
        if a == Approval::Auto {
            "at once"
        } else {
            "needs approval"
        }
    };
    let summary = format!(
        "At most {} namespaces and {} shared services. Enrol: {}; leave: {}; share: {}; stop sharing: {}.",
        s.max_namespaces,
        s.max_services,
        rule(rules.enrol),
        rule(rules.leave),
        rule(rules.share),
        rule(rules.unshare)
    );
    let team_for_add = name.clone();
    let team_for_delete = name.clone();
    view! {
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" data-team=name.clone()>
            <h2 class="text-xl font-semibold">{format!("Team {}", s.name)}</h2>
            <p class="mt-1 text-sm">{s.description.clone()} {(!s.contact.is_empty()).then(|| format!(" — contact {}", s.contact))}</p>
            <p class="mt-1 text-sm">{summary}</p>
            <h3 class="mt-4 font-semibold">"Members"</h3>
            <DataTable caption=format!("Members of {}", s.name) head=vec!["User", "Team role", "Action"] quiet=vec!["Action"] rows=members empty="No member yet." />
            {is_admin.then(|| {
                let team = team_for_add.clone();
                view! {
                    <ActionForm action=member attr:class="mt-2 flex flex-wrap items-end gap-3">
                        <input type="hidden" name="team" value=team />
                        <label class="block">
                            <span class="text-sm font-medium">"Username"</span>
                            <input class=INPUT name="username" required autocomplete="off" />
                        </label>
                        <label class="block">
                            <span class="text-sm font-medium">"Team role"</span>
                            <select class=INPUT name="role">
                                <option value="member">"member"</option>
                                <option value="admin">"admin"</option>
                            </select>
                        </label>
                        <button type="submit" class=BUTTON_SECONDARY>"Add or change"</button>
                    </ActionForm>
                }
            })}
            <h3 class="mt-4 font-semibold">"Namespaces it may touch"</h3>
            <DataTable caption=format!("Grants of {}", s.name) head=vec!["Cluster", "Namespaces (names or prefixes ending in *)"] rows=grants empty="No cluster registered." />
            // What each grant form sends besides its list, outside the rows (`form=`), for the plain post.
            {is_admin.then_some(grant_fields)}
            {is_admin.then(|| view! {
                <details class="mt-4">
                    <summary class="cursor-pointer font-semibold">"Limits and rules"</summary>
                    <TeamEditor save=save existing=Some(t.settings.clone()) />
                </details>
                <ActionForm action=delete attr:class="mt-4">
                    <input type="hidden" name="name" value=team_for_delete.clone() />
                    <button type="submit" class=BUTTON_DANGER>"Delete this team"</button>
                </ActionForm>
            })}
        </section>
    }
}

fn grant_form_id(team: &str, cluster: &str) -> String {
    format!("grant-{team}-{cluster}")
}

/// One cluster's patterns, as a comma-separated list (a plain form).
#[component]
fn GrantForm(
    team: String,
    cluster: String,
    patterns: String,
    grant: ServerAction<SetTeamGrant>,
    last_grant: RwSignal<Option<String>>,
) -> impl IntoView {
    let text = RwSignal::new(patterns);
    let key = format!("{team}/{cluster}");
    let (t, c) = (StoredValue::new(team), StoredValue::new(cluster));
    let k = StoredValue::new(key);
    let saved = move || {
        last_grant.get().as_deref() == Some(k.get_value().as_str())
            && matches!(grant.value().get(), Some(Ok(())))
            && !grant.pending().get()
    };
    view! {
        // Without JavaScript a plain post of the same fields (the server splits the list).
        <form
            id=grant_form_id(&t.get_value(), &c.get_value())
            method="post"
            action="/api/set_team_grant"
            class="flex flex-wrap items-end gap-2"
            on:submit=move |ev| {
                ev.prevent_default();
                let patterns = text
                    .get_untracked()
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect();
                last_grant.set(Some(k.get_value()));
                grant.dispatch(SetTeamGrant { team: t.get_value(), cluster: c.get_value(), patterns });
            }
        >
            <input
                class=INPUT
                name="patterns[0]"
                aria-label=move || format!("Namespaces in {}", c.get_value())
                placeholder="e.g. payments-*"
                value=text.get_untracked()
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            />
            <button type="submit" class=BUTTON_SECONDARY>"Set"</button>
            {move || saved().then(|| view! { <span role="status" data-testid="grant-saved">"✓ Set"</span> })}
        </form>
    }
}

/// Creates a team (`existing` None) or changes one.
#[component]
fn TeamEditor(save: ServerAction<SaveTeam>, existing: Option<TeamSettings>) -> impl IntoView {
    let create = existing.is_none();
    let s = existing.unwrap_or(TeamSettings {
        name: String::new(),
        description: String::new(),
        contact: String::new(),
        max_namespaces: 5,
        max_services: 5,
        rules: PortalRules::default(),
    });
    let name = RwSignal::new(s.name.clone());
    let description = RwSignal::new(s.description.clone());
    let contact = RwSignal::new(s.contact.clone());
    let max_ns = RwSignal::new(s.max_namespaces.to_string());
    let max_svc = RwSignal::new(s.max_services.to_string());
    let rules = RwSignal::new(s.rules.clone());
    let error = move || save.value().get().and_then(Result::err);
    let rule_select = move |label: &'static str,
                            get: fn(&PortalRules) -> Approval,
                            set: fn(&mut PortalRules, Approval)| {
        view! {
            <label class="block">
                <span class="text-sm font-medium">{label}</span>
                <select
                    class=INPUT
                    on:change=move |ev| {
                        let a = if event_target_value(&ev) == "auto" { Approval::Auto } else { Approval::Approval };
                        rules.update(|r| set(r, a));
                    }
                >
                    <option value="auto" selected=move || get(&rules.get()) == Approval::Auto>"at once"</option>
                    <option value="approval" selected=move || get(&rules.get()) == Approval::Approval>"needs approval"</option>
                </select>
            </label>
        }
    };
    view! {
        <form
            class="mt-3 grid gap-3 md:grid-cols-3"
            data-testid=if create { "create-team" } else { "edit-team" }
            on:submit=move |ev| {
                ev.prevent_default();
                save.dispatch(SaveTeam {
                    team: TeamSettings {
                        name: name.get_untracked().trim().to_string(),
                        description: description.get_untracked(),
                        contact: contact.get_untracked(),
                        max_namespaces: max_ns.get_untracked().trim().parse().unwrap_or(0),
                        max_services: max_svc.get_untracked().trim().parse().unwrap_or(0),
                        rules: rules.get_untracked(),
                    },
                    create,
                });
            }
        >
            {create.then(|| view! { <h2 class="text-lg font-semibold md:col-span-3">"Create a team"</h2> })}
            <label class="block">
                <span class="text-sm font-medium">"Name"</span>
                <input class=INPUT required disabled=!create prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                {field_error(error, "name")}
            </label>
            <label class="block">
                <span class="text-sm font-medium">"Description"</span>
                <input class=INPUT prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev)) />
            </label>
            <label class="block">
                <span class="text-sm font-medium">"Contact"</span>
                <input class=INPUT prop:value=move || contact.get() on:input=move |ev| contact.set(event_target_value(&ev)) />
            </label>
            <label class="block">
                <span class="text-sm font-medium">"At most namespaces in the mesh"</span>
                <input class=INPUT type="number" min="0" prop:value=move || max_ns.get() on:input=move |ev| max_ns.set(event_target_value(&ev)) />
            </label>
            <label class="block">
                <span class="text-sm font-medium">"At most shared services"</span>
                <input class=INPUT type="number" min="0" prop:value=move || max_svc.get() on:input=move |ev| max_svc.set(event_target_value(&ev)) />
                {field_error(error, "limits")}
            </label>
            <div></div>
            {rule_select("Enrol a namespace", |r| r.enrol, |r, a| r.enrol = a)}
            {rule_select("Take a namespace out", |r| r.leave, |r, a| r.leave = a)}
            {rule_select("Share a service", |r| r.share, |r, a| r.share = a)}
            {rule_select("Stop sharing", |r| r.unshare, |r, a| r.unshare = a)}
            <div class="md:col-span-3">
                <button type="submit" class=BUTTON disabled=move || save.pending().get()>{if create { "Create" } else { "Save" }}</button>
                {move || error().filter(|e| e.for_field("name").is_none() && e.for_field("limits").is_none()).map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
                {move || matches!(save.value().get(), Some(Ok(()))).then(|| view! { <span class="ml-3" role="status">"✓ Saved."</span> })}
            </div>
        </form>
    }
}
