//! Prometheus metrics of `batonctl webhook` and `batonctl watch`, served as text on a port of their
//! own (`--metrics-listen`), apart from the webhook's TLS port and from the API server's reach.
//!
//! Names follow Prometheus' conventions: the `batonctl_` prefix, `_total` on counters (the
//! `prometheus-client` crate adds it), base units in the name (`_seconds`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// One label, `outcome` or `result`, on a counter family.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// The webhook's metrics.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    /// Admissions answered, by outcome: injected, already_injected, skipped, windows, denied,
    /// failed_open, and the refusals of the limits (too_large, too_slow, busy).
    pub admissions: Family<Outcome, Counter>,
    /// From the request's headers to the answer's last byte handed to the connection.
    pub duration: Histogram,
    /// Image configs by where they came from: cached (kept from an earlier pod), fetched (a
    /// registry answered), failed (a registry failed or did not answer in time).
    pub lookups: Family<ResultLabel, Counter>,
}

impl WebhookMetrics {
    /// The metrics, registered in `registry`.
    pub fn new(registry: &mut Registry) -> WebhookMetrics {
        let metrics = WebhookMetrics {
            admissions: Family::default(),
            // 0.5 ms to about 8 s: a cached admission is under a millisecond, a registry lookup can
            // take the whole deadline.
            duration: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            lookups: Family::default(),
        };
        registry.register(
            "batonctl_webhook_admissions",
            "Admission reviews answered, by outcome",
            metrics.admissions.clone(),
        );
        registry.register(
            "batonctl_webhook_admission_duration_seconds",
            "Time to answer an admission review",
            metrics.duration.clone(),
        );
        registry.register(
            "batonctl_webhook_image_lookups",
            "Image configs needed by admissions, by where they came from (cached, fetched, failed)",
            metrics.lookups.clone(),
        );
        metrics
    }

    pub fn admitted(&self, outcome: &'static str, took: Duration) {
        self.admissions.get_or_create(&Outcome { outcome }).inc();
        self.duration.observe(took.as_secs_f64());
    }

    pub fn looked_up(&self, result: &'static str) {
        self.lookups.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The watcher's metrics.
#[derive(Clone, Debug, Default)]
pub struct WatchMetrics {
    /// Pods the watcher holds a status for now.
    pub pods: Gauge,
    /// Run-status annotations written, by result: written, failed (each failure is retried).
    pub patches: Family<ResultLabel, Counter>,
    /// Step events, by result: recorded, failed.
    pub events: Family<ResultLabel, Counter>,
    /// Times the watch stream failed and was started again (kube's backoff; a relist follows).
    pub restarts: Counter,
    /// Pod updates (watch events, relists included) the watcher handled.
    pub updates: Counter,
    /// Writes waiting for a place or for the client-side rate limit.
    pub queued: Gauge,
}

impl WatchMetrics {
    pub fn new(registry: &mut Registry) -> WatchMetrics {
        let metrics = WatchMetrics::default();
        registry.register(
            "batonctl_watch_pods",
            "Pods whose run status the watcher holds",
            metrics.pods.clone(),
        );
        registry.register(
            "batonctl_watch_patches",
            "Run-status annotations written, by result (written, failed)",
            metrics.patches.clone(),
        );
        registry.register(
            "batonctl_watch_events",
            "Step events, by result (recorded, failed)",
            metrics.events.clone(),
        );
        registry.register(
            "batonctl_watch_restarts",
            "Times the pod watch failed and was started again",
            metrics.restarts.clone(),
        );
        registry.register(
            "batonctl_watch_updates",
            "Pod updates (watch events, relists included) the watcher handled",
            metrics.updates.clone(),
        );
        registry.register(
            "batonctl_watch_queued_writes",
            "Writes waiting for a place (--concurrent-writes) or the rate limit (--kube-api-qps)",
            metrics.queued.clone(),
        );
        metrics
    }

    pub fn patched(&self, result: &'static str) {
        self.patches.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn evented(&self, result: &'static str) {
        self.events.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, registry);
    text
}

/// Serves `GET /metrics` (plain HTTP) on `address`, in a task of its own for as long as the process
/// runs; `who` (`batonctl watch`, `batonctl webhook`) says so on stderr. An address that cannot be
/// had is one sentence.
pub async fn start(address: SocketAddr, registry: Registry, who: &str) -> Result<(), String> {
    let listener = TcpListener::bind(address).await.map_err(|e| {
        format!("cannot listen on {address} for the metrics: {e}; pass another --metrics-listen")
    })?;
    eprintln!("{who}: metrics on http://{address}/metrics");
    tokio::spawn(serve(listener, Arc::new(registry)));
    Ok(())
}

async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let registry = Arc::clone(&registry);
                async move { Ok::<_, Infallible>(answer(&request, &registry)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
        });
    }
}

fn answer(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, render(registry)),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "use GET\n".to_string()),
        _ => (StatusCode::NOT_FOUND, "the metrics are at /metrics\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_metric_with_its_conventional_suffix() {
        let mut registry = Registry::default();
        let webhook = WebhookMetrics::new(&mut registry);
        let watch = WatchMetrics::new(&mut registry);
        webhook.admitted("injected", Duration::from_millis(2));
        webhook.looked_up("cached");
        watch.patched("written");
        watch.pods.set(3);
        let text = render(&registry);
        for line in [
            "batonctl_webhook_admissions_total{outcome=\"injected\"} 1",
            "batonctl_webhook_admission_duration_seconds_count 1",
            "batonctl_webhook_image_lookups_total{result=\"cached\"} 1",
            "batonctl_watch_patches_total{result=\"written\"} 1",
            "batonctl_watch_pods 3",
            "batonctl_watch_restarts_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} is missing from:\n{text}");
        }
    }
}
