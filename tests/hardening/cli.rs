//! Issue 17: Small refusals: one clean sentence each.

use super::*;

/// `baton run` with no command, or nothing after `--`: one sentence on one line (not clap's first
/// line, which ends in a colon before the list it announces), and the named step still publishes
/// its end with that sentence.
#[test]
fn no_command_is_one_sentence_and_the_step_still_publishes_its_end() {
    let pod = Pod::new();
    for (name, after) in [("none", &[][..]), ("empty", &["--"][..])] {
        let out = pod.step(name).args(after).run();
        out.expect_code(125);
        let record = pod.exit_record(name);
        assert_eq!(record["reason"], "CannotRun", "{name}: {record}");
        let sentence = error_of(&record);
        assert!(sentence.starts_with("no command was given: put it after --"), "{name}: {record}");
        assert!(!out.stderr.contains("provided:"), "{name}: {}", out.stderr);
        assert_eq!(out.stderr, format!("baton: {sentence}\n"), "{name}: one line, the record's sentence");
        assert_eq!(pod.termination(name)["reason"], "CannotRun", "{name}");
    }
}
