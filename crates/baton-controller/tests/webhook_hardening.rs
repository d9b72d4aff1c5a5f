//! Attacks on `batonctl webhook` (issue 17, items 5 and 6), each over real TLS connections to a
//! webhook on localhost, bounded in number and in time: reviews that would make it a port scanner.

mod webhook_support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use webhook_support::{review, setup, Server};

/// How long any attack may take to be dealt with: the webhook's default deadline (10 s) and room
/// for a busy machine. Reached only when the webhook holds on to a client.
const BOUND: Duration = Duration::from_secs(30);

/// The denial of a pod whose container without a command runs `image`, sent with a 3 s deadline.
async fn denial(server: &Server, ca: &Path, image: &str) -> String {
    let text =
        serde_json::to_string(&review("unknown-entrypoint")).unwrap().replace("127.0.0.1:1/ci/app:1", image);
    let review: Value = serde_json::from_str(&text).unwrap();
    let (_, answer) = tokio::time::timeout(BOUND, server.post(ca, "/mutate?timeout=3s", &review))
        .await
        .expect("the lookup ends within the review's deadline");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    message.replace(image, "IMAGE")
}

#[tokio::test]
async fn a_denial_does_not_say_whether_a_port_is_open() {
    let (dir, server) = setup(&[]);
    let ca = dir.path().join("ca.crt");

    // A port where nothing listens (taken, then let go).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    // A port where something that is not a registry answers, and one where it says nothing.
    let talker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (talks_at, silent_at) = (talker.local_addr().unwrap(), silent.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = talker.accept().await {
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await;
        }
    });
    let held = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            kept.push(tcp);
        }
    });

    let on_closed = denial(&server, &ca, &format!("{closed}/x:1")).await;
    let on_talker = denial(&server, &ca, &format!("{talks_at}/x:1")).await;
    let on_silent = denial(&server, &ca, &format!("{silent_at}/x:1")).await;
    held.abort();
    assert_eq!(
        on_closed,
        "Pod ci/build-…: container app has no command and the ENTRYPOINT of its image IMAGE is unknown \
         (could not read the image's configuration from its registry): add the image to an --images file, or \
         let baton read it from the registry (imagePullSecrets or a docker config file), or set the \
         container's command"
    );
    assert_eq!(on_talker, on_closed);
    assert_eq!(on_silent, on_closed);
    // What happened is in the webhook's log, for its operator.
    server.log.wait_for(&format!("batonctl webhook: image {closed}/x:1: its registry {closed} answered: "));
    server.log.wait_for(&format!("batonctl webhook: image {silent_at}/x:1: no answer within the review's "));
}
