//! Walking the kernel's BPF links: `BPF_LINK_GET_NEXT_ID`,
//! `BPF_LINK_GET_FD_BY_ID`, and `struct bpf_link_info` with the start of its
//! per-type union (what `rawbpf list` shows as a link's target).

use super::{bpf, bpf_fd, fd_u32, InfoAttr};
use std::io;
use std::mem::size_of;
use std::os::fd::{BorrowedFd, OwnedFd};

/// `BPF_LINK_GET_FD_BY_ID`.
const LINK_GET_FD_BY_ID: u32 = 30;
/// `BPF_LINK_GET_NEXT_ID`.
const LINK_GET_NEXT_ID: u32 = 31;

/// `BPF_LINK_GET_NEXT_ID`: the id of the link after `id` (0 starts);
/// `Ok(None)` after the last.
pub fn link_next_id(id: u32) -> io::Result<Option<u32>> {
    let mut attr = [id, 0, 0, 0];
    match bpf(LINK_GET_NEXT_ID, &mut attr) {
        Ok(_) => Ok(Some(attr[1])),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_LINK_GET_FD_BY_ID`: opens a link by its kernel id.
pub fn link_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [id, 0, 0, 0];
    bpf_fd(LINK_GET_FD_BY_ID, &mut attr)
}

/// `struct bpf_link_info` up to the first 32 bytes of its union, read as
/// words: which words mean what depends on `link_type` (see
/// [`LinkDetails::target`]).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct LinkDetails {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    _pad: u32,
    /// The union, as u32 words.
    pub union: [u32; 8],
}

/// `BPF_OBJ_GET_INFO_BY_FD` for a link, with its union part, and the name
/// the link holds where it has one: a raw tracepoint's, or a perf-event
/// link's tracepoint, kprobe function or uprobe file (6.6+), read with a
/// second call into a buffer.
pub fn link_details(fd: BorrowedFd<'_>) -> io::Result<(LinkDetails, Option<String>)> {
    let mut info = LinkDetails::default();
    info_call(fd, &mut info)?;
    // Where the name's pointer and length go in the union, by type:
    // raw_tracepoint { tp_name, tp_name_len }; perf_event { type, pad,
    // { name, name_len, ... } } for uprobes (1, 2), kprobes (3, 4) and
    // tracepoints (5).
    let at = match (info.link_type, info.union[0]) {
        (1, _) => 0,
        (7, 1..=5) => 2,
        _ => return Ok((info, None)),
    };
    let mut name = [0u8; 256];
    let mut again = LinkDetails::default();
    let ptr = name.as_mut_ptr() as u64;
    again.union[at] = ptr as u32;
    again.union[at + 1] = (ptr >> 32) as u32;
    again.union[at + 2] = name.len() as u32;
    if info_call(fd, &mut again).is_err() {
        return Ok((info, None));
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    let text = String::from_utf8_lossy(&name[..end]).into_owned();
    Ok((info, (!text.is_empty()).then_some(text)))
}

fn info_call(fd: BorrowedFd<'_>, info: &mut LinkDetails) -> io::Result<()> {
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: size_of::<LinkDetails>() as u32,
        info: info as *mut LinkDetails as u64,
    };
    bpf(super::cmd::OBJ_GET_INFO_BY_FD, &mut attr).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(std::mem::offset_of!(LinkDetails, union), 16);
        assert_eq!(size_of::<LinkDetails>(), 48);
    }
}
