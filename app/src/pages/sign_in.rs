use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use crate::api::get_sign_in_options;
use crate::components::{Alert, BUTTON, BUTTON_SECONDARY, INPUT, ThemeToggle};
use crate::model::AppError;
use crate::use_session;

type SignInOptionsResource = crate::data::Data<Result<crate::model::SignInOptions, AppError>>;

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    // What the server says about this browser's last single sign-on (kept until the next one starts). Made
    // with the page, not in the form the Suspense below builds (the server may build that more than once).
    let options = crate::data::data(|| (), |_| get_sign_in_options());
    view! {
        <Title text="Sign in" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let next = crate::model::after_sign_in(query.read_untracked().get("next").as_deref());
                match session.me.await {
                    Ok(Some(_)) => view! { <Redirect path=next /> }.into_any(),
                    _ => view! { <SignInForm next=next options=options /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignInForm(next: String, options: SignInOptionsResource) -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let error = move || match session.sign_in.value().get() {
        Some(Err(AppError::Invalid { message, .. })) => Some(message),
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(_)) => None,
        None => query.read().get("error"),
    };
    view! {
        <div class="flex min-h-screen items-center justify-center p-4">
            <div class="w-full max-w-sm rounded-lg border border-slate-200 bg-white p-6 shadow-sm dark:border-slate-800 dark:bg-slate-900">
                <div class="flex items-center justify-between">
                    <h1 class="text-xl font-bold">"◈ Sign in to Meshdeck"</h1>
                    <ThemeToggle />
                </div>
                <SsoBlock next=next.clone() options=options />
                <ActionForm action=session.sign_in attr:class="mt-4 space-y-4">
                    <input type="hidden" name="next" value=next />
                    <label class="block">
                        <span class="text-sm font-medium">"Username"</span>
                        <input class=INPUT name="username" autocomplete="username" required autofocus />
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"Password"</span>
                        <input
                            class=INPUT
                            type="password"
                            name="password"
                            autocomplete="current-password"
                            required
                        />
                    </label>
                    {move || error().map(|m| view! { <Alert message=m /> })}
                    <button type="submit" class=format!("{BUTTON} w-full") disabled=move || session.sign_in.pending().get()>
                        "Sign in"
                    </button>
                </ActionForm>
            </div>
        </div>
    }
}

/// The provider's button (first, when single sign-on is configured), and why the last single sign-on of this
/// browser did not go through.
#[component]
fn SsoBlock(next: String, options: SignInOptionsResource) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let next = next.clone();
                Suspend::new(async move {
                    let o = options.await.unwrap_or_default();
                    let href = format!("/auth/oidc/start?next={}", crate::pages::encode_query(&next));
                    let label = o.provider.clone().unwrap_or_default();
                    let note = if o.break_glass_only {
                        "Passwords are kept for the break-glass account only."
                    } else {
                        "Or with a local account:"
                    };
                    view! {
                        <div class="mt-4" class:hidden=o.provider.is_none()>
                            <a href=href rel="external" class=format!("{BUTTON} block w-full text-center") data-testid="sso">
                                {format!("Sign in with {label}")}
                            </a>
                            <div class="mt-3" data-testid="sso-failed" class:hidden=o.failed.is_none()>
                                <Alert message=o.failed.clone().unwrap_or_default() />
                            </div>
                            <p class="mt-3 text-sm" class:hidden=o.end_session.is_none()>
                                "You are signed out of Meshdeck. "
                                <a href=o.end_session.clone().unwrap_or_default() rel="external" class="underline" data-testid="end-session">
                                    {format!("Sign out of {label} too")}
                                </a>
                            </p>
                            <p class="mt-4 text-center text-sm text-slate-500">{note}</p>
                        </div>
                    }
                })
            }}
        </Suspense>
    }
}

/// Where a single sign-on without any mapped group lands: who the provider said you are, your groups, and
/// what to ask for. Deny by default: such a user gets no account, not a viewer one.
#[component]
pub fn NoAccessPage() -> impl IntoView {
    let options = crate::data::data(|| (), |_| get_sign_in_options());
    view! {
        <Title text="No access" />
        <div class="flex min-h-screen items-center justify-center p-4">
            <div class="w-full max-w-lg rounded-lg border border-amber-400 bg-white p-6 shadow-sm dark:bg-slate-900" data-testid="no-access">
                <h1 class="text-xl font-bold">"No access to Meshdeck"</h1>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let denied = options.await.ok().and_then(|o| o.denied);
                        match denied {
                            Some(d) => {
                                let groups = if d.groups.is_empty() {
                                    "no groups at all".to_string()
                                } else {
                                    d.groups.join(", ")
                                };
                                view! {
                                    <p class="mt-3">
                                        "The provider signed you in as " <strong>{d.username}</strong>
                                        ", but none of your groups gives access to Meshdeck."
                                    </p>
                                    <p class="mt-2 text-sm">"Your groups: " <span data-testid="groups">{groups}</span></p>
                                }
                                .into_any()
                            }
                            None => view! { <p class="mt-3">"Your single sign-on gave no access to Meshdeck."</p> }.into_any(),
                        }
                    })}
                </Suspense>
                <p class="mt-3 text-sm">
                    "Ask a Meshdeck admin to map one of your groups to a role or a team (Users → Single sign-on groups), then sign in again."
                </p>
                <a href="/sign-in" class=format!("{BUTTON_SECONDARY} mt-4 inline-block")>"Back to sign-in"</a>
            </div>
        </div>
    }
}
