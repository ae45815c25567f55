//! One BTF file and where its bytes are (read with `pread`, mapped, or in
//! memory): its header, the offset of each of its types, and the two
//! streaming passes that index it (strings for the wanted names, then
//! types for those that carry them).

use super::names::{Names, Wanted};
use super::KernelBtfError;
use crate::obj::btf::{decode_type, record_len, BtfError, BtfType, Header};
use crate::sys;
use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The read buffer of the streaming passes.
pub(super) const CHUNK: usize = 64 * 1024;
/// First read of a string on demand (longer ones are read again, larger).
pub(super) const STRING_READ: usize = 64;

/// Where a BTF's bytes are: a file read with `pread`, a mapping of the
/// kernel's BTF (kernels from 6.16 let vmlinux BTF be mapped), or memory.
pub(super) enum Backing {
    File(File),
    Map(sys::SysfsMap),
    Bytes(Vec<u8>),
}

impl Backing {
    /// The bytes, when they need no reading.
    pub(super) fn in_memory(&self) -> Option<&[u8]> {
        match self {
            Backing::File(_) => None,
            Backing::Map(m) => Some(m),
            Backing::Bytes(b) => Some(b),
        }
    }

    pub(super) fn len(&self) -> io::Result<u64> {
        match self {
            Backing::File(f) => f.metadata().map(|m| m.len()),
            Backing::Map(m) => Ok(m.len() as u64),
            Backing::Bytes(b) => Ok(b.len() as u64),
        }
    }

    pub(super) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match (self, self.in_memory()) {
            (Backing::File(f), _) => f.read_exact_at(buf, at),
            (_, Some(b)) => {
                let src = usize::try_from(at)
                    .ok()
                    .and_then(|at| b.get(at..at.checked_add(buf.len())?))
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                buf.copy_from_slice(src);
                Ok(())
            }
            (_, None) => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }
}

/// One BTF file: vmlinux (or a standalone file) or a module's split BTF.
pub(super) struct Source {
    /// "vmlinux", or the module's name.
    pub(super) name: String,
    /// For errors.
    pub(super) path: PathBuf,
    pub(super) data: Backing,
    /// Byte ranges of the sections in the file.
    pub(super) types: Range<usize>,
    pub(super) strings: Range<usize>,
    /// Where each of its own types starts, relative to the type section,
    /// then the section's length: type `i` (0-based among its own) is
    /// `offsets[i]..offsets[i + 1]`.
    pub(super) offsets: Vec<u32>,
}

impl Source {
    pub(super) fn open(
        name: &str,
        path: &Path,
        data: Backing,
        split: bool,
    ) -> Result<Source, KernelBtfError> {
        let io_err = |source| KernelBtfError::Io {
            path: path.to_owned(),
            source,
        };
        let btf_err = |source| KernelBtfError::Btf {
            path: path.to_owned(),
            source,
        };
        let total = usize::try_from(data.len().map_err(io_err)?).unwrap_or(usize::MAX);
        let mut head = [0u8; Header::LEN];
        let n = head.len().min(total);
        data.read_exact_at(&mut head[..n], 0).map_err(io_err)?;
        let h = Header::parse(&head[..n], total).map_err(btf_err)?;
        let src = Source {
            name: name.to_owned(),
            path: path.to_owned(),
            data,
            types: h.types,
            strings: h.strings,
            offsets: Vec::new(),
        };
        // As Btf::parse: strings end with a NUL, and vmlinux's start with one
        // (a split BTF's continue its base's, so its first byte is anything).
        let mut first_last = [0u8; 1];
        if src.strings.is_empty() {
            if !split {
                return Err(btf_err(BtfError::Strings(
                    "is empty or does not start with a NUL byte",
                )));
            }
        } else {
            src.read(&mut first_last, src.strings.start as u64)
                .map_err(btf_err)?;
            if !split && first_last[0] != 0 {
                return Err(btf_err(BtfError::Strings(
                    "is empty or does not start with a NUL byte",
                )));
            }
            src.read(&mut first_last, src.strings.end as u64 - 1)
                .map_err(btf_err)?;
            if first_last[0] != 0 {
                return Err(btf_err(BtfError::Strings("does not end with a NUL byte")));
            }
        }
        Ok(src)
    }

