//! Manifests as text: YAML (many documents) or JSON (one or many values), each document a Pod, Job,
//! CronJob, a `List` of objects, or anything else. What is read is written back in the same format:
//!
//! - a document the injection does not change is copied byte for byte (so injecting twice gives the
//!   same bytes as injecting once, and other kinds pass through untouched);
//! - a changed document is written again from its parsed tree, keys in their original order, with
//!   its leading and trailing comment lines kept; comments inside it are lost (YAML libraries do
//!   not keep them), and JSON keeps the indentation it had.

use std::fmt;

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::PatchOperation;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

use crate::images::ImageConfigs;
use crate::{describe, plan_at, InjectError, Options, Outcome};

/// The format of a manifest: decided by its first character (`{` or `[` is JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    pub fn of(text: &str) -> Format {
        match text.trim_start_matches('\u{feff}').trim_start().as_bytes().first() {
            Some(b'{' | b'[') => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// The injected manifest and what happened to each object, for people (stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub format: Format,
    pub text: String,
    /// One line per object: injected, already injected, opted out, or passed through.
    pub notes: Vec<String>,
    /// How many objects were changed.
    pub changed: usize,
}

/// Why a manifest could not be injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    /// A document is not valid YAML or JSON.
    Syntax { document: String, message: String },
    /// An object was refused.
    Refused { document: String, error: Box<InjectError> },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::Syntax { document, message } => write!(f, "{document} is not valid: {message}"),
            ManifestError::Refused { document, error } if document.is_empty() => write!(f, "{error}"),
            ManifestError::Refused { document, error } => write!(f, "{document}: {error}"),
        }
    }
}

impl std::error::Error for ManifestError {}

/// Injects every Pod, Job and CronJob of `text` (see the module's documentation).
pub fn inject_text(
    text: &str,
    options: &Options,
    images: &dyn ImageConfigs,
) -> Result<Injected, ManifestError> {
    let format = Format::of(text);
    let pieces = match format {
        Format::Yaml => split_yaml(text),
        Format::Json => split_json(text)?,
    };
    let documents = pieces.iter().filter(|p| p.document).count();
    let mut out =
        Injected { format, text: String::with_capacity(text.len() + 1024), notes: Vec::new(), changed: 0 };
    let mut number = 0;
    for piece in pieces {
        if !piece.document {
            out.text.push_str(piece.text);
            continue;
        }
        number += 1;
        let label = if documents > 1 { format!("document {number}") } else { String::new() };
        let mut node = match format {
            Format::Yaml => {
                serde_saphyr::from_str::<Node>(piece.text).map_err(|e| ManifestError::Syntax {
                    document: if label.is_empty() { "the YAML".to_string() } else { label.clone() },
                    message: e.to_string(),
                })?
            }
            Format::Json => serde_json::from_str::<Node>(piece.text).map_err(|e| ManifestError::Syntax {
                document: if label.is_empty() { "the JSON".to_string() } else { label.clone() },
                message: e.to_string(),
            })?,
        };
        let ops = inject_node(&node, &label, options, images, &mut out.notes)?;
        if ops.is_empty() {
            out.text.push_str(piece.text);
            continue;
        }
        for op in &ops {
            node.apply(op).map_err(|message| ManifestError::Syntax { document: label.clone(), message })?;
        }
        out.changed += 1;
        match format {
            Format::Yaml => out.text.push_str(&rewrite_yaml(piece.text, &node)?),
            Format::Json => out.text.push_str(&rewrite_json(piece.text, &node)),
        }
    }
    Ok(out)
}

/// Every object of `text`: each document, and the items of each `List`, in order (for callers that
/// look for something besides workloads, such as the Secrets named by `imagePullSecrets`).
pub fn objects(text: &str) -> Result<Vec<Value>, ManifestError> {
    let format = Format::of(text);
    let pieces = match format {
        Format::Yaml => split_yaml(text),
        Format::Json => split_json(text)?,
    };
    let mut objects = Vec::new();
    for (i, piece) in pieces.iter().filter(|p| p.document).enumerate() {
        let syntax =
            |message: String| ManifestError::Syntax { document: format!("document {}", i + 1), message };
        let value: Value = match format {
            Format::Yaml => {
                serde_saphyr::from_str::<Node>(piece.text).map_err(|e| syntax(e.to_string()))?.to_value()
            }
            Format::Json => serde_json::from_str(piece.text).map_err(|e| syntax(e.to_string()))?,
        };
        match value.get("items") {
            Some(Value::Array(items))
                if value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List")) =>
            {
                objects.extend(items.iter().cloned())
            }
            _ => objects.push(value),
        }
    }
    Ok(objects)
}

