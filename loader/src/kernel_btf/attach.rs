//! BTF attach targets: what `attach_btf_id` (and `attach_btf_obj_fd` or
//! `attach_prog_fd`) a tracing, LSM, iterator or freplace program is loaded
//! with, found by libbpf's naming rules (`libbpf_find_attach_btf_id`).

use super::module_btf_fd;
use crate::obj::btf::{Btf, BtfKind};
use crate::obj::core::{essential_name, TargetTypes};
use crate::obj::{ObjectSpec, ProgramSpec};
use crate::probe::{CheckReport, Problem};
use crate::sys;
use crate::uapi::{AttachType, ProgramType};
use std::collections::BTreeSet;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};

/// A program's BTF attach target (fentry/fexit/fmod_ret function, tp_btf
/// tracepoint, LSM hook, iterator, freplace function) that cannot be found
/// or used.
#[derive(thiserror::Error)]
#[error("program {program}: {reason}")]
pub struct AttachTargetError {
    /// Program name.
    pub program: String,
    /// What is missing, naming the target.
    pub reason: String,
}

debug_is_display!(AttachTargetError);

/// Where a program's BTF attach target is in the kernel: what
/// `BPF_PROG_LOAD` takes as `attach_btf_id` (and `attach_btf_obj_fd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachBtf {
    /// The type's id as the kernel knows it (in its module's id space for a module).
    pub id: u32,
    /// The module whose BTF holds it; `None` for vmlinux.
    pub module: Option<String>,
    /// Its kind: FUNC, or TYPEDEF for `btf_trace_*`.
    pub kind: BtfKind,
    /// The BTF name looked up (`bpf_fentry_test1`, `btf_trace_sched_switch`, `bpf_lsm_file_open`).
    pub name: String,
}

impl fmt::Display for AttachBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({} BTF id {})",
            self.kind,
            self.name,
            self.module.as_deref().unwrap_or("vmlinux"),
            self.id
        )
    }
}

/// Which BTF a target is looked up in (libbpf's `module:function` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope<'a> {
    /// vmlinux first, then the modules.
    Any,
    /// `vmlinux:name`.
    Vmlinux,
    /// `module:name`.
    Module(&'a str),
}

/// What one program's target is looked up as.
struct Lookup<'a> {
    /// "kernel function", "tracepoint", ...
    what: &'static str,
    /// The target as the section names it, without its module.
    target: &'a str,
    /// The BTF name: the kind's prefix and the target.
    name: String,
    kind: BtfKind,
    scope: Scope<'a>,
}

impl Lookup<'_> {
    /// The name [`TargetTypes::ids_by_essential_name`] is asked for.
    fn key(&self) -> String {
        match self.scope {
            Scope::Any | Scope::Vmlinux => essential_name(&self.name).to_owned(),
            Scope::Module(m) => format!("{m}:{}", essential_name(&self.name)),
        }
    }

    fn not_found(&self) -> String {
        let place = match self.scope {
            Scope::Any => "in vmlinux or a module".to_owned(),
            Scope::Vmlinux => "in vmlinux".to_owned(),
            Scope::Module(m) => format!("in module {m}"),
        };
        let hint = if self.name.starts_with("bpf_lsm_") {
            "; BPF LSM needs CONFIG_BPF_LSM"
        } else {
            ""
        };
        format!(
            "{} {} is not in the kernel's BTF (no {} {} {place}{hint})",
            self.what, self.target, self.kind, self.name
        )
    }
}

