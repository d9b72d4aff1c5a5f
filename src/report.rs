//! The end of a step: collect and check results, fit the record into the message budget, write the
//! termination message in place, then publish the marker that releases the next steps.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use baton_contract::message::{self, Fit, MAX_DECODED_RESULTS};
use baton_contract::name;
use baton_contract::record::{ExitRecord, Reason, EXIT_BATON_FAILED};

use crate::folder::{self, Folder, ReadError};
use crate::stepdir::StepDir;

/// Reads every regular file in `dir` as a result. Every problem is named in one sentence. Sizes
/// are checked before anything is read, and reading stops at the total any reader accepts, so a
/// results folder full of huge (or sparse) files cannot exhaust the wrapper's memory.
pub fn collect_results(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let folder = match Folder::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read the results folder {}: {e}", dir.display())),
    };
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Err(format!("cannot read the results folder {}: {e}", dir.display())),
    };
    let mut names = Vec::new();
    let mut problems = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => names.push(e.file_name()),
            Err(e) => problems.push(format!("cannot list the results folder {}: {e}", dir.display())),
        }
    }
    names.sort();
    let mut results = BTreeMap::new();
    let mut total = 0u64;
    let cap = MAX_DECODED_RESULTS as u64;
    for os_name in names {
        let path = dir.join(&os_name);
        let Some(file_name) = os_name.to_str().map(str::to_string) else {
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
        match read_result(&folder, &file_name, cap - total) {
            Ok(value) => {
                total += value.len() as u64;
                results.insert(file_name, value);
            }
            Err(Unread::OverTotal(size)) => {
                problems.push(format!(
                    "the results add up to more than {MAX_DECODED_RESULTS} bytes (result {file_name} alone is {size} \
                     bytes, after {total} bytes of others), more than any reader accepts; write large data to a \
                     volume and return its path"
                ));
                break;
            }
            Err(Unread::Bad(why)) => problems.push(format!("result {file_name} ({}) {why}", path.display())),
        }
    }
    if problems.is_empty() { Ok(results) } else { Err(problems.join("; ")) }
}

enum Unread {
    /// The file would take the total past what may be read: `size` bytes.
    OverTotal(u64),
    Bad(String),
}

fn read_result(folder: &Folder, file: &str, room: u64) -> Result<String, Unread> {
    let (f, st) = match folder.open_file(file) {
        Ok(found) => found,
        Err(ReadError::NotRegular) => {
            let why = match folder.stat(file).ok().flatten().map(|st| SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())) {
                Some(SFlag::S_IFLNK) => "is a symbolic link; write the value into a regular file",
                Some(SFlag::S_IFDIR) => "is a folder; a result must be a regular file",
                _ => "is not a regular file (a FIFO, socket or device); a result must be a regular file",
            };
            return Err(Unread::Bad(why.into()));
        }
        Err(e) => return Err(Unread::Bad(format!("cannot be read: {e}"))),
    };
    let size = st.st_size as u64;
    if size > room {
        return Err(Unread::OverTotal(size));
    }
    let bytes = match folder::read_capped(f, size, room) {
        Ok(b) => b,
        Err(ReadError::TooLarge { size, .. }) => return Err(Unread::OverTotal(size)), // it grew meanwhile
        Err(e) => return Err(Unread::Bad(format!("cannot be read: {e}"))),
    };
    String::from_utf8(bytes).map_err(|e| {
        Unread::Bad(format!(
            "is not UTF-8 text (invalid byte at offset {}); encode binary values, e.g. as base64",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Where the record goes and how big it may be.
pub struct Sinks<'a> {
    pub step: Option<&'a mut StepDir>,
    /// The termination-message file; `required` is false for the default path outside Kubernetes.
    pub termination_path: &'a Path,
    pub termination_required: bool,
    pub limit: usize,
}

/// Fits, writes and publishes the record, in that order: the termination message is on disk before
/// the marker releases the next steps. A write that fails is the step's failure (exit 125,
/// `ResultsError` unless it failed already), in the record and the exit code alike. Returns the
/// container's exit code.
pub fn finish(mut record: ExitRecord, mut exit: i32, sinks: &mut Sinks) -> i32 {
    let before = record.reason;
    if message::fit(&mut record, sinks.limit) == Fit::ResultsDropped {
        if before != record.reason && record.reason == Reason::ResultsError {
            exit = EXIT_BATON_FAILED;
        }
        if let Some(e) = &record.error {
            eprintln!("baton: {e}");
        }
    }
    let mut text = record.to_json();
    let mut written = false;
    match write_termination(sinks.termination_path, &text, sinks.termination_required) {
        Ok(w) => written = w,
        Err(e) => {
            let sentence = format!(
                "cannot write the termination message to {}: {e}; the record did not reach the Kubernetes API",
                sinks.termination_path.display()
            );
            eprintln!("baton: {sentence}; the record is: {text}");
            if sinks.termination_required {
                exit = fail_record(&mut record, exit, sentence, sinks.limit);
                text = record.to_json();
            }
        }
    }
    if let Some(step) = sinks.step.as_deref_mut() {
        if let Err(e) = step.publish(&text) {
            let sentence = format!(
                "cannot publish the end of step {} at {}: {e}; the steps after it will see it as lost",
                step.name(),
                step.exit_path().display()
            );
            eprintln!("baton: {sentence}");
            exit = fail_record(&mut record, exit, sentence, sinks.limit);
            if written {
                // The message must not say Completed for a container that exits 125.
                let _ = write_termination(sinks.termination_path, &record.to_json(), true);
            }
        }
    }
    exit
}

/// Marks a record failed by a write that did not happen: `ResultsError` and 125 for a step that had
/// succeeded; a failed step keeps its own reason and code, with the sentence added.
fn fail_record(record: &mut ExitRecord, exit: i32, sentence: String, limit: usize) -> i32 {
    record.error = Some(match record.error.take() {
        Some(earlier) => format!("{earlier}; {sentence}"),
        None => sentence,
    });
    let exit = if record.reason.is_success() {
        record.reason = Reason::ResultsError;
        EXIT_BATON_FAILED
    } else {
        exit
    };
    message::fit(record, limit);
    exit
}

/// Writes the message in place (the kubelet bind-mounts this file: it cannot be renamed over), once,
/// from the start of the file.
/// Not synced: the kubelet reads it through the same page cache once the container has exited, and
/// a sync here would sit between the command's end and the marker. Opened without blocking, so a
/// FIFO without a reader is an error, not a hang. Returns whether it was written.
fn write_termination(path: &Path, text: &str, required: bool) -> io::Result<bool> {
    if !required && !path.exists() {
        return Ok(false); // not in a kubelet-managed container
    }
    // No O_TRUNC: truncating even an empty file costs a journal transaction on ext4 (~33 µs here,
    // against ~6 µs for the write); a longer old message (a restarted container) is cut after.
    // openat, not std's open: musl's open(2) spends an extra fcntl on O_CLOEXEC.
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let mut f = File::from(
        nix::fcntl::openat(nix::fcntl::AT_FDCWD, path, flags, Mode::from_bits_truncate(0o644)).map_err(folder::io_err)?,
    );
    f.write_all(text.as_bytes())?;
    if f.metadata().is_ok_and(|m| m.is_file() && m.len() > text.len() as u64) {
        f.set_len(text.len() as u64)?;
    }
    Ok(true)
}
