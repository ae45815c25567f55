//! Every BPF link the kernel has, with its program and hook (what `rawbpf
//! list` shows), read one of two ways:
//!
//! - **bpf(2) per link**: `BPF_LINK_GET_NEXT_ID`, `BPF_LINK_GET_FD_BY_ID`,
//!   `BPF_OBJ_GET_INFO_BY_FD` (twice for links holding a name), `close`:
//!   five calls a link, on every kernel. [`list_links`] does only this.
//! - **the link iterator** (`iter/bpf_link`, where the kernel has it): our own program
//!   (programs/link_iter.bpf.c, embedded) writes one record per link and
//!   one `read()` returns them all; links of a kind it does not decode on
//!   the running kernel are asked about with bpf(2), by the id the record
//!   gives. Loading it reads kernel BTF (CO-RE, its attach target), which
//!   costs milliseconds, so a caller that lists often keeps its link
//!   pinned: [`ListOptions::iterator_pin`], [`LinkIterator`]. The library
//!   pins nothing unless asked; the CLI asks, at [`default_iterator_pin`].
//!
//! Both give the same [`KernelLink`]s: a decoded record fills the same
//! words of `struct bpf_link_info` that bpf(2) would, and [`link_target`]
//! reads them. A pinned iterator is used only if it is ours: an iterator
//! link over `bpf_link` whose program is a tracing program named
//! `rawbpf_links`, at a path named by a hash of the embedded object (so an
//! older rawbpf's iterator is never read with this one's record layout).
//! Its own link is left out of the list. Pinning is one `BPF_OBJ_PIN`,
//! which is atomic: a kill leaves no pin or a whole one; two first uses
//! race on it and the loser uses the winner's.

