//! Splitting manifest text into documents, byte for byte: what lies between them (blank lines,
//! comments, markers) is kept as it is, so an unchanged document is copied exactly.

use serde::de;

use super::ManifestError;

/// A stretch of the input: a document, or what lies between documents (whitespace, comments).
pub(super) struct Piece<'a> {
    pub text: &'a str,
    pub document: bool,
}

/// YAML documents: a line that starts with `---` (then a space or its end) opens one; YAML forbids
/// such a line inside any scalar, so the split is exact. A stretch with nothing but blank lines,
/// comments and markers is not a document.
pub(super) fn split_yaml(text: &str) -> Vec<Piece<'_>> {
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

pub(super) fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// A blank line, or a comment at column 0 (inside a document, indented `#` lines may be scalar text).
pub(super) fn is_filler(line: &str) -> bool {
    line.trim().is_empty() || line.starts_with('#')
}

/// JSON values one after the other (one, usually), with the whitespace between them kept.
pub(super) fn split_json(text: &str) -> Result<Vec<Piece<'_>>, ManifestError> {
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
