//! What this kernel supports, found by asking it — tiny map creates,
//! program loads and BTF loads, as bpftool's feature probe does — and the
//! comparison of an object's needs against that ([`check`]), which is pure
//! so it can be tested against any [`Features`].

use crate::obj::btf::{Btf, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData, BtfVarSecinfo};
use crate::sys;
use crate::uapi::{insn as op, AttachType, Insn, MapType, ProgramType};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

mod btf_file;
mod check;
pub mod json;
mod kinds;
mod target;

pub use btf_file::{read_btf_file, BtfFileError};
pub use check::*;
pub use kinds::{probe_attach_type as probe_expected_attach_type, probe_link_kind, LinkKind};
pub use kinds::{probe_special_map, probe_spin_lock_map, EXPECTED_ATTACH_TYPES};
pub use target::{
    btf_funcs_without_address, kallsyms_names, parse_config, TargetError, TargetExterns, FORMAT,
    KALLSYMS_TYPES,
};

/// Kernel features beyond program and map types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    /// bpf-to-bpf calls (4.16).
    Bpf2BpfCalls,
    /// Tail calls from programs with bpf-to-bpf calls (5.10, x86-64 JIT).
    Bpf2BpfWithTailCalls,
    /// Global data: `ld_imm64` of a map value address (5.2).
    GlobalData,
    /// `BPF_PROG_TEST_RUN` of sched_cls programs.
    TestRun,
    /// TCX links (6.6).
    Tcx,
    /// bpffs mounted at /sys/fs/bpf.
    Bpffs,
    /// Hash maps whose value holds a `bpf_spin_lock`, described by BTF (5.1).
    MapSpinLock,
    /// fentry/fexit/fmod_ret programs load (BPF trampolines; 5.5, and not
    /// refused by the kernel's policy). Probed by [`compat::probe_target`](crate::compat::probe_target) only.
    Fentry,
    /// LSM programs load (`CONFIG_BPF_LSM`, 5.7). Probed by
    /// [`compat::probe_target`](crate::compat::probe_target) only.
    Lsm,
}

impl Feature {
    /// All features, in order.
    pub const ALL: [Feature; 9] = [
        Feature::Bpf2BpfCalls,
        Feature::Bpf2BpfWithTailCalls,
        Feature::GlobalData,
        Feature::TestRun,
        Feature::Tcx,
        Feature::Bpffs,
        Feature::MapSpinLock,
        Feature::Fentry,
        Feature::Lsm,
    ];

    /// The features [`Features::probe`] asks for: [`ALL`](Self::ALL) but
    /// its last two (fentry and LSM need the kernel's BTF and are for
    /// target files).
    const QUICK: &[Feature] = Feature::ALL.split_at(7).0;

    /// A short name for output.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Bpf2BpfCalls => "bpf2bpf_calls",
            Feature::Bpf2BpfWithTailCalls => "bpf2bpf_with_tail_calls",
            Feature::GlobalData => "global_data",
            Feature::TestRun => "test_run",
            Feature::Tcx => "tcx",
            Feature::Bpffs => "bpffs",
            Feature::MapSpinLock => "map_spin_lock",
            Feature::Fentry => "fentry",
            Feature::Lsm => "lsm",
        }
    }
}

/// What a kernel supports. `None` means "not probed" (rawbpf has no way to
/// probe it yet, or it was not asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// Program types.
    pub prog_types: BTreeMap<ProgramType, Option<bool>>,
    /// Map types.
    pub map_types: BTreeMap<MapType, Option<bool>>,
    /// BTF kinds.
    pub btf_kinds: BTreeMap<BtfKind, bool>,
    /// BTF `FUNC` with global linkage (5.6).
    pub btf_global_func: bool,
    /// Other features.
    pub features: BTreeMap<Feature, bool>,
    /// Helpers probed, per program type: helper id → available.
    pub helpers: BTreeMap<ProgramType, BTreeMap<u32, bool>>,
    /// The machine's architecture (`uname -m`).
    pub arch: String,
    /// Expected attach types ([`EXPECTED_ATTACH_TYPES`]): whether a program
    /// of the type loads with it.
    pub attach_types: BTreeMap<(ProgramType, AttachType), bool>,
    /// Link kinds `BPF_LINK_CREATE` knows.
    pub link_kinds: BTreeMap<LinkKind, bool>,
    /// What a target file says about the kernel's config and symbols, for
    /// externs; `None`: they are read from this machine when needed.
    pub externs: Option<TargetExterns>,
}

