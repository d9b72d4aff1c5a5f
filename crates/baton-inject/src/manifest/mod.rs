//! Manifests as text: YAML (many documents) or JSON (one or many values), each document a Pod, Job,
//! CronJob, a `List` of objects, or anything else. What is read is written back in the same format:
//!
//! - a document the injection does not change is copied byte for byte (so injecting twice gives the
//!   same bytes as injecting once, and other kinds pass through untouched);
//! - a changed document is written again from its parsed tree, keys in their original order, with
//!   its leading and trailing comment lines kept; comments inside it are lost (YAML libraries do
//!   not keep them), and JSON keeps the indentation it had.
//!
//! - [`split`]: the text cut into documents, byte for byte;
//! - [`write`]: a changed document written again in its format;
//! - [`node`]: the tree that keeps keys in their order.

mod node;
mod split;
mod write;

use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::PatchOperation;
use serde_json::Value;

pub use node::Node;
use split::{split_json, split_yaml};
use write::{rewrite_json, rewrite_yaml};

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
            Outcome::Relimited { steps, .. } => format!(
                "{prefix}{name}: already injected; --message-limit lowered in {steps} step{} for its \
                 containers added since",
                if *steps == 1 { "" } else { "s" }
            ),
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
