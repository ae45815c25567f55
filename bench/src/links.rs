//! Issue 21's rows: a multi-program tracing attach and its detach against
//! a libbpf loader of our own doing the same (bench/anchor/libbpf_attach.c),
//! and `rawbpf list --json` with 1,000 links against `bpftool link list -j`.
//! Both run interleaved, round by round, as the other rows do; a budget's
//! ratio is the median of the per-round ratios.

use crate::{argv, paired_ratio, run_once, sh, wall_us, Result, Stats};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The objects both loaders attach, each twelve tracepoint and raw
/// tracepoint programs of the same names, attached where their sections
/// say. This one's programs read the current task through CO-RE, as
/// libbpf-tools' do, so that loading it reads the kernel's BTF: the
/// budget's object.
pub(crate) const TRACING_CORE_OBJECT: &str = "programs/obj/tracing_core.bpf.o";
/// The same programs without CO-RE: what is left is the kernel's work
/// (loads, perf events, links, pins; ~90% of the attach's samples) and
/// each loader's own. Reported. Also the ordering file's tracing group
/// (cli/load-order.txt; single-stepping a CO-RE load would take minutes).
pub(crate) const TRACING_OBJECT: &str = "programs/obj/tracing_many.bpf.o";
/// Their programs, whose release [`settle`] waits for.
const TRACING_PROGRAMS: &[&str] = &[
    "enter_getppid",
    "exit_getppid",
    "enter_getpid",
    "exit_getpid",
    "enter_openat",
    "exit_openat",
    "enter_close",
    "exit_close",
    "raw_sys_enter",
    "raw_sys_exit",
    "proc_exec",
    "proc_exit",
];
/// Where the anchor pins its groups.
const ANCHOR_GROUPS: &str = "/sys/fs/bpf/libbpf_anchor/groups";
/// At most this many rounds of attach + detach (each settles ~1 s).
const ATTACH_RUNS: usize = 50;
/// How many links `list` is measured with.
pub(crate) const LINKS: usize = 1000;
/// The object and program the bench holds its [`LINKS`] links of: a
/// writable raw tracepoint on `bpf_test_finish`, which fires only in a
/// `BPF_PROG_TEST_RUN` of a network program (none runs meanwhile), so the
/// links cost the measured commands nothing when their syscalls run.
const LINKED_OBJECT: &str = "programs/obj/raw_tp.bpf.o";
const LINKED_PROGRAM: &str = "writable_noop";
const LINKED_TARGET: &str = "bpf_test_finish";

/// Builds the anchor statically, as the pipeline anchor is.
pub(crate) fn build_anchor(root: &Path, work: &Path) -> Result<PathBuf> {
    let out = work.join("libbpf_attach-static");
    sh(Command::new("gcc")
        .args(["-O2", "-Wall", "-static", "-s"])
        .arg(root.join("bench/anchor/libbpf_attach.c"))
        .arg("-o")
        .arg(&out)
        .args(["-lbpf", "-lelf", "-lz", "-lzstd"]))?;
    Ok(out)
}

/// Removes a group either loader may leave if a run fails midway.
struct Groups {
    rawbpf: PathBuf,
    name: String,
}

