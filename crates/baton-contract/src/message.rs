//! The termination-message budget: fitting an exit record into `limit` bytes, and reading one back.
//!
//! The kubelet keeps at most the last 4096 bytes of the file, then cuts every message of the pod to
//! 12288 / (number of containers in the spec, init containers included) bytes, keeping the first bytes.
//! A message over that share reaches the API as broken JSON, so baton fits the record first:
//!
//! 1. the record as it is, if it fits;
//! 2. else the results compressed: `"results":{}` plus `"resultsDeflate"`, the compact JSON of the
//!    results object compressed with raw DEFLATE (RFC 1951) and encoded as standard, padded base64;
//! 3. else the results are dropped and the record says so in `error`, naming the largest results.
//!    A successful step then fails with reason `ResultsError`; a failed step keeps its reason.
//!
//! The text written is always one complete JSON object no longer than `limit`.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::layout::PROTOCOL_VERSION;
use crate::record::{ExitRecord, Reason};

/// The most the kubelet reads from a termination-message file.
pub const KUBELET_FILE_LIMIT: usize = 4096;
/// The bytes the kubelet shares among all containers of a pod.
pub const KUBELET_POD_BUDGET: usize = 12288;
/// The smallest `--message-limit` baton accepts: a record without results always fits in it.
pub const MIN_LIMIT: usize = 256;
/// Readers refuse compressed results that expand beyond this (a decompression bomb guard).
pub const MAX_DECODED_RESULTS: usize = 1 << 20;

/// The share of each container in a pod with `containers` spec containers (init containers included).
pub fn kubelet_share(containers: usize) -> usize {
    KUBELET_FILE_LIMIT.min(KUBELET_POD_BUDGET / containers.max(1))
}

/// How the record was made to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    Plain,
    Compressed,
    ResultsDropped,
}

/// Shrinks `record` until its JSON fits `limit` bytes; returns how. Results are never cut, only
/// compressed or dropped as a whole; an over-long `error` is shortened at a character boundary.
pub fn fit(record: &mut ExitRecord, limit: usize) -> Fit {
    let mut how = Fit::Plain;
    if record.to_json().len() > limit && !record.results.is_empty() {
        let packed = compress_results(&record.results);
        let mut compressed = record.clone();
        compressed.results.clear();
        compressed.results_deflate = Some(packed);
        if compressed.to_json().len() <= limit {
            *record = compressed;
            return Fit::Compressed;
        }
        let packed_len = compressed.results_deflate.as_ref().map_or(0, String::len);
        let sentence = too_large(&record.results, packed_len, limit);
        record.results.clear();
        record.results_deflate = None;
        record.error = Some(match record.error.take() {
            Some(earlier) => format!("{earlier}; {sentence}"),
            None => sentence,
        });
        if record.reason.is_success() {
            record.reason = Reason::ResultsError;
        }
        how = Fit::ResultsDropped;
    }
    if record.to_json().len() > limit {
        record.usage = None; // nice to have: it goes before any part of the error does
    }
    shorten_error(record, limit);
    how
}

fn too_large(results: &BTreeMap<String, String>, packed_len: usize, limit: usize) -> String {
    let mut by_size: Vec<(&String, usize)> = results.iter().map(|(k, v)| (k, v.len())).collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let largest: Vec<String> = by_size.iter().take(3).map(|(k, n)| format!("{k} ({n} bytes)")).collect();
    format!(
        "results do not fit the termination message limit of {limit} bytes even compressed \
         ({packed_len} bytes of compressed results); largest: {}; write large data to a volume and \
         return its path as the result",
        largest.join(", ")
    )
}

fn shorten_error(record: &mut ExitRecord, limit: usize) {
    loop {
        let excess = record.to_json().len().saturating_sub(limit);
        let Some(error) = record.error.as_mut() else { return };
        if excess == 0 {
            return;
        }
        let mut keep = error.len().saturating_sub(excess + 3);
        while keep > 0 && !error.is_char_boundary(keep) {
            keep -= 1;
        }
        if keep == 0 {
            record.error = None;
            return;
        }
        error.truncate(keep);
        error.push('…');
    }
}

/// Compact JSON of the results, raw DEFLATE, standard padded base64.
pub fn compress_results(results: &BTreeMap<String, String>) -> String {
    let json = serde_json::to_vec(results).expect("a string map always serializes");
    let packed = miniz_oxide::deflate::compress_to_vec(&json, 9);
    base64::engine::general_purpose::STANDARD.encode(packed)
}

/// The inverse of [`compress_results`], refusing more than `cap` decoded bytes.
pub fn decompress_results(text: &str, cap: usize) -> Result<BTreeMap<String, String>, String> {
    let packed = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("compressed results are not valid base64: {e}"))?;
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&packed, cap).map_err(|e| {
        if matches!(e.status, miniz_oxide::inflate::TINFLStatus::HasMoreOutput) {
            format!("compressed results expand beyond {cap} bytes; refusing them")
        } else {
            format!("compressed results are not valid DEFLATE data ({:?})", e.status)
        }
    })?;
    serde_json::from_slice(&json).map_err(|e| format!("compressed results are not a JSON object of strings: {e}"))
}

/// Why a text is not a usable baton record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a JSON object with a `baton` field: some other program's message (or plain log text).
    NotBaton,
    /// Starts like a baton record but ends early: cut by the kubelet's budget.
    Truncated,
    /// A baton record of a version this reader does not know.
    Version(u32),
    /// A baton record that is malformed in some other way.
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotBaton => f.write_str("not a baton record"),
            DecodeError::Truncated => f.write_str("baton record cut short"),
            DecodeError::Version(v) => write!(f, "baton record of unknown version {v}"),
            DecodeError::Invalid(why) => write!(f, "invalid baton record: {why}"),
        }
    }
}

