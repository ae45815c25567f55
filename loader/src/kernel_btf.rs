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
//! Its other rooms: `source` (one BTF file, its bytes and the two streaming
//! passes), `names` (the wanted names and the string offsets that carry
//! them), [`struct_ops`] (a struct_ops map's kernel struct, wrapper and
//! value), `tests`.

mod attach;
mod names;
mod source;
pub mod struct_ops;

pub use attach::{
    attach_btf_names, attach_btf_target, check_attach_targets, load_attach, trial_load, AttachBtf,
    AttachTargetError, LoadAttach,
};

use crate::obj::btf::{BtfError, BtfType};
use crate::obj::core::{essential_name, TargetTypes};
use crate::sys;
use names::{Names, Wanted};
use source::{open_file, Backing, Source, CHUNK};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The kernel's own BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
/// Where the kernel puts each module's split BTF, one file per module.
pub const MODULE_DIR: &str = "/sys/kernel/btf";

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

/// Whether `path` starts with the ELF magic (a vmlinux rather than raw BTF).
fn is_elf(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).is_ok_and(|mut f| f.read_exact(&mut magic).is_ok())
        && magic == *b"\x7fELF"
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
    /// One standalone BTF file (`--btf FILE`): raw BTF, or the `.BTF`
    /// section of a vmlinux ELF ([`read_btf_file`](crate::probe::read_btf_file));
    /// no module BTF.
    pub fn open(path: &Path, wanted: &BTreeSet<String>) -> Result<KernelBtf, KernelBtfError> {
        let data = if is_elf(path) {
            let bytes = crate::probe::read_btf_file(path).map_err(|e| KernelBtfError::Io {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidData, e.reason()),
            })?;
            Backing::Bytes(bytes)
        } else {
            open_file(path)?
        };
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

    /// Indexes vmlinux for every wanted name, then, if some bare name has
    /// no vmlinux type or a name is qualified by a module, the module BTF
    /// files `list_modules` gives (listed only then).
    fn build_lazy(
        mut base: Source,
        list_modules: impl FnOnce() -> Result<Vec<ModuleFile>, KernelBtfError>,
        wanted: &BTreeSet<String>,
    ) -> Result<KernelBtf, KernelBtfError> {
        let mut buf = vec![0u8; CHUNK];
        let split: Vec<(Option<&str>, &str)> = wanted.iter().map(|w| split_wanted(w)).collect();
        // vmlinux: every name, bare or qualified (a module's type may be
        // named by a string vmlinux's string section already holds).
        let all = Wanted::new(split.iter().map(|(_, n)| *n));
        let base_names = base.names(&all, &mut buf).map_err(btf_err(&base.path))?;
        let (base_offsets, base_hits) = base
            .scan_types(1, |off| base_names.get(off), &mut buf)
            .map_err(btf_err(&base.path))?;
        let mut names = vmlinux_index(&split, base_hits);
        let search = ModuleSearch {
            missing: split
                .iter()
                .filter(|(m, n)| m.is_none() && names.get(*n).is_some_and(|ids| ids.is_empty()))
                .map(|(_, n)| *n)
                .collect(),
            qualified: split
                .iter()
                .filter_map(|&(m, n)| Some((m.filter(|m| *m != "vmlinux")?, n)))
                .collect(),
            base_count: base_offsets.len().saturating_sub(1) as u32 + 1,
            base_str: base.strings_len(),
        };
        let kept = if search.missing.is_empty() && search.qualified.is_empty() {
            Vec::new()
        } else {
            search.run(list_modules()?, &base_names, &mut names, &mut buf)?
        };
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

/// Maps a BTF parse error to the file it is in.
fn btf_err(path: &Path) -> impl FnOnce(BtfError) -> KernelBtfError {
    let path = path.to_owned();
    move |source| KernelBtfError::Btf { path, source }
}

/// Wanted name → vmlinux ids: a bare name's and `vmlinux:name`'s types in
/// vmlinux, and an empty list for now for `module:name` (filled if the
/// module is searched).
fn vmlinux_index(
    split: &[(Option<&str>, &str)],
    hits: Vec<(&str, u32)>,
) -> HashMap<String, Vec<u32>> {
    let mut by_name: HashMap<&str, Vec<u32>> = HashMap::new();
    for (name, id) in hits {
        by_name.entry(name).or_default().push(id);
    }
    let mut names = HashMap::new();
    for &(module, n) in split {
        let ids = by_name.get(n).cloned().unwrap_or_default();
        match module {
            None => names.insert(n.to_owned(), ids),
            Some("vmlinux") => names.insert(format!("vmlinux:{n}"), ids),
            Some(m) => names.insert(format!("{m}:{n}"), Vec::new()),
        };
    }
    names
}

/// What the module BTF files are searched for, and where vmlinux's ids
/// and strings end (each kept module's private ranges start after them).
struct ModuleSearch<'a> {
    /// Bare wanted names vmlinux has no type for.
    missing: BTreeSet<&'a str>,
    /// (module, name) of the `module:name` wanted names.
    qualified: Vec<(&'a str, &'a str)>,
    /// vmlinux's type count, void included: a module's first kernel id.
    base_count: u32,
    /// vmlinux's string section length: a module's first string offset.
    base_str: u32,
}

