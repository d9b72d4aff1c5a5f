//! What one client may hold of the webhook, so that no client can hold it all: connections, time,
//! and memory for review bodies. Past a limit the client is refused at once (a closed connection, a
//! 413 or a 503) rather than left waiting: the API server then applies the webhook's failurePolicy
//! without waiting out its own timeout.
//!
//! An idle kept-alive connection is closed by hyper's header read timeout (it runs while the
//! connection waits for its next request), so it needs no limit of its own here.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A review above this size is large: it takes one of [`Limits::max_large`]'s places. A pod of
/// about 70 containers; the 10-container pod of bench/webhook is 8.6 KB.
pub const LARGE: u64 = 64 << 10;

/// The defaults, as `batonctl webhook` documents them (docs/webhook.md).
pub const MAX_CONNECTIONS: usize = 128;
/// The API server accepts bodies up to 3 MiB, and etcd stores objects up to 1.5 MiB: a review of any
/// pod that can be created fits.
pub const MAX_BODY: u64 = 3 << 20;
pub const MAX_LARGE: usize = 4;
/// deploy/'s `timeoutSeconds`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// TLS connections open at once; one more is closed as soon as it is accepted, before its
    /// handshake.
    pub max_connections: usize,
    /// The largest review body, checked against its Content-Length before any of it is read.
    pub max_body: u64,
    /// Large reviews (over [`LARGE`] bytes) being read or answered at once; one more is answered 503.
    pub max_large: usize,
    /// The longest one request may take, from its headers to its answer; the API server's own
    /// `?timeout=` shortens it.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            max_body: MAX_BODY,
            max_large: MAX_LARGE,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

impl Limits {
    /// When a request that arrived now must be answered: its `?timeout=` (the API server's
    /// `timeoutSeconds`, after which nobody waits for the answer), at most [`Self::request_timeout`].
    pub fn deadline(&self, query: Option<&str>) -> Instant {
        let asked = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("timeout="))
            .and_then(|d| baton_contract::duration::parse(d).ok());
        Instant::now() + asked.map_or(self.request_timeout, |d| d.min(self.request_timeout))
    }
}

/// The places of [`Limits::max_connections`] and [`Limits::max_large`], shared by the server's tasks.
#[derive(Debug, Clone)]
pub struct Places {
    connections: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

impl Places {
    pub fn new(limits: &Limits) -> Places {
        Places {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            large: Arc::new(Semaphore::new(limits.max_large)),
        }
    }

    /// A connection's place, held until it closes; `None` when every place is taken.
    pub fn connection(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// A large review's place, held until it is answered; `None` when every place is taken.
    pub fn large(&self) -> Option<OwnedSemaphorePermit> {
        self.large.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_the_api_servers_up_to_the_request_timeout() {
        let limits = Limits { request_timeout: Duration::from_secs(10), ..Limits::default() };
        let after = |query| limits.deadline(query) - Instant::now();
        assert_eq!(after(Some("timeout=5s")), Duration::from_secs(5));
        assert_eq!(after(Some("a=b&timeout=5s")), Duration::from_secs(5));
        assert_eq!(after(Some("timeout=30s")), Duration::from_secs(10), "a client cannot ask for more");
        assert_eq!(after(Some("timeout=junk")), Duration::from_secs(10));
        assert_eq!(after(None), Duration::from_secs(10));
    }

    #[test]
    fn places_run_out_and_come_back() {
        let places = Places::new(&Limits { max_connections: 1, max_large: 1, ..Limits::default() });
        let held = places.connection().unwrap();
        assert!(places.connection().is_none());
        drop(held);
        assert!(places.connection().is_some());
        let _large = places.large().unwrap();
        assert!(places.large().is_none());
    }
}