/// The patch for one document: the object itself, or every item of a `List`.
fn inject_node(
    node: &Node,
    label: &str,
    options: &Options,
    images: &dyn ImageConfigs,
    notes: &mut Vec<String>,
) -> Result<Vec<PatchOperation>, ManifestError> {
    let value = node.to_value();
    let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    let objects: Vec<(PointerBuf, &Value, String)> = if is_list {
        let items = value["items"].as_array().into_iter().flatten();
        items
            .enumerate()
            .map(|(i, item)| {
                let at = PointerBuf::from_tokens(["items".to_string(), i.to_string()]);
                let where_ = if label.is_empty() {
                    format!("item {}", i + 1)
                } else {
                    format!("{label}, item {}", i + 1)
                };
                (at, item, where_)
            })
            .collect()
    } else {
        vec![(PointerBuf::new(), &value, label.to_string())]
    };
    let mut ops = Vec::new();
    for (at, object, where_) in objects {
        let injection = plan_at(object, &at, options, images)
            .map_err(|error| ManifestError::Refused { document: where_.clone(), error: Box::new(error) })?;
        let prefix = if where_.is_empty() { String::new() } else { format!("{where_}: ") };
        let name = describe(object);
        notes.push(match &injection.outcome {
            Outcome::Injected { wrapped, .. } => {
                format!(
                    "{prefix}{name}: injected ({wrapped} container{} wrapped)",
                    if *wrapped == 1 { "" } else { "s" }
                )
            }
            Outcome::AlreadyInjected { .. } => format!("{prefix}{name}: already injected, unchanged"),
            Outcome::OptedOut { .. } => format!("{prefix}{name}: baton.dev/inject is \"false\", unchanged"),
            Outcome::Windows { .. } => format!(
                "{prefix}{name}: warning: not injected, it runs on Windows nodes (spec.os.name: windows) and baton runs \
                 on Linux only; unchanged"
            ),
            Outcome::NotAWorkload { kind: Some(_) } => {
                format!("{prefix}{name} is not a Pod, Job or CronJob: passed through unchanged")
            }
            Outcome::NotAWorkload { kind: None } => format!("{prefix}no kind: passed through unchanged"),
        });
        ops.extend(injection.patch.0);
    }
    Ok(ops)
}

// ---------------------------------------------------------------------------------------------------
// Splitting text into documents, byte for byte.

/// A stretch of the input: a document, or what lies between documents (whitespace, comments).
struct Piece<'a> {
    text: &'a str,
    document: bool,
}

/// YAML documents: a line that starts with `---` (then a space or its end) opens one; YAML forbids
/// such a line inside any scalar, so the split is exact. A stretch with nothing but blank lines,
/// comments and markers is not a document.
fn split_yaml(text: &str) -> Vec<Piece<'_>> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && is_marker(line, "---") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| {
            let chunk = &text[w[0]..w[1]];
            let document =
                chunk.lines().any(|l| !is_filler(l) && !is_marker(l, "---") && !is_marker(l, "..."));
            Piece { text: chunk, document }
        })
        .filter(|p| !p.text.is_empty())
        .collect()
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// A blank line, or a comment at column 0 (inside a document, indented `#` lines may be scalar text).
fn is_filler(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with('#')
}

/// JSON values one after the other (one, usually), with the whitespace between them kept.
fn split_json(text: &str) -> Result<Vec<Piece<'_>>, ManifestError> {
    let mut pieces = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<de::IgnoredAny>();
    let mut end = 0;
    let mut number = 0;
    loop {
        let next = stream.next();
        let offset = stream.byte_offset();
        match next {
            None => break,
            Some(Ok(_)) => {
                number += 1;
                let between = &text[end..offset];
                let start = end + (between.len() - between.trim_start().len());
                if start > end {
                    pieces.push(Piece { text: &text[end..start], document: false });
                }
                pieces.push(Piece { text: &text[start..offset], document: true });
                end = offset;
            }
            Some(Err(e)) => {
                let document =
                    if number == 0 { "the JSON".to_string() } else { format!("JSON value {}", number + 1) };
                return Err(ManifestError::Syntax { document, message: e.to_string() });
            }
        }
    }
    if end < text.len() {
        pieces.push(Piece { text: &text[end..], document: false });
    }
    Ok(pieces)
}

// ---------------------------------------------------------------------------------------------------
// Writing a changed document.

fn yaml_options() -> serde_saphyr::SerializerOptions {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.indent_step = 2;
    options.compact_list_indent = true;
    // Long one-line strings (commands, URLs) stay on one line; multi-line ones become `|` blocks.
    options.folded_wrap_chars = usize::MAX;
    options.min_fold_chars = usize::MAX;
    options
}

/// The document written again, between its own marker line and leading comments and its trailing
/// comments.
fn rewrite_yaml(chunk: &str, node: &Node) -> Result<String, ManifestError> {
    let lines: Vec<&str> = chunk.split_inclusive('\n').collect();
    let mut head = 0;
    let mut out = String::new();
    if lines.first().is_some_and(|l| is_marker(l, "---")) {
        let first = lines[0];
        let rest = first[3..].trim_start();
        out.push_str(if rest.is_empty() || rest.starts_with('#') { first } else { "---\n" });
        if !out.ends_with('\n') {
            out.push('\n');
        }
        head = 1;
    }
    while head < lines.len() && is_filler(lines[head]) {
        out.push_str(lines[head]);
        head += 1;
    }
    let mut tail = lines.len();
    while tail > head && is_filler(lines[tail - 1]) {
        tail -= 1;
    }
    let body = serde_saphyr::to_string_with_options(node, yaml_options()).map_err(|e| {
        ManifestError::Syntax { document: "the injected document".to_string(), message: e.to_string() }
    })?;
    out.push_str(body.strip_prefix("---\n").unwrap_or(&body));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if lines[tail..].iter().any(|l| l.starts_with('#')) {
        out.extend(lines[tail..].iter().copied());
    }
    Ok(out)
}

