//! The lines of a live view in the order things happened, though they are found out of order: a
//! step's end is read from its record at once, while podman may give another container's start only
//! at its next look, seconds later. Each line is held back for a while after it happened, and lines
//! are said oldest first. Shared by `batonctl play` and `batonctl status -w`.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// What has been found and not yet said, each with when it happened.
#[derive(Debug)]
pub struct Timeline<T> {
    /// How long after it happened a line may still be found: the longest the sources lag.
    hold: Duration,
    /// (when it happened, the order found, the line).
    held: Vec<(Timestamp, u64, T)>,
    found: u64,
}

impl<T> Timeline<T> {
    /// A timeline that holds each line back for `hold` after it happened.
    pub fn new(hold: Duration) -> Self {
        Timeline { hold, held: Vec::new(), found: 0 }
    }

    /// Notes `item`, which happened at `at` when its source says; a line without a time happened
    /// when it was found (`found`).
    pub fn add(&mut self, at: Option<Timestamp>, found: Timestamp, item: T) {
        self.held.push((at.unwrap_or(found), self.found, item));
        self.found += 1;
    }

    /// What can be said at `now`: the lines that happened at least `hold` ago, oldest first (equal
    /// times in the order found). The others wait, since an older line may still be found.
    pub fn release(&mut self, now: Timestamp) -> Vec<(Timestamp, T)> {
        let settled = now.checked_sub(self.hold).unwrap_or(Timestamp::MIN);
        self.held.sort_by_key(|(at, n, _)| (*at, *n));
        let ready = self.held.partition_point(|(at, _, _)| *at <= settled);
        self.held.drain(..ready).map(|(at, _, item)| (at, item)).collect()
    }

    /// Everything held, oldest first: the run is over.
    pub fn drain(&mut self) -> Vec<(Timestamp, T)> {
        self.release(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `12:00:00` plus `secs`.
    fn at(secs: f64) -> Timestamp {
        let base: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        base + Duration::from_secs_f64(secs)
    }

    /// Lines found together at one moment: (found at, [(happened at, line)]), in seconds after 12:00.
    type Batch<'a> = (f64, Vec<(Option<f64>, &'a str)>);

    /// Feeds `batches` (found at, [(happened at, line)]) as a live view does, releasing after each,
    /// then drains; returns the lines in the order said.
    fn said(batches: &[Batch]) -> Vec<String> {
        let mut timeline = Timeline::new(Duration::from_secs(2));
        let mut out = Vec::new();
        for (found, lines) in batches {
            for (when, text) in lines {
                timeline.add(when.map(at), at(*found), text.to_string());
            }
            out.extend(timeline.release(at(*found)).into_iter().map(|(_, t)| t));
        }
        out.extend(timeline.drain().into_iter().map(|(_, t)| t));
        out
    }

    #[test]
    fn a_start_found_late_is_said_before_an_end_found_early() {
        // Recorded from a 5-step Job on podman: lint's end was read from its record at once, while
        // podman gave checkout's start time only at its next look.
        let lines = said(&[
            (7.6, vec![(Some(7.5), "baton-init  ended Completed, exit code 0")]),
            (10.0, vec![(Some(9.8), "lint  ended Completed, exit code 0")]),
            (
                10.3,
                vec![(Some(8.0), "checkout  started"), (Some(9.0), "checkout  ended Completed, exit code 0")],
            ),
        ]);
        assert_eq!(
            lines,
            [
                "baton-init  ended Completed, exit code 0",
                "checkout  started",
                "checkout  ended Completed, exit code 0",
                "lint  ended Completed, exit code 0",
            ]
        );
    }

    #[test]
    fn a_line_without_a_time_is_placed_where_it_was_found() {
        let lines =
            said(&[(10.0, vec![(None, "Ctrl-C: stopping the pod"), (Some(9.0), "test  ended Error")])]);
        assert_eq!(lines, ["test  ended Error", "Ctrl-C: stopping the pod"]);
    }

    #[test]
    fn lines_are_held_back_for_the_hold_and_equal_times_keep_the_order_found() {
        let mut timeline = Timeline::new(Duration::from_secs(2));
        timeline.add(Some(at(1.0)), at(1.5), "b");
        timeline.add(Some(at(1.0)), at(1.5), "a");
        timeline.add(Some(at(4.0)), at(4.5), "c");
        let now: Vec<&str> = timeline.release(at(4.5)).into_iter().map(|(_, t)| t).collect();
        assert_eq!(now, ["b", "a"]);
        let rest: Vec<&str> = timeline.drain().into_iter().map(|(_, t)| t).collect();
        assert_eq!(rest, ["c"]);
    }
}
