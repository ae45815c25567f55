//! Programs: libbpf's `SEC()` naming convention, and splitting code sections
//! into functions by symbol (clang puts every `SEC("tc")` function of a file
//! into one section "tc", so a section is not a program).

use super::btf::Btf;
use super::btf_ext::{BtfExt, CoreRelo, FuncInfo, LineInfo};
use super::core::{CoreReloKind, CoreReloSpec};
use super::elf::{Elf, Section, Symbol};
use super::ParseError;
use super::{FunctionSpec, ProgramSpec, RelocTarget};
use crate::uapi::{
    insn::SIZE as INSN_SIZE, AttachType as A, Insn, ProgramType as P, BPF_F_SLEEPABLE,
    BPF_F_XDP_HAS_FRAGS,
};
use std::collections::{HashMap, HashSet};

/// One row of the section-name table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionDef {
    /// The section name, or its prefix when `takes_target`.
    pub name: &'static str,
    /// Program type.
    pub prog_type: P,
    /// Expected attach type, if the section implies one.
    pub attach_type: Option<A>,
    /// Program load flags (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`).
    pub prog_flags: u32,
    /// `name` alone or `name/<target>` (libbpf's `+` suffix).
    pub takes_target: bool,
}

const fn def(name: &'static str, prog_type: P, attach_type: Option<A>, plus: bool) -> SectionDef {
    SectionDef {
        name,
        prog_type,
        attach_type,
        prog_flags: 0,
        takes_target: plus,
    }
}

const fn flags(mut d: SectionDef, prog_flags: u32) -> SectionDef {
    d.prog_flags = prog_flags;
    d
}

const S: u32 = BPF_F_SLEEPABLE;
const FRAGS: u32 = BPF_F_XDP_HAS_FRAGS;

