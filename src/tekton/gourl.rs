//! Go's `net/url`, as far as Tekton's `.git-credentials` and `.gitconfig` depend on it
//! (pkg/credentials/gitcreds/basic.go): `url.Parse`, `u.User = url.UserPassword(…)`, `u.String()`,
//! and `%q`.

/// Go's `%q` of a string: `"…"` with `"` and `\` escaped and control characters as escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether the URL has a path other than `/` (Tekton's `urlHasPath`: then `useHttpPath = true`).
pub fn has_path(url: &str) -> bool {
    GoUrl::parse(url).is_ok_and(|u| !u.path.is_empty() && u.path != b"/")
}

/// The parts of Go's `net/url.URL` that `.git-credentials` depends on: `url.Parse`, then
/// `u.User = url.UserPassword(…)` and `u.String()`.
#[derive(Debug)]
pub struct GoUrl<'a> {
    /// Lower-cased, as url.Parse keeps it.
    scheme: String,
    opaque: Option<&'a str>,
    host: &'a str,
    /// Unescaped, and as written.
    pub path: Vec<u8>,
    raw_path: &'a str,
    query: Option<&'a str>,
    fragment: Option<(Vec<u8>, &'a str)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Host,
    Path,
    UserPassword,
    Fragment,
}

impl<'a> GoUrl<'a> {
    pub fn parse(raw: &'a str) -> Result<GoUrl<'a>, String> {
        let fail = |why: &str| format!("parse {raw:?}: {why}");
        let (rest, fragment) = match raw.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (raw, None),
        };
        if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(fail("net/url: invalid control character in URL"));
        }
        let mut url = GoUrl {
            scheme: String::new(),
            opaque: None,
            host: "",
            path: Vec::new(),
            raw_path: "",
            query: None,
            fragment: None,
        };
        if let Some(f) = fragment.filter(|f| !f.is_empty()) {
            url.fragment = Some((unescape(f, Part::Fragment).map_err(|e| fail(&e))?, f));
        }
        if rest == "*" {
            url.path = b"*".to_vec();
            url.raw_path = rest;
            return Ok(url);
        }
        // getScheme
        let mut rest = rest;
        for (i, c) in rest.bytes().enumerate() {
            match c {
                b'a'..=b'z' | b'A'..=b'Z' => {}
                b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
                b':' if i == 0 => return Err(fail("missing protocol scheme")),
                b':' => {
                    url.scheme = rest[..i].to_ascii_lowercase();
                    rest = &rest[i + 1..];
                    break;
                }
                _ => break,
            }
        }
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            rest = &rest[..rest.len() - 1];
            url.query = Some("");
        } else if let Some((r, q)) = rest.split_once('?') {
            rest = r;
            url.query = Some(q);
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = Some(rest);
                return Ok(url);
            }
            if rest.split('/').next().is_some_and(|segment| segment.contains(':')) {
                return Err(fail("first path segment in URL cannot contain colon"));
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let (authority, path) = match rest[2..].find('/') {
                Some(i) => (&rest[2..2 + i], &rest[2 + i..]),
                None => (&rest[2..], ""),
            };
            // The user info given in the URL, if any, is replaced: only the host matters.
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            check_host(host).map_err(|e| fail(&e))?;
            url.host = host;
            rest = path;
        }
        url.path = unescape(rest, Part::Path).map_err(|e| fail(&e))?;
        url.raw_path = rest;
        Ok(url)
    }

    /// `u.User = url.UserPassword(user, password); u.String()`.
    pub fn with_user(&self, user: &[u8], password: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.scheme.is_empty() {
            out.extend_from_slice(self.scheme.as_bytes());
            out.push(b':');
        }
        if let Some(opaque) = self.opaque {
            out.extend_from_slice(opaque.as_bytes());
        } else {
            out.extend_from_slice(b"//");
            out.extend_from_slice(&escape(user, Part::UserPassword));
            out.push(b':');
            out.extend_from_slice(&escape(password, Part::UserPassword));
            out.push(b'@');
            out.extend_from_slice(self.host.as_bytes());
            let path = escaped(&self.path, self.raw_path, Part::Path);
            if !path.is_empty() && path[0] != b'/' && !self.host.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(&path);
        }
        if let Some(q) = self.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        if let Some((fragment, raw)) = &self.fragment {
            out.push(b'#');
            out.extend_from_slice(&escaped(fragment, raw, Part::Fragment));
        }
        out
    }
}

