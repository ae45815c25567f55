//! A map the kernel holds: created from its spec (with libbpf's fix-ups
//! for the kernel it runs on), or reused from a pin. Its type and sizes are
//! the kernel's own (`BPF_OBJ_GET_INFO_BY_FD`, read once when the map is
//! made or opened), so the buffers rawbpf hands the kernel always fit.

use super::error::LoadError;
use super::pin::{pin_name, reuse_pin};
use super::{hex, LoadOptions};
use crate::obj::{MapOrigin, MapSpec, Pinning};
use crate::sys::{self, ElemSizes};
use crate::uapi::MapType;
use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A map element: key bytes and value bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A map the kernel holds. Its type, sizes and id are what the kernel
/// reports for its fd; nothing outside rawbpf can change them, so the
/// buffers `lookup`, `update` and `entries` give the kernel are always as
/// long as it reads or writes.
///
/// Its fields are not public: a map whose value size could be shrunk would
/// let a lookup hand the kernel a buffer too short for what it writes.
///
/// ```compile_fail,E0616
/// # fn f(mut map: rawbpf::load::Map) {
/// map.value_size = 1; // private: error[E0616]
/// let _ = map.lookup(&0u32.to_le_bytes());
/// # }
/// ```
#[derive(Debug)]
pub struct Map {
    name: String,
    kernel_name: String,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    id: u32,
    /// Bytes of a key and of a value in user memory (a per-CPU value is
    /// one 8-byte-aligned slot per possible CPU).
    elem: ElemSizes,
    reused_pin: bool,
    pinned_by_name: Option<PathBuf>,
    fd: OwnedFd,
}

impl Map {
    /// A map from its fd, with the type and sizes the kernel reports for it.
    pub(super) fn from_fd(
        name: &str,
        kernel_name: &str,
        fd: OwnedFd,
        info: &sys::MapInfo,
    ) -> Result<Map, LoadError> {
        let map_type = MapType(info.map_type);
        let value = if is_percpu(map_type) {
            (info.value_size as usize).next_multiple_of(8) * possible_cpus()?
        } else {
            info.value_size as usize
        };
        Ok(Map {
            name: name.to_owned(),
            kernel_name: kernel_name.to_owned(),
            map_type,
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
            id: info.id,
            elem: ElemSizes {
                key: info.key_size as usize,
                value,
            },
            reused_pin: false,
            pinned_by_name: None,
            fd,
        })
    }

    /// Its name in the object (`prog_array`, `.bss`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The (at most 15-byte) name the kernel knows it by.
    pub fn kernel_name(&self) -> &str {
        &self.kernel_name
    }

    /// Its type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes (per CPU for per-CPU maps).
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// `max_entries` (for a ring buffer: its size in bytes).
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// `map_flags`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Its kernel id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Bytes of a value as [`lookup`](Map::lookup) returns it and
    /// [`update`](Map::update) takes it: `value_size`, or for a per-CPU map
    /// `value_size` rounded up to 8, once per possible CPU.
    pub fn value_len(&self) -> usize {
        self.elem.value
    }

    /// Whether an existing pin was reused rather than a map created.
    pub fn reused_pin(&self) -> bool {
        self.reused_pin
    }

    /// Where the map is pinned by name (`LIBBPF_PIN_BY_NAME`), if it is.
    pub fn pinned_by_name(&self) -> Option<&Path> {
        self.pinned_by_name.as_deref()
    }

    pub(super) fn set_pinned_by_name(&mut self, path: PathBuf) {
        self.pinned_by_name = Some(path);
    }

    pub(super) fn set_reused_pin(mut self, path: PathBuf) -> Map {
        self.reused_pin = true;
        self.pinned_by_name = Some(path);
        self
    }

    /// The map's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes of a key and of a value as user space sees them.
    pub(crate) fn elem_sizes(&self) -> ElemSizes {
        self.elem
    }

    /// Writes one element.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), LoadError> {
        sys::map_update(self.fd(), self.elem, key, value, 0).map_err(|source| {
            LoadError::MapUpdate {
                map: self.name.clone(),
                what: format!("key {}", hex(key)),
                source,
            }
        })
    }

    /// Deletes one element; `Ok(false)` when the key was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool, LoadError> {
        sys::map_delete(self.fd(), self.elem, key).map_err(|source| LoadError::MapUpdate {
            map: self.name.clone(),
            what: format!("key {} (deleting it)", hex(key)),
            source,
        })
    }

    /// Reads one element.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LoadError> {
        let mut value = vec![0u8; self.elem.value];
        let found = sys::map_lookup(self.fd(), self.elem, key, &mut value).map_err(|source| {
            LoadError::MapRead {
                map: self.name.clone(),
                source,
            }
        })?;
        Ok(found.then_some(value))
    }

    /// Every (key, value), in the kernel's key order. Prog arrays and
    /// map-in-maps read back program and map ids.
    pub fn entries(&self) -> Result<Vec<Entry>, LoadError> {
        let read_err = |source| LoadError::MapRead {
            map: self.name.clone(),
            source,
        };
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        // Bounded: a hash can change under us, so never walk more than max_entries.
        for _ in 0..self.max_entries.max(1) {
            let mut next = vec![0u8; self.elem.key];
            if !sys::map_next_key(self.fd(), self.elem, key.as_deref(), &mut next)
                .map_err(read_err)?
            {
                break;
            }
            if let Some(value) = self.lookup(&next)? {
                out.push((next.clone(), value));
            }
            key = Some(next);
        }
        Ok(out)
    }
}

