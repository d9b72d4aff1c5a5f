//! What an image runs when a container gives no `command`: its ENTRYPOINT and CMD.
//!
//! The injection asks an [`ImageConfigs`] only for containers without a command. Sources: an
//! [`ImageFile`] (the `--images` file, as Argo's controller takes it), a registry client (in the
//! controller crate), or several of them in a [`Chain`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// The two parts of an image's config that decide what a container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
}

/// One image to look up, with what the pod says about pulling it.
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// The image as the container names it (`golang:1.23`, `ghcr.io/org/app@sha256:…`).
    pub image: &'a str,
    /// The names of the pod's `imagePullSecrets`.
    pub pull_secrets: &'a [String],
    /// The object's namespace, when the manifest says it (where the secrets live).
    pub namespace: Option<&'a str>,
    /// The CPU architecture whose variant of a multi-platform image counts ([`crate::pod_arch`]).
    pub arch: &'a str,
}

/// A source of image configs. `Ok(None)`: this source does not know the image; `Err`: it tried and
/// failed, with the reason in a few words (it ends up inside the refusal's sentence).
pub trait ImageConfigs {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String>;
}

/// Knows no image: for pods whose containers all have a command.
pub struct NoImages;

impl ImageConfigs for NoImages {
    fn config(&self, _: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        Ok(None)
    }
}

/// Answers resolved ahead of time, by image name (for an asynchronous caller: list the images with
/// [`crate::images_to_resolve`], look them up, then inject with the answers).
impl ImageConfigs for BTreeMap<String, Result<ImageConfig, String>> {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        self.get(image.image).cloned().transpose()
    }
}

/// Asks each source in turn; the first that knows the image answers. When none does, the failures
/// of those that tried are joined into the reason.
pub struct Chain<'a>(pub Vec<&'a dyn ImageConfigs>);

impl ImageConfigs for Chain<'_> {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        let mut failures = Vec::new();
        for source in &self.0 {
            match source.config(image) {
                Ok(Some(config)) => return Ok(Some(config)),
                Ok(None) => {}
                Err(reason) => failures.push(reason),
            }
        }
        if failures.is_empty() {
            Ok(None)
        } else {
            Err(failures.join("; "))
        }
    }
}

