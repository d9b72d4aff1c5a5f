//! Benchmark 6: the size of the static binary, of the peers' binaries, and of the image built from
//! the repository's Dockerfile (skipped, with the reason, when podman cannot build it here).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::peers::{linkage, Wrapper};
use crate::util::run_capture;

pub struct Binary {
    pub label: String,
    pub bytes: u64,
    pub linkage: String,
}

pub fn binaries(baton: &Path, peers: &[Wrapper]) -> Vec<Binary> {
    let mut v = vec![Binary {
        label: "baton".into(),
        bytes: fs::metadata(baton).map(|m| m.len()).unwrap_or(0),
        linkage: linkage(baton),
    }];
    for p in peers {
        let real = fs::canonicalize(&p.path).unwrap_or_else(|_| p.path.clone());
        v.push(Binary { label: p.label.clone(), bytes: fs::metadata(&real).map(|m| m.len()).unwrap_or(0), linkage: linkage(&real) });
    }
    v
}

/// The image size in bytes as podman reports it, or why it was skipped. The build context is a
/// temp folder holding only the Dockerfile and the binary at the path it copies from (the repository
/// has no .dockerignore, and sending target/ to the builder would take minutes).
pub fn image(repo: &Path, baton: &Path, tmp: &Path) -> Result<u64, String> {
    let dockerfile = repo.join("Dockerfile");
    if !dockerfile.exists() {
        return Err("no Dockerfile in the repository root".into());
    }
    let context = tmp.join("image-context");
    let bin = context.join("target/x86_64-unknown-linux-musl/release/baton");
    fs::create_dir_all(bin.parent().expect("a parent")).map_err(|e| e.to_string())?;
    fs::copy(&dockerfile, context.join("Dockerfile")).map_err(|e| e.to_string())?;
    fs::copy(baton, &bin).map_err(|e| e.to_string())?;
    if Command::new("podman").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        return Err("podman is not installed".into());
    }
    let iid = tmp.join("image.iid");
    let tag = format!("localhost/baton-bench-size:{}", std::process::id());
    let mut build = Command::new("podman");
    build.arg("build").arg("--no-cache").arg("--iidfile").arg(&iid).arg("-t").arg(&tag).arg("-f").arg(context.join("Dockerfile")).arg(&context);
    let (ok, _, err) = run_capture(&mut build, Duration::from_secs(300))?;
    if !ok {
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        return Err(format!("podman build failed: {last}"));
    }
    let id = fs::read_to_string(&iid).map_err(|e| e.to_string())?.trim().to_string();
    let mut inspect = Command::new("podman");
    inspect.args(["image", "inspect", "--format", "{{.Size}}", &id]);
    let size = run_capture(&mut inspect, Duration::from_secs(60));
    let mut rmi = Command::new("podman");
    rmi.args(["rmi", "-f", &tag]);
    let _ = run_capture(&mut rmi, Duration::from_secs(60));
    let (ok, out, err) = size?;
    if !ok {
        return Err(format!("podman image inspect failed: {}", err.trim()));
    }
    out.trim().parse().map_err(|_| format!("podman image inspect said {:?}", out.trim()))
}
