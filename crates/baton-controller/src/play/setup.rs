//! The kubelet's set-up around `podman kube play`: what is checked before anything is made (podman,
//! the pod's name, the images), the termination-message files, the emptyDirs and the work folder, and
//! their removal once the run status has been shown.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::podman::Podman;
use super::rewrite::{self, Container};
use super::{io, manifest, Error, Options};

/// The sentence for an image podman does not have.
pub(super) fn missing_image(image: &str) -> String {
    let how = if image.starts_with("localhost/baton:") {
        format!("build it in baton's repository with `make static && podman build -t {image} .`")
    } else if image.starts_with("localhost/busybox-step:") {
        "build it in baton's repository with `e2e/demo.sh` (it builds both images of the examples) or from \
         e2e/busybox-step.Containerfile"
            .to_string()
    } else {
        format!("pull or build it first (`podman pull {image}`): batonctl play pulls nothing")
    };
    format!("the image {image} is not in podman's image store: {how}")
}

/// Checks what can be checked before anything is made: podman runs, the pod's name is free, every
/// image is there. Returns podman's version.
pub(super) fn check(podman: &Podman, m: &manifest::Manifest) -> Result<String, Error> {
    let version = podman.version()?;
    if podman.pod_exists(&m.name)? {
        return Err(Error::PodExists(m.name.clone()));
    }
    let mut images: Vec<String> = Vec::new();
    for c in rewrite::containers(&m.pod) {
        if !images.contains(&c.image) {
            images.push(c.image);
        }
    }
    let mut missing = Vec::new();
    for image in &images {
        if !podman.image_exists(image)? {
            missing.push(missing_image(image));
        }
    }
    if missing.is_empty() {
        Ok(version)
    } else {
        Err(Error::MissingImages(missing))
    }
}

/// What the kubelet's set-up made.
pub(super) struct SetUp {
    pub(super) dir: PathBuf,
    /// `<dir>/containers`: the termination-message files.
    pub(super) host: PathBuf,
    pub(super) play_file: PathBuf,
    /// The emptyDirs' folders on this host.
    pub(super) roots: Vec<PathBuf>,
    pub(super) cleanup: Cleanup,
}

/// The kubelet's set-up: a fresh 0666 termination-message file per container, fresh 0777 emptyDirs,
/// and the Pod podman plays.
pub(super) fn set_up(
    podman: &Podman,
    m: &manifest::Manifest,
    containers: &[Container],
    opts: &Options,
    out: &mut dyn Write,
) -> Result<SetUp, Error> {
    let dir = work_dir(opts.work_dir.as_deref(), &m.name)?;
    let host = dir.join("containers");
    for c in containers {
        let file = rewrite::termination_file(&host, &c.name);
        std::fs::create_dir_all(file.parent().unwrap_or(&host))
            .map_err(io(format!("create {}", host.display())))?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&file)
            .map_err(io(format!("create {}", file.display())))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o666))
            .map_err(io(format!("chmod {}", file.display())))?;
    }
    let play_file = dir.join("play.json");
    write_json(&play_file, &rewrite::for_podman(&m.pod, &host))?;

    let mut cleanup =
        Cleanup { podman: podman.clone(), pod: m.name.clone(), volumes: Vec::new(), keep: opts.keep };
    let mut roots = Vec::new();
    for v in rewrite::empty_dirs(&m.pod) {
        let name = rewrite::volume_name(&m.name, &v);
        if podman.volume_exists(&name)? {
            podman.volume_rm(&name)?;
            let _ = writeln!(out, "batonctl: replaced the volume {name} an earlier run left");
        }
        let root = podman.volume_create(&name)?;
        cleanup.volumes.push(name);
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777))
            .map_err(io(format!("chmod {}", root.display())))?;
        roots.push(root);
    }
    Ok(SetUp { dir, host, play_file, roots, cleanup })
}

pub(super) fn write_json(file: &Path, value: &Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(file, text + "\n").map_err(io(format!("write {}", file.display())))
}

/// The work folder: the one asked for, or a new one in $TMPDIR.
fn work_dir(asked: Option<&Path>, pod: &str) -> Result<PathBuf, Error> {
    if let Some(dir) = asked {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        if std::fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?.next().is_some() {
            return Err(Error::Io {
                what: format!("use {} as the work folder", dir.display()),
                source: std::io::Error::other("it is not empty; give an empty or new folder"),
            });
        }
        return Ok(dir.to_path_buf());
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    for n in 0..100u32 {
        let dir = std::env::temp_dir().join(format!(
            "batonctl-play-{pod}-{}-{}",
            stamp.as_secs(),
            std::process::id() + n
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io(format!("chmod {}", dir.display())))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("create {}", dir.display()))(e)),
        }
    }
    Err(io("create a work folder in $TMPDIR")(std::io::Error::other("every name tried exists")))
}

/// Removes the pod and its volumes when dropped, unless they are kept.
#[derive(Debug)]
pub(super) struct Cleanup {
    pub(super) podman: Podman,
    pub(super) pod: String,
    pub(super) volumes: Vec<String>,
    pub(super) keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if self.podman.pod_exists(&self.pod).unwrap_or(false) {
            let _ = self.podman.pod_rm(&self.pod);
        }
        for v in &self.volumes {
            let _ = self.podman.volume_rm(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_image_says_how_to_get_it() {
        assert_eq!(
            missing_image("localhost/baton:0.1.0"),
            "the image localhost/baton:0.1.0 is not in podman's image store: build it in baton's repository \
             with `make static && podman build -t localhost/baton:0.1.0 .`"
        );
        assert!(missing_image("localhost/busybox-step:dev").contains("e2e/busybox-step.Containerfile"));
        assert!(
            missing_image("docker.io/library/alpine:3").contains("podman pull docker.io/library/alpine:3")
        );
    }
}
