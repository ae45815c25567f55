//! The load path's code in one place: `loader/hot-text.ld`.
//!
//! The kernel maps a binary's text 64 KiB at a time around each page fault
//! (fault-around), so a process's RSS and its page-fault time follow how
//! many 64 KiB blocks its code is spread over, not how much of it runs. The
//! linker lays functions out in no useful order: `rawbpf load` runs about
//! 200 KB of functions spread over all 20 blocks of a 1.3 MiB text, and the
//! netlink and async code that attach/list/detach link would only spread it
//! further. `loader/hot-text.ld` (passed to the linker by `loader/build.rs`)
//! puts the input sections that `load` runs, in the order it first runs
//! them, into one output section `.text.hot` ahead of `.text`; the rest of
//! the text, however large, stays behind it untouched.
//!
//! The list is made here, by single-stepping `rawbpf load
//! programs/obj/pipeline.bpf.o` (ptrace) and naming the input section of
//! each instruction from the link map. Sections are named by patterns that
//! survive rebuilds: Rust functions without their symbol hash (which changes
//! with every dependency or toolchain change), C library code by archive
//! member (`*libc.a:malloc.o(.text)`). Code the list does not name is still
//! linked, only placed in `.text`: a stale list costs memory, never
//! correctness. `rawbpf-bench --hot-text` regenerates it; the bench's table
//! shows how much of the load's code lies outside `.text.hot`.

use crate::Result;
use object::read::elf::{FileHeader as _, SectionHeader as _};
use object::{elf, LittleEndian as LE};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The output section the linker script makes.
pub const HOT_SECTION: &str = ".text.hot";

/// What a single-stepped run executed in user space.
pub struct Stepped {
    /// Every distinct instruction address, in the order first executed.
    pub order: Vec<u64>,
    /// How many CPUID instructions ran: on a virtual machine each one is a
    /// VM exit, microseconds apiece.
    pub cpuid: u64,
}

/// Runs `argv` single-stepped under ptrace.
pub fn single_step(argv: &[OsString]) -> Result<Stepped> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdout(Stdio::null());
    // SAFETY: PTRACE_TRACEME only marks this (forked) process as traced by
    // its parent; it touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("starting {argv:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    // Each address seen, and whether the instruction there is CPUID.
    let mut seen = HashMap::new();
    let mut order = Vec::new();
    let mut cpuid = 0;
    let mut status = 0;
    let wait = |status: &mut i32| {
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        if unsafe { libc::waitpid(pid, status, 0) } == -1 {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    };
    wait(&mut status)?; // the stop at exec
    while libc::WIFSTOPPED(status) {
        // SAFETY: an all-zero user_regs_struct is valid; PTRACE_GETREGS fills it.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: the tracee is stopped; `regs` is the size the call writes.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs) } == -1 {
            return Err(format!(
                "PTRACE_GETREGS: {}",
                std::io::Error::last_os_error()
            ));
        }
        let is_cpuid = match seen.get(&regs.rip) {
            Some(&is) => is,
            None => {
                order.push(regs.rip);
                // SAFETY: PTRACE_PEEKTEXT reads a word of the stopped
                // tracee's memory and writes none of ours. (On error it
                // returns -1, which does not read as CPUID either.)
                let word = unsafe { libc::ptrace(libc::PTRACE_PEEKTEXT, pid, regs.rip, 0) };
                let is = word & 0xffff == 0xa20f; // 0F A2, little-endian
                seen.insert(regs.rip, is);
                is
            }
        };
        cpuid += u64::from(is_cpuid);
        // A signal other than the step's own trap goes on to the tracee.
        let sig = match libc::WSTOPSIG(status) {
            libc::SIGTRAP => 0,
            s => s,
        };
        // SAFETY: resumes our stopped tracee for one instruction.
        if unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig) } == -1 {
            return Err(format!(
                "PTRACE_SINGLESTEP: {}",
                std::io::Error::last_os_error()
            ));
        }
        wait(&mut status)?;
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{argv:?} failed under ptrace (status {status:#x})"));
    }
    Ok(Stepped { order, cpuid })
}

