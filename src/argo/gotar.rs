//! Tar headers byte for byte as Argo's emissary writes them: Go's `tar.FileInfoHeader` of each entry,
//! written by Go's `tar.Writer` with no format asked for (Argo's `archive.TarGzToWriter`), which picks
//! USTAR whenever every field fits (a name of up to 255 bytes split at a slash into prefix and name),
//! and PAX records for the fields that do not fit otherwise. What the header holds, as Go fills it:
//!
//! - the mode's permission, set-ID and sticky bits only (no file type bits);
//! - the modification time rounded to the nearest second (the Writer rounds it; a tie goes up);
//! - the owner's and group's names from /etc/passwd and /etc/group, looked up as Go's `os/user` does
//!   without cgo (Argo's executor is built with CGO_ENABLED=0), or empty;
//! - a device's major and minor numbers, a link's target.
//!
//! The tar crate writes the entries (data, padding, the end of the archive); this module only makes
//! its 512-byte headers. Measured against upstream's argoexec v4.0.5 by e2e/argo-upstream.sh.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::folder;

pub type Block = [u8; 512];

/// Go's typeflags.
const REGULAR: u8 = b'0';
const SYMLINK: u8 = b'2';
const CHAR: u8 = b'3';
const BLOCK: u8 = b'4';
const DIR: u8 = b'5';
const FIFO: u8 = b'6';
const PAX: u8 = b'x';

/// Field offsets and lengths of a USTAR header (Go's `headerV7` and `headerUSTAR`).
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 6);
const VERSION: (usize, usize) = (263, 2);
const UNAME: (usize, usize) = (265, 32);
const GNAME: (usize, usize) = (297, 32);
const DEVMAJOR: (usize, usize) = (329, 8);
const DEVMINOR: (usize, usize) = (337, 8);
const PREFIX: (usize, usize) = (345, 155);

/// What `tar.FileInfoHeader` puts into a `tar.Header`, with Argo's name for the entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: u8,
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub size: u64,
    /// Seconds since the epoch, already rounded as the Writer rounds them.
    pub mtime: i64,
    pub dev_major: u64,
    pub dev_minor: u64,
}

impl Entry {
    /// The entry for `meta` (of a regular file, folder, link, FIFO or device; None for a socket, which
    /// Go refuses), `link` being a link's target.
    pub fn of(name: Vec<u8>, meta: &Metadata, link: Vec<u8>, names: &mut Names) -> Option<Entry> {
        let kind = meta.file_type();
        let (kind, size) = if kind.is_file() {
            (REGULAR, meta.size())
        } else if kind.is_dir() {
            (DIR, 0)
        } else if kind.is_symlink() {
            (SYMLINK, 0)
        } else if kind.is_char_device() {
            (CHAR, 0)
        } else if kind.is_block_device() {
            (BLOCK, 0)
        } else if kind.is_fifo() {
            (FIFO, 0)
        } else {
            return None;
        };
        let device = kind == CHAR || kind == BLOCK;
        let rdev = meta.rdev();
        Some(Entry {
            name,
            kind,
            link: if kind == SYMLINK { link } else { Vec::new() },
            mode: meta.mode() & 0o7777,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            uname: names.user(meta.uid()),
            gname: names.group(meta.gid()),
            size,
            mtime: meta.mtime() + i64::from(meta.mtime_nsec() >= 500_000_000),
            dev_major: if device { nix::sys::stat::major(rdev) } else { 0 },
            dev_minor: if device { nix::sys::stat::minor(rdev) } else { 0 },
        })
    }
}

/// Appends the entry to the archive, with `data` as its content: the PAX extended header first
/// when the entry needs one.
pub fn append<W: Write, R: Read>(tar: &mut tar::Builder<W>, entry: &Entry, data: R) -> io::Result<()> {
    let (extended, main) = headers(entry);
    if let Some((header, records)) = extended {
        tar.append(tar::Header::from_byte_slice(&header), &records[..])?;
    }
    tar.append(tar::Header::from_byte_slice(&main), data)
}