/// Helper ids 1..this are probed by [`compat::probe_target`](crate::compat::probe_target) (the kernel has
/// fewer than this).
pub const HELPER_IDS_PROBED: u32 = 230;

/// The machine: the architecture rawbpf was built for, which on the 64-bit
/// machines it runs on is the kernel's and `uname -m`'s name for it
/// (x86_64, aarch64, riscv64, s390x).
pub fn machine() -> String {
    std::env::consts::ARCH.to_owned()
}

/// The kernel release.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn mov_r0_0() -> Insn {
    Insn {
        code: 0xb7,
        ..Insn::default()
    }
}

fn exit() -> Insn {
    Insn {
        code: op::EXIT,
        ..Insn::default()
    }
}

fn call(id: i32) -> Insn {
    Insn {
        code: op::CALL,
        imm: id,
        ..Insn::default()
    }
}

fn pseudo_call(rel: i32) -> Insn {
    let mut i = call(rel);
    i.set_src(op::PSEUDO_CALL);
    i
}

/// `ld_imm64 dst, <map fd or map value>`: two instructions.
fn ld_map(dst: u8, src: u8, fd: &OwnedFd) -> [Insn; 2] {
    use std::os::fd::AsRawFd;
    let mut first = Insn {
        code: op::LD_IMM64,
        regs: dst,
        imm: fd.as_raw_fd(),
        ..Insn::default()
    };
    first.set_src(src);
    [first, Insn::default()]
}

/// Which expected attach type a bare program of a type needs to load.
fn probe_attach_type(t: ProgramType) -> Option<AttachType> {
    Some(match t {
        ProgramType::CGROUP_SOCK_ADDR => AttachType::CGROUP_INET4_CONNECT,
        ProgramType::CGROUP_SOCKOPT => AttachType::CGROUP_GETSOCKOPT,
        ProgramType::SK_LOOKUP => AttachType::SK_LOOKUP,
        ProgramType::NETFILTER => AttachType::NETFILTER,
        _ => return None,
    })
}

/// Loads a bare program with expected attach type `a` (none: 0).
fn load_attach(
    t: ProgramType,
    a: Option<AttachType>,
    attach_btf_id: u32,
    insns: &[Insn],
) -> std::io::Result<OwnedFd> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let attrs = sys::ProgLoad {
        prog_type: t.0,
        expected_attach_type: a.map_or(0, |a| a.0),
        name: "rawbpf_probe",
        insns: &code,
        license: c"GPL",
        attach_btf_id,
        ..Default::default()
    };
    sys::prog_load(&attrs, None)
}

/// Loads a program; returns the fd, or the errno and the verifier log.
fn load(
    t: ProgramType,
    insns: &[Insn],
    with_log: bool,
) -> Result<OwnedFd, (std::io::Error, String)> {
    load_with_btf(t, insns, with_log, None)
}

/// Like [`load`], with a BTF object and packed func_info.
fn load_with_btf(
    t: ProgramType,
    insns: &[Insn],
    with_log: bool,
    btf: Option<(std::os::fd::BorrowedFd<'_>, &[u8])>,
) -> Result<OwnedFd, (std::io::Error, String)> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
    let attrs = sys::ProgLoad {
        prog_type: t.0,
        expected_attach_type: probe_attach_type(t).map_or(0, |a| a.0),
        prog_flags: if t == ProgramType::SYSCALL {
            crate::uapi::BPF_F_SLEEPABLE
        } else {
            0
        },
        name: "rawbpf_probe",
        insns: &code,
        license: c"GPL",
        kern_version: 0,
        btf: btf.map(|(fd, func_info)| (fd, func_info, &[][..])),
        ..Default::default()
    };
    let mut log = vec![0u8; if with_log { 4096 } else { 0 }];
    let result = if with_log {
        sys::prog_load(&attrs, Some((&mut log, 1)))
    } else {
        sys::prog_load(&attrs, None)
    };
    result.map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        (e, String::from_utf8_lossy(&log[..end]).into_owned())
    })
}

/// Whether the kernel loads a bare program of this type; `None` for types
/// that cannot load without an attach target (tracing, LSM, ext, struct_ops).
pub fn probe_prog_type(t: ProgramType) -> Option<bool> {
    if matches!(
        t,
        ProgramType::TRACING
            | ProgramType::EXT
            | ProgramType::LSM
            | ProgramType::STRUCT_OPS
            | ProgramType::UNSPEC
    ) {
        return None;
    }
    Some(load(t, &[mov_r0_0(), exit()], false).is_ok())
}

