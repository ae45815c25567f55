//! The kernel's numbers, in the kernel's words: program types, attach types,
//! map types and instruction encodings from `include/uapi/linux/bpf.h`.
//!
//! Types are newtypes over the raw number rather than closed enums, so an
//! object (or a kernel) newer than this table still round-trips: an unknown
//! value prints as its number instead of failing.

use std::fmt;

macro_rules! kernel_enum {
    ($(#[$meta:meta])* $ty:ident, $prefix:literal, { $($name:ident = $val:literal => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(pub u32);

        #[allow(missing_docs)]
        impl $ty {
            $(pub const $name: $ty = $ty($val);)*

            /// The kernel's name without its prefix, lower-case (`sched_cls`),
            /// as bpftool prints it; `None` for a number this table lacks.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($text),)*
                    _ => None,
                }
            }

            /// Every value this table knows, in numeric order.
            pub const ALL: &'static [$ty] = &[$($ty($val),)*];
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, concat!($prefix, "{}"), self.0),
                }
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

kernel_enum!(
    /// `enum bpf_prog_type`.
    ProgramType, "prog_type_", {
    UNSPEC = 0 => "unspec",
    SOCKET_FILTER = 1 => "socket_filter",
    KPROBE = 2 => "kprobe",
    SCHED_CLS = 3 => "sched_cls",
    SCHED_ACT = 4 => "sched_act",
    TRACEPOINT = 5 => "tracepoint",
    XDP = 6 => "xdp",
    PERF_EVENT = 7 => "perf_event",
    CGROUP_SKB = 8 => "cgroup_skb",
    CGROUP_SOCK = 9 => "cgroup_sock",
    LWT_IN = 10 => "lwt_in",
    LWT_OUT = 11 => "lwt_out",
    LWT_XMIT = 12 => "lwt_xmit",
    SOCK_OPS = 13 => "sock_ops",
    SK_SKB = 14 => "sk_skb",
    CGROUP_DEVICE = 15 => "cgroup_device",
    SK_MSG = 16 => "sk_msg",
    RAW_TRACEPOINT = 17 => "raw_tracepoint",
    CGROUP_SOCK_ADDR = 18 => "cgroup_sock_addr",
    LWT_SEG6LOCAL = 19 => "lwt_seg6local",
    LIRC_MODE2 = 20 => "lirc_mode2",
    SK_REUSEPORT = 21 => "sk_reuseport",
    FLOW_DISSECTOR = 22 => "flow_dissector",
    CGROUP_SYSCTL = 23 => "cgroup_sysctl",
    RAW_TRACEPOINT_WRITABLE = 24 => "raw_tracepoint_writable",
    CGROUP_SOCKOPT = 25 => "cgroup_sockopt",
    TRACING = 26 => "tracing",
    STRUCT_OPS = 27 => "struct_ops",
    EXT = 28 => "ext",
    LSM = 29 => "lsm",
    SK_LOOKUP = 30 => "sk_lookup",
    SYSCALL = 31 => "syscall",
    NETFILTER = 32 => "netfilter",
});

