//! Argo mode: the outputs of `main` (Argo's TestEmissary/Artifact, ArtifactWithTrailingAndLeadingSlash,
//! Parameter, and what baton adds), where Argo's emissary and its `wait` container put and look for
//! them. Same harness as tests/argo.rs: the built binary as `argoexec` over a temporary folder standing
//! in for `/var/run/argo`. Synchronisation is on files and exits, never on sleeps.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::argo::*;
use common::*;

// TestEmissary/Artifact
#[test]
fn an_artifact_file_is_tar_gzipped() {
    let argo = Argo::new();
    let art = argo.p("tmp/artifact");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"name":"a","path":"{}"}}]}}}}"#, art.display()));
    argo.emissary("main", r#"mkdir -p "$ROOT/tmp"; echo hello > "$ROOT/tmp/artifact""#).run().expect_code(0);
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()));
    assert_eq!(tgz_entries(&tgz), ["artifact"]);
    let out = Command::new("tar").arg("xzOf").arg(&tgz).output().unwrap();
    assert_eq!(out.stdout, b"hello\n");
}

// TestEmissary/ArtifactWithTrailingAndLeadingSlash: "/tmp/artifact/" still maps to .../tmp/artifact.tgz,
// for a file as for a folder.
#[test]
fn an_artifact_path_with_a_trailing_slash() {
    let argo = Argo::new();
    let art = argo.p("tmp/artifact");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}/"}}]}}}}"#, art.display()));
    argo.emissary("main", r#"mkdir -p "$ROOT/tmp"; echo hello > "$ROOT/tmp/artifact""#).run().expect_code(0);
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()));
    assert_eq!(tgz_entries(&tgz), ["artifact"]);

    let argo = Argo::new();
    let art = argo.p("tmp/dir");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}/"}}]}}}}"#, art.display()));
    let script = r#"d="$ROOT/tmp/dir"; mkdir -p "$d/sub"; echo b > "$d/b"; echo a > "$d/sub/a"; ln -s b "$d/link""#;
    argo.emissary("main", script).run().expect_code(0);
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()));
    // Go's filepath.Walk order; folders named without a trailing slash, as Argo names them.
    assert_eq!(tgz_entries(&tgz), ["dir", "dir/b", "dir/link", "dir/sub", "dir/sub/a"]);
    let listing = Command::new("tar").arg("tzvf").arg(&tgz).output().unwrap();
    assert!(String::from_utf8_lossy(&listing.stdout).contains("dir/link -> b"), "a link stays a link");
    assert_eq!(fs::metadata(&tgz).unwrap().mode() & 0o777, 0o644);
}

// Beyond Argo's test: what a reader gets back out of the archive (GNU tar here; Argo reads it with
// Go's archive/tar): long names (pax records), a file larger than the compressor's buffers, an empty
// file, a link, modes.
#[test]
fn an_artifact_folder_unpacks_to_what_was_there() {
    let argo = Argo::new();
    let art = argo.p("tmp/out");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}"}}]}}}}"#, art.display()));
    let long = "n".repeat(150);
    let script = format!(
        r#"d="$ROOT/tmp/out"; mkdir -p "$d/deep/{long}"; head -c 300000 /dev/urandom > "$d/big"; : > "$d/empty"
        echo x > "$d/deep/{long}/{long}.txt"; chmod 0750 "$d/big"; ln -s ../big "$d/deep/link""#
    );
    argo.emissary("main", &script).run().expect_code(0);
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()));
    assert!(Command::new("gzip").arg("-t").arg(&tgz).status().unwrap().success(), "gzip -t");
    let into = argo.p("unpacked");
    fs::create_dir(&into).unwrap();
    let untar = Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&into).output().unwrap();
    assert!(untar.status.success(), "{}", String::from_utf8_lossy(&untar.stderr));
    assert_eq!(fs::read(into.join("out/big")).unwrap(), fs::read(art.join("big")).unwrap());
    assert_eq!(fs::metadata(into.join("out/big")).unwrap().mode() & 0o777, 0o750);
    assert_eq!(fs::read(into.join("out/empty")).unwrap(), b"");
    assert_eq!(argo.read(&into.join(format!("out/deep/{long}/{long}.txt"))), "x\n");
    assert_eq!(fs::read_link(into.join("out/deep/link")).unwrap(), Path::new("../big"));
}

