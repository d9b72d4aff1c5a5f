//! The registry client: what an image runs (its config's `Entrypoint` and `Cmd`), read over the OCI
//! distribution API with `oci-client` — anonymously, or with credentials from a docker config file
//! or from the pod's `imagePullSecrets`.
//!
//! [`Registry`] is asynchronous (for a webhook); [`BlockingRegistry`] answers the injection's
//! synchronous [`ImageConfigs`] on a runtime of its own, one request per image. [`shared`]: the
//! webhook's lookups, one in flight per image and platform, answers kept a while.
//!
//! A multi-platform image is read for the pod's platform (linux and [`baton_inject::pod_arch`]): the
//! variant of that architecture, else amd64's, else any linux one.

pub mod shared;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use baton_inject::{ImageConfig, ImageConfigs, ImageRef};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{ImageIndexEntry, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;

/// The longest one lookup may take, connection and answers included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an image's config could not be read: a few words that end up inside the injection's sentence.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("{image:?} is not an image reference: {reason}")]
    Reference { image: String, reason: String },
    #[error("its registry {registry} answered: {reason}")]
    Registry { registry: String, reason: String },
    #[error("its registry {registry} did not answer within {}s", LOOKUP_TIMEOUT.as_secs())]
    Timeout { registry: String },
    #[error("its config from {registry} is not an image config: {reason}")]
    Config { registry: String, reason: String },
    #[error("its index in {registry} lists no linux image")]
    NoLinuxImage { registry: String },
}

