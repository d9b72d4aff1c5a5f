//! The cluster flags `batonctl watch` and `batonctl status` share, and the client they make: the
//! kubeconfig read as kubectl reads it (kube-rs), or the pod's service account.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Args, Debug, Default)]
pub struct ClusterArgs {
    /// The namespace (default: the kubeconfig's).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    /// Whether any of these flags was given.
    pub fn given(&self) -> bool {
        self.namespace.is_some() || self.all_namespaces || self.kubeconfig.is_some() || self.context.is_some()
    }

    /// The namespace to read: `None` for every namespace.
    pub fn namespace(&self, client: &kube::Client) -> Option<String> {
        match (self.all_namespaces, &self.namespace) {
            (true, _) => None,
            (false, Some(ns)) => Some(ns.clone()),
            (false, None) => Some(client.default_namespace().to_string()),
        }
    }

    pub async fn client(&self) -> Result<kube::Client> {
        let options = KubeConfigOptions { context: self.context.clone(), ..KubeConfigOptions::default() };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .with_context(|| format!("kubeconfig {} is not usable", path.display()))?
            }
            None if self.context.is_some() => {
                kube::Config::from_kubeconfig(&options).await.context("cannot load the kubeconfig context")?
            }
            None => kube::Config::infer()
                .await
                .context("cannot find a cluster: no kubeconfig and not in a pod (pass --kubeconfig, or set KUBECONFIG)")?,
        };
        kube::Client::try_from(config).context("cannot build a Kubernetes client")
    }
}

/// A runtime for one command on this thread.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
