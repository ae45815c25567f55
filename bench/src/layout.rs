//! The load path's code in a few 64 KiB blocks: `cli/load-order.txt`.
//!
//! The kernel maps a binary's text 64 KiB at a time around each page fault
//! (fault-around), so a process's RSS and its page-fault time follow how
//! many 64 KiB blocks its code is spread over, not how much of it runs. The
//! linker lays functions out in no useful order: `rawbpf load` runs about
//! 200 KB of functions spread over all 20 blocks of a 1.3 MiB text. The
//! release recipe (`cli/build-static.sh`) hands LLD `cli/load-order.txt`, a
//! symbol-ordering file: the functions that `load` runs, in the order it
//! first runs them, then those attach, list and detach add; LLD puts them
//! at the start of `.text` and the rest, however large, behind them.
//!
//! The file is made here, by single-stepping those commands (ptrace) in a
//! build without the ordering and naming the function of each instruction
//! from the link map: exact symbol names, hashes included. When the code
//! changes so that a named symbol no longer exists, the recipe's link fails
//! (`--fatal-warnings`) until `bash bench/run.sh --layout` makes the file
//! again; `check` (run by tests/run.sh) single-steps a load of the shipped
//! build and fails when its code spans more than [`LOAD_BLOCKS_MAX`] blocks,
//! which catches a new function on the load path that the file does not
//! name yet.

use crate::Result;
use object::read::elf::{FileHeader as _, SectionHeader as _};
use object::{elf, LittleEndian as LE};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where the ordering file lives, from the workspace root.
pub const ORDER_FILE: &str = "cli/load-order.txt";

/// The most 64 KiB blocks of text that the code of `rawbpf load
/// programs/obj/pipeline.bpf.o` may span in the shipped build: what the
/// ordering gives (about 200 KiB of code from 2 KiB below the first block
/// boundary of the text, so 4 blocks, with tens of KiB to spare in the
/// last). A function the file does not name lies behind all that it names
/// and adds a block, until a new ordering file takes it in. Without the
/// ordering the load spans most blocks of the text (about 20).
pub const LOAD_BLOCKS_MAX: usize = 4;

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

/// How the code a run executes lies in the binary: distinct 4 KiB pages
/// of text it runs, the 64 KiB blocks they fall in (what fault-around
/// maps), and how many blocks the text has.
pub struct CodePlacement {
    pub pages: usize,
    pub blocks: usize,
    pub text_blocks: u64,
}

pub fn placement(bin: &Path, ips: &[u64]) -> Result<CodePlacement> {
    let text: Vec<(String, u64, u64)> = sections(bin)?
        .into_iter()
        .filter(|(n, _, _)| n.starts_with(".text"))
        .collect();
    let code: Vec<u64> = ips
        .iter()
        .copied()
        .filter(|ip| text.iter().any(|(_, s, e)| (*s..*e).contains(ip)))
        .collect();
    let pages: HashSet<u64> = code.iter().map(|ip| ip >> 12).collect();
    let blocks: HashSet<u64> = code.iter().map(|ip| ip >> 16).collect();
    let text_blocks = text
        .iter()
        .map(|(_, s, e)| (e.div_ceil(1 << 16)) - (s >> 16))
        .sum();
    Ok(CodePlacement {
        pages: pages.len(),
        blocks: blocks.len(),
        text_blocks,
    })
}

/// One input section of the link, from the linker's map.
struct InputSection {
    start: u64,
    end: u64,
    /// The symbols defined in it, as the map lists them (mangled: the
    /// recipe asks LLD for `--no-demangle`).
    symbols: Vec<String>,
}

/// Input sections of executable output sections, from an LLD link map:
/// columns `VMA LMA Size Align`, then the output section one space in, its
/// input sections (`file:(name)`) nine spaces in, their symbols seventeen.
fn parse_map(map: &str) -> Vec<InputSection> {
    let mut out: Vec<InputSection> = Vec::new();
    let mut in_text = false;
    let mut in_input = false;
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
                in_text = name == ".text" || name.starts_with(".text.");
                in_input = false;
            }
            9 if in_text => {
                in_input = name.contains(":(");
                if in_input {
                    out.push(InputSection {
                        start: vma,
                        end: vma + size,
                        symbols: Vec::new(),
                    });
                }
            }
            17 if in_input => {
                if let Some(s) = out.last_mut() {
                    s.symbols.push(name.to_owned());
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|s| s.start);
    out
}

