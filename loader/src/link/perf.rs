//! Hooks reached through a perf event: tracepoints, kprobes (and uprobes,
//! whose ELF side is in [`super::uprobe`]) and sampling events. The
//! program is attached to the event with a perf-event link (5.15+), which
//! holds its own reference to the event, or with `PERF_EVENT_IOC_SET_BPF`
//! where the kernel has no such link.

use super::tracing::Ctx;
use super::{unsupported, AttachTargets, Attachment, Link, LinkError};
use crate::sys;
use crate::uapi::AttachType;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Where tracefs is found, newest first (the library never mounts it).
const TRACEFS: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Where dynamic PMUs (kprobe, uprobe) describe themselves.
const PMU_DIR: &str = "/sys/bus/event_source/devices";

/// Default sampling frequency of `perf_event` programs, in Hz.
pub const DEFAULT_SAMPLE_FREQ: u64 = 99;

/// `file` in the mounted tracefs, if tracefs is mounted and has it.
pub(super) fn tracefs_file(file: &str) -> Option<PathBuf> {
    TRACEFS
        .iter()
        .map(|dir| Path::new(dir).join(file))
        .find(|p| p.exists())
}

/// tracefs' `events` directory: found once per process (a group attach
/// reads a tracepoint id per program), and looked for again while missing.
fn events_dir() -> Option<PathBuf> {
    static EVENTS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(dir) = EVENTS.get() {
        return Some(dir.clone());
    }
    let dir = tracefs_file("events")?;
    Some(EVENTS.get_or_init(|| dir).clone())
}

/// A small tracefs file's text (a tracepoint id), in one read: tracefs
/// gives such a file whole to a buffer that holds it, and reports no size
/// to ask for beforehand.
fn read_small(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(path)?.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Attaches the program to an open perf event: a perf-event link, or on
/// kernels without one (EINVAL), `PERF_EVENT_IOC_SET_BPF` and enable.
pub(super) fn attach_event(
    ctx: &Ctx<'_>,
    target: String,
    event: OwnedFd,
) -> Result<Link, LinkError> {
    attach_event_with_cookie(ctx, target, event, 0)
}

/// [`attach_event`] with a BPF cookie for the program (`bpf_get_attach_cookie`);
/// a cookie needs a perf-event link (5.15+): the ioctl cannot give one.
pub(super) fn attach_event_with_cookie(
    ctx: &Ctx<'_>,
    target: String,
    event: OwnedFd,
    cookie: u64,
) -> Result<Link, LinkError> {
    let prog = ctx.program.fd();
    match sys::link_create_perf_event(prog, event.as_fd(), AttachType::PERF_EVENT.0, cookie) {
        // The link holds its own reference to the event: closing our fd
        // (dropping `event`) leaves the event alive while the link lives.
        Ok(link) => Ok(Link::new(ctx.name(), target, Attachment::Bpf(link))),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && cookie == 0 => {
            attach_event_ioctl(ctx, target, event)
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(unsupported(
            ctx.spec,
            format!("{target}: a BPF cookie needs perf-event links, which this kernel lacks ({e})"),
        )),
        Err(source) => Err(ctx.attach_err(&target, "BPF_LINK_CREATE (perf event)", source)),
    }
}

/// The pre-5.15 way: the event runs the program once `PERF_EVENT_IOC_SET_BPF`
/// names it, until the event's fd is closed.
fn attach_event_ioctl(ctx: &Ctx<'_>, target: String, event: OwnedFd) -> Result<Link, LinkError> {
    sys::perf_event_set_bpf(event.as_fd(), ctx.program.fd())
        .map_err(|s| ctx.attach_err(&target, "PERF_EVENT_IOC_SET_BPF", s))?;
    sys::perf_event_enable(event.as_fd())
        .map_err(|s| ctx.attach_err(&target, "PERF_EVENT_IOC_ENABLE", s))?;
    Ok(Link::new(ctx.name(), target, Attachment::PerfEvent(event)))
}

impl Link {
    /// The perf event's fd, for a program attached to it without a link
    /// (`PERF_EVENT_IOC_SET_BPF`, kernels before 5.15); closing it (dropping
    /// the link) detaches. `None` for every other attachment.
    pub fn perf_event_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match &self.attachment {
            Attachment::PerfEvent(fd) => Some(fd.as_fd()),
            _ => None,
        }
    }
}

/// `tp/CAT/NAME`, `tracepoint/CAT/NAME`: a perf event on the tracepoint's id.
pub(super) fn tracepoint(ctx: &Ctx<'_>) -> Result<Link, LinkError> {
    let (target, event, id) = tracepoint_event(ctx)?;
    let mut link = attach_event(ctx, target, event)?;
    link.tracepoint = Some(id);
    Ok(link)
}

/// The perf event of the tracepoint the section names, and its description.
fn tracepoint_event(ctx: &Ctx<'_>) -> Result<(String, OwnedFd, u64), LinkError> {
    let Some(name) = ctx.section_target() else {
        return Err(ctx.no_target("a tracepoint in the section (tp/CATEGORY/NAME)"));
    };
    let target = format!("tracepoint {name}");
    let not_found =
        |what: String| ctx.not_found(&target, io::Error::new(io::ErrorKind::NotFound, what));
    if name.split('/').count() != 2 || name.contains("..") {
        return Err(not_found(format!("{name:?} is not CATEGORY/NAME")));
    }
    let Some(events) = events_dir() else {
        return Err(not_found(format!(
            "tracefs not mounted (neither {} nor {} has events/)",
            TRACEFS[0], TRACEFS[1]
        )));
    };
    let id_file = events.join(name).join("id");
    let id = match read_small(&id_file) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| {
            not_found(format!(
                "{}: not a tracepoint id: {text:?}",
                id_file.display()
            ))
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(not_found(format!(
                "no such tracepoint ({} is missing)",
                id_file.display()
            )))
        }
        Err(e) => return Err(ctx.not_found(&target, e)),
    };
    let open = sys::PerfOpen {
        type_: sys::PERF_TYPE_TRACEPOINT,
        config: id,
        ..Default::default()
    };
    let event = sys::perf_event_open(&open, -1, sys::this_cpu())
        .map_err(|s| ctx.attach_err(&target, "perf_event_open (tracepoint)", s))?;
    Ok((target, event, id))
}

