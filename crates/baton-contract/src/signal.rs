//! Names of the Linux signals 1-31, for messages that explain a `128 + N` exit code. Real-time
//! signals have no fixed numbers across C libraries, so they are left to the caller.

const NAMES: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
    "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
    "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The name without `SIG` (`TERM` for 15), for signals 1-31.
pub fn short_name(signal: i32) -> Option<&'static str> {
    usize::try_from(signal).ok().and_then(|n| n.checked_sub(1)).and_then(|i| NAMES.get(i)).copied()
}

/// The signal number of a name without `SIG` (`TERM` → 15), for signals 1-31.
pub fn by_short_name(name: &str) -> Option<i32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as i32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree() {
        assert_eq!(short_name(15), Some("TERM"));
        assert_eq!(short_name(9), Some("KILL"));
        assert_eq!(short_name(31), Some("SYS"));
        assert_eq!(short_name(0), None);
        assert_eq!(short_name(32), None);
        assert_eq!(short_name(i32::MIN), None);
        for n in 1..=31 {
            assert_eq!(by_short_name(short_name(n).unwrap()), Some(n));
        }
    }
}
