//! Any JSON that deserializes as a Pod gives a status without panicking.
#![no_main]

use baton_controller::status::run_status;
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pod) = serde_json::from_slice::<Pod>(data) {
        let status = run_status(&pod);
        let _ = serde_json::to_string(&status);
    }
});
