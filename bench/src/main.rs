//! rawbpf-bench: rawbpf against a minimal libbpf loader (bench/anchor/) on
//! the same job, in the same run, alternating the loaders run by run, so
//! that machine noise moves both alike and the ratios hold. Prints one
//! markdown table. Run it with `bash bench/run.sh [--runs N]`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod layout;
mod links;
mod maps;
mod ring;

use layout::Recipe;

/// A static build of rawbpf: one target, built by the release recipe
/// (`cli/build-static.sh`).
#[derive(Clone, Copy)]
pub(crate) struct StaticBuild {
    /// How the table names it.
    pub(crate) label: &'static str,
    pub(crate) target: &'static str,
}

/// The static build rawbpf ships and the budgets are checked on
/// (docs/static-build.md): musl's start-up runs no CPUID instruction, where
/// static glibc's runs dozens (its CPU-feature and cache-size probes), each
/// a VM exit that costs microseconds on a virtual machine.
pub(crate) const MUSL: StaticBuild = StaticBuild {
    label: "musl",
    target: "x86_64-unknown-linux-musl",
};

/// The static build with glibc, for machines without Rust's musl target;
/// measured beside it.
pub(crate) const GLIBC: StaticBuild = StaticBuild {
    label: "glibc",
    target: "x86_64-unknown-linux-gnu",
};

/// The build the budgets are checked on: musl when its Rust target is
/// installed (bench/run.sh asks rustup for it), else glibc.
pub(crate) fn shipped_build() -> StaticBuild {
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", MUSL.target])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| Path::new(String::from_utf8_lossy(&o.stdout).trim()).is_dir());
    if installed {
        MUSL
    } else {
        GLIBC
    }
}

/// The CO-RE object both loaders load for the CO-RE rows.
const CORE_OBJECT: &str = "programs/obj/core_layout.bpf.o";

fn main() {
    if let Err(e) = bench() {
        eprintln!("rawbpf-bench: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, String>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_owned()
}

/// Runs a command to completion, failing with its stderr.
fn sh(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes a directory tree when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Binaries {
    /// The shipped static build (see [`shipped_build`]).
    rawbpf: PathBuf,
    shipped: StaticBuild,
    /// When the shipped build is musl: what is measured beside it.
    musl: Option<BesideMusl>,
    anchor_static: PathBuf,
    anchor_dynamic: PathBuf,
    noop_static: PathBuf,
}

/// Measured beside a musl rawbpf.
struct BesideMusl {
    /// rawbpf's glibc static build.
    rawbpf_glibc: PathBuf,
    /// A static no-op Rust program for musl: the floor.
    noop: PathBuf,
}

/// Where the jobs of [`BesideMusl`] sit among the load-only jobs (rawbpf,
/// libbpf static, libbpf dynamic, static no-op come first); the glibc
/// build's full job sits at the same index among the full jobs.
const GLIBC_JOB: usize = 4;
const MUSL_NOOP_JOB: usize = 5;

/// A release build of rawbpf from nothing (dependencies already
/// downloaded), timed; then the static binary that is measured.
fn build(root: &Path, work: &Path, recipe: Recipe) -> Result<(Duration, Binaries)> {
    eprintln!("rawbpf-bench: release build from clean ...");
    let start = Instant::now();
    sh(Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "-q",
            "--release",
            "-p",
            "rawbpf-cli",
            "--target-dir",
        ])
        .arg(work.join("clean")))?;
    let clean = start.elapsed();
    let _ = std::fs::remove_dir_all(work.join("clean"));

    eprintln!("rawbpf-bench: static rawbpf, libbpf anchor, static no-op ...");
    let target_dir = root.join("target/bench-static");
    let shipped = shipped_build();
    let rawbpf = build_static(root, &target_dir, shipped, recipe)?;
    let musl = if shipped.target == MUSL.target {
        Some(BesideMusl {
            rawbpf_glibc: build_static(root, &target_dir, GLIBC, Recipe::Shipped)?,
            noop: work.join("noop-musl"),
        })
    } else {
        None
    };
    let anchor_src = root.join("bench/anchor/libbpf_loader.c");
    let bins = Binaries {
        rawbpf,
        shipped,
        musl,
        anchor_static: work.join("libbpf_loader-static"),
        anchor_dynamic: work.join("libbpf_loader-dynamic"),
        noop_static: work.join("noop-static"),
    };
    sh(Command::new("gcc")
        .args(["-O2", "-Wall", "-static", "-s"])
        .arg(&anchor_src)
        .arg("-o")
        .arg(&bins.anchor_static)
        .args(["-lbpf", "-lelf", "-lz", "-lzstd"]))?;
    sh(Command::new("gcc")
        .args(["-O2", "-Wall", "-s"])
        .arg(&anchor_src)
        .arg("-o")
        .arg(&bins.anchor_dynamic)
        .arg("-lbpf"))?;
    let noop_src = work.join("noop.c");
    std::fs::write(&noop_src, "int main(void) { return 0; }\n").map_err(|e| e.to_string())?;
    sh(Command::new("gcc")
        .args(["-O2", "-static", "-s"])
        .arg(&noop_src)
        .arg("-o")
        .arg(&bins.noop_static))?;
    if let Some(BesideMusl { noop, .. }) = &bins.musl {
        let src = work.join("noop.rs");
        std::fs::write(&src, "fn main() {}\n").map_err(|e| e.to_string())?;
        sh(Command::new("rustc")
            .args(["-O", "-C", "strip=symbols", "--target", MUSL.target])
            .arg(&src)
            .arg("-o")
            .arg(noop))?;
    }
    Ok((clean, bins))
}

/// Runs a command once: wall time from spawn to reaped.
fn run_once(argv: &[OsString]) -> Result<Duration> {
    let start = Instant::now();
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("starting {argv:?}: {e}"))?;
    let wall = start.elapsed();
    if !status.success() {
        return Err(format!("{argv:?} exited with {status}"));
    }
    Ok(wall)
}

