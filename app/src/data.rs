//! The data a page loads from the server: a [`Resource`] whose value is also written into the document, so the
//! browser build hydrates with it instead of asking again.
//!
//! Every resource here goes through [`Json`], not Leptos' default codec. Both are serde_json; the default
//! reads the document's copy as `&str`, while a server function's answer is read as bytes, and serde
//! compiles every type's deserializer once per kind of reader: with both, each type the pages load was
//! deserialized by two copies of the same code in the browser build. [`Json`] reads the document's copy as
//! bytes too, and so does [`parse`] for what the pages' live streams send, so one copy serves all: 227 KB
//! less raw wasm over the browser build's files (README, `bench/page`). A resource made with Leptos'
//! `Resource::new` would bring the second copy back for its type: use [`data`].

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// serde_json, read from bytes (as server functions' answers are).
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(val: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(val)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(val: &str) -> Result<T, serde_json::Error> {
        parse(val)
    }
}

/// Parses JSON the browser received (an event of a live stream, a file the user opened) as [`Json`] does:
/// from bytes, with the same compiled deserializers as server functions' answers.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_slice(text.as_bytes())
}

/// A page's data: `fetcher` runs again whenever `source` changes.
pub type Data<T> = Resource<T, Json>;

/// [`Resource::new`] with [`Json`].
#[track_caller]
pub fn data<S, T, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Data<T>
where
    S: PartialEq + Clone + Send + Sync + 'static,
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Sample = Result<Vec<(String, Option<u32>)>, String>;

    #[test]
    fn what_json_encodes_it_decodes_and_bad_json_is_an_error() {
        let v: Sample = Ok(vec![("é\"x".into(), Some(3)), (String::new(), None)]);
        let s = <Json as Encoder<Sample>>::encode(&v).unwrap_or_default();
        let back = <Json as Decoder<Sample>>::decode(s.as_str());
        assert_eq!(back.ok(), Some(v));
        assert!(<Json as Decoder<Sample>>::decode("{\"Ok\":[").is_err());
        assert_eq!(parse::<Vec<u32>>("[1,2]").ok(), Some(vec![1, 2]));
        assert!(parse::<Vec<u32>>("[1,").is_err());
    }
}
