//! Reads what baton wrote back out of a Pod, robustly, and writes status as rarely as possible.
//!
//! - [`termination`]: one container's termination message, classified (record, cut record, text, …).
//! - [`status`]: the pure `Pod → RunStatus` function and the status types.
//! - [`table`]: the status as a table for people.
//! - [`waiting`]: which running containers baton is holding before their command (`--after`).
//! - [`cluster`] (feature `watch`): `batonctl status` from the cluster — the pods of a pod, Job,
//!   CronJob or label selector, listed or watched until their run ends.
//! - [`timeline`]: the lines of a live view in the order things happened; [`live`]: `status -w`'s
//!   frame (the tables, then what happened, in order).
//! - [`registry`] (feature `registry`): image configs (ENTRYPOINT, CMD) from registries, for
//!   `baton_inject`.
//! - [`metrics`] (feature `metrics`): Prometheus metrics of the webhook and the watcher.
//! - [`play`] (feature `play`): a pod run on podman with the kubelet's part played, for `batonctl play`.
//! - [`watch`] (feature `watch`): a pod watcher that prints each status change and, on request,
//!   writes the status to an annotation only when it changed.
//! - [`step_events`] (feature `watch`): one Kubernetes Event per step that did not succeed.
//! - [`webhook`] (feature `webhook`): the mutating admission webhook around `baton_inject`.

#[cfg(feature = "watch")]
pub mod cluster;
pub mod live;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "play")]
pub mod play;
#[cfg(feature = "registry")]
pub mod registry;
pub mod status;
#[cfg(feature = "watch")]
pub mod step_events;
pub mod table;
pub mod termination;
pub mod timeline;
pub mod waiting;
#[cfg(feature = "watch")]
pub mod watch;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use status::{run_status, PodRunStatus, RunStatus};

/// Why the watcher stopped. A write the API server refuses (a 403 from RBAC or a policy engine) is
/// that pod's problem only: it is said on stderr and tried again later, and the watcher goes on.
#[cfg(feature = "watch")]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write to standard output: {0}")]
    Output(#[from] std::io::Error),
}
