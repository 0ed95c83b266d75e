//! Export of the graph (SVG, PNG, JSON) and import of a JSON export.

use leptos::prelude::*;

use super::{MAX_IMPORT, Selection};
use crate::api::topology_graph;
use crate::model::topology::Graph;

/// Reads a JSON export (a `Graph`, or `{"version", "graph"}`) and shows it instead of the live graph.
pub(super) fn import_file(
    ev: leptos::ev::Event,
    graph: RwSignal<Graph>,
    source: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
    error: RwSignal<Option<String>>,
) {
    #[cfg(feature = "hydrate")]
    {
        let Some(file) = crate::pages::chosen_file(&ev) else {
            return;
        };
        if file.size() > MAX_IMPORT as f64 {
            error.set(Some(format!(
                "{} is {} bytes; the limit is {MAX_IMPORT} bytes (64 MiB).",
                file.name(),
                file.size()
            )));
            return;
        }
        let name = file.name();
        leptos::task::spawn_local(async move {
            let text = match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(v) => v.as_string().unwrap_or_default(),
                Err(_) => {
                    error.set(Some(format!("{name} could not be read.")));
                    return;
                }
            };
            match crate::model::topology::parse_export(&text) {
                Ok(g) => {
                    selected.set(None);
                    source.set(name);
                    graph.set(g);
                    error.set(None);
                }
                Err(e) => error.set(Some(format!(
                    "{name} is not a Meshdeck topology export: {e}"
                ))),
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, graph, source, selected, error, MAX_IMPORT);
}

/// Leaves an imported file: fetches the live graph again (the stream goes on by itself).
pub(super) fn back_to_live(
    graph: RwSignal<Graph>,
    version: RwSignal<u64>,
    source: RwSignal<String>,
    selected: RwSignal<Option<Selection>>,
) {
    leptos::task::spawn_local(async move {
        if let Ok(v) = topology_graph().await {
            selected.set(None);
            graph.set(v.graph);
            version.set(v.version);
            source.set("live".into());
        }
    });
}

/// Offers `bytes` as a download named `name` (browser only).
#[cfg(feature = "hydrate")]
fn download(name: &str, href: &str) {
    use leptos::wasm_bindgen::JsCast;
    let Some(doc) = leptos::web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(a) = doc
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<leptos::web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(href);
        a.set_download(name);
        a.click();
    }
}

#[cfg(feature = "hydrate")]
fn blob_url(text: &str, mime: &str) -> Option<String> {
    let parts = leptos::web_sys::js_sys::Array::of1(&leptos::wasm_bindgen::JsValue::from_str(text));
    let opts = leptos::web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = leptos::web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).ok()?;
    leptos::web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// The graph drawing as a standalone SVG document (colours are attributes, so it keeps them).
#[cfg(feature = "hydrate")]
fn svg_text() -> Option<String> {
    let doc = leptos::web_sys::window()?.document()?;
    let svg = doc.get_element_by_id("topology-svg")?;
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
        svg.outer_html().replacen(
            "<svg ",
            "<svg style=\"color:#0f172a;background:#ffffff\" ",
            1
        )
    ))
}

pub(super) fn export_json(graph: &Graph) {
    #[cfg(feature = "hydrate")]
    if let Ok(text) = serde_json::to_string_pretty(graph)
        && let Some(url) = blob_url(&text, "application/json")
    {
        download("meshdeck-topology.json", &url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = graph;
}

pub(super) fn export_svg() {
    #[cfg(feature = "hydrate")]
    if let Some(text) = svg_text()
        && let Some(url) = blob_url(&text, "image/svg+xml")
    {
        download("meshdeck-topology.svg", &url);
    }
}

/// Draws the SVG on a canvas at twice its size and downloads it as PNG.
pub(super) fn export_png() {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        use leptos::wasm_bindgen::closure::Closure;
        let Some(text) = svg_text() else { return };
        let Some(url) = blob_url(&text, "image/svg+xml") else {
            return;
        };
        let Ok(img) = leptos::web_sys::HtmlImageElement::new() else {
            return;
        };
        let img2 = img.clone();
        let onload = Closure::once_into_js(move || {
            let Some(doc) = leptos::web_sys::window().and_then(|w| w.document()) else {
                return;
            };
            let Some(canvas) = doc
                .create_element("canvas")
                .ok()
                .and_then(|c| c.dyn_into::<leptos::web_sys::HtmlCanvasElement>().ok())
            else {
                return;
            };
            let (w, h) = (
                img2.natural_width().max(1) * 2,
                img2.natural_height().max(1) * 2,
            );
            canvas.set_width(w);
            canvas.set_height(h);
            let Some(ctx) = canvas.get_context("2d").ok().flatten().and_then(|c| {
                c.dyn_into::<leptos::web_sys::CanvasRenderingContext2d>()
                    .ok()
            }) else {
                return;
            };
            ctx.set_fill_style_str("#ffffff");
            ctx.fill_rect(0.0, 0.0, w as f64, h as f64);
            let _ = ctx.draw_image_with_html_image_element_and_dw_and_dh(
                &img2, 0.0, 0.0, w as f64, h as f64,
            );
            if let Ok(data) = canvas.to_data_url_with_type("image/png") {
                download("meshdeck-topology.png", &data);
            }
        });
        img.set_onload(Some(onload.unchecked_ref()));
        img.set_src(&url);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::topology::{Graph, TopologyView, parse_export};

    #[test]
    fn an_export_is_read_with_or_without_its_version() {
        let g = Graph::default();
        let bare = serde_json::to_string(&g).expect("json");
        assert_eq!(parse_export(&bare).expect("bare"), g);
        let wrapped = serde_json::to_string(&TopologyView {
            version: 7,
            graph: g.clone(),
        })
        .expect("json");
        assert_eq!(parse_export(&wrapped).expect("wrapped"), g);
        let err = parse_export("{\"clusters\": 3}").expect_err("not a graph");
        assert!(err.contains("invalid type"), "{err}");
        let err = parse_export("{\"clusters\": [], \"findings\": []}").expect_err("no links");
        assert!(err.contains("missing field `links`"), "{err}");
        assert!(parse_export("[1]").is_err());
    }
}
