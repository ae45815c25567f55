//! uprobes and uretprobes: a perf event of the uprobe PMU at a file offset
//! of a binary, the offset found from the binary's ELF symbols (`.symtab`
//! and `.dynsym`; executables, PIE and shared libraries alike); and
//! uprobe multi-links (6.6+) on every function matching a glob.

use super::perf::{attach_event, parse_u64, pmu};
use super::tracing::{glob, Ctx};
use super::{unsupported, AttachTargets, Attachment, Link, LinkError};
use crate::sys;
use crate::uapi::AttachType;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// Where a library named without a directory is looked for.
const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// Where a probe goes: a binary and a function in it (or a file offset).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProbeSpec {
    /// The binary as given (a path, or a library or program name).
    pub binary: String,
    /// The symbol (a glob for multi-probes); empty for a bare file offset.
    pub symbol: String,
    /// Bytes past the symbol, or the file offset when `symbol` is empty.
    pub offset: u64,
}

/// Parses `PATH:SYMBOL[+OFFSET]` or `PATH:0xOFFSET` (libbpf's forms).
pub(super) fn parse_probe(binary: &str, func: &str) -> Option<ProbeSpec> {
    if binary.is_empty() || func.is_empty() {
        return None;
    }
    let (symbol, offset) = match func.split_once('+') {
        Some((s, off)) => (s, parse_u64(off)?),
        None if func.starts_with("0x") => ("", parse_u64(func)?),
        None => (func, 0),
    };
    Some(ProbeSpec {
        binary: binary.to_owned(),
        symbol: symbol.to_owned(),
        offset,
    })
}

/// The probe the section names (`uprobe/PATH:SYMBOL`) or, for a section
/// without one, the binary and symbol `targets` give.
fn probe_spec(ctx: &Ctx<'_>, targets: &AttachTargets) -> Result<ProbeSpec, LinkError> {
    let (binary, func) = match ctx.section_target() {
        Some(t) => t.split_once(':').unwrap_or((t, "")),
        None => {
            let (Some(b), Some(s)) = (&targets.uprobe_binary, &targets.uprobe_symbol) else {
                return Err(ctx.no_target(
                    "a binary and a function (uprobe/PATH:SYMBOL in the section, or --uprobe-binary PATH --uprobe-symbol SYMBOL)",
                ));
            };
            (b.to_str().unwrap_or_default(), s.as_str())
        }
    };
    parse_probe(binary, func).ok_or_else(|| {
        ctx.not_found(
            &format!("uprobe {binary}:{func}"),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "expected PATH:SYMBOL[+OFFSET] or PATH:0xOFFSET",
            ),
        )
    })
}

/// The file a binary name means: a path as is; a bare name from the
/// library directories, then `$PATH`.
pub(super) fn find_binary(name: &str) -> io::Result<PathBuf> {
    let not_found = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such binary {name:?} (nor in the library directories or $PATH)"),
        )
    };
    if name.contains('/') {
        let p = Path::new(name);
        return match p.metadata() {
            Ok(m) if m.is_file() => std::fs::canonicalize(p),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: not a file"),
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such binary {name}"),
            )),
            Err(e) => Err(e),
        };
    }
    let path_var = std::env::var("PATH").unwrap_or_default();
    LIB_DIRS
        .iter()
        .copied()
        .chain(path_var.split(':').filter(|d| !d.is_empty()))
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .ok_or_else(not_found)
}

/// File offsets of the defined functions of `elf` whose name matches
/// `pattern` (exactly, or as a glob when `is_glob`), by name: `.symtab`
/// first, then `.dynsym`. The offset of a symbol is its address's place in
/// the `PT_LOAD` segment holding it.
pub(super) fn symbol_offsets(
    elf: &[u8],
    pattern: &str,
    is_glob: bool,
) -> io::Result<Vec<(String, u64)>> {
    let file = object::File::parse(elf)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not an ELF file: {e}")))?;
    let mut found: Vec<(String, u64)> = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        let Ok(name) = sym.name() else { continue };
        let matches = if is_glob {
            glob(pattern, name)
        } else {
            name == pattern
        };
        if !matches || !sym.is_definition() || sym.kind() != SymbolKind::Text || sym.address() == 0
        {
            continue;
        }
        if found.iter().any(|(n, _)| n == name) {
            continue;
        }
        let addr = sym.address();
        let offset = file
            .segments()
            .find(|s| s.address() <= addr && addr < s.address() + s.size())
            .map(|s| addr - s.address() + s.file_range().0);
        if let Some(offset) = offset {
            found.push((name.to_owned(), offset));
        }
    }
    Ok(found)
}

/// The binary's path and the file offset a probe spec means.
fn resolve(ctx: &Ctx<'_>, probe: &ProbeSpec, target: &str) -> Result<(PathBuf, u64), LinkError> {
    let path = find_binary(&probe.binary).map_err(|e| ctx.not_found(target, e))?;
    if probe.symbol.is_empty() {
        return Ok((path, probe.offset));
    }
    let elf = std::fs::read(&path).map_err(|e| ctx.not_found(target, e))?;
    let found = symbol_offsets(&elf, &probe.symbol, false).map_err(|e| ctx.not_found(target, e))?;
    match found.first() {
        Some((_, off)) => Ok((path, off + probe.offset)),
        None => Err(ctx.not_found(
            target,
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no function {} in {}", probe.symbol, path.display()),
            ),
        )),
    }
}

