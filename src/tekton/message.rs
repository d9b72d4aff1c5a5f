//! Tekton's termination message: a JSON array of RunResult `{"key":K,"value":V,"type":T}`, encoded
//! byte for byte as Go's `encoding/json` encodes it, optionally compressed to `tknz:` + unpadded
//! standard base64 of raw DEFLATE.

use base64::Engine as _;

/// RunResult types (tektoncd/pipeline pkg/result; a Go `int`).
pub const TASK_RESULT: i64 = 1;
pub const INTERNAL: i64 = 3;
pub const STEP_RESULT: i64 = 4;
pub const STEP_ARTIFACTS: i64 = 5;
pub const TASK_ARTIFACTS: i64 = 6;
/// What a type name that Tekton does not know decodes to.
pub const UNKNOWN: i64 = 10;

/// The names of the types, as older controllers wrote them (Tekton's `ResultType` still reads them).
const TYPE_NAMES: [(&str, i64); 5] = [
    ("TaskRunResult", TASK_RESULT),
    ("InternalTektonResult", INTERNAL),
    ("StepResult", STEP_RESULT),
    ("StepArtifactsResult", STEP_ARTIFACTS),
    ("TaskRunArtifactsResult", TASK_ARTIFACTS),
];

/// The most a container may write, as Tekton's entrypoint checks it (and the kubelet's file limit).
pub const TEKTON_LIMIT: usize = 4096;
/// Readers cap a decompressed `tknz:` message at this size.
pub const MAX_DECOMPRESSED: usize = 128 * 1024;
/// The kubelet shares this many bytes among the termination messages of all containers of a pod.
pub const KUBELET_POD_BUDGET: usize = 12288;
pub const COMPRESSED_PREFIX: &str = "tknz:";

/// One entry. The value is bytes: a result file is reported verbatim, whatever it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    pub key: String,
    pub value: Vec<u8>,
    /// Only ever in an entry the file already held (Tekton's struct still has the field and writes
    /// it back when it is not empty).
    pub resource_name: String,
    pub kind: i64,
}

impl RunResult {
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>, kind: i64) -> RunResult {
        RunResult { key: key.into(), value: value.into(), resource_name: String::new(), kind }
    }
}

/// `json.Marshal([]RunResult)`: no spaces, HTML-safe escapes, invalid UTF-8 as U+FFFD, `resourceName`
/// and `type` omitted when empty or 0.
pub fn encode(entries: &[RunResult]) -> String {
    let mut out = String::with_capacity(64 * entries.len() + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        go_string(&mut out, e.key.as_bytes());
        out.push_str(",\"value\":");
        go_string(&mut out, &e.value);
        if !e.resource_name.is_empty() {
            out.push_str(",\"resourceName\":");
            go_string(&mut out, e.resource_name.as_bytes());
        }
        if e.kind != 0 {
            out.push_str(",\"type\":");
            out.push_str(&e.kind.to_string());
        }
        out.push('}');
    }
    out.push(']');
    out
}

/// A struct field as Go's JSON decoder finds it: the exact key, else one that differs only in case
/// (of two such keys, Go takes the later one in the document; a parsed map no longer knows which).
pub fn go_field<'a>(map: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a serde_json::Value> {
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// `bytes` as a JSON string, the way Go's `encoding/json` writes a string.
pub fn go_json_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    go_string(&mut out, bytes);
    out
}

/// A JSON string as Go's encoder writes it (Go 1.22 and later: `\b` and `\f` short forms).
fn go_string(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, false),
            Err(e) => (std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(), true),
        };
        for c in valid.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                    let b = c as u8;
                    out.push_str("\\u00");
                    out.push(HEX[(b >> 4) as usize] as char);
                    out.push(HEX[(b & 15) as usize] as char);
                }
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                c => out.push(c),
            }
        }
        rest = &rest[valid.len()..];
        if bad {
            // Go replaces each byte that does not start a valid sequence, one at a time.
            out.push_str("\\ufffd");
            rest = &rest[1..];
        }
    }
    out.push('"');
}

/// A value as Go's JSON encoder writes it and its decoder reads it back: each byte that does not
/// start a valid UTF-8 sequence becomes U+FFFD, one for each byte. Tekton's entrypoint writes the
/// results into the termination file, then reads that file back and writes it again with the internal
/// keys, so the results it leaves there hold U+FFFD itself (3 bytes) where a value written once holds
/// the escape `\ufffd` (6 bytes, as the artifacts and internal keys do): measured against v1.15.0.
pub fn go_round_trip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                out.extend_from_slice(valid.as_bytes());
                return out;
            }
            Err(e) => {
                out.extend_from_slice(&rest[..e.valid_up_to()]);
                out.extend_from_slice("\u{fffd}".as_bytes());
                rest = &rest[e.valid_up_to() + 1..];
            }
        }
    }
}