kernel_enum!(
    /// `enum bpf_attach_type`.
    AttachType, "attach_type_", {
    CGROUP_INET_INGRESS = 0 => "cgroup_inet_ingress",
    CGROUP_INET_EGRESS = 1 => "cgroup_inet_egress",
    CGROUP_INET_SOCK_CREATE = 2 => "cgroup_inet_sock_create",
    CGROUP_SOCK_OPS = 3 => "cgroup_sock_ops",
    SK_SKB_STREAM_PARSER = 4 => "sk_skb_stream_parser",
    SK_SKB_STREAM_VERDICT = 5 => "sk_skb_stream_verdict",
    CGROUP_DEVICE = 6 => "cgroup_device",
    SK_MSG_VERDICT = 7 => "sk_msg_verdict",
    CGROUP_INET4_BIND = 8 => "cgroup_inet4_bind",
    CGROUP_INET6_BIND = 9 => "cgroup_inet6_bind",
    CGROUP_INET4_CONNECT = 10 => "cgroup_inet4_connect",
    CGROUP_INET6_CONNECT = 11 => "cgroup_inet6_connect",
    CGROUP_INET4_POST_BIND = 12 => "cgroup_inet4_post_bind",
    CGROUP_INET6_POST_BIND = 13 => "cgroup_inet6_post_bind",
    CGROUP_UDP4_SENDMSG = 14 => "cgroup_udp4_sendmsg",
    CGROUP_UDP6_SENDMSG = 15 => "cgroup_udp6_sendmsg",
    LIRC_MODE2 = 16 => "lirc_mode2",
    FLOW_DISSECTOR = 17 => "flow_dissector",
    CGROUP_SYSCTL = 18 => "cgroup_sysctl",
    CGROUP_UDP4_RECVMSG = 19 => "cgroup_udp4_recvmsg",
    CGROUP_UDP6_RECVMSG = 20 => "cgroup_udp6_recvmsg",
    CGROUP_GETSOCKOPT = 21 => "cgroup_getsockopt",
    CGROUP_SETSOCKOPT = 22 => "cgroup_setsockopt",
    TRACE_RAW_TP = 23 => "trace_raw_tp",
    TRACE_FENTRY = 24 => "trace_fentry",
    TRACE_FEXIT = 25 => "trace_fexit",
    MODIFY_RETURN = 26 => "modify_return",
    LSM_MAC = 27 => "lsm_mac",
    TRACE_ITER = 28 => "trace_iter",
    CGROUP_INET4_GETPEERNAME = 29 => "cgroup_inet4_getpeername",
    CGROUP_INET6_GETPEERNAME = 30 => "cgroup_inet6_getpeername",
    CGROUP_INET4_GETSOCKNAME = 31 => "cgroup_inet4_getsockname",
    CGROUP_INET6_GETSOCKNAME = 32 => "cgroup_inet6_getsockname",
    XDP_DEVMAP = 33 => "xdp_devmap",
    CGROUP_INET_SOCK_RELEASE = 34 => "cgroup_inet_sock_release",
    XDP_CPUMAP = 35 => "xdp_cpumap",
    SK_LOOKUP = 36 => "sk_lookup",
    XDP = 37 => "xdp",
    SK_SKB_VERDICT = 38 => "sk_skb_verdict",
    SK_REUSEPORT_SELECT = 39 => "sk_reuseport_select",
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40 => "sk_reuseport_select_or_migrate",
    PERF_EVENT = 41 => "perf_event",
    TRACE_KPROBE_MULTI = 42 => "trace_kprobe_multi",
    LSM_CGROUP = 43 => "lsm_cgroup",
    STRUCT_OPS = 44 => "struct_ops",
    NETFILTER = 45 => "netfilter",
    TCX_INGRESS = 46 => "tcx_ingress",
    TCX_EGRESS = 47 => "tcx_egress",
    TRACE_UPROBE_MULTI = 48 => "trace_uprobe_multi",
    CGROUP_UNIX_CONNECT = 49 => "cgroup_unix_connect",
    CGROUP_UNIX_SENDMSG = 50 => "cgroup_unix_sendmsg",
    CGROUP_UNIX_RECVMSG = 51 => "cgroup_unix_recvmsg",
    CGROUP_UNIX_GETPEERNAME = 52 => "cgroup_unix_getpeername",
    CGROUP_UNIX_GETSOCKNAME = 53 => "cgroup_unix_getsockname",
    NETKIT_PRIMARY = 54 => "netkit_primary",
    NETKIT_PEER = 55 => "netkit_peer",
    TRACE_KPROBE_SESSION = 56 => "trace_kprobe_session",
    TRACE_UPROBE_SESSION = 57 => "trace_uprobe_session",
});

kernel_enum!(
    /// `enum bpf_map_type`.
    MapType, "map_type_", {
    UNSPEC = 0 => "unspec",
    HASH = 1 => "hash",
    ARRAY = 2 => "array",
    PROG_ARRAY = 3 => "prog_array",
    PERF_EVENT_ARRAY = 4 => "perf_event_array",
    PERCPU_HASH = 5 => "percpu_hash",
    PERCPU_ARRAY = 6 => "percpu_array",
    STACK_TRACE = 7 => "stack_trace",
    CGROUP_ARRAY = 8 => "cgroup_array",
    LRU_HASH = 9 => "lru_hash",
    LRU_PERCPU_HASH = 10 => "lru_percpu_hash",
    LPM_TRIE = 11 => "lpm_trie",
    ARRAY_OF_MAPS = 12 => "array_of_maps",
    HASH_OF_MAPS = 13 => "hash_of_maps",
    DEVMAP = 14 => "devmap",
    SOCKMAP = 15 => "sockmap",
    CPUMAP = 16 => "cpumap",
    XSKMAP = 17 => "xskmap",
    SOCKHASH = 18 => "sockhash",
    CGROUP_STORAGE = 19 => "cgroup_storage",
    REUSEPORT_SOCKARRAY = 20 => "reuseport_sockarray",
    PERCPU_CGROUP_STORAGE = 21 => "percpu_cgroup_storage",
    QUEUE = 22 => "queue",
    STACK = 23 => "stack",
    SK_STORAGE = 24 => "sk_storage",
    DEVMAP_HASH = 25 => "devmap_hash",
    STRUCT_OPS = 26 => "struct_ops",
    RINGBUF = 27 => "ringbuf",
    INODE_STORAGE = 28 => "inode_storage",
    TASK_STORAGE = 29 => "task_storage",
    BLOOM_FILTER = 30 => "bloom_filter",
    USER_RINGBUF = 31 => "user_ringbuf",
    CGRP_STORAGE = 32 => "cgrp_storage",
    ARENA = 33 => "arena",
});

