//! The thin podman driver: one method per podman command `batonctl play` runs, nothing decided here.
//! Every child runs in its own process group, so a Ctrl-C in the terminal reaches `batonctl` alone,
//! which then stops the pod as a deletion would.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};

use super::pod_status::{ContainerInspect, PodInspect};

/// The most read from one podman command: inspect output of a large pod is far below it.
const MAX_OUTPUT: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PodmanError {
    #[error("cannot run podman ({0}): install it (apt-get install podman runc) or put it on PATH")]
    Missing(std::io::Error),
    #[error("podman {what} failed: {why}")]
    Failed { what: String, why: String },
}

/// podman, with the settings file it should read (`CONTAINERS_CONF`), when one was chosen.
#[derive(Clone, Debug, Default)]
pub struct Podman {
    pub containers_conf: Option<PathBuf>,
}

impl Podman {
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new("podman");
        cmd.args(args).stdin(Stdio::null()).process_group(0);
        if let Some(conf) = &self.containers_conf {
            cmd.env("CONTAINERS_CONF", conf);
        }
        cmd
    }

    /// Runs podman to its end; standard output and error are returned.
    fn run(&self, what: &str, args: &[&str]) -> Result<Output, PodmanError> {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(PodmanError::Missing)?;
        wait_capped(child).map_err(|e| PodmanError::Failed { what: what.to_string(), why: e.to_string() })
    }

    /// Runs podman and expects it to succeed; its standard output.
    fn ok(&self, what: &str, args: &[&str]) -> Result<String, PodmanError> {
        let out = self.run(what, args)?;
        if !out.status.success() {
            return Err(PodmanError::Failed { what: what.to_string(), why: last_line(&out.stderr) });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn version(&self) -> Result<String, PodmanError> {
        Ok(self.ok("version", &["version", "--format", "{{.Client.Version}}"])?.trim().to_string())
    }

    pub fn image_exists(&self, image: &str) -> Result<bool, PodmanError> {
        Ok(self.run("image exists", &["image", "exists", image])?.status.success())
    }

    pub fn pod_exists(&self, pod: &str) -> Result<bool, PodmanError> {
        Ok(self.run("pod exists", &["pod", "exists", pod])?.status.success())
    }

    pub fn volume_exists(&self, volume: &str) -> Result<bool, PodmanError> {
        Ok(self.run("volume exists", &["volume", "exists", volume])?.status.success())
    }

    /// Creates a named volume; returns its folder on this host.
    pub fn volume_create(&self, volume: &str) -> Result<PathBuf, PodmanError> {
        self.ok(&format!("volume create {volume}"), &["volume", "create", volume])?;
        let mp = self.ok(
            &format!("volume inspect {volume}"),
            &["volume", "inspect", volume, "--format", "{{.Mountpoint}}"],
        )?;
        Ok(PathBuf::from(mp.trim()))
    }

    pub fn volume_rm(&self, volume: &str) -> Result<(), PodmanError> {
        self.ok(&format!("volume rm {volume}"), &["volume", "rm", "-f", volume]).map(drop)
    }

    pub fn pod_rm(&self, pod: &str) -> Result<(), PodmanError> {
        self.ok(&format!("pod rm {pod}"), &["pod", "rm", "-f", "-t", "0", pod]).map(drop)
    }

    /// `podman kube play FILE`, started; its standard output and error go to one pipe, in order.
    pub fn kube_play(&self, file: &Path) -> Result<(Child, std::io::PipeReader), PodmanError> {
        let (reader, writer) = std::io::pipe().map_err(PodmanError::Missing)?;
        let err = writer.try_clone().map_err(PodmanError::Missing)?;
        let mut cmd = self.command(["kube".as_ref(), "play".as_ref(), file.as_os_str()]);
        let child = cmd.stdout(writer).stderr(err).spawn().map_err(PodmanError::Missing)?;
        drop(cmd); // closes this process's copies of the pipe's write end
        Ok((child, reader))
    }

    /// `podman events` for containers, as JSON lines, from `since` (RFC 3339) on: podman takes a
    /// moment to start, and the events of that moment are not lost.
    pub fn events(&self, since: &str) -> Result<(Child, BufReader<ChildStdout>), PodmanError> {
        let mut child = self
            .command(["events", "--format", "json", "--filter", "type=container", "--since", since])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PodmanError::Missing)?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| PodmanError::Failed { what: "events".into(), why: "no standard output".into() })?;
        Ok((child, BufReader::new(out)))
    }

    /// `podman pod kill -s SIGNAL`: the signal to every container's first process. Started, not
    /// awaited: the containers' ends arrive as events. (Not `podman pod stop -t N`: podman 4.3 holds
    /// the containers for the whole grace period, and a second, harder stop waits behind it.)
    pub fn pod_kill(&self, pod: &str, signal: &str) -> Result<Child, PodmanError> {
        self.command(["pod", "kill", "-s", signal, pod])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(PodmanError::Missing)
    }

    /// `podman inspect` of the named containers that exist (the others are left out).
    pub fn inspect(&self, names: &[String]) -> Result<Vec<ContainerInspect>, PodmanError> {
        let mut args = vec!["container", "inspect"];
        args.extend(names.iter().map(String::as_str));
        // Exit 125 when one of them does not exist; the JSON still lists the others.
        let out = self.run("inspect", &args)?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(&text).map_err(|e| PodmanError::Failed {
            what: "inspect".into(),
            why: format!("its JSON is not as expected: {e}"),
        })
    }

    pub fn pod_inspect(&self, pod: &str) -> Result<PodInspect, PodmanError> {
        let text = self.ok(&format!("pod inspect {pod}"), &["pod", "inspect", pod])?;
        serde_json::from_str(&text).map_err(|e| PodmanError::Failed {
            what: format!("pod inspect {pod}"),
            why: format!("its JSON is not as expected: {e}"),
        })
    }

    /// The last `lines` lines of a container's log, standard output and error as they came.
    pub fn logs(&self, container: &str, lines: usize) -> Result<Vec<u8>, PodmanError> {
        let failed =
            |e: std::io::Error| PodmanError::Failed { what: format!("logs {container}"), why: e.to_string() };
        let (mut reader, writer) = std::io::pipe().map_err(failed)?;
        let err = writer.try_clone().map_err(failed)?;
        let mut cmd = self.command(["logs", "--tail", &lines.to_string(), container]);
        let mut child = cmd.stdout(writer).stderr(err).spawn().map_err(PodmanError::Missing)?;
        drop(cmd);
        let mut log = Vec::new();
        (&mut reader).take(MAX_OUTPUT).read_to_end(&mut log).map_err(failed)?;
        child.wait().map_err(failed)?;
        Ok(log)
    }
}

/// Waits for a child while reading both of its pipes (capped), so that neither can fill up.
fn wait_capped(mut child: Child) -> std::io::Result<Output> {
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = stderr {
            let _ = e.take(MAX_OUTPUT).read_to_end(&mut buf);
        }
        buf
    });
    let mut stdout = Vec::new();
    if let Some(out) = child.stdout.take() {
        out.take(MAX_OUTPUT).read_to_end(&mut stdout)?;
    }
    let status: ExitStatus = child.wait()?;
    let stderr = err_thread.join().unwrap_or_default();
    Ok(Output { status, stdout, stderr })
}

/// The last non-empty line podman wrote: its error.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
    line.trim().trim_start_matches("Error: ").to_string()
}

/// Reads lines until the end; each is handed to `f`.
pub fn each_line<R: BufRead>(reader: R, mut f: impl FnMut(String) -> bool) {
    for line in reader.lines() {
        match line {
            Ok(l) => {
                if !f(l) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
