//! Image-config lookups shared by concurrent admissions. A Job with `parallelism: 500` creates 500
//! pods at once, each naming the same images: their lookups must reach the registry once, not 500
//! times (the webhook's replica would be its own denial of service, and the registry's rate limit
//! would deny the rest). So, per image and platform:
//!
//! - one lookup in flight: the callers that come while it runs wait for its answer. When the caller
//!   that started it gives up (its request's deadline), the next waiting caller takes over;
//! - its answer kept: a config for [`KEEP_CONFIG`] (a tag may move, but not every second), a failure
//!   for [`KEEP_FAILURE`] only (a registry that was down or refused comes back soon, and an image
//!   pushed a moment later must not wait long).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_inject::ImageConfig;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::RegistryError;

/// How long a config read from a registry is reused.
pub const KEEP_CONFIG: Duration = Duration::from_secs(300);
/// How long a failed lookup is answered from memory before the registry is asked again.
pub const KEEP_FAILURE: Duration = Duration::from_secs(30);
/// The most images kept; past that, expired answers are dropped, then every finished one.
pub const MAX_KEPT: usize = 4096;

/// One lookup's answer.
pub type Answer = Result<ImageConfig, RegistryError>;

/// What a lookup is for: the image as the pod names it, and the architecture of its nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub image: String,
    pub arch: String,
}

/// An answer and when it came.
struct Kept {
    at: Instant,
    answer: Answer,
}

impl Kept {
    fn fresh(&self) -> bool {
        let keep = if self.answer.is_ok() { KEEP_CONFIG } else { KEEP_FAILURE };
        self.at.elapsed() < keep
    }
}

/// Lookups by [`Key`]: one in flight each, answers kept a while.
#[derive(Default)]
pub struct SharedLookups {
    entries: Mutex<HashMap<Key, Arc<OnceCell<Kept>>>>,
}

impl SharedLookups {
    /// The kept answer for `key`, when there is a fresh one (no waiting, no lookup).
    pub fn kept(&self, key: &Key) -> Option<Answer> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key)?.get().filter(|k| k.fresh()).map(|k| k.answer.clone())
    }

    /// The answer for `key`: kept, or that of the lookup in flight, or `look_up()`'s, started here.
    pub async fn get<F, Fut>(&self, key: &Key, look_up: F) -> Answer
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Answer>,
    {
        let cell = self.cell(key);
        let kept = cell.get_or_init(|| async { Kept { answer: look_up().await, at: Instant::now() } }).await;
        kept.answer.clone()
    }

    /// The cell of `key`: the one there, unless its answer is stale (then a new one).
    fn cell(&self, key: &Key) -> Arc<OnceCell<Kept>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cell) = entries.get(key).filter(|c| c.get().is_none_or(Kept::fresh)) {
            return cell.clone();
        }
        if entries.len() >= MAX_KEPT {
            entries.retain(|_, c| c.get().is_none_or(Kept::fresh));
            if entries.len() >= MAX_KEPT {
                entries.retain(|_, c| c.get().is_none());
            }
        }
        let cell = Arc::new(OnceCell::new());
        entries.insert(key.clone(), cell.clone());
        cell
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn key(image: &str, arch: &str) -> Key {
        Key { image: image.to_string(), arch: arch.to_string() }
    }

    /// A registry that counts its lookups, each taking a second (of tokio's paused clock).
    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
    }

    impl Counting {
        async fn look_up(&self, answer: Answer) -> Answer {
            self.asked.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            answer
        }

        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    fn config(entrypoint: &str) -> Answer {
        Ok(ImageConfig { entrypoint: vec![entrypoint.to_string()], cmd: vec![] })
    }

    fn down() -> Answer {
        Err(RegistryError::Registry { registry: "r.example".into(), reason: "connection refused".into() })
    }

    #[tokio::test(start_paused = true)]
    async fn five_hundred_pods_at_once_make_one_lookup() {
        let (lookups, registry) = (SharedLookups::default(), Counting::default());
        let k = key("app:1", "amd64");
        let answers =
            futures::future::join_all((0..500).map(|_| lookups.get(&k, || registry.look_up(config("/app")))))
                .await;
        assert_eq!(registry.asked(), 1);
        assert!(answers.iter().all(|a| a.as_ref().unwrap().entrypoint == ["/app"]));
        // Another platform is another lookup.
        lookups.get(&key("app:1", "arm64"), || registry.look_up(config("/app-arm"))).await.unwrap();
        assert_eq!(registry.asked(), 2);
        assert_eq!(lookups.kept(&k).unwrap().unwrap().entrypoint, ["/app"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_kept_briefly_and_a_config_for_longer() {
        let (lookups, registry) = (SharedLookups::default(), Counting::default());
        let k = key("app:1", "amd64");
        let failed =
            futures::future::join_all((0..50).map(|_| lookups.get(&k, || registry.look_up(down())))).await;
        assert_eq!(registry.asked(), 1);
        assert!(failed.iter().all(|a| a.as_ref().unwrap_err().to_string().contains("connection refused")));
        assert!(lookups.get(&k, || registry.look_up(config("/app"))).await.is_err(), "still kept");
        assert_eq!(registry.asked(), 1);

        tokio::time::advance(KEEP_FAILURE).await;
        assert!(lookups.kept(&k).is_none(), "a failure is forgotten after {KEEP_FAILURE:?}");
        assert!(lookups.get(&k, || registry.look_up(config("/app"))).await.is_ok(), "asked again");
        assert_eq!(registry.asked(), 2);

        tokio::time::advance(KEEP_CONFIG - Duration::from_secs(2)).await;
        assert!(lookups.get(&k, || registry.look_up(down())).await.is_ok(), "a config is kept");
        assert_eq!(registry.asked(), 2);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(lookups.get(&k, || registry.look_up(down())).await.is_err(), "then asked again");
        assert_eq!(registry.asked(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_first_caller_gives_up_a_waiting_one_takes_over() {
        let (lookups, registry) = (SharedLookups::default(), Counting::default());
        let k = key("app:1", "amd64");
        let first = tokio::time::timeout(
            Duration::from_millis(500),
            lookups.get(&k, || registry.look_up(config("/first"))),
        );
        let second = lookups.get(&k, || registry.look_up(config("/second")));
        let (first, second) = tokio::join!(first, second);
        assert!(first.is_err(), "the first caller's deadline passed");
        assert_eq!(second.unwrap().entrypoint, ["/second"]);
        assert_eq!(registry.asked(), 2, "the abandoned lookup, then the waiting caller's own");
    }
}
