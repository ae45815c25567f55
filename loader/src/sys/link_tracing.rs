//! The `BPF_LINK_CREATE` variants of tracing hooks that take more than a
//! target fd (kprobe and uprobe multi-links), and `BPF_ITER_CREATE`.

use super::{bpf, bpf_fd, cmd, fd_u32, ptr, InfoAttr, ProgInfo};
use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::fd::{BorrowedFd, OwnedFd};

/// `link_create` with its `perf_event` part.
#[repr(C)]
#[derive(Default)]
struct PerfEventLinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    bpf_cookie: u64,
}

/// `BPF_LINK_CREATE` of a perf-event link (attach type `BPF_PERF_EVENT`,
/// 5.15+) on an open perf event, with the cookie `bpf_get_attach_cookie`
/// gives the program (0: none).
pub fn link_create_perf_event(
    prog: BorrowedFd<'_>,
    event: BorrowedFd<'_>,
    attach_type: u32,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut attr = PerfEventLinkAttr {
        prog_fd: fd_u32(prog),
        target_fd: fd_u32(event),
        attach_type,
        flags: 0,
        bpf_cookie: cookie,
    };
    bpf_fd(cmd::LINK_CREATE, &mut attr)
}

/// The ids of the maps a program uses (`bpf_prog_info.map_ids`).
pub fn prog_map_ids(prog: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let count = super::prog_info(prog)?.nr_map_ids;
    let mut ids = vec![0u32; count as usize];
    let mut info = ProgInfo {
        nr_map_ids: count,
        map_ids: ids.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(prog),
        info_len: size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
    ids.truncate(info.nr_map_ids.min(count) as usize);
    Ok(ids)
}

/// `BPF_MAP_GET_FD_BY_ID`: opens a map by its kernel id.
pub fn map_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [id, 0, 0, 0];
    bpf_fd(cmd::MAP_GET_FD_BY_ID, &mut attr)
}

/// `BPF_F_KPROBE_MULTI_RETURN` / `BPF_F_UPROBE_MULTI_RETURN`.
pub const MULTI_RETURN: u32 = 1;

/// `link_create` with its `kprobe_multi` part.
#[repr(C)]
#[derive(Default)]
struct KprobeMultiAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    kprobe_flags: u32,
    cnt: u32,
    syms: u64,
    addrs: u64,
    cookies: u64,
}

/// `BPF_LINK_CREATE` of a kprobe multi-link (attach type
/// `BPF_TRACE_KPROBE_MULTI`) on every function named in `symbols`.
pub fn link_create_kprobe_multi(
    prog: BorrowedFd<'_>,
    attach_type: u32,
    symbols: &[&CStr],
    flags: u32,
) -> io::Result<OwnedFd> {
    let pointers: Vec<u64> = symbols.iter().map(|s| s.as_ptr() as u64).collect();
    let mut attr = KprobeMultiAttr {
        prog_fd: fd_u32(prog),
        attach_type,
        kprobe_flags: flags,
        cnt: pointers.len() as u32,
        syms: ptr(&pointers),
        ..Default::default()
    };
    bpf_fd(cmd::LINK_CREATE, &mut attr)
}

/// `link_create` with its `uprobe_multi` part.
#[repr(C)]
#[derive(Default)]
struct UprobeMultiAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    path: u64,
    offsets: u64,
    ref_ctr_offsets: u64,
    cookies: u64,
    cnt: u32,
    uprobe_flags: u32,
    pid: u32,
    _pad: u32,
}

/// `BPF_LINK_CREATE` of a uprobe multi-link (attach type
/// `BPF_TRACE_UPROBE_MULTI`) at file `offsets` of `path`, in process
/// `pid` only (0: all).
pub fn link_create_uprobe_multi(
    prog: BorrowedFd<'_>,
    attach_type: u32,
    path: &CStr,
    offsets: &[u64],
    pid: u32,
    flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = UprobeMultiAttr {
        prog_fd: fd_u32(prog),
        attach_type,
        path: path.as_ptr() as u64,
        offsets: ptr(offsets),
        cnt: offsets.len() as u32,
        uprobe_flags: flags,
        pid,
        ..Default::default()
    };
    bpf_fd(cmd::LINK_CREATE, &mut attr)
}

#[repr(C)]
#[derive(Default)]
struct IterCreateAttr {
    link_fd: u32,
    flags: u32,
}

/// `BPF_ITER_CREATE`: a new readable fd on an iterator link; each read
/// runs the iterator program, which writes the text read.
pub fn iter_create(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = IterCreateAttr {
        link_fd: fd_u32(link),
        flags: 0,
    };
    bpf_fd(cmd::ITER_CREATE, &mut attr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The attrs match `union bpf_attr`'s `link_create` parts.
    #[test]
    fn attr_layouts() {
        assert_eq!(offset_of!(KprobeMultiAttr, kprobe_flags), 16);
        assert_eq!(offset_of!(KprobeMultiAttr, syms), 24);
        assert_eq!(size_of::<KprobeMultiAttr>(), 48);
        assert_eq!(offset_of!(UprobeMultiAttr, path), 16);
        assert_eq!(offset_of!(UprobeMultiAttr, cnt), 48);
        assert_eq!(offset_of!(UprobeMultiAttr, pid), 56);
        assert_eq!(size_of::<UprobeMultiAttr>(), 64);
        assert_eq!(size_of::<IterCreateAttr>(), 8);
        assert_eq!(offset_of!(PerfEventLinkAttr, bpf_cookie), 16);
    }
}
