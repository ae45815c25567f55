//! What this kernel supports, found by asking it — tiny map creates,
//! program loads and BTF loads, as bpftool's feature probe does — and the
//! comparison of an object's needs against that ([`check`]), which is pure
//! so it can be tested against any [`Features`].

use crate::obj::btf::{Btf, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData, BtfVarSecinfo};
use crate::obj::{ObjectSpec, RelocTarget};
use crate::sys;
use crate::uapi::{insn as op, AttachType, Insn, MapType, ProgramType};
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, OwnedFd};

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
}

impl Feature {
    /// All features, in order.
    pub const ALL: [Feature; 6] = [
        Feature::Bpf2BpfCalls,
        Feature::Bpf2BpfWithTailCalls,
        Feature::GlobalData,
        Feature::TestRun,
        Feature::Tcx,
        Feature::Bpffs,
    ];

    /// A short name for output.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Bpf2BpfCalls => "bpf2bpf_calls",
            Feature::Bpf2BpfWithTailCalls => "bpf2bpf_with_tail_calls",
            Feature::GlobalData => "global_data",
            Feature::TestRun => "test_run",
            Feature::Tcx => "tcx",
            Feature::Bpffs => "bpffs",
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

/// Whether the kernel creates a map of this type; `None` for types that
/// need BTF or other setup rawbpf does not probe.
pub fn probe_map_type(t: MapType) -> Option<bool> {
    const NO_PREALLOC: u32 = 1;
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
        _ => return None,
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
    }
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
            features: Feature::ALL
                .iter()
                .map(|&f| (f, probe_feature(f)))
                .collect(),
            helpers: BTreeMap::new(),
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

/// Helper ids a function calls.
pub fn helpers_called(insns: &[Insn]) -> BTreeSet<u32> {
    insns
        .iter()
        .filter(|i| i.is_helper_call())
        .map(|i| i.imm as u32)
        .collect()
}

/// A helper's name (`bpf_map_lookup_elem` for 1), for every helper up to
/// `BPF_FUNC_cgrp_storage_delete` (211); `None` for ids past those.
pub fn helper_name(id: u32) -> Option<&'static str> {
    crate::helper_names::HELPER_NAMES
        .get(id as usize)
        .copied()
        .filter(|_| id != 0)
}

/// One reason a program would not load here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The program (or "(object)").
    pub program: String,
    /// What it needs that is missing, in plain words.
    pub reason: String,
}

/// What `check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Per program: its type and what it needs (helpers, map types, features).
    pub needs: Vec<(String, ProgramType, Vec<String>)>,
    /// What would fail.
    pub problems: Vec<Problem>,
    /// What would load differently (BTF dropped, ...), not a failure.
    pub notes: Vec<String>,
}