/// How libbpf names a program's target in BTF (`btf_get_kernel_prefix_kind`):
/// `None` for programs without a BTF attach target; an error for those that
/// need one but cannot have it resolved from kernel BTF.
fn lookup(p: &ProgramSpec) -> Result<Option<Lookup<'_>>, String> {
    let (what, prefix, kind) = match (p.prog_type, p.attach_type) {
        (ProgramType::TRACING, Some(AttachType::TRACE_RAW_TP)) => {
            ("tracepoint", "btf_trace_", BtfKind::Typedef)
        }
        (
            ProgramType::TRACING,
            Some(AttachType::TRACE_FENTRY | AttachType::TRACE_FEXIT | AttachType::MODIFY_RETURN),
        ) => ("kernel function", "", BtfKind::Func),
        (ProgramType::TRACING, Some(AttachType::TRACE_ITER)) => {
            ("BPF iterator", "bpf_iter_", BtfKind::Func)
        }
        (ProgramType::LSM, Some(AttachType::LSM_MAC | AttachType::LSM_CGROUP)) => {
            ("LSM hook", "bpf_lsm_", BtfKind::Func)
        }
        (ProgramType::EXT, _) => {
            return Err(format!(
                "a freplace program needs a target program: the kernel id of the loaded program whose function {} it replaces (LoadOptions::attach_prog)",
                p.attach_target.as_deref().unwrap_or("?")
            ))
        }
        // Its target is the struct of the struct_ops map that points to
        // it (kernel_btf::struct_ops), not a name in its section.
        (ProgramType::STRUCT_OPS, _) => return Ok(None),
        (ProgramType::TRACING | ProgramType::LSM, other) => {
            return Err(format!(
                "a {} program with attach type {} has no BTF attach target rawbpf knows how to find",
                p.prog_type,
                other.map_or_else(|| "none".to_owned(), |a| a.to_string())
            ))
        }
        _ => return Ok(None),
    };
    let target = p.attach_target.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(format!(
            "section {} names no attach target (write {}/NAME)",
            p.section(),
            p.section()
        ));
    }
    // libbpf: "module:function", where module "vmlinux" means vmlinux only.
    let (scope, target) = match target.split_once(':') {
        Some(("vmlinux", t)) => (Scope::Vmlinux, t),
        Some((m, t)) => (Scope::Module(m), t),
        None => (Scope::Any, target),
    };
    Ok(Some(Lookup {
        what,
        target,
        name: format!("{prefix}{target}"),
        kind,
        scope,
    }))
}

/// The names [`attach_btf_target`] will look up for `spec`'s programs,
/// for the `wanted` set the kernel's BTF is opened with. Empty when no
/// program has a BTF attach target (then nothing needs kernel BTF for it).
pub fn attach_btf_names(spec: &ObjectSpec) -> BTreeSet<String> {
    spec.programs
        .iter()
        .filter_map(|p| lookup(p).ok().flatten())
        .map(|l| l.key())
        .collect()
}

/// A program's BTF attach target in `types` (pure: the kernel's BTF or any
/// other): the FUNC of an fentry/fexit/fmod_ret target, the `btf_trace_<tp>`
/// TYPEDEF of tp_btf, FUNC `bpf_lsm_<hook>` of lsm, FUNC `bpf_iter_<name>`
/// of iter, the first by id (vmlinux before modules), as libbpf's
/// `find_kernel_btf_id`. `Ok(None)` for programs without one; an error in
/// words (without the program's name) when it is missing, or for freplace
/// (its target is in a program's BTF, see [`load_attach`]) and struct_ops.
pub fn attach_btf_target(
    types: &dyn TargetTypes,
    prog: &ProgramSpec,
) -> Result<Option<AttachBtf>, String> {
    let Some(l) = lookup(prog)? else {
        return Ok(None);
    };
    let ids = types
        .ids_by_essential_name(&l.key())
        .map_err(|e| format!("{} {}: {e}", l.what, l.target))?;
    for id in ids {
        let t = types
            .type_by_id(id)
            .map_err(|e| format!("{} {}: {e}", l.what, l.target))?;
        if t.kind != l.kind || types.string(t.name_off).ok().as_deref() != Some(l.name.as_str()) {
            continue;
        }
        let module = types.module(id);
        let in_scope = match l.scope {
            Scope::Any => true,
            Scope::Vmlinux => module.is_none(),
            Scope::Module(m) => module == Some(m),
        };
        if in_scope {
            return Ok(Some(AttachBtf {
                id: types.kernel_id(id),
                module: module.map(str::to_owned),
                kind: l.kind,
                name: l.name,
            }));
        }
    }
    Err(l.not_found())
}

/// For `check`: adds each program's attach target to what it needs, or why
/// it has none to its problems. `types` is the kernel's BTF opened for
/// [`attach_btf_names`] (any BTF when that set is empty); `trial` says
/// whether the kernel takes a program on a target found ([`trial_load`], or
/// `|_, _| Ok(())` where no kernel is asked).
pub fn check_attach_targets(
    spec: &ObjectSpec,
    types: &dyn TargetTypes,
    report: &mut CheckReport,
    trial: impl Fn(&ProgramSpec, &AttachBtf) -> Result<(), String>,
) {
    for p in &spec.programs {
        let found = attach_btf_target(types, p);
        if let Ok(Some(a)) = &found {
            if let Some((_, _, needs)) = report.needs.iter_mut().find(|(n, _, _)| n == p.name()) {
                needs.push(format!("attach target {a}"));
            }
        }
        if let Err(reason) = found.and_then(|a| a.map_or(Ok(()), |a| trial(p, &a))) {
            report.problems.push(Problem {
                program: p.name().to_owned(),
                reason,
            });
        }
    }
}

