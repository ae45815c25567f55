//! `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`: attaching a program to a
//! target fd (a cgroup, a sockmap, a network namespace) without a link.

use super::{bpf, cmd, fd_u32};
use crate::uapi::AttachType;
use std::io;
use std::os::fd::BorrowedFd;

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: u32,
}

/// `BPF_PROG_ATTACH` of `prog` on `target` at `attach_type`, with
/// `flags` (`BPF_F_ALLOW_MULTI`, `BPF_F_ALLOW_OVERRIDE`).
pub fn prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: AttachType,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type: attach_type.0,
        attach_flags: flags,
        ..Default::default()
    };
    bpf(cmd::PROG_ATTACH, &mut attr).map(drop)
}

/// `BPF_PROG_DETACH` of `prog` from `target` at `attach_type`.
pub fn prog_detach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: AttachType,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: fd_u32(target),
        attach_bpf_fd: fd_u32(prog),
        attach_type: attach_type.0,
        ..Default::default()
    };
    bpf(cmd::PROG_DETACH, &mut attr).map(drop)
}

#[cfg(test)]
mod tests {
    /// The attr matches `union bpf_attr`'s BPF_PROG_ATTACH part.
    #[test]
    fn attr_layout() {
        use std::mem::offset_of;
        assert_eq!(offset_of!(super::ProgAttachAttr, attach_flags), 12);
        assert_eq!(offset_of!(super::ProgAttachAttr, replace_bpf_fd), 16);
    }
}
