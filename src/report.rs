//! The end of a step: collect and check results, fit the record into the message budget, write the
//! termination message in place, then publish the marker that releases the next steps.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use baton_contract::message::{self, Fit, MAX_DECODED_RESULTS};
use baton_contract::name;
use baton_contract::record::{ExitRecord, Reason, EXIT_BATON_FAILED};

use crate::stepdir::StepDir;

/// Reads every regular file in `dir` as a result. Every problem is named in one sentence.
pub fn collect_results(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read the results folder {}: {e}", dir.display())),
    };
    let mut results = BTreeMap::new();
    let mut problems = Vec::new();
    let mut total = 0usize;
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("cannot list the results folder {}: {e}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
            problems.push(format!("result file {} has a name that is not UTF-8; rename it", path.display()));
            continue;
        };
        if file_name.starts_with('.') && file_name.ends_with(".tmp") {
            continue; // a writer's temporary file, not a result
        }
        if let Err(e) = name::check_result(&file_name) {
            problems.push(format!("result file {}: {e}", path.display()));
            continue;
        }
        match read_result(&path) {
            Ok(value) => {
                total += value.len();
                results.insert(file_name, value);
            }
            Err(why) => problems.push(format!("result {file_name} ({}) {why}", path.display())),
        }
    }
    if total > MAX_DECODED_RESULTS {
        problems.push(format!(
            "the results add up to {total} bytes, more than the {MAX_DECODED_RESULTS} bytes any reader accepts; \
             write large data to a volume and return its path"
        ));
    }
    if problems.is_empty() { Ok(results) } else { Err(problems.join("; ")) }
}

fn read_result(path: &Path) -> Result<String, String> {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err("is a symbolic link; write the value into a regular file".into());
    }
    if kind.is_dir() {
        return Err("is a folder; a result must be a regular file".into());
    }
    if !kind.is_file() {
        return Err("is not a regular file (a FIFO, socket or device); a result must be a regular file".into());
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(MAX_DECODED_RESULTS as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() > MAX_DECODED_RESULTS {
        return Err(format!("is larger than {MAX_DECODED_RESULTS} bytes; return a path to large data instead"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!("is not UTF-8 text (invalid byte at offset {}); encode binary values, e.g. as base64", e.utf8_error().valid_up_to())
    })
}

/// Where the record goes and how big it may be.
pub struct Sinks<'a> {
    pub step: Option<&'a StepDir>,
    /// The termination-message file; `required` is false for the default path outside Kubernetes.
    pub termination_path: &'a Path,
    pub termination_required: bool,
    pub limit: usize,
}

/// Fits, writes and publishes the record, in that order. Returns the container's exit code, which
/// becomes 125 if the results could not be kept.
pub fn finish(mut record: ExitRecord, mut exit: i32, sinks: &Sinks) -> i32 {
    let before = record.reason;
    if message::fit(&mut record, sinks.limit) == Fit::ResultsDropped {
        if before != record.reason && record.reason == Reason::ResultsError {
            exit = EXIT_BATON_FAILED;
        }
        if let Some(e) = &record.error {
            eprintln!("baton: {e}");
        }
    }
    let text = record.to_json();
    if let Err(e) = write_termination(sinks.termination_path, &text, sinks.termination_required) {
        eprintln!(
            "baton: cannot write the termination message to {}: {e}; the record is: {text}",
            sinks.termination_path.display()
        );
    }
    if let Some(step) = sinks.step {
        if let Err(e) = step.publish(&text) {
            eprintln!(
                "baton: cannot publish the end of step {:?} in {}: {e}; steps after it will see it as lost",
                step.name(),
                step.layout().root().display()
            );
            if exit == 0 {
                exit = EXIT_BATON_FAILED;
            }
        }
    }
    exit
}

/// Writes the message in place (the kubelet bind-mounts this file: it cannot be renamed over), once,
/// then fsyncs it.
fn write_termination(path: &Path, text: &str, required: bool) -> io::Result<()> {
    if !required && !path.exists() {
        return Ok(()); // not in a kubelet-managed container
    }
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