/// Where a binary's sections lie: (name, start, end).
fn sections(bin: &Path) -> Result<Vec<(String, u64, u64)>> {
    let data = std::fs::read(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let parse = || -> std::result::Result<_, object::read::Error> {
        let header = elf::FileHeader64::<LE>::parse(&*data)?;
        let endian = header.endian()?;
        let table = header.sections(endian, &*data)?;
        let mut out = Vec::new();
        for sh in table.iter() {
            if sh.sh_flags(endian).0 & elf::SHF_ALLOC.0 == 0 {
                continue;
            }
            let name = table.section_name(endian, sh)?;
            let start = sh.sh_addr(endian);
            out.push((
                String::from_utf8_lossy(name).into_owned(),
                start,
                start + sh.sh_size(endian),
            ));
        }
        Ok(out)
    };
    parse().map_err(|e| format!("{}: {e}", bin.display()))
}

/// How the code a run executes lies in the binary: KiB of `.text.hot`,
/// distinct 4 KiB pages run inside it and outside it, and the 64 KiB blocks
/// of executable code they fall in (what fault-around maps).
pub struct CodePlacement {
    pub hot_kib: u64,
    pub pages_in_hot: usize,
    pub pages_elsewhere: usize,
    pub blocks: usize,
}

pub fn placement(bin: &Path, ips: &[u64]) -> Result<CodePlacement> {
    let secs = sections(bin)?;
    let hot = secs.iter().find(|(n, _, _)| n == HOT_SECTION);
    let code: Vec<u64> = ips
        .iter()
        .copied()
        .filter(|ip| {
            secs.iter()
                .any(|(n, s, e)| n.starts_with(".text") && (*s..*e).contains(ip))
        })
        .collect();
    let pages: HashSet<u64> = code.iter().map(|ip| ip >> 12).collect();
    let in_hot = |page: &u64| hot.is_some_and(|(_, s, e)| (*s..*e).contains(&(page << 12)));
    let blocks: HashSet<u64> = code.iter().map(|ip| ip >> 16).collect();
    Ok(CodePlacement {
        hot_kib: hot.map_or(0, |(_, s, e)| (e - s) / 1024),
        pages_in_hot: pages.iter().filter(|p| in_hot(p)).count(),
        pages_elsewhere: pages.iter().filter(|p| !in_hot(p)).count(),
        blocks: blocks.len(),
    })
}

/// One input section of the link, from the linker's map.
struct InputSection {
    start: u64,
    end: u64,
    /// The file: an object, or `archive(member)`.
    file: String,
    section: String,
}

/// Input sections of executable output sections, from an LLD link map:
/// columns `VMA LMA Size Align`, then the output section one space in, its
/// input sections (`file:(name)`) nine spaces in, their symbols seventeen.
fn parse_map(map: &str) -> Vec<InputSection> {
    let mut out = Vec::new();
    let mut in_text = false;
    for line in map.lines() {
        // Skip the four numeric columns, keeping the rest with its indent.
        let mut rest = line;
        let mut numbers = Vec::new();
        for _ in 0..4 {
            let t = rest.trim_start();
            let end = t.find(' ').unwrap_or(t.len());
            numbers.push(u64::from_str_radix(&t[..end], 16).ok());
            rest = &t[end..];
        }
        let (Some(vma), Some(size)) = (numbers[0], numbers[2]) else {
            continue;
        };
        let name = rest.trim_start();
        match rest.len() - name.len() {
            1 => {
                // .init and .fini stay where they are: their pieces from
                // crti.o and crtn.o make one function only in that order.
                in_text = name == ".text" || name.starts_with(".text.") || name == ".iplt"
            }
            9 if in_text => {
                if let Some((file, section)) = name.rsplit_once(":(") {
                    out.push(InputSection {
                        start: vma,
                        end: vma + size,
                        file: file.to_owned(),
                        section: section.trim_end_matches(')').to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

/// A Rust symbol without what changes from build to build: a legacy
/// symbol's hash (`17h<16 hex>E`), a v0 symbol's crate disambiguators.
fn rust_pattern(symbol: &str) -> String {
    if let Some(rest) = symbol.strip_prefix("_ZN") {
        if let Some(at) = rest.rfind("17h") {
            let hash = &rest[at + 3..];
            if hash.len() >= 17 && hash[..16].bytes().all(|b| b.is_ascii_hexdigit()) {
                return format!("_ZN{}17h*", &rest[..at]);
            }
        }
        return format!("{symbol}*");
    }
    // v0: `C` `s<base-62>_` `<len><crate>`: the part between `Cs` and `_`.
    let b = symbol.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'C' && b.get(i + 1) == Some(&b's') {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if b.get(j) == Some(&b'_') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                out.push_str("C*");
                i = j + 1;
                continue;
            }
        }
        out.push(char::from(b[i]));
        i += 1;
    }
    // A generic instance ends with the crate that instantiated it; LTO keeps
    // one of the identical copies, not always the same crate's: drop it.
    let body = out.split(".llvm.").next().unwrap_or(&out).to_owned();
    let mut out = body.clone();
    if let Some(at) = body.rfind("C*") {
        let tail = &body.as_bytes()[at + 2..];
        let digits = tail.iter().take_while(|b| b.is_ascii_digit()).count();
        if let Ok(len) = std::str::from_utf8(&tail[..digits])
            .unwrap_or("")
            .parse::<usize>()
        {
            let sep = usize::from(tail.get(digits) == Some(&b'_'));
            if digits > 0 && digits + sep + len == tail.len() {
                out.truncate(at + 1);
            }
        }
    }
    out.push('*');
    out
}

/// Whether `name` matches `glob`, whose only wildcard is `*`.
fn glob_match(glob: &str, name: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Instances of one generic function, all of them put in `.text.hot`
/// when one runs if together they are no larger than this: a name without
/// the hash survives rebuilds, and inlining choices that differ between
/// builds, where a hashed one does not.
const ALL_INSTANCES_UP_TO: u64 = 8 * 1024;

/// The linker-script line that names one input section. `functions` are
/// the names and sizes of every Rust function section of the link.
fn pattern(s: &InputSection, functions: &[(&str, u64)]) -> Option<String> {
    if s.section != ".text" && !s.section.starts_with(".text.") && s.section != ".iplt" {
        return None;
    }
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
    if let Some((archive, member)) = s.file.strip_suffix(')').and_then(|f| f.split_once('(')) {
        // An archive member. Rust's own rlibs (std's compiler_builtins)
        // have function sections: name them by function.
        if !archive.ends_with(".rlib") {
            return Some(format!("*{}:{}({})", base(archive), member, s.section));
        }
    } else if s.file == "<internal>" && s.section == ".iplt" {
        // The linker's own stubs through which static glibc's string
        // functions (IFUNCs) are called.
        return Some("*(.iplt)".to_owned());
    } else if !s.file.ends_with(".o") || s.file.starts_with('<') {
        return None;
    } else if !s.section.starts_with(".text.") {
        // A C object (crt1.o; Scrt1.o in PIE builds): by file name.
        return Some(format!("*{}({})", base(&s.file), s.section));
    }
    let name = s
        .section
        .strip_prefix(".text.unlikely.")
        .or_else(|| s.section.strip_prefix(".text."))?;
    if name.starts_with("_ZN") || name.starts_with("_R") {
        let mut p = rust_pattern(name);
        // A legacy symbol hashes its generic arguments: without the hash
        // the name stands for every instance of a generic function in the
        // binary (Vec::from_iter, sort, HashMap::insert ...), most of which
        // load never runs. Small ones go in whole; large ones keep their
        // hash: a rebuild that changes it moves them back to .text until
        // the script is made again.
        let (count, size) = functions
            .iter()
            .filter(|(f, _)| glob_match(&p, f))
            .fold((0, 0), |(n, total), (_, size)| (n + 1, total + size));
        if name.starts_with("_ZN") && count > 1 && size > ALL_INSTANCES_UP_TO {
            p = name.to_owned();
        }
        Some(format!("*(.text.{p} .text.unlikely.{p})"))
    } else {
        Some(format!("*(.text.{name} .text.unlikely.{name})"))
    }
}

/// A static build linked with a map of its input sections.
struct Linked {
    label: &'static str,
    bin: std::path::PathBuf,
    inputs: Vec<InputSection>,
    starts: Vec<u64>,
}

impl Linked {
    /// Built exactly as the bench builds it, only with a link map (asked
    /// of loader/build.rs: in RUSTFLAGS it would change every symbol hash):
    /// the same flags give the same symbol hashes, and so the same choice
    /// among the identical copies of a generic function that several
    /// crates instantiate (which copy callers end up calling varies with
    /// them).
    fn build(root: &Path, target_dir: &Path, build: crate::StaticBuild) -> Result<Linked> {
        let map = target_dir.join(format!("rawbpf-{}.map", build.label));
        eprintln!(
            "rawbpf-bench: static rawbpf ({}) with a link map ...",
            build.label
        );
        let bin = crate::build_static(root, target_dir, build, Some(&map))?;
        let map_text =
            std::fs::read_to_string(&map).map_err(|e| format!("{}: {e}", map.display()))?;
        let inputs = parse_map(&map_text);
        if inputs.is_empty() {
            return Err(format!(
                "{}: no input sections found (is the linker LLD?)",
                map.display()
            ));
        }
        let starts = inputs.iter().map(|s| s.start).collect();
        Ok(Linked {
            label: build.label,
            bin,
            inputs,
            starts,
        })
    }

    /// The names and sizes of every Rust function section of the link.
    fn functions(&self) -> Vec<(&str, u64)> {
        self.inputs
            .iter()
            .filter_map(|s| {
                let name = s
                    .section
                    .strip_prefix(".text.unlikely.")
                    .or_else(|| s.section.strip_prefix(".text."))?;
                Some((name, s.end - s.start))
            })
            .collect()
    }
}

/// Builds the static rawbpf with a link map, single-steps it through
/// `runs` (each the arguments of one `rawbpf` process, `load` first), and
/// writes `loader/hot-text.ld`: every input section the runs execute, the
/// first run's first and each in the order first executed, so that a later
/// run's code only follows the load's. Both static builds (musl, shipped;
/// glibc) are stepped through each run, the shipped one first: their Rust
/// code is named alike, their C libraries' code is not. Returns a summary.
pub fn generate(root: &Path, runs: &[Vec<OsString>]) -> Result<String> {
    let target_dir = root.join("target/hot-text");
    let shipped = crate::shipped_build();
    let mut builds = vec![shipped];
    if shipped.target != crate::GLIBC.target {
        builds.push(crate::GLIBC);
    }
    let linked = builds
        .iter()
        .map(|&b| Linked::build(root, &target_dir, b))
        .collect::<Result<Vec<_>>>()?;
    let shown: Vec<String> = runs
        .iter()
        .map(|args| {
            args.iter()
                .map(|a| {
                    let a = Path::new(a);
                    a.strip_prefix(root).unwrap_or(a).display().to_string()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // Per build, per run: the patterns of the input sections it ran first.
    // Each build goes through all the runs in turn (they change the
    // device's state: attach, then detach).
    let mut per_build = Vec::new();
    let mut summary = String::new();
    for build in &linked {
        let mut seen = HashSet::new();
        let mut per_run = Vec::new();
        for (args, shown) in runs.iter().zip(&shown) {
            eprintln!(
                "rawbpf-bench: single-stepping rawbpf ({}) {shown} ...",
                build.label
            );
            let mut argv = vec![build.bin.clone().into_os_string()];
            argv.extend(args.iter().cloned());
            let ips = single_step(&argv)?.order;
            let functions = build.functions();
            let (mut sections, mut bytes, mut patterns) = (0, 0, Vec::new());
            for ip in &ips {
                let Some(i) = build.starts.partition_point(|&s| s <= *ip).checked_sub(1) else {
                    continue;
                };
                let s = &build.inputs[i];
                if *ip >= s.end || !seen.insert(i) {
                    continue;
                }
                sections += 1;
                bytes += s.end - s.start;
                patterns.extend(pattern(s, &functions));
            }
            let _ = writeln!(
                summary,
                "rawbpf ({}) {shown}: {sections} more input sections ({} KiB)",
                build.label,
                bytes / 1024
            );
            per_run.push(patterns);
        }
        per_build.push(per_run);
    }
    // Run by run, the shipped build's sections, then the other's.
    let mut lines: Vec<String> = Vec::new();
    for run in 0..runs.len() {
        for line in per_build.iter().flat_map(|b| &b[run]) {
            if !lines.contains(line) {
                lines.push(line.clone());
            }
        }
    }
    let mut commands = String::new();
    for args in runs {
        let _ = write!(commands, "\n     rawbpf {}", args[0].to_string_lossy());
    }
    let mut script = String::new();
    let _ = writeln!(
        script,
        "/* Generated by `bash bench/run.sh --hot-text` (bench/src/hot_text.rs). The\n   \
         input sections these run, each in the order first run, the load's first:{commands}\n   \
         placed together ahead of .text, so that a load's code lies in a few 64 KiB\n   \
         blocks (the kernel maps text 64 KiB around each fault) and the other\n   \
         commands' code follows it. Linked in by loader/build.rs; sections this does\n   \
         not name stay in .text. */\n\
         SECTIONS\n{{\n  {HOT_SECTION} :\n  {{"
    );
    for line in lines.iter().chain(&cpu_siblings(&lines)) {
        let _ = writeln!(script, "    {line}");
    }
    let _ = writeln!(script, "  }}\n}}\nINSERT BEFORE .text;");
    let out = root.join("loader/hot-text.ld");
    std::fs::write(&out, script).map_err(|e| format!("{}: {e}", out.display()))?;
    let _ = write!(summary, "{}: {} patterns", out.display(), lines.len());
    Ok(summary)
}

/// The C library's string functions come in one variant per instruction
/// set, picked at startup for the CPU (IFUNC): the run above names the ones
/// this machine picked. The others that a current x86-64 CPU would pick
/// (AVX2 or EVEX/AVX-512) follow the rest, each instruction set's together,
/// so that on another machine its variants share a block or two instead of
/// lying in `.text` one fault apart.
fn cpu_siblings(lines: &[String]) -> Vec<String> {
    // Members are named <function>-<variant>.o: avx2, avx-unaligned-erms,
    // evex, avx512-unaligned-erms, ... ("avx-" keeps avx from matching
    // avx2 and avx512).
    const SETS: [&[&str]; 2] = [&["avx2", "avx-"], &["evex", "avx512"]];
    let mut families: Vec<&str> = Vec::new();
    for line in lines {
        let Some((family, variant)) = line
            .strip_prefix("*libc.a:")
            .and_then(|member| member.split_once('-'))
        else {
            continue;
        };
        if (variant.starts_with("avx") || variant.starts_with("evex"))
            && !families.contains(&family)
        {
            families.push(family);
        }
    }
    SETS.iter()
        .flat_map(|set| set.iter())
        .flat_map(|v| {
            families
                .iter()
                .map(move |f| format!("*libc.a:{f}-{v}*.o(.text .text.*)"))
        })
        .filter(|l| !lines.contains(l))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{cpu_siblings, glob_match, rust_pattern};

    #[test]
    fn string_functions_for_other_cpus_follow() {
        let lines = [
            "*crt1.o(.text)".to_owned(),
            "*libc.a:memmove-avx-unaligned-erms.o(.text.avx)".to_owned(),
            "*libc.a:strlen-avx2.o(.text.avx)".to_owned(),
            "*libc.a:malloc.o(.text)".to_owned(),
        ];
        assert_eq!(
            cpu_siblings(&lines),
            [
                "*libc.a:memmove-avx2*.o(.text .text.*)",
                "*libc.a:strlen-avx2*.o(.text .text.*)",
                "*libc.a:memmove-avx-*.o(.text .text.*)",
                "*libc.a:strlen-avx-*.o(.text .text.*)",
                "*libc.a:memmove-evex*.o(.text .text.*)",
                "*libc.a:strlen-evex*.o(.text .text.*)",
                "*libc.a:memmove-avx512*.o(.text .text.*)",
                "*libc.a:strlen-avx512*.o(.text .text.*)",
            ]
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("_ZN3foo17h*", "_ZN3foo17h0123456789abcdefE"));
        assert!(!glob_match(
            "_ZN3foo17h*",
            "_ZN3foo3bar17h0123456789abcdefE"
        ));
        assert!(glob_match("_RNvC*5alloc3foo*", "_RNvCs12_5alloc3foo"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbYcd"));
    }

    #[test]
    fn patterns_leave_out_what_changes_between_builds() {
        assert_eq!(
            rust_pattern("_ZN6rawbpf3run17h72434e65b06c8e76E"),
            "_ZN6rawbpf3run17h*"
        );
        assert_eq!(
            rust_pattern("_RNvNtNtNtCsjrHSEGnQ3l9_3std3sys2fs4unix9try_statx"),
            "_RNvNtNtNtC*3std3sys2fs4unix9try_statx*"
        );
        // The instantiating crate of a generic instance goes.
        assert_eq!(
            rust_pattern("_RNvMs2_NtCslNYArtu3iFV_5alloc7raw_vecNtB5_11RawVecInner10deallocateCsduwmD7cSIQq_5gimli"),
            "_RNvMs2_NtC*5alloc7raw_vecNtB5_11RawVecInner10deallocateC*"
        );
        assert_eq!(
            rust_pattern("_RNvCsb7974e8690430dd9_7___rustc12___rust_alloc"),
            "_RNvC*7___rustc12___rust_alloc*"
        );
        assert_eq!(
            rust_pattern("_RNvCsdwmD7cSIQq_5gimli4read.llvm.1234"),
            "_RNvC*5gimli4read*"
        );
    }
}