/// The value written again with the indentation the document had (none when it was on one line).
fn rewrite_json(text: &str, node: &Node) -> String {
    let indent = text
        .lines()
        .nth(1)
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .filter(|i| !i.is_empty() && text.contains('\n'));
    let mut out = Vec::new();
    let written = match indent {
        Some(indent) => {
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            node.serialize(&mut serde_json::Serializer::with_formatter(&mut out, formatter))
        }
        None => node.serialize(&mut serde_json::Serializer::new(&mut out)),
    };
    written.expect("a tree of JSON values always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

// ---------------------------------------------------------------------------------------------------
// A JSON tree that keeps the order of keys as read.

/// A YAML or JSON value whose maps keep their keys in the order they were read.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// Keys of the objects the injection adds, in the order people write them.
const KEY_ORDER: [&str; 6] = ["name", "image", "command", "args", "mountPath", "emptyDir"];

impl Node {
    pub fn to_value(&self) -> Value {
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::String(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }

    /// A new value (one the injection adds): well-known keys first, the rest in alphabetical order.
    pub fn from_value(value: &Value) -> Node {
        match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::String(s.clone()),
            Value::Array(items) => Node::Seq(items.iter().map(Node::from_value).collect()),
            Value::Object(map) => {
                let mut entries: Vec<(String, Node)> =
                    map.iter().map(|(k, v)| (k.clone(), Node::from_value(v))).collect();
                let rank = |k: &str| KEY_ORDER.iter().position(|w| *w == k).unwrap_or(KEY_ORDER.len());
                entries.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
                Node::Map(entries)
            }
        }
    }

    /// Applies one JSON Patch `add` or `replace` operation.
    pub fn apply(&mut self, op: &PatchOperation) -> Result<(), String> {
        let (path, value, replace) = match op {
            PatchOperation::Add(op) => (&op.path, &op.value, false),
            PatchOperation::Replace(op) => (&op.path, &op.value, true),
            other => return Err(format!("unsupported patch operation {other}")),
        };
        let value = Node::from_value(value);
        let Some((parent, last)) = path.split_back() else {
            *self = value;
            return Ok(());
        };
        let last = last.decoded().into_owned();
        match self.at_mut(parent)? {
            Node::Map(entries) => match entries.iter_mut().find(|(k, _)| *k == last) {
                Some((_, slot)) => *slot = value,
                None if replace => return Err(format!("{path}: no such member")),
                None => {
                    let at = insert_position(entries, &last);
                    entries.insert(at, (last, value));
                }
            },
            Node::Seq(items) if last == "-" && !replace => items.push(value),
            Node::Seq(items) => {
                let index: usize = last.parse().map_err(|_| format!("{path}: not an index"))?;
                match (replace, index.cmp(&items.len())) {
                    (true, std::cmp::Ordering::Less) => items[index] = value,
                    (false, std::cmp::Ordering::Less | std::cmp::Ordering::Equal) => {
                        items.insert(index, value)
                    }
                    _ => return Err(format!("{path}: index out of range")),
                }
            }
            _ => return Err(format!("{path}: the parent is not a map or a list")),
        }
        Ok(())
    }

    fn at_mut(&mut self, pointer: &Pointer) -> Result<&mut Node, String> {
        let mut node = self;
        for token in pointer.tokens() {
            let key = token.decoded();
            node = match node {
                Node::Map(entries) => entries.iter_mut().find(|(k, _)| *k == key).map(|(_, v)| v),
                Node::Seq(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            }
            .ok_or_else(|| format!("{pointer}: no such member"))?;
        }
        Ok(node)
    }
}

/// Where a new key goes in a map people read: `initContainers` before `containers`, `command`
/// before `args` or else after `image`; anything else at the end.
fn insert_position(entries: &[(String, Node)], key: &str) -> usize {
    let find = |k: &str| entries.iter().position(|(e, _)| e == k);
    let found = match key {
        "initContainers" => find("containers"),
        "command" => find("args").or_else(|| find("image").map(|i| i + 1)),
        _ => None,
    };
    found.unwrap_or(entries.len())
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => n.serialize(serializer),
            Node::String(s) => serializer.serialize_str(s),
            Node::Seq(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node, E> {
        Number::from_f64(n).map(Node::Number).ok_or_else(|| E::custom(format!("{n} is not a JSON number")))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            let value: Node = map.next_value()?;
            // A repeated key: the last one wins, as in every JSON reader Kubernetes uses.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some((_, slot)) => *slot = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Node::Map(entries))
    }
}

/// A map key: YAML allows numbers and booleans there; Kubernetes reads them as strings.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(Key(s.to_string()))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Key, E> {
                Ok(Key(b.to_string()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Key, E> {
                Ok(Key(n.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key("null".to_string()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}
