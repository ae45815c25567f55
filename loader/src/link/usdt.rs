//! USDT probes (`usdt/PATH:PROVIDER:NAME`), as libbpf attaches them for
//! programs written with its `usdt.bpf.h`: each probe site the binary's
//! `.note.stapsdt` notes list becomes a uprobe (with the probe's
//! semaphore as the uprobe's reference counter), whose BPF cookie is the
//! index of the site's argument spec in the program's `__bpf_usdt_specs`
//! map. Cookies need perf-event links (5.15+); on older kernels, as
//! libbpf does, the site's address in the traced process is the key of the
//! spec index in `__bpf_usdt_ip_to_spec_id` (usdt.bpf.h reads it when
//! `LINUX_HAS_BPF_COOKIE` is false). That address is the note's for a
//! fixed-address executable; a position-independent one or a shared
//! library is placed per process, so there a pid is needed, and its
//! `/proc/PID/maps` says where. Argument specs are parsed for x86-64.

use super::perf::{attach_event_with_cookie, pmu};
use super::tracing::Ctx;
use super::uprobe::find_binary;
use super::{unsupported, AttachTargets, Link, LinkError};
use crate::sys;
use object::{Object, ObjectSection, ObjectSegment};
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

/// Arguments a spec holds (`BPF_USDT_MAX_ARG_CNT`).
const MAX_ARGS: usize = 12;
/// Size of `struct __bpf_usdt_spec`.
const SPEC_SIZE: usize = 208;
/// The uprobe PMU's `config` bits holding the reference counter's offset.
const REF_CTR_OFFSET_SHIFT: u32 = 32;
/// The spec map's name as the kernel keeps it (15 bytes of `__bpf_usdt_specs`).
const SPECS_MAP: &str = "__bpf_usdt_spec";
/// The IP map's (15 bytes of `__bpf_usdt_ip_to_spec_id`).
const IP_MAP: &str = "__bpf_usdt_ip_t";

/// One probe site of a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Note {
    pub provider: String,
    pub name: String,
    /// File offset of the probe's instruction.
    pub offset: u64,
    /// Its virtual address in the file (where a fixed-address executable
    /// runs it).
    pub address: u64,
    /// File offset of its semaphore (0: none).
    pub semaphore: u64,
    /// The argument spec (`-4@%eax 8@-8(%rbp) 4@$5`).
    pub args: String,
}

