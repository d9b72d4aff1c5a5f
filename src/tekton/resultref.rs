//! Step result references as Tekton finds and parses them (tektoncd/pipeline v1.15:
//! pkg/entrypoint/entrypointer.go's pattern, pkg/internal/resultref), and a result file's value as
//! `ResultValue.UnmarshalJSON` reads it. Pure text: reading the files is stepresults.rs's.

use std::collections::BTreeMap;

/// The matches of Tekton's `\$\(steps\..*?\.results\..*?\)` (RE2, leftmost, lazy; `.` is any byte
/// but a newline), as byte ranges.
pub fn step_result_refs(s: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = find(s, b"$(steps.", from) {
        let after = i + b"$(steps.".len();
        let end =
            lazy_until(s, after, b".results.").and_then(|j| lazy_until(s, j + b".results.".len(), b")")).map(|k| k + 1);
        match end {
            Some(end) => {
                found.push(i..end);
                from = end;
            }
            None => from = i + 1,
        }
    }
    found
}

/// The first `needle` at or after `from` with no newline between `from` and it.
fn lazy_until(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let mut j = from;
    while j + needle.len() <= s.len() {
        if s[j..].starts_with(needle) {
            return Some(j);
        }
        if s[j] == b'\n' {
            return None;
        }
        j += 1;
    }
    None
}

pub fn find(s: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..=s.len().saturating_sub(needle.len())).find(|&i| s[i..].starts_with(needle))
}

/// Go's `strings.ReplaceAll`.
pub fn replace_all(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// A parsed `steps.<step>.results.<name>[…]` / `.<key>` (resultref.ParseStepExpression).
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    pub step: String,
    pub result: String,
    pub kind: RefKind,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefKind {
    String,
    /// `[*]`: None; `[i]`: Some(i).
    Array(Option<usize>),
    Object(String),
}

pub fn parse_reference(expression: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = expression.split('.').collect();
    let invalid = || {
        format!(
            "{expression:?} must be one of the form 1). \"steps.<stepName>.results.<resultName>\"; 2). \
             \"steps.<stepName>.results.<objectResultName>.<individualAttribute>\""
        )
    };
    if parts.len() < 4 || parts[0] != "steps" || parts[2] != "results" {
        return Err(invalid());
    }
    let step = parts[1].to_string();
    match parts.len() {
        4 => {
            let (result, index) = result_name(parts[3]);
            let kind = match index {
                None => RefKind::String,
                Some("*") => RefKind::Array(None),
                // strconv.Atoi's error is ignored there: "[1*]" is element 0.
                Some(i) => RefKind::Array(Some(i.parse().unwrap_or(0))),
            };
            Ok(Reference { step, result, kind })
        }
        5 => Ok(Reference { step, result: parts[3].to_string(), kind: RefKind::Object(parts[4].to_string()) }),
        _ => Err(invalid()),
    }
}

/// `ParseResultName`: the name without its `[…]` parts (`\[([0-9])*\*?\]`), and what the first held.
fn result_name(name: &str) -> (String, Option<&str>) {
    let mut first = None;
    let mut stripped = String::new();
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let mut j = i + 1 + digits;
            if b.get(j) == Some(&b'*') {
                j += 1;
            }
            if b.get(j) == Some(&b']') {
                let inside = &name[i + 1..j];
                first.get_or_insert(inside);
                i = j + 1;
                continue;
            }
        }
        let c = name[i..].chars().next().unwrap_or('\u{fffd}');
        stripped.push(c);
        i += c.len_utf8();
    }
    (stripped, first.filter(|inside| !inside.is_empty()))
}

/// A result file as Tekton's `ResultValue.UnmarshalJSON` reads it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResultValue {
    pub string: Vec<u8>,
    pub array: Vec<String>,
    pub object: BTreeMap<String, String>,
}

