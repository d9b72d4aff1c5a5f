//! Issue 17: A step's liveness cannot be held by another UID: successors wake at its record or its death.

#[allow(unused_imports)]
use super::*;
