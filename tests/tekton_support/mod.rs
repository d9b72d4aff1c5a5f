//! Shared by the Tekton-mode suites (tests/tekton*.rs): a pod's `/tekton` in a temporary folder
//! (BATON_TEKTON_ROOT), the built binary under the name `entrypoint`, and readers of what it writes.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

#[path = "../common/under_test.rs"]
mod under_test;
#[allow(unused_imports)] // each suite uses a part
pub use under_test::{emulated, sendable, skip_emulated, BATON};

/// A pod's `/tekton` in a temporary folder, and the binary under the name `entrypoint`.
pub struct Pod {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub entrypoint: PathBuf,
}

impl Pod {
    pub fn new() -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tekton");
        for sub in ["results", "downward", "bin"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        let entrypoint = dir.path().join("bin").join("entrypoint");
        fs::create_dir_all(entrypoint.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(BATON.as_str(), &entrypoint).unwrap();
        Pod { dir, root, entrypoint }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn s(&self, rel: &str) -> String {
        self.p(rel).to_str().unwrap().to_string()
    }

    /// The entrypoint with the pod's environment and nothing inherited that changes its behaviour.
    pub fn cmd<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Command {
        let mut c = Command::new(&self.entrypoint);
        c.args(args)
            .env("BATON_TEKTON_ROOT", &self.root)
            .env("BATON_GRACE", "2s")
            .env_remove("TEKTON_PLATFORM_COMMANDS")
            .env_remove("BATON_TEKTON_CONTAINERS")
            .env_remove("TEKTON_HERMETIC")
            .stdin(Stdio::null());
        c
    }

    /// Step `i` as Tekton's controller writes it: its post file, termination path and metadata folder
    /// first, then `extra` flags, then `-entrypoint CMD -- ARGS`.
    pub fn step(&self, i: usize, extra: &[&str], command: &[&str]) -> Command {
        let mut args = vec![
            "-post_file".to_string(),
            self.s(&format!("run/{i}/out")),
            "-termination_path".to_string(),
            self.s(&format!("termination-{i}")),
            "-step_metadata_dir".to_string(),
            self.s(&format!("run/{i}/status")),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("-entrypoint".into());
        args.push(command[0].into());
        args.push("--".into());
        args.extend(command[1..].iter().map(|s| s.to_string()));
        // The kubelet creates the termination file, empty, before the container starts.
        fs::write(self.p(&format!("termination-{i}")), "").unwrap();
        self.cmd(args)
    }

    pub fn message(&self, i: usize) -> String {
        fs::read_to_string(self.p(&format!("termination-{i}"))).unwrap()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.p(rel).exists()
    }
}

pub fn run(mut c: impl std::borrow::BorrowMut<Command>) -> Output {
    c.borrow_mut().output().unwrap()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or_else(|| panic!("killed: {o:?}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn is_tekton_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The message with every StartedAt value (checked: 2006-01-02T15:04:05.000Z07:00 in UTC) as <T>.
pub fn golden(message: &str) -> String {
    let key = r#"{"key":"StartedAt","value":""#;
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find(key) {
        let start = i + key.len();
        let t = &rest[start..start + 24];
        assert!(is_tekton_time(t), "StartedAt {t:?} in {message}");
        out.push_str(&rest[..start]);
        out.push_str("<T>");
        rest = &rest[start + 24..];
    }
    out.push_str(rest);
    out
}

pub fn started_at_ms(message: &str) -> i64 {
    let key = r#"{"key":"StartedAt","value":""#;
    let i = message.find(key).unwrap() + key.len();
    parse_ms(&message[i..i + 24])
}

pub fn parse_ms(t: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn decode_tknz(text: &str) -> String {
    let packed = base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.strip_prefix("tknz:").unwrap()).unwrap();
    String::from_utf8(miniz_oxide::inflate::decompress_to_vec(&packed).unwrap()).unwrap()
}

pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn wait_for(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}
