//! A tar.gz writer for output artifacts, small on purpose: POSIX tar headers (ustar, with pax records
//! for what does not fit: long names, big files, big ids), gzip framing (RFC 1952) around the deflate
//! of miniz_oxide that baton already carries, CRC-32 from a 1 KiB table. What Argo's readers (Go's
//! archive/tar and compress/gzip) and `tar xzf` read. The tar and flate2 crates cost 52 KiB of the
//! static binary; this costs 16 KiB.

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Go's `gzip.DefaultCompression`.
const LEVEL: i32 = 6;
const BLOCK: usize = 512;

/// CRC-32 (IEEE 802.3, reflected), as gzip's trailer holds it.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

fn crc32(crc: u32, data: &[u8]) -> u32 {
    !data.iter().fold(!crc, |c, b| CRC_TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8))
}

/// A gzip stream over `out`.
pub struct Gzip<W: Write> {
    out: W,
    deflate: Box<CompressorOxide>,
    crc: u32,
    size: u32,
    buf: Vec<u8>,
}

impl<W: Write> Gzip<W> {
    pub fn new(mut out: W) -> io::Result<Gzip<W>> {
        // Magic, deflate, no flags, no time, no extra flags, Unix.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        // Negative window bits: raw deflate, the framing is ours.
        let flags = create_comp_flags_from_zip_params(LEVEL, -15, 0);
        Ok(Gzip { out, deflate: Box::new(CompressorOxide::new(flags)), crc: 0, size: 0, buf: vec![0; 64 * 1024] })
    }

    fn pump(&mut self, mut input: &[u8], flush: TDEFLFlush) -> io::Result<()> {
        let finish = matches!(flush, TDEFLFlush::Finish);
        loop {
            let (status, used, written) = compress(&mut self.deflate, input, &mut self.buf, flush);
            self.out.write_all(&self.buf[..written])?;
            input = &input[used..];
            match status {
                TDEFLStatus::Done => return Ok(()),
                TDEFLStatus::Okay if !finish && input.is_empty() && written < self.buf.len() => return Ok(()),
                TDEFLStatus::Okay => {}
                _ => return Err(io::Error::other("deflate failed")),
            }
        }
    }

    /// Ends the stream (the rest of the deflate data, CRC-32, size) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.pump(&[], TDEFLFlush::Finish)?;
        self.out.write_all(&self.crc.to_le_bytes())?;
        self.out.write_all(&self.size.to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc = crc32(self.crc, data);
        self.size = self.size.wrapping_add(data.len() as u32);
        self.pump(data, TDEFLFlush::None)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What an entry is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
}

impl Kind {
    /// The kind of `meta`; None for a socket, which a tar archive cannot hold.
    pub fn of(meta: &Metadata) -> Option<Kind> {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        Some(match () {
            _ if t.is_file() => Kind::File,
            _ if t.is_dir() => Kind::Dir,
            _ if t.is_symlink() => Kind::Symlink,
            _ if t.is_fifo() => Kind::Fifo,
            _ if t.is_char_device() => Kind::Char,
            _ if t.is_block_device() => Kind::Block,
            _ => return None,
        })
    }

    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// A tar stream over `out`.
pub struct Tar<W: Write> {
    out: W,
}

impl<W: Write> Tar<W> {
    pub fn new(out: W) -> Tar<W> {
        Tar { out }
    }