/// Whether the kernel loads a program like `p` on `target`: a stub
/// (`r0 = 0; exit`) of the same type, attach type and flags with its
/// `attach_btf_id`. The kernel checks the target as it loads (a function
/// that cannot be traced, fmod_ret on one without error injection, a kernel
/// that refuses trampolines); the error says so, with the verifier's last
/// words if it had any.
pub fn trial_load(p: &ProgramSpec, target: &AttachBtf) -> Result<(), String> {
    use crate::uapi::{insn, Insn};
    let module = match &target.module {
        Some(m) => Some(module_btf_fd(m).map_err(|e| format!("{target}: {e}"))?),
        None => None,
    };
    let code: Vec<u8> = [
        Insn {
            code: 0xb7, // r0 = 0
            ..Insn::default()
        },
        Insn {
            code: insn::EXIT,
            ..Insn::default()
        },
    ]
    .iter()
    .flat_map(|i| i.to_bytes())
    .collect();
    let attrs = sys::ProgLoad {
        prog_type: p.prog_type.0,
        expected_attach_type: p.attach_type.map_or(0, |a| a.0),
        prog_flags: p.prog_flags,
        name: "rawbpf_check",
        insns: &code,
        license: c"GPL",
        attach_btf_id: target.id,
        attach_btf_obj_fd: module.as_ref().map(|fd| fd.as_fd()),
        ..Default::default()
    };
    let Err(e) = sys::prog_load(&attrs, None) else {
        return Ok(());
    };
    let mut log = vec![0u8; 4096];
    let _ = sys::prog_load(&attrs, Some((&mut log, 1)));
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let log = String::from_utf8_lossy(&log[..end]);
    let last = log.lines().rev().find(|l| !l.trim().is_empty());
    Err(format!(
        "the kernel refuses {} programs on {target}: {e}{}",
        p.prog_type,
        last.map(|l| format!(" ({})", l.trim())).unwrap_or_default()
    ))
}

/// What `BPF_PROG_LOAD` gets for a program with a BTF attach target.
#[derive(Debug)]
pub struct LoadAttach {
    /// `attach_btf_id`.
    pub btf_id: u32,
    /// `attach_btf_obj_fd`: the module BTF holding the target.
    pub btf_obj_fd: Option<OwnedFd>,
    /// `attach_prog_fd`: the program an freplace program replaces a function of.
    pub prog_fd: Option<OwnedFd>,
}

/// Resolves a program's attach target for loading: [`attach_btf_target`] in
/// `kernel` (which the caller opened for [`attach_btf_names`]) and, for a
/// module, that module's BTF fd; for freplace, the function in the BTF of
/// program `attach_prog` (a kernel program id). `Ok(None)` for programs
/// without a BTF attach target.
pub fn load_attach(
    p: &ProgramSpec,
    kernel: Option<&dyn TargetTypes>,
    attach_prog: Option<u32>,
) -> Result<Option<LoadAttach>, AttachTargetError> {
    let fail = |reason: String| AttachTargetError {
        program: p.name().to_owned(),
        reason,
    };
    if p.prog_type == ProgramType::EXT {
        return freplace_target(p, attach_prog).map(Some).map_err(fail);
    }
    let target = match kernel {
        Some(k) => attach_btf_target(k, p).map_err(fail)?,
        None => match lookup(p).map_err(fail)? {
            None => None,
            Some(l) => {
                return Err(fail(format!(
                    "{} {}: the kernel's BTF was not opened to look it up",
                    l.what, l.target
                )))
            }
        },
    };
    let Some(target) = target else {
        return Ok(None);
    };
    let btf_obj_fd = match &target.module {
        Some(m) => Some(module_btf_fd(m).map_err(|e| fail(format!("{target}: {e}")))?),
        None => None,
    };
    Ok(Some(LoadAttach {
        btf_id: target.id,
        btf_obj_fd,
        prog_fd: None,
    }))
}

