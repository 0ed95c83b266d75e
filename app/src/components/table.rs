//! The one table of the list pages: a captioned, scrollable table with column headings, its rows given as
//! `<tr>` views (`TD` is the class of a plain cell), and a sentence in place of the table when there are none.

use leptos::prelude::*;

/// A plain cell.
pub const TD: &str = "px-3 py-2 align-top";
/// A cell that should not wrap (times, badges, ids).
pub const TD_NOWRAP: &str = "whitespace-nowrap px-3 py-2 align-top";
/// A row.
pub const TR: &str = "border-t border-slate-200 dark:border-slate-800";

#[component]
pub fn DataTable(
    /// What the table lists (its caption, read by screen readers).
    caption: String,
    /// The column headings.
    head: Vec<&'static str>,
    /// The rows, each a `<tr>`.
    rows: Vec<AnyView>,
    /// Said instead of an empty table.
    #[prop(into)]
    empty: String,
    #[prop(optional)] testid: &'static str,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="mt-2 text-sm" data-testid=testid data-empty="true">{empty}</p> }
            .into_any();
    }
    let head = head
        .into_iter()
        .map(|h| view! { <th scope="col" class="px-3 py-2">{h}</th> })
        .collect_view();
    view! {
        <div class="mt-2 overflow-x-auto rounded border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
            <table class="w-full text-left" data-testid=testid>
                <caption class="sr-only">{caption}</caption>
                <thead class="bg-slate-100 text-sm dark:bg-slate-800">
                    <tr>{head}</tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
