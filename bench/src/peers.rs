//! The wrappers compared: baton and the PID-1 inits from Debian's packages, and the bare command.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bare,
    /// `baton run -- CMD`: no step name, nothing published.
    Baton,
    /// `baton run --name S --dir D -- CMD`: claims a step folder and publishes the exit record.
    BatonNamed,
    Tini,
    DumbInit,
    Catatonit,
}

#[derive(Clone, Debug)]
pub struct Wrapper {
    pub label: String,
    pub kind: Kind,
    pub path: PathBuf,
    /// Package version or binary description, for the doc.
    pub version: String,
}

impl Wrapper {
    /// The full argv that runs `child` under this wrapper. `named` gives the shared directory and a
    /// step name for `BatonNamed`.
    pub fn argv(&self, child: &[OsString], named: Option<(&Path, &str)>) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        match self.kind {
            Kind::Bare => {}
            Kind::Baton => v.extend(["run".into(), "--".into()]),
            Kind::BatonNamed => {
                let (dir, name) = named.expect("a named baton needs a dir and a name");
                v.extend(["run".into(), "--name".into(), name.into(), "--dir".into(), dir.into(), "--".into()]);
            }
            Kind::Tini => v.extend(["-s".into(), "--".into()]),
            Kind::DumbInit => {}
            Kind::Catatonit => v.push("--".into()),
        }
        let mut argv = Vec::new();
        if self.kind != Kind::Bare {
            argv.push(self.path.clone().into_os_string());
        }
        argv.extend(v);
        argv.extend(child.iter().cloned());
        argv
    }

    pub fn command(&self, child: &[OsString], named: Option<(&Path, &str)>) -> Command {
        let argv = self.argv(child, named);
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }

    pub fn shown(&self) -> String {
        match self.kind {
            Kind::Bare => "CMD".into(),
            Kind::Baton => "baton run -- CMD".into(),
            Kind::BatonNamed => "baton run --name S --dir D -- CMD".into(),
            Kind::Tini => format!("{} -s -- CMD", self.label),
            Kind::DumbInit => "dumb-init CMD".into(),
            Kind::Catatonit => "catatonit -- CMD".into(),
        }
    }

    pub fn is_baton(&self) -> bool {
        matches!(self.kind, Kind::Baton | Kind::BatonNamed)
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn dpkg_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]).output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// Linkage as `file(1)` says it: "static" or "dynamic".
pub fn linkage(path: &Path) -> String {
    let out = Command::new("file").arg("-L").arg(path).output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            if text.contains("statically linked") || text.contains("static-pie linked") {
                "static".into()
            } else if text.contains("dynamically linked") {
                "dynamic".into()
            } else {
                "?".into()
            }
        }
        Err(_) => "?".into(),
    }
}

/// The peers found on this machine, and the names of those missing.
pub fn discover() -> (Vec<Wrapper>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (label, kind, package) in [
        ("tini", Kind::Tini, "tini"),
        ("tini-static", Kind::Tini, "tini"),
        ("dumb-init", Kind::DumbInit, "dumb-init"),
        ("catatonit", Kind::Catatonit, "catatonit"),
    ] {
        match which(label) {
            Some(path) => {
                let version = dpkg_version(package).map(|v| format!("Debian {package} {v}")).unwrap_or_else(|| "?".into());
                let version = format!("{version}, {}", linkage(&path));
                found.push(Wrapper { label: label.into(), kind, path, version });
            }
            None => missing.push(label.to_string()),
        }
    }
    (found, missing)
}

pub fn bare() -> Wrapper {
    Wrapper { label: "bare".into(), kind: Kind::Bare, path: PathBuf::new(), version: String::new() }
}

pub fn baton(path: &Path, named: bool) -> Wrapper {
    Wrapper {
        label: if named { "baton (named step)".into() } else { "baton".into() },
        kind: if named { Kind::BatonNamed } else { Kind::Baton },
        path: path.to_path_buf(),
        version: format!("see the row above, {}", linkage(path)),
    }
}
