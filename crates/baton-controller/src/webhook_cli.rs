//! `batonctl webhook` and `batonctl webhook certs`: the command line, wired to the server and to
//! the certificate maker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use baton_controller::metrics::{self, WebhookMetrics};
use baton_controller::registry::{self, Credentials, Registry};
use baton_controller::webhook::admission::Settings;
use baton_controller::webhook::certs;
use baton_controller::webhook::images::Resolver;
use baton_controller::webhook::limits::{self, Limits};
use baton_controller::webhook::server::{listen, serve, Webhook};
use baton_controller::webhook::tls::{server_config, CertFiles};
use baton_inject::{Options, DEFAULT_IMAGE};

use crate::cli_input::{image_file, registry_auth};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub command: Option<WebhookCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum WebhookCommand {
    /// Write a CA and a serving certificate for the webhook's Service into a folder (ca.crt, ca.key,
    /// tls.crt, tls.key; keys mode 0600) and print the caBundle (the CA's PEM, base64) for the
    /// MutatingWebhookConfiguration. For clusters without cert-manager.
    Certs(CertsArgs),
}

#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    /// The webhook's Service: the certificate is for SERVICE.NAMESPACE.svc (and .svc.cluster.local).
    #[arg(long, value_name = "SERVICE")]
    pub service: String,
    /// The Service's namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: String,
    /// The folder to write the files into (made if missing); existing files are not replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The serving certificate chain (PEM), re-read when it changes (cert-manager's tls.crt).
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM), re-read when it changes (tls.key).
    #[arg(long, value_name = "FILE", required = true)]
    pub tls_key: Option<PathBuf>,
    /// The address to listen on; the default, every address, takes IPv4 and IPv6.
    #[arg(long, value_name = "ADDR", default_value = "[::]:8443")]
    pub listen: SocketAddr,
    /// Serve Prometheus metrics (plain HTTP, GET /metrics) on this address too, e.g. `[::]:9090`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// The image of the `baton-init` init container.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// ENTRYPOINT and CMD of images whose containers have no command (the format of `batonctl
    /// inject --images`). Images not in it are read from their registry.
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// The shared folder, mounted in every container.
    #[arg(long, value_name = "DIR", default_value = baton_contract::layout::DEFAULT_DIR)]
    pub dir: String,
    /// Allow a pod that cannot be injected, unchanged and with a warning, instead of denying it.
    #[arg(long)]
    pub fail_open: bool,
    /// A registry (`host[:port]`) to reach over plain HTTP instead of HTTPS; repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Registry credentials for image lookups, a docker config file (a mounted
    /// kubernetes.io/dockerconfigjson Secret's .dockerconfigjson). Default: anonymous.
    #[arg(long, value_name = "FILE")]
    pub registry_auth: Option<PathBuf>,
    /// After SIGTERM, keep serving this long before closing the listener, so that the API server
    /// stops sending here first (Kubernetes removes the endpoint while the pod is stopping).
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = duration)]
    pub shutdown_delay: Duration,
    /// The longest one request may take, from its headers to its answer; the API server's own
    /// deadline (timeoutSeconds) shortens it. Registry lookups end a second before.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = duration)]
    pub request_timeout: Duration,
    /// TLS connections open at once; one more is closed as soon as it is accepted.
    #[arg(long, value_name = "N", default_value_t = limits::MAX_CONNECTIONS, value_parser = count)]
    pub max_connections: usize,
    /// The largest review accepted (bytes, or with Ki or Mi), checked against its Content-Length
    /// before it is read.
    #[arg(long, value_name = "SIZE", default_value = "3Mi", value_parser = size)]
    pub max_body: u64,
    /// Reviews over 64 KiB being read or answered at once; one more is answered 503 at once.
    #[arg(long, value_name = "N", default_value_t = limits::MAX_LARGE, value_parser = count)]
    pub max_large_reviews: usize,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_body: self.max_body,
            max_large: self.max_large_reviews,
            request_timeout: self.request_timeout,
        }
    }
}

fn count(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a count: write a whole number from 1"))
}

/// `3145728`, `3072Ki`, `3Mi`: a size as Kubernetes writes one.
fn size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.strip_suffix("Mi") {
        Some(n) => (n, 1 << 20),
        None => text.strip_suffix("Ki").map_or((text, 1), |n| (n, 1 << 10)),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a size: write bytes, or a number with Ki or Mi (3Mi)"))
}