// The headers as Go's tar.Writer writes them (e2e/argo-upstream.sh found GNU headers with the file
// type in the mode where upstream's argoexec writes USTAR ones): magic "ustar\0" and version "00",
// the mode's permission bits only, the checksum as six digits, NUL, space, the owner's name from
// /etc/passwd, the mtime rounded to the second; a name USTAR cannot hold in a PAX record, under a
// PAX header named <dir>/PaxHeaders.0/<file>.
#[test]
fn artifact_headers_are_gos() {
    let argo = Argo::new();
    let art = argo.p("tmp/out");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}"}}]}}}}"#, art.display()));
    let long = "n".repeat(150);
    let script = format!(
        r#"d="$ROOT/tmp/out"; mkdir -p "$d/{long}"; echo x > "$d/{long}/{long}.txt"; echo y > "$d/y"; ln -s y "$d/l"
        touch -d @1700000000 "$d/y""#
    );
    argo.emissary("main", &script).run().expect_code(0);
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", art.display()));
    let tar = Command::new("gzip").arg("-dc").arg(&tgz).output().unwrap().stdout;
    let uid = fs::metadata(art.join("y")).unwrap().uid();
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let owner =
        passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() > 3 && f[2] == uid.to_string());
    let owner = owner.map_or("", |f| f[0]);
    let mut at = 0;
    let mut seen = Vec::new();
    while at + 512 <= tar.len() && tar[at..at + 512] != [0; 512] {
        let h = &tar[at..at + 512];
        let text =
            |from: usize, len: usize| String::from_utf8_lossy(&h[from..from + len]).trim_end_matches('\0').to_string();
        let (name, kind) = (text(0, 100), h[156]);
        assert_eq!(&h[257..265], b"ustar\000", "{name}: USTAR magic and version");
        let mode = u32::from_str_radix(&text(100, 8), 8).unwrap();
        assert_eq!(mode & !0o7777, 0, "{name}: no file type in the mode ({mode:o})");
        let sum: u32 =
            h.iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u32::from(c) }).sum();
        assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes(), "{name}: checksum");
        if kind != b'x' {
            assert_eq!(text(265, 32), owner, "{name}: the owner's name");
        }
        if name == "out/y" {
            assert_eq!(text(136, 12), format!("{:o}", 1_700_000_000), "the mtime");
        }
        seen.push((kind, name));
        let size = u64::from_str_radix(&text(124, 12), 8).unwrap() as usize;
        at += 512 + size.div_ceil(512) * 512;
    }
    let cut = |s: String| s[..s.len().min(100)].to_string();
    let expect = [
        (b'5', "out".to_string()),
        (b'2', "out/l".to_string()),
        (b'x', cut(format!("out/PaxHeaders.0/{long}"))),
        (b'5', cut(format!("out/{long}"))),
        (b'x', cut(format!("out/{long}/PaxHeaders.0/{long}.txt"))),
        (b'0', cut(format!("out/{long}/{long}.txt"))),
        (b'0', "out/y".to_string()),
    ];
    assert_eq!(seen, expect);
}