/// `parseHost`'s checks: a numeric port after the last colon, no character a host cannot hold.
fn check_host(host: &str) -> Result<(), String> {
    let after = if host.starts_with('[') {
        match host.rfind(']') {
            Some(i) => &host[i + 1..],
            None => return Err("missing ']' in host".into()),
        }
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let numeric_port = after.starts_with(':') && after[1..].bytes().all(|b| b.is_ascii_digit());
    if !after.is_empty() && !numeric_port {
        return Err(format!("invalid port {after:?} after host"));
    }
    if host.starts_with('[') {
        return Ok(());
    }
    match host.bytes().find(|&b| b < 0x80 && b != b'%' && should_escape(b, Part::Host)) {
        Some(b) => Err(format!("invalid character {:?} in host name", b as char)),
        None => Ok(()),
    }
}

/// Go's `shouldEscape`.
fn should_escape(c: u8, part: Part) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    // Go lets a host keep its sub-delimiters, ':', the brackets of an IPv6 literal, and <>".
    if part == Part::Host && b"!$&'()*+,;=:[]<>\"".contains(&c) {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match part {
            Part::Path => c == b'?',
            Part::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
            Part::Fragment => false,
            Part::Host => true,
        },
        b'!' | b'(' | b')' | b'*' if part == Part::Fragment => false,
        _ => true,
    }
}

fn escape(bytes: &[u8], part: Part) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if should_escape(b, part) {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
    out
}

fn unescape(s: &str, part: Part) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(format!("invalid URL escape {:?}", &s[i..(i + 3).min(s.len())])),
            }
            i += 3;
        } else {
            if part == Part::Host && b[i] < 0x80 && should_escape(b[i], part) {
                return Err(format!("invalid character {:?} in host name", b[i] as char));
            }
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// `EscapedPath` / `EscapedFragment`: the text as written when it is a valid encoding, else the
/// decoded bytes escaped again.
fn escaped(decoded: &[u8], raw: &str, part: Part) -> Vec<u8> {
    // Go's validEncoded: sub-delimiters, ':', '@', brackets and '%' may stand as they are.
    let valid = raw.bytes().all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c, part));
    if valid {
        raw.as_bytes().to_vec()
    } else {
        escape(decoded, part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_user(url: &str, user: &str, password: &str) -> String {
        String::from_utf8(GoUrl::parse(url).unwrap().with_user(user.as_bytes(), password.as_bytes())).unwrap()
    }

    #[test]
    fn git_credentials_urls_as_go_writes_them() {
        // gitcreds/creds_test.go: TestBasicFlagHandling, TestBasicBackslashInUsername.
        assert_eq!(with_user("https://github.com", "bar", "baz"), "https://bar:baz@github.com");
        assert_eq!(
            with_user("https://github.com", "foo\\bar\\banana", "baz"),
            "https://foo%5Cbar%5Cbanana:baz@github.com"
        );
        assert_eq!(
            with_user("https://github.com/org/repo1", "user1", "token1"),
            "https://user1:token1@github.com/org/repo1"
        );
        // Go's userinfo escaping: @ / ? : and everything outside the unreserved and sub-delims.
        assert_eq!(
            with_user("HTTPS://h:8443/a b?x=1#f g", "u@x", "p:/?$&+,;= é"),
            "https://u%40x:p%3A%2F%3F$&+,;=%20%C3%A9@h:8443/a%20b?x=1#f%20g"
        );
        assert_eq!(with_user("https://old:pw@host/p(1)", "u", ""), "https://u:@host/p(1)");
        assert_eq!(with_user("github.com/org", "u", "p"), "//u:p@github.com/org");
        assert_eq!(with_user("https:opaque", "u", "p"), "https:opaque");
        for bad in ["git@github.com:org/repo", "https://h:x/", ":x", "https://h/%zz", "https://a b/"] {
            assert!(GoUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(
            has_path("https://github.com/org/repo")
                && !has_path("https://github.com/")
                && !has_path("https://github.com")
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("https://github.com"), "\"https://github.com\"");
        assert_eq!(go_quote("a\"b\\c\té\u{1}"), "\"a\\\"b\\\\c\\té\\x01\"");
    }
}
