//! The running kernel's BTF, read lazily, and the BTF attach targets of
//! tracing, LSM, iterator and freplace programs.
//!
//! vmlinux BTF is 5+ MB and ~130k types; an object names a handful of them
//! (its CO-RE root types, its externs, its attach targets). libbpf parses all
//! of it on every load. [`KernelBtf`] instead walks the type section once,
//! recording where each type starts (4 bytes per type) and which types carry
//! a wanted name, and then decodes types and strings on demand:
//!
//! - read with `pread` through one 64 KiB buffer, the string section is
//!   streamed first for the offsets of the wanted names (compared only when
//!   a string's first two bytes are a wanted name's), and each type or
//!   string looked up later is one `pread`, cached;
//! - where the kernel lets its BTF be mapped (`/sys/kernel/btf/vmlinux` from
//!   6.16: no copy through thousands of page-sized reads), the walk looks at
//!   each named type's name in place, with no string pass, and look-ups
//!   decode or borrow from the mapping. The mapping is the kernel's memory:
//!   it adds nothing to the process's RSS.
//!
//! Module BTF (`/sys/kernel/btf/<module>`) is split BTF: its type ids and
//! string offsets continue vmlinux's. As libbpf does, modules are searched
//! only for wanted names that vmlinux has no type for (or that name a module,
//! `module:name`); each module kept gets a private id and string range after
//! the previous one, so ids of several modules never collide, and
//! [`TargetTypes::kernel_id`] / [`TargetTypes::module`] give back the id the
//! kernel knows and the module it lives in.
//!
//! The attach targets of tracing, LSM, iterator and freplace programs are
//! resolved against it in the private `attach` module (what it exports is re-exported here).

mod attach;

pub use attach::{
    attach_btf_names, attach_btf_target, check_attach_targets, load_attach, trial_load, AttachBtf,
    LoadAttach,
};

use crate::obj::btf::{decode_type, record_len, BtfError, BtfType, Header};
use crate::obj::core::{essential_name, TargetTypes};
use crate::sys;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The kernel's own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
/// Where the kernel puts each module's split BTF, one file per module.
pub const MODULE_DIR: &str = "/sys/kernel/btf";

/// The read buffer of the streaming passes.
const CHUNK: usize = 64 * 1024;
/// First read of a string on demand (longer ones are read again, larger).
const STRING_READ: usize = 64;

/// Why the kernel's BTF could not be opened or indexed; names the file.
#[derive(thiserror::Error)]
pub enum KernelBtfError {
    /// Opening or reading the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The BTF file (vmlinux, a module's, `--btf FILE`, or the module directory).
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is not valid BTF.
    #[error("{}: {source}", path.display())]
    Btf {
        /// The BTF file.
        path: PathBuf,
        /// What is wrong with it.
        source: BtfError,
    },
}

impl KernelBtfError {
    /// The file at fault.
    pub fn path(&self) -> &Path {
        match self {
            KernelBtfError::Io { path, .. } | KernelBtfError::Btf { path, .. } => path,
        }
    }

    /// What went wrong, without the file name.
    pub fn reason(&self) -> String {
        match self {
            KernelBtfError::Io { source, .. } => source.to_string(),
            KernelBtfError::Btf { source, .. } => source.to_string(),
        }
    }
}

/// Where a BTF's bytes are: a file read with `pread`, a mapping of the
/// kernel's BTF (kernels from 6.16 let vmlinux BTF be mapped), or memory.
enum Backing {
    File(File),
    Map(sys::SysfsMap),
    Bytes(Vec<u8>),
}

impl Backing {
    /// The bytes, when they need no reading.
    fn in_memory(&self) -> Option<&[u8]> {
        match self {
            Backing::File(_) => None,
            Backing::Map(m) => Some(m),
            Backing::Bytes(b) => Some(b),
        }
    }

