//! The built browser files (`/pkg/*`: the wasm, its JS glue, the CSS), served compressed. Each file is
//! compressed once — brotli and gzip at their best levels, which would be far too slow per request — and
//! kept in memory with its ETag; a file rebuilt on disk (a new size or modification time) is compressed
//! again on its next request. Browsers revalidate (`no-cache` + ETag) and get a 304 while nothing changed.
//! The uncompressed file is not kept (3 MB for the wasm, which every browser fetches compressed): the rare
//! client that accepts neither encoding gets it read from disk.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

/// What a browser build made without `--split` imports in place of its parts: cargo-leptos' split step
/// replaces it. Left in, the browser cannot load the page's code and no page becomes interactive.
const SPLIT_PLACEHOLDER: &str = "__wasm_split_placeholder__";

/// Checks the browser build in `dir` (`<output name>.js`) before the console serves it: one made without
/// `--split` is refused with what to do. No build there (a console used through its API only): nothing to
/// check.
pub fn check_build(dir: &std::path::Path, output_name: &str) -> Result<(), String> {
    let js = dir.join(format!("{output_name}.js"));
    let Ok(text) = std::fs::read_to_string(&js) else {
        return Ok(());
    };
    if text.contains(SPLIT_PLACEHOLDER) {
        return Err(format!(
            "{} was built without --split, so no page can load its code: build the browser files again with \
             `cargo leptos build --release --split` (scripts/run does; `cargo leptos watch --split` while \
             developing)",
            js.display()
        ));
    }
    Ok(())
}

/// The files of one folder, compressed on first use.
#[derive(Clone)]
pub struct Assets {
    dir: PathBuf,
    /// One slot per file: a file is compressed once (whoever else asks for it waits for that), and a small
    /// file never waits behind a big one (the CSS behind the wasm's brotli at start).
    cache: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
}

type Slot = Arc<Mutex<Option<Arc<Entry>>>>;

struct Entry {
    modified: Option<SystemTime>,
    len: u64,
    etag: String,
    content_type: &'static str,
    gzip: bytes::Bytes,
    brotli: bytes::Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Assets {
    pub fn new(dir: PathBuf) -> Self {
        Assets {
            dir,
            cache: Arc::default(),
        }
    }

    /// Compresses every file of the folder now, smallest first, so the first browser does not wait for it.
    pub async fn warm(&self) {
        let Ok(mut dir) = tokio::fs::read_dir(&self.dir).await else {
            return;
        };
        let mut files = Vec::new();
        while let Ok(Some(e)) = dir.next_entry().await {
            if let (Some(name), Ok(meta)) = (e.file_name().to_str(), e.metadata().await) {
                files.push((meta.len(), name.to_string()));
            }
        }
        files.sort();
        for (_, name) in files {
            if let Err(e) = self.entry(&name).await {
                tracing::debug!("compressing {name}: {e:?}");
            }
        }
    }

    async fn entry(&self, name: &str) -> Result<Arc<Entry>, StatusCode> {
        // Plain file names only: no folders, no way out of the site.
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(StatusCode::NOT_FOUND);
        }
        let path = self.dir.join(name);
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|_| StatusCode::NOT_FOUND)?;
        if !meta.is_file() {
            return Err(StatusCode::NOT_FOUND);
        }
        let modified = meta.modified().ok();
        let slot = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        // One compression per file; whoever waits here finds the result in the slot.
        let mut slot = slot.lock().await;
        if let Some(e) = slot.as_ref()
            && e.modified == modified
            && e.len == meta.len()
        {
            return Ok(e.clone());
        }
        let raw = tokio::fs::read(&path)
            .await
            .map_err(|_| StatusCode::NOT_FOUND)?;
        let content_type = content_type(name);
        let entry = tokio::task::spawn_blocking(move || {
            let entry = compress(raw, modified, content_type);
            // brotli 11 worked in blocks of megabytes, freed now.
            crate::memory::release_free_memory();
            entry
        })
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        let entry = Arc::new(entry);
        *slot = Some(entry.clone());
        Ok(entry)
    }
}

