use leptos::prelude::*;

use super::users_sso::{
    GroupMappingsSection, mappings_resource, needs_confirm as mappings_need_confirm,
};
use crate::api::{
    AddGroupMapping, ConfirmPassword, CreateUser, RemoveGroupMapping, ResetUserPassword,
    SetUserDisabled, SetUserRole, UnlockSignIn, list_sign_in_locks, list_users,
};
use crate::components::{
    BUTTON, BUTTON_SECONDARY, DataTable, ErrorBox, Gate, INPUT, TR, field_error,
};
use crate::model::{AppError, Role, SignInLock, UserSummary, format_time};

#[component]
pub fn UsersPage() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let confirm = ServerAction::<ConfirmPassword>::new();
    let unlock = ServerAction::<UnlockSignIn>::new();
    let add_mapping = ServerAction::<AddGroupMapping>::new();
    let remove_mapping = ServerAction::<RemoveGroupMapping>::new();
    let mappings = mappings_resource(add_mapping, remove_mapping);
    let locks = crate::data::data(move || unlock.version().get(), |_| list_sign_in_locks());
    let users = crate::data::data(
        move || {
            (
                create.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
            )
        },
        |_| list_users(),
    );
    let create_error = move || create.value().get().and_then(Result::err);
    let row_error = move || {
        set_role
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| set_disabled.value().get().and_then(Result::err))
            .or_else(|| reset.value().get().and_then(Result::err))
    };
    let needs_confirm = move || {
        matches!(create.value().get(), Some(Err(AppError::ReauthRequired(_))))
            || matches!(
                set_role.value().get(),
                Some(Err(AppError::ReauthRequired(_)))
            )
            || matches!(
                set_disabled.value().get(),
                Some(Err(AppError::ReauthRequired(_)))
            )
            || matches!(reset.value().get(), Some(Err(AppError::ReauthRequired(_))))
            || mappings_need_confirm(add_mapping, remove_mapping)
    };
    view! {
        <Gate title="Users" needs=Role::Admin>
            <h1 class="text-2xl font-bold">"Users"</h1>
            <ConfirmBox confirm=confirm highlight=Signal::derive(needs_confirm) />
            <section class="mt-4 rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
                <h2 class="text-lg font-semibold">"Create a user"</h2>
                <ActionForm action=create attr:class="mt-3 grid gap-3 md:grid-cols-4 md:items-end">
                    <label class="block">
                        <span class="text-sm font-medium">"Username"</span>
                        <input class=INPUT name="username" required autocomplete="off" />
                        {field_error(create_error, "username")}
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"Role"</span>
                        <RoleSelect selected=Role::Viewer />
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"Password (12+ characters)"</span>
                        <input class=INPUT name="password" type="password" required autocomplete="new-password" />
                        {field_error(create_error, "password")}
                    </label>
                    <button type="submit" class=BUTTON>"Create"</button>
                </ActionForm>
                {move || create_error().filter(|e| e.for_field("username").is_none() && e.for_field("password").is_none()).map(|e| view! { <ErrorBox error=e /> })}
                {move || matches!(create.value().get(), Some(Ok(_))).then(|| view! { <p class="mt-2" role="status">"✓ User created."</p> })}
            </section>
            {move || row_error().map(|e| view! { <div class="mt-4"><ErrorBox error=e /></div> })}
            {move || matches!(reset.value().get(), Some(Ok(()))).then(|| view! { <p class="mt-4" role="status">"✓ Password reset."</p> })}
            <Suspense fallback=|| view! { <p class="mt-4">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(list) => view! { <UserTable list=list set_role=set_role set_disabled=set_disabled reset=reset /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match locks.await {
                        Ok(list) => view! { <LockTable list=list unlock=unlock /> }.into_any(),
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })}
            </Suspense>
            <GroupMappingsSection add=add_mapping remove=remove_mapping list=mappings />
        </Gate>
    }
}

/// Re-entering the admin's own password: actions that give or take power need it within a few minutes.
#[component]
fn ConfirmBox(confirm: ServerAction<ConfirmPassword>, highlight: Signal<bool>) -> impl IntoView {
    let error = move || confirm.value().get().and_then(Result::err);
    let session = crate::use_session();
    view! {
        <section
            class="mt-4 rounded border p-4"
            class=("border-amber-400", move || highlight.get())
            class=("border-slate-200", move || !highlight.get())
            data-testid="confirm-password"
        >
            <h2 class="text-lg font-semibold">"Confirm it is you"</h2>
            <p class="mt-1 max-w-prose text-sm">
                "Creating an admin, changing a role or a group mapping, enabling a user and resetting a password give power: they need you to confirm it is you (your password, or the provider again for single sign-on) within the last 5 minutes."
            </p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let sso = session.me.await.ok().flatten().is_some_and(|m| m.sso);
                    if sso {
                        view! {
                            <a href="/auth/oidc/start?reauth=1&next=/users" rel="external" class=format!("{BUTTON_SECONDARY} mt-3 inline-block") data-testid="confirm-sso">
                                "Confirm with the provider"
                            </a>
                        }
                        .into_any()
                    } else {
                        view! {
                            <ActionForm action=confirm attr:class="mt-3 flex flex-wrap items-end gap-3">
                                <label class="block">
                                    <span class="text-sm font-medium">"Your password"</span>
                                    <input class=INPUT name="password" type="password" required autocomplete="current-password" />
                                </label>
                                <button type="submit" class=BUTTON_SECONDARY>"Confirm"</button>
                            </ActionForm>
                        }
                        .into_any()
                    }
                })}
            </Suspense>
            {move || error().map(|e| view! { <div class="mt-2"><ErrorBox error=e /></div> })}
            {move || matches!(confirm.value().get(), Some(Ok(()))).then(|| view! { <p class="mt-2" role="status">"✓ Confirmed for the next 5 minutes."</p> })}
        </section>
    }
}

