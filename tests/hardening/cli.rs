//! Issue 17: Small refusals: one clean sentence each.

#[allow(unused_imports)]
use super::*;