/// Whether `BPF_PROG_TEST_RUN` runs a TC program on a packet.
fn probe_test_run() -> bool {
    let Ok(prog) = load(ProgramType::SCHED_CLS, &[mov_r0_0(), exit()], false) else {
        return false;
    };
    let frame = crate::packet::ipv4_udp_frame(0);
    let mut out = [0u8; 128];
    let bufs = sys::TestRunBufs {
        data_in: &frame,
        data_out: &mut out,
        repeat: 1,
        ..sys::TestRunBufs::default()
    };
    sys::prog_test_run(prog.as_fd(), bufs).is_ok()
}

/// Whether the kernel loads an fentry program (a trampoline) on the
/// vmlinux function of BTF id `btf_func_id`: `Ok` if it does, else the
/// kernel's answer (kernels without trampolines, or that refuse them,
/// answer EPERM, ENOTSUPP or EINVAL). The program returns 0 and is closed
/// at once.
pub fn probe_fentry(btf_func_id: u32) -> std::io::Result<()> {
    let code: Vec<u8> = [mov_r0_0(), exit()]
        .iter()
        .flat_map(|i| i.to_bytes())
        .collect();
    let attrs = sys::ProgLoad {
        prog_type: ProgramType::TRACING.0,
        expected_attach_type: AttachType::TRACE_FENTRY.0,
        name: "probe",
        insns: &code,
        license: c"GPL",
        attach_btf_id: btf_func_id,
        ..Default::default()
    };
    sys::prog_load(&attrs, None).map(drop)
}

fn create_map(
    t: MapType,
    key: u32,
    value: u32,
    max: u32,
    flags: u32,
    inner: Option<&OwnedFd>,
) -> std::io::Result<OwnedFd> {
    sys::map_create(&sys::MapCreate {
        map_type: t.0,
        key_size: key,
        value_size: value,
        max_entries: max,
        flags,
        numa_node: 0,
        map_extra: 0,
        name: "rawbpf_probe",
        inner_map_fd: inner.map(|f| f.as_fd()),
        btf: None,
    })
}

fn array_map() -> std::io::Result<OwnedFd> {
    create_map(MapType::ARRAY, 4, 4, 1, 0, None)
}

/// `BPF_F_NO_PREALLOC`.
const NO_PREALLOC: u32 = 1;

/// Whether the kernel creates a map of this type; `None` for types that
/// need BTF or other setup rawbpf does not probe.
pub fn probe_map_type(t: MapType) -> Option<bool> {
    let created = match t {
        MapType::ARRAY
        | MapType::PERCPU_ARRAY
        | MapType::PROG_ARRAY
        | MapType::PERF_EVENT_ARRAY
        | MapType::CGROUP_ARRAY
        | MapType::DEVMAP
        | MapType::CPUMAP
        | MapType::XSKMAP
        | MapType::SOCKMAP
        | MapType::REUSEPORT_SOCKARRAY
        | MapType::HASH
        | MapType::PERCPU_HASH
        | MapType::LRU_HASH
        | MapType::LRU_PERCPU_HASH
        | MapType::DEVMAP_HASH
        | MapType::SOCKHASH => create_map(t, 4, 4, 1, 0, None),
        MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS => {
            let inner = array_map().ok()?;
            create_map(t, 4, 4, 1, 0, Some(&inner))
        }
        MapType::LPM_TRIE => create_map(t, 8, 4, 1, NO_PREALLOC, None),
        MapType::STACK_TRACE => create_map(t, 4, 8, 1, 0, None),
        MapType::QUEUE | MapType::STACK | MapType::BLOOM_FILTER => create_map(t, 0, 4, 1, 0, None),
        MapType::RINGBUF | MapType::USER_RINGBUF => create_map(t, 0, 0, 4096, 0, None),
        MapType::CGROUP_STORAGE | MapType::PERCPU_CGROUP_STORAGE => {
            create_map(t, 16, 4, 0, 0, None)
        }
        _ => return probe_special_map(t),
    };
    Some(created.is_ok())
}