/// libbpf's `section_defs[]` (libbpf 1.5), first match wins. Two additions
/// for objects written for iproute2's `tc`: `classifier/...`, `action/...`
/// and `tc/...` (other than `tc/ingress`, `tc/egress`) are accepted as
/// sched_cls / sched_act.
static SECTION_DEFS: &[SectionDef] = &[
    def("socket", P::SOCKET_FILTER, None, false),
    def(
        "sk_reuseport/migrate",
        P::SK_REUSEPORT,
        Some(A::SK_REUSEPORT_SELECT_OR_MIGRATE),
        false,
    ),
    def(
        "sk_reuseport",
        P::SK_REUSEPORT,
        Some(A::SK_REUSEPORT_SELECT),
        false,
    ),
    def("kprobe", P::KPROBE, None, true),
    def("uprobe", P::KPROBE, None, true),
    flags(def("uprobe.s", P::KPROBE, None, true), S),
    def("kretprobe", P::KPROBE, None, true),
    def("uretprobe", P::KPROBE, None, true),
    flags(def("uretprobe.s", P::KPROBE, None, true), S),
    def("kprobe.multi", P::KPROBE, Some(A::TRACE_KPROBE_MULTI), true),
    def(
        "kretprobe.multi",
        P::KPROBE,
        Some(A::TRACE_KPROBE_MULTI),
        true,
    ),
    def(
        "kprobe.session",
        P::KPROBE,
        Some(A::TRACE_KPROBE_SESSION),
        true,
    ),
    def("uprobe.multi", P::KPROBE, Some(A::TRACE_UPROBE_MULTI), true),
    def(
        "uretprobe.multi",
        P::KPROBE,
        Some(A::TRACE_UPROBE_MULTI),
        true,
    ),
    flags(
        def(
            "uprobe.multi.s",
            P::KPROBE,
            Some(A::TRACE_UPROBE_MULTI),
            true,
        ),
        S,
    ),
    flags(
        def(
            "uretprobe.multi.s",
            P::KPROBE,
            Some(A::TRACE_UPROBE_MULTI),
            true,
        ),
        S,
    ),
    def("ksyscall", P::KPROBE, None, true),
    def("kretsyscall", P::KPROBE, None, true),
    def("usdt", P::KPROBE, None, true),
    flags(def("usdt.s", P::KPROBE, None, true), S),
    def("tc/ingress", P::SCHED_CLS, Some(A::TCX_INGRESS), false),
    def("tc/egress", P::SCHED_CLS, Some(A::TCX_EGRESS), false),
    def("tcx/ingress", P::SCHED_CLS, Some(A::TCX_INGRESS), false),
    def("tcx/egress", P::SCHED_CLS, Some(A::TCX_EGRESS), false),
    def("tc", P::SCHED_CLS, None, true),
    def("classifier", P::SCHED_CLS, None, true),
    def("action", P::SCHED_ACT, None, true),
    def(
        "netkit/primary",
        P::SCHED_CLS,
        Some(A::NETKIT_PRIMARY),
        false,
    ),
    def("netkit/peer", P::SCHED_CLS, Some(A::NETKIT_PEER), false),
    def("tracepoint", P::TRACEPOINT, None, true),
    def("tp", P::TRACEPOINT, None, true),
    def("raw_tracepoint", P::RAW_TRACEPOINT, None, true),
    def("raw_tp", P::RAW_TRACEPOINT, None, true),
    def("raw_tracepoint.w", P::RAW_TRACEPOINT_WRITABLE, None, true),
    def("raw_tp.w", P::RAW_TRACEPOINT_WRITABLE, None, true),
    def("tp_btf", P::TRACING, Some(A::TRACE_RAW_TP), true),
    def("fentry", P::TRACING, Some(A::TRACE_FENTRY), true),
    def("fmod_ret", P::TRACING, Some(A::MODIFY_RETURN), true),
    def("fexit", P::TRACING, Some(A::TRACE_FEXIT), true),
    flags(def("fentry.s", P::TRACING, Some(A::TRACE_FENTRY), true), S),
    flags(
        def("fmod_ret.s", P::TRACING, Some(A::MODIFY_RETURN), true),
        S,
    ),
    flags(def("fexit.s", P::TRACING, Some(A::TRACE_FEXIT), true), S),
    def("freplace", P::EXT, None, true),
    def("lsm", P::LSM, Some(A::LSM_MAC), true),
    flags(def("lsm.s", P::LSM, Some(A::LSM_MAC), true), S),
    def("lsm_cgroup", P::LSM, Some(A::LSM_CGROUP), true),
    def("iter", P::TRACING, Some(A::TRACE_ITER), true),
    flags(def("iter.s", P::TRACING, Some(A::TRACE_ITER), true), S),
    flags(def("syscall", P::SYSCALL, None, false), S),
    flags(
        def("xdp.frags/devmap", P::XDP, Some(A::XDP_DEVMAP), false),
        FRAGS,
    ),
    def("xdp/devmap", P::XDP, Some(A::XDP_DEVMAP), false),
    flags(
        def("xdp.frags/cpumap", P::XDP, Some(A::XDP_CPUMAP), false),
        FRAGS,
    ),
    def("xdp/cpumap", P::XDP, Some(A::XDP_CPUMAP), false),
    flags(def("xdp.frags", P::XDP, Some(A::XDP), false), FRAGS),
    def("xdp", P::XDP, Some(A::XDP), false),
    def("perf_event", P::PERF_EVENT, None, false),
    def("lwt_in", P::LWT_IN, None, false),
    def("lwt_out", P::LWT_OUT, None, false),
    def("lwt_xmit", P::LWT_XMIT, None, false),
    def("lwt_seg6local", P::LWT_SEG6LOCAL, None, false),
    def("sockops", P::SOCK_OPS, Some(A::CGROUP_SOCK_OPS), false),
    def(
        "sk_skb/stream_parser",
        P::SK_SKB,
        Some(A::SK_SKB_STREAM_PARSER),
        false,
    ),
    def(
        "sk_skb/stream_verdict",
        P::SK_SKB,
        Some(A::SK_SKB_STREAM_VERDICT),
        false,
    ),
    def("sk_skb/verdict", P::SK_SKB, Some(A::SK_SKB_VERDICT), false),
    def("sk_skb", P::SK_SKB, None, false),
    def("sk_msg", P::SK_MSG, Some(A::SK_MSG_VERDICT), false),
    def("lirc_mode2", P::LIRC_MODE2, Some(A::LIRC_MODE2), false),
    def(
        "flow_dissector",
        P::FLOW_DISSECTOR,
        Some(A::FLOW_DISSECTOR),
        false,
    ),
    def(
        "cgroup_skb/ingress",
        P::CGROUP_SKB,
        Some(A::CGROUP_INET_INGRESS),
        false,
    ),
    def(
        "cgroup_skb/egress",
        P::CGROUP_SKB,
        Some(A::CGROUP_INET_EGRESS),
        false,
    ),
    def("cgroup/skb", P::CGROUP_SKB, None, false),
    def(
        "cgroup/sock_create",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_CREATE),
        false,
    ),
    def(
        "cgroup/sock_release",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_RELEASE),
        false,
    ),
    def(
        "cgroup/sock",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_CREATE),
        false,
    ),
    def(
        "cgroup/post_bind4",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET4_POST_BIND),
        false,
    ),
    def(
        "cgroup/post_bind6",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET6_POST_BIND),
        false,
    ),
    def(
        "cgroup/bind4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET4_BIND),
        false,
    ),
    def(
        "cgroup/bind6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET6_BIND),
        false,
    ),
    def(
        "cgroup/connect4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET4_CONNECT),
        false,
    ),
    def(
        "cgroup/connect6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET6_CONNECT),
        false,
    ),
    def(
        "cgroup/connect_unix",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UNIX_CONNECT),
        false,
    ),
    def(
        "cgroup/sendmsg4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UDP4_SENDMSG),
        false,
    ),
    def(
        "cgroup/sendmsg6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UDP6_SENDMSG),
        false,
    ),
    def(
        "cgroup/sendmsg_unix",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UNIX_SENDMSG),
        false,
    ),
    def(
        "cgroup/recvmsg4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UDP4_RECVMSG),
        false,
    ),
    def(
        "cgroup/recvmsg6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UDP6_RECVMSG),
        false,
    ),
    def(
        "cgroup/recvmsg_unix",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UNIX_RECVMSG),
        false,
    ),
    def(
        "cgroup/getpeername4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET4_GETPEERNAME),
        false,
    ),
    def(
        "cgroup/getpeername6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET6_GETPEERNAME),
        false,
    ),
    def(
        "cgroup/getpeername_unix",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UNIX_GETPEERNAME),
        false,
    ),
    def(
        "cgroup/getsockname4",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET4_GETSOCKNAME),
        false,
    ),
    def(
        "cgroup/getsockname6",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_INET6_GETSOCKNAME),
        false,
    ),
    def(
        "cgroup/getsockname_unix",
        P::CGROUP_SOCK_ADDR,
        Some(A::CGROUP_UNIX_GETSOCKNAME),
        false,
    ),
    def(
        "cgroup/sysctl",
        P::CGROUP_SYSCTL,
        Some(A::CGROUP_SYSCTL),
        false,
    ),
    def(
        "cgroup/getsockopt",
        P::CGROUP_SOCKOPT,
        Some(A::CGROUP_GETSOCKOPT),
        false,
    ),
    def(
        "cgroup/setsockopt",
        P::CGROUP_SOCKOPT,
        Some(A::CGROUP_SETSOCKOPT),
        false,
    ),
    def(
        "cgroup/dev",
        P::CGROUP_DEVICE,
        Some(A::CGROUP_DEVICE),
        false,
    ),
    def("struct_ops", P::STRUCT_OPS, None, true),
    flags(def("struct_ops.s", P::STRUCT_OPS, None, true), S),
    def("sk_lookup", P::SK_LOOKUP, Some(A::SK_LOOKUP), false),
    def("netfilter", P::NETFILTER, Some(A::NETFILTER), false),
];