/// `tknz:` + unpadded standard base64 of the raw DEFLATE (best compression) of `json`.
pub fn compress(json: &str) -> String {
    let packed = miniz_oxide::deflate::compress_to_vec(json.as_bytes(), 10);
    let mut out = String::from(COMPRESSED_PREFIX);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(packed, &mut out);
    out
}

/// The text to write: the JSON, or its compressed form when asked for and smaller.
pub fn render(entries: &[RunResult], compress_if_smaller: bool) -> Rendered {
    let json = encode(entries);
    if compress_if_smaller {
        let packed = compress(&json);
        if packed.len() < json.len() {
            return Rendered { json_len: json.len(), text: packed };
        }
    }
    Rendered { json_len: json.len(), text: json }
}

pub struct Rendered {
    pub text: String,
    /// The length of the plain JSON, which a reader of a compressed message must inflate.
    pub json_len: usize,
}

impl Rendered {
    pub fn compressed(&self) -> bool {
        self.text.starts_with(COMPRESSED_PREFIX)
    }
    /// Whether readers take it whole: at most `limit` bytes, and a compressed message inflates to
    /// no more than readers accept.
    pub fn fits(&self, limit: usize) -> bool {
        self.text.len() <= limit && (!self.compressed() || self.json_len <= MAX_DECOMPRESSED)
    }
}

/// Reads a termination message, plain or compressed, as Tekton's writer and controller read it
/// (Go's `json.Unmarshal` into `[]RunResult`): a byte of invalid UTF-8 and a `\u` escape of a lone
/// UTF-16 surrogate are U+FFFD, field names match whatever their case, unknown fields are ignored,
/// `type` is an integer or one of the older names. (Parsed through `serde_json::Value`, which baton
/// already carries, to keep the binary small.)
pub fn decode(text: &[u8]) -> Result<Vec<RunResult>, String> {
    let json = match text.strip_prefix(COMPRESSED_PREFIX.as_bytes()) {
        Some(encoded) => {
            let packed = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(encoded)
                .map_err(|e| format!("base64 decode: {e}"))?;
            miniz_oxide::inflate::decompress_to_vec_with_limit(&packed, MAX_DECOMPRESSED)
                .map_err(|e| format!("flate decompress: {e:?}"))?
        }
        None => text.to_vec(),
    };
    let json = String::from_utf8(go_round_trip(&json)).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(&go_lone_surrogates(&json)).map_err(|e| e.to_string())?;
    let entries = value.as_array().ok_or("not a JSON array")?;
    entries
        .iter()
        .map(|e| {
            let map = match e {
                serde_json::Value::Object(map) => map,
                // Go leaves the struct as it is: an entry with everything empty.
                serde_json::Value::Null => return Ok(RunResult::new("", "", 0)),
                _ => return Err("an entry is not an object".to_string()),
            };
            let text = |k: &str| match go_field(map, k) {
                None | Some(serde_json::Value::Null) => Ok(String::new()),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("{k} is not a string")),
            };
            let kind = match go_field(map, "type") {
                None | Some(serde_json::Value::Null) => 0,
                Some(serde_json::Value::String(name)) => {
                    TYPE_NAMES.iter().find(|(n, _)| n == name).map_or(UNKNOWN, |&(_, kind)| kind)
                }
                Some(t) => t.as_i64().ok_or("type is neither a name nor an integer")?,
            };
            Ok(RunResult {
                key: text("key")?,
                value: text("value")?.into_bytes(),
                resource_name: text("resourceName")?,
                kind,
            })
        })
        .collect()
}

