//! `baton init`: the init container's copy of the binary into the shared directory.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn init_copies_the_binary_with_mode_0555_and_prints_its_path() {
    let pod = Pod::new();
    let out = pod.baton("init").arg("init").arg("--dir").arg(pod.dir()).run();
    out.expect_code(0);
    let installed = pod.dir().join("bin/baton");
    assert_eq!(out.stdout, format!("{}\n", installed.display()));
    assert_eq!(fs::metadata(&installed).unwrap().permissions().mode() & 0o7777, 0o555);
    assert!(fs::read(&installed).unwrap() == fs::read(BATON.as_str()).unwrap(), "the copy differs from the binary");
    assert_eq!(files_in(&pod.dir().join("bin")), ["baton"], "temporary files left behind");
    // The copy works.
    pod.baton("copy").exe(&installed).args(["run", "--name", "a", "--dir"]).arg(pod.dir()).command(["true"]).run().expect_code(0);
    assert_eq!(pod.exit_record("a")["reason"], "Completed");
}

#[test]
fn init_is_idempotent_even_while_the_copy_is_running() {
    let pod = Pod::new();
    pod.baton("init1").arg("init").arg("--dir").arg(pod.dir()).run().expect_code(0);
    let installed = pod.dir().join("bin/baton");
    // An earlier copy is running (a restarted init container while steps run): no ETXTBSY.
    let mut running = pod.baton("running").exe(&installed).args(["run", "--name", "r", "--dir"]).arg(pod.dir()).arg("--wait-file").arg(pod.path("go")).command(["true"]).spawn();
    pod.wait_phase("r", "waiting");
    let out = pod.baton("init2").arg("init").arg("--dir").arg(pod.dir()).run();
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{}\n", installed.display()));
    assert_eq!(fs::metadata(&installed).unwrap().permissions().mode() & 0o7777, 0o555);
    assert!(fs::read(&installed).unwrap() == fs::read(BATON.as_str()).unwrap());
    assert_eq!(files_in(&pod.dir().join("bin")), ["baton"]);
    fs::write(pod.path("go"), "").unwrap();
    running.wait_within(SOON).expect_code(0);
}

#[test]
fn init_needs_no_shell_no_cp_and_no_path() {
    let pod = Pod::new();
    let dir = pod.path("deep/a/b/shared");
    let out = pod.baton("init").env_clear().arg("init").arg("--dir").arg(&dir).run();
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{}\n", dir.join("bin/baton").display()));
    assert_eq!(fs::metadata(dir.join("bin/baton")).unwrap().permissions().mode() & 0o7777, 0o555);
}

#[test]
fn init_takes_the_directory_from_baton_dir() {
    let pod = Pod::new();
    let out = pod.baton("init").env("BATON_DIR", pod.dir()).arg("init").run();
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{}\n", pod.dir().join("bin/baton").display()));
}

#[test]
fn init_into_a_folder_it_cannot_write_fails_125_naming_it() {
    let pod = Pod::open_to_all();
    let exe = pod.install_for_all(std::path::Path::new(BATON.as_str()));
    let locked = pod.path("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    let out = pod.baton("init").exe(&exe).as_uid(65532).arg("init").arg("--dir").arg(&locked).run();
    out.expect_code(125);
    assert!(out.stderr.contains(locked.to_str().unwrap()), "stderr names the folder: {}", out.stderr);
    assert!(out.stdout.is_empty(), "no path printed on failure: {}", out.stdout);
    assert!(files_in(&locked).is_empty());
}

/// What `batonctl inject` makes: `bin/` is a volume of its own (0777, root's, as the kubelet makes an
/// emptyDir) and the init container runs as a non-root UID. Without `--bin-volume` that `bin/` is
/// refused (another UID could write it); with it, the binary goes in (every step mounts it read-only).
#[test]
fn a_non_root_init_takes_a_bin_volume_as_the_kubelet_made_it() {
    let pod = Pod::open_to_all();
    let bin = pod.dir().join("bin");
    fs::create_dir(&bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(pod.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let exe = pod.install_for_all(std::path::Path::new(BATON.as_str()));
    let refused = pod.baton("init").exe(&exe).as_uid(65532).arg("init").arg("--dir").arg(pod.dir()).run();
    refused.expect_code(125);
    assert!(refused.stderr.contains("belongs to UID 0"), "{}", refused.stderr);
    let out = pod.baton("init").exe(&exe).as_uid(65532).args(["init", "--bin-volume", "--dir"]).arg(pod.dir()).run();
    out.expect_code(0);
    assert_eq!(fs::metadata(bin.join("baton")).unwrap().permissions().mode() & 0o7777, 0o555);
    assert!(out.stderr.contains("could replace steps/ or gates/"), "the unsealed root is named: {}", out.stderr);
}
