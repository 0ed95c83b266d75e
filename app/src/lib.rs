//! Meshdeck's console application. The server-only glue lives in [`ssr`], compiled with the `ssr` feature
//! only, in this one place (README, architecture invariants). The Leptos UI and server functions join here.

#[cfg(feature = "ssr")]
pub mod ssr;