/// The probe sites `.note.stapsdt` lists, with file offsets.
pub(super) fn notes(elf: &[u8]) -> io::Result<Vec<Note>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let file = object::File::parse(elf).map_err(|e| bad(&format!("not an ELF file: {e}")))?;
    if !file.is_64() || !file.is_little_endian() {
        return Err(bad(
            "USDT notes are read from 64-bit little-endian ELF files only",
        ));
    }
    let Some(section) = file.section_by_name(".note.stapsdt") else {
        return Ok(Vec::new());
    };
    let data = section.data().map_err(|e| bad(&e.to_string()))?;
    let base_section = file.section_by_name(".stapsdt.base").map(|s| s.address());
    let file_offset = |addr: u64| {
        file.segments()
            .find(|s| s.address() <= addr && addr < s.address() + s.size())
            .map(|s| addr - s.address() + s.file_range().0)
    };
    let u32_at = |d: &[u8], o: usize| {
        d.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |d: &[u8], o: usize| {
        d.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let align4 = |n: usize| (n + 3) & !3;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 12 <= data.len() {
        let (Some(namesz), Some(descsz), Some(kind)) =
            (u32_at(data, at), u32_at(data, at + 4), u32_at(data, at + 8))
        else {
            break;
        };
        let name_at = at + 12;
        let desc_at = name_at + align4(namesz as usize);
        let end = desc_at + descsz as usize;
        let (Some(name), Some(desc)) = (
            data.get(name_at..name_at + namesz as usize),
            data.get(desc_at..end),
        ) else {
            return Err(bad("a truncated .note.stapsdt note"));
        };
        at = desc_at + align4(descsz as usize);
        if kind != 3 || name != b"stapsdt\0" {
            continue;
        }
        let (Some(mut pc), Some(base), Some(sema)) =
            (u64_at(desc, 0), u64_at(desc, 8), u64_at(desc, 16))
        else {
            return Err(bad("a truncated stapsdt note"));
        };
        let mut strings = desc[24.min(desc.len())..].split(|&b| b == 0);
        let mut next = || String::from_utf8_lossy(strings.next().unwrap_or_default()).into_owned();
        let (provider, probe, args) = (next(), next(), next());
        // Prelinked binaries moved: .stapsdt.base says by how much.
        if let Some(actual) = base_section.filter(|_| base != 0) {
            pc = pc.wrapping_add(actual).wrapping_sub(base);
        }
        let offset = file_offset(pc).ok_or_else(|| {
            bad(&format!(
                "USDT {provider}:{probe}: address {pc:#x} is in no segment"
            ))
        })?;
        let semaphore = if sema == 0 {
            0
        } else {
            file_offset(sema).unwrap_or(0)
        };
        out.push(Note {
            provider,
            name: probe,
            offset,
            address: pc,
            semaphore,
            args,
        });
    }
    Ok(out)
}

/// `struct pt_regs` offset of an x86-64 register, by any of its names.
fn x86_64_reg(name: &str) -> Option<i16> {
    Some(match name {
        "rip" | "eip" => 128,
        "rax" | "eax" | "ax" | "al" => 80,
        "rbx" | "ebx" | "bx" | "bl" => 40,
        "rcx" | "ecx" | "cx" | "cl" => 88,
        "rdx" | "edx" | "dx" | "dl" => 96,
        "rsi" | "esi" | "si" | "sil" => 104,
        "rdi" | "edi" | "di" | "dil" => 112,
        "rbp" | "ebp" | "bp" | "bpl" => 32,
        "rsp" | "esp" | "sp" | "spl" => 152,
        _ => {
            let n = name.strip_prefix('r')?;
            let n = n.trim_end_matches(['d', 'w', 'b']);
            match n.parse::<u8>().ok()? {
                8 => 72,
                9 => 64,
                10 => 56,
                11 => 48,
                12 => 24,
                13 => 16,
                14 => 8,
                15 => 0,
                _ => return None,
            }
        }
    })
}

/// One argument's spec, as `struct __bpf_usdt_arg_spec` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct ArgSpec {
    pub val_off: u64,
    /// 0 constant, 1 register, 2 memory at register + `val_off`.
    pub arg_type: u8,
    pub reg_off: i16,
    pub signed: bool,
    pub bitshift: u8,
}

fn parse_i64(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => s.parse::<i64>().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// Parses an x86-64 argument spec string (`-4@%eax 8@-8(%rbp) 4@$5`).
pub(super) fn parse_args(spec: &str) -> Result<Vec<ArgSpec>, String> {
    let mut out = Vec::new();
    for arg in spec.split_whitespace() {
        let bad = || format!("USDT argument {arg:?}: not understood");
        let (size, op) = arg.split_once('@').ok_or_else(bad)?;
        let size = size.parse::<i32>().map_err(|_| bad())?;
        if !matches!(size.abs(), 1 | 2 | 4 | 8) {
            return Err(bad());
        }
        let mut a = ArgSpec {
            signed: size < 0,
            bitshift: (64 - size.unsigned_abs() * 8) as u8,
            ..Default::default()
        };
        if let Some(imm) = op.strip_prefix('$') {
            a.val_off = parse_i64(imm).ok_or_else(bad)? as u64;
        } else if let Some(reg) = op.strip_prefix('%') {
            a.arg_type = 1;
            a.reg_off = x86_64_reg(reg).ok_or_else(bad)?;
        } else if let Some((off, rest)) = op.split_once("(%") {
            let reg = rest.strip_suffix(')').ok_or_else(bad)?;
            a.arg_type = 2;
            a.val_off = if off.is_empty() {
                0
            } else {
                parse_i64(off).ok_or_else(bad)? as u64
            };
            a.reg_off = x86_64_reg(reg).ok_or_else(bad)?;
        } else {
            return Err(bad());
        }
        out.push(a);
    }
    if out.len() > MAX_ARGS {
        return Err(format!("{} USDT arguments; at most {MAX_ARGS}", out.len()));
    }
    Ok(out)
}

/// `struct __bpf_usdt_spec`'s bytes.
pub(super) fn encode_spec(args: &[ArgSpec]) -> [u8; SPEC_SIZE] {
    let mut b = [0u8; SPEC_SIZE];
    for (i, a) in args.iter().enumerate() {
        let o = i * 16;
        b[o..o + 8].copy_from_slice(&a.val_off.to_le_bytes());
        b[o + 8] = a.arg_type;
        b[o + 12..o + 14].copy_from_slice(&a.reg_off.to_le_bytes());
        b[o + 14] = u8::from(a.signed);
        b[o + 15] = a.bitshift;
    }
    b[200..202].copy_from_slice(&(args.len() as i16).to_le_bytes());
    b
}

/// The next free spec index of each spec map (by map id) in this process.
static NEXT_SPEC: Mutex<Option<HashMap<u32, u32>>> = Mutex::new(None);

/// The program's map of this (truncated) name and value size, if it uses one.
fn program_map(
    ctx: &Ctx<'_>,
    name: &str,
    value_size: usize,
) -> io::Result<Option<(OwnedFd, sys::MapInfo)>> {
    for id in sys::prog_map_ids(ctx.program.fd())? {
        let fd = sys::map_get_fd_by_id(id)?;
        let info = sys::map_info(fd.as_fd())?;
        let end = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(info.name.len());
        if &info.name[..end] == name.as_bytes() && info.value_size as usize == value_size {
            return Ok(Some((fd, info)));
        }
    }
    Ok(None)
}

/// One executable mapping of the traced binary in a process
/// (`/proc/PID/maps`): `start..end` holds the file from `file_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mapping {
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
}