/// The program type a section name gives, and what follows its prefix
/// (`kprobe/do_sys_open` → `do_sys_open`); `None` for an unknown name.
pub fn section_def(section: &str) -> Option<(&'static SectionDef, Option<&str>)> {
    SECTION_DEFS.iter().find_map(|d| {
        if section == d.name {
            return Some((d, None));
        }
        let rest = section.strip_prefix(d.name)?.strip_prefix('/')?;
        d.takes_target.then_some((d, Some(rest)))
    })
}

/// A function found in a code section, while the parse is under way.
pub(super) struct Function {
    pub spec: FunctionSpec,
    pub section_index: usize,
    /// `None` for `.text` subprograms.
    pub program: Option<(&'static SectionDef, Option<String>)>,
}

/// Every function of every code section, in file order.
pub(super) struct Functions {
    pub list: Vec<Function>,
    /// (section index, first instruction, index in `list`), sorted: the
    /// look-ups below are binary searches, so that resolving every
    /// relocation and call is not functions × relocations.
    by_start: Vec<(usize, usize, usize)>,
}

impl Functions {
    fn new(list: Vec<Function>) -> Functions {
        let mut by_start: Vec<(usize, usize, usize)> = list
            .iter()
            .enumerate()
            .map(|(i, f)| (f.section_index, f.spec.section_offset, i))
            .collect();
        by_start.sort_unstable();
        Functions { list, by_start }
    }

