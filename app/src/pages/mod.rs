//! The console's pages, one module per area.

mod account;
mod activity;
mod answers;
mod checks;
mod cluster_access;
mod cluster_drift;
mod clusters;
#[cfg(feature = "hydrate")]
pub(crate) mod live;
mod mesh;
mod mesh_settings;
mod mesh_take_apart;
mod mesh_trust;
mod mesh_upgrade;
mod operator_charts;
mod plan_review;
mod portal;
mod register;
mod setup;
mod setup_link;
mod setup_settings;
mod setup_trust;
mod sign_in;
pub mod split;
mod topology;
mod users;
mod users_sso;

pub use account::AccountPage;
pub use activity::{ActivityPage, JobPage, StateBadge};
pub use checks::{CheckBadge, ChecksPage};
pub use clusters::{ClusterPage, ClustersPage};
pub use mesh::MeshPage;
pub use portal::{RequestsPage, TeamPage, TeamsPage};
pub use register::RegisterPage;
pub use setup::SetupPage;
pub use sign_in::{NoAccessPage, SignInPage};
pub use topology::TopologyPage;
pub use users::UsersPage;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::Gate;
use crate::model::Role;

/// The file chosen in the file input `ev` came from, if any.
pub(crate) fn chosen_file(ev: &leptos::ev::Event) -> Option<leptos::web_sys::File> {
    use leptos::wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlInputElement>().ok())?
        .files()?
        .get(0)
}

/// Reads the file chosen in a file input into `text`, refusing one over `max` bytes (`limit` says the limit
/// in words, e.g. "1 MiB"); what went wrong goes to `error`, which a successful read clears.
pub(crate) fn read_chosen_file(
    ev: leptos::ev::Event,
    max: usize,
    limit: &'static str,
    text: RwSignal<String>,
    error: RwSignal<Option<String>>,
) {
    let Some(file) = chosen_file(&ev) else {
        return;
    };
    if file.size() > max as f64 {
        error.set(Some(format!(
            "{} is {} bytes; the limit is {max} bytes ({limit}).",
            file.name(),
            file.size()
        )));
        return;
    }
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(v) => {
                text.set(v.as_string().unwrap_or_default());
                error.set(None);
            }
            Err(_) => error.set(Some("The file could not be read.".into())),
        }
    });
}

/// Percent-encodes a query parameter value.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// True when the signed-in user has at least `role` (for showing actions; the server checks again).
pub fn allowed(role: Role) -> impl Fn() -> bool + Copy + Send + Sync + 'static {
    let session = crate::use_session();
    move || matches!(session.me.get(), Some(Ok(Some(me))) if me.role >= role)
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <main class="mx-auto max-w-lg p-8">
            <h1 class="text-2xl font-bold">"Page not found"</h1>
            <p class="mt-2">
                <a class="text-indigo-600 underline dark:text-indigo-400" href="/clusters">
                    "Go to the clusters"
                </a>
            </p>
        </main>
    }
}

/// An area of the console that is not built yet. Says so plainly instead of showing made-up content.
#[component]
pub fn NotYet(area: &'static str) -> impl IntoView {
    view! {
        <Gate title=area>
            <h1 class="text-2xl font-bold">{area}</h1>
            <p class="mt-3 max-w-prose">
                {format!(
                    "{area} is not part of this version of Meshdeck yet. Register and test clusters under Clusters meanwhile.",
                )}
            </p>
        </Gate>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::encode_query("/clusters/c1"), "/clusters/c1");
        assert_eq!(super::encode_query("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(super::encode_query("é"), "%C3%A9");
    }
}
