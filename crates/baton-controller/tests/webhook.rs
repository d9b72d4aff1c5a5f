//! `batonctl webhook` run as a process and spoken to over real HTTPS on localhost, with reqwest
//! trusting only the CA that `batonctl webhook certs` wrote, and reaching the server by the name
//! the API server uses (`baton-webhook.baton-system.svc`). The reviews are under
//! tests/fixtures/webhook/: their answers are checked against `batonctl inject` on the same pods.
//!
//! The tests synchronise on the server's own lines on standard error (its address, its reload
//! notice), never on sleeps.

mod webhook_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};
use webhook_support::{batonctl, certs, fixture, review, setup, Server, HOST, IMAGE, NAMESPACE, SERVICE};

/// `batonctl inject` on the review's pod, with the webhook's options.
fn inject_cli(review: &Value, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.json");
    std::fs::write(&pod, serde_json::to_vec_pretty(&review["request"]["object"]).unwrap()).unwrap();
    batonctl(&["inject", "--image", IMAGE]).args(extra).arg("-f").arg(&pod).output().unwrap()
}

/// The patch of an allowing response, decoded from its base64 string.
fn patch_of(response: &Value) -> json_patch::Patch {
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    let encoded =
        response["patch"].as_str().unwrap_or_else(|| panic!("the patch is not a string: {response}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn images_flag() -> [String; 2] {
    ["--images".to_string(), fixture("images.yaml").display().to_string()]
}

#[tokio::test]
async fn injects_the_pod_as_batonctl_inject_does() {
    let images = images_flag();
    let (dir, server) = setup(&[&images[0], &images[1]]);
    let review = review("annotated");
    let (status, answer) = server.mutate(&dir.path().join("ca.crt"), &review).await;
    assert_eq!(status, 200);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert!(response.get("warnings").is_none(), "{response}");

    let mut patched = review["request"]["object"].clone();
    json_patch::patch(&mut patched, &patch_of(response)).unwrap();
    let cli = inject_cli(&review, &[&images[0], &images[1]]);
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let injected: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(patched, injected);

    // And it is the injection one expects: the init container, the sidecar's --until, the image's
    // ENTRYPOINT and CMD put after `--` for the container without a command.
    assert_eq!(patched["spec"]["initContainers"][0]["image"], IMAGE);
    let commands: Vec<Value> =
        patched["spec"]["containers"].as_array().unwrap().iter().map(|c| c["command"].clone()).collect();
    assert_eq!(
        commands[2],
        json!([
            "/var/run/baton/bin/baton",
            "run",
            "--name=migrate",
            "--after=build",
            "--message-limit=2457",
            "--",
            "/migrate",
            "up"
        ])
    );
    assert_eq!(commands[3][3], "--until=fetch");
    server.log.wait_for("batonctl webhook: Pod ci/build-…: injected (4 containers wrapped)");

    // The injected pod, sent again (reinvocationPolicy: IfNeeded), is allowed as it is.
    let mut again = review.clone();
    again["request"]["object"] = patched;
    let (_, answer) = server.mutate(&dir.path().join("ca.crt"), &again).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none(), "{answer}");
}

/// Istio's injector after baton's (webhooks run in name order): its proxy appended, an init container
/// before it; then the API server calls baton's webhook again (reinvocationPolicy: IfNeeded).
#[tokio::test]
async fn a_proxy_added_by_a_later_webhook_is_wrapped_as_a_sidecar_on_reinvocation() {
    let images = images_flag();
    let (dir, server) = setup(&[&images[0], &images[1]]);
    let ca = dir.path().join("ca.crt");
    let mut review = review("annotated");
    let (_, answer) = server.mutate(&ca, &review).await;
    json_patch::patch(&mut review["request"]["object"], &patch_of(&answer["response"])).unwrap();

    let pod = &mut review["request"]["object"]["spec"];
    let proxy = "docker.io/istio/proxyv2:1.24.0";
    pod["initContainers"].as_array_mut().unwrap().push(json!({"name": "istio-init", "image": proxy}));
    pod["containers"].as_array_mut().unwrap().push(json!({"name": "istio-proxy", "image": proxy,
        "args": ["proxy", "sidecar"], "securityContext": {"runAsUser": 1337}}));
    let (status, answer) = server.mutate(&ca, &review).await;
    assert_eq!(status, 200);
    json_patch::patch(&mut review["request"]["object"], &patch_of(&answer["response"])).unwrap();
    server.log.wait_for("batonctl webhook: Pod ci/build-…: injected (1 container wrapped)");
    let containers = review["request"]["object"]["spec"]["containers"].as_array().unwrap();
    let steps: Vec<&str> = containers[..4].iter().map(|c| c["name"].as_str().unwrap()).collect();
    // baton-init, istio-init + 4 containers + the proxy: 12288 / 7 = 1755.
    let mut want = vec!["/var/run/baton/bin/baton".to_string(), "run".into(), "--name=istio-proxy".into()];
    want.extend(steps.iter().filter(|s| **s != "cache").map(|s| format!("--until={s}")));
    want.extend(["--message-limit=1755".into(), "--".into(), "/usr/local/bin/pilot-agent".into()]);
    assert_eq!(containers[4]["command"], json!(want));
    for c in containers {
        let command = c["command"].as_array().unwrap();
        assert!(command.contains(&json!("--message-limit=1755")), "{c}");
    }

    // A third call, with nothing added: allowed as it is.
    let (_, answer) = server.mutate(&ca, &review).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none(), "{answer}");
}