    /// The function of `section_index` that contains instruction `insn`
    /// (an index within the section). Functions of a section do not overlap
    /// (`collect_functions` checks), so only the last one starting at or
    /// before `insn` can.
    pub fn containing(&self, section_index: usize, insn: usize) -> Option<usize> {
        let after = self
            .by_start
            .partition_point(|&(s, start, _)| (s, start) <= (section_index, insn));
        let &(s, _, i) = self.by_start.get(after.checked_sub(1)?)?;
        let f = &self.list[i];
        (s == section_index && insn < f.spec.section_offset + f.spec.insns.len()).then_some(i)
    }

    /// The function of `section_index` that starts at instruction `insn`.
    pub fn starting_at(&self, section_index: usize, insn: usize) -> Option<usize> {
        let at = self
            .by_start
            .partition_point(|&(s, start, _)| (s, start) < (section_index, insn));
        self.by_start
            .get(at)
            .filter(|&&(s, start, _)| (s, start) == (section_index, insn))
            .map(|&(_, _, i)| i)
    }
}

/// Splits every code section into its functions by `STT_FUNC` symbols.
pub(super) fn collect_functions(elf: &Elf<'_>) -> Result<Functions, ParseError> {
    let mut list = Vec::new();
    for section in elf.sections.iter().filter(|s| s.is_code() && s.size > 0) {
        let sname = section.name;
        if !section.size.is_multiple_of(INSN_SIZE as u64) {
            return Err(ParseError::BadCodeSize {
                section: sname.to_owned(),
                size: section.size,
            });
        }
        let mut syms: Vec<_> = elf
            .symbols_in(section.index)
            .filter(|s| s.is_func())
            .collect();
        syms.sort_by_key(|s| (s.value, s.size));
        let Some(first) = syms.first() else {
            return Err(ParseError::NoFunctionSymbols {
                section: sname.to_owned(),
                size: section.size,
            });
        };
        let is_text = sname == ".text";
        let def = if is_text {
            None
        } else {
            Some(
                section_def(sname).ok_or_else(|| ParseError::UnknownSection {
                    section: sname.to_owned(),
                    program: first.name.to_owned(),
                })?,
            )
        };
        let mut prev = (0u64, "");
        for sym in syms {
            let end = check_function_symbol(section, sym, is_text, prev)?;
            prev = (end, sym.name);
            // In bounds: `end <= section.size == data.len()` was checked above.
            let code = &section.data[sym.value as usize..end as usize];
            list.push(Function {
                spec: FunctionSpec {
                    name: sym.name.to_owned(),
                    section: sname.to_owned(),
                    section_offset: sym.value as usize / INSN_SIZE,
                    insns: Insn::decode_all(code),
                    relocations: Vec::new(),
                    global: sym.global,
                    btf_func_id: None,
                    func_info: Vec::new(),
                    line_info: Vec::new(),
                    core_relos: Vec::new(),
                },
                section_index: section.index,
                program: def.map(|(d, target)| (d, target.map(str::to_owned))),
            });
        }
    }
    Ok(Functions::new(list))
}

/// A function symbol of a code section: whole instructions inside the
/// section, not empty, global if it is a program, and after the previous
/// function (`prev`: its end and name). Returns its end offset.
fn check_function_symbol(
    section: &Section<'_>,
    sym: &Symbol<'_>,
    is_text: bool,
    (prev_end, prev_name): (u64, &str),
) -> Result<u64, ParseError> {
    let sname = section.name;
    let end = sym.value.checked_add(sym.size);
    let aligned =
        sym.value.is_multiple_of(INSN_SIZE as u64) && sym.size.is_multiple_of(INSN_SIZE as u64);
    let Some(end) = end.filter(|&e| e <= section.size && aligned) else {
        return Err(ParseError::FunctionOutOfSection {
            section: sname.to_owned(),
            symbol: sym.name.to_owned(),
            start: sym.value,
            end: end.unwrap_or(u64::MAX),
            size: section.size,
        });
    };
    if sym.size == 0 {
        return Err(ParseError::EmptyProgram {
            what: if is_text { "function" } else { "program" },
            section: sname.to_owned(),
            symbol: sym.name.to_owned(),
        });
    }
    if !is_text && !sym.global {
        return Err(ParseError::StaticProgram {
            section: sname.to_owned(),
            symbol: sym.name.to_owned(),
        });
    }
    if sym.value < prev_end {
        return Err(ParseError::FunctionsOverlap {
            section: sname.to_owned(),
            first: prev_name.to_owned(),
            second: sym.name.to_owned(),
        });
    }
    Ok(end)
}

/// Hands each function the `.BTF.ext` func_info and line_info records that fall
/// inside it, converted from byte offsets in the section to instruction indices
/// relative to the function (the unit `BPF_PROG_LOAD` takes).
///
/// Records are gathered per section and sorted by offset once (stably, so
/// records at one offset keep their order; the kernel wants them sorted),
/// then each function takes its range by binary search: the work is
/// functions plus records, not their product.
pub(super) fn attach_btf_ext(
    functions: &mut Functions,
    ext: &BtfExt,
    btf: &Btf,
) -> Result<(), ParseError> {
    let funcs = by_section(
        ext.func_info
            .iter()
            .map(|s| (s.section.as_str(), &s.records[..])),
        |r: &FuncInfo| r.insn_off,
    );
    let lines = by_section(
        ext.line_info
            .iter()
            .map(|s| (s.section.as_str(), &s.records[..])),
        |r: &LineInfo| r.insn_off,
    );
    let relos = by_section(
        ext.core_relos
            .iter()
            .map(|s| (s.section.as_str(), &s.records[..])),
        |r: &CoreRelo| r.insn_off,
    );
    for f in &mut functions.list {
        let start = f.spec.section_offset as u64 * INSN_SIZE as u64;
        let end = start + f.spec.insns.len() as u64 * INSN_SIZE as u64;
        let section = f.spec.section.as_str();
        f.spec.func_info.extend(within(
            funcs.get(section),
            (start, end),
            |r| r.insn_off,
            |r, insn_off| FuncInfo { insn_off, ..r },
        ));
        f.spec.line_info.extend(within(
            lines.get(section),
            (start, end),
            |r| r.insn_off,
            |r, insn_off| LineInfo { insn_off, ..r },
        ));
        f.spec.btf_func_id = f
            .spec
            .func_info
            .iter()
            .find(|r| r.insn_off == 0)
            .map(|r| r.type_id);
        for r in within(
            relos.get(section),
            (start, end),
            |r| r.insn_off,
            |r, insn_off| CoreRelo { insn_off, ..r },
        ) {
            let relo = core_relo_spec(btf, section, f.spec.section_offset, r)?;
            f.spec.core_relos.push(relo);
        }
    }
    Ok(())
}

/// `.BTF.ext` records of one kind gathered per section, sorted by offset.
fn by_section<'a, T: Copy + 'a>(
    blocks: impl Iterator<Item = (&'a str, &'a [T])>,
    off: impl Fn(&T) -> u32,
) -> HashMap<&'a str, Vec<T>> {
    let mut out: HashMap<&str, Vec<T>> = HashMap::new();
    for (section, records) in blocks {
        out.entry(section).or_default().extend_from_slice(records);
    }
    for records in out.values_mut() {
        records.sort_by_key(&off);
    }
    out
}
/// The records with byte offsets in `start..end` that are whole
/// instructions, as instruction indices from `start`.
fn within<T: Copy>(
    records: Option<&Vec<T>>,
    (start, end): (u64, u64),
    off: impl Fn(&T) -> u32,
    with_off: impl Fn(T, u32) -> T,
) -> Vec<T> {
    let records = records.map_or(&[][..], |r| &r[..]);
    let lo = records.partition_point(|r| u64::from(off(r)) < start);
    let hi = records.partition_point(|r| u64::from(off(r)) < end);
    records[lo..hi.max(lo)]
        .iter()
        .filter_map(|&r| {
            let rel = u64::from(off(&r)) - start;
            rel.is_multiple_of(INSN_SIZE as u64)
                .then(|| with_off(r, (rel / INSN_SIZE as u64) as u32))
        })
        .collect()
}

