//! Prometheus metrics (with `prometheus-client`) and the HTTP endpoints `/metrics`,
//! `/healthz` and `/readyz` ([`serve_http`]).
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `anvil_reconciles_total` | counter | `controller`, `outcome` | reconciles by how they ended: `done`, `error` (`reconcile_error`), `failed` (the shim gave up: quorum read failed, step bound), `invalid`, `not_found`, `crashed` (crash injection) |
//! | `anvil_reconcile_errors_total` | counter | `controller`, `cause` | reconciles that failed and are retried with backoff: `cause` is `error_state` or `shim` |
//! | `anvil_reconcile_duration_seconds` | histogram | `controller` | wall time of one reconcile (quorum read to done/error) |
//! | `anvil_api_requests_total` | counter | `group`, `kind`, `verb`, `outcome` | requests of reconcilers executed by [`crate::execute`] (and the quorum reads): `verb` is the request's (`Get`, `GetThenUpdate`, ...), `outcome` is `ok` or the error reason (`NotFound`, `Conflict`, `Forbidden`, ...) |
//! | `anvil_get_then_conflict_retries_total` | counter | | `GetThen*` writes retried after a `Conflict` |
//! | `anvil_get_then_exhausted_total` | counter | | `GetThen*` requests that gave up after repeated `Conflict`s |
//! | `anvil_get_then_aborts_total` | counter | | `GetThen*` requests answered `TransactionAbort` (object not controlled by the owner) |
//! | `anvil_leader` | gauge | `controller` | 1 while this process holds the controller's leader Lease (or runs without leader election), else 0 |
//!
//! The metrics are process-wide (one registry per process, [`encode_metrics`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    group: String,
    kind: String,
    verb: String,
    outcome: String,
}

type HistogramFamily = Family<ControllerLabel, Histogram, fn() -> Histogram>;

struct Telemetry {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: HistogramFamily,
    requests: Family<RequestLabels, Counter>,
    get_then_retries: Counter,
    get_then_exhausted: Counter,
    get_then_aborts: Counter,
    leader: Family<ControllerLabel, Gauge>,
}

fn duration_histogram() -> Histogram {
    // 1 ms .. about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn telemetry() -> &'static Telemetry {
    static T: OnceLock<Telemetry> = OnceLock::new();
    T.get_or_init(|| {
        let mut registry = Registry::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "anvil_reconciles",
            "Reconciles by outcome (done, error, failed, invalid, not_found, crashed)",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "anvil_reconcile_errors",
            "Reconciles that failed and are retried with backoff (cause: error_state or shim)",
            errors.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "anvil_reconcile_duration_seconds",
            "Wall time of one reconcile",
            duration.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "anvil_api_requests",
            "Kubernetes requests of reconcilers by kind, verb and outcome (ok or the error reason)",
            requests.clone(),
        );
        let get_then_retries = Counter::default();
        registry.register(
            "anvil_get_then_conflict_retries",
            "GetThen* writes retried after a Conflict",
            get_then_retries.clone(),
        );
        let get_then_exhausted = Counter::default();
        registry.register(
            "anvil_get_then_exhausted",
            "GetThen* requests that gave up after repeated Conflicts",
            get_then_exhausted.clone(),
        );
        let get_then_aborts = Counter::default();
        registry.register(
            "anvil_get_then_aborts",
            "GetThen* requests answered TransactionAbort (not controlled by the owner)",
            get_then_aborts.clone(),
        );
        let leader = Family::<ControllerLabel, Gauge>::default();
        registry.register(
            "anvil_leader",
            "1 while this process is the controller's leader (or runs without leader election)",
            leader.clone(),
        );
        Telemetry {
            registry,
            reconciles,
            errors,
            duration,
            requests,
            get_then_retries,
            get_then_exhausted,
            get_then_aborts,
            leader,
        }
    })
}

/// The process's metrics in the Prometheus/OpenMetrics text format (what `/metrics` serves).
pub fn encode_metrics() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &telemetry().registry)
        .expect("writing to a String cannot fail");
    out
}

