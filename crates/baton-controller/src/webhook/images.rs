//! The ENTRYPOINT and CMD of the images a pod's injection needs, looked up before the (synchronous)
//! injection runs: the `--images` file first, then the registries' answers kept from earlier pods,
//! then the registries themselves, all at once and within the admission request's deadline. A
//! lookup already in flight for another pod is waited for, not made again
//! ([`crate::registry::shared`]).
//!
//! Why a lookup failed stays in the webhook's log: the review's author names the image, so the
//! denial it reads must not say what answered at that address (a port scanner, otherwise).

use std::collections::BTreeMap;
use std::time::Duration;

use baton_inject::{ImageConfig, ImageConfigs, ImageFile, ImageRef};

use crate::metrics::WebhookMetrics;
use crate::registry::shared::{Key, SharedLookups};
use crate::registry::{Registry, RegistryError};

/// The reason a denial gives for any registry failure, whatever it was (the log has it).
pub const NOT_READ: &str = "could not read the image's configuration from its registry";

/// Image configs for the webhook: the `--images` file, then the registries (cached).
pub struct Resolver {
    file: ImageFile,
    registry: Registry,
    lookups: SharedLookups,
    metrics: Option<WebhookMetrics>,
}

/// The answers for one pod, by image, as the injection takes them.
pub type Answers = BTreeMap<String, Result<ImageConfig, String>>;

impl Resolver {
    /// `registry` must be made inside the runtime (its HTTP client wants one at hand).
    pub fn new(file: ImageFile, registry: Registry) -> Resolver {
        Resolver { file, registry, lookups: SharedLookups::default(), metrics: None }
    }

    /// Counts, in `metrics`, where each image config came from.
    pub fn with_metrics(mut self, metrics: WebhookMetrics) -> Resolver {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, result: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.looked_up(result);
        }
    }

    /// The configs of `images`, for nodes of `arch`, known without asking a registry (the
    /// `--images` file, the answers kept), and the images whose registry must be asked.
    pub fn known(&self, images: &[String], arch: &str) -> (Answers, Vec<String>) {
        let mut answers = Answers::new();
        let mut ask = Vec::new();
        for image in images {
            let lookup = ImageRef { image, pull_secrets: &[], namespace: None, arch };
            if let Ok(Some(config)) = self.file.config(&lookup) {
                answers.insert(image.clone(), Ok(config));
            } else if let Some(answer) = self.lookups.kept(&key(image, arch)) {
                self.count("cached");
                answers.insert(image.clone(), answer.map_err(|e| denial(&e)));
            } else {
                ask.push(image.clone());
            }
        }
        (answers, ask)
    }

    /// Asks the registries of `ask` for nodes of `arch`, all at once, into `answers`; a lookup still
    /// going after `budget`, like any other registry failure, becomes [`NOT_READ`] (the injection
    /// then refuses the pod with it in its sentence), and its real reason goes to the log, once per
    /// lookup made (not once per pod that waited for it).
    pub async fn look_up(&self, ask: &[String], arch: &str, budget: Duration, answers: &mut Answers) {
        let lookups = ask.iter().map(|image| async move {
            let key = key(image, arch);
            let shared = self.lookups.get(&key, || async {
                let answer = self.registry.image_config(image, &[], arch).await;
                match &answer {
                    Ok(_) => self.count("fetched"),
                    Err(RegistryError::Reference { .. }) => self.count("failed"),
                    Err(e) => {
                        self.count("failed");
                        eprintln!("batonctl webhook: image {image}: {e}")
                    }
                }
                answer
            });
            let answer = match tokio::time::timeout(budget, shared).await {
                Ok(answer) => answer.map_err(|e| denial(&e)),
                Err(_) => {
                    Err(not_read(image, &format!("no answer within the review's {} ms", budget.as_millis())))
                }
            };
            (image.clone(), answer)
        });
        answers.extend(futures::future::join_all(lookups).await);
    }
}

fn key(image: &str, arch: &str) -> Key {
    Key { image: image.to_string(), arch: arch.to_string() }
}

/// The reason a denial gives for a failed lookup: the reference's own fault in full (it is the
/// author's text, no registry was asked), any registry's as [`NOT_READ`] (the log has it).
fn denial(error: &RegistryError) -> String {
    match error {
        RegistryError::Reference { .. } => error.to_string(),
        _ => NOT_READ.to_string(),
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
