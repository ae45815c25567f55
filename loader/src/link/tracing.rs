//! Tracing hooks: tracepoints, kprobes, uprobes, raw tracepoints,
//! BTF-typed tracing (tp_btf, fentry, fexit, fmod_ret), LSM, freplace,
//! iterators and perf events. Perf-event kinds live in [`super::perf`],
//! uprobes in [`super::uprobe`], iterators in [`super::iter`].

use super::{perf, unsupported, uprobe, AttachTargets, Attachment, Link, LinkError};
use crate::load::Program;
use crate::obj::ProgramSpec;
use crate::sys;
use crate::uapi::{AttachType, ProgramType};
use std::ffi::CString;
use std::io;

/// The program being attached, for errors that name it and its section.
pub(super) struct Ctx<'a> {
    pub program: &'a Program,
    pub spec: &'a ProgramSpec,
}

impl Ctx<'_> {
    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// The kernel refused `action` at `target`.
    pub fn attach_err(&self, target: &str, action: &'static str, source: io::Error) -> LinkError {
        LinkError::Attach {
            program: self.spec.name().to_owned(),
            section: self.spec.section().to_owned(),
            target: target.to_owned(),
            action,
            source,
        }
    }

    /// `target` does not exist.
    pub fn not_found(&self, target: &str, source: io::Error) -> LinkError {
        LinkError::TargetNotFound {
            program: self.spec.name().to_owned(),
            section: self.spec.section().to_owned(),
            target: target.to_owned(),
            source,
        }
    }

    /// The section names no target and `targets` gives none.
    pub fn no_target(&self, needs: &'static str) -> LinkError {
        LinkError::NoTarget {
            program: self.spec.name().to_owned(),
            section: self.spec.section().to_owned(),
            needs,
        }
    }

    /// The target the section names, if any.
    pub fn section_target(&self) -> Option<&str> {
        self.spec.attach_target.as_deref().filter(|t| !t.is_empty())
    }
}

/// Attaches a tracing program where its section says.
pub(super) fn attach(
    program: &Program,
    spec: &ProgramSpec,
    targets: &AttachTargets,
) -> Result<Vec<Link>, LinkError> {
    let ctx = Ctx { program, spec };
    let kind = spec.section().split('/').next().unwrap_or_default();
    let one = |l: Result<Link, LinkError>| l.map(|l| vec![l]);
    match spec.prog_type {
        ProgramType::RAW_TRACEPOINT | ProgramType::RAW_TRACEPOINT_WRITABLE => {
            one(raw_tracepoint(program, spec))
        }
        ProgramType::TRACEPOINT => one(perf::tracepoint(&ctx)),
        ProgramType::PERF_EVENT => perf::sampling(&ctx, targets),
        ProgramType::TRACING if spec.attach_type == Some(AttachType::TRACE_ITER) => {
            one(super::iter::attach(&ctx))
        }
        ProgramType::LSM if spec.attach_type == Some(AttachType::LSM_CGROUP) => {
            one(lsm_cgroup(&ctx, targets))
        }
        ProgramType::TRACING | ProgramType::LSM | ProgramType::EXT => one(btf_typed(&ctx)),
        ProgramType::KPROBE => match kind {
            "kprobe" | "kretprobe" => one(perf::kprobe(&ctx, kind == "kretprobe")),
            "ksyscall" | "kretsyscall" => one(perf::ksyscall(&ctx, kind == "kretsyscall")),
            "kprobe.multi" | "kretprobe.multi" | "kprobe.session" => one(kprobe_multi(&ctx, kind)),
            "uprobe" | "uprobe.s" | "uretprobe" | "uretprobe.s" => {
                one(uprobe::attach(&ctx, targets, kind.starts_with("uret")))
            }
            "uprobe.multi" | "uprobe.multi.s" | "uretprobe.multi" | "uretprobe.multi.s" => one(
                uprobe::attach_multi(&ctx, targets, kind.starts_with("uret")),
            ),
            "usdt" | "usdt.s" => super::usdt::attach(&ctx, targets),
            _ => Err(unsupported(spec, format!("section {}", spec.section()))),
        },
        _ => Err(unsupported(spec, format!("section {}", spec.section()))),
    }
}

