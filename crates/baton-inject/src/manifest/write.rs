//! Writing a changed document again: YAML between its own marker and comment lines, JSON with the
//! indentation it had.

use serde::Serialize;

use super::node::Node;
use super::split::{is_filler, is_marker};
use super::ManifestError;

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
pub(super) fn rewrite_yaml(chunk: &str, node: &Node) -> Result<String, ManifestError> {
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
pub(super) fn rewrite_json(text: &str, node: &Node) -> String {
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