/// Registry credentials by registry host: a docker config file (`~/.docker/config.json`, podman's
/// `auth.json`) or the `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, (String, String)>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl Credentials {
    /// Parses a docker config (`{"auths": {"HOST": {"auth": base64(user:password)}}}`); entries
    /// without a usable user and password (credential helpers, identity tokens) are skipped.
    pub fn parse(json: &str) -> Result<Credentials, String> {
        let config: DockerConfig = serde_json::from_str(json)
            .map_err(|e| format!("it is not a docker config (auths by registry): {e}"))?;
        let mut by_host = BTreeMap::new();
        for (key, auth) in config.auths {
            let pair = match (auth.username, auth.password, auth.auth) {
                (Some(user), Some(password), _) => Some((user, password)),
                (_, _, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .and_then(|text| text.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))),
                _ => None,
            };
            if let Some(pair) = pair {
                by_host.insert(host_of(&key), pair);
            }
        }
        Ok(Credentials { by_host })
    }

    /// The credentials for `registry` (as a reference names it: `docker.io`, `ghcr.io`, `host:5000`).
    pub fn for_registry(&self, registry: &str) -> Option<RegistryAuth> {
        let docker_hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
        let hosts: Vec<&str> =
            if docker_hub.contains(&registry) { docker_hub.to_vec() } else { vec![registry] };
        hosts
            .iter()
            .find_map(|h| self.by_host.get(*h))
            .map(|(u, p)| RegistryAuth::Basic(u.clone(), p.clone()))
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `ghcr.io` → `ghcr.io`.
fn host_of(key: &str) -> String {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    key.split('/').next().unwrap_or(key).to_string()
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Registries (`host[:port]`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    /// Credentials for every pod (a docker config file).
    pub credentials: Credentials,
    /// Credentials by the name of a pull secret (`imagePullSecrets`), for the pods that name it.
    pub pull_secrets: BTreeMap<String, Credentials>,
}

/// An asynchronous image-config reader.
pub struct Registry {
    client: Client,
    settings: Settings,
}

impl Registry {
    pub fn new(settings: Settings) -> Registry {
        // reqwest takes the process's rustls provider; install ring (kube's) unless one is there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(settings.insecure.clone()),
            // Indexes are resolved here, for each pod's platform (pull_config).
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(20)),
            ..ClientConfig::default()
        };
        Registry { client: Client::new(config), settings }
    }

    /// The ENTRYPOINT and CMD of `image` for nodes of `arch` (a multi-platform image: its linux
    /// variant for `arch`, else amd64's, else any linux one). Credentials: the first of the pod's pull
    /// secrets that has some for the registry, else the docker config's, else none.
    pub async fn image_config(
        &self,
        image: &str,
        pull_secrets: &[String],
        arch: &str,
    ) -> Result<ImageConfig, RegistryError> {
        let reference: Reference = image.parse().map_err(|e: oci_client::ParseError| {
            RegistryError::Reference { image: image.to_string(), reason: e.to_string() }
        })?;
        let registry = reference.registry().to_string();
        let auth = pull_secrets
            .iter()
            .filter_map(|name| self.settings.pull_secrets.get(name))
            .chain([&self.settings.credentials])
            .find_map(|c| c.for_registry(&registry))
            .unwrap_or(RegistryAuth::Anonymous);
        let config = tokio::time::timeout(LOOKUP_TIMEOUT, self.pull_config(&reference, &auth, arch))
            .await
            .map_err(|_| RegistryError::Timeout { registry: registry.clone() })??;
        parse_config(&config).map_err(|reason| RegistryError::Config { registry, reason })
    }

    /// The image config (JSON) of `reference`, through its index when it has one.
    async fn pull_config(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
        arch: &str,
    ) -> Result<String, RegistryError> {
        let registry = reference.registry().to_string();
        let failed = |e: oci_client::errors::OciDistributionError| RegistryError::Registry {
            registry: registry.clone(),
            reason: chain(&e),
        };
        let manifest = match self.client.pull_manifest(reference, auth).await.map_err(failed)?.0 {
            OciManifest::Image(manifest) => manifest,
            OciManifest::ImageIndex(index) => {
                let digest = linux_variant(&index.manifests, arch)
                    .ok_or_else(|| RegistryError::NoLinuxImage { registry: registry.clone() })?;
                match self.client.pull_manifest(&reference.clone_with_digest(digest), auth).await {
                    Ok((OciManifest::Image(manifest), _)) => manifest,
                    Ok((OciManifest::ImageIndex(_), _)) => {
                        return Err(RegistryError::NoLinuxImage { registry: registry.clone() })
                    }
                    Err(e) => return Err(failed(e)),
                }
            }
        };
        let mut config = Vec::new();
        self.client.pull_blob(reference, &manifest.config, &mut config).await.map_err(failed)?;
        String::from_utf8(config).map_err(|e| RegistryError::Config { registry, reason: e.to_string() })
    }
}

/// An error and its causes, `outer: inner: innermost` (reqwest hides "connection refused" in a source).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = e.source();
    }
    text
}

/// The `config.Entrypoint` and `config.Cmd` of an OCI / Docker image config (either may be null).
pub fn parse_config(json: &str) -> Result<ImageConfig, String> {
    #[derive(Deserialize)]
    struct File {
        config: Option<Run>,
    }
    #[derive(Deserialize)]
    struct Run {
        #[serde(rename = "Entrypoint")]
        entrypoint: Option<Vec<String>>,
        #[serde(rename = "Cmd")]
        cmd: Option<Vec<String>>,
    }
    let file: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let run = file.config.unwrap_or(Run { entrypoint: None, cmd: None });
    Ok(ImageConfig { entrypoint: run.entrypoint.unwrap_or_default(), cmd: run.cmd.unwrap_or_default() })
}

/// The digest of the linux image for nodes of `arch` in an index: that architecture's, else amd64's,
/// else the first linux one (an ENTRYPOINT rarely differs between them).
fn linux_variant(entries: &[ImageIndexEntry], arch: &str) -> Option<String> {
    let linux: Vec<&ImageIndexEntry> =
        entries.iter().filter(|e| e.platform.as_ref().is_some_and(|p| p.os.to_string() == "linux")).collect();
    let on =
        |a: &str| linux.iter().find(|e| e.platform.as_ref().is_some_and(|p| p.architecture.to_string() == a));
    on(arch).or_else(|| on("amd64")).or_else(|| linux.first()).map(|e| e.digest.clone())
}

