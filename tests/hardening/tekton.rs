//! Issue 17: Tekton's shared folders: credentials under a linked $HOME, results read through a linked parent, post and log files.

#[allow(unused_imports)]
use super::*;