fn describe(kind: &str, probe: &ProbeSpec) -> String {
    match (probe.symbol.as_str(), probe.offset) {
        ("", off) => format!("{kind} {}:{off:#x}", probe.binary),
        (sym, 0) => format!("{kind} {}:{sym}", probe.binary),
        (sym, off) => format!("{kind} {}:{sym}+{off:#x}", probe.binary),
    }
}

/// `uprobe/PATH:SYMBOL[+OFFSET]`, `uretprobe/...`, or `uprobe` with the
/// binary and symbol from `targets`: a perf event of the uprobe PMU, in
/// `targets.pid` only when given.
pub(super) fn attach(
    ctx: &Ctx<'_>,
    targets: &AttachTargets,
    retprobe: bool,
) -> Result<Link, LinkError> {
    let probe = probe_spec(ctx, targets)?;
    let target = describe(if retprobe { "uretprobe" } else { "uprobe" }, &probe);
    let (path, offset) = resolve(ctx, &probe, &target)?;
    let (type_, ret_bit) = match pmu("uprobe") {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(unsupported(
                ctx.spec,
                format!("{target}: this kernel has no uprobes (no uprobe PMU in /sys/bus/event_source/devices)"),
            ))
        }
        Err(e) => return Err(ctx.attach_err(&target, "reading the uprobe PMU", e)),
    };
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ctx.not_found(&target, io::Error::from_raw_os_error(libc::EINVAL)))?;
    let open = sys::PerfOpen {
        type_,
        config: if retprobe { 1 << ret_bit } else { 0 },
        name: Some(&c_path),
        offset,
        ..Default::default()
    };
    // A process's uprobe is on any CPU; an all-process one on every CPU,
    // which any one CPU with pid -1 means for uprobe events (this one: see
    // sys::this_cpu).
    let (pid, cpu) = match targets.pid {
        Some(pid) => (pid as i32, -1),
        None => (-1, sys::this_cpu()),
    };
    let event = sys::perf_event_open(&open, pid, cpu).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => ctx.not_found(&format!("{target} in process {pid}"), e),
        _ => ctx.attach_err(&target, "perf_event_open (uprobe)", e),
    })?;
    attach_event(ctx, target, event)
}

/// `uprobe.multi/PATH:PATTERN`, `uretprobe.multi/...`: one multi-link on
/// every function of the binary matching the glob (6.6+; programs of this
/// attach type have no older mechanism).
pub(super) fn attach_multi(
    ctx: &Ctx<'_>,
    targets: &AttachTargets,
    retprobe: bool,
) -> Result<Link, LinkError> {
    let probe = probe_spec(ctx, targets)?;
    let kind = if retprobe {
        "uretprobe.multi"
    } else {
        "uprobe.multi"
    };
    let target = describe(kind, &probe);
    let path = find_binary(&probe.binary).map_err(|e| ctx.not_found(&target, e))?;
    let elf = std::fs::read(&path).map_err(|e| ctx.not_found(&target, e))?;
    let found = symbol_offsets(&elf, &probe.symbol, true).map_err(|e| ctx.not_found(&target, e))?;
    if found.is_empty() {
        return Err(ctx.not_found(
            &target,
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no function matches in {}", path.display()),
            ),
        ));
    }
    let offsets: Vec<u64> = found.iter().map(|(_, off)| off + probe.offset).collect();
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ctx.not_found(&target, io::Error::from_raw_os_error(libc::EINVAL)))?;
    let flags = if retprobe { sys::MULTI_RETURN } else { 0 };
    let at = AttachType::TRACE_UPROBE_MULTI.0;
    let pid = targets.pid.unwrap_or(0);
    match sys::link_create_uprobe_multi(ctx.program.fd(), at, &c_path, &offsets, pid, flags) {
        Ok(fd) => Ok(Link::new(ctx.name(), target, Attachment::Bpf(fd))),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            Err(unsupported(
                ctx.spec,
                format!("{target}: this kernel has no uprobe multi-links ({e})"),
            ))
        }
        Err(source) => Err(ctx.attach_err(&target, "BPF_LINK_CREATE (uprobe.multi)", source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_specs() {
        assert_eq!(
            parse_probe("/bin/bash", "readline+0x10"),
            Some(ProbeSpec {
                binary: "/bin/bash".into(),
                symbol: "readline".into(),
                offset: 16
            })
        );
        assert_eq!(parse_probe("libc.so.6", "0x1234").unwrap().offset, 0x1234);
        assert_eq!(parse_probe("libc.so.6", "0x1234").unwrap().symbol, "");
        assert_eq!(parse_probe("libc.so.6", "malloc").unwrap().offset, 0);
        assert_eq!(parse_probe("", "malloc"), None);
        assert_eq!(parse_probe("/bin/x", ""), None);
        assert_eq!(parse_probe("/bin/x", "f+zz"), None);
    }

    /// This test binary's own function: its file offset is where its
    /// address falls in the executable's PT_LOAD segment.
    #[test]
    fn own_function_offset() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let found = symbol_offsets(&exe, "rust_begin_unwind", false).unwrap_or_default();
        // Whether or not the symbol table has it, what is found is inside the file.
        for (_, off) in found {
            assert!((off as usize) < exe.len());
        }
        assert!(symbol_offsets(b"not an elf", "x", false).is_err());
        assert!(find_binary("/nonexistent/rawbpf-binary").is_err());
        assert!(find_binary("rawbpf-no-such-library.so.9").is_err());
    }
}
