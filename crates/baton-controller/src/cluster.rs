//! `batonctl status` from the cluster: the pods a selection names (`pod/NAME`, `job/NAME`,
//! `cronjob/NAME`, a label selector) read from the API server, and with `-w` the same pods watched
//! until their run ends.
//!
//! A Job's pods are those its own selector matches (the Job controller's
//! `batch.kubernetes.io/controller-uid`: a Job deleted and made again under the same name does not
//! pick up the old one's terminating pods), else those with its `batch.kubernetes.io/job-name`
//! label; a CronJob's run is its latest Job, found by owner reference and creation time.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use crate::status::{run_status, Phase};

/// The label the Job controller puts on the pods of a Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// What `batonctl status` is asked to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    Pod(String),
    Job(String),
    CronJob(String),
    /// Pods by label selector (`None`: every pod).
    Labels(Option<String>),
}

impl Selection {
    /// `pod/NAME`, `job/NAME`, `cronjob/NAME`, with kubectl's other spellings of the kinds
    /// (`pods`, `po`, `jobs`, `cronjobs`, `cj`, with or without a `.batch` group).
    pub fn parse(text: &str) -> Result<Selection, String> {
        let Some((kind, name)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} names no kind: give pod/NAME, job/NAME or cronjob/NAME, or select pods with -l"
            ));
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{text:?} is not KIND/NAME: give pod/NAME, job/NAME or cronjob/NAME"));
        }
        let name = name.to_string();
        match kind.to_ascii_lowercase().as_str() {
            "pod" | "pods" | "po" => Ok(Selection::Pod(name)),
            "job" | "jobs" | "job.batch" | "jobs.batch" => Ok(Selection::Job(name)),
            "cronjob" | "cronjobs" | "cj" | "cronjob.batch" | "cronjobs.batch" => Ok(Selection::CronJob(name)),
            _ => Err(format!(
                "batonctl status reads pods, Jobs and CronJobs, not {kind}: give pod/NAME, job/NAME or cronjob/NAME"
            )),
        }
    }

    /// Whether the selection names one object (which lives in one namespace).
    pub fn is_named(&self) -> bool {
        !matches!(self, Selection::Labels(_))
    }
}

/// Why the cluster could not answer. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{kind} {name} is not in namespace {namespace}: check the name, or give its namespace with -n")]
    NotFound { kind: &'static str, name: String, namespace: String },
    #[error(
        "cronjob {name} in namespace {namespace} has started no Job yet: wait for its schedule, or start \
         one with `kubectl create job --from=cronjob/{name} {name}-manual`"
    )]
    NoJob { name: String, namespace: String },
    #[error("cannot read {what} from the API server: {source}")]
    Api { what: String, source: kube::Error },
}

/// A selection resolved against the API server: the pods to list or watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pods {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub labels: Option<String>,
    pub fields: Option<String>,
    /// The Job whose pods these are: its run has ended only when the Job says so.
    pub job: Option<String>,
    /// For sentences: `job ci/build`, `pods with baton.dev/injected=true in ci`.
    pub what: String,
}

impl Pods {
    /// The sentence for no pod found.
    pub fn none_found(&self) -> String {
        match (&self.job, &self.fields) {
            (Some(_), _) => format!("{} has no pods yet", self.what),
            (None, Some(_)) => format!("{} is gone", self.what),
            (None, None) => format!("no {}", self.what),
        }
    }
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// Resolves `selection` in `namespace` (`None`: every namespace, for a label selector only).
pub async fn resolve(client: &Client, namespace: Option<&str>, selection: &Selection) -> Result<Pods, Error> {
    let ns = namespace.unwrap_or_else(|| client.default_namespace()).to_string();
    match selection {
        Selection::Labels(labels) => Ok(Pods {
            namespace: namespace.map(str::to_string),
            labels: labels.clone(),
            fields: None,
            job: None,
            what: format!(
                "pods{} in {}",
                labels.as_ref().map_or(String::new(), |l| format!(" with {l}")),
                namespace.map_or("every namespace".to_string(), |n| format!("namespace {n}"))
            ),
        }),
        Selection::Pod(name) => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            match api.get_opt(name).await.map_err(api_error(format!("pod {ns}/{name}")))? {
                Some(_) => Ok(Pods {
                    namespace: Some(ns.clone()),
                    labels: None,
                    fields: Some(format!("metadata.name={name}")),
                    job: None,
                    what: format!("pod {ns}/{name}"),
                }),
                None => Err(Error::NotFound { kind: "pod", name: name.clone(), namespace: ns }),
            }
        }
        Selection::Job(name) => {
            let api: Api<Job> = Api::namespaced(client.clone(), &ns);
            match api.get_opt(name).await.map_err(api_error(format!("job {ns}/{name}")))? {
                Some(job) => Ok(job_pods(&ns, &job)),
                None => Err(Error::NotFound { kind: "job", name: name.clone(), namespace: ns }),
            }
        }
        Selection::CronJob(name) => {
            let api: Api<CronJob> = Api::namespaced(client.clone(), &ns);
            let what = format!("cronjob {ns}/{name}");
            let Some(cron) = api.get_opt(name).await.map_err(api_error(what.clone()))? else {
                return Err(Error::NotFound { kind: "cronjob", name: name.clone(), namespace: ns });
            };
            let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
            let list =
                jobs.list(&ListParams::default()).await.map_err(api_error(format!("the jobs of {what}")))?;
            let uid = cron.metadata.uid.unwrap_or_default();
            match latest_owned(&list.items, &uid) {
                Some(job) => Ok(job_pods(&ns, job)),
                None => Err(Error::NoJob { name: name.clone(), namespace: ns }),
            }
        }
    }
}