/// Peak RSS in KiB and minor page faults of one run, as GNU time reports
/// them (its `%M` and `%R`, from wait4's rusage after a fork from its own
/// small process; a spawn from this bigger process would count the parent's
/// pages too).
fn time_v(argv: &[OsString], work: &Path) -> Result<(u64, u64)> {
    let out = work.join("time.txt");
    sh(Command::new("/usr/bin/time")
        .args(["-f", "%M %R", "-o"])
        .arg(&out)
        .args(argv)
        .stdout(Stdio::null()))?;
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(rss)), Some(Ok(faults))) => Ok((rss, faults)),
        _ => Err(format!("GNU time printed {text:?}")),
    }
}

/// The largest peak RSS of a job's processes, the highest of five runs.
fn job_rss(job: &Job, work: &Path) -> Result<u64> {
    Ok(job_memory(job, work)?.0)
}

/// A job's memory: the largest peak RSS of its processes, the highest of
/// five runs; and its minor page faults (all processes), the median of the
/// five. Each file-backed fault maps up to 16 pages around it (the kernel's
/// fault-around), so faults and RSS say how much code a run touches.
fn job_memory(job: &Job, work: &Path) -> Result<(u64, u64)> {
    let mut max = 0;
    let mut faults = Vec::new();
    for _ in 0..5 {
        let mut run_faults = 0;
        for step in &job.steps {
            let (rss, f) = time_v(step, work)?;
            max = max.max(rss);
            run_faults += f;
        }
        faults.push(run_faults);
    }
    faults.sort_unstable();
    Ok((max, faults[faults.len() / 2]))
}

/// A job: processes run one after the other.
struct Job {
    name: &'static str,
    steps: Vec<Vec<OsString>>,
}

