//! `batonctl inject`: wiring only. The manifest's text goes through `baton_inject::manifest`; images
//! without a command are looked up in the `--images` file, then in their registries.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;
use baton_controller::registry::{BlockingRegistry, Credentials, Settings};
use baton_inject::manifest::{inject_text, objects};
use baton_inject::{Chain, ImageConfig, ImageConfigs, ImageRef, Options, DEFAULT_IMAGE};
use serde_json::Value;

use crate::cli_input::{image_file, read_small, registry_auth};

#[derive(clap::Args, Debug)]
pub struct InjectArgs {
    /// The manifests to read (YAML or JSON, one or many documents, or a List); `-` reads standard
    /// input; a folder gives its `.yaml`, `.yml` and `.json` files in name order. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "-")]
    pub file: Vec<String>,
    /// The image of the `baton-init` init container.
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// ENTRYPOINT and CMD of images whose containers have no command: a YAML map
    /// `IMAGE: {entrypoint: [...], cmd: [...]}`, optionally under `images:` (Argo's format).
    /// Images not in it are read from their registry.
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// The shared folder, mounted in every container.
    #[arg(long, value_name = "DIR", default_value = baton_contract::layout::DEFAULT_DIR)]
    pub dir: String,
    /// A registry (`host[:port]`) to reach over plain HTTP instead of HTTPS; repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
    /// Registry credentials, a docker config file [default: $REGISTRY_AUTH_FILE,
    /// $DOCKER_CONFIG/config.json, ~/.docker/config.json or $XDG_RUNTIME_DIR/containers/auth.json,
    /// the first that exists]. Secrets of type kubernetes.io/dockerconfigjson in the manifest serve
    /// the pods that name them in imagePullSecrets.
    #[arg(long, value_name = "FILE")]
    pub registry_auth: Option<PathBuf>,
}

/// The manifests `-f` names, as (name, text): `-` is standard input, a folder gives its `.yaml`,
/// `.yml` and `.json` files in name order (not its sub-folders), as `linkerd inject` takes them.
pub fn manifests(files: &[String], read: impl Fn(&str) -> Result<String>) -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for file in files {
        let path = Path::new(file);
        if file == "-" || !path.is_dir() {
            found.push((file.clone(), read(file)?));
            continue;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list the folder {file}"))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            })
            .collect();
        names.sort();
        if names.is_empty() {
            anyhow::bail!("the folder {file} holds no .yaml, .yml or .json file");
        }
        for name in names {
            let name = name.display().to_string();
            let text = read(&name)?;
            found.push((name, text));
        }
    }
    Ok(found)
}

/// Injects the manifests: the results on standard output, one after the other (YAML documents
/// joined by `---`), one note per object on standard error.
pub fn run(args: InjectArgs, manifests: &[(String, String)]) -> Result<()> {
    let options = Options::new(&args.image, &args.dir).map_err(anyhow::Error::msg)?;
    let file = image_file(args.images.as_deref())?;
    let all: Vec<&str> = manifests.iter().map(|(_, text)| text.as_str()).collect();
    let settings = Settings {
        insecure: args.insecure_registry.clone(),
        credentials: docker_config(args.registry_auth.as_deref())?,
        pull_secrets: pull_secrets(&all.join("\n---\n")),
    };
    let registry = Lazy { settings, registry: OnceCell::new() };
    let images = Chain(vec![&file, &registry]);
    let many = manifests.len() > 1;
    let mut output = String::new();
    let mut notes = Vec::new();
    for (name, text) in manifests {
        let injected = match inject_text(text, &options, &images) {
            Ok(injected) => injected,
            Err(e) if many => return Err(anyhow::Error::from(e).context(format!("in {name}"))),
            Err(e) => return Err(e.into()),
        };
        let prefix = if many { format!("{name}: ") } else { String::new() };
        notes.extend(injected.notes.iter().map(|note| format!("{prefix}{note}")));
        if !output.is_empty() {
            if !output.ends_with('\n') {
                output.push('\n');
            }
            output.push_str("---\n");
        }
        output.push_str(&injected.text);
    }
    let mut err = std::io::stderr().lock();
    for note in &notes {
        writeln!(err, "batonctl inject: {note}")?;
    }
    let mut out = std::io::stdout().lock();
    out.write_all(output.as_bytes()).context("cannot write to standard output")?;
    out.flush().context("cannot write to standard output")
}

/// The registry client, started only when an image is not in the `--images` file.
struct Lazy {
    settings: Settings,
    registry: OnceCell<Result<BlockingRegistry, String>>,
}

impl ImageConfigs for Lazy {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        let registry = self.registry.get_or_init(|| {
            BlockingRegistry::new(self.settings.clone())
                .map_err(|e| format!("cannot start the registry client: {e}"))
        });
        match registry {
            Ok(registry) => registry.config(image),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The docker config: the one asked for (which must be readable), else the first of the usual
/// places that exists (an unreadable one is skipped with a warning).
fn docker_config(explicit: Option<&Path>) -> Result<Credentials> {
    if let Some(path) = explicit {
        return registry_auth(path);
    }
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let candidates = [
        env("REGISTRY_AUTH_FILE"),
        env("DOCKER_CONFIG").map(|d| d.join("config.json")),
        env("HOME").map(|h| h.join(".docker/config.json")),
        env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")),
    ];
    for path in candidates.into_iter().flatten() {
        if !path.exists() {
            continue;
        }
        match read_small(&path).and_then(|t| Credentials::parse(&t).map_err(anyhow::Error::msg)) {
            Ok(credentials) => return Ok(credentials),
            Err(e) => {
                eprintln!("batonctl inject: warning: ignoring the docker config {}: {e:#}", path.display())
            }
        }
    }
    Ok(Credentials::default())
}

/// The `kubernetes.io/dockerconfigjson` Secrets of the manifest, by name.
fn pull_secrets(text: &str) -> BTreeMap<String, Credentials> {
    let mut found = BTreeMap::new();
    for secret in objects(text).unwrap_or_default() {
        if secret.get("kind").and_then(Value::as_str) != Some("Secret")
            || secret.get("type").and_then(Value::as_str) != Some("kubernetes.io/dockerconfigjson")
        {
            continue;
        }
        let Some(name) = secret.pointer("/metadata/name").and_then(Value::as_str) else { continue };
        let json = match (
            secret.pointer("/stringData/.dockerconfigjson"),
            secret.pointer("/data/.dockerconfigjson"),
        ) {
            (Some(Value::String(plain)), _) => Some(plain.clone()),
            (_, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
            _ => None,
        };
        match json.as_deref().map(Credentials::parse) {
            Some(Ok(credentials)) => {
                found.insert(name.to_string(), credentials);
            }
            _ => eprintln!(
                "batonctl inject: warning: Secret {name} holds no usable .dockerconfigjson; ignored"
            ),
        }
    }
    found
}
