//! Probes beyond "does a bare program or map of this type load": the
//! expected attach types a program type accepts, the link kinds
//! `BPF_LINK_CREATE` knows, and map types that need BTF (local storage) or
//! special flags (arena).

use super::{exit, load_attach, NO_PREALLOC};
use crate::obj::btf::{Btf, BtfType};
use crate::sys;
use crate::uapi::{AttachType, Insn, MapType, ProgramType};
use std::os::fd::AsFd;

/// A kind of BPF link, as `BPF_LINK_CREATE` makes it. Only the kinds whose
/// presence differs between kernels 5.10 and 7.3 and that can be probed
/// without attaching anything are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkKind {
    /// cgroup links (5.7).
    Cgroup,
    /// Network namespace links: flow dissector (5.8), sk_lookup (5.9).
    Netns,
    /// perf event links: kprobes, uprobes, tracepoints (5.15).
    PerfEvent,
    /// TCX links (6.6).
    Tcx,
    /// netkit links (6.7).
    Netkit,
    /// kprobe multi-links (5.18, needs `CONFIG_FPROBE`).
    KprobeMulti,
    /// uprobe multi-links (6.6).
    UprobeMulti,
}

impl LinkKind {
    /// All kinds, in order.
    pub const ALL: [LinkKind; 7] = [
        LinkKind::Cgroup,
        LinkKind::Netns,
        LinkKind::PerfEvent,
        LinkKind::Tcx,
        LinkKind::Netkit,
        LinkKind::KprobeMulti,
        LinkKind::UprobeMulti,
    ];