impl Job {
    fn run(&self) -> Result<Duration> {
        let mut total = Duration::ZERO;
        for step in &self.steps {
            total += run_once(step).map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(total)
    }
}

fn argv(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

/// Runs each job `runs` times, interleaved (job order rotates every round).
fn measure(jobs: &[Job], runs: usize) -> Result<Vec<Vec<Duration>>> {
    for job in jobs {
        for _ in 0..5 {
            job.run()?; // warm-up: page cache, first-use kernel paths
        }
    }
    let mut samples = vec![Vec::with_capacity(runs); jobs.len()];
    for round in 0..runs {
        for k in 0..jobs.len() {
            let j = (round + k) % jobs.len();
            samples[j].push(jobs[j].run()?);
        }
    }
    Ok(samples)
}

struct Stats {
    median: f64,
    p10: f64,
    p90: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p10: at(0.1),
        p90: at(0.9),
    }
}

fn wall_us(s: &[Duration]) -> Stats {
    stats(s.iter().map(|d| d.as_secs_f64() * 1e6).collect())
}

/// `a` against `b` as the median of their per-round ratios: each round
/// runs both back to back, so a round on a busy stretch of the machine
/// slows both, where the ratio of two separate medians takes each from
/// whichever rounds it falls in (on a shared 2-CPU VM they move by several
/// percent between runs of the bench).
fn paired_ratio(a: &[Duration], b: &[Duration]) -> f64 {
    stats(
        a.iter()
            .zip(b)
            .map(|(x, y)| x.as_secs_f64() / y.as_secs_f64())
            .collect(),
    )
    .median
}

/// Runs `argv` under a tracer (`TOOL ARGS -o FILE -- argv`): what it wrote.
fn traced(tool: &str, args: &[&str], argv: &[OsString], work: &Path) -> Result<String> {
    let out = work.join(format!("{tool}.txt"));
    sh(Command::new(tool)
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg("--")
        .args(argv)
        .stdout(Stdio::null()))?;
    std::fs::read_to_string(&out).map_err(|e| e.to_string())
}

/// Syscall counts of one run, from `strace -f -c`.
fn strace_counts(steps: &[Vec<OsString>], work: &Path) -> Result<(u64, u64)> {
    let (mut bpf, mut netlink) = (0, 0);
    for step in steps {
        let text = traced("strace", &["-f", "-c"], step, work)?;
        for line in text.lines() {
            let t: Vec<&str> = line.split_whitespace().collect();
            let (Some(name), Some(calls)) = (t.last(), t.get(3)) else {
                continue;
            };
            let calls: u64 = calls.parse().unwrap_or(0);
            match *name {
                "bpf" => bpf += calls,
                // Neither loader uses another socket in these jobs.
                "sendto" | "sendmsg" | "recvfrom" | "recvmsg" => netlink += calls,
                _ => {}
            }
        }
    }
    Ok((bpf, netlink))
}

/// Kernel time of each bpf(2) and netlink call of one run, from `perf
/// trace`: [(bpf command or "netlink", ms)].
fn perf_trace(steps: &[Vec<OsString>], work: &Path) -> Result<Vec<(String, f64)>> {
    let mut calls = Vec::new();
    for step in steps {
        let events = ["trace", "-e", "bpf,sendto,sendmsg,recvfrom,recvmsg"];
        let text = traced("perf", &events, step, work)?;
        for line in text.lines() {
            // "     0.125 ( 0.111 ms): rawbpf/5096 bpf(cmd: PROG_LOAD, ..."
            let Some(open) = line.find('(') else { continue };
            let ms: f64 = line[open + 1..]
                .split_whitespace()
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0.0);
            let what = if let Some(at) = line.find("bpf(cmd: ") {
                line[at + 9..].split(',').next().unwrap_or("").to_owned()
            } else if ["sendto(", "sendmsg(", "recvfrom(", "recvmsg("]
                .iter()
                .any(|c| line.contains(c))
            {
                "netlink".to_owned()
            } else {
                continue;
            };
            calls.push((what, ms));
        }
    }
    Ok(calls)
}

/// Kernel time, medians over `runs` traced runs.
#[derive(Clone, Copy)]
struct KernelTime {
    /// In bpf(), ms.
    bpf: f64,
    /// In netlink send/receive calls, ms.
    netlink: f64,
    /// PROG_LOAD calls summed (verify + JIT), ms.
    prog_load: f64,
    /// One MAP_UPDATE_ELEM (the median call), ms.
    update: f64,
}

fn kernel_times(steps: &[Vec<OsString>], work: &Path, runs: usize) -> Result<KernelTime> {
    let (mut totals, mut netlink, mut loads, mut updates) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let calls = perf_trace(steps, work)?;
        let sum = |f: &dyn Fn(&str) -> bool| -> f64 {
            calls
                .iter()
                .filter(|(c, _)| f(c))
                .map(|(_, ms)| ms)
                .sum::<f64>()
                + 0.0
        };
        totals.push(sum(&|c| c != "netlink"));
        netlink.push(sum(&|c| c == "netlink"));
        loads.push(
            calls
                .iter()
                .filter(|(c, _)| c == "PROG_LOAD")
                .map(|(_, ms)| ms)
                .sum::<f64>(),
        );
        updates.extend(
            calls
                .iter()
                .filter(|(c, _)| c == "MAP_UPDATE_ELEM")
                .map(|(_, ms)| *ms),
        );
    }
    let med = |v: Vec<f64>| if v.is_empty() { 0.0 } else { stats(v).median };
    Ok(KernelTime {
        bpf: med(totals),
        netlink: med(netlink),
        prog_load: med(loads),
        update: med(updates),
    })
}

fn size_mib(p: &Path) -> f64 {
    std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0))
}

