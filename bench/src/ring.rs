//! Issue 22's event-stream rows: draining a ring buffer with rawbpf's
//! reader (`rawbpf::events::RingBuffer::consume`) against libbpf's
//! `ring_buffer__consume` (bench/anchor/libbpf_ringbuf.c) for the same
//! producer, and the peak memory of `rawbpf events` reading that ring.
//!
//! The producer is programs/obj/ring_bench.bpf.o: each `BPF_PROG_TEST_RUN`
//! of `produce` writes one 16-byte record into an 8 MiB ring. A round
//! fills the ring with [`RECORDS`] records (test-run, repeated), then
//! times the reader draining exactly that many; both readers sum the
//! records' first words so both touch the data.

use crate::{sh, stats, Result};
use rawbpf::events::RingBuffer;
use rawbpf::{Collection, LoadOptions, ObjectSpec, Program};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The producer object.
const OBJECT: &str = "programs/obj/ring_bench.bpf.o";
/// Records per round: 200,000 of 24 bytes (16 and the header) fill 4.8 of
/// the ring's 8 MiB.
const RECORDS: u32 = 200_000;
/// The ring's size, for the memory budget (2 MiB plus the ring).
const RING_BYTES: u64 = 8 << 20;

/// Builds the anchor statically, as the other anchors are.
fn build_anchor(root: &Path, work: &Path) -> Result<PathBuf> {
    let out = work.join("libbpf_ringbuf-static");
    sh(Command::new("gcc")
        .args(["-O2", "-Wall", "-static", "-s"])
        .arg(root.join("bench/anchor/libbpf_ringbuf.c"))
        .arg("-o")
        .arg(&out)
        .args(["-lbpf", "-lelf", "-lz", "-lzstd"]))?;
    Ok(out)
}

/// A 64-byte packet for the producer's test runs.
const PACKET: [u8; 64] = [0; 64];

/// rawbpf's reader: records per second in each of `rounds` rounds.
fn rawbpf_rates(root: &Path, rounds: usize) -> Result<Vec<f64>> {
    let file = root.join(OBJECT);
    let spec = ObjectSpec::from_file(&file).map_err(|e| e.to_string())?;
    let loaded =
        Collection::load(&spec, &LoadOptions::for_file(&file)).map_err(|e| e.to_string())?;
    let map = loaded.map("ring").map_err(|e| e.to_string())?;
    let program = loaded.program("produce").map_err(|e| e.to_string())?;
    let mut ring = RingBuffer::new(map).map_err(|e| e.to_string())?;
    let mut rates = Vec::with_capacity(rounds);
    let mut sum = 0u64;
    for _ in 0..rounds {
        program
            .test_run(&PACKET, RECORDS)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let mut got = 0;
        while got < RECORDS as usize {
            got += ring
                .consume(|r| {
                    let first = r.first_chunk::<8>().map_or(0, |b| u64::from_le_bytes(*b));
                    sum = sum.wrapping_add(first);
                })
                .map_err(|e| e.to_string())?;
        }
        rates.push(f64::from(RECORDS) / start.elapsed().as_secs_f64());
    }
    std::hint::black_box(sum);
    Ok(rates)
}

/// libbpf's `ring_buffer__consume`: records per second in each round.
fn libbpf_rates(root: &Path, anchor: &Path, rounds: usize) -> Result<Vec<f64>> {
    let out = sh(Command::new(anchor)
        .arg(root.join(OBJECT))
        .arg(RECORDS.to_string())
        .arg(rounds.to_string()))?;
    out.lines()
        .map(|l| {
            l.trim()
                .parse::<f64>()
                .map(|ns| f64::from(RECORDS) / (ns / 1e9))
                .map_err(|_| format!("libbpf_ringbuf printed {l:?}"))
        })
        .collect()
}

/// Peak RSS (KiB) of `rawbpf events pinned RING --count N` while it reads
/// [`RECORDS`] records the producer writes once it is reading.
fn events_rss_kib(root: &Path, rawbpf: &Path, work: &Path) -> Result<u64> {
    let dir = Path::new("/sys/fs/bpf").join(format!("rawbpf-bench-ring-{}", std::process::id()));
    struct Pins(PathBuf);
    impl Drop for Pins {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let pins = Pins(dir.clone());
    sh(Command::new(rawbpf)
        .arg("load")
        .arg(root.join(OBJECT))
        .arg("--pin")
        .arg(&pins.0))?;
    let time_out = work.join("events.time");
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&time_out)
        .arg(rawbpf)
        .args(["events", "pinned"])
        .arg(dir.join("ring"))
        .args(["--count", &RECORDS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running rawbpf events: {e}"))?;
    // It says on stderr when it reads; records written before would wait
    // in the ring anyway, but the RSS is then the reader's alone.
    let mut stderr = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line).map_err(|e| e.to_string())?;
    let program = Program::from_pin(dir.join("produce")).map_err(|e| e.to_string())?;
    program
        .test_run(&PACKET, RECORDS)
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("rawbpf events exited with {status} ({line})"));
    }
    let text = std::fs::read_to_string(&time_out).map_err(|e| e.to_string())?;
    text.trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("/usr/bin/time wrote {text:?}"))
}

/// The rows, for the full table and `--events-only`.
pub(crate) fn rows(root: &Path, work: &Path, rawbpf: &Path, runs: usize) -> Result<String> {
    let rounds = runs.clamp(5, 50);
    eprintln!("rawbpf-bench: ring buffer reads, {rounds} rounds of {RECORDS} records ...");
    let anchor = build_anchor(root, work)?;
    // Alternate the two in halves, so that machine noise moves both alike.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        ours.extend(rawbpf_rates(root, rounds / 2 + 1)?);
        theirs.extend(libbpf_rates(root, &anchor, rounds / 2 + 1)?);
    }
    let (o, t) = (stats(ours), stats(theirs));
    let ratio = o.median / t.median;
    let rss = events_rss_kib(root, rawbpf, work)?;
    let budget_kib = 2048 + RING_BYTES / 1024;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| ring buffer read, {RECORDS} records of 16 bytes per round, records/s, median (p10–p90) | {:.1} M ({:.1}–{:.1}) | libbpf `ring_buffer__consume`: {:.1} M ({:.1}–{:.1}) | | {ratio:.2} (rate, higher is better) | ≥ 1.0: {} |",
        o.median / 1e6,
        o.p10 / 1e6,
        o.p90 / 1e6,
        t.median / 1e6,
        t.p10 / 1e6,
        t.p90 / 1e6,
        if ratio >= 1.0 { "met" } else { "**not met**" },
    );
    let _ = writeln!(
        out,
        "| `rawbpf events` peak RSS reading an 8 MiB ring ({RECORDS} records) | {rss} KiB ({} KiB above the ring) | | | | ≤ 2 MiB + the ring ({budget_kib} KiB): {} |",
        rss.saturating_sub(RING_BYTES / 1024),
        if rss <= budget_kib { "met" } else { "**not met**" },
    );
    Ok(out)
}

/// `--events-only`: these rows alone, on the shipped static build.
pub(crate) fn only(root: &Path, runs: usize, unordered: bool) -> Result<()> {
    let (work, shipped, rawbpf) = crate::layout::only_build(root, "ring", unordered)?;
    let rows = rows(root, &work.0, &rawbpf, runs)?;
    println!(
        "| measurement | rawbpf (static, {}) | libbpf | | rawbpf / libbpf | target |",
        shipped.label
    );
    println!("|---|---|---|---|---|---|");
    print!("{rows}");
    Ok(())
}