/// `json` with every `\u` escape of a UTF-16 surrogate that is not the first half of a pair followed
/// by its second half replaced by `\ufffd`: Go's decoder reads it as U+FFFD (and then reads the
/// escape after it on its own), serde_json refuses it.
fn go_lone_surrogates(json: &str) -> std::borrow::Cow<'_, str> {
    fn hex4(b: &[u8], at: usize) -> Option<u32> {
        let digits = b.get(at..at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
    if !json.contains("\\u") {
        return std::borrow::Cow::Borrowed(json);
    }
    let b = json.as_bytes();
    let (mut out, mut start, mut i, mut in_string) = (String::with_capacity(json.len()), 0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                in_string = !in_string;
                i += 1;
            }
            b'\\' if in_string => match (b.get(i + 1), hex4(b, i + 2)) {
                (Some(b'u'), Some(0xd800..=0xdbff))
                    if b.get(i + 6..i + 8) == Some(&b"\\u"[..]) && matches!(hex4(b, i + 8), Some(0xdc00..=0xdfff)) =>
                {
                    i += 12
                }
                (Some(b'u'), Some(0xd800..=0xdfff)) => {
                    out.push_str(&json[start..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    start = i;
                }
                (Some(b'u'), Some(_)) => i += 6,
                _ => i += 2,
            },
            _ => i += 1,
        }
    }
    out.push_str(&json[start..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_encoding_golden() {
        let entries = [
            RunResult::new("StartedAt", "2026-08-20T11:42:35.123Z", INTERNAL),
            RunResult::new("r", &b"<a&b>\"\\\n\r\t\x08\x0c\x01\x7f\xe2\x80\xa8\xff\xe2\x82 \xc3\xa9"[..], TASK_RESULT),
            RunResult::new("z", "", 0),
        ];
        let expected = concat!(
            r#"[{"key":"StartedAt","value":"2026-08-20T11:42:35.123Z","type":3},"#,
            r#"{"key":"r","value":"\u003ca\u0026b\u003e\"\\\n\r\t\b\f\u0001"#,
            "\u{7f}",
            r#"\u2028\ufffd\ufffd\ufffd é","type":1},{"key":"z","value":""}]"#
        );
        assert_eq!(encode(&entries), expected);
        assert_eq!(encode(&[]), "[]");
    }

    #[test]
    fn go_round_trip_replaces_each_bad_byte() {
        assert_eq!(go_round_trip(b"ok \xc3\xa9"), "ok \u{e9}".as_bytes());
        // A truncated sequence is two bad bytes for Go (Rust's from_utf8_lossy would make it one).
        assert_eq!(
            go_round_trip(b"a\xff\xe2\x82 b\xed\xa0\x80"),
            "a\u{fffd}\u{fffd}\u{fffd} b\u{fffd}\u{fffd}\u{fffd}".as_bytes()
        );
        assert_eq!(go_round_trip(b"\xf0\x9f\x98"), "\u{fffd}\u{fffd}\u{fffd}".as_bytes());
        let once = encode(&[RunResult::new("r", go_round_trip(b"\xff<"), TASK_RESULT)]);
        assert_eq!(once, "[{\"key\":\"r\",\"value\":\"\u{fffd}\\u003c\",\"type\":1}]");
    }

    #[test]
    fn compression_round_trip_only_when_smaller() {
        let small = [RunResult::new("a", "b", TASK_RESULT)];
        let r = render(&small, true);
        assert!(!r.compressed());
        let big: Vec<RunResult> =
            (0..50).map(|i| RunResult::new(format!("k{i}"), "x".repeat(100), TASK_RESULT)).collect();
        let r = render(&big, true);
        assert!(r.compressed());
        assert!(r.text.len() < r.json_len);
        assert!(!r.text.ends_with('='));
        assert_eq!(decode(r.text.as_bytes()).unwrap(), big);
        assert_eq!(decode(encode(&big).as_bytes()).unwrap(), big);
    }

    #[test]
    fn existing_entries_decode_as_go_decodes_them() {
        // Measured against Tekton's entrypoint v1.15.0 (e2e/tekton-upstream.sh, steps g4 to g8).
        let d = |text: &[u8]| decode(text).unwrap();
        assert_eq!(
            d(br#"[{"key":"k","value":"\ud800 \u00e9 \ud83d\ude00 \udc00\ud800\u0041","type":1}]"#)[0].value,
            "\u{fffd} \u{e9} \u{1f600} \u{fffd}\u{fffd}A".as_bytes()
        );
        assert_eq!(d(b"[{\"key\":\"k\",\"value\":\"a\xffb\",\"type\":1}]")[0].value, "a\u{fffd}b".as_bytes());
        let kept = d(br#"[{"key":"k","value":"v","resourceName":"git","type":1}]"#);
        assert_eq!(kept[0].resource_name, "git");
        assert_eq!(encode(&kept), r#"[{"key":"k","value":"v","resourceName":"git","type":1}]"#);
        let folded = d(br#"[{"Key":"k","VALUE":"v","Type":1,"extra":true}]"#);
        assert_eq!(folded, [RunResult::new("k", "v", TASK_RESULT)]);
        let kinds: Vec<i64> = d(br#"[{"type":300},{"type":-1},null]"#).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [300, -1, 0]);
        assert_eq!(encode(&d(br#"[{"key":"a","type":-1}]"#)), r#"[{"key":"a","value":"","type":-1}]"#);
        assert!(decode(br#"[{"key":"a","type":1.5}]"#).is_err());
        assert!(decode(br#"[5]"#).is_err());
        // An escaped backslash before a `u` is no escape.
        assert_eq!(d(br#"[{"key":"\\ud800"}]"#)[0].key, "\\ud800");
    }

    #[test]
    fn type_names_decode_as_tekton_reads_them() {
        let text = r#"[{"key":"a","value":"1","type":"TaskRunResult"},{"key":"b","value":"2","type":"StepResult"},
            {"key":"c","value":"3","type":"SomethingElse"},{"key":"d","value":"4","type":3}]"#;
        let kinds: Vec<i64> = decode(text.as_bytes()).unwrap().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [TASK_RESULT, STEP_RESULT, UNKNOWN, INTERNAL]);
        assert!(decode(br#"[{"key":"a","value":"1","type":true}]"#).is_err());
    }
}
