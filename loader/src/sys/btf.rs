//! What `rawbpf map` needs to read any map of the system: walking map ids
//! (`BPF_MAP_GET_NEXT_ID`), the whole `struct bpf_map_info` (its BTF ids),
//! a BTF object's raw bytes, and `BPF_MAP_LOOKUP_BATCH`.

use super::{bpf, fd_u32, ptr, too_short, ElemSizes, InfoAttr};
use std::io;
use std::mem::size_of;
use std::os::fd::BorrowedFd;

/// `BPF_MAP_GET_NEXT_ID`.
const MAP_GET_NEXT_ID: u32 = 12;
/// `BPF_MAP_LOOKUP_BATCH`.
const MAP_LOOKUP_BATCH: u32 = 24;
/// `BPF_OBJ_GET_INFO_BY_FD`.
const OBJ_GET_INFO_BY_FD: u32 = 15;

/// `BPF_MAP_GET_NEXT_ID`: the id of the map after `id` (0 starts);
/// `Ok(None)` after the last.
pub fn map_next_id(id: u32) -> io::Result<Option<u32>> {
    let mut attr = [id, 0, 0, 0];
    match bpf(MAP_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr[1])),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_PROG_GET_NEXT_ID`: the id of the program after `id` (0 starts);
/// `Ok(None)` after the last.
pub fn prog_next_id(id: u32) -> io::Result<Option<u32>> {
    const PROG_GET_NEXT_ID: u32 = 11;
    let mut attr = [id, 0, 0, 0];
    match bpf(PROG_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr[1])),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `struct bpf_map_info` as of 5.16 (older kernels fill what they know
/// and leave the rest zero).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct MapInfoFull {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: [u8; super::OBJ_NAME_LEN],
    pub ifindex: u32,
    pub btf_vmlinux_value_type_id: u32,
    pub netns_dev: u64,
    pub netns_ino: u64,
    pub btf_id: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub btf_vmlinux_id: u32,
    pub map_extra: u64,
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a map, all of `struct bpf_map_info`.
pub fn map_info_full(fd: BorrowedFd<'_>) -> io::Result<MapInfoFull> {
    let mut info = MapInfoFull::default();
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: size_of::<MapInfoFull>() as u32,
        info: &mut info as *mut MapInfoFull as u64,
    };
    bpf(OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// The raw bytes of the BTF object `fd` (`BPF_OBJ_GET_INFO_BY_FD` once for
/// its size, once with a buffer that size), and whether it is the kernel's.
pub fn btf_data(fd: BorrowedFd<'_>) -> io::Result<(Vec<u8>, bool)> {
    let info = super::btf_info(fd, None, false)?;
    let mut data = vec![0u8; info.size as usize];
    let again = super::btf_info(fd, Some(&mut data), false)?;
    // It cannot grow, but never hand back bytes the kernel did not write.
    data.truncate((again.size as usize).min(data.len()));
    Ok((data, info.kernel_btf))
}

/// The `batch` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// The buffers of one `BPF_MAP_LOOKUP_BATCH`.
pub struct Batch<'a> {
    /// Where the previous call stopped (`None`: the start). As long as
    /// `out_batch`.
    pub in_batch: Option<&'a [u8]>,
    /// Where this call stops: at least 8 bytes and the key size.
    pub out_batch: &'a mut [u8],
    /// Room for `count` keys.
    pub keys: &'a mut [u8],
    /// Room for `count` values (per-CPU: each a whole per-CPU value).
    pub values: &'a mut [u8],
}

/// `BPF_MAP_LOOKUP_BATCH` of at most `count` elements: how many the kernel
/// wrote, and whether it has no more (ENOENT, which comes with the last
/// elements). Other errors as the kernel gives them (EINVAL or ENOTSUPP
/// where the map type has no batch lookup, ENOSPC where a hash bucket
/// holds more than `count`).
pub fn map_lookup_batch(
    fd: BorrowedFd<'_>,
    sizes: ElemSizes,
    count: u32,
    b: Batch<'_>,
) -> io::Result<(u32, bool)> {
    let n = count as usize;
    let token = sizes.key.max(8);
    if b.keys.len() < sizes.key * n
        || b.out_batch.len() < token
        || b.in_batch.is_some_and(|i| i.len() < token)
    {
        return Err(too_short("key"));
    }
    if b.values.len() < sizes.value * n {
        return Err(too_short("value"));
    }
    let mut attr = BatchAttr {
        in_batch: b.in_batch.map_or(0, ptr),
        out_batch: b.out_batch.as_mut_ptr() as u64,
        keys: b.keys.as_mut_ptr() as u64,
        values: b.values.as_mut_ptr() as u64,
        count,
        map_fd: fd_u32(fd),
        ..Default::default()
    };
    match bpf(MAP_LOOKUP_BATCH, &mut attr) {
        Ok(_) => Ok((attr.count.min(count), false)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok((attr.count.min(count), true)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(offset_of!(MapInfoFull, btf_id), 64);
        assert_eq!(offset_of!(MapInfoFull, btf_value_type_id), 72);
        assert_eq!(size_of::<MapInfoFull>(), 88);
        assert_eq!(offset_of!(BatchAttr, count), 32);
        assert_eq!(offset_of!(BatchAttr, map_fd), 36);
        assert_eq!(size_of::<BatchAttr>(), 56);
    }
}
