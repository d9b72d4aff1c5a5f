//! baton's wire contract, shared by the in-pod binary and the controller.
//!
//! Everything another process reads lives here: where files go in the shared directory
//! ([`layout`]), the exit record that is both the step marker and the termination message
//! ([`record`]), how it is fitted into the kubelet's size budget ([`message`]), names,
//! durations and timestamps. No I/O runtime and no syscalls: pure data and functions.

pub mod control;
pub mod duration;
pub mod layout;
pub mod message;
pub mod name;
pub mod record;
pub mod signal;
pub mod state;
pub mod time;

pub use layout::Layout;
pub use record::{ExitRecord, Reason};