impl Drop for Groups {
    fn drop(&mut self) {
        let _ = Command::new(&self.rawbpf)
            .args(["detach", "--name", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(Path::new(ANCHOR_GROUPS).join(&self.name));
    }
}

/// Waits until the kernel has finished releasing what the last detach
/// let go, so that the next round does not wait for it: the kernel frees
/// a detached link in a work item, which puts its program (waited for
/// here: until none of the object's programs is loaded) and then its perf
/// event, whose release unregisters the tracepoint holding the mutex the
/// next attach's `perf_event_open` takes, with an RCU grace period per
/// event (~30-90 ms here, one event after another; an attach started
/// within ~0.7 s of a detach waited up to 170 ms for them). Nothing shows
/// when those are done, hence the fixed second after the programs are
/// gone. Not timed.
fn settle(bpftool: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = sh(Command::new(bpftool).args(["prog", "list", "-j"]))?;
        let left = TRACING_PROGRAMS
            .iter()
            .any(|p| out.contains(&format!("\"name\":\"{p}\"")));
        if !left {
            std::thread::sleep(Duration::from_secs(1));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the detached programs are still loaded after 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One loader's attach and detach steps.
struct Loader {
    attach: Vec<OsString>,
    detach: Vec<OsString>,
}

/// Attach and detach samples of each loader, `runs` interleaved rounds.
fn attach_detach(
    loaders: &[Loader; 2],
    runs: usize,
    bpftool: &str,
) -> Result<[(Vec<Duration>, Vec<Duration>); 2]> {
    let mut out: [(Vec<Duration>, Vec<Duration>); 2] = Default::default();
    for round in 0..runs + 3 {
        for k in 0..2 {
            let j = (round + k) % 2;
            let a = run_once(&loaders[j].attach)?;
            let d = run_once(&loaders[j].detach)?;
            settle(bpftool)?;
            // The first three rounds warm up (page cache, first-use paths).
            if round >= 3 {
                out[j].0.push(a);
                out[j].1.push(d);
            }
        }
    }
    Ok(out)
}

/// Holds [`LINKS`] raw tracepoint links of one program for as long as it
/// lives.
struct HeldLinks {
    _collection: rawbpf::Collection,
    _links: Vec<rawbpf::link::Link>,
}

fn hold_links(root: &Path) -> Result<HeldLinks> {
    let path = root.join(LINKED_OBJECT);
    let spec = rawbpf::ObjectSpec::from_file(&path).map_err(|e| e.to_string())?;
    let collection = rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::for_file(&path))
        .map_err(|e| e.to_string())?;
    let program = collection
        .program(LINKED_PROGRAM)
        .map_err(|e| e.to_string())?;
    let pspec = spec
        .programs
        .iter()
        .find(|p| p.name() == LINKED_PROGRAM)
        .ok_or_else(|| format!("{LINKED_OBJECT} has no program {LINKED_PROGRAM}"))?;
    let targets = rawbpf::link::AttachTargets::default();
    let mut links = Vec::with_capacity(LINKS);
    for _ in 0..LINKS {
        links.extend(
            rawbpf::link::attach_program(program, pspec, &targets).map_err(|e| e.to_string())?,
        );
    }
    Ok(HeldLinks {
        _collection: collection,
        _links: links,
    })
}

/// How many links an output lists on the held links' tracepoint: both
/// name it once per link (rawbpf as the `target`, bpftool as `tp_name`).
/// (The floor lister prints its count.)
fn count_listed(argv: &[OsString]) -> Result<usize> {
    let out = sh(Command::new(&argv[0]).args(&argv[1..]))?;
    Ok(out.matches(&format!("\"{LINKED_TARGET}\"")).count())
}

/// `list --json` and `bpftool link list -j`, `runs` interleaved rounds,
/// with [`LINKS`] links held; and how many links each listed.
fn list_links(
    root: &Path,
    rawbpf: &Path,
    bpftool: &str,
    floor: &Path,
    runs: usize,
) -> Result<ListRun> {
    let held = hold_links(root)?;
    let cmds = [
        argv(&[&rawbpf, &"list", &"--json"]),
        argv(&[&bpftool, &"link", &"list", &"-j"]),
        argv(&[&floor]),
    ];
    let floor_count: usize = sh(&mut Command::new(floor))?
        .trim()
        .parse()
        .map_err(|_| "the floor lister printed no count".to_owned())?;
    let counts = [
        count_listed(&cmds[0])?,
        count_listed(&cmds[1])?,
        floor_count,
    ];
    for (cmd, n) in cmds.iter().zip(counts) {
        if n < LINKS {
            return Err(format!(
                "{cmd:?} listed {n} links on {LINKED_TARGET}, fewer than the {LINKS} held"
            ));
        }
    }
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for round in 0..runs + 3 {
        for k in 0..3 {
            let j = (round + k) % 3;
            let t = run_once(&cmds[j])?;
            if round >= 3 {
                samples[j].push(t);
            }
        }
    }
    drop(held);
    Ok(ListRun { samples, counts })
}

/// What [`list_links`] measured.
struct ListRun {
    /// `rawbpf list --json`, `bpftool link list -j`, the floor lister.
    samples: [Vec<Duration>; 3],
    /// The links each listed on the held links' tracepoint.
    counts: [usize; 3],
}

/// The floor of any lister that asks bpf(2) about each link, as a process:
/// per link `BPF_LINK_GET_NEXT_ID`, `BPF_LINK_GET_FD_BY_ID`,
/// `BPF_OBJ_GET_INFO_BY_FD` (again with a buffer for a raw tracepoint's
/// name) and `close`, as `rawbpf list` and `bpftool link list` both do, and
/// nothing else: no output but the count, no allocation. Built by the bench
/// with rustc (musl when the shipped build is), without dependencies.
const FLOOR_SRC: &str = r#"
use std::arch::asm;
fn sys(n: i64, a: u64, b: u64, c: u64) -> i64 {
    let r: i64;
    // SAFETY: a raw syscall; the pointers passed live across it.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    r
}
fn bpf(cmd: u64, attr: &mut [u32; 4]) -> i64 {
    sys(321, cmd, attr.as_mut_ptr() as u64, 16)
}
fn main() {
    let (mut id, mut n) = (0u32, 0u32);
    let mut name = [0u8; 256];
    loop {
        let mut a = [id, 0, 0, 0];
        if bpf(31, &mut a) < 0 { break; } // LINK_GET_NEXT_ID
        id = a[1];
        let mut a = [id, 0, 0, 0];
        let fd = bpf(30, &mut a); // LINK_GET_FD_BY_ID
        if fd < 0 { continue; }
        let mut info = [0u32; 12]; // bpf_link_info to 32 bytes of its union
        let p = info.as_mut_ptr() as u64;
        let mut a = [fd as u32, 48, p as u32, (p >> 32) as u32];
        if bpf(15, &mut a) == 0 { // OBJ_GET_INFO_BY_FD
            if info[0] == 1 { // raw_tracepoint: its name, with a buffer
                let mut again = [0u32; 12];
                let q = name.as_mut_ptr() as u64;
                again[4] = q as u32;
                again[5] = (q >> 32) as u32;
                again[6] = 256;
                let p = again.as_mut_ptr() as u64;
                let mut a = [fd as u32, 48, p as u32, (p >> 32) as u32];
                bpf(15, &mut a);
                if name.starts_with(b"bpf_test_finish\0") { n += 1; }
            }
        }
        sys(3, fd as u64, 0, 0); // close
    }
    println!("{n}");
}
"#;

/// Builds the floor lister (see [`FLOOR_SRC`]).
fn build_floor(work: &Path) -> Result<PathBuf> {
    let (src, bin) = (work.join("links-floor.rs"), work.join("links-floor"));
    std::fs::write(&src, FLOOR_SRC).map_err(|e| e.to_string())?;
    let mut cmd = Command::new("rustc");
    cmd.args(["-O", "-C", "strip=symbols"]);
    if crate::shipped_build().target == crate::MUSL.target {
        cmd.args(["--target", crate::MUSL.target]);
    }
    sh(cmd.arg(&src).arg("-o").arg(&bin))?;
    Ok(bin)
}

/// Issue 21's measurements, as rows of the bench's table (its columns:
/// measurement, rawbpf, libbpf static, libbpf dynamic, ratio, target).
pub(crate) fn rows(root: &Path, work: &Path, rawbpf: &Path, runs: usize) -> Result<String> {
    let bpftool = which_bpftool()?;
    let anchor = build_anchor(root, work)?;
    // Each round settles for a second or more (see settle): at most
    // ATTACH_RUNS rounds, so that the default 200 runs do not add 15 minutes.
    let ad_runs = runs.min(ATTACH_RUNS);
    let us = |s: &Stats| format!("{:.0} µs ({:.0}–{:.0})", s.median, s.p10, s.p90);
    let shown = |a: &[Duration], b: &[Duration]| {
        let r = paired_ratio(a, b);
        let (sa, sb) = (wall_us(a), wall_us(b));
        (r, format!("{r:.2} (medians: {:.2})", sa.median / sb.median))
    };
    let check = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut t = String::new();
    let objects = [
        (
            TRACING_CORE_OBJECT,
            "12 programs reading the task through CO-RE, as libbpf-tools' do",
            true,
        ),
        (TRACING_OBJECT, "the same 12 programs without CO-RE", false),
    ];
    for (object, what, budget) in objects {
        let obj = root.join(object);
        let name = format!("rbbench{}", std::process::id());
        let _groups = Groups {
            rawbpf: rawbpf.to_owned(),
            name: name.clone(),
        };
        let loaders = [
            Loader {
                attach: argv(&[&rawbpf, &"attach", &obj, &"--name", &name]),
                detach: argv(&[&rawbpf, &"detach", &"--name", &name]),
            },
            Loader {
                attach: argv(&[&anchor, &"attach", &obj, &name]),
                detach: argv(&[&anchor, &"detach", &name]),
            },
        ];
        eprintln!(
            "rawbpf-bench: attach + detach of {object}, {ad_runs} runs of each, interleaved ..."
        );
        let [(ra, rd), (aa, ad)] = attach_detach(&loaders, ad_runs, &bpftool)?;
        let sum = |a: &[Duration], d: &[Duration]| -> Vec<Duration> {
            a.iter().zip(d).map(|(x, y)| *x + *y).collect()
        };
        let (rs, as_) = (sum(&ra, &rd), sum(&aa, &ad));
        let (_, r) = shown(&ra, &aa);
        let _ = writeln!(
            t,
            "| issue 21: attach `{object}` ({what}: load, attach each, pin links and maps, exit), {ad_runs} runs, median (p10–p90) | {} | {} | | {r} | reported |",
            us(&wall_us(&ra)), us(&wall_us(&aa)),
        );
        let (_, r) = shown(&rd, &ad);
        let _ = writeln!(
            t,
            "| issue 21: its detach (`detach --name`; the anchor: open, detach, unpin each link, unpin the maps) | {} | {} | | {r} | reported |",
            us(&wall_us(&rd)), us(&wall_us(&ad)),
        );
        let (r_sum, r) = shown(&rs, &as_);
        let target = match budget {
            true => format!("≤ 0.80: {}", check(r_sum <= 0.80)),
            false => "reported".to_owned(),
        };
        let _ = writeln!(
            t,
            "| issue 21: attach + detach of `{object}`, per round | {} | {} | | {r} | {target} |",
            us(&wall_us(&rs)),
            us(&wall_us(&as_)),
        );
    }
    eprintln!("rawbpf-bench: list with {LINKS} links, {runs} runs of each, interleaved ...");
    let floor = build_floor(work)?;
    let ListRun {
        samples: [rl, bl, fl],
        counts: [rn, bn, fln],
    } = list_links(root, rawbpf, &bpftool, &floor, runs)?;

    let (r_list, r) = shown(&rl, &bl);
    let _ = writeln!(
        t,
        "| issue 21: `list --json` with {LINKS} links held (listed: rawbpf {rn}, bpftool {bn}) vs `bpftool link list -j` ({}) | {} | bpftool: {} | | {r} | ≤ 0.50: {} |",
        bpftool_version(&bpftool),
        us(&wall_us(&rl)),
        us(&wall_us(&bl)),
        check(r_list <= 0.50),
    );
    let (_, r) = shown(&fl, &bl);
    let _ = writeln!(
        t,
        "| issue 21: floor: a process asking bpf(2) about each link and nothing else (NEXT_ID, GET_FD_BY_ID, GET_INFO ×2, close; {fln} listed; bench-built, Rust{}), vs bpftool | {} | | | {r} | |",
        if crate::shipped_build().target == crate::MUSL.target { ", musl" } else { "" },
        us(&wall_us(&fl)),
    );
    Ok(t)
}

fn which_bpftool() -> Result<String> {
    for p in ["/usr/sbin/bpftool", "/usr/bin/bpftool", "/sbin/bpftool"] {
        if Path::new(p).exists() {
            return Ok(p.to_owned());
        }
    }
    Err("no bpftool (bench/run.sh installs Debian's)".into())
}

fn bpftool_version(bpftool: &str) -> String {
    sh(Command::new(bpftool).arg("version"))
        .ok()
        .and_then(|v| v.lines().next().map(str::to_owned))
        .unwrap_or_default()
}

/// `--hold-links`: holds [`LINKS`] links until stdin closes, to profile
/// `list` by hand (`rawbpf-bench --hold-links & strace -c rawbpf list --json`).
pub(crate) fn hold(root: &Path) -> Result<()> {
    let _held = hold_links(root)?;
    eprintln!("rawbpf-bench: holding {LINKS} links on {LINKED_TARGET} until stdin closes");
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    Ok(())
}

/// `--links-only [--no-layout]`: the static build (or the same without the
/// ordering file) and issue 21's rows alone.
pub(crate) fn only(root: &Path, runs: usize, unordered: bool) -> Result<()> {
    let (work, shipped, rawbpf) = crate::layout::only_build(root, "links", unordered)?;
    let rows = rows(root, &work.0, &rawbpf, runs)?;
    let kernel = sh(Command::new("uname").arg("-r")).unwrap_or_default();
    println!(
        "rawbpf (static, {}) vs libbpf {} and bpftool, {runs} runs of each, interleaved; kernel {}; `bash bench/run.sh --links-only --runs {runs}{}`.\n",
        shipped.label,
        crate::libbpf_version(),
        kernel.trim(),
        if unordered { " --no-layout" } else { "" },
    );
    println!("| measurement | rawbpf (static, {}) | libbpf static | libbpf dynamic | rawbpf / libbpf static (times: median of the per-round ratios) | target |", shipped.label);
    println!("|---|---|---|---|---|---|");
    print!("{rows}");
    Ok(())
}
