//! The signed-in pages as lazy routes, each in one of the browser build's **parts**: the browser loads the
//! first part (the shell, the router, the session, the sign-in page) and only the part of the page it opens.
//!
//! A part is a wasm module of its own (`cargo leptos build --split`): every split function named with the same
//! part lands in the same module, and code several parts share goes into a chunk per set of parts sharing
//! it. Leptos' `#[lazy]` gives every function a module of its own — a page then came in a couple of hundred
//! files — so the parts are named here, by who opens them:
//! - `topology`: the live graph (SREs);
//! - `setup`: the setup wizard (platform engineers, once per mesh);
//! - `operate`: clusters (the page after sign-in), mesh, checks, activity;
//! - `teams`: users, account, and the self-service portal (team, requests, teams).
//!
//! Finer parts cost more than they save: a page loads its part and every chunk it shares, and each file is
//! compressed apart. Measured (bench/page, bytes of every page with an empty cache): one part for all but the
//! topology made every page but that one 727 KB; these four made the largest 611 KB and the topology 511 KB
//! in 9 files; five parts (mesh apart) 580 KB and 526 KB in 17 files, seven 40–52 files a page (figures of
//! that day; the README has the later ones).
//! On the server a page names its part while it renders; the document then preloads that part's files (from
//! `pkg/__wasm_split_manifest.json`), so they download beside the first part, not after it.
//!
//! In any build without `hydrate` (the server, the tests) a route is a plain async call of its page.

use leptos::prelude::*;

/// Where the split build says which files each part needs (`cargo leptos build --split`).
#[cfg(feature = "ssr")]
const MANIFEST: &str = "__wasm_split_manifest.json";

/// Adds to the document's head a preload of each file `part` needs and of the loader that fetches them, so
/// the browser downloads them beside the first part. Leptos' own preloads (`prefetch_lazy_fn_on_server`) look
/// for the manifest after the page is rendered, where its context is no longer the page's: none were sent.
/// The tags come after the head's own (the stylesheet), which the browser build never walks past, so they
/// take no part in hydration. No manifest (a build without `--split`): nothing to preload.
#[cfg(feature = "ssr")]
fn preload_part(part: &str) {
    use leptos::tachys::view::RenderHtml;
    use leptos_meta::Link;

    let Some(options) = use_context::<LeptosOptions>() else {
        return;
    };
    let pkg = std::path::Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let Ok(text) = std::fs::read_to_string(pkg.join(MANIFEST)) else {
        return;
    };
    let Ok(manifest) = crate::data::parse::<std::collections::HashMap<String, Vec<String>>>(&text)
    else {
        return;
    };
    let href = |file: &str| format!("/{}/{file}", options.site_pkg_dir);
    for file in manifest.get(part).into_iter().flatten() {
        // Registered with the head's tags (leptos_meta), not written here. `crossorigin="anonymous"` is
        // the loader's `fetch` (same origin, CORS mode): a preload that differs would be fetched twice.
        _ = view! {
            <Link
                rel="preload"
                href=href(&format!("{file}.wasm"))
                as_="fetch"
                type_="application/wasm"
                crossorigin="anonymous"
            />
        }
        .to_html();
    }
    _ = view! { <Link rel="modulepreload" href=href(LOADER) /> }.to_html();
}

/// The split build's loader, which `meshdeck.js` imports (its name is fixed while file hashing is off).
#[cfg(feature = "ssr")]
const LOADER: &str = "__wasm_split.______________________.js";

/// Declares `$route`, a [`leptos_router::LazyRoute`] whose view is `$page`, compiled into the part `$part`.
/// `$load` names the split function and `$preload` the function that only loads its part (both unique in the
/// crate: the splitter tells split functions apart by their names).
///
/// The router awaits `preload` before it hydrates a route and then expects its view at once: without it the
/// view would still be loading, and hydration would meet the page's HTML where it expects a placeholder.
macro_rules! split_route {
    ($(#[$doc:meta])* $route:ident, $load:ident, $preload:ident, $part:ident, $page:expr) => {
        $(#[$doc])*
        pub struct $route;

        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_: Self) -> AnyView {
                $load().await
            }

            async fn preload() {
                #[cfg(feature = "hydrate")]
                $preload().await;
            }
        }

        #[cfg(feature = "hydrate")]
        #[leptos::wasm_split::wasm_split($part, wasm_split_path = ::leptos::wasm_split, preload($preload))]
        fn $load() -> AnyView {
            $page.into_any()
        }

        #[cfg(not(feature = "hydrate"))]
        async fn $load() -> AnyView {
            #[cfg(feature = "ssr")]
            preload_part(stringify!($part));
            $page.into_any()
        }
    };
}

split_route!(
    /// `/topology`: the live graph.
    TopologyRoute, topology_page, topology_preload, topology, view! { <super::TopologyPage /> }
);
split_route!(
    /// `/clusters`.
    ClustersRoute, clusters_page, clusters_preload, operate, view! { <super::ClustersPage /> }
);
split_route!(
    /// `/clusters/new`.
    RegisterRoute, register_page, register_preload, operate, view! { <super::RegisterPage /> }
);
split_route!(
    /// `/clusters/:name`.
    ClusterRoute, cluster_page, cluster_preload, operate, view! { <super::ClusterPage /> }
);
split_route!(
    /// `/users`.
    UsersRoute, users_page, users_preload, teams, view! { <super::UsersPage /> }
);
split_route!(
    /// `/team`.
    TeamRoute, team_page, team_preload, teams, view! { <super::TeamPage /> }
);
split_route!(
    /// `/requests`.
    RequestsRoute, requests_page, requests_preload, teams, view! { <super::RequestsPage /> }
);
split_route!(
    /// `/teams`.
    TeamsRoute, teams_page, teams_preload, teams, view! { <super::TeamsPage /> }
);
split_route!(
    /// `/account`.
    AccountRoute, account_page, account_preload, teams, view! { <super::AccountPage /> }
);
split_route!(
    /// `/setup`.
    SetupRoute, setup_page, setup_preload, setup, view! { <super::SetupPage /> }
);
split_route!(
    /// `/mesh`.
    MeshRoute, mesh_page, mesh_preload, operate, view! { <super::MeshPage /> }
);
split_route!(
    /// `/checks`.
    ChecksRoute, checks_page, checks_preload, operate, view! { <super::ChecksPage /> }
);
split_route!(
    /// `/activity`.
    ActivityRoute, activity_page, activity_preload, operate, view! { <super::ActivityPage /> }
);
split_route!(
    /// `/activity/:id`.
    JobRoute, job_page, job_preload, operate, view! { <super::JobPage /> }
);
