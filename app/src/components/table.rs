//! The one table of the list pages: a captioned, scrollable table with column headings, its rows given as
//! `<tr>` views (`TD` is the class of a plain cell), and a sentence in place of the table when there are none.

use leptos::prelude::*;

/// A plain cell.
pub const TD: &str = "px-3 py-2 align-top";
/// A cell that should not wrap (times, badges, ids).
pub const TD_NOWRAP: &str = "whitespace-nowrap px-3 py-2 align-top";
/// A cell of a column shown only on wide screens (see `DataTable`'s `wide`).
pub const TD_WIDE: &str = "hidden px-3 py-2 align-top lg:table-cell";
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
    /// Columns shown only on wide screens, named by their heading; their cells use `TD_WIDE`.
    #[prop(optional)]
    wide: Vec<&'static str>,
    /// Headings only screen readers need (an action column's), named by their text.
    #[prop(optional)]
    quiet: Vec<&'static str>,
) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="mt-2 text-sm" data-testid=testid data-empty="true">{empty}</p> }
            .into_any();
    }
    let head = head
        .into_iter()
        .map(|h| {
            let class = if wide.contains(&h) {
                "hidden px-3 py-2 lg:table-cell"
            } else {
                "px-3 py-2"
            };
            let text = if quiet.contains(&h) {
                view! { <span class="sr-only">{h}</span> }.into_any()
            } else {
                h.into_any()
            };
            view! { <th scope="col" class=class>{text}</th> }
        })
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

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    fn render(rows: Vec<AnyView>) -> String {
        let owner = Owner::new();
        owner
            .with(|| {
                view! {
                    <DataTable
                        caption="Registered clusters".to_string()
                        head=vec!["Name", "Latency", "Action"]
                        wide=vec!["Latency"]
                        quiet=vec!["Action"]
                        rows=rows
                        empty="No clusters yet."
                        testid="clusters"
                    />
                }
                .to_html()
            })
            // Type-erased views (`--cfg erase_components`, .cargo/config.toml) end each list of children with a
            // `<!>` hydration marker; what this test reads is the markup around them.
            .replace("<!>", "")
    }

    #[test]
    fn headings_are_captioned_and_wide_or_quiet_columns_say_so() {
        let row = view! {
            <tr class=TR>
                <td class=TD>"c1"</td>
                <td class=TD_WIDE>"3 ms"</td>
                <td class=TD>"Remove"</td>
            </tr>
        }
        .into_any();
        let html = render(vec![row]);
        assert!(
            html.contains(r#"<caption class="sr-only">Registered clusters</caption>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<th scope="col" class="px-3 py-2">Name</th>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<th scope="col" class="hidden px-3 py-2 lg:table-cell">Latency</th>"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<th scope="col" class="px-3 py-2"><span class="sr-only">Action</span></th>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"data-testid="clusters""#), "{html}");
        assert!(html.contains(">c1</td>"), "{html}");
    }

    #[test]
    fn no_rows_is_a_sentence_not_an_empty_table() {
        let html = render(Vec::new());
        assert!(!html.contains("<table"), "{html}");
        assert!(html.contains("No clusters yet."), "{html}");
        assert!(html.contains(r#"data-empty="true""#), "{html}");
    }
}