/// The executable mappings of the file with this device and inode, from
/// the text of `/proc/PID/maps`.
pub(super) fn mappings(maps: &str, dev: (u64, u64), inode: u64) -> Vec<Mapping> {
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, off, device, ino) =
                (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let (start, end) = range.split_once('-')?;
            let (major, minor) = device.split_once(':')?;
            let same = (hex(major)?, hex(minor)?) == dev && ino.parse::<u64>().ok()? == inode;
            (same && perms.contains('x')).then_some(Mapping {
                start: hex(start)?,
                end: hex(end)?,
                file_offset: hex(off)?,
            })
        })
        .collect()
}

/// Where a site runs in the traced process, for kernels without BPF
/// cookies: the key of its spec in `__bpf_usdt_ip_to_spec_id`.
enum Placement {
    /// A fixed-address executable: the note's address.
    Fixed,
    /// A position-independent file, where the process mapped it.
    Mapped(Vec<Mapping>),
}

impl Placement {
    fn of(
        ctx: &Ctx<'_>,
        target: &str,
        elf: &[u8],
        path: &std::path::Path,
        pid: Option<u32>,
    ) -> Result<Self, LinkError> {
        let bad = |e: object::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        let file = object::File::parse(elf).map_err(|e| ctx.not_found(target, bad(e)))?;
        if file.kind() == object::ObjectKind::Executable {
            return Ok(Placement::Fixed);
        }
        let Some(pid) = pid else {
            return Err(unsupported(
                ctx.spec,
                format!("{target}: {} is position-independent and this kernel has no BPF cookies (5.15), so the probe's address is known only in one process: give its pid", path.display()),
            ));
        };
        let st = nix::sys::stat::stat(path).map_err(|e| ctx.not_found(target, e.into()))?;
        let dev = (
            nix::sys::stat::major(st.st_dev),
            nix::sys::stat::minor(st.st_dev),
        );
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_err(|e| ctx.not_found(&format!("{target} in pid {pid}"), e))?;
        let found = mappings(&maps, dev, st.st_ino);
        if found.is_empty() {
            return Err(ctx.not_found(
                &format!("{target} in pid {pid}"),
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("process {pid} has not mapped {}", path.display()),
                ),
            ));
        }
        Ok(Placement::Mapped(found))
    }

    fn address(&self, site: &Note) -> Option<u64> {
        match self {
            Placement::Fixed => Some(site.address),
            Placement::Mapped(maps) => maps
                .iter()
                .find(|m| {
                    m.file_offset <= site.offset && site.offset - m.file_offset < m.end - m.start
                })
                .map(|m| m.start + site.offset - m.file_offset),
        }
    }
}

/// The spec of each site reaches the program by BPF cookie, or on older
/// kernels by the site's address in `__bpf_usdt_ip_to_spec_id`.
enum SpecKey {
    Cookie,
    Address(OwnedFd, Placement),
}

