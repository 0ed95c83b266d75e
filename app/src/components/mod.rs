//! Pieces shared by the pages: the frame (navigation, user menu, theme), the sign-in gate, status badges
//! and error messages.

mod table;

pub use table::{DataTable, TD, TD_NOWRAP, TD_WIDE, TR};

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_location;

use crate::model::{AppError, Health, Me, Role};
use crate::use_session;

/// A page that needs a signed-in user (with at least `needs`): shows the frame and the page, sends anyone
/// else to the sign-in page, and tells a user without the role what is missing.
///
/// Make a page's resources before the gate, never in a component inside it: the server may build the
/// children more than once (each pass of Suspense over a view whose data are ready builds them again) and
/// the browser once, so a resource made inside would be numbered differently there and hydration breaks.
#[component]
pub fn Gate(
    title: &'static str,
    #[prop(default = Role::Viewer)] needs: Role,
    children: ChildrenFn,
) -> impl IntoView {
    let session = use_session();
    let location = use_location();
    view! {
        <Title text=title />
        <Suspense fallback=|| view! { <p class="p-6">"Loading…"</p> }>
            {move || {
                let children = children.clone();
                let path = location.pathname.get_untracked();
                Suspend::new(async move {
                    match session.me.await {
                        Ok(Some(me)) if me.role >= needs => {
                            view! { <Frame me=me>{children()}</Frame> }.into_any()
                        }
                        Ok(Some(me)) => {
                            view! {
                                <Frame me=me.clone()>
                                    <div role="alert" class="rounded border border-amber-400 bg-amber-50 p-4 dark:bg-amber-950">
                                        <p class="font-semibold">"⚠ Not allowed"</p>
                                        <p>
                                            {format!(
                                                "This page needs the {needs} role; you are signed in as {} with the {} role. Ask an admin.",
                                                me.username,
                                                me.role,
                                            )}
                                        </p>
                                    </div>
                                </Frame>
                            }
                                .into_any()
                        }
                        Ok(None) => {
                            let to = format!("/sign-in?next={}", crate::pages::encode_query(&path));
                            view! { <Redirect path=to /> }.into_any()
                        }
                        Err(e) => view! { <ErrorBox error=e /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

const NAV: [(&str, &str, Role); 10] = [
    ("/clusters", "Clusters", Role::Viewer),
    ("/setup", "Setup", Role::Viewer),
    ("/mesh", "Mesh", Role::Viewer),
    ("/topology", "Topology", Role::Viewer),
    ("/checks", "Checks", Role::Viewer),
    ("/activity", "Activity", Role::Viewer),
    ("/team", "My team", Role::Viewer),
    ("/requests", "Requests", Role::Operator),
    ("/teams", "Teams", Role::Operator),
    ("/users", "Users", Role::Admin),
];

/// The frame around every signed-in page: navigation, who is signed in, theme, sign-out.
#[component]
pub fn Frame(me: Me, children: Children) -> impl IntoView {
    let session = use_session();
    let links = NAV
        .into_iter()
        .filter(|(_, _, needs)| me.role >= *needs)
        .map(|(href, label, _)| {
            view! {
                <li>
                    <A
                        href=href
                        attr:class="block rounded px-3 py-2 hover:bg-slate-200 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-500 aria-[current=page]:bg-indigo-600 aria-[current=page]:text-white dark:hover:bg-slate-800"
                    >
                        {label}
                    </A>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="flex min-h-screen flex-col md:flex-row">
            <nav
                aria-label="Main"
                class="border-b border-slate-200 bg-white p-3 md:w-52 md:border-b-0 md:border-r dark:border-slate-800 dark:bg-slate-900"
            >
                <a href="/clusters" class="mb-3 block px-3 text-lg font-bold tracking-tight">
                    "◈ Meshdeck"
                </a>
                <ul class="flex flex-wrap gap-1 md:flex-col">{links}</ul>
            </nav>
            <div class="flex min-w-0 flex-1 flex-col">
                <header class="flex items-center justify-end gap-3 border-b border-slate-200 bg-white px-4 py-2 text-sm dark:border-slate-800 dark:bg-slate-900">
                    <ThemeToggle />
                    <a href="/account" class="hover:underline" data-testid="me">
                        {format!("{} · {}", me.username, me.role)}
                    </a>
                    <ActionForm action=session.sign_out>
                        <button
                            type="submit"
                            class="rounded border border-slate-300 px-3 py-1 hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
                        >
                            "Sign out"
                        </button>
                    </ActionForm>
                </header>
                <main class="mx-auto w-full max-w-6xl flex-1 p-4 md:p-6">{children()}</main>
            </div>
        </div>
    }
}

/// Switches between light and dark; the choice is kept in the browser. The click is handled by the
/// document's inline script (`data-theme-toggle`), so the button works on pages without the browser build
/// too, and before a page has hydrated.
#[component]
pub fn ThemeToggle() -> impl IntoView {
    view! {
        <button
            type="button"
            data-theme-toggle=""
            class="rounded border border-slate-300 px-2 py-1 hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
            title="Switch between light and dark"
        >
            "◐ Theme"
        </button>
    }
}

/// Health as an icon and a word (never colour alone).
#[component]
pub fn HealthBadge(health: Health) -> impl IntoView {
    let (icon, class) = match health {
        Health::Healthy => (
            "✓",
            "bg-emerald-100 text-emerald-900 dark:bg-emerald-900 dark:text-emerald-100",
        ),
        Health::Degraded => (
            "!",
            "bg-amber-100 text-amber-900 dark:bg-amber-900 dark:text-amber-100",
        ),
        Health::Down => (
            "✕",
            "bg-red-100 text-red-900 dark:bg-red-900 dark:text-red-100",
        ),
        Health::Unknown => (
            "?",
            "bg-slate-200 text-slate-800 dark:bg-slate-700 dark:text-slate-100",
        ),
    };
    view! {
        <span
            class=format!("inline-flex items-center gap-1 rounded px-2 py-0.5 text-sm font-medium {class}")
            data-health=format!("{health:?}").to_lowercase()
        >
            <span aria-hidden="true">{icon}</span>
            {health.label()}
        </span>
    }
}

/// An error from the server, with what to do.
#[component]
pub fn ErrorBox(error: AppError) -> impl IntoView {
    let hint = match &error {
        AppError::Unauthenticated => Some("Your session ended. Sign in again."),
        AppError::Transport(_) => Some("Check that the console server is running, then try again."),
        _ => None,
    };
    view! { <Alert message=error.to_string() hint=hint /> }
}

/// A failure message, with an optional hint on what to do.
#[component]
pub fn Alert(message: String, #[prop(default = None)] hint: Option<&'static str>) -> impl IntoView {
    view! {
        <div role="alert" class="rounded border border-red-300 bg-red-50 p-3 text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100">
            <p>
                <span aria-hidden="true">"✕ "</span>
                {message}
            </p>
            {hint.map(|h| view! { <p class="text-sm">{h}</p> })}
        </div>
    }
}

/// The message for one form field, shown under the input, when the last answer was about that field.
pub fn field_error(
    result: impl Fn() -> Option<AppError> + Send + Sync + 'static,
    field: &'static str,
) -> impl IntoView {
    move || {
        result().and_then(|e| {
            e.for_field(field).map(|m| {
                view! {
                    <p class="mt-1 text-sm text-red-700 dark:text-red-300" data-field-error=field>
                        {m.to_string()}
                    </p>
                }
            })
        })
    }
}

pub const INPUT: &str = "mt-1 block w-full rounded border border-slate-300 bg-white px-3 py-2 focus:outline-none focus:ring-2 focus:ring-indigo-500 dark:border-slate-700 dark:bg-slate-900";
pub const BUTTON: &str = "rounded bg-indigo-600 px-4 py-2 font-medium text-white hover:bg-indigo-700 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-500 disabled:opacity-50";
pub const BUTTON_SECONDARY: &str = "rounded border border-slate-300 px-4 py-2 hover:bg-slate-100 focus-visible:outline focus-visible:outline-2 focus-visible:outline-indigo-500 disabled:opacity-50 dark:border-slate-700 dark:hover:bg-slate-800";
pub const BUTTON_DANGER: &str = "rounded bg-red-600 px-4 py-2 font-medium text-white hover:bg-red-700 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-red-500 disabled:opacity-50";
