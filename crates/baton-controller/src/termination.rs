//! One container's termination message, classified: the kubelet hands over whatever text it found, and
//! every kind of text must lead to a useful status, never a panic or a hang.
//!
//! The reader is total: any string maps to one [`Message`]. Work is linear in the text's length (the
//! kubelet keeps at most 4096 bytes) and compressed results are capped by the contract's decoder.

use std::collections::BTreeMap;

use baton_contract::message::{self, DecodeError};
use baton_contract::record::{ExitRecord, Reason, Usage};
use serde_json::{Map, Value};

/// What a container's termination message turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// No message: the file was empty or missing (a SIGKILLed wrapper, or a program that writes none).
    Empty,
    /// A whole baton record, compressed results expanded.
    Record(ExitRecord),
    /// A baton record cut short, which is what the kubelet's per-container share does to a long one;
    /// holds the top-level fields that arrived whole before the cut.
    Truncated(Partial),
    /// A baton record this reader cannot use (unknown version, malformed); the sentence says why.
    Unreadable(String),
    /// Text from another program, or the log tail that `FallbackToLogsOnError` puts there.
    Text(String),
}

/// The fields of a cut baton record that arrived whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    pub step: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<Reason>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Only a non-empty plain results object is kept: baton writes either all results plain or `{}`
    /// plus a compressed copy, so a non-empty whole object is the complete set.
    pub results: BTreeMap<String, String>,
    pub error: Option<String>,
    pub usage: Option<Usage>,
}

/// Classifies `text`, the `message` of a terminated container state.
pub fn read(text: &str) -> Message {
    if text.trim().is_empty() {
        return Message::Empty;
    }
    match message::decode(text) {
        Ok(record) => Message::Record(record),
        Err(DecodeError::Truncated) => Message::Truncated(salvage(text)),
        Err(DecodeError::NotBaton) => Message::Text(text.trim_end().to_string()),
        Err(DecodeError::Version(v)) => Message::Unreadable(format!(
            "the termination message is a baton record of version {v}, which this batonctl does not know; \
             upgrade batonctl"
        )),
        Err(DecodeError::Invalid(why)) => {
            Message::Unreadable(format!("the termination message is a malformed baton record: {why}"))
        }
    }
}

/// Reads the top-level members of a JSON object that arrived whole before the text ends.
fn salvage(text: &str) -> Partial {
    let fields = whole_members(text);
    let string = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    let results: BTreeMap<String, String> = fields
        .get("results")
        .and_then(Value::as_object)
        .map(|object| {
            object.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect()
        })
        .unwrap_or_default();
    Partial {
        step: string("step"),
        exit_code: fields.get("exitCode").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok()),
        reason: fields.get("reason").and_then(Value::as_str).and_then(Reason::parse),
        started_at: string("startedAt"),
        finished_at: string("finishedAt"),
        results,
        error: string("error"),
        usage: fields.get("usage").and_then(|u| serde_json::from_value(u.clone()).ok()),
    }
}

/// The `"key":value` pairs of a possibly cut object, each one only if a `,` or `}` follows it: a
/// number cut short (`"exitCode":12` of `125`) still parses, so a value counts only once it is closed.
fn whole_members(text: &str) -> Map<String, Value> {
    let mut members = Map::new();
    let Some(mut rest) = text.trim_start().strip_prefix('{') else {
        return members;
    };
    while let Some((key, after_key)) = next_value::<String>(rest) {
        let Some(after_colon) = after_key.trim_start().strip_prefix(':') else { break };
        let Some((value, after_value)) = next_value::<Value>(after_colon) else { break };
        let after_value = after_value.trim_start();
        if let Some(next) = after_value.strip_prefix(',') {
            members.insert(key, value);
            rest = next;
        } else {
            if after_value.starts_with('}') {
                members.insert(key, value);
            }
            break;
        }
    }
    members
}

