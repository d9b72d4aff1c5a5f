//! The ENTRYPOINT and CMD of the images a pod's injection needs, looked up before the (synchronous)
//! injection runs: the `--images` file first, then a cache of earlier registry answers, then the
//! registries themselves, all at once and within the admission request's deadline.
//!
//! Why a lookup failed stays in the webhook's log: the review's author names the image, so the
//! denial it reads must not say what answered at that address (a port scanner, otherwise).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_inject::{ImageConfig, ImageConfigs, ImageFile, ImageRef};

use crate::registry::{Registry, RegistryError};

/// How long a registry's answer is reused: a tag may move, but not every second.
const CACHE_FOR: Duration = Duration::from_secs(300);
/// The most answers kept; past that the cache starts over.
const CACHE_SIZE: usize = 4096;
/// The reason a denial gives for any registry failure, whatever it was (the log has it).
pub const NOT_READ: &str = "could not read the image's configuration from its registry";

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

    /// The configs of `images` known without asking a registry (the `--images` file, the cache),
    /// and the images whose registry must be asked.
    pub fn known(&self, images: &[String]) -> (Answers, Vec<String>) {
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
        (answers, ask)
    }

    /// Asks the registries of `ask`, all at once, into `answers`; a lookup still going after
    /// `budget`, like any other registry failure, becomes [`NOT_READ`] (the injection then refuses
    /// the pod with it in its sentence), and its real reason goes to the log.
    pub async fn look_up(&self, ask: &[String], budget: Duration, answers: &mut Answers) {
        let lookups = ask.iter().map(|image| async move {
            let answer = match tokio::time::timeout(budget, self.registry.image_config(image, &[])).await {
                Ok(Ok(config)) => Ok(config),
                // The reference as written is the author's own text: no registry was asked.
                Ok(Err(e @ RegistryError::Reference { .. })) => Err(e.to_string()),
                Ok(Err(e)) => Err(not_read(image, &e.to_string())),
                Err(_) => {
                    Err(not_read(image, &format!("no answer within the review's {} ms", budget.as_millis())))
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

/// The time registry lookups may take for a request due at `deadline`: a second of it is kept for
/// the answer (at least 100 ms are given, so that a cached registry connection may still answer).
pub fn budget(deadline: tokio::time::Instant) -> Duration {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    left.saturating_sub(Duration::from_secs(1)).max(Duration::from_millis(100))
}

/// Logs why `image` could not be read and gives the reason the caller sees.
fn not_read(image: &str, why: &str) -> String {
    eprintln!("batonctl webhook: image {image}: {why}");
    NOT_READ.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_keeps_a_second_of_the_deadline_for_the_answer() {
        let now = tokio::time::Instant::now();
        assert_eq!(budget(now + Duration::from_secs(10)), Duration::from_secs(9));
        assert_eq!(budget(now + Duration::from_secs(1)), Duration::from_millis(100));
        assert_eq!(budget(now), Duration::from_millis(100));
    }
}
