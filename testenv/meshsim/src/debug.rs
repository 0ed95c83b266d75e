//! istiod's monitoring port (15014) as `istioctl multicluster check` reaches it through a port-forward
//! (mesh-spec.md §3 check 2, §9 P17): `GET /debug/license` answers `{"State": …, "Product": …}` for the
//! license istiod runs with. kwok forwards port 15014 of the cluster's pods to this listener (testenv/up).
//! Istio before 1.27 has no such endpoint and answers 404.

use std::sync::Arc;

use kube::ResourceExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::Cluster;
use crate::operator;

pub async fn serve(cluster: Arc<Cluster>, port: u16) {
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(cluster = %cluster.name, "cannot listen on 127.0.0.1:{port} for istiod's debug endpoint: {e}");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(&cluster, stream).await {
                tracing::debug!(cluster = %cluster.name, "debug endpoint: {e}");
            }
        });
    }
}

/// The answer of istiod's `/debug/license` for this cluster: (HTTP status, body).
pub fn license_answer(cluster: &Cluster) -> (u16, String) {
    let Some(istiod) = cluster
        .deployments
        .state()
        .into_iter()
        .find(|d| d.labels().get("app").map(String::as_str) == Some("istiod"))
    else {
        return (503, "istiod is not running\n".into());
    };
    let image = istiod
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let tag = image.rsplit(':').next().unwrap_or_default();
    let minor: Option<u32> = tag.split('.').nth(1).and_then(|m| m.parse().ok());
    if tag.starts_with("1.") && minor.is_some_and(|m| m < 27) {
        return (404, "404 page not found\n".into());
    }
    let env = operator::container_env(&istiod, "discovery");
    let has_key = env
        .get("SOLO_LICENSE_KEY")
        .is_some_and(|k| !k.trim().is_empty())
        || env.contains_key("SOLO_LICENSE_SECRET");
    let state = if !has_key {
        "MISSING"
    } else if !operator::license_valid(cluster, &istiod) {
        "INVALID"
    } else {
        "OK"
    };
    let body = json!({
        "State": state,
        "Product": if state == "OK" { "GlooMesh" } else { "" },
        "Features": if state == "OK" { vec!["MultiCluster", "FIPS", "LTS"] } else { vec![] },
    });
    (200, format!("{body}\n"))
}

async fn handle(cluster: &Cluster, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut read = 0;
    // Read the request head (a GET without a body).
    while read < buf.len() {
        let n = stream.read(&mut buf[read..]).await?;
        if n == 0 {
            break;
        }
        read += n;
        if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..read]);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, body, ctype) = match path.split('?').next().unwrap_or_default() {
        "/debug/license" => {
            let (s, b) = license_answer(cluster);
            (
                s,
                b,
                if s == 200 {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
        }
        "/ready" => (200, String::new(), "text/plain"),
        _ => (404, "404 page not found\n".to_string(), "text/plain"),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
