#![recursion_limit = "256"]
//! Meshdeck's console application: the Leptos UI (`pages`, `components`), the server functions (`api`), the
//! wire types (`model`), and — compiled with the `ssr` feature only, in this one place — the server-side
//! glue in [`ssr`] (README, architecture invariants).

pub mod api;
pub mod components;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::api::{SignIn, SignOut};
use crate::model::{AppError, Me};

/// The HTML document around the app, rendered on the server. The inline script applies the saved theme
/// before the first paint (no flash of the wrong theme).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The response's Content-Security-Policy allows inline scripts carrying this nonce only (the server's
    // guard makes the nonce, provides it here, and sets the header).
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <script nonce=nonce>{THEME_SCRIPT}</script>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

const THEME_SCRIPT: &str = "(function(){try{var t=localStorage.getItem('meshdeck-theme');\
if(t==='dark'||(!t&&window.matchMedia('(prefers-color-scheme: dark)').matches)){document.documentElement.classList.add('dark')}}catch(e){}})();";

/// Who is signed in, shared by every page; refetched after signing in or out.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: Resource<Result<Option<Me>, AppError>>,
    pub sign_in: ServerAction<SignIn>,
    pub sign_out: ServerAction<SignOut>,
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let sign_in = ServerAction::<SignIn>::new();
    let sign_out = ServerAction::<SignOut>::new();
    let me = Resource::new(
        move || (sign_in.version().get(), sign_out.version().get()),
        |_| api::get_me(),
    );
    provide_context(Session {
        me,
        sign_in,
        sign_out,
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/meshdeck.css" />
        <Title formatter=|t: String| if t.is_empty() { "Meshdeck".to_string() } else { format!("{t} · Meshdeck") } />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/") view=|| view! { <Redirect path="/clusters" /> } ssr=SsrMode::Async />
                <Route path=path!("/sign-in") view=pages::SignInPage ssr=SsrMode::Async />
                <Route path=path!("/no-access") view=pages::NoAccessPage ssr=SsrMode::Async />
                <Route path=path!("/clusters") view=pages::ClustersPage ssr=SsrMode::Async />
                <Route path=path!("/clusters/new") view=pages::RegisterPage ssr=SsrMode::Async />
                <Route path=path!("/clusters/:name") view=pages::ClusterPage ssr=SsrMode::Async />
                <Route path=path!("/users") view=pages::UsersPage ssr=SsrMode::Async />
                <Route path=path!("/team") view=pages::TeamPage ssr=SsrMode::Async />
                <Route path=path!("/requests") view=pages::RequestsPage ssr=SsrMode::Async />
                <Route path=path!("/teams") view=pages::TeamsPage ssr=SsrMode::Async />
                <Route path=path!("/account") view=pages::AccountPage ssr=SsrMode::Async />
                <Route path=path!("/setup") view=pages::SetupPage ssr=SsrMode::Async />
                <Route path=path!("/mesh") view=pages::MeshPage ssr=SsrMode::Async />
                <Route path=path!("/topology") view=pages::TopologyPage ssr=SsrMode::Async />
                <Route path=path!("/checks") view=pages::ChecksPage ssr=SsrMode::Async />
                <Route path=path!("/activity") view=pages::ActivityPage ssr=SsrMode::Async />
                <Route path=path!("/activity/:id") view=pages::JobPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
