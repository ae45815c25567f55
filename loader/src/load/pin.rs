//! bpffs: pinning a collection's programs and maps, reusing maps pinned by
//! name, and the few things a caller does with a pin by its path.

use super::error::LoadError;
use super::map::Map;
use super::program::Program;
use super::{fd_number, Collection};
use crate::obj::{MapSpec, ObjectSpec, Pinning};
use crate::sys;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

impl Collection {
    /// Pins the maps that ask for it by name, unless a pin was reused.
    #[inline(never)]
    pub(super) fn pin_by_name(&mut self, spec: &ObjectSpec, dir: &Path) -> Result<(), LoadError> {
        let wanted: Vec<&str> = spec
            .maps
            .iter()
            .filter(|m| m.pinning == Pinning::ByName)
            .map(|m| m.name.as_str())
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        ensure_bpffs_dir(dir)?;
        let mut pins = PinGuard::default();
        for map in self.maps.iter_mut().filter(|m| wanted.contains(&m.name())) {
            let path = dir.join(pin_name(map.name()));
            if !map.reused_pin() {
                pins.pin(map.fd(), &path)?;
            }
            map.set_pinned_by_name(path);
        }
        pins.keep();
        Ok(())
    }

    /// Pins every program and map under `dir` (created if missing; bpffs is
    /// mounted at /sys/fs/bpf first if it is not). bpffs refuses dots in
    /// names, so each `.` becomes `_` (`.bss` → `_bss`). Returns the paths.
    /// If any pin fails, those made before it are removed.
    pub fn pin(&self, dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
        ensure_bpffs_dir(dir)?;
        let mut pins = PinGuard::default();
        for p in &self.programs {
            pins.pin(p.fd(), &dir.join(pin_name(&p.name)))?;
        }
        for m in self.maps.iter().filter(|m| m.pinned_by_name().is_none()) {
            let path = dir.join(pin_name(m.name()));
            if pins.paths.contains(&path) {
                return Err(LoadError::Pin {
                    path,
                    action: "two objects map to this pin name",
                    source: io::Error::from_raw_os_error(libc::EEXIST),
                });
            }
            pins.pin(m.fd(), &path)?;
        }
        Ok(pins.keep())
    }
}

/// Pins made so far, removed on drop unless kept.
#[derive(Default)]
struct PinGuard {
    paths: Vec<PathBuf>,
}

impl PinGuard {
    fn pin(&mut self, fd: BorrowedFd<'_>, path: &Path) -> Result<(), LoadError> {
        sys::obj_pin(fd, &c_path(path)?).map_err(|source| LoadError::Pin {
            path: path.to_owned(),
            action: "pinning",
            source,
        })?;
        self.paths.push(path.to_owned());
        Ok(())
    }

    fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.paths)
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A bpffs file name for an object name: bpffs refuses dots.
pub fn pin_name(name: &str) -> String {
    name.replace('.', "_")
}

pub(crate) fn c_path(path: &Path) -> Result<CString, LoadError> {
    CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| LoadError::Pin {
        path: path.to_owned(),
        action: "using the path",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// `create_dir_all`, but when `dir`'s parent is missing, the levels below
/// `known` (a directory that exists) are made top-down: a new chain's path
/// takes one call per level instead of a failed call and a call per level.
fn make_dirs(dir: &Path, known: &Path) -> io::Result<()> {
    let exists = |r: io::Result<()>, d: &Path| match r {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => Ok(()),
        r => r,
    };
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        r => return exists(r, dir),
    }
    if !dir.starts_with(known) {
        return std::fs::create_dir_all(dir);
    }
    let mut levels: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| a.starts_with(known) && *a != known)
        .collect();
    levels.reverse();
    for level in levels {
        exists(std::fs::create_dir(level), level)?;
    }
    Ok(())
}