    fn len(&self) -> io::Result<u64> {
        match self {
            Backing::File(f) => f.metadata().map(|m| m.len()),
            Backing::Map(m) => Ok(m.len() as u64),
            Backing::Bytes(b) => Ok(b.len() as u64),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
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
struct Source {
    /// "vmlinux", or the module's name.
    name: String,
    /// For errors.
    path: PathBuf,
    data: Backing,
    /// Byte ranges of the sections in the file.
    types: Range<usize>,
    strings: Range<usize>,
    /// Where each of its own types starts, relative to the type section,
    /// then the section's length: type `i` (0-based among its own) is
    /// `offsets[i]..offsets[i + 1]`.
    offsets: Vec<u32>,
}

impl Source {
    fn open(name: &str, path: &Path, data: Backing, split: bool) -> Result<Source, KernelBtfError> {
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

    fn read(&self, buf: &mut [u8], at: u64) -> Result<(), BtfError> {
        self.data
            .read_exact_at(buf, at)
            .map_err(|e| BtfError::Read {
                offset: at,
                reason: e.to_string(),
            })
    }

    /// Number of its own types.
    fn count(&self) -> u32 {
        self.offsets.len().saturating_sub(1) as u32
    }

    fn strings_len(&self) -> u32 {
        self.strings.len() as u32
    }

    /// `len` bytes at file offset `at`: borrowed when the file is in
    /// memory, else read into `buf`.
    fn chunk<'b>(&'b self, at: usize, len: usize, buf: &'b mut [u8]) -> Result<&'b [u8], BtfError> {
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
    fn window(&self, section: usize, buf: &[u8]) -> usize {
        if self.data.in_memory().is_some() {
            section
        } else {
            buf.len()
        }
    }

    /// The wanted names of this file's string section: looked at in place
    /// when the file is in memory, else found by one pass over the section.
    fn names<'s, 'w>(
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
    fn scan_strings<'w>(
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
    fn scan_types<'w>(
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
    fn decode(&self, index: usize, id: u32) -> Result<BtfType, BtfError> {
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
    fn string(&self, local: u32, shown: u32, total: usize) -> Result<Cow<'_, str>, BtfError> {
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

/// The names to look for while streaming the string section (100k+
/// strings): a string is compared with the wanted names only if its first
/// two bytes are those of one (a 64 Kib table), so most cost a look-up.
struct Wanted<'a> {
    names: BTreeSet<&'a str>,
    /// The same, to walk.
    list: Vec<&'a str>,
    /// Bit `b0 | b1 << 8` is set for the first two bytes of each name
    /// (a one-byte name: followed by NUL or by '_' of a flavor).
    pairs: Vec<u64>,
}

impl<'a> Wanted<'a> {
    fn new(names: impl IntoIterator<Item = &'a str>) -> Wanted<'a> {
        let names: BTreeSet<&str> = names.into_iter().filter(|n| !n.is_empty()).collect();
        let mut pairs = vec![0u64; 1024];
        let mut set = |pair: usize| pairs[pair / 64] |= 1 << (pair % 64);
        for n in &names {
            let b = n.as_bytes();
            match b.get(1) {
                Some(&second) => set(usize::from(b[0]) | usize::from(second) << 8),
                None => {
                    set(usize::from(b[0]));
                    set(usize::from(b[0]) | usize::from(b'_') << 8);
                }
            }
        }
        let list = names.iter().copied().collect();
        Wanted { names, list, pairs }
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the string starting `rest` may be a wanted name.
    #[inline]
    fn may_start(&self, rest: &[u8]) -> bool {
        let pair = match rest.get(..2) {
            Some(b) => usize::from(b[0]) | usize::from(b[1]) << 8,
            None => return false,
        };
        self.pairs[pair / 64] & (1 << (pair % 64)) != 0
    }

    /// Calls `hit(offset, name)` for each string of `region` (whole
    /// NUL-terminated strings, the first at `from`) that is a wanted name
    /// or one with a `___flavor`. Strings start at `from` and after each
    /// NUL, found eight bytes at a time.
    fn find(&self, region: &[u8], from: usize, mut hit: impl FnMut(usize, &'a str)) {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let mut at = |p: usize| {
            let rest = region.get(p..).unwrap_or_default();
            if self.may_start(rest) {
                if let Some(name) = self.name_at(rest) {
                    hit(p, name)
                }
            }
        };
        at(from);
        let words = region.get(from..).unwrap_or_default().chunks_exact(8);
        let tail = from + words.len() * 8;
        for (k, word) in words.enumerate() {
            let w = u64::from_le_bytes([
                word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
            ]);
            // The high bit of each zero byte (exact: no borrow between bytes).
            let mut zeros = !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7);
            while zeros != 0 {
                at(from + k * 8 + zeros.trailing_zeros() as usize / 8 + 1);
                zeros &= zeros - 1;
            }
        }
        for (j, &b) in region.iter().enumerate().skip(tail) {
            if b == 0 {
                at(j + 1);
            }
        }
    }

    /// The wanted name the string at the start of `rest` stands for: the
    /// name itself, or it with a `___flavor`.
    fn name_at(&self, rest: &[u8]) -> Option<&'a str> {
        let pair = rest.get(..2)?;
        for &name in &self.list {
            let n = name.as_bytes();
            if (n.len() >= 2 && n[..2] != *pair) || rest.len() <= n.len() || !rest.starts_with(n) {
                continue;
            }
            match rest[n.len()] {
                0 => return Some(name),
                b'_' if rest[n.len()..].starts_with(b"___") => {
                    let end = memchr::memchr(0, rest)?;
                    let s = std::str::from_utf8(&rest[..end]).ok()?;
                    if essential_name(s) == name {
                        return Some(name);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Which wanted name a name offset (into one string section) stands for.
enum Names<'s, 'w> {
    /// The section is in memory: the string there is looked at.
    Direct {
        section: &'s [u8],
        wanted: &'s Wanted<'w>,
    },
    /// The offsets a pass over the section found, sorted, behind a quick filter.
    Found {
        list: Vec<(u32, &'w str)>,
        filter: OffsetFilter,
    },
}

impl<'s, 'w> Names<'s, 'w> {
    fn found(list: Vec<(u32, &'w str)>) -> Names<'s, 'w> {
        let filter = OffsetFilter::new(list.iter().map(|(off, _)| *off));
        Names::Found { list, filter }
    }

    #[inline]
    fn get(&self, off: u32) -> Option<&'w str> {
        match self {
            Names::Direct { section, wanted } => {
                let rest = section.get(off as usize..)?;
                if !wanted.may_start(rest) {
                    return None;
                }
                wanted.name_at(rest)
            }
            Names::Found { list, filter } => {
                if !filter.may_contain(off) {
                    return None;
                }
                let i = list.binary_search_by_key(&off, |(o, _)| *o).ok()?;
                Some(list[i].1)
            }
        }
    }

    /// The same, for the names of `keep` only.
    fn only<'k>(&'k self, keep: &'k Wanted<'w>) -> Names<'k, 'w> {
        match self {
            Names::Direct { section, .. } => Names::Direct {
                section,
                wanted: keep,
            },
            Names::Found { list, .. } => Names::found(
                list.iter()
                    .filter(|(_, n)| keep.names.contains(n))
                    .copied()
                    .collect(),
            ),
        }
    }
}

/// A quick "maybe" for a handful of string offsets (a 1024-bit Bloom
/// filter), in front of the binary search, for each of 100k+ types.
struct OffsetFilter([u64; 16]);

impl OffsetFilter {
    fn new(offsets: impl IntoIterator<Item = u32>) -> OffsetFilter {
        let mut bits = [0u64; 16];
        for off in offsets {
            let h = Self::hash(off);
            bits[h / 64] |= 1 << (h % 64);
        }
        OffsetFilter(bits)
    }

    fn hash(off: u32) -> usize {
        (off.wrapping_mul(0x9e37_79b1) >> 22) as usize
    }

    fn may_contain(&self, off: u32) -> bool {
        let h = Self::hash(off);
        self.0[h / 64] & (1 << (h % 64)) != 0
    }
}

/// A module's split BTF, kept because it has types with wanted names.
struct Module {
    src: Source,
    /// Private id of its first type (the kernel's is the base's count).
    first_id: u32,
    /// Private offset of its first string (the kernel's is the base's string length).
    first_str: u32,
}

/// A module BTF file not read yet.
struct ModuleFile {
    name: String,
    path: PathBuf,
    bytes: Option<Vec<u8>>,
}

/// The kernel's BTF (vmlinux and, where needed, module BTF), indexed only
/// for the names it was opened for. Implements [`TargetTypes`]: types and
/// strings are read on demand.
///
/// [`TargetTypes::ids_by_essential_name`] answers only for the names given
/// when it was opened (each taken by its essential name); for any other
/// name it is an error ([`BtfError::NotIndexed`]), never a silent "none",
/// so a name the loader forgot to ask for shows up as a bug. A wanted name
/// may be `module:name`: then that module's types named `name`, whether or
/// not vmlinux has one.
pub struct KernelBtf {
    base: Source,
    modules: Vec<Module>,
    /// Wanted name (essential, or `module:essential`) → private ids.
    names: HashMap<String, Vec<u32>>,
    types: RefCell<HashMap<u32, BtfType>>,
    strings: RefCell<HashMap<u32, String>>,
}

impl fmt::Debug for KernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBtf")
            .field("path", &self.base.path)
            .field("types", &self.len())
            .field(
                "modules",
                &self.modules.iter().map(|m| &m.src.name).collect::<Vec<_>>(),
            )
            .field("names", &self.names)
            .finish()
    }
}

/// A wanted name split into its module (if it names one) and its essential name.
fn split_wanted(w: &str) -> (Option<&str>, &str) {
    match w.split_once(':') {
        Some((m, n)) => (Some(m), essential_name(n)),
        None => (None, essential_name(w)),
    }
}

/// The key a wanted name is stored and looked up under.
fn key_of(w: &str) -> String {
    match split_wanted(w) {
        (Some(m), n) => format!("{m}:{n}"),
        (None, n) => n.to_owned(),
    }
}

impl KernelBtf {
    /// One standalone BTF file (`--btf FILE`): no module BTF.
    pub fn open(path: &Path, wanted: &BTreeSet<String>) -> Result<KernelBtf, KernelBtfError> {
        let data = open_file(path)?;
        KernelBtf::build(
            Source::open("vmlinux", path, data, false)?,
            Vec::new(),
            wanted,
        )
    }

    /// The running kernel's BTF: [`VMLINUX`], and module BTF from
    /// [`MODULE_DIR`] for names vmlinux lacks.
    pub fn open_kernel(wanted: &BTreeSet<String>) -> Result<KernelBtf, KernelBtfError> {
        KernelBtf::open_with_modules(Path::new(VMLINUX), Path::new(MODULE_DIR), wanted)
    }

    /// vmlinux BTF at `vmlinux`, and the split BTF files of `module_dir`
    /// (every file but one named `vmlinux`, each named after its module),
    /// listed and read only if a wanted name needs them.
    pub fn open_with_modules(
        vmlinux: &Path,
        module_dir: &Path,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        let base = Source::open("vmlinux", vmlinux, open_file(vmlinux)?, false)?;
        let list = || -> Result<Vec<ModuleFile>, KernelBtfError> {
            let io_err = |source| KernelBtfError::Io {
                path: module_dir.to_owned(),
                source,
            };
            let mut out = Vec::new();
            for entry in std::fs::read_dir(module_dir).map_err(io_err)? {
                let entry = entry.map_err(io_err)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "vmlinux" || !entry.file_type().map_err(io_err)?.is_file() {
                    continue;
                }
                out.push(ModuleFile {
                    name,
                    path: entry.path(),
                    bytes: None,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        };
        KernelBtf::build_lazy(base, list, wanted)
    }

    /// A BTF blob in memory (tests, or BTF from elsewhere).
    pub fn from_bytes(
        data: Vec<u8>,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        KernelBtf::from_bytes_with_modules(data, Vec::new(), wanted)
    }

    /// A base BTF and modules' split BTF (name, bytes) in memory.
    pub fn from_bytes_with_modules(
        base: Vec<u8>,
        modules: Vec<(String, Vec<u8>)>,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        let base = Source::open("vmlinux", Path::new("vmlinux"), Backing::Bytes(base), false)?;
        let modules = modules
            .into_iter()
            .map(|(name, bytes)| ModuleFile {
                path: PathBuf::from(&name),
                name,
                bytes: Some(bytes),
            })
            .collect();
        KernelBtf::build(base, modules, wanted)
    }

    fn build(
        base: Source,
        modules: Vec<ModuleFile>,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        KernelBtf::build_lazy(base, || Ok(modules), wanted)
    }

    fn build_lazy(
        mut base: Source,
        list_modules: impl FnOnce() -> Result<Vec<ModuleFile>, KernelBtfError>,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        let mut buf = vec![0u8; CHUNK];
        let btf_err = |path: &Path| {
            let path = path.to_owned();
            move |source| KernelBtfError::Btf { path, source }
        };
        let split: Vec<(Option<&str>, &str)> = wanted.iter().map(|w| split_wanted(w)).collect();
        // vmlinux: every name, bare or qualified (a module's type may be
        // named by a string vmlinux's string section already holds).
        let all = Wanted::new(split.iter().map(|(_, n)| *n));
        let base_names = base.names(&all, &mut buf).map_err(btf_err(&base.path))?;
        let (base_offsets, base_hits) = base
            .scan_types(1, |off| base_names.get(off), &mut buf)
            .map_err(btf_err(&base.path))?;
        let mut base_ids: HashMap<&str, Vec<u32>> = HashMap::new();
        for (name, id) in base_hits {
            base_ids.entry(name).or_default().push(id);
        }
        let mut names: HashMap<String, Vec<u32>> = HashMap::new();
        for &(module, n) in &split {
            let ids = base_ids.get(n).cloned().unwrap_or_default();
            match module {
                None => {
                    names.insert(n.to_owned(), ids);
                }
                Some("vmlinux") => {
                    names.insert(format!("vmlinux:{n}"), ids);
                }
                Some(m) => {
                    names.insert(format!("{m}:{n}"), Vec::new());
                }
            }
        }
        let missing: BTreeSet<&str> = split
            .iter()
            .filter(|(m, n)| m.is_none() && names.get(*n).is_some_and(|ids| ids.is_empty()))
            .map(|(_, n)| *n)
            .collect();
        let qualified: Vec<(&str, &str)> = split
            .iter()
            .filter_map(|&(m, n)| Some((m.filter(|m| *m != "vmlinux")?, n)))
            .collect();
        let mut kept = Vec::new();
        if !missing.is_empty() || !qualified.is_empty() {
            let base_count = base_offsets.len().saturating_sub(1) as u32 + 1;
            let base_str = base.strings_len();
            let (mut next_id, mut next_str) = (base_count, base_str);
            for file in list_modules()? {
                let own: Vec<&str> = qualified
                    .iter()
                    .filter(|(m, _)| *m == file.name)
                    .map(|(_, n)| *n)
                    .collect();
                let needed = Wanted::new(missing.iter().copied().chain(own.iter().copied()));
                if needed.is_empty() {
                    continue;
                }
                let data = match file.bytes {
                    Some(b) => Backing::Bytes(b),
                    None => open_file(&file.path)?,
                };
                let mut src = Source::open(&file.name, &file.path, data, true)?;
                // A module's name offsets below vmlinux's string length are
                // vmlinux's strings.
                let in_base = base_names.only(&needed);
                let own_names = src.names(&needed, &mut buf).map_err(btf_err(&file.path))?;
                let named = |off: u32| match off.checked_sub(base_str) {
                    None => in_base.get(off),
                    Some(local) => own_names.get(local),
                };
                let (offsets, hits) = src
                    .scan_types(base_count, named, &mut buf)
                    .map_err(btf_err(&file.path))?;
                drop(own_names);
                if hits.is_empty() {
                    continue;
                }
                src.offsets = offsets;
                let module = Module {
                    first_id: next_id,
                    first_str: next_str,
                    src,
                };
                for (n, kid) in hits {
                    let id = module.first_id + (kid - base_count);
                    if missing.contains(n) {
                        names.entry(n.to_owned()).or_default().push(id);
                    }
                    if own.contains(&n) {
                        names
                            .entry(format!("{}:{n}", file.name))
                            .or_default()
                            .push(id);
                    }
                }
                let too_many = KernelBtfError::Btf {
                    path: file.path.clone(),
                    source: BtfError::Overflow { id: next_id },
                };
                match (
                    next_id.checked_add(module.src.count()),
                    next_str.checked_add(module.src.strings_len()),
                ) {
                    (Some(i), Some(s)) => (next_id, next_str) = (i, s),
                    _ => return Err(too_many),
                }
                kept.push(module);
            }
        }
        drop(base_names);
        base.offsets = base_offsets;
        Ok(KernelBtf {
            base,
            modules: kept,
            names,
            types: RefCell::new(HashMap::new()),
            strings: RefCell::new(HashMap::new()),
        })
    }

    /// Number of type ids, void included: vmlinux's, then each kept module's.
    pub fn len(&self) -> u32 {
        self.modules
            .last()
            .map_or(self.base.count() + 1, |m| m.first_id + m.src.count())
    }

    /// Whether there are no types besides void.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// The modules whose BTF was kept (they have types with wanted names).
    pub fn modules(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|m| m.src.name.as_str())
    }

    /// The names this BTF answers [`TargetTypes::ids_by_essential_name`] for.
    pub fn indexed_names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    fn base_count(&self) -> u32 {
        self.base.count() + 1
    }

    /// The file type `id` is in.
    fn source_of(&self, id: u32) -> &Source {
        self.module_of(id).map_or(&self.base, |m| &m.src)
    }

    fn module_of(&self, id: u32) -> Option<&Module> {
        self.modules
            .iter()
            .find(|m| id >= m.first_id && id - m.first_id < m.src.count())
    }

    fn strings_total(&self) -> usize {
        self.modules.last().map_or(self.base.strings.len(), |m| {
            (m.first_str + m.src.strings_len()) as usize
        })
    }

    fn decode(&self, id: u32) -> Result<BtfType, BtfError> {
        let base_count = self.base_count();
        if id < base_count {
            return self.base.decode(id as usize - 1, id);
        }
        let m = self.module_of(id).ok_or(BtfError::NoSuchType {
            id,
            count: self.len(),
        })?;
        let local = id - m.first_id;
        let mut t = m.src.decode(local as usize, base_count + local)?;
        // The module's own ids and strings move to its private ranges;
        // references to vmlinux stay. Out-of-range ones become invalid.
        let base_str = self.base.strings_len();
        let (count, str_len) = (m.src.count(), m.src.strings_len());
        t.remap(
            |x| match x.checked_sub(base_count) {
                None => x,
                Some(i) if i < count => m.first_id + i,
                Some(_) => u32::MAX,
            },
            |s| match s.checked_sub(base_str) {
                None => s,
                Some(i) if i < str_len => m.first_str + i,
                Some(_) => u32::MAX,
            },
        );
        Ok(t)
    }
}

/// Opens a BTF file: mapped if it is the kernel's and the kernel allows
/// it, else read with `pread` as it is needed.
fn open_file(path: &Path) -> Result<Backing, KernelBtfError> {
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

/// Types and strings of a file read with pread are cached (each read is a
/// syscall); those of a mapped or in-memory file are decoded or borrowed
/// again on each look-up, which costs less than a cached copy.
impl TargetTypes for KernelBtf {
    fn type_by_id(&self, id: u32) -> Result<Cow<'_, BtfType>, BtfError> {
        if id == 0 {
            return Ok(Cow::Owned(BtfType::void()));
        }
        let cached = self.source_of(id).data.in_memory().is_none();
        if cached {
            if let Some(t) = self.types.borrow().get(&id) {
                return Ok(Cow::Owned(t.clone()));
            }
        }
        let t = self.decode(id)?;
        if cached {
            self.types.borrow_mut().insert(id, t.clone());
        }
        Ok(Cow::Owned(t))
    }

    fn string(&self, offset: u32) -> Result<Cow<'_, str>, BtfError> {
        if let Some(s) = self.strings.borrow().get(&offset) {
            return Ok(Cow::Owned(s.clone()));
        }
        let total = self.strings_total();
        let (src, local) = if offset < self.base.strings_len() {
            (&self.base, offset)
        } else {
            let m = self
                .modules
                .iter()
                .find(|m| offset >= m.first_str && offset - m.first_str < m.src.strings_len())
                .ok_or(BtfError::BadString { offset, len: total })?;
            (&m.src, offset - m.first_str)
        };
        let s = src.string(local, offset, total)?;
        if let Cow::Owned(s) = &s {
            self.strings.borrow_mut().insert(offset, s.clone());
        }
        Ok(s)
    }

    fn ids_by_essential_name(&self, name: &str) -> Result<Vec<u32>, BtfError> {
        self.names
            .get(&key_of(name))
            .cloned()
            .ok_or_else(|| BtfError::NotIndexed {
                name: name.to_owned(),
            })
    }

    fn kernel_id(&self, id: u32) -> u32 {
        match self.module_of(id) {
            Some(m) => self.base_count() + (id - m.first_id),
            None => id,
        }
    }

    fn module(&self, id: u32) -> Option<&str> {
        self.module_of(id).map(|m| m.src.name.as_str())
    }
}

/// The kernel's BTF object of module `name` (`BPF_BTF_GET_NEXT_ID`,
/// `BPF_BTF_GET_FD_BY_ID`, and each one's name).
pub fn module_btf_fd(name: &str) -> io::Result<OwnedFd> {
    let mut id = 0;
    while let Some(next) = sys::btf_next_id(id)? {
        id = next;
        let fd = match sys::btf_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Unloaded since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let info = sys::btf_info(fd.as_fd(), None, true)?;
        if info.kernel_btf && info.name == name {
            return Ok(fd);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("the kernel has no BTF object for module {name} (is it loaded?)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::btf::tests::Builder;
    use crate::obj::btf::{Btf, BtfKind, BtfTypeData};
    use BtfKind as K;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// A file of its own under the temp directory, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(tag: &str) -> TempPath {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            TempPath(std::env::temp_dir().join(format!(
                "rawbpf-kbtf-{}-{}-{tag}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            )))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0).or_else(|_| std::fs::remove_dir_all(&self.0));
        }
    }

    /// The same BTF opened from memory and from a file read with pread
    /// (64 KiB at a time: records and strings cross the reads).
    fn both_ways(bytes: Vec<u8>, wanted: &BTreeSet<String>) -> [KernelBtf; 2] {
        let file = TempPath::new("btf");
        std::fs::write(&file.0, &bytes).unwrap();
        let from_file = KernelBtf::open(&file.0, wanted).unwrap();
        assert!(matches!(from_file.base.data, Backing::File(_)));
        [KernelBtf::from_bytes(bytes, wanted).unwrap(), from_file]
    }

    /// One type of every kind, names with and without flavors.
    fn every_kind() -> Builder {
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, K::Int, 0, 4, &[(1 << 24) | 32]); // 1
        b.t(0, K::Ptr, 0, 3, &[]); // 2 -> 3
        let task = b.s("task_struct");
        let pid = b.s("pid");
        let next = b.s("next");
        b.t(task, K::Struct, 2, 16, &[pid, 1, 0, next, 2, 64]); // 3
        let old = b.s("task_struct___old");
        b.t(old, K::Struct, 1, 4, &[pid, 1, 0]); // 4
        let u = b.s("u");
        b.t(u, K::Union, 1, 4, &[pid, 1, 0]); // 5
        let e = b.s("e");
        let a = b.s("A");
        b.t(e, K::Enum, 1, 4, &[a, (-1i32) as u32]); // 6
        let fwd = b.s("fwd");
        b.t(fwd, K::Fwd, 0, 0, &[]); // 7
        let pid_t = b.s("pid_t");
        b.t(pid_t, K::Typedef, 0, 1, &[]); // 8
        b.t(0, K::Volatile, 0, 1, &[]); // 9
        b.t(0, K::Const, 0, 9, &[]); // 10
        b.t(0, K::Restrict, 0, 2, &[]); // 11
        let x = b.s("x");
        b.t(0, K::FuncProto, 1, 1, &[x, 1]); // 12
        let f = b.s("do_unlinkat");
        b.t(f, K::Func, 1, 12, &[]); // 13 (global linkage)
        let v = b.s("v");
        b.t(v, K::Var, 0, 1, &[1]); // 14
        let data = b.s(".data");
        b.t(data, K::Datasec, 1, 4, &[14, 0, 4]); // 15
        let float = b.s("float");
        b.t(float, K::Float, 0, 4, &[]); // 16
        let tag = b.s("tag");
        b.t(tag, K::DeclTag, 0, 13, &[(-1i32) as u32]); // 17
        b.t(tag, K::TypeTag, 0, 1, &[]); // 18
        let e64 = b.s("e64");
        let big = b.s("BIG");
        b.t(e64, K::Enum64, 1, 8, &[big, 1, 2]); // 19
        b.t(0, K::Array, 0, 0, &[1, 1, 7]); // 20
        let tp = b.s("btf_trace_sched_switch");
        b.t(tp, K::Struct, 0, 0, &[]); // 21: a decoy of another kind
        b.t(tp, K::Typedef, 0, 2, &[]); // 22
        b
    }

    /// Every name a type (or member, parameter, enumerator) of `btf` has.
    fn name_offsets(btf: &Btf) -> Vec<u32> {
        let mut out = Vec::new();
        for (_, t) in btf.types() {
            out.push(t.name_off);
            match &t.data {
                BtfTypeData::Members(m) => out.extend(m.iter().map(|m| m.name_off)),
                BtfTypeData::Params(p) => out.extend(p.iter().map(|p| p.name_off)),
                BtfTypeData::Enum(e) => out.extend(e.iter().map(|e| e.name_off)),
                BtfTypeData::Enum64(e) => out.extend(e.iter().map(|e| e.name_off)),
                _ => {}
            }
        }
        out
    }

    /// The lazy reader decodes every type and string as `Btf::parse` does.
    fn assert_same(k: &KernelBtf, btf: &Btf) {
        assert_eq!(k.len(), btf.len());
        for (id, t) in btf.types() {
            assert_eq!(k.type_by_id(id).unwrap().as_ref(), t, "type {id}");
        }
        for off in name_offsets(btf) {
            assert_eq!(
                k.string(off).unwrap(),
                btf.string(off).unwrap(),
                "string {off}"
            );
        }
        assert!(matches!(
            k.type_by_id(btf.len()),
            Err(BtfError::NoSuchType { .. })
        ));
    }

    #[test]
    fn decodes_every_kind_as_parse_does() {
        let bytes = every_kind().build();
        let btf = Btf::parse(&bytes).unwrap();
        let wanted = set(&[
            "task_struct",
            "do_unlinkat",
            "btf_trace_sched_switch",
            "pid",
            "nope",
        ]);
        for k in both_ways(bytes, &wanted) {
            decodes_as_parse_does(&k, &btf);
        }
    }

    fn decodes_as_parse_does(k: &KernelBtf, btf: &Btf) {
        assert_same(k, btf);
        // Twice: the second answers come from the caches.
        assert_same(k, btf);
        // Candidates by essential name, flavors included, in id order, as
        // the full parse's answer.
        for name in [
            "task_struct",
            "do_unlinkat",
            "btf_trace_sched_switch",
            "pid",
            "nope",
        ] {
            assert_eq!(
                k.ids_by_essential_name(name).unwrap(),
                TargetTypes::ids_by_essential_name(btf, name).unwrap(),
                "{name}"
            );
        }
        assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![3, 4]);
        // A flavored name asks for its essential name.
        assert_eq!(
            k.ids_by_essential_name("task_struct___new").unwrap(),
            vec![3, 4]
        );
        assert_eq!(k.ids_by_essential_name("pid").unwrap(), Vec::<u32>::new());
        assert_eq!(
            k.ids_by_essential_name("pid_t").unwrap_err().to_string(),
            "BTF name pid_t was not indexed (it was not among the names asked for when the BTF was opened)"
        );
        assert_eq!(k.kernel_id(3), 3);
        assert_eq!(k.module(3), None);
        assert!(k.string(10_000).is_err());
    }

    #[test]
    fn strings_and_records_across_buffer_boundaries() {
        let mut b = Builder::new();
        // A name that straddles the first 64 KiB read of the string section,
        // a string longer than the buffer, then a name after it.
        while b.strings.len() + 21 < CHUNK - 5 {
            b.s("filler_filler_filler");
        }
        let pad = CHUNK - 5 - b.strings.len();
        b.strings.extend(std::iter::repeat_n(b'x', pad));
        b.strings.push(0);
        let task = b.s("task_struct");
        assert!(task < CHUNK as u32 && task as usize + 11 > CHUNK);
        let long = "y".repeat(CHUNK + 100);
        b.s(&long);
        let f = b.s("do_unlinkat");
        let int = b.s("int");
        b.t(int, K::Int, 0, 4, &[32]); // 1
                                       // A struct whose record is longer than the read buffer.
        let m = b.s("m");
        let members: Vec<u32> = (0..6000).flat_map(|i| [m, 1, i * 32]).collect();
        b.t(task, K::Struct, 6000, 6000 * 4, &members); // 2
        b.t(0, K::FuncProto, 0, 1, &[]); // 3
        b.t(f, K::Func, 0, 3, &[]); // 4
        let bytes = b.build();
        let btf = Btf::parse(&bytes).unwrap();
        for k in both_ways(bytes, &set(&["task_struct", "do_unlinkat", &long])) {
            assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![2]);
            assert_eq!(k.ids_by_essential_name("do_unlinkat").unwrap(), vec![4]);
            assert_eq!(k.ids_by_essential_name(&long).unwrap(), Vec::<u32>::new());
            assert_same(&k, &btf);
        }
    }

    #[test]
    fn bad_blobs_are_errors_naming_the_file() {
        let good = every_kind().build();
        let mut bad = good.clone();
        bad[0] = 0;
        let e = KernelBtf::from_bytes(bad, &set(&["x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vmlinux: bad BTF magic 0xeb00 (expected 0xeb9f)"
        );
        // An unknown kind in the type section.
        let mut b = Builder::new();
        b.types
            .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0, 0]);
        let e = KernelBtf::from_bytes(b.build(), &set(&["x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vmlinux: BTF type 1 at byte 0: unknown kind 31"
        );
        // A record running past the section.
        let mut b = Builder::new();
        b.t(0, K::Struct, 0xffff, 4, &[]);
        let e = KernelBtf::from_bytes(b.build(), &set(&["x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vmlinux: BTF type 1 (STRUCT) at byte 0: its 786432 bytes run past the type section (12 bytes)"
        );
        let e = KernelBtf::from_bytes(good[..10].to_vec(), &set(&["x"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "vmlinux: BTF is truncated: the header ends at byte 24 but the section has 10 bytes"
        );
        let e = KernelBtf::open(Path::new("/nonexistent/btf"), &set(&["x"])).unwrap_err();
        assert_eq!(e.path(), Path::new("/nonexistent/btf"));
        assert!(
            e.to_string().starts_with("/nonexistent/btf: No such file"),
            "{e}"
        );
    }

    /// vmlinux: [1] int, [2] struct task_struct { int pid; int shared_name; }.
    /// modA (split): [3] proto int(int x), [4] FUNC mod_a_fn, [5] struct
    /// shared_name { [6] *next; } named by vmlinux's string, [6] ptr -> 5,
    /// [7] struct task_struct {}. modB: [3] FUNC mod_b_fn -> [4] proto void(),
    /// [5] int. modC: [3] int c_int (nothing wanted).
    /// Modules' names and split BTF.
    type Modules = Vec<(String, Vec<u8>)>;

    fn base_and_modules() -> (Vec<u8>, Modules, u32) {
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, K::Int, 0, 4, &[32]); // 1
        let task = b.s("task_struct");
        let pid = b.s("pid");
        let shared = b.s("shared_name");
        b.t(task, K::Struct, 2, 8, &[pid, 1, 0, shared, 1, 32]); // 2
        let base_str = b.strings.len() as u32;
        let base = b.build();

        let mut a = Builder::new();
        let s = |a: &mut Builder, name: &str| base_str + a.s(name);
        let x = s(&mut a, "x");
        a.t(0, K::FuncProto, 1, 1, &[x, 1]); // 3
        let fa = s(&mut a, "mod_a_fn");
        a.t(fa, K::Func, 0, 3, &[]); // 4
        let next = s(&mut a, "next");
        a.t(shared, K::Struct, 1, 8, &[next, 6, 0]); // 5
        a.t(0, K::Ptr, 0, 5, &[]); // 6
        a.t(task, K::Struct, 0, 0, &[]); // 7

        let mut bm = Builder::new();
        let fb = base_str + bm.s("mod_b_fn");
        bm.t(fb, K::Func, 0, 4, &[]); // 3
        bm.t(0, K::FuncProto, 0, 0, &[]); // 4
        bm.t(int, K::Int, 0, 4, &[32]); // 5

        let mut c = Builder::new();
        let ci = base_str + c.s("c_int");
        c.t(ci, K::Int, 0, 4, &[32]); // 3
        (
            base,
            vec![
                ("modA".into(), a.build()),
                ("modB".into(), bm.build()),
                ("modC".into(), c.build()),
            ],
            base_str,
        )
    }

    fn check_modules(k: &KernelBtf) {
        // modA's 5 types are private ids 3..=7, modB's 3 are 8..=10; modC is dropped.
        assert_eq!(k.modules().collect::<Vec<_>>(), ["modA", "modB"]);
        assert_eq!(k.len(), 11);
        // Names vmlinux has are not looked for in modules...
        assert_eq!(k.ids_by_essential_name("task_struct").unwrap(), vec![2]);
        // ...unless a module is named.
        assert_eq!(
            k.ids_by_essential_name("modA:task_struct").unwrap(),
            vec![7]
        );
        assert_eq!(
            k.ids_by_essential_name("vmlinux:task_struct").unwrap(),
            vec![2]
        );
        assert_eq!(k.ids_by_essential_name("mod_a_fn").unwrap(), vec![4]);
        assert_eq!(k.ids_by_essential_name("mod_b_fn").unwrap(), vec![8]);
        assert_eq!(k.ids_by_essential_name("shared_name").unwrap(), vec![5]);
        assert_eq!(
            k.ids_by_essential_name("nowhere").unwrap(),
            Vec::<u32>::new()
        );
        assert_eq!(
            (k.kernel_id(8), k.module(8), k.kernel_id(4), k.module(4)),
            (3, Some("modB"), 4, Some("modA"))
        );
        assert_eq!((k.kernel_id(2), k.module(2)), (2, None));
        // References inside a module move with it; those to vmlinux stay.
        let f = k.type_by_id(8).unwrap();
        assert_eq!((f.kind, f.size_or_type), (K::Func, 9));
        assert_eq!(k.string(f.name_off).unwrap(), "mod_b_fn");
        assert_eq!(k.type_by_id(9).unwrap().kind, K::FuncProto);
        assert_eq!(k.type_by_id(10).unwrap().kind, K::Int);
        assert_eq!(k.string(k.type_by_id(10).unwrap().name_off).unwrap(), "int");
        let proto = k.type_by_id(k.type_by_id(4).unwrap().size_or_type).unwrap();
        let BtfTypeData::Params(p) = &proto.data else {
            panic!("{proto:?}")
        };
        assert_eq!((proto.size_or_type, p[0].type_id), (1, 1));
        assert_eq!(k.string(p[0].name_off).unwrap(), "x");
        let shared = k.type_by_id(5).unwrap();
        assert_eq!(k.string(shared.name_off).unwrap(), "shared_name");
        let BtfTypeData::Members(m) = &shared.data else {
            panic!("{shared:?}")
        };
        assert_eq!(k.string(m[0].name_off).unwrap(), "next");
        assert_eq!(k.type_by_id(m[0].type_id).unwrap().size_or_type, 5);
        assert!(k.type_by_id(11).is_err());
    }

    fn module_wanted() -> BTreeSet<String> {
        set(&[
            "task_struct",
            "modA:task_struct",
            "vmlinux:task_struct",
            "mod_a_fn",
            "mod_b_fn",
            "shared_name",
            "nowhere",
        ])
    }

    #[test]
    fn module_ids_get_private_ranges() {
        let (base, modules, base_str) = base_and_modules();
        let k = KernelBtf::from_bytes_with_modules(base, modules, &module_wanted()).unwrap();
        check_modules(&k);
        // Strings of the second module follow the first's.
        let f = k.type_by_id(8).unwrap();
        assert!(f.name_off > base_str + 10, "{}", f.name_off);
    }

    #[test]
    fn module_files_are_read_only_when_needed() {
        let tmp = TempPath::new("modules");
        let dir = tmp.0.clone();
        std::fs::create_dir_all(&dir).unwrap();
        let (base, modules, _) = base_and_modules();
        std::fs::write(dir.join("vmlinux"), &base).unwrap();
        for (name, bytes) in &modules {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let k = KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &module_wanted()).unwrap();
        check_modules(&k);
        // A broken module file is an error naming it, when it is read...
        std::fs::write(dir.join("modB"), b"not btf at all, not at all").unwrap();
        let e =
            KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &module_wanted()).unwrap_err();
        assert_eq!(e.path(), dir.join("modB"));
        // ...and no error when every name is in vmlinux (modules are not read).
        let k = KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir, &set(&["task_struct"]))
            .unwrap();
        assert_eq!(k.modules().count(), 0);
        // Nor is the directory listed then.
        let k =
            KernelBtf::open_with_modules(&dir.join("vmlinux"), &dir.join("none"), &set(&["int"]))
                .unwrap();
        assert_eq!(k.ids_by_essential_name("int").unwrap(), vec![1]);
    }

    /// The running kernel's BTF, if this machine has it: the lazy reader
    /// sees task_struct (and what its `pid` member refers to) as the full
    /// parse does.
    #[test]
    fn host_vmlinux_matches_full_parse() {
        let path = Path::new(VMLINUX);
        let Ok(bytes) = std::fs::read(path) else {
            eprintln!("SKIP host_vmlinux_matches_full_parse: no {VMLINUX}");
            return;
        };
        let btf = Btf::parse(&bytes).unwrap();
        let wanted = set(&["task_struct", "pid_t", "do_unlinkat", "no_such_name_xyz"]);
        // Mapped where the kernel allows it (6.16+), and read with pread.
        let mapped = KernelBtf::open_kernel(&wanted).unwrap();
        if matches!(mapped.base.data, Backing::Map(_)) {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            assert!(maps.lines().any(|l| l.ends_with(VMLINUX)), "{maps}");
        }
        let file = File::open(path).unwrap();
        let read = KernelBtf::build(
            Source::open("vmlinux", path, Backing::File(file), false).unwrap(),
            Vec::new(),
            &wanted,
        )
        .unwrap();
        for k in [mapped, read] {
            matches_full_parse(&k, &btf);
        }
    }

    /// What the pread path costs on the running kernel (kernels before 6.16
    /// cannot map their BTF), against the mapped one.
    /// `cargo test --release -p rawbpf --lib pread_vs_mapped -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement"]
    fn pread_vs_mapped() {
        let path = Path::new(VMLINUX);
        let wanted = set(&[
            "task_struct",
            "mm_struct",
            "file",
            "inode",
            "sk_buff",
            "sock",
            "cred",
            "pid_t",
            "btf_trace_sched_switch",
            "do_unlinkat",
        ]);
        let best = |f: &dyn Fn() -> KernelBtf| {
            (0..20)
                .map(|_| {
                    let t = std::time::Instant::now();
                    drop(f());
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let mapped = best(&|| KernelBtf::open_kernel(&wanted).unwrap());
        let read = best(&|| {
            let file = File::open(path).unwrap();
            let src = Source::open("vmlinux", path, Backing::File(file), false).unwrap();
            KernelBtf::build(src, Vec::new(), &wanted).unwrap()
        });
        println!("open_kernel, 10 names: mapped {mapped:?}, pread {read:?}");
    }

    fn matches_full_parse(k: &KernelBtf, btf: &Btf) {
        assert_eq!(k.len(), btf.len());
        let ids = k.ids_by_essential_name("task_struct").unwrap();
        assert_eq!(
            ids,
            TargetTypes::ids_by_essential_name(btf, "task_struct").unwrap()
        );
        let task = ids
            .iter()
            .copied()
            .find(|&id| k.type_by_id(id).unwrap().kind == K::Struct)
            .expect("a STRUCT task_struct");
        let t = k.type_by_id(task).unwrap();
        assert_eq!(t.as_ref(), btf.type_by_id(task).unwrap());
        let BtfTypeData::Members(members) = &t.data else {
            panic!("{t:?}")
        };
        let pid = members
            .iter()
            .find(|m| k.string(m.name_off).unwrap() == "pid")
            .expect("task_struct.pid");
        // pid_t -> __kernel_pid_t -> int, each as the full parse has it.
        let mut id = pid.type_id;
        for _ in 0..4 {
            let t = k.type_by_id(id).unwrap();
            assert_eq!(t.as_ref(), btf.type_by_id(id).unwrap());
            assert_eq!(
                k.string(t.name_off).unwrap(),
                btf.string(t.name_off).unwrap()
            );
            if t.kind != K::Typedef {
                break;
            }
            id = t.size_or_type;
        }
        assert_eq!(
            k.string(k.type_by_id(pid.type_id).unwrap().name_off)
                .unwrap(),
            "pid_t"
        );
        for name in ["pid_t", "do_unlinkat", "no_such_name_xyz"] {
            assert_eq!(
                k.ids_by_essential_name(name).unwrap(),
                TargetTypes::ids_by_essential_name(btf, name).unwrap(),
                "{name}"
            );
        }
    }
}

debug_is_display!(KernelBtfError);