/// A `.BTF.ext` CO-RE record of the function at `func_offset` (in
/// instructions) of `section`, checked against the object's BTF.
fn core_relo_spec(
    btf: &Btf,
    section: &str,
    func_offset: usize,
    r: CoreRelo,
) -> Result<CoreReloSpec, ParseError> {
    let bad = |reason: String| ParseError::CoreRelo {
        section: section.to_owned(),
        insn: func_offset + r.insn_off as usize,
        reason,
    };
    let kind = CoreReloKind::from_u32(r.kind)
        .ok_or_else(|| bad(format!("unknown CO-RE relocation kind {}", r.kind)))?;
    let access = btf
        .string(r.access_str_off)
        .map_err(|e| bad(e.to_string()))?
        .to_owned();
    let relo = CoreReloSpec {
        insn: r.insn_off as usize,
        type_id: r.type_id,
        access,
        kind,
    };
    super::core::validate(btf, &relo).map_err(bad)?;
    Ok(relo)
}

/// Separates programs from `.text` subprograms and works out, for each
/// program, which subprograms it reaches through calls and callbacks.
pub(super) fn split_programs(
    functions: Functions,
) -> Result<(Vec<ProgramSpec>, Vec<FunctionSpec>), ParseError> {
    let (progs, subs): (Vec<_>, Vec<_>) = functions
        .list
        .into_iter()
        .partition(|f| f.program.is_some());
    let subprograms: Vec<FunctionSpec> = subs.into_iter().map(|f| f.spec).collect();
    let by_name = super::by_name(&subprograms);
    let programs = progs
        .into_iter()
        .filter_map(|f| {
            let (def, target) = f.program?;
            let reached = reachable(&f.spec, &by_name);
            Some(ProgramSpec {
                function: f.spec,
                prog_type: def.prog_type,
                attach_type: def.attach_type,
                prog_flags: def.prog_flags,
                attach_target: target,
                subprograms: reached,
            })
        })
        .collect();
    Ok((programs, subprograms))
}

