//! The HTTPS server: TLS (rustls, the certificate from [`super::tls::CertFiles`]) and HTTP/1.1
//! (hyper) with two routes, `POST /mutate` and `GET /healthz`, and a graceful stop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::admission::{self, Settings, Verdict};
use super::images::{self, Resolver};

/// The largest review read: a Pod is at most 1.5 MiB in etcd, and a review carries it once on CREATE.
const MAX_BODY: usize = 4 << 20;
/// A client that has not finished its TLS handshake, or sent its request headers, by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests under way may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(15);

/// What the server answers with.
pub struct Webhook {
    pub settings: Settings,
    pub resolver: Resolver,
}

impl Webhook {
    /// The answer to one review's body, as bytes for the wire, and what was done.
    pub async fn mutate(&self, body: &[u8], budget: Duration) -> Result<(Vec<u8>, Verdict, String), String> {
        let request = admission::read(body)?;
        let images = self.resolver.resolve(&request.images(), budget).await;
        let (response, verdict) = admission::answer(&request, &self.settings, &images);
        Ok((admission::to_wire(response), verdict, request.describe()))
    }
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
        let _ = tcp.set_nodelay(true);
        let (tls, webhook, watcher) = (tls.clone(), webhook.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| route(webhook.clone(), request));
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

async fn route(
    webhook: Arc<Webhook>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        (&Method::POST, "/mutate") => mutate(&webhook, request).await,
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

async fn mutate(webhook: &Webhook, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let budget = images::budget(request.uri().query());
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            let text = format!("cannot read the request body (at most {} MiB): {e}\n", MAX_BODY >> 20);
            return reply(StatusCode::BAD_REQUEST, "text/plain", text.into_bytes());
        }
    };
    match webhook.mutate(&body, budget).await {
        Ok((wire, verdict, pod)) => {
            log(&pod, &verdict);
            reply(StatusCode::OK, "application/json", wire)
        }
        Err(e) => {
            eprintln!("batonctl webhook: {e}");
            reply(StatusCode::BAD_REQUEST, "application/json", admission::invalid(&e))
        }
    }
}

fn log(pod: &str, verdict: &Verdict) {
    match verdict {
        Verdict::Skipped | Verdict::AlreadyInjected => {}
        Verdict::Injected { wrapped } => {
            let s = if *wrapped == 1 { "" } else { "s" };
            eprintln!("batonctl webhook: {pod}: injected ({wrapped} container{s} wrapped)")
        }
        Verdict::Denied(sentence) => eprintln!("batonctl webhook: denied: {sentence}"),
        Verdict::FailedOpen(sentence) => {
            eprintln!("batonctl webhook: allowed without baton (--fail-open): {sentence}")
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