    pub(super) fn read(&self, buf: &mut [u8], at: u64) -> Result<(), BtfError> {
        self.data
            .read_exact_at(buf, at)
            .map_err(|e| BtfError::Read {
                offset: at,
                reason: e.to_string(),
            })
    }

    /// Number of its own types.
    pub(super) fn count(&self) -> u32 {
        self.offsets.len().saturating_sub(1) as u32
    }

    pub(super) fn strings_len(&self) -> u32 {
        self.strings.len() as u32
    }

    /// `len` bytes at file offset `at`: borrowed when the file is in
    /// memory, else read into `buf`.
    pub(super) fn chunk<'b>(
        &'b self,
        at: usize,
        len: usize,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], BtfError> {
        if let Some(data) = self.data.in_memory() {
            return data.get(at..at + len).ok_or(BtfError::Read {
                offset: at as u64,
                reason: "past the end of the BTF".into(),
            });
        }
        let buf = &mut buf[..len];
        self.read(buf, at as u64)?;
        Ok(buf)
    }

    /// How much of a section one pass looks at at once.
    pub(super) fn window(&self, section: usize, buf: &[u8]) -> usize {
        if self.data.in_memory().is_some() {
            section
        } else {
            buf.len()
        }
    }

    /// The wanted names of this file's string section: looked at in place
    /// when the file is in memory, else found by one pass over the section.
    pub(super) fn names<'s, 'w>(
        &'s self,
        wanted: &'s Wanted<'w>,
        buf: &mut [u8],
    ) -> Result<Names<'s, 'w>, BtfError> {
        Ok(match self.data.in_memory() {
            Some(data) => Names::Direct {
                section: &data[self.strings.clone()],
                wanted,
            },
            None => Names::found(self.scan_strings(wanted, buf)?),
        })
    }

    /// Streams the string section: (offset, name) of every string that is a
    /// wanted name (or one with a flavor), in offset order.
    pub(super) fn scan_strings<'w>(
        &self,
        wanted: &Wanted<'w>,
        buf: &mut [u8],
    ) -> Result<Vec<(u32, &'w str)>, BtfError> {
        let mut hits = Vec::new();
        let len = self.strings.len();
        let window = self.window(len, buf);
        let mut pos = 0usize;
        // Inside a string longer than the buffer (it cannot be a wanted name).
        let mut skipping = false;
        while pos < len {
            let n = window.min(len - pos);
            let chunk = self.chunk(self.strings.start + pos, n, buf)?;
            // Whole strings only: the next read starts after the last NUL.
            let Some(last) = memchr::memrchr(0, chunk) else {
                skipping = true;
                pos += n;
                continue;
            };
            let region = &chunk[..=last];
            let from = if skipping {
                skipping = false;
                memchr::memchr(0, region).map_or(region.len(), |z| z + 1)
            } else {
                0
            };
            wanted.find(region, from, |at, name| {
                hits.push(((pos + at) as u32, name))
            });
            pos += last + 1;
        }
        Ok(hits)
    }

    /// Streams the type section: where each type starts (relative to the
    /// section, then its end), and (name, id) of each type whose name
    /// offset `named` knows. Ids start at `first_id`.
    #[allow(clippy::type_complexity)]
    pub(super) fn scan_types<'w>(
        &self,
        first_id: u32,
        named: impl Fn(u32) -> Option<&'w str>,
        buf: &mut [u8],
    ) -> Result<(Vec<u32>, Vec<(&'w str, u32)>), BtfError> {
        let len = self.types.len();
        let window = self.window(len, buf);
        let mut hits = Vec::new();
        // vmlinux's records average ~25 bytes.
        let mut offsets = Vec::with_capacity(len / 24 + 2);
        let mut win: &[u8] = &[];
        let mut win_start = 0usize;
        let mut pos = 0usize;
        let mut id = first_id;
        while pos < len {
            if pos + 12 > win_start + win.len() {
                if len - pos < 12 {
                    return Err(BtfError::TypeTruncated {
                        id,
                        kind: "?",
                        offset: pos,
                        need: 12,
                        len,
                    });
                }
                win_start = pos;
                win = self.chunk(self.types.start + pos, window.min(len - pos), buf)?;
            }
            let h = &win[pos - win_start..pos - win_start + 12];
            let name_off = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            let info = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            let (kind, rec) = record_len(info).ok_or(BtfError::UnknownKind {
                id,
                offset: pos,
                kind: (info >> 24) & 0x1f,
            })?;
            if rec > len - pos {
                return Err(BtfError::TypeTruncated {
                    id,
                    kind: kind.name(),
                    offset: pos,
                    need: rec as u64,
                    len,
                });
            }
            offsets.push(pos as u32);
            if name_off != 0 {
                if let Some(name) = named(name_off) {
                    hits.push((name, id));
                }
            }
            pos += rec;
            id = id.checked_add(1).ok_or(BtfError::Overflow { id })?;
        }
        offsets.push(len as u32);
        Ok((offsets, hits))
    }

    /// Decodes its own type `index` (0-based), known to the kernel as `id`.
    pub(super) fn decode(&self, index: usize, id: u32) -> Result<BtfType, BtfError> {
        let (start, end) = match (self.offsets.get(index), self.offsets.get(index + 1)) {
            (Some(&s), Some(&e)) => (s as usize, e as usize),
            _ => {
                return Err(BtfError::NoSuchType {
                    id,
                    count: self.count(),
                })
            }
        };
        let at = self.types.start + start;
        if let Some(data) = self.data.in_memory() {
            return decode_type(&data[at..at + (end - start)], id);
        }
        let mut record = vec![0u8; end - start];
        self.read(&mut record, at as u64)?;
        decode_type(&record, id)
    }

    /// The string at `local` (an offset into its own string section),
    /// borrowed when the file is in memory; errors name `shown`, the offset
    /// the caller asked for.
    pub(super) fn string(
        &self,
        local: u32,
        shown: u32,
        total: usize,
    ) -> Result<Cow<'_, str>, BtfError> {
        let bad = BtfError::BadString {
            offset: shown,
            len: total,
        };
        let len = self.strings.len();
        let start = local as usize;
        if start >= len {
            return Err(bad);
        }
        if let Some(data) = self.data.in_memory() {
            let rest = &data[self.strings.start + start..self.strings.end];
            let end = memchr::memchr(0, rest).ok_or(bad.clone())?;
            return std::str::from_utf8(&rest[..end])
                .map(Cow::Borrowed)
                .map_err(|_| bad);
        }
        let mut want = STRING_READ;
        loop {
            let n = want.min(len - start);
            let mut buf = vec![0u8; n];
            self.read(&mut buf, (self.strings.start + start) as u64)?;
            if let Some(end) = memchr::memchr(0, &buf) {
                buf.truncate(end);
                return String::from_utf8(buf).map(Cow::Owned).map_err(|_| bad);
            }
            if n == len - start {
                return Err(bad);
            }
            want = want.saturating_mul(8);
        }
    }
}

/// Opens a BTF file: mapped if it is the kernel's and the kernel allows
/// it, else read with `pread` as it is needed.
pub(super) fn open_file(path: &Path) -> Result<Backing, KernelBtfError> {
    let file = File::open(path).map_err(|source| KernelBtfError::Io {
        path: path.to_owned(),
        source,
    })?;
    let len = file.metadata().map_or(0, |m| m.len());
    match usize::try_from(len)
        .ok()
        .and_then(|len| sys::SysfsMap::new(&file, len).ok().flatten())
    {
        Some(map) => Ok(Backing::Map(map)),
        None => Ok(Backing::File(file)),
    }
}