impl ResultValue {
    pub fn parse(bytes: &[u8]) -> ResultValue {
        use serde_json::Value;
        // Go decodes into []string, map[string]string or string in turn; a null is "". Parsed once,
        // as a Value (the decoder the binary already has), then checked for the same shapes.
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            _ => None,
        };
        let value: Option<Value> = serde_json::from_slice(bytes).ok();
        match (bytes.first(), &value) {
            (Some(b'['), Some(Value::Array(a))) => {
                if let Some(array) = a.iter().map(text).collect::<Option<Vec<_>>>() {
                    return ResultValue { array, ..Default::default() };
                }
            }
            (Some(b'{'), Some(Value::Object(o))) => {
                if let Some(object) = o.iter().map(|(k, v)| text(v).map(|v| (k.clone(), v))).collect::<Option<_>>() {
                    return ResultValue { object, ..Default::default() };
                }
            }
            _ => {}
        }
        match value.as_ref().and_then(text) {
            Some(s) => ResultValue { string: s.into_bytes(), ..Default::default() },
            None => ResultValue { string: bytes.to_vec(), ..Default::default() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(s: &str) -> Vec<&str> {
        step_result_refs(s.as_bytes()).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn references_as_tekton_s_regexp_finds_them() {
        assert_eq!(refs("$(steps.foo.results.res)"), ["$(steps.foo.results.res)"]);
        assert_eq!(
            refs("$(steps.foo.results.res.first)-$(steps.foo.results.res.second)"),
            ["$(steps.foo.results.res.first)", "$(steps.foo.results.res.second)"]
        );
        // Lazy but not bounded by ')': the first match runs on to the next ".results." on the line.
        assert_eq!(
            refs("$(steps.a.exitCode.path) $(steps.b.results.c)"),
            ["$(steps.a.exitCode.path) $(steps.b.results.c)"]
        );
        // `.` does not match a newline.
        assert_eq!(refs("$(steps.a\n.results.b) $(steps.c.results.d)"), ["$(steps.c.results.d)"]);
        assert_eq!(refs("$(steps.a.results.b\n) x"), Vec::<&str>::new());
        assert_eq!(refs("$(params.x) $(steps.a.results.r[*])"), ["$(steps.a.results.r[*])"]);
    }

    #[test]
    fn expressions_as_resultref_parses_them() {
        // pkg/internal/resultref: parseExpression's cases, for steps.
        let r = |s: &str| parse_reference(s).unwrap();
        assert_eq!(r("steps.a.results.s"), Reference { step: "a".into(), result: "s".into(), kind: RefKind::String });
        assert_eq!(r("steps.a.results.arr[1]").kind, RefKind::Array(Some(1)));
        assert_eq!(r("steps.a.results.arr[*]").kind, RefKind::Array(None));
        assert_eq!(r("steps.a.results.arr[*]").result, "arr");
        assert_eq!(r("steps.a.results.obj.key").kind, RefKind::Object("key".into()));
        assert_eq!(r("steps.a.results.arr[]").kind, RefKind::String);
        assert_eq!(r("steps.a.results.arr[1*]").kind, RefKind::Array(Some(0)));
        assert!(parse_reference("steps.foo.results.res.hello.bar").is_err());
        assert!(parse_reference("steps.foo.result.res").is_err());
        assert!(parse_reference("tasks.foo.results.res").is_err());
    }

    #[test]
    fn values_as_result_value_unmarshals_them() {
        let v = ResultValue::parse;
        assert_eq!(v(b"Hello").string, b"Hello");
        assert_eq!(v(b"\"quoted \\u0041\"\n").string, b"quoted A");
        assert_eq!(v(b"").string, b"");
        assert_eq!(v(b"null").string, b"");
        assert_eq!(v(b"[\"a\",null,\"b\"]\n").array, ["a", "", "b"]);
        assert_eq!(v(b"[1,2]").string, b"[1,2]");
        assert_eq!(v(b" [\"a\"]").string, b" [\"a\"]");
        let o = v(br#"{"first":"hello", "second":"world"}"#).object;
        assert_eq!(o.get("second").map(String::as_str), Some("world"));
        assert_eq!(v(br#"{"a":1}"#).string, br#"{"a":1}"#);
    }
}