/// Builds a static rawbpf with the release recipe (`cli/build-static.sh`:
/// musl, as shipped, or the glibc fallback), into `target_dir`: the
/// binary's path. `Recipe::Unordered` builds musl without the ordering
/// file, with a link map.
pub(crate) fn build_static(
    root: &Path,
    target_dir: &Path,
    build: StaticBuild,
    recipe: Recipe,
) -> Result<PathBuf> {
    let mut cmd = Command::new("bash");
    cmd.current_dir(root)
        .arg("cli/build-static.sh")
        .arg("--target-dir")
        .arg(target_dir);
    if build.target == GLIBC.target {
        cmd.arg("--glibc");
    } else {
        match recipe {
            Recipe::Shipped => {}
            Recipe::ShippedMapped(map) => _ = cmd.arg("--map").arg(map),
            Recipe::Unordered(map) => _ = cmd.arg("--no-order").arg("--map").arg(map),
        }
    }
    let out = sh(&mut cmd)?;
    let bin = out.lines().last().unwrap_or_default();
    Ok(root.join(bin))
}

/// Crates linked into the rawbpf binary (proc-macros run at build time only).
fn crates_linked(root: &Path) -> Result<(usize, Vec<String>)> {
    let out = sh(Command::new("cargo").current_dir(root).args([
        "tree",
        "-p",
        "rawbpf-cli",
        "-e",
        "normal,no-proc-macro",
        "--prefix",
        "none",
    ]))?;
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    Ok((names.len(), names))
}

/// ns per packet through BPF_PROG_TEST_RUN: the chain, and stage 2 alone.
fn per_packet(obj: &Path) -> Result<(u32, u32, f64)> {
    let spec = rawbpf::ObjectSpec::from_file(obj).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let loads = 50;
    for _ in 0..loads {
        drop(
            rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::default())
                .map_err(|e| e.to_string())?,
        );
    }
    let in_process_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(loads);
    let chain = rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::default())
        .map_err(|e| e.to_string())?;
    let frame = rawbpf::packet::ipv4_udp_frame(0);
    let run = |name: &str| -> Result<u32> {
        let p = chain.program(name).map_err(|e| e.to_string())?;
        let mut best = u32::MAX;
        for _ in 0..5 {
            best = best.min(
                p.test_run(&frame, 1_000_000)
                    .map_err(|e| e.to_string())?
                    .duration_ns,
            );
        }
        Ok(best)
    };
    Ok((run("mark_packet")?, run("inspect_and_drop")?, in_process_us))
}