/// The headers Go's `Writer.WriteHeader` writes for the entry (`allowedFormats`, then
/// `writeUSTARHeader` or `writePAXHeader`): the PAX extended header and its records, if needed, and
/// the entry's own header.
pub fn headers(e: &Entry) -> (Option<(Block, Vec<u8>)>, Block) {
    let mut pax: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut ustar = true;
    // verifyString: a name may be split for USTAR; any other string that is too long or not ASCII
    // needs PAX.
    let strings = [
        ("path", &e.name, NAME.1),
        ("linkpath", &e.link, LINKNAME.1),
        ("uname", &e.uname, UNAME.1),
        ("gname", &e.gname, GNAME.1),
    ];
    for (key, value, len) in strings {
        if !is_ascii(value) || value.len() > len {
            if key != "path" || split_ustar_path(value).is_none() {
                ustar = false;
            }
            pax.insert(key, value.clone());
        }
    }
    // verifyNumeric, verifyTime.
    for (key, value, len) in [("uid", e.uid, UID.1), ("gid", e.gid, GID.1), ("size", e.size, SIZE.1)] {
        if !fits_octal(len, value as i64) || value > i64::MAX as u64 {
            ustar = false;
            pax.insert(key, value.to_string().into_bytes());
        }
    }
    if !fits_octal(MTIME.1, e.mtime) {
        ustar = false;
        pax.insert("mtime", e.mtime.to_string().into_bytes());
    }
    if ustar {
        let mut name = &e.name[..];
        let mut prefix: &[u8] = &[];
        if let Some((p, n)) = split_ustar_path(&e.name) {
            (prefix, name) = (p, n);
        }
        let mut block = template(e, name, false);
        format_string(&mut block, PREFIX, prefix);
        return (None, finish(block));
    }
    let records: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    (Some((raw_file(&pax_name(&e.name), records.len() as u64), records)), finish(template(e, &e.name, true)))
}

/// Go's `templateV7Plus`: every field but the prefix; strings made ASCII for a PAX entry, numbers
/// that do not fit written as 0 (their PAX records hold them).
fn template(e: &Entry, name: &[u8], pax: bool) -> Block {
    let mut b = [0u8; 512];
    let text = |s: &[u8]| if pax { to_ascii(s) } else { s.to_vec() };
    b[TYPEFLAG] = e.kind;
    format_string(&mut b, NAME, &text(name));
    format_string(&mut b, LINKNAME, &text(&e.link));
    format_octal(&mut b, MODE, i64::from(e.mode));
    format_octal(&mut b, UID, e.uid as i64);
    format_octal(&mut b, GID, e.gid as i64);
    format_octal(&mut b, SIZE, e.size as i64);
    format_octal(&mut b, MTIME, e.mtime);
    format_string(&mut b, UNAME, &text(&e.uname));
    format_string(&mut b, GNAME, &text(&e.gname));
    format_octal(&mut b, DEVMAJOR, e.dev_major as i64);
    format_octal(&mut b, DEVMINOR, e.dev_minor as i64);
    b
}

/// Go's `writeRawFile` header of the PAX records: typeflag, name, size and zeros only.
fn raw_file(name: &[u8], size: u64) -> Block {
    let mut b = [0u8; 512];
    let mut name = to_ascii(name);
    name.truncate(NAME.1);
    while name.last() == Some(&b'/') {
        name.pop();
    }
    b[TYPEFLAG] = PAX;
    format_string(&mut b, NAME, &name);
    for field in [MODE, UID, GID, MTIME] {
        format_octal(&mut b, field, 0);
    }
    format_octal(&mut b, SIZE, size as i64);
    finish(b)
}

/// Go's `setFormat` for USTAR and PAX alike: the magic, the version, the checksum.
fn finish(mut b: Block) -> Block {
    b[MAGIC.0..MAGIC.0 + MAGIC.1].copy_from_slice(b"ustar\0");
    b[VERSION.0..VERSION.0 + VERSION.1].copy_from_slice(b"00");
    b[CHKSUM.0..CHKSUM.0 + CHKSUM.1].fill(b' ');
    let sum: u32 = b.iter().map(|&c| u32::from(c)).sum();
    // Six digits, a NUL, a space.
    format_octal(&mut b, (CHKSUM.0, 7), i64::from(sum));
    b[CHKSUM.0 + 7] = b' ';
    b
}

