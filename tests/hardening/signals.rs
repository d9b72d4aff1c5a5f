//! Issue 17: Signal transparency: the command sees the signals that were sent, and no others.

#[allow(unused_imports)]
use super::*;