fn is_percpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PERCPU_HASH
            | MapType::PERCPU_ARRAY
            | MapType::LRU_PERCPU_HASH
            | MapType::PERCPU_CGROUP_STORAGE
    )
}

/// Map types that refuse BTF key/value type ids (their values are fds or
/// kernel-defined).
fn takes_btf_types(t: MapType) -> bool {
    !matches!(
        t,
        MapType::PROG_ARRAY
            | MapType::PERF_EVENT_ARRAY
            | MapType::CGROUP_ARRAY
            | MapType::ARRAY_OF_MAPS
            | MapType::HASH_OF_MAPS
            | MapType::DEVMAP
            | MapType::DEVMAP_HASH
            | MapType::SOCKMAP
            | MapType::SOCKHASH
            | MapType::CPUMAP
            | MapType::XSKMAP
            | MapType::REUSEPORT_SOCKARRAY
            | MapType::STACK_TRACE
            | MapType::QUEUE
            | MapType::STACK
            | MapType::RINGBUF
            | MapType::USER_RINGBUF
    )
}

/// Where the kernel lists the CPUs that may ever come online.
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// The number of possible CPUs (per-CPU values are this many times larger;
/// a perf event array has a slot for each), from
/// `/sys/devices/system/cpu/possible`, as libbpf and aya read it. Read
/// once: it never changes while the system runs. There is no fallback:
/// the CPUs this process may run on (affinity, cgroups) can be fewer, and
/// a per-CPU buffer sized by them would be too short for the kernel.
pub fn possible_cpus() -> Result<usize, LoadError> {
    static POSSIBLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if let Some(&n) = POSSIBLE.get() {
        return Ok(n);
    }
    let err = |source| LoadError::PossibleCpus {
        path: PathBuf::from(POSSIBLE_CPUS),
        source,
    };
    let text = std::fs::read_to_string(POSSIBLE_CPUS).map_err(err)?;
    let n = parse_cpu_list(text.trim())
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{:?} is not a CPU list like 0-3,5", text.trim()),
            ))
        })?;
    Ok(*POSSIBLE.get_or_init(|| n))
}

/// Counts CPUs in a list like `0-3,5`.
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0;
    for part in s.split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => {
                b.parse::<usize>()
                    .ok()?
                    .checked_sub(a.parse::<usize>().ok()?)?
                    + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// The page size (a ring buffer's size is a power-of-2 multiple of it).
fn page_size() -> u32 {
    use nix::unistd::{sysconf, SysconfVar};
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

/// The kernel name of a map: its own name, or for global data libbpf's
/// `<first 8 bytes of the object name><section>` (`pipeline.bss`), with
/// characters the kernel refuses replaced by `_`.
fn kernel_map_name(m: &MapSpec, object_name: &str) -> String {
    let name = if m.origin == MapOrigin::GlobalData {
        let prefix: String = object_name.chars().take(8).collect();
        format!("{prefix}{}", m.name)
    } else {
        m.name.clone()
    };
    name.chars()
        .take(sys::OBJ_NAME_LEN - 1)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn map_create_attrs<'a>(
    m: &MapSpec,
    name: &'a str,
    inner: Option<BorrowedFd<'a>>,
    btf: Option<BorrowedFd<'a>>,
) -> sys::MapCreate<'a> {
    let has_types = m.btf_key_type_id != 0 || m.btf_value_type_id != 0;
    sys::MapCreate {
        map_type: m.map_type.0,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        flags: m.flags,
        numa_node: m.numa_node,
        map_extra: m.map_extra,
        name,
        inner_map_fd: inner,
        btf: btf
            .filter(|_| has_types && takes_btf_types(m.map_type))
            .map(|fd| (fd, m.btf_key_type_id, m.btf_value_type_id)),
    }
}

/// What the kernel is asked for: the declaration with libbpf's fix-ups
/// (perf event arrays sized to the CPUs, ring buffers' sizes), each said
/// in a warning. Only maps that may need them read the CPU count and page
/// size.
fn for_this_kernel<'a>(
    m: &'a MapSpec,
    warnings: &mut Vec<String>,
) -> Result<Cow<'a, MapSpec>, LoadError> {
    if !m.needs_kernel_fixups() {
        return Ok(Cow::Borrowed(m));
    }
    let cpus = u32::try_from(possible_cpus()?).unwrap_or(u32::MAX);
    let (m, fixups) = m.for_kernel(cpus, page_size());
    warnings.extend(fixups);
    Ok(m)
}

