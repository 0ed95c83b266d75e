//! The single sign-on part of the Users page: which provider group gives which role or team.

use leptos::prelude::*;

use crate::api::{AddGroupMapping, RemoveGroupMapping, list_group_mappings};
use crate::components::{BUTTON, BUTTON_SECONDARY, DataTable, ErrorBox, INPUT, TD, TR};
use crate::model::{AppError, Grant, GroupMapping, GroupMappings, Role, TeamRole};

/// Signals that an action of this section needs the admin to confirm it is them.
pub fn needs_confirm(
    add: ServerAction<AddGroupMapping>,
    remove: ServerAction<RemoveGroupMapping>,
) -> bool {
    matches!(add.value().get(), Some(Err(AppError::ReauthRequired(_))))
        || matches!(remove.value().get(), Some(Err(AppError::ReauthRequired(_))))
}

/// The mappings, read again after each change. Made with the page, outside its sign-in gate: a resource
/// made inside the gate's Suspense may be made more than once on the server (each pass over a view whose
/// data are ready builds it again) and once in the browser, so the two would number it differently.
pub fn mappings_resource(
    add: ServerAction<AddGroupMapping>,
    remove: ServerAction<RemoveGroupMapping>,
) -> crate::data::Data<Result<GroupMappings, AppError>> {
    crate::data::data(
        move || (add.version().get(), remove.version().get()),
        |_| list_group_mappings(),
    )
}

#[component]
pub fn GroupMappingsSection(
    add: ServerAction<AddGroupMapping>,
    remove: ServerAction<RemoveGroupMapping>,
    list: crate::data::Data<Result<GroupMappings, AppError>>,
) -> impl IntoView {
    let error = move || {
        add.value()
            .get()
            .and_then(Result::err)
            .or_else(|| remove.value().get().and_then(Result::err))
    };
    view! {
        <section class="mt-6 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" data-testid="group-mappings">
            <h2 class="text-lg font-semibold">"Single sign-on groups"</h2>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(m) => view! { <MappingsBody m=m add=add remove=remove /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            {move || error().map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
            {move || add.value().get().and_then(Result::ok).map(|n| view! { <p class="mt-2" role="status">{format!("✓ Mapped; {n} account(s) changed role.")}</p> })}
        </section>
    }
}

#[component]
fn MappingsBody(
    m: GroupMappings,
    add: ServerAction<AddGroupMapping>,
    remove: ServerAction<RemoveGroupMapping>,
) -> impl IntoView {
    let intro = if m.configured {
        format!(
            "People who sign in through the provider get the highest role their groups (claim \"{}\") map to, and the teams mapped here. Nobody else gets in: a user with no mapped group sees a \"no access\" page. Changes apply to every account at once.",
            m.groups_claim
        )
    } else {
        "Single sign-on is not configured (start the console with --oidc-issuer); mappings kept here apply once it is.".to_string()
    };
    let read_only = m.file.clone();
    let rows = m
        .list
        .into_iter()
        .map(|mapping| {
            let gives = match &mapping.grant {
                Grant::Role { role } => format!("role {role}"),
                Grant::Team { team, role } => format!("team {team} ({})", role.as_str()),
            };
            let button = read_only.is_none().then(|| {
                let m2 = mapping.clone();
                view! {
                    <button
                        type="button"
                        class=BUTTON_SECONDARY
                        on:click=move |_| {
                            remove.dispatch(RemoveGroupMapping { mapping: m2.clone() });
                        }
                    >
                        "Remove"
                    </button>
                }
            });
            view! {
                <tr class=TR data-mapping=mapping.group.clone()>
                    <td class=format!("{TD} font-mono text-sm")>{mapping.group.clone()}</td>
                    <td class=TD>{gives}</td>
                    <td class=TD>{button}</td>
                </tr>
            }
            .into_any()
        })
        .collect::<Vec<_>>();
    let form = match read_only {
        Some(path) => view! {
            <p class="mt-3 text-sm" data-testid="mappings-file">
                {format!("These mappings come from the settings file {path}: change them there and restart the console.")}
            </p>
        }
        .into_any(),
        None => view! { <AddMappingForm add=add /> }.into_any(),
    };
    view! {
        <p class="mt-1 max-w-prose text-sm">{intro}</p>
        <DataTable
            caption="Provider groups and what they give".to_string()
            head=vec!["Group", "Gives", "Action"] quiet=vec!["Action"]
            rows=rows
            empty="No group is mapped: nobody signs in through the provider yet."
            testid="mappings"
        />
        {form}
    }
}

#[component]
fn AddMappingForm(add: ServerAction<AddGroupMapping>) -> impl IntoView {
    let group = RwSignal::new(String::new());
    let gives = RwSignal::new("role:viewer".to_string());
    let team = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let grant = match gives.get_untracked().as_str() {
            "team:member" | "team:admin" => Grant::Team {
                team: team.get_untracked().trim().to_string(),
                role: if gives.get_untracked() == "team:admin" {
                    TeamRole::Admin
                } else {
                    TeamRole::Member
                },
            },
            other => Grant::Role {
                role: Role::parse(other.trim_start_matches("role:")).unwrap_or(Role::Viewer),
            },
        };
        add.dispatch(AddGroupMapping {
            mapping: GroupMapping {
                group: group.get_untracked().trim().to_string(),
                grant,
            },
        });
    };
    let is_team = move || gives.get().starts_with("team:");
    view! {
        <form class="mt-3 grid gap-3 md:grid-cols-4 md:items-end" on:submit=submit data-testid="add-mapping">
            <label class="block">
                <span class="text-sm font-medium">"Group"</span>
                <input class=INPUT name="group" required bind:value=group />
            </label>
            <label class="block">
                <span class="text-sm font-medium">"Gives"</span>
                <select class=INPUT name="gives" bind:value=gives>
                    <option value="role:admin">"role admin"</option>
                    <option value="role:operator">"role operator"</option>
                    <option value="role:viewer">"role viewer"</option>
                    <option value="team:member">"team membership"</option>
                    <option value="team:admin">"team admin"</option>
                </select>
            </label>
            <label class="block" class:invisible=move || !is_team()>
                <span class="text-sm font-medium">"Team"</span>
                <input class=INPUT name="team" bind:value=team />
            </label>
            <button type="submit" class=BUTTON>"Map"</button>
        </form>
    }
}
