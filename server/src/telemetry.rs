//! Health, readiness and metrics: `/healthz` (the process answers), `/readyz` (the store answers and the
//! console is not stopping) and `/metrics` (Prometheus text, for a scraper bearing `MESHDECK_METRICS_TOKEN`):
//! the requests this console answered (by kind of route and status class, with a latency histogram), its
//! jobs (by state in the store, and running here), open live views, each registered cluster's watch state,
//! and the requests it sent to each cluster's API server (plain requests and watches apart).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;

/// What the health and metrics routes need.
pub(crate) type Health = (AppState, Option<std::sync::Arc<str>>);

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

pub(crate) async fn readyz(State((state, _)): State<Health>) -> (StatusCode, &'static str) {
    if state.jobs.stopping() {
        // Load balancers stop sending new work here while running jobs are handed over.
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n")
    } else if state.store.ping().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    }
}

/// Upper bounds of the answer-time histogram, in seconds.
const BUCKETS: [f64; 7] = [0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    /// Per bucket of [`BUCKETS`], not cumulative (made cumulative when written).
    buckets: [u64; BUCKETS.len()],
}

/// Answered requests, by (kind of route, status class).
static ANSWERED: Mutex<BTreeMap<(&'static str, &'static str), Series>> =
    Mutex::new(BTreeMap::new());

/// The kind of route a path is (a bounded label: never the path itself).
pub(crate) fn route_kind(path: &str) -> &'static str {
    match path {
        "/healthz" | "/readyz" | "/metrics" => "health",
        p if p.starts_with("/api/") => "api",
        p if p.starts_with("/live/") => "live",
        p if p.starts_with("/pkg/") => "files",
        p if p.starts_with("/auth/") => "auth",
        _ => "page",
    }
}

/// Counts one answered request (its head sent: for a live view, the time until the stream opened).
pub(crate) fn record(kind: &'static str, status: StatusCode, took: Duration) {
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let secs = took.as_secs_f64();
    let mut all = ANSWERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let s = all.entry((kind, class)).or_default();
    s.count += 1;
    s.sum += secs;
    if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
        s.buckets[i] += 1;
    }
}

