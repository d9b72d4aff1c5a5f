//! Any bytes as a container's termination message: the reader and the status never panic.
#![no_main]

use baton_controller::status::run_status;
use baton_controller::termination::read;
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The API server hands over UTF-8, with U+FFFD where the kubelet cut a character.
    let text = String::from_utf8_lossy(data);
    let _ = read(&text);
    let containers = usize::from(data.first().copied().unwrap_or(1) % 16) + 1;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {"containers": (0..containers).map(|i| serde_json::json!({"name": format!("s{i}")})).collect::<Vec<_>>()},
        "status": {"containerStatuses": [{"name": "s0", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "message": text}}}]}
    }))
    .expect("a well-formed pod");
    let status = run_status(&pod);
    assert_eq!(status.steps.len(), containers);
});