/// Creates `dir` on bpffs, mounting bpffs at /sys/fs/bpf if it is not there yet.
pub fn ensure_bpffs_dir(dir: &Path) -> Result<(), LoadError> {
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(c"/sys/fs/bpf").unwrap_or(false) {
        mount_bpffs(c"/sys/fs/bpf").map_err(|source| LoadError::Pin {
            path: root.to_owned(),
            action: "mounting bpffs",
            source,
        })?;
    }
    // Another rawbpf may remove an empty parent (its own failed attach
    // tidying up) between create_dir_all making it and making the next
    // level: make the path again.
    let mut tries = 0;
    loop {
        match make_dirs(dir, root) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 8 => tries += 1,
            Err(source) => {
                return Err(LoadError::Pin {
                    path: dir.to_owned(),
                    action: "creating the directory",
                    source,
                })
            }
        }
    }
    if !is_bpffs(&c_path(dir)?).unwrap_or(false) {
        return Err(LoadError::Pin {
            path: dir.to_owned(),
            action: "not on a bpffs mount (mount -t bpf bpf DIR, or use /sys/fs/bpf/...)",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    Ok(())
}

/// Whether `path` is on a bpffs mount.
pub(crate) fn is_bpffs(path: &CStr) -> io::Result<bool> {
    use nix::sys::statfs::{statfs, BPF_FS_MAGIC};
    Ok(statfs(path)?.filesystem_type() == BPF_FS_MAGIC)
}

/// Mounts bpffs at `path` (mode 0700, as `mount -t bpf bpf PATH` does).
fn mount_bpffs(path: &CStr) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    mount(
        Some(c"bpf"),
        path,
        Some(c"bpf"),
        MsFlags::empty(),
        Some(c"mode=0700"),
    )?;
    Ok(())
}

/// Opens the object pinned at `path` (`BPF_OBJ_GET`).
fn open_pin(path: &Path, action: &'static str) -> Result<std::os::fd::OwnedFd, LoadError> {
    sys::obj_get(&c_path(path)?).map_err(|source| LoadError::Pin {
        path: path.to_owned(),
        action,
        source,
    })
}

impl Program {
    /// The program pinned at `path`, as the kernel describes it: its
    /// name is the kernel's (at most 15 bytes).
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Program, LoadError> {
        let path = path.as_ref();
        let fd = open_pin(path, "opening the pinned program")?;
        ensure_kind(fd.as_fd(), path, "bpf-prog", "not a pinned program")?;
        Program::from_fd(fd).map_err(|source| LoadError::Pin {
            path: path.to_owned(),
            action: "reading the pinned program",
            source,
        })
    }
}

impl Map {
    /// The map pinned at `path`, with the type and sizes the kernel
    /// reports for it; its name is the kernel's (at most 15 bytes).
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Map, LoadError> {
        let path = path.as_ref();
        let fd = open_pin(path, "opening the pinned map")?;
        ensure_kind(fd.as_fd(), path, "bpf-map", "not a pinned map")?;
        let info = sys::map_info(fd.as_fd()).map_err(|source| LoadError::Pin {
            path: path.to_owned(),
            action: "reading the pinned map",
            source,
        })?;
        Map::from_kernel(fd, &info)
    }

    /// The map with this kernel id (`BPF_MAP_GET_FD_BY_ID`: a map another
    /// process loaded, such as one `rawbpf list` shows), as
    /// [`Map::from_pin`] describes it.
    pub fn from_id(id: u32) -> Result<Map, LoadError> {
        let read = |source| LoadError::MapRead {
            map: format!("id {id}"),
            source,
        };
        let fd = sys::map_get_fd_by_id(id).map_err(read)?;
        let info = sys::map_info(fd.as_fd()).map_err(read)?;
        Map::from_kernel(fd, &info)
    }

    /// A map named as the kernel names it (at most 15 bytes).
    fn from_kernel(fd: std::os::fd::OwnedFd, info: &sys::MapInfo) -> Result<Map, LoadError> {
        let end = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.name.len());
        let name = String::from_utf8_lossy(&info.name[..end]).into_owned();
        Map::from_fd(&name, &name, fd, info)
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD` answers for programs, maps and links alike,
/// each in its own layout: where /proc says which one `fd` is, refuse
/// another `kind` (`bpf-prog`, `bpf-map`) than the one asked for.
fn ensure_kind(
    fd: BorrowedFd<'_>,
    path: &Path,
    kind: &str,
    action: &'static str,
) -> Result<(), LoadError> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd_number(fd)));
    let expected = format!("anon_inode:{kind}");
    if link.is_ok_and(|l| l.as_os_str() != expected.as_str()) {
        return Err(LoadError::Pin {
            path: path.to_owned(),
            action,
            source: io::Error::from_raw_os_error(libc::EINVAL),
        });
    }
    Ok(())
}

/// `BPF_LINK_DETACH` of the link pinned at `path`: its program stops
/// running now, whoever else holds the link (removing the pin alone leaves
/// the release to the kernel, a moment later). The pin itself stays.
pub fn link_detach(path: impl AsRef<Path>) -> Result<(), LoadError> {
    let path = path.as_ref();
    let link = open_pin(path, "opening the pinned link")?;
    sys::link_detach(link.as_fd()).map_err(|source| LoadError::Pin {
        path: path.to_owned(),
        action: "detaching the pinned link",
        source,
    })
}

/// The first of type, sizes, max_entries and flags in which the kernel's
/// map `info` differs from the definition `m`: (what, the map's, ours).
pub(super) fn mismatch(m: &MapSpec, info: &sys::MapInfo) -> Option<(&'static str, u32, u32)> {
    [
        ("type", info.map_type, m.map_type.0),
        ("key size", info.key_size, m.key_size),
        ("value size", info.value_size, m.value_size),
        ("max_entries", info.max_entries, m.max_entries),
        ("flags", info.map_flags, m.flags),
    ]
    .into_iter()
    .find(|(_, a, b)| a != b)
}

/// Opens a map pinned by name and checks it matches the definition.
#[inline(never)]
pub(super) fn reuse_pin(
    m: &MapSpec,
    path: &Path,
    kernel_name: &str,
) -> Result<Option<Map>, LoadError> {
    let fd = match sys::obj_get(&c_path(path)?) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(source) => {
            return Err(LoadError::Pin {
                path: path.to_owned(),
                action: "opening the pinned map",
                source,
            })
        }
    };
    let info = sys::map_info(fd.as_fd()).map_err(|source| LoadError::Pin {
        path: path.to_owned(),
        action: "reading the pinned map",
        source,
    })?;
    if let Some((what, pinned, ours)) = mismatch(m, &info) {
        return Err(LoadError::PinMismatch {
            map: m.name.clone(),
            path: path.to_owned(),
            what,
            pinned,
            ours,
        });
    }
    let map = Map::from_fd(&m.name, kernel_name, fd, &info)?;
    Ok(Some(map.set_reused_pin(path.to_owned())))
}