/// An freplace program's target: FUNC `<name>` in the BTF of the program
/// whose kernel id is `attach_prog`.
fn freplace_target(p: &ProgramSpec, attach_prog: Option<u32>) -> Result<LoadAttach, String> {
    let func = p
        .attach_target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!(
                "section {} names no function to replace (write freplace/FUNCTION)",
                p.section()
            )
        })?;
    let Some(prog_id) = attach_prog else {
        return Err(lookup(p).err().unwrap_or_default());
    };
    let target = |e: &dyn fmt::Display| format!("target program {prog_id}: {e}");
    let prog = sys::prog_get_fd_by_id(prog_id).map_err(|e| target(&e))?;
    let info = sys::prog_info(prog.as_fd()).map_err(|e| target(&e))?;
    if info.btf_id == 0 {
        return Err(target(&format!(
            "it has no BTF, so its function {func} cannot be found"
        )));
    }
    let btf_fd = sys::btf_get_fd_by_id(info.btf_id).map_err(|e| target(&e))?;
    let size = sys::btf_info(btf_fd.as_fd(), None, false)
        .map_err(|e| target(&e))?
        .size;
    let mut data = vec![0u8; size as usize];
    sys::btf_info(btf_fd.as_fd(), Some(&mut data), false).map_err(|e| target(&e))?;
    let btf = Btf::parse(&data).map_err(|e| target(&format!("its BTF: {e}")))?;
    let id = btf
        .find_by_name(BtfKind::Func, func)
        .ok_or_else(|| target(&format!("its BTF has no function {func}")))?;
    Ok(LoadAttach {
        btf_id: id,
        btf_obj_fd: None,
        prog_fd: Some(prog),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_btf::KernelBtf;
    use crate::obj::btf::tests::Builder;
    use BtfKind as K;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn object(name: &str) -> ObjectSpec {
        let path = format!("{}/../programs/obj/{name}", env!("CARGO_MANIFEST_DIR"));
        ObjectSpec::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    fn program<'a>(spec: &'a ObjectSpec, name: &str) -> &'a ProgramSpec {
        spec.program(name).unwrap()
    }

    /// vmlinux with the targets of attach_btf.bpf.o and attach_fentry.bpf.o
    /// (a STRUCT btf_trace_sched_switch before the TYPEDEF), and module
    /// modX with bpf_iter_task and another bpf_fentry_test1.
    fn attach_kernel(wanted: &BTreeSet<String>) -> KernelBtf {
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, K::Int, 0, 4, &[32]); // 1
        b.t(0, K::FuncProto, 0, 1, &[]); // 2
        let test1 = b.s("bpf_fentry_test1");
        b.t(test1, K::Func, 0, 2, &[]); // 3
        let open = b.s("security_file_open");
        b.t(open, K::Func, 0, 2, &[]); // 4
        let tp = b.s("btf_trace_sched_switch");
        b.t(tp, K::Struct, 0, 0, &[]); // 5
        b.t(0, K::Ptr, 0, 2, &[]); // 6
        b.t(tp, K::Typedef, 0, 6, &[]); // 7
        let base_str = b.strings.len() as u32;
        let mut m = Builder::new();
        let iter = base_str + m.s("bpf_iter_task");
        m.t(iter, K::Func, 0, 2, &[]); // 8
        m.t(test1, K::Func, 0, 2, &[]); // 9
        KernelBtf::from_bytes_with_modules(b.build(), vec![("modX".into(), m.build())], wanted)
            .unwrap()
    }

    #[test]
    fn attach_targets_by_libbpf_naming() {
        let spec = object("attach_btf.bpf.o");
        let names = attach_btf_names(&spec);
        assert_eq!(names, set(&["bpf_iter_task", "btf_trace_sched_switch"]));
        let k = attach_kernel(&names);
        let tp = attach_btf_target(&k, program(&spec, "on_sched_switch"))
            .unwrap()
            .unwrap();
        assert_eq!(
            tp,
            AttachBtf {
                id: 7,
                module: None,
                kind: K::Typedef,
                name: "btf_trace_sched_switch".into()
            }
        );
        assert_eq!(
            tp.to_string(),
            "TYPEDEF btf_trace_sched_switch (vmlinux BTF id 7)"
        );
        let iter = attach_btf_target(&k, program(&spec, "each_task"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (iter.id, iter.module.as_deref(), iter.kind),
            (8, Some("modX"), K::Func)
        );

        let spec = object("attach_fentry.bpf.o");
        let names = attach_btf_names(&spec);
        assert_eq!(names, set(&["bpf_fentry_test1", "security_file_open"]));
        let k = attach_kernel(&names);
        for (prog, id) in [
            ("on_test1", 3),
            ("on_test1_exit", 3),
            ("keep_file_open_result", 4),
        ] {
            let t = attach_btf_target(&k, program(&spec, prog))
                .unwrap()
                .unwrap();
            assert_eq!((t.id, t.module, t.kind), (id, None, K::Func), "{prog}");
        }
        // Programs without a BTF target have none and need no names.
        let pipeline = object("pipeline.bpf.o");
        assert!(attach_btf_names(&pipeline).is_empty());
        assert_eq!(attach_btf_target(&k, &pipeline.programs[0]), Ok(None));
    }

    #[test]
    fn module_qualified_targets() {
        let spec = object("attach_fentry.bpf.o");
        let mut p = program(&spec, "on_test1").clone();
        let mut spec1 = spec.clone();
        for (target, found) in [
            ("modX:bpf_fentry_test1", Ok((9, Some("modX")))),
            ("vmlinux:bpf_fentry_test1", Ok((3, None))),
            (
                "modY:bpf_fentry_test1",
                Err("kernel function bpf_fentry_test1 is not in the kernel's BTF (no FUNC bpf_fentry_test1 in module modY)"),
            ),
        ] {
            p.attach_target = Some(target.into());
            spec1.programs = vec![p.clone()];
            let k = attach_kernel(&attach_btf_names(&spec1));
            let got = attach_btf_target(&k, &p).map(|t| {
                let t = t.unwrap();
                (t.id, t.module)
            });
            assert_eq!(
                got,
                found.map(|(id, m)| (id, m.map(str::to_owned))).map_err(str::to_owned),
                "{target}"
            );
        }
    }

    #[test]
    fn missing_and_unsupported_targets_are_errors_in_words() {
        let k = attach_kernel(&set(&["no_such_function_xyz"]));
        let spec = object("attach_missing.bpf.o");
        assert_eq!(attach_btf_names(&spec), set(&["no_such_function_xyz"]));
        assert_eq!(
            attach_btf_target(&k, program(&spec, "on_missing")).unwrap_err(),
            "kernel function no_such_function_xyz is not in the kernel's BTF (no FUNC no_such_function_xyz in vmlinux or a module)"
        );
        // A name the BTF was not opened for: an error, not "missing".
        let fentry = object("attach_fentry.bpf.o");
        assert_eq!(
            attach_btf_target(&k, program(&fentry, "on_test1")).unwrap_err(),
            "kernel function bpf_fentry_test1: BTF name bpf_fentry_test1 was not indexed (it was not among the names asked for when the BTF was opened)"
        );
        let lsm = object("attach_lsm.bpf.o");
        assert_eq!(attach_btf_names(&lsm), set(&["bpf_lsm_file_open"]));
        let k = attach_kernel(&attach_btf_names(&lsm));
        assert_eq!(
            attach_btf_target(&k, program(&lsm, "allow_file_open")).unwrap_err(),
            "LSM hook file_open is not in the kernel's BTF (no FUNC bpf_lsm_file_open in vmlinux or a module; BPF LSM needs CONFIG_BPF_LSM)"
        );
        let ext = object("freplace.bpf.o");
        assert!(attach_btf_names(&ext).is_empty());
        assert_eq!(
            attach_btf_target(&k, program(&ext, "new_pick")).unwrap_err(),
            "a freplace program needs a target program: the kernel id of the loaded program whose function pick it replaces (LoadOptions::attach_prog)"
        );
        // Without a target in the section name.
        let mut p = program(&fentry, "on_test1").clone();
        p.attach_target = None;
        p.function.section = "fentry".into();
        assert_eq!(
            attach_btf_target(&k, &p).unwrap_err(),
            "section fentry names no attach target (write fentry/NAME)"
        );
        // Loading without kernel BTF opened is refused in words, not a panic.
        let e = load_attach(program(&fentry, "on_test1"), None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "program on_test1: kernel function bpf_fentry_test1: the kernel's BTF was not opened to look it up"
        );
        let e = load_attach(program(&ext, "new_pick"), None, None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("program new_pick: a freplace program needs a target program"),
            "{e}"
        );
    }

    #[test]
    fn check_reports_targets_and_problems() {
        let spec = object("attach_fentry.bpf.o");
        let k = attach_kernel(&set(&["bpf_fentry_test1", "security_file_open"]));
        let mut report = crate::probe::CheckReport::default();
        for p in &spec.programs {
            report
                .needs
                .push((p.name().into(), p.prog_type, Vec::new()));
        }
        check_attach_targets(&spec, &k, &mut report, |p, _| {
            if p.name() == "keep_file_open_result" {
                Err("refused".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            report.needs[0].2,
            ["attach target FUNC bpf_fentry_test1 (vmlinux BTF id 3)"]
        );
        assert_eq!(
            report.problems,
            [Problem {
                program: "keep_file_open_result".into(),
                reason: "refused".into()
            }]
        );
    }
}
