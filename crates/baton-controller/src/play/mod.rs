//! `batonctl play`: a pod that uses baton run as a cluster would, on podman, without a cluster. The
//! kubelet's part that podman does not play is played here (docs/play.md):
//!
//! - [`manifest`] (pure): the one Pod, Job or CronJob of a manifest, as the Pod to run;
//! - [`rewrite`] (pure): the kubelet's set-up written into the Pod for `podman kube play`;
//! - [`message`] (pure): termination messages cut as the kubelet cuts them;
//! - [`pod_status`] (pure): the Pod JSON, in the kubelet's shape, from `podman inspect`;
//! - [`view`] (pure): the live view's lines;
//! - [`folder`]: the baton folder read from this host.

pub mod folder;
pub mod manifest;
pub mod message;
pub mod pod_status;
pub mod rewrite;
pub mod view;