pub(crate) fn record_reconcile(controller: &str, outcome: &str, elapsed: Duration) {
    let t = telemetry();
    t.reconciles
        .get_or_create(&ReconcileLabels {
            controller: controller.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
    t.duration
        .get_or_create(&ControllerLabel {
            controller: controller.to_string(),
        })
        .observe(elapsed.as_secs_f64());
}

pub(crate) fn record_reconcile_error(controller: &str, cause: &str) {
    telemetry()
        .errors
        .get_or_create(&ErrorLabels {
            controller: controller.to_string(),
            cause: cause.to_string(),
        })
        .inc();
}

pub(crate) fn record_request(group: &str, kind: &str, verb: &str, outcome: &str) {
    telemetry()
        .requests
        .get_or_create(&RequestLabels {
            group: group.to_string(),
            kind: kind.to_string(),
            verb: verb.to_string(),
            outcome: outcome.to_string(),
        })
        .inc();
}

pub(crate) fn record_get_then_retry() {
    telemetry().get_then_retries.inc();
}

pub(crate) fn record_get_then_exhausted() {
    telemetry().get_then_exhausted.inc();
}

pub(crate) fn record_get_then_abort() {
    telemetry().get_then_aborts.inc();
}

pub(crate) fn set_leader(controller: &str, leader: bool) {
    telemetry()
        .leader
        .get_or_create(&ControllerLabel {
            controller: controller.to_string(),
        })
        .set(i64::from(leader));
}

/// Liveness and readiness, served on `/healthz` and `/readyz` by [`serve_http`].
///
/// `/healthz` answers 200 while the process serves HTTP. `/readyz` answers 200 while the
/// controller runs **and** can talk to the API server, and 503 with the reason otherwise:
///
/// * not started yet, or stopped ([`Health::set_ready`], [`Health::set_not_ready`]; [`crate::run`]
///   with [`crate::ShimConfig::with_health`] sets them);
/// * the API server is unreachable or failing ([`Health::api_failed`]): [`crate::run`] reports
///   requests of reconciles that fail with a transport error, a client-side timeout
///   ([`crate::ShimConfig::request_timeout`]) or a server error (500, 504), watch streams that
///   fail the same way, and its own periodic probe (a quorum `LIST` of the custom resource,
///   every [`crate::ShimConfig::probe_interval`]). The next request or probe the server
///   answers ([`Health::api_ok`]) makes it ready again. Both transitions are logged (a
///   warning when the outage starts, an info line when it ends).
#[derive(Debug)]
pub struct Health {
    ready: AtomicBool,
    reason: Mutex<String>,
    /// `Some(why)` while the API server is unreachable or failing.
    api_failure: Mutex<Option<String>>,
}

impl Health {
    /// Not ready yet ("starting").
    pub fn new() -> Arc<Health> {
        Arc::new(Health {
            ready: AtomicBool::new(false),
            reason: Mutex::new("starting".into()),
            api_failure: Mutex::new(None),
        })
    }

    /// Marks the controller ready (started); `/readyz` answers 200 unless the API server is
    /// failing.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Marks the controller not ready, with a reason for `/readyz`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.into();
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Records that talking to the API server failed (`why`: what failed and how). Logs a
    /// warning when this starts an outage.
    pub fn api_failed(&self, why: impl Into<String>) {
        let why = why.into();
        let mut failure = self.api_failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            tracing::warn!(
                error = %why,
                "the API server is unreachable or failing; not ready until it answers again"
            );
        }
        *failure = Some(why);
    }

    /// Records that the API server answered. Logs an info line when this ends an outage.
    pub fn api_ok(&self) {
        let mut failure = self.api_failure.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = failure.take() {
            tracing::info!(last_error = %why, "the API server answers again; ready");
        }
    }

    /// Whether the API server is currently considered unreachable or failing.
    pub fn api_failing(&self) -> bool {
        self.api_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.api_failing()
    }

    fn reason(&self) -> String {
        if !self.ready.load(Ordering::SeqCst) {
            return self
                .reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
        }
        match self
            .api_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
        {
            Some(why) => format!("the API server is unreachable or failing: {why}"),
            None => "ready".into(),
        }
    }
}

fn text(status: StatusCode, body: String, content_type: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

async fn handle(
    req: Request<Incoming>,
    health: Arc<Health>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            PLAIN,
        ));
    }
    Ok(match req.uri().path() {
        "/metrics" => text(
            StatusCode::OK,
            encode_metrics(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        "/healthz" => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/readyz" if health.is_ready() => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", health.reason()),
            PLAIN,
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
            PLAIN,
        ),
    })
}

/// Serves `/metrics`, `/healthz` and `/readyz` (HTTP/1.1) on `addr` in a background task
/// until the runtime shuts down. Returns the bound address (port 0 picks a free port).
pub async fn serve_http(addr: SocketAddr, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let health = health.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, health.clone()));
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics server: connection error");
                }
            });
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_encoded_with_their_labels() {
        record_reconcile("t", "done", Duration::from_millis(3));
        record_request("apps", "StatefulSet", "Get", "NotFound");
        record_reconcile_error("t", "error_state");
        let text = encode_metrics();
        assert!(
            text.contains(r#"anvil_reconciles_total{controller="t",outcome="done"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"anvil_api_requests_total{group="apps",kind="StatefulSet",verb="Get",outcome="NotFound"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"anvil_reconcile_duration_seconds_count{controller="t"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("anvil_get_then_conflict_retries_total"),
            "{text}"
        );
    }

    #[test]
    fn readiness_needs_a_started_controller_and_an_answering_api_server() {
        let h = Health::new();
        assert!(!h.is_ready());
        assert_eq!(h.reason(), "starting");
        h.set_ready();
        assert!(h.is_ready());
        h.api_failed("GET: connection refused");
        assert!(!h.is_ready());
        assert!(h.reason().contains("connection refused"), "{}", h.reason());
        h.api_failed("GET: timed out");
        assert!(h.reason().contains("timed out"), "{}", h.reason());
        h.api_ok();
        assert!(h.is_ready());
        h.set_not_ready("the controller stopped");
        h.api_failed("boom");
        assert_eq!(h.reason(), "the controller stopped");
    }
}
