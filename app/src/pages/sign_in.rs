use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;

use crate::components::{Alert, BUTTON, INPUT, ThemeToggle};
use crate::model::AppError;
use crate::use_session;

#[component]
pub fn SignInPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    view! {
        <Title text="Sign in" />
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let next = crate::model::after_sign_in(query.read_untracked().get("next").as_deref());
                match session.me.await {
                    Ok(Some(_)) => view! { <Redirect path=next /> }.into_any(),
                    _ => view! { <SignInForm next=next /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignInForm(next: String) -> impl IntoView {
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