#[tokio::test]
async fn leaves_a_pod_without_the_annotation_alone() {
    let (dir, server) = setup(&[]);
    let review = review("plain");
    let (status, answer) = server.mutate(&dir.path().join("ca.crt"), &review).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
               "response": {"uid": review["request"]["uid"], "allowed": true, "status": {}}})
    );
}

/// The sentence `batonctl inject` prints for the review's pod (exit 1, `batonctl: ` before it).
fn cli_sentence(review: &Value, extra: &[&str]) -> String {
    let cli = inject_cli(review, extra);
    assert_eq!(cli.status.code(), Some(1), "{}", String::from_utf8_lossy(&cli.stderr));
    let stderr = String::from_utf8(cli.stderr).unwrap();
    stderr.trim_end().strip_prefix("batonctl: ").unwrap_or_else(|| panic!("{stderr}")).to_string()
}

#[tokio::test]
async fn denies_a_cycle_with_the_clis_sentence() {
    let (dir, server) = setup(&[]);
    let review = review("cycle");
    let (status, answer) = server.mutate(&dir.path().join("ca.crt"), &review).await;
    assert_eq!(status, 200);
    let sentence = cli_sentence(&review, &[]);
    assert!(sentence.contains("in a cycle, fetch → build → migrate → fetch"), "{sentence}");
    assert_eq!(
        answer["response"],
        json!({"uid": review["request"]["uid"], "allowed": false,
               "status": {"status": "Failure", "code": 403, "reason": "Forbidden", "message": sentence}})
    );
    server.log.wait_for(&format!("batonctl webhook: denied: {sentence}"));
}

#[tokio::test]
async fn denies_an_unknown_entrypoint_with_the_clis_sentence_less_the_registrys_error() {
    // The image's registry is asked (plain HTTP on 127.0.0.1:1, where nothing listens) and fails.
    let registry = ["--insecure-registry", "127.0.0.1:1"];
    let (dir, server) = setup(&registry);
    let review = review("unknown-entrypoint");
    let (_, answer) = server.mutate(&dir.path().join("ca.crt"), &review).await;
    let sentence = cli_sentence(&review, &registry);
    let (before, error) = sentence
        .split_once(" is unknown (")
        .and_then(|(before, rest)| Some((before, rest.split_once("): add the image")?.0)))
        .unwrap_or_else(|| panic!("{sentence}"));
    assert_eq!(
        before,
        "Pod ci/build-…: container app has no command and the ENTRYPOINT of its image 127.0.0.1:1/ci/app:1"
    );
    assert!(error.starts_with("its registry 127.0.0.1:1 answered: "), "{error}");
    // The webhook's caller learns only that the registry could not be read; its log has why.
    let webhooks = sentence.replace(error, "could not read the image's configuration from its registry");
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["message"], webhooks.as_str());
    server.log.wait_for(&format!("batonctl webhook: image 127.0.0.1:1/ci/app:1: {error}"));
}