fn job_pods(ns: &str, job: &Job) -> Pods {
    let name = job.metadata.name.clone().unwrap_or_default();
    Pods {
        namespace: Some(ns.to_string()),
        labels: Some(job_selector(job).unwrap_or_else(|| format!("{JOB_NAME_LABEL}={name}"))),
        fields: None,
        job: Some(name.clone()),
        what: format!("job {ns}/{name}"),
    }
}

/// The Job's own selector's labels (`k=v,k=v`), when it has only match labels.
fn job_selector(job: &Job) -> Option<String> {
    let selector = job.spec.as_ref()?.selector.as_ref()?;
    if selector.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) {
        return None;
    }
    let labels = selector.match_labels.as_ref().filter(|l| !l.is_empty())?;
    Some(labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
}

/// The newest Job owned by the object with `uid` (creation time, then name).
pub fn latest_owned<'a>(jobs: &'a [Job], uid: &str) -> Option<&'a Job> {
    jobs.iter().filter(|j| j.metadata.owner_references.iter().flatten().any(|o| o.uid == uid)).max_by(
        |a, b| {
            let key = |j: &Job| (j.metadata.creation_timestamp.clone().map(|t| t.0), j.metadata.name.clone());
            key(a).cmp(&key(b))
        },
    )
}

fn pod_api(client: &Client, pods: &Pods) -> Api<Pod> {
    match &pods.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The selected pods, oldest first (a Job's retries in the order they were made).
pub async fn list(client: &Client, pods: &Pods) -> Result<Vec<Pod>, Error> {
    let mut params = ListParams::default();
    if let Some(l) = &pods.labels {
        params = params.labels(l);
    }
    if let Some(f) = &pods.fields {
        params = params.fields(f);
    }
    let list = pod_api(client, pods).list(&params).await.map_err(api_error(pods.what.clone()))?;
    Ok(oldest_first(list.items))
}

fn oldest_first(mut pods: Vec<Pod>) -> Vec<Pod> {
    pods.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.metadata.creation_timestamp.clone().map(|t| t.0),
                p.metadata.namespace.clone(),
                p.metadata.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    pods
}

/// How the run of the shown pods went: a Job's (or a CronJob's latest Job's) run is its newest pod's;
/// otherwise a failed pod fails the run, and one still going keeps it going. No pod: Pending.
pub fn run_phase(pods: &Pods, shown: &[Pod]) -> Phase {
    if pods.job.is_some() {
        return shown.last().map_or(Phase::Pending, |p| run_status(p).phase);
    }
    if shown.is_empty() {
        return Phase::Pending;
    }
    Phase::worst(shown.iter().map(|p| run_status(p).phase))
}

/// Whether the Job has given up or finished: its `Complete`, `Failed` or `FailureTarget` condition.
fn job_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.status == "True" && matches!(c.type_.as_str(), "Complete" | "Failed" | "FailureTarget"))
}

