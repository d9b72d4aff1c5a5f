//! The HTTPS server: TLS (rustls, the certificate from [`super::tls::CertFiles`]) and HTTP/1.1
//! (hyper) with two routes, `POST /mutate` and `GET /healthz`, a graceful stop, and the
//! [`super::limits`] applied: connections counted at accept, a review's size checked before it is
//! read, and the whole request bounded by its deadline.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::admission::{self, Settings, Verdict};
use super::images::{self, Resolver};
use super::limits::{Limits, Places, LARGE};
use crate::metrics::WebhookMetrics;

/// A client that has not finished its TLS handshake, or sent its request headers, by then is
/// dropped; a kept-alive connection is closed after this long without a request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two log lines about refused connections (an attack must not flood it).
const REFUSALS_EVERY: Duration = Duration::from_secs(10);
/// How long requests under way may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(15);

/// What the server answers with.
pub struct Webhook {
    pub settings: Settings,
    pub resolver: Resolver,
    pub limits: Limits,
    pub metrics: WebhookMetrics,
}

impl Webhook {
    /// The answer to one review's body, as bytes for the wire, and what was done.
    pub async fn mutate(&self, body: &[u8], budget: Duration) -> Result<(Vec<u8>, Verdict, String), String> {
        let mut request = admission::read(body)?;
        let arch = request.arch();
        let (mut images, ask) = self.resolver.known(&request.images(), &arch);
        if !ask.is_empty() {
            // Parsed, a review can take 16 times its size (`[0,0,…]`): it is read again after the
            // lookups rather than kept while they wait, which a client can make last.
            drop(request);
            self.resolver.look_up(&ask, &arch, budget, &mut images).await;
            request = admission::read(body)?;
        }
        let (response, verdict) = admission::answer(&request, &self.settings, &images);
        Ok((admission::to_wire(response), verdict, request.describe()))
    }
}

/// A listener on `addr`. On the IPv6 wildcard (`[::]`, the default) it takes IPv4 too, whatever the
/// node's `net.ipv6.bindv6only` (dual-stack and IPv6-only clusters alike); where the kernel has no
/// IPv6 at all it falls back to `0.0.0.0` on the same port, saying so.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let both = addr.ip() == std::net::Ipv6Addr::UNSPECIFIED;
    let socket = match Socket::new(Domain::for_address(addr), Type::STREAM, None) {
        Err(e) if both && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], addr.port()));
            eprintln!("batonctl webhook: this host has no IPv6: listening on {v4} instead of {addr}");
            return listen(v4);
        }
        other => other?,
    };
    if both {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Serves `listener` until `stop` completes, then finishes the requests under way (at most
/// [`DRAIN`]) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    webhook: Arc<Webhook>,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let places = Places::new(&webhook.limits);
    let mut refusals = Refusals::default();
    tokio::pin!(stop);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors, most likely: let connections close before trying again.
                    eprintln!("batonctl webhook: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Closed at once rather than left in the backlog: the client fails now, not at its timeout.
        let Some(place) = places.connection() else {
            refusals.count(webhook.limits.max_connections);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (tls, webhook, places, watcher) =
            (tls.clone(), webhook.clone(), places.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _place = place;
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |request| route(webhook.clone(), places.clone(), request));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        eprintln!("batonctl webhook: stopped with requests still under way after {} s", DRAIN.as_secs());
    }
}

/// Connections refused for want of a place, logged at most once per [`REFUSALS_EVERY`].
#[derive(Default)]
struct Refusals {
    logged: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    fn count(&mut self, max: usize) {
        self.unlogged += 1;
        if self.logged.is_some_and(|at| at.elapsed() < REFUSALS_EVERY) {
            return;
        }
        let n = std::mem::take(&mut self.unlogged);
        let s = if n == 1 { "" } else { "s" };
        eprintln!(
            "batonctl webhook: closed {n} new connection{s}: {max} are open already (--max-connections)"
        );
        self.logged = Some(Instant::now());
    }
}

async fn route(
    webhook: Arc<Webhook>,
    places: Places,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        (&Method::POST, "/mutate") => mutate(&webhook, &places, request).await,
        (_, "/healthz" | "/mutate") => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            format!("{path} takes {}\n", if path == "/mutate" { "POST" } else { "GET" }).into_bytes(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            b"not found: the webhook serves POST /mutate and GET /healthz\n".to_vec(),
        ),
    })
}

/// `POST /mutate` within the request's limits: its size checked before its body is read, a place
/// for a large one, and the deadline over the whole of it.
async fn mutate(webhook: &Webhook, places: &Places, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (response, outcome) = within_limits(webhook, places, request).await;
    webhook.metrics.admitted(outcome, started.elapsed());
    response
}

