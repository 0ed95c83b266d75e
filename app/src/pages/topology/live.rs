//! The page's live stream.

use leptos::prelude::*;

use crate::model::topology::{Graph, TopologyView};

/// Follows `/live/topology` while the page is open: the whole graph first, then updates (browser only).
/// Ignored while an imported file is shown.
pub(super) fn follow(
    graph: RwSignal<Graph>,
    version: RwSignal<u64>,
    live: RwSignal<bool>,
    source: RwSignal<String>,
) {
    use crate::model::topology::GraphUpdate;
    use leptos::wasm_bindgen::JsCast;
    use leptos::wasm_bindgen::closure::Closure;

    #[derive(serde::Deserialize)]
    struct Update {
        version: u64,
        update: GraphUpdate,
    }

    let Ok(es) = leptos::web_sys::EventSource::new("/live/topology") else {
        return;
    };
    let on_graph = Closure::<dyn FnMut(leptos::web_sys::MessageEvent)>::new(
        move |ev: leptos::web_sys::MessageEvent| {
            live.set(true);
            let Some(text) = ev.data().as_string() else {
                return;
            };
            if let Ok(v) = crate::data::parse::<TopologyView>(&text)
                && source.get_untracked() == "live"
            {
                graph.set(v.graph);
                version.set(v.version);
            }
        },
    );
    let on_update = Closure::<dyn FnMut(leptos::web_sys::MessageEvent)>::new(
        move |ev: leptos::web_sys::MessageEvent| {
            live.set(true);
            let Some(text) = ev.data().as_string() else {
                return;
            };
            if let Ok(u) = crate::data::parse::<Update>(&text)
                && source.get_untracked() == "live"
            {
                graph.update(|g| mesh_ids::graph::apply(g, u.update));
                version.set(u.version);
            }
        },
    );
    let on_open = Closure::<dyn FnMut(leptos::web_sys::Event)>::new(move |_| live.set(true));
    let on_error = Closure::<dyn FnMut(leptos::web_sys::Event)>::new(move |_| live.set(false));
    let _ = es.add_event_listener_with_callback("graph", on_graph.as_ref().unchecked_ref());
    let _ = es.add_event_listener_with_callback("update", on_update.as_ref().unchecked_ref());
    es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let kept = StoredValue::new_local((es, on_graph, on_update, on_open, on_error));
    on_cleanup(move || {
        kept.try_with_value(|(es, ..)| es.close());
    });
}
