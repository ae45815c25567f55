//! The comparison of an object's needs with a kernel's [`Features`]: pure,
//! so it runs as well on facts probed here as on a target file's.

use super::{Feature, Features, LinkKind};
use crate::obj::btf::BtfKind;
use crate::obj::{ObjectSpec, RelocTarget};
use crate::uapi::{AttachType, Insn, ProgramType};
use std::collections::BTreeSet;

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
    check_with_core(spec, features, kconfig, None)
}

/// [`check_with_kconfig`], with the kernel's BTF (`types`: the running
/// kernel's, or the target's `--btf`) known: helpers are counted on the
/// code a load would give the kernel, its CO-RE relocations applied
/// ([`core::relocate`](crate::obj::core::relocate)), so a call behind a
/// CO-RE guard that is false there (`if (bpf_core_enum_value_exists(enum
/// bpf_func_id, BPF_FUNC_get_func_ip))` before 5.15) does not count. With
/// no `types`, or relocations that cannot be applied, helpers are counted
/// on the object's own code, as without BTF. With `types`, the CO-RE
/// failures follow, as [`check_core`] reports them, from the same
/// relocation.
pub fn check_with_core(
    spec: &ObjectSpec,
    features: &Features,
    kconfig: Option<&[u8]>,
    types: Option<&dyn crate::obj::core::TargetTypes>,
) -> CheckReport {
    let mut report = CheckReport::default();
    let btf = check_btf(spec, features, &mut report);
    check_maps(spec, features, &mut report);
    let relocation = types
        .filter(|_| spec.core_relocations > 0)
        .map(|t| crate::obj::core::relocate(spec, t));
    // Relocation rewrites instructions only: program i is program i.
    let code = match &relocation {
        Some(Ok((relocated, _))) => relocated,
        _ => spec,
    };
    for (p, seen) in spec.programs.iter().zip(&code.programs) {
        let ids = crate::obj::reach::program_helpers(code, seen, kconfig);
        check_program(p, &ids, spec, features, btf, &mut report);
    }
    if let Some(relocation) = relocation {
        core_problems(relocation, &mut report);
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
        if lacks(features, Feature::MapSpinLock) && value_has_spin_lock(spec, m.btf_value_type_id) {
            report.problem(
                "(object)",
                format!(
                    "map {}: its value holds a bpf_spin_lock, which this kernel does not support in maps",
                    m.name
                ),
            );
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
    check_attach(p, features, &mut needs, report);
    for id in ids {
        let label =
            helper_name(*id).map_or_else(|| format!("helper #{id}"), |n| format!("{n} (#{id})"));
        needs.push(label.clone());
        if helper_missing(features, p.prog_type, *id) {
            // "helper bpf_loop (#181)", "helper #100000".
            let what = if label.starts_with("helper ") {
                label.clone()
            } else {
                format!("helper {label}")
            };
            report.problem(
                name,
                format!(
                    "{what} is not available to {} programs on this kernel",
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
        if lacks(features, Feature::GlobalData) {
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
        if lacks(features, Feature::Tcx) {
            report.notes.push(format!("{name}: section {} names a TCX attachment, which needs kernel 6.6; attach it as a clsact filter (tc mode) here", p.section()));
        }
    }
    report.needs.push((name.to_owned(), p.prog_type, needs));
}

/// Whether helper `id` is known to be unavailable to programs of type `t`:
/// probed and refused, or, in a full probe (`compat::probe_target`, where a type's
/// probed ids run from 1 up), past the last id probed.
fn helper_missing(features: &Features, t: ProgramType, id: u32) -> bool {
    let Some(known) = features.helpers.get(&t) else {
        return false;
    };
    match known.get(&id) {
        Some(ok) => !ok,
        None => {
            known.len() as u32 >= super::HELPER_IDS_PROBED - 1 && id >= super::HELPER_IDS_PROBED
        }
    }
}

/// The program's expected attach type, if the kernel checks it at load
/// (cgroup_sock_addr's unix hooks: 6.7), and the link kind its section
/// can only be attached with (kprobe.multi: 5.18, netkit: 6.7).
fn check_attach(
    p: &crate::obj::ProgramSpec,
    features: &Features,
    needs: &mut Vec<String>,
    report: &mut CheckReport,
) {
    let Some(a) = p.attach_type else { return };
    let trampoline = match a {
        AttachType::TRACE_FENTRY | AttachType::TRACE_FEXIT | AttachType::MODIFY_RETURN => {
            Some(Feature::Fentry)
        }
        AttachType::LSM_MAC => Some(Feature::Lsm),
        _ => None,
    };
    if let Some(feat) = trampoline.filter(|f| features.features.get(f) == Some(&false)) {
        report.problem(
            p.name(),
            format!(
                "this kernel does not load {} programs (probed: {} refused)",
                feat.name(),
                feat.name()
            ),
        );
    }
    if let Some(ok) = features.attach_types.get(&(p.prog_type, a)) {
        needs.push(format!("attach type {a}"));
        if !ok {
            report.problem(
                p.name(),
                format!(
                    "{} programs with expected attach type {a} are not supported by this kernel",
                    p.prog_type
                ),
            );
        }
    }
    // A link kind is needed to attach, not to load: a note, so that the
    // verdict stays what `load` does.
    if let Some(kind) = LinkKind::required_by(a) {
        needs.push(format!("{} link", kind.name()));
        if features.link_kinds.get(&kind) == Some(&false) {
            report.notes.push(format!(
                "{}: loads, but cannot be attached: section {} attaches with a {} link, which this kernel does not have",
                p.name(),
                p.section(),
                kind.name()
            ));
        }
    }
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
    if lacks(features, Feature::Bpf2BpfCalls) {
        report.problem(
            name,
            "bpf-to-bpf calls are not supported by this kernel".into(),
        );
    }
    if ids.contains(&12) {
        needs.push("bpf2bpf calls with tail calls".into());
        if lacks(features, Feature::Bpf2BpfWithTailCalls) {
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
    if spec.core_relocations > 0 {
        core_problems(crate::obj::core::relocate(spec, types), report);
    }
}

/// [`check_core`]'s verdict on a relocation already made.
fn core_problems(
    relocation: Result<(ObjectSpec, crate::obj::core::CorePlan), crate::obj::core::CoreError>,
    report: &mut CheckReport,
) {
    use crate::obj::core;
    let (relocated, plan) = match relocation {
        Ok(done) => done,
        Err(e) => {
            report.problems.push(Problem {
                program: "(object)".into(),
                reason: e.to_string(),
            });
            return;
        }
    };
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

/// Whether the kernel is known to lack `f` (probed, and absent): a target
/// file that does not say is not a reason to fail.
fn lacks(features: &Features, f: Feature) -> bool {
    features.features.get(&f) == Some(&false)
}

/// Whether the object's BTF type `id` (a map's value) holds a
/// `struct bpf_spin_lock`, through typedefs, modifiers, arrays and nested
/// structs (a few levels down).
fn value_has_spin_lock(spec: &ObjectSpec, id: u32) -> bool {
    use crate::obj::btf::BtfTypeData;
    fn walk(btf: &crate::obj::btf::Btf, id: u32, depth: u32) -> bool {
        let Ok(t) = btf.type_by_id(id) else {
            return false;
        };
        if depth == 0 || id == 0 {
            return false;
        }
        match &t.data {
            BtfTypeData::Members(members) => {
                (t.kind == BtfKind::Struct && btf.string(t.name_off).ok() == Some("bpf_spin_lock"))
                    || members.iter().any(|m| walk(btf, m.type_id, depth - 1))
            }
            BtfTypeData::Array { elem_type, .. } => walk(btf, *elem_type, depth - 1),
            BtfTypeData::None
                if matches!(
                    t.kind,
                    BtfKind::Typedef | BtfKind::Const | BtfKind::Volatile | BtfKind::Restrict
                ) =>
            {
                walk(btf, t.size_or_type, depth - 1)
            }
            _ => false,
        }
    }
    spec.btf.as_ref().is_some_and(|b| walk(b, id, 8))
}
