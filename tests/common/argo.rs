//! A pod's `/var/run/argo` for the Argo mode's tests: the built binary invoked as `argoexec` over a
//! temporary folder (BATON_ARGO_DIR), with the termination log in a file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Baton, BATON};

/// A pod's `/var/run/argo` in a temporary folder, and the binary under the name `argoexec`.
pub struct Argo {
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub dir: PathBuf,
    argoexec: PathBuf,
}

impl Argo {
    pub fn new() -> Argo {
        let tmp = tempfile::Builder::new().prefix("baton-argo-").tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = root.join("var-run-argo");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let argoexec = root.join("argoexec");
        std::os::unix::fs::symlink(BATON.as_str(), &argoexec).unwrap();
        // As in TestEmissary: an empty template.
        fs::write(dir.join("template"), "{}").unwrap();
        Argo { _tmp: tmp, root, dir, argoexec }
    }

    /// A pod whose `/var/run/argo` every UID can reach (for attacks from another container).
    pub fn open_to_all() -> Argo {
        let argo = Argo::new();
        fs::set_permissions(&argo.root, fs::Permissions::from_mode(0o755)).unwrap();
        argo
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn ctr(&self, name: &str, file: &str) -> PathBuf {
        self.dir.join("ctr").join(name).join(file)
    }

    pub fn template(&self, json: &str) {
        fs::write(self.dir.join("template"), json).unwrap();
    }

    /// `argoexec ARGS…` with this pod's folders and nothing inherited that changes its behaviour.
    pub fn argoexec<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, label: &str, args: I) -> Baton {
        Baton::new(&self.root, label)
            .exe(&self.argoexec)
            .args(args)
            .env("BATON_ARGO_DIR", &self.dir)
            .env("BATON_ARGO_TERMINATION_PATH", self.termination(label))
            .env("BATON_ARGO_CONFIG_DIR", self.p("argo-config"))
            .env("BATON_ARGOEXEC_UPSTREAM", self.p("no-upstream"))
    }

    /// Container `name` as Argo's controller wraps it: `emissary <log flags> -- sh -c SCRIPT`.
    pub fn emissary(&self, name: &str, script: &str) -> Baton {
        self.argoexec(name, ["emissary", "--loglevel", "info", "--log-format", "text", "--gloglevel", "0", "--"])
            .args(["sh", "-c", script])
            .env("ARGO_CONTAINER_NAME", name)
            .env("ARGO_INCLUDE_SCRIPT_OUTPUT", "true")
            .env("ROOT", &self.root)
    }

    pub fn termination(&self, label: &str) -> PathBuf {
        self.root.join(format!("{label}.termination-log"))
    }

    pub fn exitcode(&self, name: &str) -> String {
        fs::read_to_string(self.ctr(name, "exitcode")).unwrap_or_else(|e| panic!("ctr/{name}/exitcode: {e}"))
    }

    pub fn read(&self, path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// The entries of a .tgz, as `tar tzf` lists them.
pub fn tgz_entries(path: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("tzf").arg(path).output().unwrap();
    assert!(out.status.success(), "tar tzf {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}
