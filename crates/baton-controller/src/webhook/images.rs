//! The ENTRYPOINT and CMD of the images a pod's injection needs, looked up before the (synchronous)
//! injection runs: the `--images` file first, then a cache of earlier registry answers, then the
//! registries themselves, all at once and within the admission request's deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_inject::{ImageConfig, ImageConfigs, ImageFile, ImageRef};

use crate::registry::Registry;

/// How long a registry's answer is reused: a tag may move, but not every second.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// The most answers kept; past that the cache starts over.
const CACHE_SIZE: usize = 4096;

/// Image configs for the webhook: the `--images` file, then the registries (cached).
pub struct Resolver {
    file: ImageFile,
    registry: Registry,
    cache: Mutex<HashMap<String, (Instant, ImageConfig)>>,
}

/// The answers for one pod, by image, as the injection takes them.
pub type Answers = BTreeMap<String, Result<ImageConfig, String>>;

impl Resolver {
    /// `registry` must be made inside the runtime (its HTTP client wants one at hand).
    pub fn new(file: ImageFile, registry: Registry) -> Resolver {
        Resolver { file, registry, cache: Mutex::new(HashMap::new()) }
    }

    /// The config of each of `images`; a lookup still going after `budget` becomes a failure that
    /// says so (the injection then refuses the pod with that reason in its sentence).
    pub async fn resolve(&self, images: &[String], budget: Duration) -> Answers {
        let mut answers = Answers::new();
        let mut ask = Vec::new();
        for image in images {
            let lookup = ImageRef { image, pull_secrets: &[], namespace: None };
            if let Ok(Some(config)) = self.file.config(&lookup) {
                answers.insert(image.clone(), Ok(config));
            } else if let Some(config) = self.cached(image) {
                answers.insert(image.clone(), Ok(config));
            } else {
                ask.push(image.clone());
            }
        }
        let lookups = ask.iter().map(|image| async move {
            let answer = match tokio::time::timeout(budget, self.registry.image_config(image, &[])).await {
                Ok(Ok(config)) => Ok(config),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => {
                    Err(format!("its registry did not answer within the webhook's {} ms", budget.as_millis()))
                }
            };
            (image.clone(), answer)
        });
        for (image, answer) in futures::future::join_all(lookups).await {
            if let Ok(config) = &answer {
                self.remember(&image, config);
            }
            answers.insert(image, answer);
        }
        answers
    }

    fn cached(&self, image: &str) -> Option<ImageConfig> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(image).filter(|(at, _)| at.elapsed() < CACHE_FOR).map(|(_, config)| config.clone())
    }

    fn remember(&self, image: &str, config: &ImageConfig) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_SIZE {
            cache.clear();
        }
        cache.insert(image.to_string(), (Instant::now(), config.clone()));
    }
}

/// The time registry lookups may take for one admission request: the API server sends its own
/// deadline as `?timeout=10s` (the webhook's `timeoutSeconds`); a second of it is kept for the
/// answer. Without one: 9 s.
pub fn budget(query: Option<&str>) -> Duration {
    let deadline = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(|d| baton_contract::duration::parse(d).ok())
        .unwrap_or(Duration::from_secs(10));
    deadline.saturating_sub(Duration::from_secs(1)).max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_the_api_servers_deadline() {
        assert_eq!(budget(Some("timeout=10s")), Duration::from_secs(9));
        assert_eq!(budget(Some("a=b&timeout=30s")), Duration::from_secs(29));
        assert_eq!(budget(Some("timeout=1s")), Duration::from_millis(100));
        assert_eq!(budget(Some("timeout=junk")), Duration::from_secs(9));
        assert_eq!(budget(None), Duration::from_secs(9));
    }
}