/// A link map's input sections of executable code, by address.
struct LinkMap {
    inputs: Vec<InputSection>,
    starts: Vec<u64>,
}

impl LinkMap {
    /// Reads and parses the LLD map at `path`; none found is an error.
    fn read(path: &Path) -> Result<LinkMap> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let inputs = parse_map(&text);
        if inputs.is_empty() {
            return Err(format!(
                "{}: no input sections found (is the linker LLD?)",
                path.display()
            ));
        }
        let starts = inputs.iter().map(|s| s.start).collect();
        Ok(LinkMap { inputs, starts })
    }

    /// The input section that address `ip` lies in.
    fn section_of(&self, ip: u64) -> Option<usize> {
        self.starts
            .partition_point(|&s| s <= ip)
            .checked_sub(1)
            .filter(|&i| ip < self.inputs[i].end)
    }
}

/// Builds the static rawbpf without the ordering and with a link map,
/// single-steps it through `runs` (each the arguments of one `rawbpf`
/// process, `load` first), and writes [`ORDER_FILE`]: one symbol of every
/// input section the runs execute, in the order first executed, so that a
/// later run's code follows the load's. Returns a summary.
pub fn generate(root: &Path, runs: &[Vec<OsString>]) -> Result<String> {
    let target_dir = root.join("target/layout");
    let map = target_dir.join("rawbpf.map");
    eprintln!("rawbpf-bench: static rawbpf without the ordering, with a link map ...");
    let bin = crate::build_static(root, &target_dir, crate::MUSL, Recipe::Unordered(&map))?;
    let link_map = LinkMap::read(&map)?;
    let inputs = &link_map.inputs;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in inputs.iter().flat_map(|s| &s.symbols) {
        *counts.entry(name).or_default() += 1;
    }
    // Rust functions by name without the hash: the instances of each
    // generic function.
    let mut instances: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in inputs.iter().enumerate() {
        if let Some(symbol) = s.symbols.first() {
            if generic_name(symbol) != symbol {
                instances.entry(generic_name(symbol)).or_default().push(i);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut symbols = Vec::new();
    let mut summary = String::new();
    let mut commands = String::new();
    // First, every instance of hashbrown's probe closures (about 1 KiB in
    // all): which of them a load calls depends on whether a probe meets an
    // equal 7-bit tag, which follows std's random hash seed, so a few runs
    // do not find them all. Ahead of the load's code they share the block
    // where the text starts, which the load always runs, and cannot push
    // the end of the load's code into one more block.
    let mut closures: Vec<usize> = instances
        .iter()
        .filter(|(name, _)| is_probe_closure(name))
        .flat_map(|(_, family)| family.iter().copied())
        .collect();
    closures.sort_unstable();
    for i in closures {
        if let Some(symbol) = name_for(&inputs[i], &counts) {
            seen.insert(i);
            symbols.push(symbol.clone());
        }
    }
    for args in runs {
        let shown = args
            .iter()
            .map(|a| {
                let a = Path::new(a);
                a.strip_prefix(root).unwrap_or(a).display().to_string()
            })
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("rawbpf-bench: single-stepping rawbpf {shown} ...");
        let mut argv = vec![bin.clone().into_os_string()];
        argv.extend(args.iter().cloned());
        let (mut sections, mut bytes) = (0, 0);
        let mut later = Vec::new();
        for ip in single_step(&argv)?.order {
            let Some(i) = link_map.section_of(ip) else {
                continue;
            };
            let s = &inputs[i];
            if !seen.insert(i) {
                continue;
            }
            // A section without a symbol cannot be named; it stays where
            // the linker puts it.
            let Some(symbol) = name_for(s, &counts) else {
                continue;
            };
            sections += 1;
            bytes += s.end - s.start;
            symbols.push(symbol.clone());
            // After this run's code, every other instance of the same
            // generic function when together they are small: which
            // instances run can depend on the data (hashbrown's probe
            // closures run when a probe meets an equal tag, which follows
            // std's random hash seed).
            if let Some(family) = instances.get(generic_name(symbol)) {
                let size: u64 = family
                    .iter()
                    .map(|&j| inputs[j].end - inputs[j].start)
                    .sum();
                if size <= ALL_INSTANCES_UP_TO {
                    later.extend(family.iter().copied());
                }
            }
        }
        for j in later {
            if !seen.insert(j) {
                continue;
            }
            if let Some(symbol) = name_for(&inputs[j], &counts) {
                sections += 1;
                bytes += inputs[j].end - inputs[j].start;
                symbols.push(symbol.clone());
            }
        }
        let _ = writeln!(
            summary,
            "rawbpf {shown}: {sections} more functions ({} KiB)",
            bytes / 1024
        );
        let line = format!("\n#   rawbpf {}", args[0].to_string_lossy());
        if !commands.ends_with(&line) {
            commands.push_str(&line);
        }
    }
    let mut text = format!(
        "# Generated by `bash bench/run.sh --layout` (bench/src/layout.rs): the\n\
         # functions these run, in the order first run, the load's first:{commands}\n\
         # cli/build-static.sh hands it to LLD (--symbol-ordering-file), which puts\n\
         # them at the start of .text, so that a load's code lies in a few 64 KiB\n\
         # blocks (the kernel maps text 64 KiB around each fault). A name the binary\n\
         # no longer has fails that build: make the file again and commit it.\n"
    );
    for s in &symbols {
        text.push_str(s);
        text.push('\n');
    }
    let out = root.join(ORDER_FILE);
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    let _ = write!(summary, "{}: {} symbols", out.display(), symbols.len());
    Ok(summary)
}

/// The symbol that names `section` in the ordering file: one no other
/// section defines (LLD orders every symbol of a name, and warns about the
/// copies it discarded: C's static `dummy` functions, which musl defines in
/// many files with a global alias beside each).
fn name_for<'a>(section: &'a InputSection, counts: &HashMap<&str, usize>) -> Option<&'a String> {
    section
        .symbols
        .iter()
        .find(|s| counts.get(s.as_str()) == Some(&1))
}

/// A generic function of hashbrown's that is a closure: the key
/// comparisons and hashing a probe calls when it meets an equal tag.
fn is_probe_closure(generic: &str) -> bool {
    generic.starts_with("_ZN9hashbrown") && generic.contains("closure")
}

/// Instances of one generic function, all of them ordered when one runs if
/// together they are no larger than this.
const ALL_INSTANCES_UP_TO: u64 = 8 * 1024;

/// A legacy-mangled Rust symbol without its hash (`17h<16 hex>E`), which
/// differs between the instances of a generic function; other symbols as
/// they are.
fn generic_name(symbol: &str) -> &str {
    match symbol.rfind("17h") {
        Some(at)
            if symbol.starts_with("_ZN")
                && symbol.len() == at + 20
                && symbol[at + 3..at + 19]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
                && symbol.ends_with('E') =>
        {
            &symbol[..at]
        }
        _ => symbol,
    }
}

/// How the recipe builds: as shipped, or without the ordering file and
/// with a link map (to make the file).
#[derive(Clone, Copy)]
pub enum Recipe<'a> {
    Shipped,
    /// As shipped, also writing the link map (which moves nothing).
    ShippedMapped(&'a Path),
    Unordered(&'a Path),
}

/// `--check-layout` (tests/run.sh): builds the shipped binary (which fails
/// if the ordering file names a function the binary lacks) with a link
/// map, single-steps `rawbpf load OBJ` `runs` times, and fails if the code
/// of any run spans more than [`LOAD_BLOCKS_MAX`] 64 KiB blocks. It says
/// how far below the end of its block the load's highest code lies, which
/// functions the load ran that the file does not name, and, when it fails,
/// what ran in the block too many.
pub fn check(root: &Path, obj: &Path, runs: usize) -> Result<String> {
    let target_dir = root.join("target/bench-static");
    let map = target_dir.join("rawbpf-shipped.map");
    eprintln!("rawbpf-bench: the shipped static rawbpf (cli/build-static.sh) ...");
    let bin = crate::build_static(root, &target_dir, crate::MUSL, Recipe::ShippedMapped(&map))?;
    let link_map = LinkMap::read(&map)?;
    let inputs = &link_map.inputs;
    let section_of = |ip: u64| link_map.section_of(ip);
    let order_path = root.join(ORDER_FILE);
    let order_text = std::fs::read_to_string(&order_path)
        .map_err(|e| format!("{}: {e}", order_path.display()))?;
    let ordered: HashMap<&str, usize> = order_text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#'))
        .map(|(n, l)| (l, n + 1))
        .collect();
    let line_of = |i: usize| {
        inputs[i]
            .symbols
            .iter()
            .find_map(|n| ordered.get(n.as_str()))
    };
    let name_of = |i: usize| {
        inputs[i]
            .symbols
            .first()
            .map_or("(no symbol)", String::as_str)
    };
    let argv = [bin.clone().into_os_string(), "load".into(), obj.into()];
    let runs = runs.max(1);
    // The run spanning the most blocks, and the functions in its last one.
    let mut worst: Option<(CodePlacement, Vec<String>)> = None;
    // The highest address any run executes in the functions the file names.
    let mut highest = 0;
    // Functions run that the file does not name, each once.
    let mut stray: Vec<usize> = Vec::new();
    for run in 1..=runs {
        eprintln!("rawbpf-bench: single-stepping rawbpf load ({run}/{runs}) ...");
        let order = single_step(&argv)?.order;
        let mut last_block = 0;
        for &ip in &order {
            let Some(i) = section_of(ip) else { continue };
            if line_of(i).is_some() {
                highest = highest.max(ip);
            } else if !stray.contains(&i) {
                stray.push(i);
            }
            last_block = last_block.max(ip >> 16);
        }
        let code = placement(&bin, &order)?;
        if worst.as_ref().is_none_or(|(w, _)| code.blocks > w.blocks) {
            let mut names: Vec<String> = Vec::new();
            for i in order
                .iter()
                .filter(|&&ip| ip >> 16 == last_block)
                .filter_map(|&ip| section_of(ip))
            {
                let name = match line_of(i) {
                    Some(line) => format!("{} ({ORDER_FILE}:{line})", name_of(i)),
                    None => format!("{} (not in {ORDER_FILE})", name_of(i)),
                };
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            worst = Some((code, names));
        }
    }
    let (code, last_block) = worst.expect("at least one run");
    let mut what = format!(
        "rawbpf load runs {} pages of code in {} of the text's {} 64 KiB blocks \
         (at most {LOAD_BLOCKS_MAX}; the most of {runs} runs); the highest code it runs \
         lies {} KiB below the end of its block",
        code.pages,
        code.blocks,
        code.text_blocks,
        ((highest | 0xffff) + 1 - highest) / 1024
    );
    if !stray.is_empty() {
        let _ = write!(what, "\nfunctions it ran that {ORDER_FILE} does not name:");
        for &i in &stray {
            let size = inputs[i].end - inputs[i].start;
            let _ = write!(what, "\n  {} ({size} bytes)", name_of(i));
        }
    }
    if code.blocks > LOAD_BLOCKS_MAX {
        let _ = write!(what, "\nwhat ran in its last block:");
        for name in &last_block {
            let _ = write!(what, "\n  {name}");
        }
        return Err(format!(
            "{what}\nregenerate {ORDER_FILE} with `bash bench/run.sh --layout` and commit it"
        ));
    }
    Ok(what)
}

/// `--layout`: cli/load-order.txt from the load, then a tracing group's
/// attach, `list --json` and the group's detach, then the full job's
/// attach, list and detach in a namespace of their own.
pub(crate) fn make(root: &Path) -> crate::Result<()> {
    let obj = root.join("programs/obj/pipeline.bpf.o");
    let lab = rawbpf::lab::Lab::create(&format!("rbhot{}", std::process::id()))
        .map_err(|e| format!("making the test namespace: {e}"))?;
    let (ns, dev) = (&lab.ns_a, &lab.dev_a);
    let _pins = crate::TempDir(Path::new(rawbpf::attach::PIN_ROOT).join(format!("ns_{ns}")));
    let tracing = root.join(crate::links::TRACING_OBJECT);
    let group = format!("rbhot{}", std::process::id());
    // If a run fails: its pins go, and with them its links.
    let _group = crate::TempDir(
        Path::new(rawbpf::attach::PIN_ROOT)
            .join("groups")
            .join(&group),
    );
    // The load several times: some of its code runs only for some of std's
    // random hash seeds (a hashbrown probe that meets an equal tag; the
    // generator also puts every probe closure first, and the sibling
    // instances of small generic functions after the load's code).
    let load = crate::argv(&[&"load", &obj]);
    let runs = [
        load.clone(),
        load.clone(),
        load.clone(),
        load.clone(),
        load,
        // Then the bench's jobs: a group of tracing programs (issue 21's
        // attach + detach, the tightest budget), the link list, and the
        // chain's TC attach, list and detach.
        crate::argv(&[&"attach", &tracing, &"--name", &group]),
        crate::argv(&[&"list", &"--json"]),
        crate::argv(&[&"detach", &"--name", &group]),
        crate::argv(&[&"attach", &obj, &"--dev", dev, &"--netns", ns, &"--ingress"]),
        crate::argv(&[&"list", &"--dev", dev, &"--netns", ns]),
        crate::argv(&[&"detach", &"--dev", dev, &"--netns", ns, &"--ingress"]),
    ];
    let summary = generate(root, &runs)?;
    drop(lab);
    println!("{summary}");
    Ok(())
}

/// What `--links-only` and `--events-only` measure on: a work directory
/// tagged `tag`, and the shipped static rawbpf (or, `unordered`, the same
/// without the ordering file).
pub(crate) fn only_build(
    root: &Path,
    tag: &str,
    unordered: bool,
) -> crate::Result<(crate::TempDir, crate::StaticBuild, std::path::PathBuf)> {
    let work = crate::TempDir(
        std::env::temp_dir().join(format!("rawbpf-bench-{tag}-{}", std::process::id())),
    );
    std::fs::create_dir_all(&work.0).map_err(|e| e.to_string())?;
    eprintln!("rawbpf-bench: static rawbpf ...");
    let shipped = crate::shipped_build();
    let map = work.0.join("rawbpf.map");
    let recipe = if unordered {
        Recipe::Unordered(&map)
    } else {
        Recipe::Shipped
    };
    let rawbpf = crate::build_static(root, &root.join("target/bench-static"), shipped, recipe)?;
    Ok((work, shipped, rawbpf))
}

#[cfg(test)]
mod tests {
    use super::{name_for, parse_map};
    use std::collections::HashMap;

    #[test]
    fn generic_names_drop_the_hash() {
        use super::generic_name;
        assert_eq!(
            generic_name("_ZN9hashbrown3raw8RawTable6insert17h0123456789abcdefE"),
            "_ZN9hashbrown3raw8RawTable6insert"
        );
        assert_eq!(generic_name("memcpy"), "memcpy");
        assert!(super::is_probe_closure(generic_name(
            "_ZN9hashbrown3raw21RawTable$LT$T$C$A$GT$25find_or_find_insert_index28_$u7b$$u7b$closure$u7d$$u7d$17h329eeda25d3431d5E"
        )));
        assert!(!super::is_probe_closure(generic_name(
            "_ZN9hashbrown3raw8RawTable6insert17h0123456789abcdefE"
        )));
        assert_eq!(
            generic_name("_ZN3foo17hnothexnothexnothE"),
            "_ZN3foo17hnothexnothexnothE"
        );
    }

    #[test]
    fn map_sections_and_their_unique_names() {
        let map = "\
             VMA              LMA     Size Align Out     In      Symbol
          200000           200000      100    16 .rodata
          200000           200000      100     1         a.o:(.rodata.x)
          201000           201000       60    16 .text
          201000           201000       10     1         crt1.o:(.text)
          201000           201000        0     1                 _start
          201010           201010       20     1         libc.a(x.lo):(.text.dummy)
          201010           201010       20     1                 dummy
          201010           201010       20     1                 __x_alias
          201030           201030       20     1         libc.a(y.lo):(.text.dummy)
          201030           201030       20     1                 dummy
          201050           201050       10     1         main.o:(.text._ZN4main17h0123456789abcdefE)
          201050           201050       10     1                 _ZN4main17h0123456789abcdefE
          202000           202000       10     4 .init
          202000           202000       10     1         crti.o:(.init)
          202000           202000       10     1                 _init
";
        let inputs = parse_map(map);
        let starts: Vec<u64> = inputs.iter().map(|s| s.start).collect();
        assert_eq!(starts, [0x201000, 0x201010, 0x201030, 0x201050]);
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for name in inputs.iter().flat_map(|s| &s.symbols) {
            *counts.entry(name).or_default() += 1;
        }
        let names: Vec<Option<&str>> = inputs
            .iter()
            .map(|s| name_for(s, &counts).map(String::as_str))
            .collect();
        assert_eq!(
            names,
            [
                Some("_start"),
                Some("__x_alias"),
                None,
                Some("_ZN4main17h0123456789abcdefE")
            ]
        );
    }
}
