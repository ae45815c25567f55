//! `rawbpf probe` and `rawbpf check`.

use crate::cli::Parsed;
use crate::json::Json;
use crate::Failure;
use rawbpf::kernel_btf;
use rawbpf::load::LoadOptions;
use rawbpf::obj::btf::Btf;
use rawbpf::probe::{self, Features};
use rawbpf::uapi::ProgramType;
use rawbpf::ObjectSpec;
use std::fmt::Write as _;

/// Helper ids probed for `--helpers` (the kernel has fewer than this).
const MAX_HELPER: u32 = probe::HELPER_IDS_PROBED;

fn yes(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not probed",
    }
}

fn parse_prog_type(name: &str) -> Result<ProgramType, Failure> {
    ProgramType::ALL
        .iter()
        .copied()
        .find(|t| t.name() == Some(name))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "probe: --helpers {name}: not a program type (e.g. sched_cls, xdp, socket_filter)"
            ))
        })
}

/// Fails when bpf(2) is not permitted at all: probing then tells nothing.
fn permitted(command: &str) -> Result<(), Failure> {
    Features::permitted().map_err(|e| {
        Failure::Error(format!(
            "{command}: cannot ask the kernel: bpf(2) {e} (needs root, or CAP_BPF; \
             probing networking program types needs CAP_NET_ADMIN too)"
        ))
    })
}

/// `rawbpf probe [--helpers PROG_TYPE]... [--full] [--json]`
pub fn probe(p: &Parsed) -> Result<String, Failure> {
    let types = p
        .values("--helpers")
        .map(parse_prog_type)
        .collect::<Result<Vec<_>, _>>()?;
    permitted("probe")?;
    let mut f = if p.switch("--full") {
        rawbpf::compat::probe_target()
    } else {
        Features::probe()
    };
    for t in types {
        f.probe_helpers(t, 1..MAX_HELPER);
    }
    if f.prog_types.values().all(|v| *v != Some(true)) && !nix::unistd::geteuid().is_root() {
        return Err(Failure::Error(
            "probe: no program type loads: bpf(2) needs root, or CAP_BPF".into(),
        ));
    }
    if p.switch("--json") {
        return Ok(f.to_json());
    }
    let mut out = String::new();
    let _ = writeln!(out, "kernel {} ({})", f.kernel, f.arch);
    let list = |out: &mut String, title: &str, items: Vec<(String, &'static str)>| {
        let _ = writeln!(out, "\n{title}");
        for (name, v) in items {
            let _ = writeln!(out, "  {name:<26} {v}");
        }
    };
    list(
        &mut out,
        "PROGRAM TYPES",
        f.prog_types
            .iter()
            .map(|(t, v)| (t.to_string(), yes(*v)))
            .collect(),
    );
    list(
        &mut out,
        "MAP TYPES",
        f.map_types
            .iter()
            .map(|(t, v)| (t.to_string(), yes(*v)))
            .collect(),
    );
    let mut kinds: Vec<(String, &str)> = f
        .btf_kinds
        .iter()
        .map(|(k, v)| (k.name().to_owned(), yes(Some(*v))))
        .collect();
    kinds.push(("FUNC (global linkage)".into(), yes(Some(f.btf_global_func))));
    list(&mut out, "BTF KINDS", kinds);
    list(
        &mut out,
        "FEATURES",
        f.features
            .iter()
            .map(|(k, v)| (k.name().to_owned(), yes(Some(*v))))
            .collect(),
    );
    list(
        &mut out,
        "EXPECTED ATTACH TYPES",
        f.attach_types
            .iter()
            .map(|((t, a), v)| (format!("{t} {a}"), yes(Some(*v))))
            .collect(),
    );
    list(
        &mut out,
        "LINK KINDS",
        f.link_kinds
            .iter()
            .map(|(k, v)| (k.name().to_owned(), yes(Some(*v))))
            .collect(),
    );
    if let Some(e) = &f.externs {
        let _ = writeln!(
            out,
            "\nEXTERNS\n  kconfig options            {}\n  kallsyms data symbols      {}",
            e.kconfig
                .as_ref()
                .map_or("not readable".into(), |c| c.len().to_string()),
            e.kallsyms
                .as_ref()
                .map_or("not readable".into(), |k| k.len().to_string()),
        );
    }
    for (t, ids) in &f.helpers {
        let have: Vec<String> = ids
            .iter()
            .filter(|(_, ok)| **ok)
            .map(|(id, _)| {
                probe::helper_name(*id).map_or_else(|| id.to_string(), |n| format!("{id} {n}"))
            })
            .collect();
        let _ = writeln!(
            out,
            "\nHELPERS for {t}: {} available\n  {}",
            have.len(),
            have.join(", ")
        );
    }
    Ok(out)
}

