//! Issue 17: Argo's folder (/var/run/argo): outputs written through planted links, unbounded output reads.

#[allow(unused_imports)]
use super::*;