/// `BPF_MAP_CREATE` failed for `m`: the error, with the kernel rule the map
/// breaks when rawbpf knows it.
fn create_error(m: &MapSpec, source: io::Error) -> LoadError {
    LoadError::MapCreate {
        map: m.name.clone(),
        rule: (source.raw_os_error() == Some(libc::EINVAL))
            .then(|| m.kernel_rule_broken())
            .flatten(),
        source,
    }
}

/// Creates map `m` (a map-in-map with a template of its inner maps, closed
/// after); where the kernel refuses BTF type ids for it, libbpf retries
/// without them, and so does this (with a warning).
fn create_fd(
    m: &MapSpec,
    kernel_name: &str,
    opts: &LoadOptions,
    btf: Option<BorrowedFd<'_>>,
    warnings: &mut Vec<String>,
) -> Result<OwnedFd, LoadError> {
    let inner = match &m.inner {
        Some(inner) => {
            let name = kernel_map_name(inner, &opts.object_name);
            let attrs = map_create_attrs(inner, &name, None, btf);
            Some(sys::map_create(&attrs).map_err(|e| create_error(m, e))?)
        }
        None => None,
    };
    let attrs = map_create_attrs(m, kernel_name, inner.as_ref().map(|f| f.as_fd()), btf);
    match sys::map_create(&attrs) {
        Ok(fd) => Ok(fd),
        Err(e) if attrs.btf.is_some() => {
            let fd = sys::map_create(&sys::MapCreate { btf: None, ..attrs })
                .map_err(|e| create_error(m, e))?;
            warnings.push(format!(
                "map {}: created without BTF types, the kernel refused them ({e})",
                m.name
            ));
            Ok(fd)
        }
        Err(e) => Err(create_error(m, e)),
    }
}

/// Creates one map of the object (or reuses its pin), with its initial
/// data written and `.rodata` frozen.
pub(super) fn create_map(
    m: &MapSpec,
    opts: &LoadOptions,
    btf: Option<BorrowedFd<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Map, LoadError> {
    let m = for_this_kernel(m, warnings)?;
    let m: &MapSpec = &m;
    let kernel_name = kernel_map_name(m, &opts.object_name);
    if let Some(r) = opts.replace_maps.iter().find(|r| r.name == m.name) {
        return replacement(m, r, &kernel_name);
    }
    if let (Pinning::ByName, Some(dir)) = (m.pinning, &opts.pin_by_name_dir) {
        if let Some(map) = reuse_pin(m, &dir.join(pin_name(&m.name)), &kernel_name)? {
            return Ok(map);
        }
    }
    let fd = create_fd(m, &kernel_name, opts, btf, warnings)?;
    let info = sys::map_info(fd.as_fd()).map_err(|e| create_error(m, e))?;
    let map = Map::from_fd(&m.name, &kernel_name, fd, &info)?;
    if let Some(data) = &m.data {
        sys::map_update(map.fd(), map.elem, &0u32.to_le_bytes(), data, 0).map_err(|source| {
            LoadError::MapUpdate {
                map: m.name.clone(),
                what: "its initial data".into(),
                source,
            }
        })?;
    }
    if m.is_rodata() {
        sys::map_freeze(map.fd()).map_err(|source| LoadError::MapUpdate {
            map: m.name.clone(),
            what: "freezing it".into(),
            source,
        })?;
    }
    Ok(map)
}

/// The map given for `m`, if it matches the definition.
fn replacement(
    m: &MapSpec,
    r: &super::MapReplacement,
    kernel_name: &str,
) -> Result<Map, LoadError> {
    let read = |source| LoadError::MapRead {
        map: m.name.clone(),
        source,
    };
    let fd = r.fd().try_clone_to_owned().map_err(read)?;
    let info = sys::map_info(fd.as_fd()).map_err(read)?;
    if let Some((what, given, ours)) = super::pin::mismatch(m, &info) {
        return Err(LoadError::ReplacementMismatch {
            map: m.name.clone(),
            id: info.id,
            what,
            given,
            ours,
        });
    }
    Map::from_fd(&m.name, kernel_name, fd, &info)
}

/// The error for a map `maps` does not have, listing those it has.
pub(super) fn map_not_found(maps: &[Map], name: &str) -> LoadError {
    LoadError::NotFound {
        kind: "map",
        name: name.to_owned(),
        known: maps
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A map by its name in the object.
pub(super) fn find_map<'a>(maps: &'a [Map], name: &str) -> Result<&'a Map, LoadError> {
    maps.iter()
        .find(|m| m.name == name)
        .ok_or_else(|| map_not_found(maps, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjectSpec;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn kernel_names() {
        let spec = ObjectSpec::parse(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../programs/obj/global_data.bpf.o"
            ))
            .unwrap(),
        )
        .unwrap();
        let name = |m: &str| kernel_map_name(spec.map(m).unwrap(), "global_data.bpf");
        assert_eq!(name(".bss"), "global_d.bss");
        assert_eq!(name(".rodata"), "global_d.rodata");
        assert_eq!(pin_name(".rodata"), "_rodata");
    }
}
