//! Issue 17: Argo's folder (/var/run/argo): outputs written through planted links, unbounded output reads.

use super::*;
use common::argo::*;
use std::path::PathBuf;

/// The emissary of `main` with an output parameter at `<root>/tmp/parameter` and an output artifact
/// at `<root>/tmp/artifact`, made by `script`, under `limits` (a `prlimit` prefix).
fn main_with_outputs(argo: &Argo, script: &str, limits: &[&str]) -> Proc {
    let (param, art) = (argo.p("tmp/parameter"), argo.p("tmp/artifact"));
    argo.template(&format!(
        r#"{{"outputs":{{"parameters":[{{"name":"p","valueFrom":{{"path":"{}"}}}}],"artifacts":[{{"name":"a","path":"{}"}}]}}}}"#,
        param.display(),
        art.display()
    ));
    let script = format!(r#"mkdir -p "$ROOT/tmp"; echo art > "$ROOT/tmp/artifact"; {script}"#);
    argo.emissary("main", &script).through(limits).spawn()
}

/// A folder only root may enter, to see whether the emissary was made to write into it.
fn root_only(argo: &Argo) -> PathBuf {
    let p = argo.p("root-only");
    fs::create_dir(&p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
    p
}

#[test]
fn links_planted_under_outputs_never_redirect_a_root_emissary() {
    let _u = Unprotected::new();
    for at in ["outputs", "outputs/parameters/tmp", "outputs/artifacts/tmp", "the parameter's own folder"] {
        let argo = Argo::open_to_all();
        let target = root_only(&argo);
        // Destinations mirror the absolute paths: outputs/parameters/tmp/baton-argo-*/tmp/parameter.
        let link = match at {
            "the parameter's own folder" => format!("outputs/parameters{}", argo.p("tmp").display()),
            _ => at.to_string(),
        };
        let plant = format!("mkdir -p \"$(dirname {link})\" && ln -s {} {link}", shq(&target));
        assert_eq!(as_attacker(&argo.dir, &plant), 0, "{plant}");
        let out = main_with_outputs(&argo, r#"echo hello > "$ROOT/tmp/parameter""#, &[]).wait_within(SOON);
        out.expect_code(64);
        assert!(out.stderr.contains("is a symbolic link, which baton does not follow"), "{at}: {}", out.stderr);
        assert!(argo.read(&argo.termination("main")).contains("symbolic link"), "{at}");
        assert_eq!(argo.exitcode("main"), "0", "{at}: the command's own code");
        let written: Vec<_> = fs::read_dir(&target).unwrap().collect();
        assert!(written.is_empty(), "{at}: the emissary wrote into a root-only folder: {written:?}");
    }
}

#[test]
fn output_parameters_that_never_end_are_refused_with_a_sentence() {
    // 256 MiB of address space and 64 MiB of file: reading or copying without a bound ends the
    // emissary (SIGSEGV/abort or SIGXFSZ) instead of filling the machine.
    let limits = ["prlimit", "--as=268435456", "--fsize=67108864"];
    let cases = [
        ("a FIFO", "mkfifo parameter", "is not a regular file"),
        ("an endless device", "ln -s /dev/zero parameter", "is not a regular file"),
        ("a 1 GiB sparse file", "truncate -s 1G parameter", "more than the 1048576 bytes left"),
    ];
    for (what, plant, sentence) in cases {
        let argo = Argo::new();
        // Made before the emissary starts: the command runs under the limits too.
        let tmp = argo.p("tmp");
        fs::create_dir(&tmp).unwrap();
        assert!(Command::new("sh").args(["-c", plant]).current_dir(&tmp).status().unwrap().success(), "{plant}");
        let out = main_with_outputs(&argo, "", &limits).wait_within(SOON);
        out.expect_code(64);
        assert!(out.stderr.contains(sentence), "{what}: {}", out.stderr);
        assert!(out.stderr.contains("output parameter"), "{what}: {}", out.stderr);
        assert!(argo.read(&argo.termination("main")).contains(sentence), "{what}");
        assert_eq!(argo.exitcode("main"), "0", "{what}: the command's own code");
    }
}

#[test]
fn output_parameters_together_hold_what_results_hold() {
    let argo = Argo::new();
    let (a, b) = (argo.p("tmp/a"), argo.p("tmp/b"));
    argo.template(&format!(
        r#"{{"outputs":{{"parameters":[{{"name":"a","valueFrom":{{"path":"{}"}}}},{{"name":"b","valueFrom":{{"path":"{}"}}}}]}}}}"#,
        a.display(),
        b.display()
    ));
    let script = r#"mkdir -p "$ROOT/tmp"; head -c 600000 /dev/zero > "$ROOT/tmp/a"; cp "$ROOT/tmp/a" "$ROOT/tmp/b""#;
    let out = argo.emissary("main", script).spawn().wait_within(SOON);
    out.expect_code(64);
    assert!(
        out.stderr.contains(&format!(
            "output parameter {}: it is 600000 bytes, more than the 448576 bytes left",
            b.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_container_folder_swapped_for_a_link_gets_no_write_through_it() {
    let _u = Unprotected::new();
    let argo = Argo::open_to_all();
    let target = root_only(&argo);
    let (started, go) = (argo.p("started"), argo.p("go"));
    let script = format!("touch {}; while [ ! -e {} ]; do sleep 0.02; done; echo done", shq(&started), shq(&go));
    let mut main = argo.emissary("main", &script).spawn();
    wait_until("the command to start", SOON, || started.exists().then_some(()));
    // ctr/ is 0777, as Argo makes it: another container can move ctr/main away and put a link there.
    let swap = format!("mv ctr/main ctr/main.old && ln -s {} ctr/main", shq(&target));
    assert_eq!(as_attacker(&argo.dir, &swap), 0);
    fs::write(&go, "").unwrap();
    main.wait_within(SOON).expect_code(0);
    let written: Vec<_> = fs::read_dir(&target).unwrap().collect();
    assert!(written.is_empty(), "the emissary wrote into a root-only folder: {written:?}");
    let claimed = argo.dir.join("ctr/main.old");
    assert_eq!(argo.read(&claimed.join("exitcode")), "0", "the exit code goes into the folder it claimed");
    assert_eq!(argo.read(&claimed.join("stdout")), "done\n");
}

#[test]
fn a_fifo_planted_as_an_output_copy_does_not_block_the_emissary() {
    let argo = Argo::open_to_all();
    // Argo's wait container and dependents make ctr/<name> ahead of the emissary, mode 0777.
    assert_eq!(as_attacker(&argo.dir, "mkdir -p -m 0777 ctr/main && mkfifo ctr/main/stdout"), 0);
    let out = argo.emissary("main", "echo hello").spawn().wait_within(SOON);
    out.expect_code(64);
    assert!(out.stderr.contains("ctr/main/stdout is a FIFO"), "{}", out.stderr);
    assert_eq!(argo.exitcode("main"), "64");
}