/// The sign-in locks in force, each with a button that lifts it.
#[component]
fn LockTable(list: Vec<SignInLock>, unlock: ServerAction<UnlockSignIn>) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|l| {
            let what = match l.kind.as_str() {
                "source" => format!("every username from {}", l.source),
                "user" => format!("{} from browsers it never signed in from", l.username),
                _ => format!("{} from {}", l.username, l.source),
            };
            view! {
                <tr class=TR data-lock=l.kind.clone()>
                    <td class="px-3 py-2">{what}</td>
                    <td class="px-3 py-2">{l.attempts}</td>
                    <td class="px-3 py-2 text-sm">{format_time(l.until)}</td>
                    <td class="px-3 py-2">
                        <ActionForm action=unlock>
                            <input type="hidden" name="username" value=l.username.clone() />
                            <input type="hidden" name="source" value=l.source.clone() />
                            <button type="submit" class=BUTTON_SECONDARY>"Unlock"</button>
                        </ActionForm>
                    </td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <section class="mt-6">
            <h2 class="text-lg font-semibold">"Sign-in locks"</h2>
            <p class="mt-1 max-w-prose text-sm">
                "Failed sign-ins are limited per address, per username from an address, and per username from browsers that never signed in as it. A browser that signed in before keeps its own count, so nobody can lock you out of your own browser."
            </p>
            <DataTable
                caption="Sign-in locks in force".to_string()
                head=vec!["Locked", "Failed attempts", "Lifts by itself at", "Action"]
                quiet=vec!["Action"]
                rows=rows
                empty="No sign-in is locked."
                testid="locks"
            />
        </section>
    }
}

#[component]
fn RoleSelect(
    selected: Role,
    #[prop(default = None)] label: Option<&'static str>,
) -> impl IntoView {
    view! {
        <select name="role" class=INPUT aria-label=label>
            {Role::ALL
                .into_iter()
                .map(|r| {
                    view! {
                        <option value=r.as_str() selected=r == selected>
                            {format!("{r} — {}", r.describe())}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

#[component]
fn UserTable(
    list: Vec<UserSummary>,
    set_role: ServerAction<SetUserRole>,
    set_disabled: ServerAction<SetUserDisabled>,
    reset: ServerAction<ResetUserPassword>,
) -> impl IntoView {
    let rows = list
        .into_iter()
        .map(|u| {
            let id = u.id.to_string();
            let (id1, id2, id3) = (id.clone(), id.clone(), id.clone());
            let role_cell = if u.sso {
                let groups = if u.groups.is_empty() { "none".to_string() } else { u.groups.join(", ") };
                view! {
                    <span data-role=u.role.as_str()>{u.role.as_str()}</span>
                    <span class="block text-xs text-slate-500">{format!("from groups: {groups}")}</span>
                }
                .into_any()
            } else {
                view! {
                    <ActionForm action=set_role attr:class="flex gap-2">
                        <input type="hidden" name="id" value=id1 />
                        <RoleSelect selected=u.role label=Some("Role") />
                        <button type="submit" class=BUTTON_SECONDARY>"Set"</button>
                    </ActionForm>
                }
                .into_any()
            };
            let password_cell = if u.sso {
                view! { <span class="text-sm" data-sso="true">"single sign-on"</span> }.into_any()
            } else {
                view! {
                    <ActionForm action=reset attr:class="flex gap-2">
                        <input type="hidden" name="id" value=id3 />
                        <input
                            aria-label="New password"
                            class=INPUT
                            type="password"
                            name="password"
                            placeholder="new password"
                            autocomplete="new-password"
                            required
                        />
                        <button type="submit" class=BUTTON_SECONDARY>"Reset"</button>
                    </ActionForm>
                }
                .into_any()
            };
            view! {
                <tr class=format!("{TR} align-top") data-user=u.username.clone()>
                    <td class="px-3 py-2 font-medium">{u.username.clone()}</td>
                    <td class="px-3 py-2">{role_cell}</td>
                    <td class="px-3 py-2">
                        <ActionForm action=set_disabled attr:class="flex items-center gap-2">
                            <input type="hidden" name="id" value=id2 />
                            <input type="hidden" name="disabled" value=(!u.disabled).to_string() />
                            <span>{if u.disabled { "✕ disabled" } else { "✓ active" }}</span>
                            <button type="submit" class=BUTTON_SECONDARY>
                                {if u.disabled { "Enable" } else { "Disable" }}
                            </button>
                        </ActionForm>
                    </td>
                    <td class="px-3 py-2">{password_cell}</td>
                    <td class="px-3 py-2 text-sm">{format_time(u.created_at)}</td>
                </tr>
            }
            .into_any()
        })
        .collect();
    view! {
        <DataTable
            caption="Users of this console".to_string()
            head=vec!["User", "Role", "Status", "Password", "Created"]
            rows=rows
            empty="No users."
            testid="users"
        />
    }
}
