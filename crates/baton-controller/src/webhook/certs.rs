//! `batonctl webhook certs`: a CA and a serving certificate for the webhook's Service, for clusters
//! without cert-manager. The API server calls the webhook at `SERVICE.NAMESPACE.svc` and checks the
//! certificate against the `caBundle` of the MutatingWebhookConfiguration.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// How long the CA is valid: it outlives several serving certificates.
const CA_VALID: Duration = Duration::from_secs(10 * 365 * 86400);
/// How long the serving certificate is valid; run `certs` again (or use cert-manager) before then.
pub const SERVING_VALID: Duration = Duration::from_secs(2 * 365 * 86400);

/// The files `certs` writes, with their modes: what `kubectl create secret tls` and a
/// `kubernetes.io/tls` Secret call them, and the CA beside them.
pub const FILES: [(&str, u32); 4] =
    [("ca.crt", 0o644), ("ca.key", 0o600), ("tls.crt", 0o644), ("tls.key", 0o600)];

/// A CA and a serving certificate signed by it, as PEM.
pub struct Issued {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl Issued {
    /// The `caBundle` of the MutatingWebhookConfiguration: the CA's PEM, base64-encoded.
    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_cert)
    }
}

/// The DNS names the API server may use for the Service.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![format!("{service}.{namespace}.svc"), format!("{service}.{namespace}.svc.cluster.local")]
}

/// Issues a new CA (ECDSA P-256) and a serving certificate for `service` in `namespace`.
pub fn issue(service: &str, namespace: &str, now: SystemTime) -> Result<Issued, String> {
    label(service, "--service")?;
    label(namespace, "--namespace")?;
    let fail = |e: rcgen::Error| format!("cannot make the certificates: {e}");
    let start = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    let at = |t: SystemTime| {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| format!("the clock is out of range: {e}"))
    };

    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.distinguished_name.push(DnType::CommonName, format!("baton webhook CA ({service}.{namespace})"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = at(start)?;
    ca.not_after = at(now + CA_VALID)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca, &ca_key);

    let key = KeyPair::generate().map_err(fail)?;
    let names = dns_names(service, namespace);
    let mut serving = CertificateParams::new(names.clone()).map_err(fail)?;
    serving.distinguished_name.push(DnType::CommonName, names[0].clone());
    serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.not_before = at(start)?;
    serving.not_after = at(now + SERVING_VALID)?;
    let cert = serving.signed_by(&key, &issuer).map_err(fail)?;

    Ok(Issued {
        ca_cert: ca_cert.pem(),
        ca_key: ca_key.serialize_pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A Service or namespace name: a DNS label (RFC 1123), as Kubernetes requires.
fn label(name: &str, flag: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {name:?} is not a Kubernetes name: use at most 63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit"
        ))
    }
}

/// Writes the four files into `dir` (made, mode 0700, if missing): keys 0600, certificates 0644.
/// Existing files are never replaced: a CA overwritten by mistake would break every client that
/// trusts it.
pub fn write(dir: &Path, issued: &Issued) -> Result<Vec<PathBuf>, String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| format!("cannot make the folder {}: {e}", dir.display()))?;
    }
    let paths: Vec<PathBuf> = FILES.iter().map(|(name, _)| dir.join(name)).collect();
    if let Some(there) = paths.iter().find(|p| p.symlink_metadata().is_ok()) {
        return Err(format!(
            "{} already exists: remove the old files, or pass another --out folder",
            there.display()
        ));
    }
    let texts = [&issued.ca_cert, &issued.ca_key, &issued.cert, &issued.key];
    for ((path, (_, mode)), text) in paths.iter().zip(FILES).zip(texts) {
        write_new(path, text.as_bytes(), mode)?;
    }
    Ok(paths)
}

/// Writes a file that must not exist yet: a temporary file (`O_EXCL|O_NOFOLLOW`, its mode set
/// with fchmod), filled and synced, then linked to its name (which fails if the name was taken
/// meanwhile), so the name never shows a partial file.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let temp = dir.join(format!(".{name}.{}.{nanos:08x}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&temp, path)
    })();
    let _ = std::fs::remove_file(&temp);
    result.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_kubernetes_names() {
        assert!(label("baton-webhook", "--service").is_ok());
        let err = label("Baton", "--service").unwrap_err();
        assert!(err.starts_with(r#"--service "Baton" is not a Kubernetes name"#), "{err}");
        assert!(label("-a", "--namespace").is_err());
        assert!(label("a.b", "--namespace").is_err());
        assert!(label(&"a".repeat(64), "--namespace").is_err());
    }

    #[test]
    fn issues_pem_and_a_bundle() {
        let issued = issue("hook", "ns", SystemTime::now()).unwrap();
        assert!(issued.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(issued.key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let bundle = base64::engine::general_purpose::STANDARD.decode(issued.ca_bundle()).unwrap();
        assert_eq!(bundle, issued.ca_cert.as_bytes());
        assert_eq!(dns_names("hook", "ns"), ["hook.ns.svc", "hook.ns.svc.cluster.local"]);
    }
}