/// `raw_tp/NAME`, `raw_tracepoint/NAME`: `BPF_RAW_TRACEPOINT_OPEN` on the
/// tracepoint the section names.
fn raw_tracepoint(program: &Program, spec: &ProgramSpec) -> Result<Link, LinkError> {
    let ctx = Ctx { program, spec };
    let Some(name) = ctx.section_target() else {
        return Err(ctx.no_target("a tracepoint name in the section (raw_tp/NAME)"));
    };
    let target = format!("raw tracepoint {name}");
    let fail = |source: io::Error| {
        if source.raw_os_error() == Some(libc::ENOENT) {
            ctx.not_found(&target, source)
        } else {
            ctx.attach_err(&target, "BPF_RAW_TRACEPOINT_OPEN", source)
        }
    };
    let c = CString::new(name).map_err(|_| fail(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let fd = sys::raw_tracepoint_open(program.fd(), Some(&c)).map_err(fail)?;
    Ok(Link::new(spec.name(), target, Attachment::Bpf(fd)))
}

/// tp_btf, fentry, fexit, fmod_ret, lsm and freplace: the target was given
/// at load (`attach_btf_id`, `attach_prog_fd`), so the attachment names
/// none: `BPF_LINK_CREATE` with the program's expected attach type (5.10+
/// for these kinds), else `BPF_RAW_TRACEPOINT_OPEN` without a name (5.5+).
fn btf_typed(ctx: &Ctx<'_>) -> Result<Link, LinkError> {
    let kind = ctx.spec.section().split('/').next().unwrap_or_default();
    let target = match ctx.section_target() {
        Some(t) => format!("{kind} {t}"),
        None => kind.to_owned(),
    };
    let prog = ctx.program;
    let fd = match sys::link_create_ifindex(prog.fd(), 0, prog.attach_type(), 0) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            sys::raw_tracepoint_open(prog.fd(), None)
                .map_err(|source| ctx.attach_err(&target, "BPF_RAW_TRACEPOINT_OPEN", source))?
        }
        Err(source) => return Err(ctx.attach_err(&target, "BPF_LINK_CREATE", source)),
    };
    Ok(Link::new(ctx.name(), target, Attachment::Bpf(fd)))
}

/// `lsm_cgroup/HOOK`: an LSM program run for the tasks of a cgroup, a
/// link on the cgroup's fd (6.0+).
fn lsm_cgroup(ctx: &Ctx<'_>, targets: &AttachTargets) -> Result<Link, LinkError> {
    let Some(path) = targets.cgroup.as_deref() else {
        return Err(ctx.no_target("a cgroup (--cgroup PATH)"));
    };
    let target = format!(
        "cgroup {} lsm {}",
        path.display(),
        ctx.section_target().unwrap_or_default()
    );
    let cgroup = std::fs::File::open(path).map_err(|e| ctx.not_found(&target, e))?;
    let at = AttachType::LSM_CGROUP.0;
    let fd = sys::link_create_fd(ctx.program.fd(), std::os::fd::AsFd::as_fd(&cgroup), at, 0)
        .map_err(|e| ctx.attach_err(&target, "BPF_LINK_CREATE (lsm_cgroup)", e))?;
    Ok(Link::new(ctx.name(), target, Attachment::Bpf(fd)))
}

/// `kprobe.multi/PATTERN`, `kretprobe.multi/PATTERN`, `kprobe.session/PATTERN`:
/// one multi-link on every traceable kernel function whose name matches
/// the glob (5.18+, sessions 6.10+; no older mechanism runs a program of
/// these attach types).
fn kprobe_multi(ctx: &Ctx<'_>, kind: &str) -> Result<Link, LinkError> {
    let Some(pattern) = ctx.section_target() else {
        return Err(ctx.no_target("a function pattern in the section (kprobe.multi/PATTERN)"));
    };
    let target = format!("{kind} {pattern}");
    let names = kernel_functions(pattern).map_err(|e| ctx.not_found(&target, e))?;
    if names.is_empty() {
        return Err(ctx.not_found(
            &target,
            io::Error::new(
                io::ErrorKind::NotFound,
                "no traceable kernel function matches",
            ),
        ));
    }
    let names: Vec<CString> = names
        .into_iter()
        .filter_map(|n| CString::new(n).ok())
        .collect();
    let refs: Vec<&std::ffi::CStr> = names.iter().map(|n| n.as_c_str()).collect();
    let flags = if kind == "kretprobe.multi" {
        sys::MULTI_RETURN
    } else {
        0
    };
    let at = match kind {
        "kprobe.session" => AttachType::TRACE_KPROBE_SESSION.0,
        _ => AttachType::TRACE_KPROBE_MULTI.0,
    };
    match sys::link_create_kprobe_multi(ctx.program.fd(), at, &refs, flags) {
        Ok(fd) => Ok(Link::new(ctx.name(), target, Attachment::Bpf(fd))),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            Err(unsupported(
                ctx.spec,
                format!("{target}: this kernel has no {kind} links ({e})"),
            ))
        }
        Err(source) => Err(ctx.attach_err(&target, "BPF_LINK_CREATE (kprobe.multi)", source)),
    }
}

/// The traceable kernel functions matching `pattern`: from tracefs's
/// `available_filter_functions` (the ones a kprobe multi-link takes), or
/// `/proc/kallsyms`'s text symbols where tracefs is not mounted.
fn kernel_functions(pattern: &str) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = match perf::tracefs_file("available_filter_functions") {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| glob(pattern, n))
            .map(str::to_owned)
            .collect(),
        None => std::fs::read_to_string("/proc/kallsyms")?
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, t, n) = (f.next()?, f.next()?, f.next()?);
                (matches!(t, "t" | "T") && f.next().is_none()).then_some(n)
            })
            .filter(|n| glob(pattern, n))
            .map(str::to_owned)
            .collect(),
    };
    names.sort();
    names.dedup();
    Ok(names)
}

/// Whether `name` matches the shell-style `pattern` (`*` and `?`).
pub(super) fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_the_shell_does() {
        assert!(glob("tcp_*", "tcp_sendmsg"));
        assert!(glob("*sys_getppid", "__x64_sys_getppid"));
        assert!(glob("do_?ys_open*", "do_sys_openat2"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(!glob("tcp_*", "udp_sendmsg"));
        assert!(glob("*", ""));
    }
}