/// A dynamic PMU's perf type and the `config` bit that makes a return probe.
pub(super) fn pmu(name: &str) -> io::Result<Option<(u32, u32)>> {
    let dir = Path::new(PMU_DIR).join(name);
    let type_ = match std::fs::read_to_string(dir.join("type")) {
        Ok(t) => t.trim().parse::<u32>().map_err(|_| bad_pmu(&dir, "type"))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // "config:0": the bit of `config` that asks for a return probe.
    let ret = std::fs::read_to_string(dir.join("format/retprobe"))?;
    let bit = ret
        .trim()
        .strip_prefix("config:")
        .and_then(|b| b.parse::<u32>().ok())
        .filter(|&b| b < 64)
        .ok_or_else(|| bad_pmu(&dir, "format/retprobe"))?;
    Ok(Some((type_, bit)))
}

fn bad_pmu(dir: &Path, file: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}/{file}: unexpected contents", dir.display()),
    )
}

/// `kprobe/FUNC[+OFFSET]`, `kretprobe/FUNC`: a perf event of the kprobe PMU.
pub(super) fn kprobe(ctx: &Ctx<'_>, retprobe: bool) -> Result<Link, LinkError> {
    let Some(spec) = ctx.section_target() else {
        return Err(ctx.no_target("a kernel function in the section (kprobe/FUNCTION)"));
    };
    let (func, offset) = match spec.split_once('+') {
        Some((f, off)) => {
            let off = parse_u64(off).ok_or_else(|| {
                ctx.not_found(
                    &format!("kprobe {spec}"),
                    io::Error::new(io::ErrorKind::InvalidInput, "bad offset"),
                )
            })?;
            (f, off)
        }
        None => (spec, 0),
    };
    kprobe_at(ctx, func, offset, retprobe)
}

/// `ksyscall/NAME`, `kretsyscall/NAME`: a kprobe on the system call's
/// entry point.
pub(super) fn ksyscall(ctx: &Ctx<'_>, retprobe: bool) -> Result<Link, LinkError> {
    let Some(name) = ctx.section_target() else {
        return Err(ctx.no_target("a system call in the section (ksyscall/NAME)"));
    };
    // As libbpf: the arch's wrapper (`__x64_sys_NAME`) where the kernel
    // has syscall wrappers (4.17+ on x86-64), else `sys_NAME`.
    use crate::load::kconfig::{has_syscall_wrapper, syscall_prefix};
    let func = match syscall_prefix() {
        Some(arch) if has_syscall_wrapper() => format!("__{arch}_sys_{name}"),
        _ => format!("sys_{name}"),
    };
    kprobe_at(ctx, &func, 0, retprobe)
}