/// `usdt/PATH:PROVIDER:NAME`, or `usdt` with the binary and `PROVIDER:NAME`
/// from `targets`.
fn probe_of(ctx: &Ctx<'_>, targets: &AttachTargets) -> Result<(String, String), LinkError> {
    Ok(match ctx.section_target() {
        Some(t) => {
            let mut parts = t.rsplitn(3, ':');
            let (name, provider, path) = (parts.next(), parts.next(), parts.next());
            match (path, provider, name) {
                (Some(p), Some(pr), Some(n)) => (p.to_owned(), format!("{pr}:{n}")),
                _ => return Err(ctx.no_target("a probe in the section (usdt/PATH:PROVIDER:NAME)")),
            }
        }
        None => match (&targets.uprobe_binary, &targets.uprobe_symbol) {
            (Some(b), Some(s)) => (b.to_string_lossy().into_owned(), s.clone()),
            _ => return Err(ctx.no_target("a binary and PROVIDER:NAME (usdt/PATH:PROVIDER:NAME, or --uprobe-binary PATH --uprobe-symbol SYMBOL)")),
        },
    })
}

/// A uprobe on each site of the probe.
pub(super) fn attach(ctx: &Ctx<'_>, targets: &AttachTargets) -> Result<Vec<Link>, LinkError> {
    let (binary, probe) = probe_of(ctx, targets)?;
    let target = format!("usdt {binary}:{probe}");
    let (provider, name) = probe.split_once(':').unwrap_or(("", &probe));
    let path = find_binary(&binary).map_err(|e| ctx.not_found(&target, e))?;
    let elf = std::fs::read(&path).map_err(|e| ctx.not_found(&target, e))?;
    let sites: Vec<Note> = notes(&elf)
        .map_err(|e| ctx.not_found(&target, e))?
        .into_iter()
        .filter(|n| n.name == name && (provider.is_empty() || n.provider == provider))
        .collect();
    if sites.is_empty() {
        return Err(ctx.not_found(
            &target,
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no USDT probe {probe} in {}", path.display()),
            ),
        ));
    }
    let Some((type_, _)) =
        pmu("uprobe").map_err(|e| ctx.attach_err(&target, "reading the uprobe PMU", e))?
    else {
        return Err(unsupported(
            ctx.spec,
            format!("{target}: this kernel has no uprobes"),
        ));
    };
    let specs = program_map(ctx, SPECS_MAP, SPEC_SIZE)
        .map_err(|e| ctx.attach_err(&target, "finding the program's __bpf_usdt_specs map", e))?;
    let ip_map = program_map(ctx, IP_MAP, 4)
        .map_err(|e| ctx.attach_err(&target, "finding the program's IP map", e))?;
    let key = match ip_map {
        Some((fd, _)) if specs.is_some() && !crate::kconfig::has_bpf_cookie() => {
            SpecKey::Address(fd, Placement::of(ctx, &target, &elf, &path, targets.pid)?)
        }
        _ => SpecKey::Cookie,
    };
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ctx.not_found(&target, io::Error::from_raw_os_error(libc::EINVAL)))?;
    let (pid, cpu) = targets
        .pid
        .map_or((-1, sys::this_cpu()), |p| (p as i32, -1));
    let mut links = Vec::with_capacity(sites.len());
    for site in &sites {
        let here = format!("{target} at {:#x}", site.offset);
        let spec = match &specs {
            Some((fd, info)) => write_spec(ctx, &here, fd.as_fd(), info, site)?,
            None => 0,
        };
        let cookie = match &key {
            SpecKey::Cookie => spec,
            SpecKey::Address(ips, placement) => {
                key_by_address(ctx, &here, ips.as_fd(), placement, site, spec)?;
                0
            }
        };
        let open = sys::PerfOpen {
            type_,
            config: site.semaphore << REF_CTR_OFFSET_SHIFT,
            name: Some(&c_path),
            offset: site.offset,
            ..Default::default()
        };
        let event = sys::perf_event_open(&open, pid, cpu)
            .map_err(|e| ctx.attach_err(&here, "perf_event_open (uprobe)", e))?;
        // An earlier site's links drop on error: nothing stays attached.
        links.push(attach_event_with_cookie(
            ctx,
            here,
            event,
            u64::from(cookie),
        )?);
    }
    Ok(links)
}

