#![recursion_limit = "256"]
//! Meshdeck's console application: the Leptos UI (`pages`, `components`), the server functions (`api`), the
//! wire types (`model`), and — compiled with the `ssr` feature only, in this one place — the server-side
//! glue in [`ssr`] (README, architecture invariants).

pub mod api;
pub mod components;
pub mod data;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

use crate::api::{SignIn, SignOut};
use crate::model::{AppError, Me};

/// The HTML document around the app, rendered on the server. The inline script applies the saved theme
/// before the first paint (no flash of the wrong theme) and runs the theme buttons, on every page alike.
/// [`STATIC_PAGES`] come without the browser build.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The response's Content-Security-Policy allows inline scripts carrying this nonce only (the server's
    // guard makes the nonce, provides it here, and sets the header).
    let nonce = leptos::nonce::use_nonce();
    let hydrate = !is_static_page();
    // The pages' parts of the browser build are preloaded from the build's manifest (pages::split).
    provide_context(options.clone());
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <script nonce=nonce>{THEME_SCRIPT}</script>
                <AutoReload options=options.clone() />
                {hydrate.then(|| view! { <HydrationScripts options /> })}
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// The saved theme, applied before the first paint; and the theme buttons (`data-theme-toggle`, see
/// [`components::ThemeToggle`]), handled here for every page — also the pages without the browser build.
const THEME_SCRIPT: &str = "(function(){var d=document.documentElement;try{var t=localStorage.getItem('meshdeck-theme');\
if(t==='dark'||(!t&&window.matchMedia('(prefers-color-scheme: dark)').matches)){d.classList.add('dark')}}catch(e){}\
document.addEventListener('click',function(e){var b=e.target&&e.target.closest&&e.target.closest('[data-theme-toggle]');\
if(!b)return;var k=d.classList.toggle('dark');try{localStorage.setItem('meshdeck-theme',k?'dark':'light')}catch(e){}})})();";

/// Pages that are plain HTML forms and links: served without the browser build (no wasm to download, compile
/// and hydrate), so the first page anyone sees loads like a static page. Their forms post to the server and
/// the answer comes back as a redirect (`sign_in` with JavaScript off). Reached inside the console by a
/// link (after signing out), they are rendered by the browser build as any page.
pub const STATIC_PAGES: &[&str] = &["/sign-in", "/no-access"];

/// Whether the page being rendered is one of [`STATIC_PAGES`] (on the server, from the request).
fn is_static_page() -> bool {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>().is_some_and(|p| STATIC_PAGES.contains(&p.uri.path()))
    }
    #[cfg(not(feature = "ssr"))]
    {
        false
    }
}

/// Who is signed in, shared by every page; refetched after signing in or out.
#[derive(Clone, Copy)]
pub struct Session {
    pub me: crate::data::Data<Result<Option<Me>, AppError>>,
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
    let me = crate::data::data(
        move || (sign_in.version().get(), sign_out.version().get()),
        |_| api::get_me(),
    );
    provide_context(Session {
        me,
        sign_in,
        sign_out,
    });
    // While the router opens another page — its part of the browser build may still be downloading
    // (pages::split) — a bar at the top says so; a click never seems to do nothing on a slow link.
    let (routing, set_routing) = signal(false);
    view! {
        <Stylesheet id="leptos" href="/pkg/meshdeck.css" />
        <Title formatter=|t: String| if t.is_empty() { "Meshdeck".to_string() } else { format!("{t} · Meshdeck") } />
        <div
            role="progressbar"
            aria-label="Opening the page"
            data-testid="routing"
            class="fixed inset-x-0 top-0 z-50 h-1 animate-pulse bg-indigo-600 dark:bg-indigo-400"
            hidden=move || !routing.get()
        ></div>
        <Router set_is_routing=set_routing>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=path!("/") view=|| view! { <Redirect path="/clusters" /> } ssr=SsrMode::Async />
                <Route path=path!("/sign-in") view=pages::SignInPage ssr=SsrMode::Async />
                <Route path=path!("/no-access") view=pages::NoAccessPage ssr=SsrMode::Async />
                <Route path=path!("/clusters") view={Lazy::<pages::split::ClustersRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/clusters/new") view={Lazy::<pages::split::RegisterRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/clusters/:name") view={Lazy::<pages::split::ClusterRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/users") view={Lazy::<pages::split::UsersRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/team") view={Lazy::<pages::split::TeamRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/requests") view={Lazy::<pages::split::RequestsRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/teams") view={Lazy::<pages::split::TeamsRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/account") view={Lazy::<pages::split::AccountRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/setup") view={Lazy::<pages::split::SetupRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/mesh") view={Lazy::<pages::split::MeshRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/topology") view={Lazy::<pages::split::TopologyRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/checks") view={Lazy::<pages::split::ChecksRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/activity") view={Lazy::<pages::split::ActivityRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/activity/:id") view={Lazy::<pages::split::JobRoute>::new()} ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