/// Reads a termination message or marker back into a record, with compressed results expanded.
pub fn decode(text: &str) -> Result<ExitRecord, DecodeError> {
    let trimmed = text.trim();
    if !trimmed.starts_with("{\"baton\":") {
        return Err(DecodeError::NotBaton);
    }
    let value: serde_json::Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        Err(e) if e.is_eof() => return Err(DecodeError::Truncated),
        Err(e) => return Err(DecodeError::Invalid(e.to_string())),
    };
    match value.get("baton").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => return Err(DecodeError::Version(u32::try_from(v).unwrap_or(u32::MAX))),
        None => return Err(DecodeError::Invalid("the baton field is not a version number".into())),
    }
    let mut record: ExitRecord =
        serde_json::from_value(value).map_err(|e| DecodeError::Invalid(e.to_string()))?;
    if let Some(packed) = record.results_deflate.take() {
        let results = decompress_results(&packed, MAX_DECODED_RESULTS).map_err(DecodeError::Invalid)?;
        record.results.extend(results);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(results: &[(&str, String)]) -> ExitRecord {
        let mut r = ExitRecord::new(Some("build".into()), Reason::Completed, "2026-11-23T16:00:42.123Z".into());
        r.exit_code = Some(0);
        r.started_at = Some("2026-11-23T16:00:41.000Z".into());
        r.results = results.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        r
    }

    #[test]
    fn kubelet_share_follows_the_12288_rule() {
        assert_eq!(kubelet_share(1), 4096);
        assert_eq!(kubelet_share(3), 4096);
        assert_eq!(kubelet_share(4), 3072);
        assert_eq!(kubelet_share(5), 2457);
        assert_eq!(kubelet_share(10), 1228);
    }

    #[test]
    fn small_records_stay_plain() {
        let mut r = record(&[("a", "1".into())]);
        let before = r.clone();
        assert_eq!(fit(&mut r, 4096), Fit::Plain);
        assert_eq!(r, before);
    }

    #[test]
    fn compressible_results_are_compressed_and_decode_back() {
        let big = "abcdefgh".repeat(1000);
        let mut r = record(&[("log", big.clone()), ("digest", "sha256:1".into())]);
        let original = r.clone();
        assert_eq!(fit(&mut r, 4096), Fit::Compressed);
        let text = r.to_json();
        assert!(text.len() <= 4096);
        assert!(r.results.is_empty() && r.results_deflate.is_some());
        assert_eq!(decode(&text).unwrap(), original);
    }

    /// Pseudo-random hex: it does not compress below half its size.
    fn noise(len: usize) -> String {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect()
    }

    #[test]
    fn incompressible_results_are_dropped_with_a_named_error() {
        let mut r = record(&[("noise", noise(6000)), ("small", "ok".into())]);
        assert_eq!(fit(&mut r, 1024), Fit::ResultsDropped);
        let text = r.to_json();
        assert!(text.len() <= 1024, "{}", text.len());
        assert_eq!(r.reason, Reason::ResultsError);
        assert!(r.results.is_empty());
        let err = r.error.as_deref().unwrap();
        assert!(err.contains("noise (6000 bytes)") && err.contains("1024 bytes"), "{err}");
        assert_eq!(decode(&text).unwrap().reason, Reason::ResultsError);
    }

    #[test]
    fn a_failed_step_keeps_its_reason_when_results_are_dropped() {
        let mut r = record(&[("x", noise(4000))]);
        r.reason = Reason::Failed;
        r.exit_code = Some(3);
        assert_eq!(fit(&mut r, 512), Fit::ResultsDropped);
        assert!(r.to_json().len() <= 512);
        assert_eq!(r.reason, Reason::Failed);
        assert!(r.error.as_deref().unwrap().contains("x (4000 bytes)"));
    }

    #[test]
    fn the_minimum_limit_holds_the_largest_record_without_results() {
        let mut r = record(&[]);
        r.step = Some("s".repeat(63));
        r.exit_code = Some(i32::MIN);
        r.reason = Reason::PredecessorLost;
        r.error = Some("é".repeat(500));
        fit(&mut r, MIN_LIMIT);
        let text = r.to_json();
        assert!(text.len() <= MIN_LIMIT, "{} bytes: {text}", text.len());
        assert!(decode(&text).is_ok());
    }

    #[test]
    fn decode_classifies_foreign_cut_and_future_texts() {
        assert_eq!(decode("panic: runtime error"), Err(DecodeError::NotBaton));
        assert_eq!(decode(""), Err(DecodeError::NotBaton));
        assert_eq!(decode("[{\"key\":\"StartedAt\"}]"), Err(DecodeError::NotBaton));
        let full = record(&[("a", "b".into())]).to_json();
        assert_eq!(decode(&full[..full.len() - 10]), Err(DecodeError::Truncated));
        assert_eq!(decode(&full.replace("\"baton\":1", "\"baton\":7")), Err(DecodeError::Version(7)));
        assert!(matches!(decode("{\"baton\":1,\"step\":3}"), Err(DecodeError::Invalid(_))));
    }

    #[test]
    fn decompression_bombs_are_refused() {
        let mut huge = BTreeMap::new();
        huge.insert("z".to_string(), "0".repeat(MAX_DECODED_RESULTS * 2));
        let packed = compress_results(&huge);
        let err = decompress_results(&packed, MAX_DECODED_RESULTS).unwrap_err();
        assert!(err.contains("expand beyond"), "{err}");
    }
}