/// Keys a site's spec index by its address in the traced process.
fn key_by_address(
    ctx: &Ctx<'_>,
    here: &str,
    ips: std::os::fd::BorrowedFd<'_>,
    placement: &Placement,
    site: &Note,
    spec: u32,
) -> Result<(), LinkError> {
    let ip = placement.address(site).ok_or_else(|| {
        ctx.not_found(
            here,
            io::Error::new(
                io::ErrorKind::NotFound,
                "the process has no executable mapping of the site",
            ),
        )
    })?;
    let sizes = sys::ElemSizes { key: 8, value: 4 };
    sys::map_update(ips, sizes, &ip.to_ne_bytes(), &spec.to_ne_bytes(), 0)
        .map_err(|e| ctx.attach_err(here, "keying the USDT spec by address", e))
}

/// Writes a site's argument spec in the next free slot of the program's
/// spec map and returns the slot (the site's cookie). Slots are handed out
/// once per map in this process and not reused.
fn write_spec(
    ctx: &Ctx<'_>,
    here: &str,
    fd: std::os::fd::BorrowedFd<'_>,
    info: &sys::MapInfo,
    site: &Note,
) -> Result<u32, LinkError> {
    let args = parse_args(&site.args).map_err(|e| unsupported(ctx.spec, format!("{here}: {e}")))?;
    let cookie = {
        let mut next = NEXT_SPEC.lock().unwrap_or_else(|p| p.into_inner());
        let slot = next
            .get_or_insert_with(HashMap::new)
            .entry(info.id)
            .or_insert(0);
        let id = *slot;
        *slot += 1;
        id
    };
    if cookie >= info.max_entries {
        return Err(ctx.attach_err(
            here,
            "allocating a USDT spec",
            io::Error::from_raw_os_error(libc::E2BIG),
        ));
    }
    let sizes = sys::ElemSizes {
        key: 4,
        value: SPEC_SIZE,
    };
    sys::map_update(fd, sizes, &cookie.to_ne_bytes(), &encode_spec(&args), 0)
        .map_err(|e| ctx.attach_err(here, "writing the USDT spec", e))?;
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_placed_where_the_process_mapped_their_file() {
        let maps = "\
55d0a0000000-55d0a0010000 r--p 00000000 fd:01 1234 /usr/bin/app
55d0a0010000-55d0a0050000 r-xp 00010000 fd:01 1234 /usr/bin/app
55d0a0050000-55d0a0060000 r--p 00050000 fd:01 1234 /usr/bin/app
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99 /usr/lib/libc.so.6
7f0000200000-7f0000300000 r-xp 00000000 08:02 1234 /mnt/other
";
        let found = mappings(maps, (0xfd, 1), 1234);
        assert_eq!(
            found,
            [Mapping {
                start: 0x55d0a0010000,
                end: 0x55d0a0050000,
                file_offset: 0x10000
            }]
        );
        let site = |offset| Note {
            provider: "p".into(),
            name: "n".into(),
            offset,
            address: 0x1000 + offset,
            semaphore: 0,
            args: String::new(),
        };
        let mapped = Placement::Mapped(found);
        assert_eq!(mapped.address(&site(0x10234)), Some(0x55d0a0010234));
        assert_eq!(
            mapped.address(&site(0x100)),
            None,
            "not in an executable mapping"
        );
        assert_eq!(Placement::Fixed.address(&site(0x10)), Some(0x1010));
    }

    #[test]
    fn x86_64_argument_specs() {
        let a = parse_args("-4@%eax 8@-8(%rbp) 4@$5 2@(%r12) 8@%r9d").unwrap();
        assert_eq!(
            a[0],
            ArgSpec {
                arg_type: 1,
                reg_off: 80,
                signed: true,
                bitshift: 32,
                val_off: 0
            }
        );
        assert_eq!(
            a[1],
            ArgSpec {
                arg_type: 2,
                reg_off: 32,
                signed: false,
                bitshift: 0,
                val_off: (-8i64) as u64
            }
        );
        assert_eq!(
            a[2],
            ArgSpec {
                arg_type: 0,
                reg_off: 0,
                signed: false,
                bitshift: 32,
                val_off: 5
            }
        );
        assert_eq!((a[3].arg_type, a[3].reg_off, a[3].val_off), (2, 24, 0));
        assert_eq!(a[4].reg_off, 64);
        assert!(parse_args("8@%xmm0").is_err());
        assert!(parse_args("3@%eax").is_err());
        assert!(parse_args("8@8(%rax,%rbx,4)").is_err());
        let spec = encode_spec(&a);
        assert_eq!(&spec[200..202], &5i16.to_le_bytes());
        assert_eq!(spec[8], 1);
        assert_eq!(&spec[12..14], &80i16.to_le_bytes());
    }
}