#[tokio::test]
async fn fail_open_allows_unchanged_with_a_warning() {
    let (dir, server) = setup(&["--fail-open"]);
    let review = review("cycle");
    let (_, answer) = server.mutate(&dir.path().join("ca.crt"), &review).await;
    let sentence = cli_sentence(&review, &[]);
    assert_eq!(
        answer["response"],
        json!({"uid": review["request"]["uid"], "allowed": true, "status": {},
               "warnings": [format!("baton: not injected: {sentence}")]})
    );
    server.log.wait_for(&format!("batonctl webhook: allowed without baton (--fail-open): {sentence}"));
}

#[tokio::test]
async fn answers_health_checks_and_refuses_what_is_not_a_review() {
    let (dir, server) = setup(&[]);
    let client = server.client(&dir.path().join("ca.crt"));
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    assert_eq!(client.get(server.url("/mutate")).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(client.post(server.url("/validate")).send().await.unwrap().status().as_u16(), 404);
    let bad = client.post(server.url("/mutate")).body("{\"kind\": 3").send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let answer: Value = bad.json_value().await;
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with("the body is not an AdmissionReview (admission.k8s.io/v1)"), "{message}");
}

trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

fn der(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem).unwrap().as_ref().to_vec()
}

/// The certificate the server presents to a client that trusts `ca` (an error if it is not one of
/// that CA's).
async fn presented(server: &Server, ca: &Path) -> Result<Vec<u8>, reqwest::Error> {
    let response = server.client(ca).get(server.url("/healthz")).send().await?;
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().expect("tls_info is on");
    Ok(info.peer_certificate().unwrap().to_vec())
}

/// Points `secret/..data` at a new folder holding `from`'s certificate and key, as the kubelet
/// updates a Secret volume: a new timestamped folder, then a symlink renamed over `..data`.
fn swap_secret(secret: &Path, version: &str, from: &Path) {
    let folder = secret.join(format!("..{version}"));
    std::fs::create_dir(&folder).unwrap();
    for name in ["tls.crt", "tls.key"] {
        std::fs::copy(from.join(name), folder.join(name)).unwrap();
    }
    let temp = secret.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &temp).unwrap();
    std::fs::rename(&temp, secret.join("..data")).unwrap();
}

#[tokio::test]
async fn serves_a_rotated_certificate_at_the_next_handshake_without_a_restart() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    certs(one.path());
    certs(two.path());
    let (ca1, ca2) = (one.path().join("ca.crt"), two.path().join("ca.crt"));

    // The layout of a mounted Secret: tls.crt -> ..data/tls.crt, ..data -> ..2026_11_30_01.
    let secret = tempfile::tempdir().unwrap();
    swap_secret(secret.path(), "2026_11_30_01", one.path());
    for name in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), secret.path().join(name)).unwrap();
    }
    let server = Server::start(&secret.path().join("tls.crt"), &secret.path().join("tls.key"), &[]);
    let pid = server.child.id();
    assert_eq!(presented(&server, &ca1).await.unwrap(), der(&one.path().join("tls.crt")));
    assert!(
        presented(&server, &ca2).await.is_err(),
        "a client of the second CA refuses the first certificate"
    );

    // cert-manager renews; the kubelet swaps the files.
    swap_secret(secret.path(), "2026_11_30_02", two.path());
    assert_eq!(presented(&server, &ca2).await.unwrap(), der(&two.path().join("tls.crt")));
    assert!(presented(&server, &ca1).await.is_err(), "the first certificate is no longer served");
    server.log.wait_for("serving the new certificate");

    // A pair that does not go together (the new key not written yet) keeps the last good one.
    let broken = tempfile::tempdir().unwrap();
    std::fs::copy(one.path().join("tls.crt"), broken.path().join("tls.crt")).unwrap();
    std::fs::copy(two.path().join("tls.key"), broken.path().join("tls.key")).unwrap();
    swap_secret(secret.path(), "2026_11_30_03", broken.path());
    assert_eq!(presented(&server, &ca2).await.unwrap(), der(&two.path().join("tls.crt")));
    let log = server.log.wait_for("still serving the previous certificate");
    assert!(log.contains("does not go with the certificate"), "{log}");
    assert_eq!(server.child.id(), pid);
}