use super::group::{groups, GroupError};
use crate::load::{Collection, LoadError, LoadOptions};
use crate::obj::ObjectSpec;
use crate::pins::PIN_ROOT;
use crate::sys;
use crate::uapi::{AttachType, ProgramType};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A link the kernel has, as `rawbpf list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelLink {
    /// The link's id.
    pub id: u32,
    /// `enum bpf_link_type`.
    pub link_type: u32,
    /// The attached program's id (0 once detached).
    pub prog_id: u32,
    /// The program's name, as the kernel keeps it (15 bytes at most).
    pub prog_name: String,
    /// The hook, where the link's info says it cheaply (empty otherwise).
    pub target: String,
    /// The rawbpf group it belongs to.
    pub group: Option<String>,
}

/// The name of an `enum bpf_link_type`.
pub fn link_type_name(t: u32) -> String {
    const NAMES: [&str; 15] = [
        "unspec",
        "raw_tracepoint",
        "tracing",
        "cgroup",
        "iter",
        "netns",
        "xdp",
        "perf_event",
        "kprobe_multi",
        "struct_ops",
        "netfilter",
        "tcx",
        "uprobe_multi",
        "netkit",
        "sockmap",
    ];
    NAMES
        .get(t as usize)
        .map_or_else(|| format!("link_type_{t}"), |n| (*n).to_owned())
}

/// The hook of a link, in words, from its info's union.
/// `name` is the one the link holds (see [`sys::link_details`]).
fn link_target(d: &sys::LinkDetails, tp_name: Option<String>) -> String {
    let u = &d.union;
    let attach = |t: u32| AttachType(t).to_string();
    match d.link_type {
        1 => tp_name.unwrap_or_default(),
        2 => format!("{} btf_id {} (btf object {})", attach(u[0]), u[2], u[1]),
        3 => format!(
            "cgroup id {} {}",
            u64::from(u[0]) | (u64::from(u[1]) << 32),
            attach(u[2])
        ),
        5 => format!("netns ino {} {}", u[0], attach(u[1])),
        6 => format!("ifindex {}", u[0]),
        7 => {
            let kind = match u[0] {
                1 => "uprobe",
                2 => "uretprobe",
                3 => "kprobe",
                4 => "kretprobe",
                5 => "tracepoint",
                6 => "perf event",
                _ => "",
            };
            match tp_name {
                Some(name) => format!("{kind} {name}"),
                None => kind.to_owned(),
            }
        }
        8 => format!("{} functions", u[2]),
        9 => format!("struct_ops map id {}", u[0]),
        10 => format!(
            "netfilter pf {} hook {} priority {}",
            u[0], u[1], u[2] as i32
        ),
        11 | 13 => format!("ifindex {} {}", u[0], attach(u[1])),
        14 => format!("map id {} {}", u[0], attach(u[1])),
        _ => String::new(),
    }
}

/// How [`list_links_with`] reads the kernel's links.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListOptions {
    /// Read them with the link iterator kept pinned here (in bpffs): opened
    /// if the pin is there and ours, else loaded and pinned here (where
    /// pinning fails, used unpinned this once). `None`: bpf(2) per link,
    /// nothing loaded or pinned. Any failure of the iterator falls back to
    /// bpf(2) per link.
    pub iterator_pin: Option<PathBuf>,
}

impl ListOptions {
    /// With the iterator pinned at `path`.
    pub fn with_iterator_pin(path: impl Into<PathBuf>) -> ListOptions {
        ListOptions {
            iterator_pin: Some(path.into()),
        }
    }
}

/// Every BPF link the kernel has (`BPF_LINK_GET_NEXT_ID`), each with its
/// program and hook, marking those of rawbpf's groups.
pub fn list_links() -> Result<Vec<KernelLink>, GroupError> {
    list_links_with(&ListOptions::default())
}

/// [`list_links`], read as `opts` says. The pinned iterator's own link is
/// not listed.
pub fn list_links_with(opts: &ListOptions) -> Result<Vec<KernelLink>, GroupError> {
    let mut in_group = HashMap::new();
    for g in groups()? {
        for id in g.links.iter().filter_map(|(_, id)| *id) {
            in_group.insert(id, g.name.clone());
        }
    }
    let mut lister = Lister {
        names: HashMap::new(),
        in_group,
        own: None,
        out: Vec::new(),
    };
    if let Some(pin) = &opts.iterator_pin {
        if let Ok(iter) = LinkIterator::pinned_or_load(pin) {
            lister.own = Some(iter.link_id);
            if let Ok(records) = iter.read() {
                for r in &records {
                    lister.record(r);
                }
                return Ok(lister.out);
            }
        }
    }
    lister.walk()?;
    Ok(lister.out)
}

/// What the listing gathers.
struct Lister {
    /// Program names by id: links often share a program (one per CPU, one
    /// per hook), and each is opened once.
    names: HashMap<u32, String>,
    in_group: HashMap<u32, String>,
    /// The iterator's own link: not listed.
    own: Option<u32>,
    out: Vec<KernelLink>,
}

impl Lister {
    fn walk(&mut self) -> Result<(), GroupError> {
        let ids_err = |source| GroupError::Pin {
            path: PathBuf::from("BPF_LINK_GET_NEXT_ID"),
            action: "listing the kernel's links",
            source,
        };
        let mut id = 0;
        while let Some(next) = sys::link_next_id(id).map_err(ids_err)? {
            id = next;
            self.ask(id);
        }
        Ok(())
    }

    /// One link, with bpf(2). Gone since its id was read: not listed.
    fn ask(&mut self, id: u32) {
        let Ok(fd) = sys::link_get_fd_by_id(id) else {
            return;
        };
        let Ok((details, tp_name)) = sys::link_details(fd.as_fd()) else {
            return;
        };
        let prog_name = self.prog_name(details.prog_id);
        self.push(id, &details, tp_name, prog_name);
    }

    /// One record of the iterator; bpf(2) for what it did not decode.
    fn record(&mut self, r: &IterLink) {
        // Id 0: a link the kernel is still making (between its prime and
        // settle) or failed to make. The iterator walks the id table,
        // where such a link already sits, but BPF_LINK_GET_FD_BY_ID
        // refuses it, so the bpf(2) walk never lists it: neither does this.
        if r.id == 0 {
            return;
        }
        if !r.decoded {
            return self.ask(r.id);
        }
        self.names
            .entry(r.prog_id)
            .or_insert_with(|| r.prog_name.clone());
        self.push(r.id, &r.details, r.name.clone(), r.prog_name.clone());
    }

    fn prog_name(&mut self, prog_id: u32) -> String {
        self.names
            .entry(prog_id)
            .or_insert_with(|| {
                sys::prog_get_fd_by_id(prog_id)
                    .and_then(|p| sys::prog_info(p.as_fd()))
                    .map(|i| c_text(&i.name))
                    .unwrap_or_default()
            })
            .clone()
    }

    fn push(
        &mut self,
        id: u32,
        details: &sys::LinkDetails,
        tp_name: Option<String>,
        prog_name: String,
    ) {
        if self.own == Some(id) {
            return;
        }
        self.out.push(KernelLink {
            id,
            link_type: details.link_type,
            prog_id: details.prog_id,
            prog_name,
            target: link_target(details, tp_name),
            group: self.in_group.get(&id).cloned(),
        });
    }
}

/// Text up to the first NUL.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The iterator's object, built from programs/link_iter.bpf.c.
const OBJECT: &[u8] = include_bytes!("../../../programs/obj/link_iter.bpf.o");
/// Its program.
const PROGRAM: &str = "rawbpf_links";

/// FNV-1a of the embedded object: names its pin, so that a pin of another
/// build's iterator (another record layout) is never read.
const fn object_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < OBJECT.len() {
        h ^= OBJECT[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// Where rawbpf keeps what it caches in bpffs.
pub fn cache_dir() -> PathBuf {
    Path::new(PIN_ROOT).join("cache")
}

/// The pin the CLI keeps its link iterator at:
/// `/sys/fs/bpf/rawbpf/cache/link_iter-<hash of the embedded object>`.
pub fn default_iterator_pin() -> PathBuf {
    cache_dir().join(format!("link_iter-{:016x}", object_hash()))
}

/// Removes every link iterator pinned in [`cache_dir`] (this build's and
/// older ones'); returns how many. Nothing there is not an error.
pub fn remove_iterator_cache() -> io::Result<usize> {
    let entries = match std::fs::read_dir(cache_dir()) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("link_iter-")
        {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// What can go wrong with the link iterator (callers of
/// [`list_links_with`] never see these: it falls back to bpf(2)).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum LinkIterError {
    /// Loading the iterator program failed (a kernel without
    /// `iter/bpf_link`, as 5.10; no kernel BTF; no privileges).
    #[error("loading the link iterator: {0}")]
    Load(#[from] Box<LoadError>),
    /// The embedded object does not parse (a bad build).
    #[error("the link iterator's object: {0}")]
    Parse(#[from] Box<crate::obj::ParseError>),
    /// A bpf(2) or bpffs call failed.
    #[error("{action}: {source}")]
    Sys {
        /// What was being done.
        action: &'static str,
        /// errno.
        source: io::Error,
    },
    /// A pin that is not rawbpf's link iterator.
    #[error("{}: not rawbpf's link iterator", .0.display())]
    NotOurs(PathBuf),
    /// What the iterator wrote is not whole records.
    #[error("the link iterator wrote {0} bytes, not whole records")]
    BadRecords(usize),
}

fn sys_err(action: &'static str) -> impl FnOnce(io::Error) -> LinkIterError {
    move |source| LinkIterError::Sys { action, source }
}

/// rawbpf's link iterator: a link of our `iter/bpf_link` program, from
/// which each [`LinkIterator::records`] reads every link.
#[derive(Debug)]
pub struct LinkIterator {
    fd: OwnedFd,
    /// The iterator's own link.
    link_id: u32,
}

/// One link as the iterator wrote it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IterLink {
    /// The link's id.
    pub id: u32,
    /// `enum bpf_link_type`.
    pub link_type: u32,
    /// The attached program's id (0: none).
    pub prog_id: u32,
    /// The program's name.
    pub prog_name: String,
    /// Whether the iterator decoded the link's target itself; if not,
    /// [`list_links_with`] asks bpf(2) about this link.
    pub decoded: bool,
    /// Type, id, program id, and the union's words.
    details: sys::LinkDetails,
    /// The name a raw tracepoint or tracepoint link holds.
    name: Option<String>,
}

/// programs/link_iter.bpf.c's `struct link_record`.
const RECORD_LEN: usize = 188;
const RECORD_MAGIC: u32 = 0x6b6e_6c72;
const RECORD_DECODED: u32 = 1;
const RECORD_NAME: u32 = 2;

impl LinkIterator {
    /// Loads the iterator (reads kernel BTF) and creates its link,
    /// unpinned: it goes when the value is dropped.
    pub fn load() -> Result<LinkIterator, LinkIterError> {
        let spec = ObjectSpec::parse(OBJECT).map_err(Box::new)?;
        let opts = LoadOptions {
            object_name: "link_iter".into(),
            ..LoadOptions::default()
        };
        let collection = Collection::load(&spec, &opts).map_err(Box::new)?;
        let program = collection.program(PROGRAM).map_err(Box::new)?;
        let fd = sys::link_create_ifindex(program.fd(), 0, AttachType::TRACE_ITER.0, 0)
            .map_err(sys_err("BPF_LINK_CREATE (iter/bpf_link)"))?;
        let (details, _) = sys::link_details(fd.as_fd()).map_err(sys_err("reading its link"))?;
        Ok(LinkIterator {
            fd,
            link_id: details.id,
        })
    }

    /// Opens the iterator pinned at `path`, if it is ours (see the
    /// module's documentation).
    pub fn open_pinned(path: &Path) -> Result<LinkIterator, LinkIterError> {
        let c = path_c(path)?;
        let fd = sys::obj_get(&c).map_err(sys_err("BPF_OBJ_GET"))?;
        let not_ours = || LinkIterError::NotOurs(path.to_owned());
        // What the pin holds, from the kernel's fdinfo: a link (a program
        // or map pinned there has no link_type), an iterator over links.
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .map_err(sys_err("reading the pin's fdinfo"))?;
        let field = |key: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(str::trim)
        };
        if field("link_type") != Some("iter") || field("target_name") != Some("bpf_link") {
            return Err(not_ours());
        }
        let link_id = field("link_id").and_then(|v| v.parse().ok());
        let prog_id = field("prog_id").and_then(|v| v.parse().ok());
        let (Some(link_id), Some(prog_id)) = (link_id, prog_id) else {
            return Err(not_ours());
        };
        let prog = sys::prog_get_fd_by_id(prog_id)
            .and_then(|p| sys::prog_info(p.as_fd()))
            .map_err(sys_err("reading the pin's program"))?;
        if prog.prog_type != ProgramType::TRACING.0 || c_text(&prog.name) != PROGRAM {
            return Err(not_ours());
        }
        Ok(LinkIterator { fd, link_id })
    }

    /// Pins the iterator's link at `path` (its directory is made).
    pub fn pin(&self, path: &Path) -> Result<(), LinkIterError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(sys_err("making the pin's directory"))?;
        }
        sys::obj_pin(self.fd.as_fd(), &path_c(path)?).map_err(sys_err("BPF_OBJ_PIN"))
    }

    /// The iterator pinned at `path` if it is there and ours; else loaded
    /// and pinned there (another process pinning first: theirs, if ours).
    /// A path that cannot be pinned, or holds something else, leaves this
    /// one unpinned.
    pub fn pinned_or_load(path: &Path) -> Result<LinkIterator, LinkIterError> {
        if let Ok(iter) = LinkIterator::open_pinned(path) {
            return Ok(iter);
        }
        let iter = LinkIterator::load()?;
        match iter.pin(path) {
            Ok(()) => {
                remove_older_pins(path);
                Ok(iter)
            }
            Err(LinkIterError::Sys { source, .. })
                if source.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(LinkIterator::open_pinned(path).unwrap_or(iter))
            }
            Err(_) => Ok(iter),
        }
    }

    /// The iterator's own link id (it lists itself).
    pub fn link_id(&self) -> u32 {
        self.link_id
    }

    /// Runs the iterator once: a record per link (its own included).
    pub fn read(&self) -> Result<Vec<IterLink>, LinkIterError> {
        let iter = sys::iter_create(self.fd.as_fd()).map_err(sys_err("BPF_ITER_CREATE"))?;
        let mut bytes = Vec::with_capacity(256 * 1024);
        std::fs::File::from(iter)
            .read_to_end(&mut bytes)
            .map_err(sys_err("reading the link iterator"))?;
        parse_records(&bytes)
    }
}

/// Once a new iterator is pinned in [`cache_dir`], those another build of
/// rawbpf pinned there (`link_iter-<other hash>`) go: each holds a loaded
/// program. A caller's own directory is left alone.
fn remove_older_pins(path: &Path) {
    let (Some(dir), Some(ours)) = (path.parent(), path.file_name()) else {
        return;
    };
    if dir != cache_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name != ours && name.to_string_lossy().starts_with("link_iter-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn path_c(path: &Path) -> Result<CString, LinkIterError> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| sys_err("a pin path")(io::Error::from_raw_os_error(libc::EINVAL)))
}

/// `struct link_record`s, little-endian words then two names.
fn parse_records(bytes: &[u8]) -> Result<Vec<IterLink>, LinkIterError> {
    if !bytes.len().is_multiple_of(RECORD_LEN) {
        return Err(LinkIterError::BadRecords(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / RECORD_LEN);
    for rec in bytes.chunks_exact(RECORD_LEN) {
        let word = |i: usize| u32::from_le_bytes(rec[i * 4..i * 4 + 4].try_into().unwrap());
        if word(0) != RECORD_MAGIC {
            return Err(LinkIterError::BadRecords(bytes.len()));
        }
        let flags = word(4);
        let mut link = sys::LinkDetails::default();
        link.id = word(1);
        link.link_type = word(2);
        link.prog_id = word(3);
        for (i, w) in link.union.iter_mut().take(7).enumerate() {
            *w = word(5 + i);
        }
        let name = c_text(&rec[64..]);
        out.push(IterLink {
            id: link.id,
            link_type: link.link_type,
            prog_id: link.prog_id,
            details: link,
            prog_name: c_text(&rec[48..64]),
            name: (flags & RECORD_NAME != 0 && !name.is_empty()).then_some(name),
            decoded: flags & RECORD_DECODED != 0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_types_are_named() {
        assert_eq!(link_type_name(2), "tracing");
        assert_eq!(link_type_name(14), "sockmap");
        assert_eq!(link_type_name(99), "link_type_99");
    }

    #[test]
    fn records_parse() {
        let mut rec = vec![0u8; RECORD_LEN];
        let words = [RECORD_MAGIC, 7, 1, 42, RECORD_DECODED | RECORD_NAME, 9];
        for (i, w) in words.iter().enumerate() {
            rec[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        rec[48..52].copy_from_slice(b"prog");
        rec[64..69].copy_from_slice(b"sched");
        let r = parse_records(&rec).unwrap();
        assert_eq!((r[0].id, r[0].link_type, r[0].prog_id), (7, 1, 42));
        assert_eq!(r[0].details.union[0], 9);
        assert_eq!(r[0].prog_name, "prog");
        assert_eq!(r[0].name.as_deref(), Some("sched"));
        assert!(r[0].decoded);
        assert!(parse_records(&rec[1..]).is_err());
        rec[0] = 0;
        assert!(parse_records(&rec).is_err());
    }

    #[test]
    fn the_pin_names_the_object() {
        let pin = default_iterator_pin();
        assert!(pin.starts_with("/sys/fs/bpf/rawbpf/cache"));
        assert_eq!(
            pin.file_name().unwrap().len(),
            "link_iter-".len() + 16,
            "{pin:?}"
        );
    }
}