impl MapType {
    /// Maps whose values are other maps (`.values` names maps).
    pub fn is_map_in_map(self) -> bool {
        matches!(self, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS)
    }
}

/// `BPF_F_RDONLY_PROG`: programs may only read the map (libbpf sets it on `.rodata`).
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: the array can be mmap()ed (libbpf sets it on global data).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// `BPF_F_LINK`: a struct_ops map registered through a BPF link.
pub const BPF_F_LINK: u32 = 1 << 13;
/// `BPF_F_SLEEPABLE` program flag (`.s` sections).
pub const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS` program flag (`xdp.frags` sections).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// Instruction encoding.
pub mod insn {
    /// Size of one instruction in bytes.
    pub const SIZE: usize = 8;
    /// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 16-byte `ld_imm64`.
    pub const LD_IMM64: u8 = 0x18;
    /// `BPF_JMP | BPF_CALL`.
    pub const CALL: u8 = 0x85;
    /// `BPF_JMP | BPF_EXIT`.
    pub const EXIT: u8 = 0x95;
    /// `ld_imm64` source register: the immediate is a map fd.
    pub const PSEUDO_MAP_FD: u8 = 1;
    /// `ld_imm64` source register: map fd + offset into its value (global data).
    pub const PSEUDO_MAP_VALUE: u8 = 2;
    /// `ld_imm64` source register: a kernel variable or function by its BTF
    /// id (typed `__ksym`), with the BTF object's fd in the second half.
    pub const PSEUDO_BTF_ID: u8 = 3;
    /// `ld_imm64` source register: the address of a subprogram (callbacks).
    pub const PSEUDO_FUNC: u8 = 4;
    /// `call` source register: a bpf-to-bpf call (imm is pc-relative).
    pub const PSEUDO_CALL: u8 = 1;
    /// `call` source register: a call of a kernel function (kfunc).
    pub const PSEUDO_KFUNC_CALL: u8 = 2;
}

/// One 8-byte BPF instruction, as the kernel's `struct bpf_insn`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one (little-endian layout).
    pub regs: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one little-endian instruction.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            regs: b[1],
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes it back.
    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code, self.regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3],
        ]
    }

    /// Decodes a whole instruction stream; `bytes.len()` must be a multiple of 8
    /// (a trailing partial instruction is ignored).
    pub fn decode_all(bytes: &[u8]) -> Vec<Insn> {
        bytes
            .chunks_exact(insn::SIZE)
            .map(|c| Insn::from_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    }

    /// Destination register.
    pub fn dst(self) -> u8 {
        self.regs & 0x0f
    }

    /// Source register.
    pub fn src(self) -> u8 {
        self.regs >> 4
    }

    /// Sets the source register.
    pub fn set_src(&mut self, src: u8) {
        self.regs = (self.regs & 0x0f) | (src << 4);
    }

    /// The first half of a 16-byte `ld_imm64`.
    pub fn is_ld_imm64(self) -> bool {
        self.code == insn::LD_IMM64
    }

    /// A `call` of any kind (helper, bpf-to-bpf, kfunc).
    pub fn is_call(self) -> bool {
        self.code == insn::CALL
    }

    /// A bpf-to-bpf call.
    pub fn is_pseudo_call(self) -> bool {
        self.is_call() && self.src() == insn::PSEUDO_CALL
    }

    /// A helper call: `call` with source register 0; `imm` is the helper id.
    pub fn is_helper_call(self) -> bool {
        self.is_call() && self.src() == 0
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x} {:x}{:x} {:+} {:+}",
            self.code,
            self.src(),
            self.dst(),
            self.off,
            self.imm
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_round_trip() {
        let b = [0x18, 0x21, 0xfe, 0xff, 0x78, 0x56, 0x34, 0x12];
        let i = Insn::from_bytes(b);
        assert_eq!((i.dst(), i.src(), i.off, i.imm), (1, 2, -2, 0x1234_5678));
        assert_eq!(i.to_bytes(), b);
        assert!(i.is_ld_imm64());
    }

    #[test]
    fn names_and_unknown_numbers() {
        assert_eq!(ProgramType::SCHED_CLS.to_string(), "sched_cls");
        assert_eq!(MapType::PROG_ARRAY.to_string(), "prog_array");
        assert_eq!(MapType(999).to_string(), "map_type_999");
        assert_eq!(AttachType::TCX_INGRESS.0, 46);
    }
}

/// `XDP_FLAGS_*` (`linux/if_link.h`), for `IFLA_XDP_FLAGS`; neither libc nor
/// netlink-packet-route defines them.
pub mod xdp_flags {
    /// Fail if the device already has a program.
    pub const UPDATE_IF_NOEXIST: u32 = 1 << 0;
    /// Generic XDP, on socket buffers.
    pub const SKB_MODE: u32 = 1 << 1;
    /// The driver's XDP.
    pub const DRV_MODE: u32 = 1 << 2;
    /// Offloaded to the NIC.
    pub const HW_MODE: u32 = 1 << 3;
}