fn kprobe_at(ctx: &Ctx<'_>, func: &str, offset: u64, retprobe: bool) -> Result<Link, LinkError> {
    let kind = if retprobe { "kretprobe" } else { "kprobe" };
    let target = if offset == 0 {
        format!("{kind} {func}")
    } else {
        format!("{kind} {func}+{offset:#x}")
    };
    let (type_, ret_bit) = match pmu("kprobe") {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(unsupported(
                ctx.spec,
                format!("{target}: this kernel has no kprobes (no kprobe PMU in {PMU_DIR})"),
            ))
        }
        Err(e) => return Err(ctx.attach_err(&target, "reading the kprobe PMU", e)),
    };
    let name = CString::new(func)
        .map_err(|_| ctx.not_found(&target, io::Error::from_raw_os_error(libc::EINVAL)))?;
    let open = sys::PerfOpen {
        type_,
        config: if retprobe { 1 << ret_bit } else { 0 },
        name: Some(&name),
        offset,
        ..Default::default()
    };
    let event =
        sys::perf_event_open(&open, -1, sys::this_cpu()).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => ctx.not_found(&target, e),
            _ => ctx.attach_err(&target, "perf_event_open (kprobe)", e),
        })?;
    attach_event(ctx, target, event)
}

/// `perf_event`: a software CPU-clock sampling event on each possible CPU
/// (offline ones skipped), the program attached to each: one link per CPU.
pub(super) fn sampling(ctx: &Ctx<'_>, targets: &AttachTargets) -> Result<Vec<Link>, LinkError> {
    let freq = targets.sample_freq.unwrap_or(DEFAULT_SAMPLE_FREQ).max(1);
    let cpus_file = "/sys/devices/system/cpu/possible";
    let cpus = std::fs::read_to_string(cpus_file)
        .and_then(|t| parse_cpus(&t))
        .map_err(|e| ctx.attach_err("CPUs", "reading /sys/devices/system/cpu/possible", e))?;
    let mut links = Vec::with_capacity(cpus.len());
    for cpu in cpus {
        let target = format!("perf_event cpu-clock {freq} Hz on CPU {cpu}");
        let open = sys::PerfOpen {
            type_: sys::PERF_TYPE_SOFTWARE,
            config: sys::PERF_COUNT_SW_CPU_CLOCK,
            sample_freq: freq,
            ..Default::default()
        };
        let event = match sys::perf_event_open(&open, -1, cpu as i32) {
            Ok(e) => e,
            // A possible CPU that is offline.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => continue,
            Err(e) => return Err(ctx.attach_err(&target, "perf_event_open (cpu-clock)", e)),
        };
        // On error the links made so far drop here: nothing stays attached.
        links.push(attach_event(ctx, target, event)?);
    }
    Ok(links)
}

/// A CPU list as sysfs writes it: `0-3,6,8-9`.
pub(super) fn parse_cpus(text: &str) -> io::Result<Vec<u32>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad CPU list {text:?}"));
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if b < a || b - a > 65536 {
            return Err(bad());
        }
        cpus.extend(a..=b);
    }
    Ok(cpus)
}

/// A decimal or `0x` hexadecimal number.
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_cpus, parse_u64};

    /// The fallback of kernels without perf-event links, which this
    /// kernel (5.15+) never takes by itself: the ioctl-attached program
    /// runs on getppid() and stops when the link value goes.
    #[test]
    fn ioctl_attachment_runs_and_stops() {
        use super::super::tracing::Ctx;
        use crate::{Collection, LoadOptions, ObjectSpec};
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP ioctl_attachment_runs_and_stops: not root");
            return;
        }
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../programs/obj/link_tracing.bpf.o"
        );
        let spec = ObjectSpec::from_file(file).unwrap();
        let c = Collection::load(&spec, &LoadOptions::for_file(file.as_ref())).unwrap();
        let ctx = Ctx {
            program: c.program("on_tp").unwrap(),
            spec: spec.program("on_tp").unwrap(),
        };
        let tid = nix::unistd::gettid().as_raw() as u32;
        let zero = 0u32.to_ne_bytes();
        c.map("target_tid")
            .unwrap()
            .update(&zero, &tid.to_ne_bytes())
            .unwrap();
        let count = || {
            let v = c.map("counts").unwrap().lookup(&zero).unwrap().unwrap();
            u64::from_ne_bytes(v[..8].try_into().unwrap())
        };
        let (target, event, _) = super::tracepoint_event(&ctx).unwrap();
        let link = super::attach_event_ioctl(&ctx, target, event).unwrap();
        assert!(link.perf_event_fd().is_some() && link.fd().is_none());
        assert!(link.info().unwrap().is_none());
        let _ = nix::unistd::getppid();
        let during = count();
        assert!(during > 0, "the ioctl-attached program did not run");
        drop(link);
        let _ = nix::unistd::getppid();
        assert_eq!(count(), during, "it still runs after the event was closed");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0\n").unwrap(), vec![0]);
        assert_eq!(
            parse_cpus("0-3,6,8-9\n").unwrap(),
            vec![0, 1, 2, 3, 6, 8, 9]
        );
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("16"), Some(16));
        assert_eq!(parse_u64("zz"), None);
    }
}