// As Argo's TarGzToWriter (filepath.Walk, tar.FileInfoHeader): a link at the artifact's path to a
// folder is archived as the link only, a link to a file as that file under the link's name, a FIFO in
// a folder as a header only; nothing waits on a FIFO.
#[test]
fn artifact_links_and_fifos_are_archived_as_argo_archives_them() {
    let argo = Argo::new();
    let (link, file_link, dir) = (argo.p("tmp/link"), argo.p("tmp/file-link"), argo.p("tmp/dir"));
    let paths = [&link, &file_link, &dir].map(|p| format!(r#"{{"path":"{}"}}"#, p.display())).join(",");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{paths}]}}}}"#));
    let script = r#"cd "$ROOT" && mkdir -p tmp/dir && echo a > tmp/dir/a && mkfifo tmp/dir/pipe && ln -s dir tmp/link &&
        ln -s dir/a tmp/file-link"#;
    argo.emissary("main", script).spawn().wait_within(SOON).expect_code(0);
    let listing = |p: &Path| {
        let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", p.display()));
        let out = Command::new("tar").arg("tzvf").arg(&tgz).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(listing(&link).trim().ends_with("link -> dir"), "{}", listing(&link));
    assert_eq!(listing(&link).lines().count(), 1, "{}", listing(&link));
    let file = listing(&file_link);
    assert!(file.starts_with('-') && file.trim().ends_with(" file-link"), "{file}");
    let tgz = argo.dir.join(format!("outputs/artifacts{}.tgz", file_link.display()));
    assert_eq!(Command::new("tar").arg("xzOf").arg(&tgz).output().unwrap().stdout, b"a\n");
    let dir = listing(&dir);
    assert_eq!(dir.lines().count(), 3, "{dir}");
    assert!(dir.lines().any(|l| l.starts_with('p') && l.ends_with("dir/pipe")), "{dir}");
}

// Argo's TarGzToWriter refuses a path that is not a regular file or folder ("is not a regular file or
// directory"), and tar.FileInfoHeader a socket in a folder ("sockets not supported"): the emissary
// exits 64 with the sentence (issue 20.4).
#[test]
fn a_fifo_artifact_or_a_socket_in_an_artifact_folder_fails_the_step() {
    let argo = Argo::new();
    let fifo = argo.p("tmp/fifo");
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}"}}]}}}}"#, fifo.display()));
    let o = argo.emissary("main", r#"mkdir -p "$ROOT/tmp" && mkfifo "$ROOT/tmp/fifo""#).spawn().wait_within(SOON);
    o.expect_code(64);
    assert!(argo.read(&argo.termination("main")).contains("not a regular file or folder"), "{}", o.stderr);

    let argo = Argo::new();
    let dir = argo.p("tmp/dir");
    fs::create_dir_all(&dir).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{}"}}]}}}}"#, dir.display()));
    let o = argo.emissary("main", "exit 0").run();
    o.expect_code(64);
    assert_eq!(argo.exitcode("main"), "0", "the command's code stands");
    let message = argo.read(&argo.termination("main"));
    assert!(message.contains("sock is a socket"), "{message}");
    assert!(!argo.dir.join(format!("outputs/artifacts{}.tgz", dir.display())).exists());
}

// Argo's emissary writes an artifact to filepath.Join("/var/run/argo", "/outputs/artifacts/", path +
// ".tgz"), where its `wait` container looks: a `..` may climb out of outputs/artifacts. baton puts it
// there too, as long as it stays in the shared folder; beyond it, the step fails (issue 20.4).
#[test]
fn an_artifact_path_with_dots_lands_where_argo_looks() {
    let argo = Argo::new();
    let art = argo.p("tmp/art");
    let climbing = format!("/../..{}", art.display());
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{climbing}"}}]}}}}"#));
    argo.emissary("main", r#"mkdir -p "$ROOT/tmp"; echo hi > "$ROOT/tmp/art""#).run().expect_code(0);
    let relative = art.strip_prefix("/").unwrap();
    assert_eq!(tgz_entries(&argo.dir.join(format!("{}.tgz", relative.display()))), ["art"]);
    assert!(!argo.dir.join(format!("outputs/artifacts{}.tgz", art.display())).exists());

    let argo = Argo::new();
    let art = argo.p("tmp/art");
    let outside = format!("/../../..{}", art.display());
    argo.template(&format!(r#"{{"outputs":{{"artifacts":[{{"path":"{outside}"}}]}}}}"#));
    let o = argo.emissary("main", r#"mkdir -p "$ROOT/tmp"; echo hi > "$ROOT/tmp/art""#).run();
    o.expect_code(64);
    assert!(argo.read(&argo.termination("main")).contains("outside the shared folder"), "{}", o.stderr);
}

// TestEmissary/Parameter
#[test]
fn an_output_parameter_is_copied() {
    let argo = Argo::new();
    let param = argo.p("tmp/parameter");
    argo.template(&format!(
        r#"{{"outputs":{{"parameters":[{{"name":"p","valueFrom":{{"path":"{}"}}}}]}}}}"#,
        param.display()
    ));
    argo.emissary("main", r#"mkdir -p "$ROOT/tmp"; echo hello > "$ROOT/tmp/parameter""#).run().expect_code(0);
    let saved = argo.dir.join(format!("outputs/parameters{}", param.display()));
    assert_eq!(argo.read(&saved), "hello\n");
}
