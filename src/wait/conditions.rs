//! What a start condition is, how it is written on the command line, and how the conditions that are
//! files (a `--wait-file`, a gate) are checked. Steps are checked in `predecessors.rs`.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{Check, Waiter};

/// One part of a start condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// Step `name` has ended; successfully unless `any_end`.
    Step { name: String, any_end: bool },
    /// The path exists (symbolic links followed).
    File(PathBuf),
    /// The path exists and is not empty.
    NonEmpty(PathBuf),
    /// The gate of step `name` was released (`baton release`).
    Gate(String),
}

impl Cond {
    /// `STEP` or `STEP:done`, as `--after` takes it.
    pub fn parse_after(text: &str) -> Result<Cond, String> {
        let (name, any_end) = match text.strip_suffix(":done") {
            Some(name) => (name, true),
            None => (text, false),
        };
        baton_contract::name::check_step(name).map_err(|e| format!("--after {text}: {e}"))?;
        Ok(Cond::Step { name: name.to_string(), any_end })
    }

    /// `STEP`, `STEP:done`, `file:PATH` or `nonempty:PATH`, as `baton wait` takes it.
    pub fn parse_spec(text: &str) -> Result<Cond, String> {
        if let Some(path) = text.strip_prefix("file:") {
            return nonempty_path(path, text).map(Cond::File);
        }
        if let Some(path) = text.strip_prefix("nonempty:") {
            return nonempty_path(path, text).map(Cond::NonEmpty);
        }
        Cond::parse_after(text).map_err(|e| e.replace("--after ", ""))
    }

    /// How `baton status` and error messages name what is missing.
    pub fn describe(&self) -> String {
        match self {
            Cond::Step { name, any_end: false } => format!("step {name}"),
            Cond::Step { name, any_end: true } => format!("step {name} (any end)"),
            Cond::File(p) => format!("file {}", p.display()),
            Cond::NonEmpty(p) => format!("non-empty file {}", p.display()),
            Cond::Gate(name) => format!("gate of step {name} (baton release {name})"),
        }
    }
}

fn nonempty_path(path: &str, spec: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        Err(format!("invalid wait spec {spec:?}: the path is empty"))
    } else {
        Ok(PathBuf::from(path))
    }
}

impl Waiter<'_> {
    /// Checks one condition, its watch set up first.
    pub(super) fn check_one(&mut self, cond: &Cond) -> Check {
        match cond {
            Cond::Step { name, any_end } => self.check_step(name, *any_end),
            Cond::File(p) | Cond::NonEmpty(p) => {
                self.watch_path(p);
                let found = match fs::metadata(p) {
                    Ok(m) => Ok(!matches!(cond, Cond::NonEmpty(_)) || m.len() > 0),
                    Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(false),
                    Err(e) => Err(e),
                };
                match found {
                    Ok(true) => Check::Met,
                    Ok(false) => Check::Pending,
                    Err(e) => self.trouble(cond, e, || format!("cannot look at {}", p.display())),
                }
            }
            Cond::Gate(name) => {
                let gate = self.layout.gate(name);
                self.watch_file(&gate);
                match fs::symlink_metadata(&gate) {
                    Ok(_) => Check::Met,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Check::Pending,
                    Err(e) => self.trouble(cond, e, || format!("cannot look at the gate {}", gate.display())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_wait_specs() {
        assert_eq!(Cond::parse_after("build").unwrap(), Cond::Step { name: "build".into(), any_end: false });
        assert_eq!(Cond::parse_after("build:done").unwrap(), Cond::Step { name: "build".into(), any_end: true });
        assert!(Cond::parse_after("Build").unwrap_err().contains("--after Build"));
        assert!(Cond::parse_after("a:b").is_err());
        assert_eq!(Cond::parse_spec("file:/x/y").unwrap(), Cond::File("/x/y".into()));
        assert_eq!(Cond::parse_spec("nonempty:rel").unwrap(), Cond::NonEmpty("rel".into()));
        assert!(Cond::parse_spec("file:").unwrap_err().contains("path is empty"));
        let e = Cond::parse_spec("Nope").unwrap_err();
        assert!(e.starts_with("Nope: invalid step name"), "{e}");
    }

    #[test]
    fn descriptions_name_the_missing_thing() {
        assert_eq!(Cond::parse_after("a:done").unwrap().describe(), "step a (any end)");
        assert_eq!(Cond::NonEmpty("/d/ready".into()).describe(), "non-empty file /d/ready");
        assert_eq!(Cond::Gate("g".into()).describe(), "gate of step g (baton release g)");
    }
}
