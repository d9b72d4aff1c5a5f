//! Registry look-ups in the admission path, over real HTTPS, against a fake registry that counts
//! what it is asked: the pods of a Job created at once make one look-up per image and platform, a
//! failure is kept briefly instead of being asked again by every pod, and a multi-platform image is
//! read for the pod's nodes.

mod webhook_support;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use webhook_support::registry::FakeRegistry;
use webhook_support::{review, setup, Server};

/// The review of a pod whose container `app` has no command and runs `image`, on nodes of `arch`.
fn review_of(image: &str, arch: Option<&str>) -> Value {
    let text =
        serde_json::to_string(&review("unknown-entrypoint")).unwrap().replace("127.0.0.1:1/ci/app:1", image);
    let mut review: Value = serde_json::from_str(&text).unwrap();
    if let Some(arch) = arch {
        review["request"]["object"]["spec"]["nodeSelector"] = serde_json::json!({"kubernetes.io/arch": arch});
    }
    review
}

/// What the pod's container `app` runs after baton's `--`, or the denial's message.
async fn admit(server: &Server, ca: &Path, review: &Value) -> Result<String, String> {
    let (status, answer) = server.mutate(ca, review).await;
    assert_eq!(status, 200, "{answer}");
    let response = &answer["response"];
    if response["allowed"] != true {
        return Err(response["status"]["message"].as_str().unwrap().to_string());
    }
    let patch =
        base64::engine::general_purpose::STANDARD.decode(response["patch"].as_str().unwrap()).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &serde_json::from_slice::<json_patch::Patch>(&patch).unwrap()).unwrap();
    let app = pod["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "app").unwrap();
    let command: Vec<&str> = app["command"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    Ok(command[command.iter().position(|w| *w == "--").unwrap() + 1..].join(" "))
}

#[tokio::test]
async fn the_pods_of_a_job_created_at_once_make_one_lookup_per_image_and_platform() {
    let registry = FakeRegistry::start(Duration::from_millis(300)).await;
    let at = registry.addr.to_string();
    let (dir, server) = setup(&["--insecure-registry", &at]);
    let ca = dir.path().join("ca.crt");

    let image = format!("{at}/ci/app:1");
    let pods = (0..20).map(|_| review_of(&image, None)).collect::<Vec<_>>();
    let commands = futures::future::join_all(pods.iter().map(|r| admit(&server, &ca, r))).await;
    assert!(commands.iter().all(|c| c.as_deref() == Ok("/app-amd64")), "{commands:?}");
    assert_eq!(registry.asked("/v2/ci/app/manifests/1"), 1, "20 pods at once, one lookup");

    // A pod for arm64 nodes gets the arm64 image's ENTRYPOINT: another lookup, then kept too.
    for _ in 0..2 {
        assert_eq!(admit(&server, &ca, &review_of(&image, Some("arm64"))).await.as_deref(), Ok("/app-arm64"));
    }
    assert_eq!(registry.asked("/v2/ci/app/manifests/1"), 2);
}

#[tokio::test]
async fn a_failed_lookup_is_kept_briefly_not_asked_again_by_every_pod() {
    let registry = FakeRegistry::start(Duration::from_millis(300)).await;
    let at = registry.addr.to_string();
    let (dir, server) = setup(&["--insecure-registry", &at]);
    let ca = dir.path().join("ca.crt");

    let image = format!("{at}/ci/missing:1");
    let pods = (0..20).map(|_| review_of(&image, None)).collect::<Vec<_>>();
    let denials = futures::future::join_all(pods.iter().map(|r| admit(&server, &ca, r))).await;
    for denial in &denials {
        let message = denial.as_ref().unwrap_err();
        assert!(
            message.contains("(could not read the image's configuration from its registry)"),
            "{message}"
        );
    }
    // And the pods that come next, within the failure's few seconds.
    assert!(admit(&server, &ca, &review_of(&image, None)).await.is_err());
    assert_eq!(registry.asked("/v2/ci/missing/manifests/1"), 1);
    // The reason is logged once, for the one lookup made.
    let log = server.log.wait_for(&format!("batonctl webhook: image {image}: its registry {at} answered"));
    assert_eq!(log.matches(&format!("batonctl webhook: image {image}:")).count(), 1, "{log}");
}