/// How often a Job whose newest pod failed is asked whether it has given up: the Job controller may
/// say so without touching the pod again.
const JOB_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Watches the selected pods and calls `show` with all of them (oldest first) at every change,
/// until the run has ended: then returns its phase. A failed pod of a Job ends the run only once the
/// Job has given up (it may make another pod). Watch errors are said and retried with backoff.
pub async fn watch(client: &Client, pods: &Pods, mut show: impl FnMut(&[Pod])) -> Result<Phase, Error> {
    let mut config = watcher::Config::default();
    if let Some(l) = &pods.labels {
        config = config.labels(l);
    }
    if let Some(f) = &pods.fields {
        config = config.fields(f);
    }
    let mut events = watcher::watcher(pod_api(client, pods), config).default_backoff().boxed();
    let mut seen: BTreeMap<(String, String), Pod> = BTreeMap::new();
    let mut relisted: BTreeMap<(String, String), Pod> = BTreeMap::new();
    let mut waiting_on_job = false;
    loop {
        let event = if waiting_on_job {
            tokio::select! {
                event = events.next() => event,
                () = tokio::time::sleep(JOB_RECHECK) => {
                    let shown = oldest_first(seen.values().cloned().collect());
                    match ended(client, pods, &shown).await? {
                        Ended::Yes(phase) => return Ok(phase),
                        Ended::WaitingOnJob => continue,
                        Ended::No => { waiting_on_job = false; continue; }
                    }
                }
            }
        } else {
            events.next().await
        };
        match event {
            None => return Ok(run_phase(pods, &oldest_first(seen.into_values().collect()))),
            Some(Err(e)) => {
                eprintln!("batonctl: watching {} failed, retrying: {e}", pods.what);
                continue;
            }
            Some(Ok(Event::Init)) => {
                relisted.clear();
                continue;
            }
            Some(Ok(Event::InitApply(p))) => {
                relisted.insert(key(&p), p);
                continue;
            }
            Some(Ok(Event::InitDone)) => seen = std::mem::take(&mut relisted),
            Some(Ok(Event::Apply(p))) => {
                seen.insert(key(&p), p);
            }
            Some(Ok(Event::Delete(p))) => {
                seen.remove(&key(&p));
            }
        }
        let shown = oldest_first(seen.values().cloned().collect());
        show(&shown);
        waiting_on_job = false;
        match ended(client, pods, &shown).await? {
            Ended::Yes(phase) => return Ok(phase),
            Ended::WaitingOnJob => waiting_on_job = true,
            Ended::No => {}
        }
    }
}

fn key(p: &Pod) -> (String, String) {
    (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default())
}

enum Ended {
    Yes(Phase),
    No,
    /// A Job's newest pod failed; the Job has not said whether it makes another.
    WaitingOnJob,
}

/// Whether the run of the shown pods has ended: every pod's run is final (a Job's newest), and a
/// Job whose newest pod failed has given up.
async fn ended(client: &Client, pods: &Pods, shown: &[Pod]) -> Result<Ended, Error> {
    let phase = run_phase(pods, shown);
    if shown.is_empty() || !phase.is_final() {
        return Ok(Ended::No);
    }
    match (&pods.job, &pods.namespace) {
        (Some(job), Some(ns)) => {
            if phase == Phase::Succeeded {
                return Ok(Ended::Yes(phase));
            }
            let api: Api<Job> = Api::namespaced(client.clone(), ns);
            match api.get_opt(job).await.map_err(api_error(format!("job {ns}/{job}")))? {
                Some(j) if !job_finished(&j) => Ok(Ended::WaitingOnJob),
                _ => Ok(Ended::Yes(phase)),
            }
        }
        _ if shown.iter().all(|p| run_status(p).phase.is_final()) => Ok(Ended::Yes(phase)),
        _ => Ok(Ended::No),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_as_kubectl_spells_them() {
        assert_eq!(Selection::parse("pod/a"), Ok(Selection::Pod("a".into())));
        assert_eq!(Selection::parse("po/a"), Ok(Selection::Pod("a".into())));
        assert_eq!(Selection::parse("jobs.batch/b"), Ok(Selection::Job("b".into())));
        assert_eq!(Selection::parse("cj/c"), Ok(Selection::CronJob("c".into())));
        assert_eq!(Selection::parse("CronJob/c"), Ok(Selection::CronJob("c".into())));
    }

    #[test]
    fn a_wrong_selection_is_one_sentence_that_says_what_to_give() {
        for (text, says) in [
            ("build", "names no kind"),
            ("job/", "is not KIND/NAME"),
            ("job/a/b", "is not KIND/NAME"),
            ("deployment/web", "not deployment"),
        ] {
            let err = Selection::parse(text).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("job/NAME"), "{err}");
            assert_eq!(err.matches(". ").count(), 0, "one sentence: {err}");
        }
    }
}
