//! Wall-clock timestamps for records (monotonic time, `Instant`, is used for every deadline).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn now_rfc3339() -> String {
    baton_contract::time::format_millis(now_ms())
}