/// Whether helper `id` is available to programs of type `t`: the verifier
/// says "unknown func" or "invalid func" when it is not (bpftool's method).
pub fn probe_helper(t: ProgramType, id: u32) -> bool {
    match load(t, &[call(id as i32), mov_r0_0(), exit()], true) {
        Ok(_) => true,
        // libbpf's reading: "cannot use helper" is a helper this program
        // type may not call, as unavailable as an unknown one.
        Err((_, log)) => {
            !(log.contains("unknown func")
                || log.contains("invalid func")
                || log.contains("cannot use helper"))
        }
    }
}

/// `int f(int a)`-style BTF: [1] int, [2] the prototype, then one FUNC per
/// name (the kernel wants parameters named).
fn btf_funcs(names: &[&str], global: bool) -> Btf {
    use BtfKind as K;
    let mut btf = Btf::of(vec![("int", BtfType::int32())]);
    let a = btf.add_string("a");
    btf.add_type(BtfType::anon(
        K::FuncProto,
        1,
        BtfTypeData::Params(vec![BtfParam {
            name_off: a,
            type_id: 1,
        }]),
    ));
    for name in names {
        let mut f = BtfType::anon(K::Func, 2, BtfTypeData::None);
        f.vlen_extra = u16::from(global);
        f.name_off = btf.add_string(name);
        btf.add_type(f);
    }
    btf
}

/// A minimal BTF using `kind` (type 1 is `int`).
fn btf_probe_blob(kind: BtfKind, global_func: bool) -> Option<Btf> {
    use BtfKind as K;
    Some(match kind {
        K::Int => Btf::of(vec![("int", BtfType::int32())]),
        K::Func | K::FuncProto => btf_funcs(&["f"], global_func),
        K::Var | K::Datasec => Btf::of(vec![
            ("int", BtfType::int32()),
            (
                "v",
                BtfType::anon(K::Var, 1, BtfTypeData::Var { linkage: 1 }),
            ),
            (
                "d",
                BtfType::anon(
                    K::Datasec,
                    4,
                    BtfTypeData::Datasec(vec![BtfVarSecinfo {
                        type_id: 2,
                        offset: 0,
                        size: 4,
                    }]),
                ),
            ),
        ]),
        K::Float => Btf::of(vec![(
            "float",
            BtfType::anon(K::Float, 4, BtfTypeData::None),
        )]),
        K::DeclTag => Btf::of(vec![
            ("int", BtfType::int32()),
            (
                "s",
                BtfType::anon(
                    K::Struct,
                    4,
                    BtfTypeData::Members(vec![BtfMember {
                        name_off: 0,
                        type_id: 1,
                        offset: 0,
                    }]),
                ),
            ),
            (
                "tag",
                BtfType::anon(K::DeclTag, 2, BtfTypeData::DeclTag { component_idx: -1 }),
            ),
        ]),
        K::TypeTag => Btf::of(vec![
            ("int", BtfType::int32()),
            ("tag", BtfType::anon(K::TypeTag, 1, BtfTypeData::None)),
            ("", BtfType::anon(K::Ptr, 2, BtfTypeData::None)),
        ]),
        K::Enum64 => {
            let mut btf = Btf::new();
            let (e, v) = (btf.add_string("e"), btf.add_string("v"));
            let mut t = BtfType::anon(
                K::Enum64,
                8,
                BtfTypeData::Enum64(vec![crate::obj::btf::BtfEnum64 {
                    name_off: v,
                    val: 1 << 40,
                }]),
            );
            t.name_off = e;
            btf.add_type(t);
            btf
        }
        _ => return None,
    })
}

/// Whether the kernel accepts BTF with this kind (`global_func`: a FUNC
/// with global linkage).
pub fn probe_btf_kind(kind: BtfKind, global_func: bool) -> bool {
    match btf_probe_blob(kind, global_func) {
        Some(btf) => sys::btf_load(&btf.to_bytes(), None).is_ok(),
        None => true,
    }
}

/// The BTF kinds probed: the ones kernels added over time.
pub const PROBED_BTF_KINDS: [BtfKind; 7] = [
    BtfKind::Int,
    BtfKind::Func,
    BtfKind::Datasec,
    BtfKind::Float,
    BtfKind::DeclTag,
    BtfKind::TypeTag,
    BtfKind::Enum64,
];