/// The report against this kernel's features `f`: helpers counted on the
/// code as relocated for its BTF (or `--btf FILE`), then what the object
/// looks up there: CO-RE relocations, externs, BTF attach targets (fentry,
/// tp_btf, lsm, ...). The kernel's BTF is read only if the object needs it,
/// once for all.
fn check_kernel_btf(
    p: &Parsed,
    spec: &ObjectSpec,
    f: &Features,
    kconfig: Option<&[u8]>,
) -> Result<probe::CheckReport, Failure> {
    let empty = Btf::new();
    let opts = LoadOptions {
        target_btf: p.value("--btf").map(std::path::PathBuf::from),
        ..LoadOptions::default()
    };
    let needs_btf = rawbpf::load::needs_kernel_btf(spec);
    let opened = match p.value("--btf") {
        // Opened here rather than by the load's kernel_types_for (which
        // takes a vmlinux ELF too) so that a bad file is bad usage (exit 2)
        // naming the file, as with --target, not a "would not load".
        Some(path) if needs_btf => Ok(Some(
            Box::new(open_btf(path, spec)?) as Box<dyn rawbpf::obj::core::TargetTypes>
        )),
        _ => rawbpf::load::kernel_types_for(spec, &opts),
    };
    let kernel = match opened {
        Ok(k) => k,
        Err(e) => {
            let mut report = probe::check_with_kconfig(spec, f, kconfig);
            report.problems.push(probe::Problem {
                program: "(object)".into(),
                reason: e.to_string(),
            });
            return Ok(report);
        }
    };
    // Helpers are counted on the code as relocated for this kernel's BTF,
    // and its CO-RE failures follow (no BTF: nothing to relocate).
    let mut report = probe::check_with_core(spec, f, kconfig, kernel.as_deref());
    let types = kernel.as_deref().unwrap_or(&empty);
    if !spec.externs.is_empty() {
        let mut warnings = Vec::new();
        if let Err(e) = rawbpf::load::resolve_externs(spec, &opts, kernel.as_deref(), &mut warnings)
        {
            report.problems.push(probe::Problem {
                program: "(object)".into(),
                reason: e.to_string(),
            });
        }
        report.notes.extend(warnings);
    }
    if opts.target_btf.is_some() {
        // Ids from another kernel's BTF mean nothing to this one: no trial loads.
        kernel_btf::check_attach_targets(spec, types, &mut report, |_, _| Ok(()));
    } else {
        kernel_btf::check_attach_targets(spec, types, &mut report, kernel_btf::trial_load);
    }
    Ok(report)
}

/// `rawbpf check OBJ [--target FILE] [--btf FILE] [--json]`
pub fn check(p: &Parsed) -> Result<String, Failure> {
    let file = &p.positional[0];
    let spec = ObjectSpec::from_file(file)?;
    let (f, report, target) = match p.value("--target") {
        Some(target) => {
            let f = read_target(target)?;
            let btf = p.value("--btf").map(|b| open_btf(b, &spec)).transpose()?;
            let types = btf
                .as_ref()
                .map(|b| b as &dyn rawbpf::obj::core::TargetTypes);
            (
                f.clone(),
                rawbpf::compat::check_on_target(&spec, &f, types),
                Some(target),
            )
        }
        None => {
            permitted("check")?;
            let mut f = Features::probe();
            for (t, ids) in probe::program_helpers(&spec) {
                f.probe_helpers(t, ids);
            }
            // The .kconfig values a load here would give the object; if they
            // cannot be computed, load says why, and check counts every
            // guarded call.
            let kconfig = rawbpf::kconfig::kconfig_data(&spec, &mut Vec::new())
                .ok()
                .flatten();
            let report = check_kernel_btf(p, &spec, &f, kconfig.as_deref())?;
            (f, report, None)
        }
    };
    let out = if p.switch("--json") {
        check_json(file, &f, target, &report)
    } else {
        check_text(file, &f, target, &report)
    };
    if report.would_load() {
        Ok(out)
    } else {
        Err(Failure::Report(out))
    }
}

