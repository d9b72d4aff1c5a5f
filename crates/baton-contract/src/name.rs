//! Names of steps and results. Steps are DNS-label-like, so they can be container names too;
//! results follow Tekton's result-name rule, so files written for Tekton work unchanged.

/// Longest step name (a DNS label).
pub const MAX_STEP_NAME: usize = 63;
/// Longest result name.
pub const MAX_RESULT_NAME: usize = 253;

/// A step name: `[a-z0-9]([-a-z0-9_.]*[a-z0-9])?`, at most 63 bytes.
pub fn check_step(name: &str) -> Result<(), String> {
    let inner = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.');
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if valid(name, MAX_STEP_NAME, edge, inner) {
        Ok(())
    } else {
        Err(format!(
            "invalid step name {name:?}: use 1 to {MAX_STEP_NAME} lower-case letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// A result name: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 253 bytes.
pub fn check_result(name: &str) -> Result<(), String> {
    let inner = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let edge = |b: u8| b.is_ascii_alphanumeric();
    if valid(name, MAX_RESULT_NAME, edge, inner) {
        Ok(())
    } else {
        Err(format!(
            "invalid result name {name:?}: use letters, digits, '-', '_' or '.', starting and ending with a \
             letter or digit, at most {MAX_RESULT_NAME} characters"
        ))
    }
}

fn valid(name: &str, max: usize, edge: impl Fn(u8) -> bool, inner: impl Fn(u8) -> bool) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            b.len() <= max && edge(first) && edge(last) && b.iter().all(|&c| inner(c))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names() {
        for ok in ["a", "build", "step-1", "a.b_c-d", "0"] {
            assert!(check_step(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "-a", "a-", "A", "a b", "a/b", "é", ".", long.as_str()] {
            assert!(check_step(bad).is_err(), "{bad:?}");
        }
        assert!(check_step(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn result_names() {
        for ok in ["digest", "IMAGE_URL", "a.b", "x-1"] {
            assert!(check_result(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a-", "with space", "a/b", "ünï"] {
            assert!(check_result(bad).is_err(), "{bad:?}");
        }
    }
}
