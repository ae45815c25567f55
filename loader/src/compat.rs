//! Kernel compatibility: will an object load on kernel X? A target file
//! describes X ([`probe_target`], run there: `rawbpf probe --json --full`);
//! [`check_on_target`] judges an object from that file's facts only — its
//! probes, its kernel config, kallsyms names and `LINUX_*` values, and the
//! BTF given for that kernel — never this machine's.
//!
//! It sits above `probe`, `load` and `kernel_btf`, which it uses all three.

use crate::kconfig::{fill, KernelConfig};
use crate::obj::core::TargetTypes;
use crate::obj::externs::{self, ExternKind};
use crate::probe::{btf_funcs_without_address, kallsyms_names, parse_config};
use crate::probe::{check_with_core, CheckReport, HELPER_IDS_PROBED};
use crate::probe::{Features, Problem, TargetExterns};
use crate::uapi::ProgramType;
use crate::ObjectSpec;
use std::collections::BTreeMap;

/// A complete description of this kernel, for `check --target` on
/// another machine: [`Features::probe`], every helper (ids below
/// [`HELPER_IDS_PROBED`]) for every program type that loads, whether
/// fentry and LSM programs load and struct_ops maps can be made, and
/// [`read_externs`].
pub fn probe_target() -> Features {
    let mut f = Features::probe();
    let types: Vec<ProgramType> = f
        .prog_types
        .iter()
        .filter(|(_, ok)| **ok == Some(true))
        .map(|(t, _)| *t)
        .collect();
    for t in types {
        f.probe_helpers(t, 1..HELPER_IDS_PROBED);
    }
    // The kernel's BTF, read and parsed once for both.
    let vmlinux = crate::probe::read_vmlinux();
    let (trampolines, struct_ops) = crate::probe::probe_with_btf(vmlinux.as_ref());
    f.features.extend(trampolines);
    f.map_types
        .insert(crate::uapi::MapType::STRUCT_OPS, Some(struct_ops));
    f.externs = Some(externs_with(vmlinux.as_ref()));
    f
}

/// This machine's kernel config, `LINUX_*` values and kallsyms names.
pub fn read_externs() -> TargetExterns {
    externs_with(crate::probe::read_vmlinux().as_ref())
}

/// [`read_externs`] with the kernel's BTF already read.
fn externs_with(vmlinux: Option<&crate::obj::btf::Btf>) -> TargetExterns {
    use crate::kconfig;
    let kconfig = kconfig::read_config().ok().map(|c| parse_config(&c.text));
    let mut linux = BTreeMap::new();
    if let Some(v) = kconfig::kernel_version() {
        linux.insert("LINUX_KERNEL_VERSION".to_owned(), u64::from(v));
    }
    linux.insert(
        "LINUX_HAS_BPF_COOKIE".to_owned(),
        u64::from(kconfig::has_bpf_cookie()),
    );
    // Read once: the data symbols are kept, the functions tell which BTF
    // functions have no address, and one tells the syscall wrapper.
    let text = std::fs::read_to_string("/proc/kallsyms").ok();
    linux.insert(
        "LINUX_HAS_SYSCALL_WRAPPER".to_owned(),
        u64::from(
            text.as_deref()
                .is_some_and(|t| kconfig::has_syscall_wrapper_in(t.lines())),
        ),
    );
    let (kallsyms, kallsyms_hidden) = match &text {
        Some(t) => {
            let (names, hidden) = kallsyms_names(t.as_bytes());
            (Some(names), hidden)
        }
        None => (None, false),
    };
    let btf_funcs_without_address = vmlinux
        .zip(text)
        .and_then(|(btf, t)| btf_funcs_without_address(btf, t.as_bytes()));
    TargetExterns {
        kconfig,
        linux,
        kallsyms,
        kallsyms_hidden,
        btf_funcs_without_address,
    }
}

/// What `spec` needs against the target `features` (read from a target
/// file), with `btf` the target kernel's BTF if the user gave it. Pure: no
/// probe, file or kernel of this machine is read. What the target file or
/// a missing BTF leaves unknown is a note that says it was not checked.
pub fn check_on_target(
    spec: &ObjectSpec,
    features: &Features,
    btf: Option<&dyn TargetTypes>,
) -> CheckReport {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let kconfig = target_kconfig(spec, features.externs.as_ref(), &mut problems, &mut notes);
    // Helpers are counted on the code as relocated for the target's BTF, if given.
    let mut report = check_with_core(spec, features, kconfig.as_deref(), btf);
    report.problems.extend(problems);
    report.notes.extend(notes);
    target_kallsyms(spec, features.externs.as_ref(), btf, &mut report);
    let needs_btf = crate::load::needs_kernel_btf(spec);
    match btf {
        Some(types) => {
            if !externs::extern_names(spec).is_empty() {
                if let Err(e) = externs::resolve_btf(spec, types) {
                    object_problem(&mut report, e.to_string());
                }
            }
            // Ids from the target's BTF mean nothing to this kernel: no
            // trial loads, but a function the target cannot attach to
            // (no address in its kallsyms) is known from the file.
            let unattachable = features
                .externs
                .as_ref()
                .and_then(|e| e.btf_funcs_without_address.as_ref());
            crate::kernel_btf::check_attach_targets(spec, types, &mut report, |p, a| {
                match unattachable {
                    Some(names) if needs_address(p) && a.module.is_none() && names.contains(&a.name) => Err(format!(
                        "{a}: the target's kallsyms has no function of that name (inlined, or only a renamed copy such as {}.isra.0), so the kernel cannot attach there (ENOENT)",
                        a.name
                    )),
                    _ => Ok(()),
                }
            });
        }
        None if needs_btf => report.notes.push(
            "the object needs the target kernel's BTF (CO-RE relocations, typed ksyms, kfuncs or BTF attach targets): not checked without --btf".into(),
        ),
        None => {}
    }
    let unprobed: std::collections::BTreeSet<_> = spec
        .programs
        .iter()
        .map(|p| p.prog_type)
        .filter(|t| !features.helpers.contains_key(t))
        .collect();
    for t in unprobed {
        report.notes.push(format!(
            "the target file has no helpers probed for {t} (make it with `rawbpf probe --json --full`): their helpers not checked"
        ));
    }
    report
}

