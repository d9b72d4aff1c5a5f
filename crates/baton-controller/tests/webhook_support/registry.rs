//! A fake OCI registry on a loopback port, over plain HTTP, that counts the requests for each path:
//! `ci/app:1` is an index of a linux/amd64 and a linux/arm64 image (ENTRYPOINT `/app-amd64`,
//! `/app-arm64`); every other name is unknown (404). Each answer waits `delay` first, so that
//! lookups made at once by several admissions overlap.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `sha256:…` of `bytes`, as registries name content (oci-client checks it).
fn digest(bytes: &[u8]) -> String {
    oci_client::client::ImageLayer::new(bytes.to_vec(), String::new(), None).sha256_digest()
}

/// A path's answer: its media type and body.
type Route = (&'static str, Vec<u8>);

pub struct FakeRegistry {
    pub addr: SocketAddr,
    asked: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeRegistry {
    pub async fn start(delay: Duration) -> FakeRegistry {
        let routes = Arc::new(routes());
        let asked = Arc::new(Mutex::new(HashMap::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (routes, counts) = (routes.clone(), counts.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).await.unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
                    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                    *counts.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                    tokio::time::sleep(delay).await;
                    let (status, kind, body) = match routes.get(&path) {
                        Some((kind, body)) => ("200 OK", *kind, body.clone()),
                        None => (
                            "404 Not Found",
                            "application/json",
                            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                                .to_vec(),
                        ),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tcp.write_all(head.as_bytes()).await;
                    let _ = tcp.write_all(&body).await;
                });
            }
        });
        FakeRegistry { addr, asked }
    }

    /// How many requests asked for `path`.
    pub fn asked(&self, path: &str) -> usize {
        self.asked.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn routes() -> HashMap<String, Route> {
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    let mut routes = HashMap::new();
    routes.insert("/v2/".to_string(), ("application/json", b"{}".to_vec()));
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = serde_json::to_vec(&json!({"architecture": arch, "os": "linux",
            "config": {"Entrypoint": [format!("/app-{arch}")]}, "rootfs": {"type": "layers", "diff_ids": []}}))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest(&config), "size": config.len()}, "layers": []}))
        .unwrap();
        entries.push(json!({"mediaType": MANIFEST, "digest": digest(&manifest), "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"}}));
        routes.insert(format!("/v2/ci/app/blobs/{}", digest(&config)), (CONFIG, config));
        routes.insert(format!("/v2/ci/app/manifests/{}", digest(&manifest)), (MANIFEST, manifest));
    }
    let index =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})).unwrap();
    routes.insert("/v2/ci/app/manifests/1".to_string(), (INDEX, index));
    routes
}
