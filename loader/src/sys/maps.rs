//! Map commands whose key is NULL or that take a value back out: queues and
//! stacks (`BPF_MAP_LOOKUP_ELEM` with no key peeks, `BPF_MAP_UPDATE_ELEM`
//! with no key pushes) and `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (pop; a hash
//! element read and removed at once). The kernel refuses a non-NULL key
//! pointer for a map whose key size is 0, so these pass 0, never an empty
//! slice's dangling pointer.

use super::{bpf, cmd, fd_u32, too_short, ElemSizes, MapElemAttr};
use std::io;
use std::os::fd::BorrowedFd;

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;

/// The key pointer for `key`: NULL for a map without keys.
fn key_ptr(sizes: ElemSizes, key: Option<&[u8]>) -> io::Result<u64> {
    match key {
        None if sizes.key == 0 => Ok(0),
        None => Err(too_short("key")),
        Some(k) if k.len() < sizes.key => Err(too_short("key")),
        Some(k) => Ok(super::ptr(k)),
    }
}

/// `Ok(false)` for ENOENT (no such key, an empty queue or stack).
fn found(r: io::Result<i64>) -> io::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_UPDATE_ELEM` with `key` (NULL when `None`: a queue or stack
/// push) and `flags` (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
pub fn map_update_flags(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: Option<&[u8]>,
    value: &[u8],
    flags: u64,
) -> io::Result<()> {
    if value.len() < sizes.value {
        return Err(too_short("value"));
    }
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: key_ptr(sizes, key)?,
        value: super::ptr(value),
        flags,
        ..Default::default()
    };
    bpf(cmd::MAP_UPDATE_ELEM, &mut attr).map(drop)
}

/// `BPF_MAP_LOOKUP_ELEM` with `key`, NULL when `None` (a queue's or
/// stack's peek); `Ok(false)` when absent or empty.
pub fn map_lookup_opt(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: Option<&[u8]>,
    value: &mut [u8],
) -> io::Result<bool> {
    read_elem(cmd::MAP_LOOKUP_ELEM, fd, sizes, key, value)
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: reads and removes one element (a
/// queue's or stack's pop with `None`); `Ok(false)` when absent or empty.
pub fn map_lookup_and_delete(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: Option<&[u8]>,
    value: &mut [u8],
) -> io::Result<bool> {
    read_elem(MAP_LOOKUP_AND_DELETE_ELEM, fd, sizes, key, value)
}

/// A command that reads one element's value into `value` (checked long
/// enough), with `key` or NULL.
fn read_elem(
    command: u32,
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    key: Option<&[u8]>,
    value: &mut [u8],
) -> io::Result<bool> {
    if value.len() < sizes.value {
        return Err(too_short("value"));
    }
    let mut attr = MapElemAttr {
        map_fd: fd_u32(fd),
        key: key_ptr(sizes, key)?,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    found(bpf(command, &mut attr))
}
