//! `BPF_LINK_CREATE` of a netfilter program (attach type `BPF_NETFILTER`):
//! the link attr's `netfilter` part instead of TCX's relative fd.

use super::{bpf_fd, cmd, fd_u32};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

/// `BPF_NETFILTER` in `enum bpf_attach_type`.
const BPF_NETFILTER: u32 = 45;

#[repr(C)]
#[derive(Default)]
struct NetfilterLinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    pf: u32,
    hooknum: u32,
    priority: i32,
    nf_flags: u32,
}

/// Where a netfilter link hooks: protocol family (`NFPROTO_IPV4` 2,
/// `NFPROTO_IPV6` 10), hook number (`NF_INET_PRE_ROUTING` 0 …
/// `NF_INET_POST_ROUTING` 4), priority, and flags
/// (`BPF_F_NETFILTER_IP_DEFRAG`).
#[derive(Debug, Clone, Copy)]
pub struct NetfilterHook {
    pub pf: u32,
    pub hooknum: u32,
    pub priority: i32,
    pub flags: u32,
}

/// `BPF_LINK_CREATE` of a netfilter program at `hook`, in the calling
/// thread's network namespace.
pub fn link_create_netfilter(prog: BorrowedFd<'_>, hook: NetfilterHook) -> io::Result<OwnedFd> {
    let mut attr = NetfilterLinkAttr {
        prog_fd: fd_u32(prog),
        attach_type: BPF_NETFILTER,
        pf: hook.pf,
        hooknum: hook.hooknum,
        priority: hook.priority,
        nf_flags: hook.flags,
        ..Default::default()
    };
    bpf_fd(cmd::LINK_CREATE, &mut attr)
}

#[cfg(test)]
mod tests {
    /// The attr matches `union bpf_attr`'s link_create.netfilter part.
    #[test]
    fn attr_layout() {
        use std::mem::{offset_of, size_of};
        assert_eq!(offset_of!(super::NetfilterLinkAttr, pf), 16);
        assert_eq!(offset_of!(super::NetfilterLinkAttr, priority), 24);
        assert_eq!(size_of::<super::NetfilterLinkAttr>(), 32);
    }
}
