//! The serving certificate, re-read when its files change, without a restart.
//!
//! cert-manager renews the certificate in the Secret, and the kubelet swaps the mounted files (a
//! new `..data` symlink to a new folder). Every TLS handshake asks [`CertFiles`] for the key; it
//! `stat`s the two paths (following symlinks) and reads them again only when one of them is
//! another file or was written since (device, inode, size, modification and change times differ).
//! Two `stat` calls per handshake, none per request on a kept-alive connection: no watcher thread,
//! no inotify instance, and no window in which a rotated file goes unnoticed.
//!
//! A pair that does not load (a half-written file, a key that does not match the certificate) is
//! reported once and the previous certificate stays in service; it is tried again when the files
//! change again.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// The most a certificate or key file may hold: a chain is a few KiB.
const MAX_PEM: u64 = 1 << 20;

/// What identifies one version of a file: it changes when the file is replaced or written.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
}

/// A certificate chain and its key, from two PEM files, reloaded when they change.
#[derive(Debug)]
pub struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The files as they were when `current` was read from them.
    loaded: (Stamp, Stamp),
    current: Arc<CertifiedKey>,
    /// The files as they were when they last failed to load (reported once).
    failed: Option<(Stamp, Stamp)>,
}

impl CertFiles {
    /// Reads the pair once; the error is a sentence naming the file and what to pass instead.
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<CertFiles, String> {
        let fix = |e: String| {
            format!("{e}: pass the serving certificate's PEM chain and its key (tls.crt and tls.key of its Secret)")
        };
        let stamps =
            (stamp(cert).map_err(|e| fix(cannot(cert, e)))?, stamp(key).map_err(|e| fix(cannot(key, e)))?);
        let current = Arc::new(read_pair(cert, key, &provider).map_err(fix)?);
        Ok(CertFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            state: Mutex::new(State { loaded: stamps, current, failed: None }),
        })
    }

    /// The pair in service, read again first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let stamps = match (stamp(&self.cert), stamp(&self.key)) {
            (Ok(c), Ok(k)) => Some((c, k)),
            // Gone for a moment (a swap in progress): keep serving what was read.
            _ => None,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stamps) = stamps {
            if stamps != state.loaded && Some(stamps) != state.failed {
                match read_pair(&self.cert, &self.key, &self.provider) {
                    Ok(pair) => {
                        state.current = Arc::new(pair);
                        state.loaded = stamps;
                        state.failed = None;
                        eprintln!("batonctl webhook: serving the new certificate of {}", self.cert.display());
                    }
                    Err(e) => {
                        state.failed = Some(stamps);
                        eprintln!("batonctl webhook: warning: {e}; still serving the previous certificate");
                    }
                }
            }
        }
        state.current.clone()
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A server configuration that takes its certificate from `files` at every handshake (HTTP/1.1).
pub fn server_config(files: Arc<CertFiles>) -> Result<ServerConfig, String> {
    let provider = files.provider.clone();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(files);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn cannot(path: &Path, e: std::io::Error) -> String {
    format!("cannot read {}: {e}", path.display())
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_PEM + 1).read_to_end(&mut bytes))
        .map_err(|e| cannot(path, e))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(format!(
            "{} is larger than 1 MiB, too large for a PEM certificate or key",
            path.display()
        ));
    }
    Ok(bytes)
}

/// The chain of `cert` (PEM, leaf first) with the key of `key` (PEM: PKCS#8, PKCS#1 or SEC1).
fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read_pem(cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate chain: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_slice(&read_pem(key)?)
        .map_err(|e| format!("{} is not a PEM private key: {e}", key.display()))?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        format!("the key {} does not go with the certificate {}: {e}", key.display(), cert.display())
    })
}
