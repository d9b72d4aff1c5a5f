//! Argo mode: where the emissary reads the template and the offloaded arguments from (Argo's
//! emissary_read_template_test.go and TestContainerArgsOffloading). Same harness as tests/argo.rs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::argo::*;

// ---------------------------------------------------------------------------------------------------
// The template's sources (Argo: emissary_read_template_test.go)

fn parameter_template(argo: &Argo) -> (String, PathBuf) {
    let param = argo.p("tmp/p");
    let json =
        format!(r#"{{"outputs":{{"parameters":[{{"name":"p","valueFrom":{{"path":"{}"}}}}]}}}}"#, param.display());
    (json, argo.dir.join(format!("outputs/parameters{}", param.display())))
}

const WRITE_P: &str = r#"mkdir -p "$ROOT/tmp"; echo from-env > "$ROOT/tmp/p""#;

// TestReadTemplate_FallsBackToEnv
#[test]
fn the_template_from_the_environment() {
    let argo = Argo::new();
    fs::remove_file(argo.dir.join("template")).unwrap();
    let (json, saved) = parameter_template(&argo);
    argo.emissary("main", WRITE_P).env("ARGO_TEMPLATE", json).run().expect_code(0);
    assert_eq!(argo.read(&saved), "from-env\n");
}

/// A ConfigMap volume as the kubelet writes it: each key a symbolic link into `..data`, itself a
/// link to the folder of the current version.
fn configmap(dir: &Path, items: &[(&str, &str)]) {
    let version = dir.join("..2026_11_30_06_00_00.123456789");
    fs::create_dir_all(&version).unwrap();
    std::os::unix::fs::symlink(version.file_name().unwrap(), dir.join("..data")).unwrap();
    for (key, value) in items {
        fs::write(version.join(key), value).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(key), dir.join(key)).unwrap();
    }
}

// TestReadTemplate_HandlesOffloaded
#[test]
fn the_template_offloaded_to_the_configmap() {
    let argo = Argo::new();
    fs::remove_file(argo.dir.join("template")).unwrap();
    let (json, saved) = parameter_template(&argo);
    configmap(&argo.p("argo-config"), &[("ARGO_TEMPLATE", &json)]);
    argo.emissary("main", WRITE_P).env("ARGO_TEMPLATE", "offloaded").run().expect_code(0);
    assert_eq!(argo.read(&saved), "from-env\n");
}

// TestContainerArgsOffloading: the arguments offloaded to the same ConfigMap follow the command.
#[test]
fn the_arguments_offloaded_to_the_configmap() {
    let argo = Argo::new();
    configmap(&argo.p("argo-config"), &[("ARGO_CONTAINER_ARGS_FILE", r#"["-c", "echo offloaded"]"#)]);
    let out = argo
        .argoexec("main", ["emissary", "--", "sh"])
        .env("ARGO_CONTAINER_NAME", "main")
        .env("ARGO_CONTAINER_ARGS_FILE", argo.p("argo-config/ARGO_CONTAINER_ARGS_FILE"))
        .run();
    out.expect_code(0);
    assert_eq!(out.stdout, "offloaded\n");
}

// An offloaded argument longer than 128 KiB goes to /tmp/argo_arg_<i>.txt, numbered as Argo's emissary
// numbers it: from 0, the first argument after the program (issue 20.4).
#[test]
fn a_long_offloaded_argument_is_numbered_as_argo_numbers_it() {
    let argo = Argo::new();
    let long = "x".repeat(131073);
    let args = format!(r#"["-c", "echo \"$0\"", "{long}"]"#);
    configmap(&argo.p("argo-config"), &[("ARGO_CONTAINER_ARGS_FILE", &args)]);
    let out = argo
        .argoexec("main", ["emissary", "--", "sh"])
        .env("ARGO_CONTAINER_NAME", "main")
        .env("ARGO_CONTAINER_ARGS_FILE", argo.p("argo-config/ARGO_CONTAINER_ARGS_FILE"))
        .run();
    out.expect_code(0);
    assert_eq!(out.stdout, "@/tmp/argo_arg_2.txt\n");
    assert_eq!(fs::read_to_string("/tmp/argo_arg_2.txt").unwrap(), long);
    let _ = fs::remove_file("/tmp/argo_arg_2.txt");
}

// TestReadTemplate_PrefersFile
#[test]
fn the_template_file_wins_over_the_environment() {
    let argo = Argo::new();
    let (json, saved) = parameter_template(&argo);
    argo.template(&json);
    argo.emissary("main", WRITE_P).env("ARGO_TEMPLATE", "{}").run().expect_code(0);
    assert!(saved.exists());
}

// TestReadTemplate_NeitherAvailable: baton's own failure, said, and still an exitcode.
#[test]
fn no_template_is_a_failure_with_a_sentence() {
    let argo = Argo::new();
    fs::remove_file(argo.dir.join("template")).unwrap();
    let o = argo.emissary("main", r#"touch "$ROOT/ran""#).run();
    o.expect_code(64);
    assert_eq!(argo.exitcode("main"), "64");
    assert!(!argo.p("ran").exists());
    let message = argo.read(&argo.termination("main"));
    assert!(message.contains("ARGO_TEMPLATE"), "{message}");
    assert!(o.stderr.contains(&message));
}