/// Names of the subprograms `root` reaches, breadth-first, each once.
fn reachable(root: &FunctionSpec, by_name: &HashMap<&str, &FunctionSpec>) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue: Vec<&FunctionSpec> = vec![root];
    let mut next = 0;
    while let Some(f) = queue.get(next).copied() {
        next += 1;
        for r in &f.relocations {
            let callee = match &r.target {
                RelocTarget::Call { function } | RelocTarget::FuncAddr { function } => function,
                _ => continue,
            };
            if !seen.insert(callee.as_str()) {
                continue;
            }
            if let Some(&sub) = by_name.get(callee.as_str()) {
                order.push(callee.clone());
                queue.push(sub);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_follow_libbpf() {
        fn t(s: &str) -> Option<(P, Option<A>, Option<&str>)> {
            section_def(s).map(|(d, target)| (d.prog_type, d.attach_type, target))
        }
        assert_eq!(t("tc"), Some((P::SCHED_CLS, None, None)));
        assert_eq!(t("classifier"), Some((P::SCHED_CLS, None, None)));
        assert_eq!(
            t("tc/ingress"),
            Some((P::SCHED_CLS, Some(A::TCX_INGRESS), None))
        );
        assert_eq!(
            t("tcx/egress"),
            Some((P::SCHED_CLS, Some(A::TCX_EGRESS), None))
        );
        assert_eq!(t("xdp"), Some((P::XDP, Some(A::XDP), None)));
        assert_eq!(t("socket"), Some((P::SOCKET_FILTER, None, None)));
        assert_eq!(
            t("kprobe/do_sys_open"),
            Some((P::KPROBE, None, Some("do_sys_open")))
        );
        assert_eq!(
            t("tracepoint/syscalls/sys_enter_openat"),
            Some((P::TRACEPOINT, None, Some("syscalls/sys_enter_openat")))
        );
        assert_eq!(
            t("cgroup_skb/ingress"),
            Some((P::CGROUP_SKB, Some(A::CGROUP_INET_INGRESS), None))
        );
        assert_eq!(
            t("cgroup_skb/egress"),
            Some((P::CGROUP_SKB, Some(A::CGROUP_INET_EGRESS), None))
        );
        assert_eq!(
            section_def("xdp.frags").unwrap().0.prog_flags,
            BPF_F_XDP_HAS_FRAGS
        );
        assert_eq!(
            section_def("fentry.s/foo").unwrap().0.prog_flags,
            BPF_F_SLEEPABLE
        );
        // Prefix entries need the slash: "kprobes" is not "kprobe/...".
        assert_eq!(t("kprobes"), None);
        assert_eq!(t("xdp_prog"), None);
        assert_eq!(t("maps"), None);
        assert_eq!(t(".text"), None);
        // Exact entries take no target.
        assert_eq!(t("socket/1"), None);
    }
}
