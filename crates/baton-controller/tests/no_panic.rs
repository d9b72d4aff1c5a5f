//! No termination message, however odd, makes the reader panic or lie about a cut record.

use baton_contract::message::{fit, kubelet_share};
use baton_contract::record::{ExitRecord, Reason};
use baton_controller::status::{run_status, State};
use baton_controller::termination::{read, Message};
use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::json;

/// What every baton record starts with.
const PREFIX: &str = "{\"baton\":";

fn pod_with_message(message: &str, exit_code: i32, containers: usize) -> Pod {
    let names: Vec<String> = (0..containers.max(1)).map(|i| format!("s{i}")).collect();
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ci"},
        "spec": {"containers": names.iter().map(|n| json!({"name": n, "image": "x"})).collect::<Vec<_>>()},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "s0", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": "Error", "message": message,
                                      "startedAt": "2026-11-23T16:00:33Z", "finishedAt": "2026-11-23T16:00:34Z"}}
        }]}
    }))
    .unwrap()
}

/// Text that looks enough like a baton record to reach the deep paths of the reader.
fn recordish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\"step\":".to_string()),
        Just("\"reason\":\"Completed\"".to_string()),
        Just("\"exitCode\":".to_string()),
        Just("\"results\":{".to_string()),
        Just("\"resultsDeflate\":\"".to_string()),
        Just("\"error\":".to_string()),
        "[-0-9.eE]{1,8}",
        "[\\[\\]{}\",:\\\\a-z ]{1,6}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|parts| format!("{{\"baton\":1,{}", parts.concat()))
}

fn any_record() -> impl Strategy<Value = ExitRecord> {
    let results = prop::collection::btree_map("[a-z][a-z0-9_]{0,8}", "\\PC{0,300}", 0..6);
    (
        proptest::option::of("[a-z][a-z0-9-]{0,20}"),
        proptest::option::of(any::<i32>()),
        prop::sample::select(Reason::ALL.to_vec()),
        results,
        proptest::option::of("\\PC{0,120}"),
    )
        .prop_map(|(step, code, reason, results, error)| {
            let mut r = ExitRecord::new(step, reason, "2026-11-23T16:00:42.123Z".into());
            r.exit_code = code;
            r.started_at = code.map(|_| "2026-11-23T16:00:41.000Z".into());
            r.results = results;
            r.error = error;
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_string_gives_a_terminated_step(message in "\\PC{0,600}", code in any::<i32>(), n in 1usize..40) {
        let _ = read(&message);
        let status = run_status(&pod_with_message(&message, code, n));
        prop_assert_eq!(status.steps[0].state, State::Terminated);
    }

    #[test]
    fn recordish_text_never_panics(message in recordish()) {
        let _ = read(&message);
        let _ = run_status(&pod_with_message(&message, 0, 3));
    }

    #[test]
    fn any_bytes_cut_anywhere_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = read(&text);
        let _ = run_status(&pod_with_message(&text, 1, 10));
    }

    /// A record fitted by baton, then cut by the kubelet at any byte: the reader says "truncated" (or
    /// reads it whole when the cut is past its end) and every field it salvages is the original's.
    #[test]
    fn a_cut_record_never_yields_a_wrong_field(record in any_record(), n in 1usize..20, cut in 0usize..5000) {
        let mut fitted = record.clone();
        fit(&mut fitted, 4096);
        let text = fitted.to_json();
        let cut = cut.min(text.len());
        // The kubelet cuts bytes; the API server shows a cut character as U+FFFD.
        let shown = String::from_utf8_lossy(&text.as_bytes()[..cut]).into_owned();
        match read(&shown) {
            Message::Record(r) => prop_assert_eq!(cut, text.len(), "{:?}", r),
            Message::Truncated(p) => {
                prop_assert!(p.step.is_none() || p.step == fitted.step);
                prop_assert!(p.exit_code.is_none() || p.exit_code == fitted.exit_code);
                prop_assert!(p.reason.is_none() || p.reason == Some(fitted.reason));
                prop_assert!(p.results.is_empty() || p.results == fitted.results);
                prop_assert!(p.error.is_none() || p.error == fitted.error);
            }
            Message::Empty | Message::Text(_) => prop_assert!(cut < PREFIX.len(), "cut at {}", cut),
            Message::Unreadable(why) => prop_assert!(false, "a cut record read as malformed: {}", why),
        }
        let status = run_status(&pod_with_message(&shown, 0, n));
        if cut < text.len() && cut >= PREFIX.len() {
            let error = status.steps[0].error.clone().unwrap_or_default();
            let share = kubelet_share(n);
            let expected = format!("each gets {share} bytes; pass --message-limit {share}");
            prop_assert!(error.contains(&expected), "{}", error);
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{{\"baton\":1,\"results\":{}", "[".repeat(100_000));
    assert!(matches!(read(&deep), Message::Truncated(_) | Message::Unreadable(_)));
}