fn duration(text: &str) -> Result<Duration, String> {
    baton_contract::duration::parse(text)
}

pub fn run(args: WebhookArgs) -> Result<()> {
    match args.command {
        Some(WebhookCommand::Certs(certs)) => write_certs(&certs),
        None => run_server(args.serve),
    }
}

fn write_certs(args: &CertsArgs) -> Result<()> {
    let issued =
        certs::issue(&args.service, &args.namespace, SystemTime::now()).map_err(anyhow::Error::msg)?;
    let written = certs::write(&args.out, &issued).map_err(anyhow::Error::msg)?;
    for path in &written {
        eprintln!("batonctl webhook certs: wrote {}", path.display());
    }
    let names = certs::dns_names(&args.service, &args.namespace).join(", ");
    let days = certs::SERVING_VALID.as_secs() / 86400;
    eprintln!(
        "batonctl webhook certs: the serving certificate is for {names}, valid {days} days; the caBundle follows \
         on standard output (kubectl -n {ns} create secret tls {svc}-tls --cert {out}/tls.crt --key {out}/tls.key)",
        ns = args.namespace,
        svc = args.service,
        out = args.out.display(),
    );
    println!("{}", issued.ca_bundle());
    Ok(())
}

fn run_server(args: ServeArgs) -> Result<()> {
    let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) else {
        bail!("--tls-cert and --tls-key are required: pass the PEM files of the serving certificate");
    };
    let options = Options::new(&args.image, &args.dir).map_err(anyhow::Error::msg)?;
    let file = image_file(args.images.as_deref())?;
    let credentials = match &args.registry_auth {
        Some(path) => registry_auth(path)?,
        None => Credentials::default(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = Arc::new(CertFiles::load(&cert, &key, provider).map_err(anyhow::Error::msg)?);
    let tls = Arc::new(server_config(files).map_err(anyhow::Error::msg)?);
    let settings = Settings { options, fail_open: args.fail_open };
    let images = file.len();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let registry = registry::Settings {
            insecure: args.insecure_registry.clone(),
            credentials,
            pull_secrets: Default::default(),
        };
        let mut metrics_registry = prometheus_client::registry::Registry::default();
        let metrics = WebhookMetrics::new(&mut metrics_registry);
        if let Some(address) = args.metrics_listen {
            metrics::start(address, metrics_registry, "batonctl webhook")
                .await
                .map_err(anyhow::Error::msg)?;
        }
        let resolver = Resolver::new(file, Registry::new(registry)).with_metrics(metrics.clone());
        let webhook = Arc::new(Webhook { settings, resolver, limits: args.limits(), metrics });
        let listener = listen(args.listen)
            .with_context(|| format!("cannot listen on {}: pass another --listen address", args.listen))?;
        let at = listener.local_addr().context("cannot read the address listened on")?;
        eprintln!(
            "batonctl webhook: listening on https://{at} (POST /mutate, GET /healthz); certificate {}; \
             {images} images from --images; {}",
            cert.display(),
            if args.fail_open {
                "fail-open: pods that cannot be injected are allowed unchanged"
            } else {
                "pods that cannot be injected are denied"
            }
        );
        let stop = stopped(args.shutdown_delay)?;
        serve(listener, tokio_rustls::TlsAcceptor::from(tls), webhook, stop).await;
        eprintln!("batonctl webhook: stopped");
        Ok(())
    })
}

/// Completes `delay` after SIGTERM or SIGINT.
fn stopped(delay: Duration) -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!(
            "batonctl webhook: {name}: serving {} ms more, then finishing the requests under way",
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Line {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn the_limits_default_to_the_libraries_and_read_sizes_as_kubernetes_writes_them() {
        let line = Line::try_parse_from(["webhook", "--tls-cert=c", "--tls-key=k"]).unwrap();
        assert_eq!(line.serve.limits(), Limits::default());
        assert_eq!(size("3Mi"), Ok(3 << 20));
        assert_eq!(size("512Ki"), Ok(512 << 10));
        assert_eq!(size("1000"), Ok(1000));
        assert_eq!(
            size("3MB"),
            Err(r#""3MB" is not a size: write bytes, or a number with Ki or Mi (3Mi)"#.to_string())
        );
        assert!(size("0").is_err() && count("0").is_err() && count("-1").is_err());
    }
}
