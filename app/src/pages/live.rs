//! Following a live stream of the server (Server-Sent Events) while a page shows it, in the browser: each
//! named event's data goes to its handler; `live` says whether the stream is open. Closed when the page
//! goes away.

use leptos::prelude::*;

/// A named event and what to do with its data.
pub type Handler = (&'static str, Box<dyn FnMut(String)>);

pub fn listen(url: &str, handlers: Vec<Handler>, live: RwSignal<bool>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(source) = web_sys::EventSource::new(url) else {
        return;
    };
    let mut kept = vec![];
    for (name, mut handle) in handlers {
        let on =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    live.set(true);
                    handle(text);
                }
            });
        let _ = source.add_event_listener_with_callback(name, on.as_ref().unchecked_ref());
        kept.push(on);
    }
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| live.set(false));
    source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let kept = StoredValue::new_local((source, kept, on_error));
    on_cleanup(move || {
        kept.try_with_value(|(source, _, _)| source.close());
    });
}
