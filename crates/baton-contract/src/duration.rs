//! Durations as users write them on the command line: `250ms`, `1.5s`, `2m`, `1h`, or plain seconds.

use std::time::Duration;

/// Parses `250ms`, `1.5s`, `2m`, `1h` or a plain number of seconds (`30`, `0.5`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "invalid duration {text:?}: write a number with a unit ms, s, m or h \
             (like 250ms, 1.5s, 2m, 1h), or a plain number of seconds"
        )
    };
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats a duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// Go's `time.ParseDuration`, in nanoseconds, with Go's error texts (Tekton's and Argo's contracts
/// take Go durations): `300ms`, `-1.5h`, `1h2m3.5s`, `0`; units ns, us (µs,
/// μs), ms, s, m, h; every number needs a unit except a lone 0.
pub fn parse_go(text: &str) -> Result<i128, String> {
    const MAX: u128 = i64::MAX as u128;
    let invalid = || format!("time: invalid duration {text:?}");
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let mut total: u128 = 0;
    while !s.is_empty() {
        let n = digits(s);
        let whole = &s[..n];
        s = &s[n..];
        let mut fraction = "";
        if let Some(rest) = s.strip_prefix('.') {
            let m = digits(rest);
            fraction = &rest[..m];
            s = &rest[m..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut value = whole.checked_mul(scale).filter(|v| *v <= MAX).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Enough digits for nanoseconds of an hour; the rest cannot change the result.
            let kept = &fraction[..fraction.len().min(24)];
            let f: u128 = kept.parse().map_err(|_| invalid())?;
            value += f * scale / 10u128.pow(kept.len() as u32);
        }
        total = total.checked_add(value).filter(|v| *v <= MAX + u128::from(negative)).ok_or_else(invalid)?;
    }
    Ok(if negative { -(total as i128) } else { total as i128 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage_with_a_sentence() {
        for bad in ["", "s", "-1s", "1d", "1.2.3s", "1e3", "ten", "1 m", "inf"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human(Duration::from_secs(245)), "4m05s");
        assert_eq!(human(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn go_durations() {
        let ok = |s: &str| parse_go(s).unwrap();
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("0s"), 0);
        assert_eq!(ok("1.5h"), 5_400_000_000_000);
        assert_eq!(ok("-1.5s"), -1_500_000_000);
        assert_eq!(ok("+300ms"), 300_000_000);
        assert_eq!(ok("1h0m0s"), 3_600_000_000_000);
        assert_eq!(ok(".5s"), 500_000_000);
        assert_eq!(ok("5.s"), 5_000_000_000);
        assert_eq!(ok("2us"), 2_000);
        assert_eq!(ok("2µs"), 2_000);
        assert_eq!(ok("1ns"), 1);
        assert_eq!(ok("2562047h47m16.854775807s"), i64::MAX as i128);
        assert_eq!(ok("-2562047h47m16.854775808s"), i64::MIN as i128);
        for bad in ["", "1", "s", ".s", "1d", "1.2.3s", "2562047h47m16.854775808s", "-", "1h 2m"] {
            assert!(parse_go(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_go("10").unwrap_err(), "time: missing unit in duration \"10\"");
    }

}