#[test]
fn certs_writes_the_keys_0600_and_prints_the_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/certs");
    let bundle = certs(&out);
    let mode = |name: &str| std::fs::metadata(out.join(name)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("ca.key"), 0o600);
    assert_eq!(mode("tls.key"), 0o600);
    assert_eq!(mode("ca.crt"), 0o644);
    assert_eq!(mode("tls.crt"), 0o644);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o700);
    let decoded = base64::engine::general_purpose::STANDARD.decode(bundle).unwrap();
    assert_eq!(decoded, std::fs::read(out.join("ca.crt")).unwrap());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4, "no temporary file is left");

    // The server certificate names the Service as the API server calls it (checked by openssl).
    let text =
        Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(out.join("tls.crt")).output();
    if let Ok(text) = text {
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains(&format!("DNS:{HOST}, DNS:{HOST}.cluster.local")), "{text}");
    }

    // Never over existing files.
    let before = std::fs::read(out.join("ca.crt")).unwrap();
    let again = batonctl(&["webhook", "certs", "--service", SERVICE, "--namespace", NAMESPACE, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(
        stderr.contains("ca.crt already exists: remove the old files, or pass another --out folder"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.join("ca.crt")).unwrap(), before);
}

#[test]
fn refuses_a_missing_certificate_and_a_bad_name_with_a_sentence() {
    let out =
        batonctl(&["webhook", "--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/nonexistent/tls.key"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "batonctl: cannot read /nonexistent/tls.crt: No such file or directory (os error 2): pass the serving \
         certificate's PEM chain and its key (tls.crt and tls.key of its Secret)\n"
    );
    let out = batonctl(&["webhook"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out =
        batonctl(&["webhook", "certs", "--service", "Hook", "--namespace", "ns", "--out", "/nonexistent"])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains(r#"--service "Hook" is not a Kubernetes name"#));
}

#[test]
fn stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let mut server = Server::start(&dir.path().join("tls.crt"), &dir.path().join("tls.key"), &[]);
    let kill = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = server.log.wait_for("batonctl webhook: stopped");
    assert!(log.contains("SIGTERM: serving 0 ms more"), "{log}");
}

/// `--metrics-listen`: the admissions are counted by outcome and timed, and served as Prometheus text
/// over plain HTTP on a port of their own.
#[tokio::test]
async fn counts_admissions_by_outcome_on_the_metrics_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let images = images_flag();
    let (dir, server) = setup(&[&images[0], &images[1], "--metrics-listen", &address]);
    let ca = dir.path().join("ca.crt");
    assert_eq!(server.mutate(&ca, &review("annotated")).await.0, 200);
    assert_eq!(server.mutate(&ca, &review("plain")).await.0, 200);
    assert_eq!(server.mutate(&ca, &review("plain")).await.0, 200);
    let text = reqwest::Client::new()
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("the metrics are served")
        .text()
        .await
        .unwrap();
    for line in [
        "batonctl_webhook_admissions_total{outcome=\"injected\"} 1",
        "batonctl_webhook_admissions_total{outcome=\"skipped\"} 2",
        "batonctl_webhook_admission_duration_seconds_count 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} is missing from:\n{text}");
    }
}