/// The `--images` file: a YAML (or JSON) map `IMAGE: {entrypoint: [...], cmd: [...]}`, optionally
/// under a top-level `images:` key. An image matches by its exact name or by its normalised
/// reference (`busybox` = `docker.io/library/busybox:latest`).
#[derive(Debug, Clone, Default)]
pub struct ImageFile {
    images: BTreeMap<String, ImageConfig>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FileShape {
    Wrapped { images: BTreeMap<String, ImageConfig> },
    Bare(BTreeMap<String, ImageConfig>),
}

impl ImageFile {
    /// Parses the file's text; the error says what is wrong in it.
    pub fn parse(text: &str) -> Result<ImageFile, String> {
        if text.trim().is_empty() {
            return Ok(ImageFile::default());
        }
        let shape: FileShape = serde_saphyr::from_str(text).map_err(|e| {
            format!(
                "it is not a map of IMAGE: {{entrypoint: [...], cmd: [...]}} (optionally under images:): {e}"
            )
        })?;
        let listed = match shape {
            FileShape::Wrapped { images } => images,
            FileShape::Bare(images) => images,
        };
        let mut images = BTreeMap::new();
        for (name, config) in listed {
            images.insert(normalize(&name), config.clone());
            images.insert(name, config);
        }
        Ok(ImageFile { images })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
}

impl ImageConfigs for ImageFile {
    fn config(&self, image: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
        Ok(self.images.get(image.image).or_else(|| self.images.get(&normalize(image.image))).cloned())
    }
}

/// The full reference a container runtime pulls for `image`: registry, repository, and tag
/// (`:latest` when neither tag nor digest is given). `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first, rest.to_string())
        }
        Some(_) => ("docker.io", name.to_string()),
        None => ("docker.io", format!("library/{name}")),
    };
    let registry = if registry == "index.docker.io" { "docker.io" } else { registry };
    let path = if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
    let last = path.rsplit('/').next().unwrap_or_default();
    let tag = if digest.is_none() && !last.contains(':') { ":latest" } else { "" };
    match digest {
        Some(digest) => format!("{registry}/{path}{tag}@{digest}"),
        None => format!("{registry}/{path}{tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(file: &ImageFile, image: &str) -> Option<ImageConfig> {
        file.config(&ImageRef { image, pull_secrets: &[], namespace: None, arch: "amd64" }).unwrap()
    }

    #[test]
    fn normalizes_like_a_container_runtime() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("golang:1.23"), "docker.io/library/golang:1.23");
        assert_eq!(normalize("org/app"), "docker.io/org/app:latest");
        assert_eq!(normalize("index.docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("ghcr.io/org/app:v1"), "ghcr.io/org/app:v1");
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalize("localhost/app:dev"), "localhost/app:dev");
        assert_eq!(normalize("ghcr.io/app@sha256:ab"), "ghcr.io/app@sha256:ab");
        assert_eq!(normalize("ghcr.io/app:v1@sha256:ab"), "ghcr.io/app:v1@sha256:ab");
    }

    #[test]
    fn reads_a_bare_map_and_one_under_images() {
        let bare = ImageFile::parse("golang:1.23:\n  entrypoint: [go]\n  cmd: [version]\n").unwrap();
        let want = ImageConfig { entrypoint: vec!["go".into()], cmd: vec!["version".into()] };
        assert_eq!(lookup(&bare, "golang:1.23"), Some(want.clone()));
        assert_eq!(lookup(&bare, "docker.io/library/golang:1.23"), Some(want));
        let wrapped = ImageFile::parse("images:\n  busybox:\n    cmd: [sh]\n").unwrap();
        assert_eq!(lookup(&wrapped, "busybox:latest").unwrap().cmd, ["sh"]);
        assert_eq!(lookup(&wrapped, "alpine"), None);
        assert!(ImageFile::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_a_file_of_another_shape_with_a_sentence() {
        let err = ImageFile::parse("busybox:\n  entrypoints: [sh]\n").unwrap_err();
        assert!(err.contains("not a map of IMAGE"), "{err}");
        assert!(ImageFile::parse("- a\n- b\n").is_err());
    }

    #[test]
    fn answers_resolved_ahead() {
        let mut resolved = BTreeMap::new();
        resolved.insert("a".to_string(), Ok(ImageConfig { entrypoint: vec!["/a".into()], cmd: vec![] }));
        resolved.insert("b".to_string(), Err("401 Unauthorized".to_string()));
        let ask =
            |image| resolved.config(&ImageRef { image, pull_secrets: &[], namespace: None, arch: "amd64" });
        assert_eq!(ask("a").unwrap().unwrap().entrypoint, ["/a"]);
        assert_eq!(ask("b").unwrap_err(), "401 Unauthorized");
        assert_eq!(ask("c"), Ok(None));
    }

    #[test]
    fn a_chain_answers_with_the_first_that_knows() {
        struct Failing;
        impl ImageConfigs for Failing {
            fn config(&self, _: &ImageRef<'_>) -> Result<Option<ImageConfig>, String> {
                Err("registry down".into())
            }
        }
        let file = ImageFile::parse("busybox: {cmd: [sh]}\n").unwrap();
        let chain = Chain(vec![&file, &Failing]);
        let ask =
            |image| chain.config(&ImageRef { image, pull_secrets: &[], namespace: None, arch: "amd64" });
        assert_eq!(ask("busybox").unwrap().unwrap().cmd, ["sh"]);
        assert_eq!(ask("alpine").unwrap_err(), "registry down");
        assert_eq!(
            Chain(vec![&file, &NoImages]).config(&ImageRef {
                image: "x",
                pull_secrets: &[],
                namespace: None,
                arch: "amd64"
            }),
            Ok(None)
        );
    }
}