    /// One entry: `name` in the archive, the metadata of what it is, the target of a link, the
    /// content of a file (exactly `meta.len()` bytes are read from it).
    pub fn append(
        &mut self,
        name: &[u8],
        meta: &Metadata,
        kind: Kind,
        link: &[u8],
        file: Option<&mut File>,
    ) -> io::Result<()> {
        let size = if kind == Kind::File { meta.len() } else { 0 };
        let mut pax = Vec::new();
        let mut h = [0u8; BLOCK];
        text(&mut h[0..100], name, "path", &mut pax);
        octal(&mut h[100..108], u64::from(meta.mode() & 0o7777), "", &mut pax);
        octal(&mut h[108..116], u64::from(meta.uid()), "uid", &mut pax);
        octal(&mut h[116..124], u64::from(meta.gid()), "gid", &mut pax);
        octal(&mut h[124..136], size, "size", &mut pax);
        octal(&mut h[136..148], meta.mtime().max(0) as u64, "mtime", &mut pax);
        h[156] = kind.flag();
        text(&mut h[157..257], link, "linkpath", &mut pax);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        if matches!(kind, Kind::Char | Kind::Block) {
            let dev = meta.rdev();
            let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
            octal(&mut h[329..337], major, "", &mut pax);
            octal(&mut h[337..345], minor, "", &mut pax);
        }
        if !pax.is_empty() {
            // A pax header before the entry carries what its ustar header could not.
            let mut x = [0u8; BLOCK];
            text(&mut x[0..100], b"././@PaxHeader", "", &mut Vec::new());
            octal(&mut x[100..108], 0o644, "", &mut Vec::new());
            octal(&mut x[124..136], pax.len() as u64, "", &mut Vec::new());
            x[156] = b'x';
            x[257..263].copy_from_slice(b"ustar\0");
            x[263..265].copy_from_slice(b"00");
            checksum(&mut x);
            self.out.write_all(&x)?;
            self.data(&pax)?;
        }
        checksum(&mut h);
        self.out.write_all(&h)?;
        if let Some(file) = file.filter(|_| size > 0) {
            let copied = io::copy(&mut file.take(size), &mut self.out)?;
            if copied < size {
                return Err(io::Error::other("a file shrank while it was archived"));
            }
            self.pad(size as usize)?;
        }
        Ok(())
    }

    fn data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0u8; BLOCK][..(BLOCK - len % BLOCK) % BLOCK])
    }

    /// Ends the archive (two zero blocks, as Go's writer ends it) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// A pax record: "<length> <key>=<value>\n", the length counting itself.
fn pax_record(pax: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    pax.extend_from_slice(format!("{len} {key}=").as_bytes());
    pax.extend_from_slice(value);
    pax.push(b'\n');
}

/// A text field; what does not fit (or holds a NUL) goes to a pax record under `key`.
fn text(field: &mut [u8], value: &[u8], key: &str, pax: &mut Vec<u8>) {
    if value.len() <= field.len() && !value.contains(&0) {
        field[..value.len()].copy_from_slice(value);
    } else {
        pax_record(pax, key, value);
        let cut = field.len().min(value.len());
        field[..cut].copy_from_slice(&value[..cut]);
    }
}

/// A number as NUL-terminated octal; too big for the field: 0 there and a pax record under `key`.
fn octal(field: &mut [u8], value: u64, key: &str, pax: &mut Vec<u8>) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        pax_record(pax, key, value.to_string().as_bytes());
        field[..digits].fill(b'0');
    } else {
        field[..digits].copy_from_slice(text.as_bytes());
    }
    field[digits] = 0;
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn pax_lengths_count_themselves() {
        for n in [0, 1, 5, 90, 95, 96, 97, 990, 995, 9990] {
            let mut pax = Vec::new();
            pax_record(&mut pax, "path", &vec![b'a'; n]);
            let text = String::from_utf8(pax.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), pax.len(), "{n}");
        }
    }

    #[test]
    fn octal_fields() {
        let mut pax = Vec::new();
        let mut f = [0u8; 8];
        octal(&mut f, 0o755, "", &mut pax);
        assert_eq!(&f, b"0000755\0");
        let mut size = [0u8; 12];
        octal(&mut size, 1 << 34, "size", &mut pax);
        assert_eq!(&size, b"00000000000\0");
        assert_eq!(pax, b"20 size=17179869184\n");
    }
}