fn write_answered(out: &mut String) {
    let all = ANSWERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    out.push_str(
        "# HELP meshdeck_http_requests_total Requests answered, by kind of route and status class.\n\
         # TYPE meshdeck_http_requests_total counter\n",
    );
    for ((kind, class), s) in &all {
        let _ = writeln!(
            out,
            "meshdeck_http_requests_total{{route=\"{kind}\",status=\"{class}\"}} {}",
            s.count
        );
    }
    out.push_str(
        "# HELP meshdeck_http_request_duration_seconds Time to answer (to the response head), by kind of route.\n\
         # TYPE meshdeck_http_request_duration_seconds histogram\n",
    );
    let mut by_kind: BTreeMap<&str, Series> = BTreeMap::new();
    for ((kind, _), s) in &all {
        let t = by_kind.entry(kind).or_default();
        t.count += s.count;
        t.sum += s.sum;
        for (a, b) in t.buckets.iter_mut().zip(s.buckets) {
            *a += b;
        }
    }
    for (kind, s) in by_kind {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(s.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "meshdeck_http_request_duration_seconds_bucket{{route=\"{kind}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "meshdeck_http_request_duration_seconds_bucket{{route=\"{kind}\",le=\"+Inf\"}} {}\n\
             meshdeck_http_request_duration_seconds_sum{{route=\"{kind}\"}} {:.6}\n\
             meshdeck_http_request_duration_seconds_count{{route=\"{kind}\"}} {}",
            s.count, s.sum, s.count
        );
    }
}

/// Prometheus metrics, for a scraper bearing `MESHDECK_METRICS_TOKEN` (off when it is not set).
pub(crate) async fn metrics(
    State((state, token)): State<Health>,
    headers: axum::http::HeaderMap,
) -> (StatusCode, String) {
    let Some(token) = token else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: set MESHDECK_METRICS_TOKEN\n".into(),
        );
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare in constant time.
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return (StatusCode::UNAUTHORIZED, "bearer token required\n".into());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP meshdeck_build_info The running console's version and commit.\n\
         # TYPE meshdeck_build_info gauge\n\
         meshdeck_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        env!("MESHDECK_COMMIT")
    );
    let _ = writeln!(
        out,
        "# HELP meshdeck_stopping 1 while this console stops (jobs being handed over).\n\
         # TYPE meshdeck_stopping gauge\n\
         meshdeck_stopping {}",
        u8::from(state.jobs.stopping())
    );
    write_answered(&mut out);
    crate::memory::write_metrics(&mut out);

    out.push_str(
        "# HELP meshdeck_jobs Jobs in the store, by state (every replica's).\n\
         # TYPE meshdeck_jobs gauge\n",
    );
    match state.store.job_counts().await {
        Ok(counts) => {
            for (job_state, n) in counts {
                let _ = writeln!(out, "meshdeck_jobs{{state=\"{job_state}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!("metrics: counting jobs: {e}"),
    }
    let _ = writeln!(
        out,
        "# HELP meshdeck_jobs_running_here Jobs this console is running now.\n\
         # TYPE meshdeck_jobs_running_here gauge\n\
         meshdeck_jobs_running_here {}\n\
         # HELP meshdeck_live_streams Live views (job, topology, portal) open on this console.\n\
         # TYPE meshdeck_live_streams gauge\n\
         meshdeck_live_streams {}",
        state.jobs.running_here(),
        state.notifier.open_streams()
    );

    let clusters = state.registry.list().await.unwrap_or_default();
    out.push_str(
        "# HELP meshdeck_cluster_watched 1 when the topology watches the cluster.\n\
         # TYPE meshdeck_cluster_watched gauge\n\
         # HELP meshdeck_cluster_reachable 1 when the cluster's watches reach its API server.\n\
         # TYPE meshdeck_cluster_reachable gauge\n",
    );
    for (record, _) in &clusters {
        let snapshot = state.topology.snapshot(&record.name);
        let _ = writeln!(
            out,
            "meshdeck_cluster_watched{{cluster=\"{0}\"}} {1}\n\
             meshdeck_cluster_reachable{{cluster=\"{0}\"}} {2}",
            record.name,
            u8::from(snapshot.is_some()),
            u8::from(snapshot.is_some_and(|s| s.unreachable.is_none()))
        );
    }
    out.push_str(
        "# HELP meshdeck_kube_requests_total Requests sent to each cluster's API server (watches apart).\n\
         # TYPE meshdeck_kube_requests_total counter\n",
    );
    for (server, requests, watches) in mesh::connect::request_counts() {
        for (record, _) in clusters.iter().filter(|(r, _)| r.server == server) {
            let _ = writeln!(
                out,
                "meshdeck_kube_requests_total{{cluster=\"{0}\",kind=\"request\"}} {requests}\n\
                 meshdeck_kube_requests_total{{cluster=\"{0}\",kind=\"watch\"}} {watches}",
                record.name
            );
        }
    }
    (StatusCode::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_grouped_into_a_few_kinds_never_by_path() {
        assert_eq!(route_kind("/api/list_clusters"), "api");
        assert_eq!(route_kind("/live/jobs/abc"), "live");
        assert_eq!(route_kind("/pkg/meshdeck.wasm"), "files");
        assert_eq!(route_kind("/readyz"), "health");
        assert_eq!(route_kind("/clusters/c1"), "page");
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_answer() {
        record("auth", StatusCode::OK, Duration::from_millis(3));
        record("auth", StatusCode::FOUND, Duration::from_millis(200));
        record("auth", StatusCode::BAD_GATEWAY, Duration::from_secs(30));
        let mut out = String::new();
        write_answered(&mut out);
        for line in [
            "meshdeck_http_requests_total{route=\"auth\",status=\"2xx\"} 1",
            "meshdeck_http_requests_total{route=\"auth\",status=\"3xx\"} 1",
            "meshdeck_http_requests_total{route=\"auth\",status=\"5xx\"} 1",
            "meshdeck_http_request_duration_seconds_bucket{route=\"auth\",le=\"0.005\"} 1",
            "meshdeck_http_request_duration_seconds_bucket{route=\"auth\",le=\"0.25\"} 2",
            "meshdeck_http_request_duration_seconds_bucket{route=\"auth\",le=\"10\"} 2",
            "meshdeck_http_request_duration_seconds_bucket{route=\"auth\",le=\"+Inf\"} 3",
            "meshdeck_http_request_duration_seconds_count{route=\"auth\"} 3",
        ] {
            assert!(out.contains(line), "{line} missing from:\n{out}");
        }
    }
}