/// Go's `path.Join(dir, "PaxHeaders.0", file)` of the entry's name split at its last slash.
fn pax_name(name: &[u8]) -> Vec<u8> {
    let cut = name.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    let (dir, file) = name.split_at(cut);
    let mut out = dir.to_vec();
    out.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        out.push(b'/');
        out.extend_from_slice(file);
    }
    out
}

/// Go's `formatPAXRecord`: "<length> <key>=<value>\n", the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut size = rest + rest.to_string().len();
    if size.to_string().len() + rest != size {
        size = size.to_string().len() + rest;
    }
    let mut record = format!("{size} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Go's `splitUSTARPath`: a name longer than the name field, ASCII, split at the last slash that
/// leaves at most 155 bytes before it and 1 to 100 after it.
fn split_ustar_path(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME.1 || !is_ascii(name) {
        return None;
    } else if length > PREFIX.1 + 1 {
        length = PREFIX.1 + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&c| c == b'/')?;
    let (prefix, suffix) = (&name[..i], &name[i + 1..]);
    if i == 0 || suffix.len() > NAME.1 || suffix.is_empty() || prefix.len() > PREFIX.1 {
        return None;
    }
    Some((prefix, suffix))
}

/// Go's `isASCII`: every byte 1 to 127.
fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&c| c != 0 && c < 0x80)
}

/// Go's `toASCII`: the bytes 1 to 127 kept (a multi-byte or invalid UTF-8 sequence dropped whole).
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&c| c != 0 && c < 0x80).collect()
}

/// Go's `fitsInOctal`: `x` in the field's digits (all but its NUL).
fn fits_octal(len: usize, x: i64) -> bool {
    x >= 0 && (len >= 22 || x < 1i64 << ((len - 1) * 3))
}

/// Go's `formatString`: the bytes, cut at the field's end, NUL-terminated if shorter; a cut that
/// leaves a trailing slash ends before it.
fn format_string(b: &mut Block, (at, len): (usize, usize), s: &[u8]) {
    let field = &mut b[at..at + len];
    let n = s.len().min(len);
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < len {
        field[s.len()] = 0;
    }
    if s.len() > len && field[len - 1] == b'/' {
        let kept = s[..len - 1].iter().rposition(|&c| c != b'/').map_or(0, |i| i + 1);
        field[kept] = 0;
    }
}

/// Go's `formatOctal`: zero-padded octal digits and a NUL; 0 when the number does not fit.
fn format_octal(b: &mut Block, field: (usize, usize), x: i64) {
    let x = if fits_octal(field.1, x) { x } else { 0 };
    let digits = format!("{x:o}");
    let padded = format!("{}{digits}", "0".repeat((field.1 - 1).saturating_sub(digits.len())));
    format_string(b, field, padded.as_bytes());
}

/// The owners' and groups' names, looked up as Go's `os/user` does without cgo: the first line of
/// /etc/passwd (/etc/group) with the number in its third field, or nothing.
#[derive(Default)]
pub struct Names {
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
    root: Option<std::path::PathBuf>,
}

impl Names {
    /// Names read from `<root>/etc/passwd` and `<root>/etc/group` (tests).
    #[cfg(test)]
    pub fn under(root: &Path) -> Names {
        Names { root: Some(root.to_path_buf()), ..Names::default() }
    }

    fn user(&mut self, uid: u32) -> Vec<u8> {
        let root = self.root.clone();
        self.users.entry(uid).or_insert_with(|| lookup(root.as_deref(), "etc/passwd", uid, 6)).clone()
    }

    fn group(&mut self, gid: u32) -> Vec<u8> {
        let root = self.root.clone();
        self.groups.entry(gid).or_insert_with(|| lookup(root.as_deref(), "etc/group", gid, 3)).clone()
    }
}