/// Probes one feature.
pub fn probe_feature(f: Feature) -> bool {
    let sock = ProgramType::SOCKET_FILTER;
    match f {
        Feature::Bpf2BpfCalls => {
            load(sock, &[pseudo_call(1), exit(), mov_r0_0(), exit()], false).is_ok()
        }
        Feature::Bpf2BpfWithTailCalls => {
            let Ok(array) = create_map(MapType::PROG_ARRAY, 4, 4, 1, 0, None) else {
                return false;
            };
            let [ld0, ld1] = ld_map(2, op::PSEUDO_MAP_FD, &array);
            let mov_r3_0 = Insn {
                code: 0xb7,
                regs: 3,
                ..Insn::default()
            };
            let prog = [
                pseudo_call(1),
                exit(),
                ld0,
                ld1,
                mov_r3_0,
                call(12),
                mov_r0_0(),
                exit(),
            ];
            // The verifier allows a tail call in a subprogram only with BTF
            // func_info describing both functions.
            let Ok(btf) = sys::btf_load(&btf_funcs(&["main", "sub"], false).to_bytes(), None)
            else {
                return false;
            };
            let func_info = crate::obj::btf_ext::encode_func_info(&[
                crate::obj::btf_ext::FuncInfo {
                    insn_off: 0,
                    type_id: 3,
                },
                crate::obj::btf_ext::FuncInfo {
                    insn_off: 2,
                    type_id: 4,
                },
            ]);
            load_with_btf(
                ProgramType::SCHED_CLS,
                &prog,
                false,
                Some((btf.as_fd(), &func_info)),
            )
            .is_ok()
        }
        Feature::GlobalData => {
            let Ok(array) = array_map() else { return false };
            let [ld0, ld1] = ld_map(1, op::PSEUDO_MAP_VALUE, &array);
            load(sock, &[ld0, ld1, mov_r0_0(), exit()], false).is_ok()
        }
        Feature::TestRun => probe_test_run(),
        Feature::Tcx => {
            // Index 0 names no device: a kernel with TCX says ENODEV, one
            // without does not know the attach type (EINVAL).
            let Ok(prog) = load(ProgramType::SCHED_CLS, &[mov_r0_0(), exit()], false) else {
                return false;
            };
            matches!(
                sys::link_create_ifindex(prog.as_fd(), 0, AttachType::TCX_INGRESS.0, 0),
                Err(e) if e.raw_os_error() == Some(libc::ENODEV)
            )
        }
        Feature::Bpffs => nix::sys::statfs::statfs(c"/sys/fs/bpf")
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC),
        Feature::MapSpinLock => probe_spin_lock_map(),
        Feature::Fentry => probe_with_kernel_btf().0[0].1,
        Feature::Lsm => probe_with_kernel_btf().0[1].1,
    }
}

/// The BTF id and size (or type) of each (name, kind) in the running
/// kernel's BTF (read whole, once: this is for full probes only).
fn vmlinux_lookup<const N: usize>(
    btf: Option<&Btf>,
    wanted: [(&str, BtfKind); N],
) -> [Option<(u32, u32)>; N] {
    let mut out = [None; N];
    let Some(btf) = btf else {
        return out;
    };
    for (id, t) in btf.types() {
        if !wanted.iter().any(|(_, k)| *k == t.kind) {
            continue;
        }
        let Ok(name) = btf.type_name(id) else {
            continue;
        };
        if let Some(i) = wanted.iter().position(|w| *w == (name, t.kind)) {
            out[i].get_or_insert((id, t.size_or_type));
        }
    }
    out
}

/// What needs the kernel's own BTF, with one read of it:
/// [`Feature::Fentry`] and [`Feature::Lsm`] (a program on
/// `bpf_fentry_test1` / `bpf_lsm_file_open`), and whether a struct_ops map
/// (of `tcp_congestion_ops`, value `bpf_struct_ops_tcp_congestion_ops`) can
/// be created.
pub fn probe_with_kernel_btf() -> ([(Feature, bool); 2], bool) {
    probe_with_btf(read_vmlinux().as_ref())
}

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), parsed.
pub(crate) fn read_vmlinux() -> Option<Btf> {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|d| Btf::parse(&d).ok())
}