/// A target file, or why it cannot be used (bad input: exit 2).
fn read_target(path: &str) -> Result<Features, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("check: --target {path}: {e}")))?;
    Features::from_json(&text).map_err(|e| Failure::Usage(format!("check: --target {path}: {e}")))
}

/// The target kernel's BTF from `--btf FILE` (raw BTF or a vmlinux ELF),
/// indexed for what the object looks up.
fn open_btf(path: &str, spec: &ObjectSpec) -> Result<rawbpf::kernel_btf::KernelBtf, Failure> {
    let bytes = probe::read_btf_file(std::path::Path::new(path))
        .map_err(|e| Failure::Usage(format!("check: --btf {e}")))?;
    let names = rawbpf::compat::target_btf_names(spec);
    rawbpf::kernel_btf::KernelBtf::from_bytes(bytes, &names).map_err(|e| {
        Failure::Usage(format!(
            "check: --btf {path}: not valid BTF: {}",
            e.reason()
        ))
    })
}

/// `rawbpf check --json`: each program's needs and problems, the object's
/// own problems, the notes.
fn check_json(
    file: &str,
    f: &Features,
    target: Option<&str>,
    report: &probe::CheckReport,
) -> String {
    let doc = Json::Obj(vec![
        ("file", file.into()),
        ("kernel", f.kernel.as_str().into()),
        ("arch", f.arch.as_str().into()),
        ("target", Json::opt(target, Json::from)),
        ("would_load", report.would_load().into()),
        (
            "programs",
            Json::Arr(
                report
                    .needs
                    .iter()
                    .map(|(name, t, needs)| {
                        let problems = report
                            .problems
                            .iter()
                            .filter(|pr| pr.program == *name)
                            .map(|pr| pr.reason.as_str().into())
                            .collect();
                        Json::Obj(vec![
                            ("name", name.as_str().into()),
                            ("type", t.to_string().into()),
                            (
                                "needs",
                                Json::Arr(needs.iter().map(|n| n.as_str().into()).collect()),
                            ),
                            ("problems", Json::Arr(problems)),
                        ])
                    })
                    .collect(),
            ),
        ),
        (
            "object_problems",
            Json::Arr(
                report
                    .problems
                    .iter()
                    .filter(|pr| pr.program == "(object)")
                    .map(|pr| pr.reason.as_str().into())
                    .collect(),
            ),
        ),
        (
            "notes",
            Json::Arr(report.notes.iter().map(|n| n.as_str().into()).collect()),
        ),
    ]);
    format!("{doc}\n")
}

/// `rawbpf check`'s plain report: what each program needs, what fails,
/// and the verdict.
fn check_text(
    file: &str,
    f: &Features,
    target: Option<&str>,
    report: &probe::CheckReport,
) -> String {
    let mut out = match target {
        Some(t) => format!("{file} on kernel {} {} (from {t}):\n", f.kernel, f.arch),
        None => format!("{file} on kernel {}:\n", f.kernel),
    };
    for (name, t, needs) in &report.needs {
        let _ = writeln!(
            out,
            "  {name} ({t}) needs: {}",
            if needs.is_empty() {
                "-".to_owned()
            } else {
                needs.join(", ")
            }
        );
    }
    for pr in &report.problems {
        let _ = writeln!(out, "  FAIL {}: {}", pr.program, pr.reason);
    }
    for n in &report.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let _ = writeln!(
        out,
        "{}",
        match (report.would_load(), target) {
            (true, None) => "would load here",
            (false, None) => "would NOT load here",
            (true, Some(_)) => "would load on the target",
            (false, Some(_)) => "would NOT load on the target",
        }
    );
    out
}