/// Go's `readColonFile` with `matchUserIndexValue(id, 2)` (`colons` 6) or `matchGroupIndexValue(id,
/// 2)` (`colons` 3). The file is read only if it is a regular file, without blocking, up to 4 MiB.
fn lookup(root: Option<&Path>, file: &str, id: u32, colons: usize) -> Vec<u8> {
    let path = root.unwrap_or(Path::new("/")).join(file);
    let Ok(text) = folder::read_mounted(&path, 4 << 20) else { return Vec::new() };
    let id = id.to_string();
    for line in text.split(|&c| c == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' || line.iter().filter(|&&c| c == b':').count() < colons {
            continue;
        }
        let parts: Vec<&[u8]> = line.splitn(colons + 1, |&c| c == b':').collect();
        let numeric = |i: usize| std::str::from_utf8(parts[i]).is_ok_and(|s| s.parse::<i64>().is_ok());
        if parts[0].is_empty() || parts[0][0] == b'+' || parts[0][0] == b'-' || parts[2] != id.as_bytes() {
            continue;
        }
        if numeric(2) && (colons == 3 || numeric(3)) {
            return parts[0].to_vec();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry { name: name.into(), kind: REGULAR, mode: 0o644, size: 4, mtime: 1_700_000_000, ..Entry::default() }
    }

    fn field(b: &Block, (at, len): (usize, usize)) -> &[u8] {
        &b[at..at + len]
    }

    // The header of report/one.txt (4 bytes, 0644, root, 2023-11-14T22:13:20Z) as Go's Writer wrote it
    // in upstream's argoexec (e2e/argo-upstream.sh), field by field.
    #[test]
    fn a_file_header_is_gos_ustar_header() {
        let (extended, b) = headers(&entry("report/one.txt"));
        assert!(extended.is_none());
        assert_eq!(field(&b, NAME), &[&b"report/one.txt"[..], &[0; 86]].concat()[..]);
        assert_eq!(field(&b, MODE), b"0000644\0");
        assert_eq!(field(&b, UID), b"0000000\0");
        assert_eq!(field(&b, SIZE), b"00000000004\0");
        assert_eq!(field(&b, MTIME), b"14524770400\0");
        assert_eq!(b[TYPEFLAG], b'0');
        assert_eq!(field(&b, MAGIC), b"ustar\0");
        assert_eq!(field(&b, VERSION), b"00");
        assert_eq!(field(&b, DEVMAJOR), b"0000000\0");
        let sum: u32 =
            b.iter().enumerate().map(|(i, &c)| if (148..156).contains(&i) { 32 } else { u32::from(c) }).sum();
        assert_eq!(field(&b, CHKSUM), format!("{sum:06o}\0 ").as_bytes(), "six digits, NUL, space");
        // The tar crate and GNU tar read it back.
        let h = tar::Header::from_byte_slice(&b);
        assert_eq!(h.path().unwrap(), Path::new("report/one.txt"));
        assert_eq!(h.cksum().unwrap(), sum);
    }

    #[test]
    fn modes_hold_no_file_type_and_links_their_target() {
        let dir = Entry { kind: DIR, mode: 0o1777, size: 0, ..entry("report") };
        assert_eq!(field(&headers(&dir).1, MODE), b"0001777\0");
        let link = Entry { kind: SYMLINK, mode: 0o777, size: 0, link: b"sub".to_vec(), ..entry("report/l") };
        let b = headers(&link).1;
        assert_eq!((field(&b, MODE), b[TYPEFLAG], &field(&b, LINKNAME)[..4]), (&b"0000777\0"[..], b'2', &b"sub\0"[..]));
    }

    #[test]
    fn names_of_up_to_255_bytes_are_split_at_a_slash_as_go_splits_them() {
        let long = format!("{}/{}/{}.txt", "a".repeat(60), "b".repeat(60), "c".repeat(60));
        let (extended, b) = headers(&entry(&long));
        assert!(extended.is_none(), "USTAR");
        assert_eq!(&field(&b, PREFIX)[..122], format!("{}/{}\0", "a".repeat(60), "b".repeat(60)).as_bytes());
        assert_eq!(&field(&b, NAME)[..65], format!("{}.txt\0", "c".repeat(60)).as_bytes());
        assert_eq!(split_ustar_path(&[b'x'; 101]), None, "no slash");
        assert_eq!(split_ustar_path(format!("x/{}", "y".repeat(101)).as_bytes()), None, "a last part over 100");
        assert_eq!(split_ustar_path(b"/abc"), None);
    }

    // A name that cannot be split, a non-ASCII name, a large uid: Go's PAX extended header (named
    // <dir>/PaxHeaders.0/<file>, records sorted by key), then the entry's header with what fits.
    #[test]
    fn what_ustar_cannot_hold_goes_into_pax_records() {
        let long = format!("out/{}/{}.txt", "n".repeat(150), "n".repeat(150));
        let e = Entry { uid: 3_000_000, ..entry(&long) };
        let (extended, b) = headers(&e);
        let (x, records) = extended.expect("a PAX header");
        let expect = format!("319 path={long}\n15 uid=3000000\n");
        assert_eq!(String::from_utf8(records).unwrap(), expect);
        assert_eq!(x[TYPEFLAG], b'x');
        let x_name = format!("out/{}/PaxHeaders.0/{}", "n".repeat(150), "n".repeat(150));
        assert_eq!(field(&x, NAME), &x_name.as_bytes()[..100]);
        assert_eq!(field(&x, SIZE), format!("{:011o}\0", expect.len()).as_bytes());
        assert_eq!((field(&x, MODE), field(&x, MTIME)), (&b"0000000\0"[..], &b"00000000000\0"[..]));
        assert_eq!(field(&x, UNAME), &[0; 32], "zeros, not formatted");
        assert_eq!(field(&x, DEVMAJOR), &[0; 8]);
        assert_eq!((field(&x, MAGIC), field(&x, VERSION)), (&b"ustar\0"[..], &b"00"[..]));
        assert_eq!(field(&b, NAME), &long.as_bytes()[..100]);
        assert_eq!(field(&b, UID), b"0000000\0", "too large: 0, the record holds it");
        assert_eq!(field(&b, PREFIX), &[0; 155]);

        let (extended, b) = headers(&entry("caf\u{e9}.txt"));
        assert_eq!(extended.unwrap().1, "18 path=caf\u{e9}.txt\n".as_bytes());
        assert_eq!(&field(&b, NAME)[..8], b"caf.txt\0", "the header's name made ASCII");
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        // 3 + 4 + 92 = 99, + 2 digits = 101, which has 3 digits: 102.
        let v = vec![b'v'; 92];
        assert_eq!(&pax_record("path", &v)[..4], b"102 ");
        assert_eq!(pax_record("path", &v).len(), 102);
    }

    #[test]
    fn names_are_looked_up_as_gos_os_user_does() {
        let tmp = tempfile::tempdir().unwrap();
        fs_write(tmp.path(), "etc/passwd", "# comment\n+nis:x:0:0::/:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\n  kevin:x:1005:1006::/home/kevin:/usr/bin/zsh\nshort:x:7:7\n");
        fs_write(tmp.path(), "etc/group", "root:x:0:\nwheel:*:1006:kevin\nbad:x:x9:\n");
        let mut names = Names::under(tmp.path());
        assert_eq!(names.user(0), b"root");
        assert_eq!(names.user(1005), b"kevin", "leading blanks trimmed");
        assert_eq!(names.user(7), b"", "fewer than six colons");
        assert_eq!(names.group(1006), b"wheel");
        assert_eq!(names.group(0), b"root");
        assert_eq!(names.user(4), b"");
        let mut none = Names::under(&tmp.path().join("missing"));
        assert_eq!((none.user(0), none.group(0)), (Vec::new(), Vec::new()));
    }

    fn fs_write(root: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(root.join(name).parent().unwrap()).unwrap();
        std::fs::write(root.join(name), text).unwrap();
    }
}