impl<'a> ModuleSearch<'a> {
    /// Searches each module file for the names it may hold; keeps those
    /// that have some, each with the next private id and string range, and
    /// records their ids in `names`.
    fn run(
        &self,
        files: Vec<ModuleFile>,
        base_names: &Names<'_, 'a>,
        names: &mut HashMap<String, Vec<u32>>,
        buf: &mut [u8],
    ) -> Result<Vec<Module>, KernelBtfError> {
        let (mut next_id, mut next_str) = (self.base_count, self.base_str);
        let mut kept = Vec::new();
        for file in files {
            let (name, path) = (file.name.clone(), file.path.clone());
            let own: Vec<&str> = self
                .qualified
                .iter()
                .filter(|(m, _)| *m == name)
                .map(|(_, n)| *n)
                .collect();
            let needed = Wanted::new(self.missing.iter().copied().chain(own.iter().copied()));
            if needed.is_empty() {
                continue;
            }
            let Some((src, hits)) = self.index_module(file, &needed, base_names, buf)? else {
                continue;
            };
            let module = Module {
                first_id: next_id,
                first_str: next_str,
                src,
            };
            for (n, kid) in hits {
                let id = module.first_id + (kid - self.base_count);
                if self.missing.contains(n) {
                    names.entry(n.to_owned()).or_default().push(id);
                }
                if own.contains(&n) {
                    names.entry(format!("{name}:{n}")).or_default().push(id);
                }
            }
            (next_id, next_str) = match (
                next_id.checked_add(module.src.count()),
                next_str.checked_add(module.src.strings_len()),
            ) {
                (Some(i), Some(s)) => (i, s),
                _ => {
                    return Err(KernelBtfError::Btf {
                        path,
                        source: BtfError::Overflow { id: next_id },
                    })
                }
            };
            kept.push(module);
        }
        Ok(kept)
    }

    /// Opens one module's BTF and finds its types with `needed` names (by
    /// kernel id); `None` if it has none.
    #[allow(clippy::type_complexity)]
    fn index_module(
        &self,
        file: ModuleFile,
        needed: &Wanted<'a>,
        base_names: &Names<'_, 'a>,
        buf: &mut [u8],
    ) -> Result<Option<(Source, Vec<(&'a str, u32)>)>, KernelBtfError> {
        let data = match file.bytes {
            Some(b) => Backing::Bytes(b),
            None => open_file(&file.path)?,
        };
        let mut src = Source::open(&file.name, &file.path, data, true)?;
        // A module's name offsets below vmlinux's string length are
        // vmlinux's strings.
        let in_base = base_names.only(needed);
        let own_names = src.names(needed, buf).map_err(btf_err(&file.path))?;
        let named = |off: u32| match off.checked_sub(self.base_str) {
            None => in_base.get(off),
            Some(local) => own_names.get(local),
        };
        let (offsets, hits) = src
            .scan_types(self.base_count, named, buf)
            .map_err(btf_err(&file.path))?;
        drop(own_names);
        if hits.is_empty() {
            return Ok(None);
        }
        src.offsets = offsets;
        Ok(Some((src, hits)))
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
mod tests;

debug_is_display!(KernelBtfError);