fn object_problem(report: &mut CheckReport, reason: String) {
    report.problems.push(Problem {
        program: "(object)".into(),
        reason,
    });
}

/// The `.kconfig` value the loader would give the object on the target,
/// from the target file's config and `LINUX_*` values.
fn target_kconfig(
    spec: &ObjectSpec,
    target: Option<&TargetExterns>,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) -> Option<Vec<u8>> {
    let (list, map) = crate::kconfig::kconfig_externs(spec)?;
    let Some(target) = target else {
        notes.push("the target file has no kernel config (make it with `rawbpf probe --json --full`): __kconfig externs not checked".into());
        return None;
    };
    let config = target.config_text().map(|text| KernelConfig {
        source: "the target file's kconfig".into(),
        text,
    });
    let linux = |name: &str| match name {
        "LINUX_KERNEL_VERSION" | "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER" => Some(
            target
                .linux
                .get(name)
                .copied()
                .ok_or_else(|| "not in the target file".to_owned()),
        ),
        _ => None,
    };
    match fill(&list, map.value_size, config.as_ref(), &linux, notes) {
        Ok(data) => Some(data),
        Err(e) => {
            problems.push(Problem {
                program: "(object)".into(),
                reason: e.to_string(),
            });
            None
        }
    }
}

/// The names to index in the target's BTF for [`check_on_target`]: what a
/// load looks up ([`kernel_btf_names`](crate::load::kernel_btf_names)) and
/// typeless ksyms, which may name functions the target file's kallsyms
/// (data symbols only) leaves out.
pub fn target_btf_names(spec: &ObjectSpec) -> std::collections::BTreeSet<String> {
    let mut names = crate::load::kernel_btf_names(spec);
    names.extend(
        spec.externs
            .iter()
            .filter(|e| e.kind == ExternKind::Ksym { typed: None })
            .map(|e| e.name.clone()),
    );
    names
}

/// Whether the target's BTF has a function `name`.
fn btf_has_func(btf: &dyn TargetTypes, name: &str) -> bool {
    btf.ids_by_essential_name(name).is_ok_and(|ids| {
        ids.into_iter().any(|id| {
            btf.type_by_id(id)
                .is_ok_and(|t| t.kind == crate::obj::btf::BtfKind::Func)
        })
    })
}

/// `__ksym` externs against the target's kallsyms names: typeless ones
/// (functions among them found in the target's BTF instead), and typed
/// variables, whose address the kernel's verifier itself looks up in
/// kallsyms — without `CONFIG_KALLSYMS_ALL` it finds none ("ldimm64 failed
/// to find the address for kernel symbol").
fn target_kallsyms(
    spec: &ObjectSpec,
    target: Option<&TargetExterns>,
    btf: Option<&dyn TargetTypes>,
    report: &mut CheckReport,
) {
    let ksyms: Vec<_> = spec
        .externs
        .iter()
        .filter(|e| matches!(e.kind, ExternKind::Ksym { .. }))
        .collect();
    if ksyms.is_empty() {
        return;
    }
    let Some(names) = target.and_then(|t| t.kallsyms.as_ref()) else {
        report.notes.push("the target file has no kallsyms names (make it with `rawbpf probe --json --full` as root): __ksym variables not checked".into());
        return;
    };
    let hidden = target.is_some_and(|t| t.kallsyms_hidden);
    for e in &ksyms {
        if names.contains(&e.name) || e.weak {
            continue;
        }
        match e.kind {
            ExternKind::Ksym { typed: None } => match btf {
                Some(b) if btf_has_func(b, &e.name) => {}
                Some(_) => object_problem(report, format!("extern {}: not in the target's kallsyms data symbols nor a function of its BTF", e.name)),
                None => report.notes.push(format!("extern {}: not in the target's kallsyms data symbols; whether it is a function is not checked without --btf", e.name)),
            },
            // A typed ksym the BTF has (resolve_btf said if not) but
            // kallsyms lacks: the verifier will not find its address.
            _ if btf.is_some_and(|b| {
                !b.ids_by_essential_name(&e.name)
                    .unwrap_or_default()
                    .is_empty()
            }) =>
            {
                object_problem(report, format!("extern {}: the kernel looks its address up in kallsyms, and the target's kallsyms does not list it (CONFIG_KALLSYMS_ALL off?)", e.name));
            }
            _ => {}
        }
    }
    if hidden {
        object_problem(report, "the target's kallsyms addresses read 0 (hidden from the user that probed it): __ksym variables cannot be resolved there".into());
    }
}

/// Whether the kernel looks `p`'s BTF attach target up in kallsyms when
/// it loads: fentry, fexit, fmod_ret and LSM programs (raw tracepoints name
/// a typedef; freplace and iterator targets are not looked up by address).
fn needs_address(p: &crate::obj::ProgramSpec) -> bool {
    use crate::uapi::AttachType;
    (p.prog_type == ProgramType::TRACING
        && matches!(
            p.attach_type,
            Some(AttachType::TRACE_FENTRY | AttachType::TRACE_FEXIT | AttachType::MODIFY_RETURN)
        ))
        || p.prog_type == ProgramType::LSM
}