/// Parses one JSON value at the start of `text` (after whitespace); returns it and the text after it.
fn next_value<T: serde::de::DeserializeOwned>(text: &str) -> Option<(T, &str)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<T>();
    let value = stream.next()?.ok()?;
    text.get(stream.byte_offset()..).map(|rest| (value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ExitRecord {
        let mut r =
            ExitRecord::new(Some("build".into()), Reason::Completed, "2026-11-23T16:00:42.123Z".into());
        r.exit_code = Some(125);
        r.started_at = Some("2026-11-23T16:00:41.000Z".into());
        r.results.insert("digest".into(), "sha256:abc".into());
        r
    }

    #[test]
    fn empty_and_blank_messages_are_empty() {
        assert_eq!(read(""), Message::Empty);
        assert_eq!(read(" \n"), Message::Empty);
    }

    #[test]
    fn a_whole_record_is_read() {
        assert_eq!(read(&record().to_json()), Message::Record(record()));
        let mut with_usage = record();
        with_usage.usage = Some(Usage { user_cpu_ms: 210, system_cpu_ms: 12, max_rss_kib: 65800 });
        assert_eq!(read(&with_usage.to_json()), Message::Record(with_usage));
    }

    #[test]
    fn usage_survives_a_cut_only_when_it_arrived_whole() {
        let mut r = record();
        r.usage = Some(Usage { user_cpu_ms: 210, system_cpu_ms: 12, max_rss_kib: 65800 });
        let text = r.to_json();
        // Cut inside the usage object: everything before it is kept, usage is not.
        let cut = &text[..text.len() - 8];
        let Message::Truncated(p) = read(cut) else { panic!("{cut}") };
        assert_eq!(p.usage, None);
        assert_eq!(p.step.as_deref(), Some("build"));
    }

    #[test]
    fn foreign_text_is_kept_without_its_trailing_newline() {
        assert_eq!(
            read("panic: boom\n\tat main.go:3\n"),
            Message::Text("panic: boom\n\tat main.go:3".into())
        );
    }

    #[test]
    fn future_and_malformed_records_say_why() {
        let future = record().to_json().replace("\"baton\":1", "\"baton\":2");
        let Message::Unreadable(why) = read(&future) else { panic!() };
        assert!(why.contains("version 2") && why.contains("upgrade batonctl"), "{why}");
        let Message::Unreadable(why) = read("{\"baton\":1,\"step\":3}") else { panic!() };
        assert!(why.contains("malformed"), "{why}");
    }

    #[test]
    fn a_cut_record_keeps_only_the_members_that_arrived_whole() {
        let full = record().to_json();
        // Cut inside the exit code: 125 arrives as 12, which must not be believed.
        let at = full.find("125").unwrap() + 2;
        let Message::Truncated(p) = read(&full[..at]) else { panic!() };
        assert_eq!(p.step.as_deref(), Some("build"));
        assert_eq!(p.exit_code, None);
        assert_eq!(p.reason, None);
        // Cut inside the results: everything before them is whole, the results are not.
        let at = full.find("sha256").unwrap();
        let Message::Truncated(p) = read(&full[..at]) else { panic!() };
        assert_eq!(p.exit_code, Some(125));
        assert_eq!(p.reason, Some(Reason::Completed));
        assert_eq!(p.finished_at.as_deref(), Some("2026-11-23T16:00:42.123Z"));
        assert!(p.results.is_empty());
    }

    #[test]
    fn whole_members_survive_odd_spacing_and_stop_at_garbage() {
        let m = whole_members(" { \"a\" : 1 , \"b\":[1,{\"c\":null}] ,\"d\":tru");
        assert_eq!(m.len(), 2);
        assert_eq!(whole_members("{\"a\":1}trailing").len(), 1);
        assert!(whole_members("{\"a\" 1}").is_empty());
        assert!(whole_members("nope").is_empty());
    }
}