    /// The kind's name in output and target files.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Cgroup => "cgroup",
            LinkKind::Netns => "netns",
            LinkKind::PerfEvent => "perf_event",
            LinkKind::Tcx => "tcx",
            LinkKind::Netkit => "netkit",
            LinkKind::KprobeMulti => "kprobe_multi",
            LinkKind::UprobeMulti => "uprobe_multi",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<LinkKind> {
        LinkKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The link kind a program of this expected attach type can only be
    /// attached with (no older way exists: TCX has clsact, perf events
    /// have ioctls, cgroups `BPF_PROG_ATTACH`, so those are not listed).
    pub fn required_by(a: AttachType) -> Option<LinkKind> {
        Some(match a {
            AttachType::TRACE_KPROBE_MULTI => LinkKind::KprobeMulti,
            AttachType::TRACE_UPROBE_MULTI => LinkKind::UprobeMulti,
            AttachType::NETKIT_PRIMARY | AttachType::NETKIT_PEER => LinkKind::Netkit,
            _ => return None,
        })
    }
}

/// `r0 = 1; exit`: the return value every attach type below accepts
/// (cgroup recvmsg hooks require 1).
fn ret1() -> [Insn; 2] {
    [
        Insn {
            code: 0xb7,
            imm: 1,
            ..Insn::default()
        },
        exit(),
    ]
}

/// The expected attach types the kernel checks when it loads a program of
/// each type (`bpf_prog_load_check_attach`): a kernel that does not know
/// one refuses the load with EINVAL, whatever the program does.
pub const EXPECTED_ATTACH_TYPES: &[(ProgramType, &[AttachType])] = {
    use AttachType as A;
    &[
        (
            ProgramType::CGROUP_SKB,
            &[A::CGROUP_INET_INGRESS, A::CGROUP_INET_EGRESS],
        ),
        (
            ProgramType::CGROUP_SOCK,
            &[
                A::CGROUP_INET_SOCK_CREATE,
                A::CGROUP_INET_SOCK_RELEASE,
                A::CGROUP_INET4_POST_BIND,
                A::CGROUP_INET6_POST_BIND,
            ],
        ),
        (
            ProgramType::CGROUP_SOCK_ADDR,
            &[
                A::CGROUP_INET4_BIND,
                A::CGROUP_INET6_BIND,
                A::CGROUP_INET4_CONNECT,
                A::CGROUP_INET6_CONNECT,
                A::CGROUP_UDP4_SENDMSG,
                A::CGROUP_UDP6_SENDMSG,
                A::CGROUP_UDP4_RECVMSG,
                A::CGROUP_UDP6_RECVMSG,
                A::CGROUP_INET4_GETPEERNAME,
                A::CGROUP_INET6_GETPEERNAME,
                A::CGROUP_INET4_GETSOCKNAME,
                A::CGROUP_INET6_GETSOCKNAME,
                A::CGROUP_UNIX_CONNECT,
                A::CGROUP_UNIX_SENDMSG,
                A::CGROUP_UNIX_RECVMSG,
                A::CGROUP_UNIX_GETPEERNAME,
                A::CGROUP_UNIX_GETSOCKNAME,
            ],
        ),
        (
            ProgramType::CGROUP_SOCKOPT,
            &[A::CGROUP_GETSOCKOPT, A::CGROUP_SETSOCKOPT],
        ),
        (ProgramType::SK_LOOKUP, &[A::SK_LOOKUP]),
        (
            ProgramType::SK_REUSEPORT,
            &[A::SK_REUSEPORT_SELECT, A::SK_REUSEPORT_SELECT_OR_MIGRATE],
        ),
        (ProgramType::NETFILTER, &[A::NETFILTER]),
    ]
};

/// Whether a bare program of type `t` loads with expected attach type `a`.
pub fn probe_attach_type(t: ProgramType, a: AttachType) -> bool {
    load_attach(t, Some(a), 0, &ret1()).is_ok()
}

/// Whether the kernel has link kind `k`. Each probe loads a bare program of
/// a type the kind serves and calls `BPF_LINK_CREATE` with a target that
/// cannot exist, so no link is ever made: a kernel with the kind gets as far
/// as looking the target up and says so (EBADF for a bad fd, ENODEV for
/// ifindex 0); one without it refuses the attach type itself (EINVAL, or
/// EOPNOTSUPP/ENOTSUPP where the kind is compiled out). This is libbpf's
/// and cilium/ebpf's method (e.g. libbpf's uprobe_multi probe passes "/" and
/// expects EBADF), and reads the same on 5.10 … 7.3: `link_create` checks the
/// attach type against the program before it touches the target.
pub fn probe_link_kind(k: LinkKind) -> bool {
    const NO_FD: u32 = u32::MAX;
    let errno = |r: std::io::Result<std::os::fd::OwnedFd>| r.err().and_then(|e| e.raw_os_error());
    let prog = |t, a| load_attach(t, a, 0, &ret1()).ok();
    match k {
        LinkKind::Cgroup => {
            let a = AttachType::CGROUP_INET_INGRESS;
            prog(ProgramType::CGROUP_SKB, Some(a)).is_some_and(|p| {
                errno(sys::link_create_ifindex(p.as_fd(), NO_FD, a.0, 0)) == Some(libc::EBADF)
            })
        }
        LinkKind::Netns => {
            let a = AttachType::FLOW_DISSECTOR;
            prog(ProgramType::FLOW_DISSECTOR, Some(a)).is_some_and(|p| {
                errno(sys::link_create_ifindex(p.as_fd(), NO_FD, a.0, 0)) == Some(libc::EBADF)
            })
        }
        LinkKind::PerfEvent => prog(ProgramType::TRACEPOINT, None).is_some_and(|p| {
            let a = AttachType::PERF_EVENT.0;
            errno(sys::link_create_ifindex(p.as_fd(), NO_FD, a, 0)) == Some(libc::EBADF)
        }),
        LinkKind::Tcx | LinkKind::Netkit => {
            let a = if k == LinkKind::Tcx {
                AttachType::TCX_INGRESS
            } else {
                AttachType::NETKIT_PRIMARY
            };
            prog(ProgramType::SCHED_CLS, None).is_some_and(|p| {
                errno(sys::link_create_ifindex(p.as_fd(), 0, a.0, 0)) == Some(libc::ENODEV)
            })
        }
        LinkKind::KprobeMulti => {
            // A function no kernel has: ESRCH/ENOENT from the symbol lookup.
            let a = AttachType::TRACE_KPROBE_MULTI;
            prog(ProgramType::KPROBE, Some(a)).is_some_and(|p| {
                let r = sys::link_create_kprobe_multi(
                    p.as_fd(),
                    a.0,
                    &[c"rawbpf_probe_no_such_function"],
                    0,
                );
                !matches!(
                    errno(r),
                    Some(libc::EINVAL | libc::EOPNOTSUPP | 524 | libc::EPERM) | None
                )
            })
        }
        LinkKind::UprobeMulti => {
            let a = AttachType::TRACE_UPROBE_MULTI;
            prog(ProgramType::KPROBE, Some(a)).is_some_and(|p| {
                let r = sys::link_create_uprobe_multi(p.as_fd(), a.0, c"/", &[0], 0, 0);
                errno(r) == Some(libc::EBADF)
            })
        }
    }
}

/// Whether the kernel creates a hash map whose value, `struct val { int
/// cnt; struct bpf_spin_lock l; }`, holds a spin lock (libbpf's BTF probe
/// blob): the kernel finds the lock only through the map's BTF.
pub fn probe_spin_lock_map() -> bool {
    use crate::obj::btf::{BtfKind, BtfMember, BtfTypeData};
    let mut btf = Btf::of(vec![("int", BtfType::int32())]);
    let val = btf.add_string("val");
    let cnt = btf.add_string("cnt");
    let l = btf.add_string("l");
    let member = |name_off, type_id, offset| BtfMember {
        name_off,
        type_id,
        offset,
    };
    let mut lock = BtfType::anon(
        BtfKind::Struct,
        4,
        BtfTypeData::Members(vec![member(val, 1, 0)]),
    );
    lock.name_off = btf.add_string("bpf_spin_lock");
    let lock = btf.add_type(lock);
    let mut value = BtfType::anon(
        BtfKind::Struct,
        8,
        BtfTypeData::Members(vec![member(cnt, 1, 0), member(l, lock, 32)]),
    );
    value.name_off = val;
    let value = btf.add_type(value);
    let Ok(fd) = sys::btf_load(&btf.to_bytes(), None) else {
        return false;
    };
    sys::map_create(&sys::MapCreate {
        map_type: MapType::HASH.0,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        flags: NO_PREALLOC,
        numa_node: 0,
        map_extra: 0,
        name: "rawbpf_probe",
        inner_map_fd: None,
        btf: Some((fd.as_fd(), 1, value)),
    })
    .is_ok()
}

/// Whether the kernel creates a map of a type that needs BTF or flags the
/// plain probe does not give: local storage (int key and value described
/// by a one-type BTF, as libbpf's probe), arena (mmapable, one page).
/// `None` for other types.
pub fn probe_special_map(t: MapType) -> Option<bool> {
    match t {
        MapType::SK_STORAGE
        | MapType::INODE_STORAGE
        | MapType::TASK_STORAGE
        | MapType::CGRP_STORAGE => {
            let btf = Btf::of(vec![("int", BtfType::int32())]);
            let Ok(btf) = sys::btf_load(&btf.to_bytes(), None) else {
                return Some(false);
            };
            Some(
                sys::map_create(&sys::MapCreate {
                    map_type: t.0,
                    key_size: 4,
                    value_size: 4,
                    max_entries: 0,
                    flags: NO_PREALLOC,
                    numa_node: 0,
                    map_extra: 0,
                    name: "rawbpf_probe",
                    inner_map_fd: None,
                    btf: Some((btf.as_fd(), 1, 1)),
                })
                .is_ok(),
            )
        }
        MapType::ARENA => Some(
            sys::map_create(&sys::MapCreate {
                map_type: t.0,
                key_size: 0,
                value_size: 0,
                max_entries: 1,
                flags: crate::uapi::BPF_F_MMAPABLE,
                numa_node: 0,
                map_extra: 0,
                name: "rawbpf_probe",
                inner_map_fd: None,
                btf: None,
            })
            .is_ok(),
        ),
        _ => None,
    }
}
