//! The run status as a table for people; machines read `-o json` instead.

use std::fmt::Write as _;

use crate::status::{PodRunStatus, StepStatus};

/// The widest a NOTE cell gets; the full text is in `-o json`.
const NOTE_WIDTH: usize = 200;

/// Renders one pod's run status: a heading line, one row per step, then results and warnings.
pub fn render(run: &PodRunStatus) -> String {
    let mut out = String::new();
    let pod = match &run.namespace {
        Some(ns) => format!("{ns}/{}", run.pod),
        None => run.pod.clone(),
    };
    let _ = writeln!(out, "pod {pod}: {:?}", run.status.phase);

    let header = ["STEP", "KIND", "STATE", "EXIT", "REASON", "STARTED", "FINISHED", "CPU", "MAXRSS", "NOTE"];
    let rows: Vec<[String; COLUMNS]> = run.status.steps.iter().map(row).collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    line(&mut out, &header.map(str::to_string), &widths);
    for r in &rows {
        line(&mut out, r, &widths);
    }
    if !run.status.results.is_empty() {
        out.push_str("results:\n");
        let width = run.status.results.keys().map(|k| k.chars().count()).max().unwrap_or(0);
        for (name, value) in &run.status.results {
            let _ = writeln!(out, "  {name:width$}  {}", one_line(value, NOTE_WIDTH));
        }
    }
    if !run.status.warnings.is_empty() {
        out.push_str("warnings:\n");
        for w in &run.status.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

const COLUMNS: usize = 10;

fn row(s: &StepStatus) -> [String; COLUMNS] {
    let name = match &s.step {
        Some(step) if *step != s.name => format!("{} ({step})", s.name),
        _ => s.name.clone(),
    };
    let dash = || "-".to_string();
    let waiting =
        (!s.waiting_for.is_empty()).then(|| format!("baton waits for {}", s.waiting_for.join(", ")));
    let note = s
        .error
        .as_deref()
        .or(s.message.as_deref())
        .or(waiting.as_deref())
        .map(|t| one_line(t, NOTE_WIDTH))
        .unwrap_or_default();
    // The kubelet says running; baton has not started the command yet.
    let state =
        if waiting.is_some() { "waiting".to_string() } else { format!("{:?}", s.state).to_lowercase() };
    [
        name,
        format!("{:?}", s.kind).to_lowercase(),
        state,
        s.exit_code.map_or_else(dash, |c| c.to_string()),
        s.reason.clone().unwrap_or_else(dash),
        s.started_at.clone().unwrap_or_else(dash),
        s.finished_at.clone().unwrap_or_else(dash),
        s.usage.map_or_else(dash, |u| seconds(u.user_cpu_ms + u.system_cpu_ms)),
        s.usage.map_or_else(dash, |u| kib(u.max_rss_kib)),
        note,
    ]
}

/// `0.213s`, `12.4s`, `431s`: the CPU time a step used (user and kernel).
fn seconds(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{}.{:03}s", ms / 1000, ms % 1000),
        10_000..=99_999 => format!("{}.{}s", ms / 1000, ms % 1000 / 100),
        _ => format!("{}s", ms / 1000),
    }
}

/// `812Ki`, `64.3Mi`, `1.2Gi`.
fn kib(k: u64) -> String {
    match k {
        0..=1023 => format!("{k}Ki"),
        1024..=1_048_575 => format!("{}.{}Mi", k / 1024, k % 1024 * 10 / 1024),
        _ => format!("{}.{}Gi", k / 1_048_576, k % 1_048_576 * 10 / 1_048_576),
    }
}

fn line(out: &mut String, cells: &[String; COLUMNS], widths: &[usize; COLUMNS]) {
    let mut text = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            text.push_str(cell);
        } else {
            let pad = w.saturating_sub(cell.chars().count());
            text.push_str(cell);
            text.push_str(&" ".repeat(pad + 2));
        }
    }
    out.push_str(text.trim_end());
    out.push('\n');
}

/// Lines are joined with ` ⏎ ` (a log tail has many), tabs become spaces; past `max` characters the text ends in `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat = text
        .lines()
        .map(|l| l.replace('\t', " ").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_cells_are_short() {
        assert_eq!(seconds(213), "0.213s");
        assert_eq!(seconds(12_480), "12.4s");
        assert_eq!(seconds(431_000), "431s");
        assert_eq!(kib(812), "812Ki");
        assert_eq!(kib(65_843), "64.2Mi");
        assert_eq!(kib(1_300_000), "1.2Gi");
    }

    #[test]
    fn one_line_flattens_and_cuts_on_characters() {
        assert_eq!(one_line("a\nb\n\n  c\t", 80), "a ⏎ b ⏎ c");
        assert_eq!(one_line(&"é".repeat(10), 4), "ééé…");
    }
}
