use leptos::prelude::*;

use crate::api::ChangePassword;
use crate::components::{BUTTON, ErrorBox, Gate, INPUT, ThemeToggle, field_error};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let error = move || change.value().get().and_then(Result::err);
    view! {
        <Gate title="Account">
            <h1 class="text-2xl font-bold">"Account"</h1>
            <section class="mt-4 max-w-md rounded border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
                <h2 class="text-lg font-semibold">"Change your password"</h2>
                <ActionForm action=change attr:class="mt-3 space-y-3">
                    <label class="block">
                        <span class="text-sm font-medium">"Current password"</span>
                        <input class=INPUT type="password" name="current" required autocomplete="current-password" />
                        {field_error(error, "current")}
                    </label>
                    <label class="block">
                        <span class="text-sm font-medium">"New password (12+ characters)"</span>
                        <input class=INPUT type="password" name="new" required autocomplete="new-password" />
                        {field_error(error, "new")}
                    </label>
                    <button type="submit" class=BUTTON>"Change password"</button>
                </ActionForm>
                {move || error().filter(|e| e.for_field("current").is_none() && e.for_field("new").is_none()).map(|e| view! { <ErrorBox error=e /> })}
                {move || matches!(change.value().get(), Some(Ok(()))).then(|| view! { <p class="mt-2" role="status">"✓ Password changed."</p> })}
            </section>
            <section class="mt-4">
                <h2 class="text-lg font-semibold">"Theme"</h2>
                <p class="mt-1">"Light or dark, kept in this browser."</p>
                <div class="mt-2"><ThemeToggle /></div>
            </section>
        </Gate>
    }
}