/// [`mutate`]'s answer, and its outcome for the metrics.
async fn within_limits(
    webhook: &Webhook,
    places: &Places,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, &'static str) {
    let limits = &webhook.limits;
    let deadline = limits.deadline(request.uri().query());
    let allowed = deadline.saturating_duration_since(Instant::now());
    let _place = match admit(limits, places, &request) {
        Ok(place) => place,
        Err((status, sentence)) => {
            let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "busy" };
            return (refuse(status, sentence), outcome);
        }
    };
    match tokio::time::timeout_at(deadline, answer(webhook, request, deadline)).await {
        Ok(answered) => answered,
        Err(_) => {
            let text = format!(
                "the review was not received and answered within its deadline of {} ms (the API server's \
                 timeout, at most --request-timeout): send its body at once",
                allowed.as_millis()
            );
            (refuse(StatusCode::REQUEST_TIMEOUT, text), "too_slow")
        }
    }
}

/// The place `request` may be read in (`None`: a small review needs none), or why not: a body
/// larger than `--max-body` (413), or a large one while every large place is taken (503).
fn admit(
    limits: &Limits,
    places: &Places,
    request: &Request<Incoming>,
) -> Result<Option<OwnedSemaphorePermit>, (StatusCode, String)> {
    // Without a Content-Length (chunked) the size is known only once read: such a body is large.
    let length = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = length.filter(|&n| n > limits.max_body) {
        let text = format!(
            "the review is {length} bytes, more than the webhook's --max-body of {} bytes: raise --max-body",
            limits.max_body
        );
        return Err((StatusCode::PAYLOAD_TOO_LARGE, text));
    }
    if length.is_some_and(|n| n <= LARGE) {
        return Ok(None);
    }
    places.large().map(Some).ok_or_else(|| {
        let text = format!(
            "the webhook is reading as many reviews over {} KiB as --max-large-reviews allows ({}): send it \
             again in a second, or raise --max-large-reviews",
            LARGE >> 10,
            limits.max_large
        );
        (StatusCode::SERVICE_UNAVAILABLE, text)
    })
}

/// The answer to a review read within `limits.max_body`, its lookups given what is left of
/// `deadline`.
async fn answer(
    webhook: &Webhook,
    request: Request<Incoming>,
    deadline: Instant,
) -> (Response<Full<Bytes>>, &'static str) {
    let max = webhook.limits.max_body;
    let body = match Limited::new(request.into_body(), max as usize).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            let text = format!("cannot read the review (at most {max} bytes): {e}");
            return (refuse(StatusCode::BAD_REQUEST, text), "invalid");
        }
    };
    match webhook.mutate(&body, images::budget(deadline)).await {
        Ok((wire, verdict, pod)) => {
            log(&pod, &verdict);
            (reply(StatusCode::OK, "application/json", wire), verdict.outcome())
        }
        Err(e) => {
            eprintln!("batonctl webhook: {e}");
            (reply(StatusCode::BAD_REQUEST, "application/json", admission::invalid(&e)), "invalid")
        }
    }
}

fn log(pod: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Skipped | Verdict::AlreadyInjected | Verdict::Windows => {}
        Verdict::Injected { wrapped } => {
            let s = if *wrapped == 1 { "" } else { "s" };
            eprintln!("batonctl webhook: {pod}: injected ({wrapped} container{s} wrapped)")
        }
        Verdict::Relimited { steps } => {
            let s = if *steps == 1 { "" } else { "s" };
            eprintln!("batonctl webhook: {pod}: containers added since its injection: --message-limit lowered in {steps} step{s}")
        }
        Verdict::Denied(sentence) => eprintln!("batonctl webhook: denied: {sentence}"),
        Verdict::FailedOpen(sentence) => {
            eprintln!("batonctl webhook: allowed without baton (--fail-open): {sentence}")
        }
    }
}

/// A refusal in one sentence, on a connection then closed: what is left of the body is not read.
/// A 503 (every large place taken) says to try again in a second.
fn refuse(status: StatusCode, sentence: String) -> Response<Full<Bytes>> {
    let mut response = reply(status, "text/plain", format!("{sentence}\n").into_bytes());
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ipv6_wildcard_takes_ipv4_too() {
        let listener = listen("[::]:0".parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        // The kernel completes the handshake before accept: a refused connection fails here.
        let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert!(connected.is_ok(), "{connected:?}");
        assert!(listener.accept().await.is_ok());
    }
}