/// An answer of [`ImageConfigs`], kept by image, pull secrets and architecture.
type Answers = HashMap<(String, Vec<String>, String), Result<Option<ImageConfig>, String>>;

/// A [`Registry`] for synchronous callers, with a runtime of its own and one lookup per image.
pub struct BlockingRegistry {
    runtime: tokio::runtime::Runtime,
    registry: Registry,
    cache: RefCell<Answers>,
}

impl BlockingRegistry {
    pub fn new(settings: Settings) -> std::io::Result<BlockingRegistry> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // The client is built inside the runtime: reqwest's connector wants one at hand.
        let registry = runtime.block_on(async { Registry::new(settings) });
        Ok(BlockingRegistry { runtime, registry, cache: RefCell::new(HashMap::new()) })
    }
}

impl ImageConfigs for BlockingRegistry {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        let key = (image.image.to_string(), image.pull_secrets.to_vec(), image.arch.to_string());
        if let Some(known) = self.cache.borrow().get(&key) {
            return known.clone();
        }
        let answer = self
            .runtime
            .block_on(self.registry.image_config(image.image, image.pull_secrets, image.arch))
            .map(Some)
            .map_err(|e| e.to_string());
        self.cache.borrow_mut().insert(key, answer.clone());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entrypoint_and_cmd_of_an_image_config() {
        let json = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Entrypoint":["/app"],"Cmd":null}}"#;
        assert_eq!(parse_config(json).unwrap(), ImageConfig { entrypoint: vec!["/app".into()], cmd: vec![] });
        let json = r#"{"config":{"Cmd":["sh"]}}"#;
        assert_eq!(parse_config(json).unwrap().cmd, ["sh"]);
        assert_eq!(parse_config(r#"{"os":"linux"}"#).unwrap(), ImageConfig::default());
        assert!(parse_config("[").is_err());
    }

    #[test]
    fn an_index_is_read_for_the_pods_architecture() {
        let entry = |digest: &str, os: &str, arch: &str| {
            serde_json::from_value::<ImageIndexEntry>(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
                "platform": {"os": os, "architecture": arch}}))
            .unwrap()
        };
        let index = [
            entry("sha256:win", "windows", "amd64"),
            entry("sha256:s390x", "linux", "s390x"),
            entry("sha256:arm64", "linux", "arm64"),
            entry("sha256:amd64", "linux", "amd64"),
        ];
        assert_eq!(linux_variant(&index, "arm64").as_deref(), Some("sha256:arm64"));
        assert_eq!(linux_variant(&index, "amd64").as_deref(), Some("sha256:amd64"));
        assert_eq!(linux_variant(&index, "riscv64").as_deref(), Some("sha256:amd64"), "else amd64's");
        assert_eq!(linux_variant(&index[..2], "arm64").as_deref(), Some("sha256:s390x"), "else any linux");
        assert_eq!(linux_variant(&index[..1], "amd64"), None, "never a windows image");
    }

    #[test]
    fn reads_docker_config_credentials() {
        let json = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
            "ghcr.io":{"username":"bot","password":"s3cret"},
            "helper.example":{"identitytoken":"x"}},
            "credsStore":"desktop"}"#;
        let c = Credentials::parse(json).unwrap();
        assert_eq!(c.for_registry("docker.io"), Some(RegistryAuth::Basic("user".into(), "pass".into())));
        assert_eq!(c.for_registry("ghcr.io"), Some(RegistryAuth::Basic("bot".into(), "s3cret".into())));
        assert_eq!(c.for_registry("helper.example"), None);
        assert_eq!(c.for_registry("quay.io"), None);
        assert!(Credentials::parse("{").unwrap_err().contains("not a docker config"));
    }
}
