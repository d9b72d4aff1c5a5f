//! The pod's state as podman and the host files tell it: `podman inspect`, and each ended container's
//! message read as the kubelet reads it.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::Value;

use super::pod_status::{self, ContainerInspect, Reading};
use super::podman::Podman;
use super::rewrite::{self, Container};
use super::{io, message, Error};

/// The pod's state as podman and the host files tell it.
pub(super) struct Watch<'a> {
    pub(super) podman: &'a Podman,
    pub(super) pod: &'a Value,
    pub(super) name: &'a str,
    pub(super) containers: &'a [Container],
    pub(super) host: &'a Path,
    pub(super) reading: Reading,
}

impl Watch<'_> {
    pub(super) fn refresh(&mut self) -> Result<(), Error> {
        let names: Vec<String> =
            self.containers.iter().map(|c| format!("{}-{}", self.name, c.name)).collect();
        self.reading.containers = self.podman.inspect(&names)?;
        if self.reading.pod.id.is_empty() {
            if let Ok(p) = self.podman.pod_inspect(self.name) {
                self.reading.pod = p;
            }
        }
        for c in self.containers {
            if self.reading.messages.contains_key(&c.name) {
                continue; // an ended container's message does not change
            }
            let Some(i) = self.reading.container(self.name, &c.name).cloned() else { continue };
            if let Some(m) = self.message(c, &i)? {
                self.reading.messages.insert(c.name.clone(), m);
            }
        }
        Ok(())
    }

    /// The message of an ended container as the kubelet reads it (before the pod-wide cut).
    fn message(&self, c: &Container, i: &ContainerInspect) -> Result<Option<Vec<u8>>, Error> {
        let ended = matches!(i.state.status.as_str(), "exited" | "stopped")
            && pod_status::secs(i.state.started_at.as_deref()).is_some();
        if !ended {
            return Ok(None);
        }
        let file = rewrite::termination_file(self.host, &c.name);
        let tail = read_tail(&file, message::FILE_LIMIT).map_err(io(format!("read {}", file.display())))?;
        let logs = || self.podman.logs(&i.name, message::LOG_LINES);
        Ok(Some(message::read(tail, c.fallback_to_logs, i.state.exit_code, logs)?))
    }

    pub(super) fn pod_json(&self) -> Value {
        pod_status::pod_json(self.pod, &self.reading)
    }
}

/// The last `n` bytes of a file (a missing file is empty), without following a link.
fn read_tail(file: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n as u64)))?;
    let mut bytes = Vec::new();
    f.take(n as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// podman's error among its play output.
pub(super) fn last_error(log: &str) -> String {
    log.lines()
        .rev()
        .find(|l| l.starts_with("Error: "))
        .or_else(|| log.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no output")
        .trim_start_matches("Error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_of_a_file_is_read_without_the_rest() {
        let file = std::env::temp_dir().join(format!("baton-play-tail-{}", std::process::id()));
        std::fs::write(&file, "x".repeat(5000) + "end").unwrap();
        let tail = read_tail(&file, 4096).unwrap();
        assert_eq!(tail.len(), 4096);
        assert!(tail.ends_with(b"xend"));
        std::fs::remove_file(&file).unwrap();
        assert!(read_tail(&file, 4096).unwrap().is_empty());
    }
}