impl CheckReport {
    /// Whether everything would load.
    pub fn would_load(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The helpers each program of `spec` calls (its own code and its subprograms').
pub fn program_helpers(spec: &ObjectSpec) -> Vec<(ProgramType, BTreeSet<u32>)> {
    spec.programs
        .iter()
        .map(|p| {
            let ids = p
                .functions(spec)
                .flat_map(|f| helpers_called(&f.insns))
                .collect();
            (p.prog_type, ids)
        })
        .collect()
}

/// Compares what `spec` needs with what `features` has. Pure: run it with
/// probed features, or with made-up ones in tests. `.kconfig` values are
/// not known: see [`check_with_kconfig`].
pub fn check(spec: &ObjectSpec, features: &Features) -> CheckReport {
    check_with_kconfig(spec, features, None)
}

/// [`check`], with the `.kconfig` values the loader would give the object
/// on the kernel checked against ([`kconfig_data`](crate::kconfig::kconfig_data)):
/// helper calls behind a false `.kconfig` guard or `.rodata` flag are dead
/// code the verifier prunes, and do not count.
pub fn check_with_kconfig(
    spec: &ObjectSpec,
    features: &Features,
    kconfig: Option<&[u8]>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let btf = check_btf(spec, features, &mut report);
    check_maps(spec, features, &mut report);
    for p in &spec.programs {
        let ids = crate::obj::reach::program_helpers(spec, p, kconfig);
        check_program(p, &ids, spec, features, btf, &mut report);
    }
    report
}

impl CheckReport {
    fn problem(&mut self, program: &str, reason: String) {
        self.problems.push(Problem {
            program: program.to_owned(),
            reason,
        })
    }
}

/// What the object's BTF means on this kernel.
#[derive(Clone, Copy)]
struct BtfOutlook {
    /// The kernel will refuse the object's BTF (it loads without it).
    refused: bool,
    /// Global functions need BTF the kernel does not check.
    globals_need_btf: bool,
}

/// Whether the kernel takes the object's BTF (a note if not).
fn check_btf(spec: &ObjectSpec, features: &Features, report: &mut CheckReport) -> BtfOutlook {
    let btf_missing: Vec<&str> = spec
        .btf
        .as_ref()
        .map(|b| {
            b.kinds_used()
                .into_iter()
                .filter(|k| features.btf_kinds.get(k) == Some(&false))
                .map(|k| k.name())
                .collect()
        })
        .unwrap_or_default();
    // The loader rewrites kinds the kernel lacks as libbpf does (BTF
    // sanitization, load::btf) and keeps the BTF, global functions made
    // static where global linkage is missing; without FUNC (before 5.0)
    // there is no func_info to keep.
    let refused = spec.btf.is_some()
        && !features
            .btf_kinds
            .get(&BtfKind::Func)
            .copied()
            .unwrap_or(true);
    if refused {
        report.notes.push(
            "the kernel has no BTF FUNC kind: the object loads without its BTF (no func/line info)"
                .to_owned(),
        );
    } else if !btf_missing.is_empty() {
        report.notes.push(format!(
            "the kernel lacks BTF kinds {}: the loader rewrites them (BTF sanitization, as libbpf) and keeps the object's BTF",
            btf_missing.join(" ")
        ));
    }
    let globals_need_btf = refused
        && spec.btf.as_ref().is_some_and(|b| {
            b.types()
                .any(|(_, t)| t.kind == BtfKind::Func && t.func_linkage() == 1)
        });
    BtfOutlook {
        refused,
        globals_need_btf,
    }
}

/// Whether the kernel creates each map of the object.
fn check_maps(spec: &ObjectSpec, features: &Features, report: &mut CheckReport) {
    for m in &spec.maps {
        if let Some(rule) = m.kernel_rule_broken() {
            report.problem(
                "(object)",
                format!("map {}: {rule}; the kernel will refuse it", m.name),
            );
        }
        match features.map_type(m.map_type) {
            Some(false) => report.problem(
                "(object)",
                format!(
                    "map {} is a {}, which this kernel cannot create",
                    m.name, m.map_type
                ),
            ),
            None if features.map_types.contains_key(&m.map_type) => report.notes.push(format!(
                "map {}: type {} was not probed",
                m.name, m.map_type
            )),
            _ => {}
        }
        if m.inner
            .as_ref()
            .is_some_and(|i| features.map_type(i.map_type) == Some(false))
        {
            report.problem(
                "(object)",
                format!(
                    "map {}: its inner maps' type cannot be created here",
                    m.name
                ),
            );
        }
    }
}

/// What program `p` needs (its type, the helpers `ids` it calls, global
/// data, bpf-to-bpf calls, TCX), and what of that this kernel lacks.
fn check_program(
    p: &crate::obj::ProgramSpec,
    ids: &BTreeSet<u32>,
    spec: &ObjectSpec,
    features: &Features,
    btf: BtfOutlook,
    report: &mut CheckReport,
) {
    let name = p.name();
    let mut needs = Vec::new();
    match features.prog_type(p.prog_type) {
        Some(false) => report.problem(
            name,
            format!(
                "program type {} is not supported by this kernel",
                p.prog_type
            ),
        ),
        None => report.notes.push(format!(
            "{name}: program type {} was not probed",
            p.prog_type
        )),
        _ => {}
    }
    for id in ids {
        let label =
            helper_name(*id).map_or_else(|| format!("helper #{id}"), |n| format!("{n} (#{id})"));
        needs.push(label.clone());
        if features.helpers.get(&p.prog_type).and_then(|h| h.get(id)) == Some(&false) {
            report.problem(
                name,
                format!(
                    "helper {label} is not available to {} programs on this kernel",
                    p.prog_type
                ),
            );
        }
    }
    if p.functions(spec)
        .flat_map(|f| &f.relocations)
        .any(|r| matches!(r.target, RelocTarget::MapValue { .. }))
    {
        needs.push("global data".into());
        if !features.has(Feature::GlobalData) {
            report.problem(
                name,
                "global data (map value addresses) needs kernel 5.2".into(),
            );
        }
    }
    if !p.subprograms.is_empty() {
        check_calls(p, ids, spec, features, btf, &mut needs, report);
    }
    if matches!(
        p.attach_type,
        Some(AttachType::TCX_INGRESS) | Some(AttachType::TCX_EGRESS)
    ) {
        needs.push("tcx attach".into());
        if !features.has(Feature::Tcx) {
            report.notes.push(format!("{name}: section {} names a TCX attachment, which needs kernel 6.6; attach it as a clsact filter (tc mode) here", p.section()));
        }
    }
    report.needs.push((name.to_owned(), p.prog_type, needs));
}

/// What a program with bpf-to-bpf calls needs of the kernel.
fn check_calls(
    p: &crate::obj::ProgramSpec,
    ids: &BTreeSet<u32>,
    spec: &ObjectSpec,
    features: &Features,
    btf: BtfOutlook,
    needs: &mut Vec<String>,
    report: &mut CheckReport,
) {
    let name = p.name();
    needs.push("bpf2bpf calls".into());
    if !features.has(Feature::Bpf2BpfCalls) {
        report.problem(
            name,
            "bpf-to-bpf calls are not supported by this kernel".into(),
        );
    }
    if ids.contains(&12) {
        needs.push("bpf2bpf calls with tail calls".into());
        if !features.has(Feature::Bpf2BpfWithTailCalls) {
            report.problem(
                name,
                "tail calls in a program with bpf-to-bpf calls need kernel 5.10 (x86-64 JIT)"
                    .into(),
            );
        }
    }
    let calls_global = p.functions(spec).skip(1).any(|f| f.global);
    if calls_global && (btf.refused || btf.globals_need_btf) {
        report.problem(
            name,
            "it calls a global function, which the verifier checks against BTF this kernel refuses"
                .into(),
        );
    }
}

/// What CO-RE relocation against `types` (this kernel's BTF, or `--btf`)
/// would do to each program, without loading: a relocation libbpf would
/// refuse is a problem; a failed one poisons its instruction, which is a
/// problem only if the verifier can reach it (a `bpf_core_field_exists`
/// guard makes it dead code), as [`core::reachable_poison`] works out on the
/// relocated code.
///
/// [`core::reachable_poison`]: crate::obj::core::reachable_poison
pub fn check_core(
    spec: &ObjectSpec,
    types: &dyn crate::obj::core::TargetTypes,
    report: &mut CheckReport,
) {
    use crate::obj::core;
    if spec.core_relocations == 0 {
        return;
    }
    let plan = match core::plan(spec, types) {
        Ok(plan) => plan,
        Err(e) => {
            report.problems.push(Problem {
                program: "(object)".into(),
                reason: e.to_string(),
            });
            return;
        }
    };
    let mut relocated = spec.clone();
    if let Err(e) = plan.apply(&mut relocated) {
        report.problems.push(Problem {
            program: "(object)".into(),
            reason: e.to_string(),
        });
        return;
    }
    for p in &relocated.programs {
        let Ok(linked) = p.link(&relocated) else {
            continue;
        };
        // Poisoned instructions at their place in the linked program: the
        // program's own function, then its subprograms in link order.
        let mut poisoned = Vec::new();
        let mut failed = Vec::new();
        let mut start = 0;
        for f in p.functions(&relocated) {
            for fix in plan.for_function(&f.name) {
                if let Err(why) = &fix.outcome {
                    poisoned.push(start + fix.insn);
                    failed.push((start + fix.insn, fix, why));
                }
            }
            start += f.insns.len();
        }
        if failed.is_empty() {
            continue;
        }
        let reached = core::reachable_poison(&linked.insns, &poisoned);
        for (at, fix, why) in failed {
            let text = format!(
                "CO-RE relocation {} (instruction {} of {}) fails here: {}",
                fix.relocation(),
                fix.insn,
                fix.function,
                why.reason
            );
            if reached.contains(&at) {
                report.problems.push(Problem {
                    program: p.name().to_owned(),
                    reason: format!("{text}; the verifier reaches it"),
                });
            } else {
                report.notes.push(format!(
                    "{}: {text}; unreachable (guarded), so the program still loads",
                    p.name()
                ));
            }
        }
    }
}
