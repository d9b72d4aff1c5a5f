//! Set-up shared by the suites that run `batonctl webhook` over real HTTPS on localhost
//! (webhook.rs, webhook_hardening.rs): certificates from `batonctl webhook certs`, the server as a
//! process with its standard error readable line by line, clients that trust only its CA. Each suite
//! uses a part of it.
#![allow(dead_code)]

pub mod registry;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const SERVICE: &str = "baton-webhook";
pub const NAMESPACE: &str = "baton-system";
pub const HOST: &str = "baton-webhook.baton-system.svc";
pub const IMAGE: &str = "localhost/baton:webhook-test";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook").join(name)
}

pub fn review(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(&format!("review-{name}.json"))).unwrap()).unwrap()
}

pub fn batonctl(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_batonctl"));
    // No docker config of this machine: the tests use none.
    command
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    command
}

/// `batonctl webhook certs` into `dir`: the caBundle it printed.
pub fn certs(dir: &Path) -> String {
    let out = batonctl(&["webhook", "certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The server's standard error, as it comes, and a way to wait for a line of it.
#[derive(Default)]
pub struct Log {
    text: Mutex<String>,
    grew: Condvar,
}

impl Log {
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut text = self.text.lock().unwrap();
        while !text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the webhook never wrote {needle:?}; its log:\n{text}");
            text = self.grew.wait_timeout(text, left).unwrap().0;
        }
        text.clone()
    }
}

/// A running `batonctl webhook`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Log>,
}

impl Server {
    pub fn start(cert: &Path, key: &Path, extra: &[&str]) -> Server {
        let mut child = batonctl(&["webhook", "--listen", "127.0.0.1:0", "--shutdown-delay", "0s"])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(["--image", IMAGE])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().unwrap();
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = writer.text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                writer.grew.notify_all();
            }
        });
        let text = log.wait_for("listening on https://");
        let addr = text.split("listening on https://").nth(1).unwrap().split_whitespace().next().unwrap();
        Server { child, addr: addr.parse().unwrap(), log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.addr.port())
    }

    /// A client that trusts only `ca` and opens a new connection (a new handshake) per request.
    pub fn client(&self, ca: &Path) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .resolve(HOST, self.addr)
            .tls_info(true)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    /// POSTs `review` to /mutate with the API server's usual deadline; the response's status and the
    /// AdmissionReview it holds.
    pub async fn mutate(&self, ca: &Path, review: &Value) -> (u16, Value) {
        self.post(ca, "/mutate?timeout=10s", review).await
    }

    /// POSTs `review` to `path`; the response's status and the AdmissionReview it holds.
    pub async fn post(&self, ca: &Path, path: &str, review: &Value) -> (u16, Value) {
        let response = self.client(ca).post(self.url(path)).json(review).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body))),
        )
    }

    /// A TLS connection of a client that trusts only `ca`, for requests written byte by byte.
    pub async fn connect(&self, ca: &Path) -> std::io::Result<TlsStream<TcpStream>> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await?;
        connector.connect(ServerName::try_from(HOST).unwrap(), tcp).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder of certificates and a server using them.
pub fn setup(extra: &[&str]) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let server = Server::start(&dir.path().join("tls.crt"), &dir.path().join("tls.key"), extra);
    (dir, server)
}
