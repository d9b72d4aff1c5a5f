//! A JSON tree that keeps the order of keys as read (serde_json's map would sort them), so that a
//! rewritten document reads as its author wrote it, and the patch operations applied to it.

use std::fmt;

use json_patch::jsonptr::Pointer;
use json_patch::PatchOperation;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

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
