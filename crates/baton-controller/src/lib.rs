//! Placeholder: filled in by the controller issue.
