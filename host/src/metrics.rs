//! Process-wide Prometheus metrics: API requests, sync runs, connector
//! calls, vendor responses, rate-limit waits and the list cache. One
//! registry for the process (a scrape describes the process, not one
//! server); the recording functions are one line at each place that counts.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::runtime::CallError;
use crate::store::runs::RunRow;
use crate::sync::SyncError;

/// The media type of the OpenMetrics text format (Prometheus reads it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Change {
    change: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    connector: String,
    op: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: u16,
}

type Latency = Family<Route, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Latency,
    sync_runs: Family<Outcome, Counter>,
    sync_records: Family<Change, Counter>,
    calls: Family<Call, Counter>,
    vendor_responses: Family<Status, Counter>,
    vendor_waits: Counter,
    pages_read_ahead: Counter,
    webhook_attempts: Family<Outcome, Counter>,
    list_cache_reads: Family<Outcome, Counter>,
    list_cache_bytes: Gauge,
}

fn latency_histogram() -> Histogram {
    // 5 ms to about 40 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("mdmhub");
    let m = Metrics {
        requests: Family::default(),
        latency: Latency::new_with_constructor(latency_histogram),
        sync_runs: Family::default(),
        sync_records: Family::default(),
        calls: Family::default(),
        vendor_responses: Family::default(),
        vendor_waits: Counter::default(),
        pages_read_ahead: Counter::default(),
        webhook_attempts: Family::default(),
        list_cache_reads: Family::default(),
        list_cache_bytes: Gauge::default(),
        registry: Registry::default(),
    };
    registry.register(
        "api_requests",
        "API requests by route and status",
        m.requests.clone(),
    );
    registry.register(
        "api_request_duration_seconds",
        "API request latency by route",
        m.latency.clone(),
    );
    registry.register(
        "sync_runs",
        "Sync runs by outcome (succeeded, failed, skipped, error)",
        m.sync_runs.clone(),
    );
    registry.register(
        "sync_records",
        "Records finished sync runs counted, by change",
        m.sync_records.clone(),
    );
    registry.register(
        "connector_calls",
        "Connector calls by connector, operation and outcome (ok, error, trap, timeout, invalid_output)",
        m.calls.clone(),
    );
    registry.register(
        "vendor_http_responses",
        "Vendor HTTP responses by status",
        m.vendor_responses.clone(),
    );
    registry.register(
        "vendor_rate_limit_waits",
        "Waits a vendor asked for (429/503 with Retry-After or backoff)",
        m.vendor_waits.clone(),
    );
    registry.register(
        "vendor_pages_read_ahead",
        "Listing pages a guest took from the host's read-ahead",
        m.pages_read_ahead.clone(),
    );
    registry.register(
        "webhook_attempts",
        "Webhook delivery attempts by outcome (delivered, retrying, failed, disabled)",
        m.webhook_attempts.clone(),
    );
    registry.register(
        "list_cache_reads",
        "Records API lists looked up in the list cache, by outcome (hit, miss)",
        m.list_cache_reads.clone(),
    );
    registry.register(
        "list_cache_bytes",
        "Bytes the list cache holds",
        m.list_cache_bytes.clone(),
    );
    Metrics { registry, ..m }
});

/// Counts a list page's cache lookups and notes the cache's size.
pub fn list_cache(hits: usize, misses: usize, bytes: u64) {
    let reads = &METRICS.list_cache_reads;
    reads
        .get_or_create(&Outcome { outcome: "hit" })
        .inc_by(hits as u64);
    reads
        .get_or_create(&Outcome { outcome: "miss" })
        .inc_by(misses as u64);
    METRICS
        .list_cache_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// Counts a webhook delivery attempt by its outcome.
pub fn webhook_delivery(outcome: &'static str) {
    METRICS
        .webhook_attempts
        .get_or_create(&Outcome { outcome })
        .inc();
}

/// Counts an API request to `route` (its template) and its latency.
pub fn api_request(method: &str, route: &str, status: u16, took: Duration) {
    let m = &*METRICS;
    let (method, route) = (method.to_owned(), route.to_owned());
    m.latency
        .get_or_create(&Route {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(took.as_secs_f64());
    m.requests
        .get_or_create(&Request {
            method,
            route,
            status,
        })
        .inc();
}

/// Counts a finished (or refused) sync and what it counted.
pub fn sync_finished(result: &Result<RunRow, SyncError>) {
    let m = &*METRICS;
    let outcome = match result {
        Ok(run) if run.status == "succeeded" => "succeeded",
        Ok(_) => "failed",
        Err(SyncError::AlreadyRunning { .. } | SyncError::NotDue(_)) => "skipped",
        Err(_) => "error",
    };
    m.sync_runs.get_or_create(&Outcome { outcome }).inc();
    let Ok(run) = result else { return };
    let c = &run.counts;
    for (change, n) in [
        ("created", c.created),
        ("updated", c.updated),
        ("unchanged", c.unchanged),
        ("removed", c.removed),
        ("errors", c.errors),
        ("details", c.details),
        ("rate_limit_waits", c.rate_limit_waits),
    ] {
        m.sync_records
            .get_or_create(&Change { change })
            .inc_by(n.max(0) as u64);
    }
}

/// Counts a connector call by its outcome.
pub fn connector_call(connector: &str, op: &'static str, error: Option<&CallError>) {
    let outcome = match error {
        None => "ok",
        Some(CallError::Connector(_)) => "error",
        Some(CallError::Trap(_)) => "trap",
        Some(CallError::Timeout(_)) => "timeout",
        Some(CallError::InvalidOutput(_)) => "invalid_output",
    };
    let call = Call {
        connector: connector.to_owned(),
        op,
        outcome,
    };
    METRICS.calls.get_or_create(&call).inc();
}

/// Counts a vendor HTTP response.
pub fn vendor_response(status: u16) {
    METRICS
        .vendor_responses
        .get_or_create(&Status { status })
        .inc();
}

/// Counts a wait the vendor asked for.
pub fn vendor_wait() {
    METRICS.vendor_waits.inc();
}

/// Counts a listing page a guest took from the read-ahead.
pub fn page_read_ahead() {
    METRICS.pages_read_ahead.inc();
}

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &METRICS.registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_series_recorded() {
        api_request("GET", "/v1/devices", 200, Duration::from_millis(3));
        vendor_response(429);
        connector_call("iru", "get", Some(&CallError::Trap("x".into())));
        let text = render();
        assert!(text.contains(
            "mdmhub_api_requests_total{method=\"GET\",route=\"/v1/devices\",status=\"200\"}"
        ));
        assert!(text.contains("mdmhub_api_request_duration_seconds_bucket"));
        assert!(text.contains("mdmhub_vendor_http_responses_total{status=\"429\"}"));
        assert!(text.contains("outcome=\"trap\""));
        assert!(text.ends_with("# EOF\n"));
    }
}