fn compress(raw: Vec<u8>, modified: Option<SystemTime>, content_type: &'static str) -> Entry {
    let etag = format!("\"{}\"", hex(&Sha256::digest(&raw)[..12]));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzip = gz
        .write_all(&raw)
        .and_then(|_| gz.finish())
        .unwrap_or_default();
    let mut brotli = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    if brotli::BrotliCompress(&mut &raw[..], &mut brotli, &params).is_err() {
        brotli.clear();
    }
    Entry {
        modified,
        len: raw.len() as u64,
        etag,
        content_type,
        gzip: gzip.into(),
        brotli: brotli.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("wasm") => "application/wasm",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The best encoding the client accepts (`q=0` refuses one).
fn pick(headers: &HeaderMap) -> Encoding {
    let accept = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next()?.to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!refused).then_some(name)
        })
        .collect::<Vec<_>>();
    if accept.iter().any(|a| a == "br") {
        Encoding::Brotli
    } else if accept.iter().any(|a| a == "gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// `GET /pkg/{file}`.
pub async fn serve(
    State(assets): State<Assets>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let entry = match assets.entry(&name).await {
        Ok(e) => e,
        Err(status) => return status.into_response(),
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&entry.etag).expect("hex"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == entry.etag))
    {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(entry.content_type),
    );
    let body = match pick(&headers) {
        Encoding::Brotli if !entry.brotli.is_empty() => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            entry.brotli.clone()
        }
        Encoding::Brotli | Encoding::Gzip if !entry.gzip.is_empty() => {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            entry.gzip.clone()
        }
        _ => match tokio::fs::read(assets.dir.join(&name)).await {
            Ok(raw) => bytes::Bytes::from(raw),
            Err(_) => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    (StatusCode::OK, h, Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(v).expect("header"),
        );
        h
    }

    #[test]
    fn a_browser_build_without_its_parts_is_refused_with_what_to_do() {
        let dir = std::env::temp_dir().join(format!("meshdeck-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        assert_eq!(
            check_build(&dir, "meshdeck"),
            Ok(()),
            "no build: nothing to check"
        );
        std::fs::write(
            dir.join("meshdeck.js"),
            r#"import*as _ from"__wasm_split_placeholder__";export default init;"#,
        )
        .expect("js");
        let err = check_build(&dir, "meshdeck").expect_err("an unsplit build");
        assert!(
            err.contains("meshdeck.js") && err.contains("--split"),
            "{err}"
        );
        std::fs::write(
            dir.join("meshdeck.js"),
            r#"import{load} from"./__wasm_split.______________________.js";export default init;"#,
        )
        .expect("js");
        assert_eq!(check_build(&dir, "meshdeck"), Ok(()));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn picks_the_best_accepted_encoding() {
        assert_eq!(pick(&accept("gzip, deflate, br, zstd")), Encoding::Brotli);
        assert_eq!(pick(&accept("gzip")), Encoding::Gzip);
        assert_eq!(pick(&accept("br;q=0, gzip;q=0.8")), Encoding::Gzip);
        assert_eq!(pick(&accept("identity")), Encoding::Identity);
        assert_eq!(pick(&HeaderMap::new()), Encoding::Identity);
    }

    #[test]
    fn compressed_forms_decode_to_the_file() {
        let raw: Vec<u8> = (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let e = compress(raw.clone(), None, "application/wasm");
        assert!(e.gzip.len() < raw.len() / 2 && e.brotli.len() < raw.len() / 2);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&e.gzip[..]), &mut out)
            .expect("gzip");
        assert_eq!(out, raw);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &e.brotli[..], &mut out).expect("brotli");
        assert_eq!(out, raw);
        assert_eq!(e.etag.len(), 26);
    }

    /// A file being compressed (its slot held, as during the wasm's brotli at start) does not hold up
    /// another: the CSS is served meanwhile; the same file waits for that one compression.
    #[tokio::test]
    async fn a_file_in_compression_does_not_hold_up_another() {
        let dir = std::env::temp_dir().join(format!("meshdeck-assets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("meshdeck.css"), "body{color:red}".repeat(100)).expect("css");
        std::fs::write(dir.join("meshdeck.wasm"), [0u8; 4096]).expect("wasm");
        let assets = Assets::new(dir.clone());
        let busy: Slot = Arc::default();
        assets
            .cache
            .lock()
            .expect("cache")
            .insert("meshdeck.wasm".into(), busy.clone());
        let held = busy.lock().await;
        let css = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            assets.entry("meshdeck.css"),
        )
        .await
        .expect("the CSS waited for the wasm's compression")
        .expect("css entry");
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        let wasm = tokio::spawn({
            let assets = assets.clone();
            async move { assets.entry("meshdeck.wasm").await.map(|e| e.len) }
        });
        // Compressing 4 KiB takes far less than this: a request that did not wait would be done by now.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !wasm.is_finished(),
            "the wasm is asked for while its compression runs: it waits"
        );
        drop(held);
        assert_eq!(wasm.await.expect("task").expect("wasm entry"), 4096);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Each client gets the file in the best encoding it accepts, the same bytes once decoded; one that
    /// accepts none gets the file itself (read from disk: it is not kept in memory); a revalidation with the
    /// ETag gets a 304.
    #[tokio::test]
    async fn every_encoding_serves_the_same_file() {
        use http_body_util::BodyExt;
        let dir = std::env::temp_dir().join(format!("meshdeck-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let raw: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        std::fs::write(dir.join("meshdeck.wasm"), &raw).expect("wasm");
        let assets = Assets::new(dir.clone());
        let get = |accept_encoding: &'static str, etag: Option<String>| {
            let assets = assets.clone();
            async move {
                let mut h = accept(accept_encoding);
                if let Some(t) = etag {
                    h.insert(
                        header::IF_NONE_MATCH,
                        HeaderValue::from_str(&t).expect("etag"),
                    );
                }
                let r = serve(State(assets), Path("meshdeck.wasm".into()), h).await;
                let status = r.status();
                let encoding = r
                    .headers()
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().expect("ascii").to_string());
                let etag = r
                    .headers()
                    .get(header::ETAG)
                    .map(|v| v.to_str().expect("ascii").to_string());
                let body = r
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
                    .to_vec();
                (status, encoding, etag, body)
            }
        };
        let (status, enc, etag, body) = get("gzip, deflate, br", None).await;
        assert_eq!((status, enc.as_deref()), (StatusCode::OK, Some("br")));
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &body[..], &mut out).expect("brotli");
        assert_eq!(out, raw);
        let (status, enc, _, body) = get("gzip", None).await;
        assert_eq!((status, enc.as_deref()), (StatusCode::OK, Some("gzip")));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
            .expect("gzip");
        assert_eq!(out, raw);
        let (status, enc, _, body) = get("identity", None).await;
        assert_eq!((status, enc), (StatusCode::OK, None));
        assert_eq!(body, raw, "the file itself");
        let (status, _, _, body) = get("br", etag).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