/// [`probe_with_kernel_btf`] with the kernel's BTF already read.
pub(crate) fn probe_with_btf(vmlinux: Option<&Btf>) -> ([(Feature, bool); 2], bool) {
    let [fentry, lsm, ops] = vmlinux_lookup(
        vmlinux,
        [
            ("bpf_fentry_test1", BtfKind::Func),
            ("bpf_lsm_file_open", BtfKind::Func),
            ("bpf_struct_ops_tcp_congestion_ops", BtfKind::Struct),
        ],
    );
    let fentry = fentry.is_some_and(|(id, _)| {
        probe_btf_attach(ProgramType::TRACING, AttachType::TRACE_FENTRY, id)
    });
    let lsm =
        lsm.is_some_and(|(id, _)| probe_btf_attach(ProgramType::LSM, AttachType::LSM_MAC, id));
    // The kernel wants a BTF fd even for a value type of its own.
    let any_btf = sys::btf_load(&Btf::of(vec![("int", BtfType::int32())]).to_bytes(), None);
    let struct_ops = ops.zip(any_btf.ok()).is_some_and(|((id, size), btf)| {
        sys::map_create_vmlinux_value(
            &sys::MapCreate {
                map_type: MapType::STRUCT_OPS.0,
                key_size: 4,
                value_size: size,
                max_entries: 1,
                flags: 0,
                numa_node: 0,
                map_extra: 0,
                name: "rawbpf_probe",
                inner_map_fd: None,
                btf: Some((btf.as_fd(), 0, 0)),
            },
            id,
        )
        .is_ok()
    });
    ([(Feature::Fentry, fentry), (Feature::Lsm, lsm)], struct_ops)
}

/// Whether a program of type `t` loads on the kernel function of BTF id `id`.
fn probe_btf_attach(t: ProgramType, a: AttachType, id: u32) -> bool {
    load_attach(t, Some(a), id, &[mov_r0_0(), exit()]).is_ok()
}

impl Features {
    /// Whether bpf(2) works here at all: a one-element array map made and
    /// closed, or the error that stopped it.
    pub fn usable() -> std::io::Result<()> {
        sys::map_create(&sys::MapCreate {
            map_type: MapType::ARRAY.0,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            flags: 0,
            numa_node: 0,
            map_extra: 0,
            name: "probe",
            inner_map_fd: None,
            btf: None,
        })
        .map(drop)
    }

    /// Whether this process may use bpf(2) at all: without it every probe
    /// fails, which would read as a kernel that lacks everything.
    pub fn permitted() -> std::io::Result<()> {
        match Features::usable() {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Probes program types, map types, BTF kinds and features (not helpers:
    /// [`Features::probe_helpers`] asks for those per program type).
    pub fn probe() -> Features {
        Features {
            kernel: kernel_release(),
            prog_types: ProgramType::ALL
                .iter()
                .map(|&t| (t, probe_prog_type(t)))
                .filter(|(t, _)| *t != ProgramType::UNSPEC)
                .collect(),
            map_types: MapType::ALL
                .iter()
                .map(|&t| (t, probe_map_type(t)))
                .filter(|(t, _)| *t != MapType::UNSPEC)
                .collect(),
            btf_kinds: PROBED_BTF_KINDS
                .iter()
                .map(|&k| (k, probe_btf_kind(k, false)))
                .collect(),
            btf_global_func: probe_btf_kind(BtfKind::Func, true),
            features: Feature::QUICK
                .iter()
                .map(|&f| (f, probe_feature(f)))
                .collect(),
            helpers: BTreeMap::new(),
            arch: machine(),
            attach_types: EXPECTED_ATTACH_TYPES
                .iter()
                .flat_map(|(t, list)| list.iter().map(move |a| (*t, *a)))
                .map(|(t, a)| ((t, a), probe_expected_attach_type(t, a)))
                .collect(),
            link_kinds: LinkKind::ALL
                .iter()
                .map(|&k| (k, probe_link_kind(k)))
                .collect(),
            externs: None,
        }
    }

    /// Probes helpers `ids` for program type `t` (skipping ones already known).
    pub fn probe_helpers(&mut self, t: ProgramType, ids: impl IntoIterator<Item = u32>) {
        let known = self.helpers.entry(t).or_default();
        for id in ids {
            known.entry(id).or_insert_with(|| probe_helper(t, id));
        }
    }

    /// Whether a program type loads here (`None`: not probed).
    pub fn prog_type(&self, t: ProgramType) -> Option<bool> {
        self.prog_types.get(&t).copied().flatten()
    }

    /// Whether a map type can be created here (`None`: not probed).
    pub fn map_type(&self, t: MapType) -> Option<bool> {
        self.map_types.get(&t).copied().flatten()
    }

    /// Whether a feature is there.
    pub fn has(&self, f: Feature) -> bool {
        self.features.get(&f).copied().unwrap_or(false)
    }
}
