//! How the kubelet turns a container's termination-message file into the `message` of its terminated
//! state (docs/play.md has the sources). Pure: bytes in, bytes or the API's string out.
//!
//! 1. The file: at most its **last 4096 bytes** (a missing file counts as empty).
//! 2. `terminationMessagePolicy: FallbackToLogsOnError`, only when that is empty and the container
//!    failed (exit code not 0, and not `StartError`): the **last 80 log lines, at most their
//!    last 2048 bytes**.
//! 3. Before every status update, the status manager keeps the **first 12288 / N bytes** of every
//!    terminated container's message, N = the containers of the spec (init, regular, ephemeral), even
//!    in the middle of a UTF-8 character.
//! 4. The API server's JSON encoder (Go's `encoding/json`) writes each byte that is not part of valid
//!    UTF-8 as U+FFFD, one per byte.

use baton_contract::message::{KUBELET_FILE_LIMIT, KUBELET_POD_BUDGET};

/// The most the kubelet reads from a termination-message file (`MaxContainerTerminationMessageLength`).
pub const FILE_LIMIT: usize = KUBELET_FILE_LIMIT;
/// The bytes the status manager shares among the containers of a pod.
pub const POD_BUDGET: usize = KUBELET_POD_BUDGET;
/// `FallbackToLogsOnError`: the log lines the kubelet reads (`MaxContainerTerminationMessageLogLines`).
pub const LOG_LINES: usize = 80;
/// `FallbackToLogsOnError`: the bytes it keeps of them (`MaxContainerTerminationMessageLogLength`).
pub const LOG_BYTES: usize = 2048;

/// The part of a termination-message file the kubelet reads: its last 4096 bytes.
pub fn file_tail(file: &[u8]) -> &[u8] {
    &file[file.len().saturating_sub(FILE_LIMIT)..]
}

/// Whether the kubelet takes the container's log instead of its (empty) file.
pub fn wants_logs(fallback_to_logs: bool, exit_code: i32, cannot_run: bool, file_message: &[u8]) -> bool {
    fallback_to_logs && exit_code != 0 && !cannot_run && file_message.is_empty()
}

/// An ended container's message as the kubelet reads it, before the pod-wide cut: the tail of its file
/// (`file_tail`), or, when the policy says so, the tail of the log `logs` fetches.
pub fn read<E>(
    file_tail: Vec<u8>,
    fallback_to_logs: bool,
    exit_code: i32,
    logs: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    if wants_logs(fallback_to_logs, exit_code, false, &file_tail) {
        return Ok(log_tail(&logs()?).to_vec());
    }
    Ok(file_tail)
}

/// The part of a container's log that `FallbackToLogsOnError` keeps: the last 80 lines, then at most
/// their last 2048 bytes.
pub fn log_tail(log: &[u8]) -> &[u8] {
    let lines = last_lines(log, LOG_LINES);
    &lines[lines.len().saturating_sub(LOG_BYTES)..]
}

/// The last `n` lines of `text` (a final newline ends the last line, it does not start another).
fn last_lines(text: &[u8], n: usize) -> &[u8] {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// Each container's share of the pod's message budget, as the status manager computes it:
/// 12288 / containers (the file limit of 4096 bounds the file, not this share).
pub fn pod_share(containers: usize) -> usize {
    POD_BUDGET / containers.max(1)
}

/// The message as the API returns it: its first `share` bytes, written as Go's JSON encoder writes a
/// string that may end inside a UTF-8 character.
pub fn cut(message: &[u8], share: usize) -> String {
    go_string(&message[..message.len().min(share)])
}

/// Bytes as Go's `encoding/json` writes a string: valid UTF-8 as it is, every other byte as U+FFFD.
pub fn go_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        // An invalid run is a byte that starts no character, or the first bytes of one that is cut
        // short; Go's decoder rejects them one byte at a time.
        for _ in chunk.invalid() {
            out.push('\u{FFFD}');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_keeps_its_last_4096_bytes() {
        let file: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(file_tail(&file), &file[904..]);
        assert_eq!(file_tail(b"short"), b"short");
        assert_eq!(file_tail(b""), b"");
    }

    #[test]
    fn the_share_is_12288_over_every_container() {
        assert_eq!(pod_share(1), 12288);
        assert_eq!(pod_share(3), 4096);
        assert_eq!(pod_share(4), 3072);
        assert_eq!(pod_share(5), 2457);
        assert_eq!(pod_share(10), 1228);
        assert_eq!(pod_share(0), 12288);
    }

    #[test]
    fn the_cut_keeps_the_first_bytes_even_inside_a_character() {
        assert_eq!(cut(b"abcdef", 4), "abcd");
        assert_eq!(cut(b"abc", 4), "abc");
        // "é" is C3 A9: cut after C3. "€" is E2 82 AC: cut after E2 82 gives two bytes, two U+FFFD.
        assert_eq!(cut("aé".as_bytes(), 2), "a\u{FFFD}");
        assert_eq!(cut("a€".as_bytes(), 3), "a\u{FFFD}\u{FFFD}");
        assert_eq!(cut("a€b".as_bytes(), 5), "a€b");
    }

    #[test]
    fn invalid_bytes_become_one_replacement_each_as_go_writes_them() {
        assert_eq!(go_string(b"a\xff\xfeb"), "a\u{FFFD}\u{FFFD}b");
        // An encoded surrogate is three invalid bytes to Go's decoder.
        assert_eq!(go_string(b"a\xed\xa0\x80b"), "a\u{FFFD}\u{FFFD}\u{FFFD}b");
        assert_eq!(go_string("ünïcödé ✓".as_bytes()), "ünïcödé ✓");
    }

    #[test]
    fn logs_keep_80_lines_then_2048_bytes() {
        let log: String = (1..=100).map(|i| format!("log line {i}\n")).collect();
        let tail = std::str::from_utf8(log_tail(log.as_bytes())).unwrap();
        assert!(tail.starts_with("log line 21\n") && tail.ends_with("log line 100\n"), "{tail}");
        assert_eq!(tail.lines().count(), 80);
        let long: String = (1..=30).map(|i| format!("{i:>99}\n")).collect();
        assert_eq!(log_tail(long.as_bytes()), &long.as_bytes()[3000 - 2048..]);
        assert_eq!(log_tail(b"no newline"), b"no newline");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
    }

    #[test]
    fn only_a_failed_container_with_an_empty_file_falls_back_to_logs() {
        assert!(wants_logs(true, 1, false, b""));
        assert!(!wants_logs(true, 0, false, b""));
        assert!(!wants_logs(true, 1, false, b"x"));
        assert!(!wants_logs(true, 128, true, b""));
        assert!(!wants_logs(false, 1, false, b""));
    }
}