/// The full job through the library, in this process: attach, list,
/// detach, `runs` times; µs per job (no exec, object parsed once).
fn job_in_process(obj: &Path, ns: &str, dev: &str, runs: u32) -> Result<f64> {
    use rawbpf::attach::{self, AttachOptions, Hook, Target};
    let spec = rawbpf::ObjectSpec::from_file(obj).map_err(|e| e.to_string())?;
    let target = Target {
        netns: Some(ns.to_owned()),
        dev: dev.to_owned(),
        hook: Hook::Ingress,
    };
    let opts = AttachOptions {
        target: target.clone(),
        ..AttachOptions::default()
    };
    // One runtime for all runs, as an embedder with a runtime would have.
    let rt = rawbpf::blocking::runtime().map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 0..runs {
        rt.block_on(async {
            attach::attach(obj, &spec, &rawbpf::LoadOptions::for_file(obj), &opts).await?;
            attach::list(Some(ns), Some(dev)).await?;
            attach::detach(&target, Some(1)).await
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(runs))
}

fn bench() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: rawbpf-bench [--runs N] [--no-layout] [--links-only | --maps-only | --events-only] | --layout | --check-layout | --hold-links";
    let (mut runs, mut layout, mut check, mut unordered) = (None, false, false, false);
    let mut only = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let n = args.next().ok_or(usage)?;
                runs = Some(n.parse().map_err(|_| format!("--runs {n}: not a number"))?);
            }
            "--no-layout" => unordered = true,
            "--layout" => layout = true,
            "--check-layout" => check = true,
            "--links-only" | "--maps-only" | "--events-only" => only = Some(arg.as_str()),
            "--hold-links" => return links::hold(&workspace()),
            _ => return Err(usage.into()),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root: it loads BPF programs and makes network namespaces".into());
    }
    let root = workspace();
    if layout {
        return layout::make(&root);
    }
    if check {
        let obj = root.join("programs/obj/pipeline.bpf.o");
        println!("{}", layout::check(&root, &obj, runs.unwrap_or(1))?);
        return Ok(());
    }
    let runs = runs.unwrap_or(200);
    match only {
        Some("--links-only") => return links::only(&root, runs, unordered),
        Some("--maps-only") => return maps::only(&root),
        Some("--events-only") => return ring::only(&root, runs, unordered),
        _ => {}
    }
    let work = TempDir(std::env::temp_dir().join(format!("rawbpf-bench-{}", std::process::id())));
    std::fs::create_dir_all(&work.0).map_err(|e| e.to_string())?;
    // The shipped build, or (--no-layout) the same without the ordering
    // file, to see what it gains.
    let map = work.0.join("rawbpf.map");
    let recipe = if unordered {
        Recipe::Unordered(&map)
    } else {
        Recipe::Shipped
    };
    let (clean_build, bins) = build(&root, &work.0, recipe)?;
    let obj = root.join("programs/obj/pipeline.bpf.o");
    // A CO-RE object: its load includes relocating against the kernel's BTF.
    let core_obj = root.join(CORE_OBJECT);

    let lab = rawbpf::lab::Lab::create(&format!("rbbench{}", std::process::id()))
        .map_err(|e| format!("making the test namespace: {e}"))?;
    let (ns, dev) = (&lab.ns_a, &lab.dev_a);
    // Pins either loader may leave if a run fails midway; the namespaces go with `lab`.
    let _pins = [
        TempDir(Path::new("/sys/fs/bpf/libbpf_anchor").join(ns)),
        TempDir(Path::new(rawbpf::attach::PIN_ROOT).join(format!("ns_{ns}"))),
    ];

    let load = |bin: &Path, name: &'static str| Job {
        name,
        steps: vec![argv(&[&bin, &"load", &obj])],
    };
    let core_load = |bin: &Path, name: &'static str| Job {
        name,
        steps: vec![argv(&[&bin, &"load", &core_obj])],
    };
    let rawbpf_job = |bin: &Path, name: &'static str| Job {
        name,
        steps: vec![
            argv(&[
                &bin,
                &"attach",
                &obj,
                &"--dev",
                dev,
                &"--netns",
                ns,
                &"--ingress",
            ]),
            argv(&[&bin, &"list", &"--dev", dev, &"--netns", ns]),
            argv(&[&bin, &"detach", &"--dev", dev, &"--netns", ns, &"--ingress"]),
        ],
    };
    let anchor_job = |bin: &Path, name: &'static str| Job {
        name,
        steps: vec![
            argv(&[&bin, &"attach", &obj, ns, dev]),
            argv(&[&bin, &"list", ns, dev]),
            argv(&[&bin, &"detach", ns, dev]),
        ],
    };
    // rawbpf's glibc build, when it is not the shipped one, runs last.
    let mut load_jobs = vec![
        load(&bins.rawbpf, "rawbpf"),
        load(&bins.anchor_static, "libbpf static"),
        load(&bins.anchor_dynamic, "libbpf dynamic"),
        Job {
            name: "static no-op",
            steps: vec![argv(&[&bins.noop_static])],
        },
    ];
    let mut full_jobs = vec![
        rawbpf_job(&bins.rawbpf, "rawbpf"),
        anchor_job(&bins.anchor_static, "libbpf static"),
        anchor_job(&bins.anchor_dynamic, "libbpf dynamic"),
        Job {
            name: "libbpf static, one process",
            steps: vec![argv(&[&bins.anchor_static, &"job", &obj, ns, dev])],
        },
    ];
    if let Some(musl) = &bins.musl {
        load_jobs.push(load(&musl.rawbpf_glibc, "rawbpf glibc"));
        load_jobs.push(Job {
            name: "static no-op, musl",
            steps: vec![argv(&[&musl.noop])],
        });
        full_jobs.push(rawbpf_job(&musl.rawbpf_glibc, "rawbpf glibc"));
        debug_assert_eq!(load_jobs.len(), MUSL_NOOP_JOB + 1);
        debug_assert_eq!(full_jobs.len(), GLIBC_JOB + 1);
    }
    eprintln!("rawbpf-bench: load-only, {runs} runs of each, interleaved ...");
    let load_samples = measure(&load_jobs, runs)?;
    let core_jobs = [
        core_load(&bins.rawbpf, "rawbpf"),
        core_load(&bins.anchor_static, "libbpf static"),
    ];
    eprintln!("rawbpf-bench: CO-RE load ({CORE_OBJECT}), {runs} runs of each, interleaved ...");
    let core_samples = measure(&core_jobs, runs)?;
    let core_rss: Vec<u64> = core_jobs
        .iter()
        .map(|j| job_rss(j, &work.0))
        .collect::<Result<_>>()?;
    eprintln!("rawbpf-bench: full job (attach + list + detach), {runs} runs of each ...");
    let full_samples = measure(&full_jobs, runs)?;
    eprintln!("rawbpf-bench: peak RSS (GNU time) ...");
    let (load_rss, load_faults): (Vec<u64>, Vec<u64>) = load_jobs
        .iter()
        .map(|j| job_memory(j, &work.0))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let full_rss: Vec<u64> = full_jobs
        .iter()
        .take(3)
        .map(|j| job_rss(j, &work.0))
        .collect::<Result<_>>()?;
    eprintln!("rawbpf-bench: syscalls (strace -c) and kernel time (perf trace) ...");
    // rawbpf and libbpf static: load-only, then full job.
    let compared = [&load_jobs[0], &load_jobs[1], &full_jobs[0], &full_jobs[1]];
    let counts: Vec<(u64, u64)> = compared
        .iter()
        .map(|j| strace_counts(&j.steps, &work.0))
        .collect::<Result<_>>()?;
    let traced = 21;
    let perf = Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let kernel: Vec<Option<KernelTime>> = if perf {
        compared
            .iter()
            .map(|j| kernel_times(&j.steps, &work.0, traced).map(Some))
            .collect::<Result<_>>()?
    } else {
        vec![None; 4]
    };
    eprintln!("rawbpf-bench: where the code load runs lies (single-stepped) ...");
    let stepped = layout::single_step(&load_jobs[0].steps[0])?;
    let code = layout::placement(&bins.rawbpf, &stepped.order)?;
    let anchor_cpuid = layout::single_step(&load_jobs[1].steps[0])?.cpuid;
    let glibc_cpuid = match load_jobs.get(GLIBC_JOB) {
        Some(j) => Some(layout::single_step(&j.steps[0])?.cpuid),
        None => None,
    };
    let cpuid_us = cpuid_cost_us();
    eprintln!("rawbpf-bench: per-packet test runs ...");
    let (chain_ns, stage2_ns, in_process_us) = per_packet(&obj)?;
    let job_in_process_us = job_in_process(&obj, ns, dev, 50)?;
    drop(lab);
    let links_rows = links::rows(&root, &work.0, &bins.rawbpf, runs)?;
    let (crates, crate_names) = crates_linked(&root)?;

    let l: Vec<Stats> = load_samples.iter().map(|s| wall_us(s)).collect();
    let f: Vec<Stats> = full_samples.iter().map(|s| wall_us(s)).collect();
    // The floor for rawbpf's own build: a no-op with the same C library.
    let (noop, noop_what) = match l.get(MUSL_NOOP_JOB) {
        Some(musl) => (musl, "Rust, musl"),
        None => (&l[3], "C, glibc"),
    };
    let ratio = |a: &Stats, b: &Stats| a.median / b.median;
    // The budgets' ratios: per round, then the median (see paired_ratio);
    // the ratio of the medians beside it.
    let paired = |a: &[Duration], b: &[Duration], sa: &Stats, sb: &Stats| {
        let r = paired_ratio(a, b);
        (r, format!("{r:.2} (medians: {:.2})", ratio(sa, sb)))
    };
    let check = |ok: bool| if ok { "met" } else { "**not met**" };
    let us = |s: &Stats| format!("{:.0} µs ({:.0}–{:.0})", s.median, s.p10, s.p90);
    let mut t = String::new();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel_release = sh(Command::new("uname").arg("-r")).unwrap_or_default();
    let _ = writeln!(
        t,
        "rawbpf vs libbpf {} on `programs/obj/pipeline.bpf.o`, {runs} runs of each, interleaved; \
         kernel {}, {} CPUs ({cpu}); `bash bench/run.sh --runs {runs}{}`.\n",
        libbpf_version(),
        kernel_release.trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if unordered { " --no-layout" } else { "" },
    );
    let _ = writeln!(t, "| measurement | rawbpf (static, {}) | libbpf static | libbpf dynamic | rawbpf / libbpf static (times: median of the per-round ratios) | target |", bins.shipped.label);
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    let (r_load, shown) = paired(&load_samples[0], &load_samples[1], &l[0], &l[1]);
    let _ = writeln!(
        t,
        "| load-only (`load`), whole process, median (p10–p90) | {} | {} | {} | {shown} | ≤ 0.90: {} |",
        us(&l[0]), us(&l[1]), us(&l[2]), check(r_load <= 0.90)
    );
    if let (Some(s), Some(st)) = (load_samples.get(GLIBC_JOB), l.get(GLIBC_JOB)) {
        let (_, shown) = paired(s, &load_samples[1], st, &l[1]);
        let _ = writeln!(
            t,
            "| load-only, rawbpf's glibc static build | {} | | | {shown} | reported |",
            us(st)
        );
    }
    let (r_full, shown) = paired(&full_samples[0], &full_samples[1], &f[0], &f[1]);
    let _ = writeln!(
        t,
        "| full job (`attach` + `list` + `detach`, 3 processes each), median (p10–p90) | {} | {} | {} | {shown} | ≤ 1.10: {} |",
        us(&f[0]), us(&f[1]), us(&f[2]), check(r_full <= 1.10)
    );
    if let (Some(s), Some(st)) = (full_samples.get(GLIBC_JOB), f.get(GLIBC_JOB)) {
        let (_, shown) = paired(s, &full_samples[1], st, &f[1]);
        let _ = writeln!(
            t,
            "| full job, rawbpf's glibc static build | {} | | | {shown} | reported |",
            us(st)
        );
    }
    let _ = writeln!(
        t,
        "| the same job in one libbpf process (load, attach, query, detach; nothing pinned) | | {} | | | |",
        us(&f[3]),
    );
    let _ = writeln!(
        t,
        "| peak RSS, load-only (GNU time `%M`) | {} KiB | {} KiB | {} KiB | {:.2} | ≤ 1.25 MiB: {} |",
        load_rss[0], load_rss[1], load_rss[2],
        load_rss[0] as f64 / load_rss[1] as f64,
        check(load_rss[0] <= 1280)
    );
    if let Some(rss) = load_rss.get(GLIBC_JOB) {
        let _ = writeln!(
            t,
            "| peak RSS, load-only, rawbpf's glibc static build | {rss} KiB | | | {:.2} | reported |",
            *rss as f64 / load_rss[1] as f64,
        );
    }
    let _ = writeln!(
        t,
        "| CPUID instructions a load runs (single-stepped), each a VM exit: one costs {cpuid_us:.1} µs here | {}{} | {anchor_cpuid} | | | |",
        stepped.cpuid,
        glibc_cpuid.map_or(String::new(), |n| format!(" (glibc build: {n})")),
    );
    let _ = writeln!(
        t,
        "| minor page faults, load-only (GNU time `%R`, median of 5; static no-op: {}) | {} | {} | {} | {:.2} | |",
        load_faults[3], load_faults[0], load_faults[1], load_faults[2],
        load_faults[0] as f64 / load_faults[1] as f64,
    );
    let _ = writeln!(
        t,
        "| code `load` runs (single-stepped): 4 KiB pages; the 64 KiB blocks they span, of the text's ({}) | {} pages; {} of {} blocks | | | | ≤ {} blocks: {} |",
        if unordered { "built without the ordering file" } else { "ordered by cli/load-order.txt" },
        code.pages, code.blocks, code.text_blocks,
        layout::LOAD_BLOCKS_MAX, check(code.blocks <= layout::LOAD_BLOCKS_MAX)
    );
    let c: Vec<Stats> = core_samples.iter().map(|s| wall_us(s)).collect();
    let (r_core, shown) = paired(&core_samples[0], &core_samples[1], &c[0], &c[1]);
    let _ = writeln!(
        t,
        "| CO-RE load (`load {CORE_OBJECT}`: kernel BTF, relocation, load), median (p10–p90) | {} | {} | | {shown} | ≤ 0.40: {} |",
        us(&c[0]), us(&c[1]), check(r_core <= 0.40)
    );
    let r_core_rss = core_rss[0] as f64 / core_rss[1] as f64;
    let _ = writeln!(
        t,
        "| peak RSS, CO-RE load | {} KiB | {} KiB | | {r_core_rss:.2} | ≤ 0.50: {} |",
        core_rss[0],
        core_rss[1],
        check(r_core_rss <= 0.50)
    );
    let _ = writeln!(
        t,
        "| peak RSS, full job (its largest process; starts the netlink runtime) | {} KiB | {} KiB | {} KiB | {:.2} | reported |",
        full_rss[0], full_rss[1], full_rss[2],
        full_rss[0] as f64 / full_rss[1] as f64,
    );
    for (i, what) in [(0, "load-only"), (2, "full job")] {
        let ((rb, rn), (ab, an)) = (counts[i], counts[i + 1]);
        let _ = writeln!(
            t,
            "| `bpf()` calls, {what} (netlink send/recv calls) | {rb} ({rn}) | {ab} ({an}) | | {:.2} | reported |",
            rb as f64 / ab as f64,
        );
        if let (Some(r), Some(a)) = (kernel[i], kernel[i + 1]) {
            let _ = writeln!(
                t,
                "| kernel time, {what}: in `bpf()` (of which PROG_LOAD) + in netlink calls; median of {traced} traced runs | {:.0} ({:.0}) + {:.0} µs | {:.0} ({:.0}) + {:.0} µs | | {:.2} | |",
                r.bpf * 1e3, r.prog_load * 1e3, r.netlink * 1e3,
                a.bpf * 1e3, a.prog_load * 1e3, a.netlink * 1e3,
                (r.bpf + r.netlink) / (a.bpf + a.netlink)
            );
        }
    }
    if let (Some(r), Some(a)) = (kernel[0], kernel[1]) {
        let _ = writeln!(
            t,
            "| one prog-array update (median `MAP_UPDATE_ELEM`) | {:.0} µs | {:.0} µs | | | |",
            r.update * 1e3,
            a.update * 1e3
        );
    }
    let (rs, as_, ad) = (
        size_mib(&bins.rawbpf),
        size_mib(&bins.anchor_static),
        size_mib(&bins.anchor_dynamic),
    );
    let _ = writeln!(
        t,
        "| stripped binary size | {rs:.2} MiB static | {as_:.2} MiB | {:.0} KiB + libbpf.so.1 | {:.2} | ≤ 2.2 MiB: {} |",
        ad * 1024.0,
        rs / as_,
        check(rs <= 2.2)
    );
    if let Some(musl) = &bins.musl {
        let gs = size_mib(&musl.rawbpf_glibc);
        let _ = writeln!(
            t,
            "| stripped binary size, rawbpf's glibc static build | {gs:.2} MiB | | | {:.2} | reported |",
            gs / as_
        );
    }
    let _ = writeln!(
        t,
        "| linked in | {crates} crates ({}) + {} | libbpf, libelf, libz, libzstd, glibc | the same, shared | | |",
        crate_names.join(", "),
        bins.shipped.label,
    );
    let _ = writeln!(
        t,
        "| release build from clean (`cargo build --release -p rawbpf-cli`, sources downloaded) | {:.1} s | | | | reported |",
        clean_build.as_secs_f64(),
    );
    let _ = writeln!(
        t,
        "| per packet, `BPF_PROG_TEST_RUN` (best of 5 × 10⁶ runs): chain / `inspect_and_drop` alone | {chain_ns} ns / {stage2_ns} ns | | | | |"
    );
    let _ = writeln!(
        t,
        "| floor: static no-op process ({noop_what}) | {} | | | | |",
        us(noop)
    );
    if l.get(MUSL_NOOP_JOB).is_some() {
        let _ = writeln!(
            t,
            "| static no-op process (C, glibc), as the libbpf anchor starts | {} | | | | |",
            us(&l[3])
        );
    }
    let _ = writeln!(
        t,
        "| floor: `Collection::load` in-process, 50 × (BTF, map, 2 × verify+JIT, 2 slots, close), no exec, no parse | {in_process_us:.0} µs | | | | |"
    );
    let load_floor = noop.median + in_process_us;
    let _ = writeln!(
        t,
        "| best a loader could do for load-only: no-op process + in-process load | {load_floor:.0} µs | | | {:.2} | |",
        load_floor / l[1].median
    );
    let _ = writeln!(
        t,
        "| floor: the full job in-process through the library, 50 × (attach, list, detach), no exec, no parse | {job_in_process_us:.0} µs | | | | |"
    );
    let job_floor = 3.0 * noop.median + job_in_process_us;
    let _ = writeln!(
        t,
        "| best a 3-process job could do: 3 no-op processes + the in-process job | {job_floor:.0} µs | | | {:.2} | |",
        job_floor / f[1].median
    );
    t.push_str(&links_rows);
    t.push_str(&maps::rows(&root, &bins.rawbpf)?);
    t.push_str(&ring::rows(&root, &work.0, &bins.rawbpf, runs)?);
    println!("{t}");
    Ok(())
}

/// What one CPUID instruction costs here, in µs (median of 200): on a
/// virtual machine the hypervisor answers it, so it is a VM exit.
fn cpuid_cost_us() -> f64 {
    let times = (0..200)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(std::arch::x86_64::__cpuid_count(4, 0));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    stats(times).median
}

fn libbpf_version() -> String {
    sh(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "libbpf-dev"]))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}
