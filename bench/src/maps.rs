//! Dumping a big map: `rawbpf map dump` against `bpftool map dump` on the
//! same pinned 1,000,000-entry `u32 → u64` hash map with BTF (map_types'
//! `flows`, grown), output to /dev/null, interleaved runs, medians.

use super::{sh, Result};
use rawbpf::load::{Collection, LoadOptions};
use rawbpf::ObjectSpec;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Elements in the dumped map.
const ENTRIES: u32 = 1_000_000;
/// Runs of each tool.
const RUNS: usize = 5;

/// Removes a pin directory when dropped.
struct Pins(std::path::PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The map: map_types.bpf.o loaded with `flows` grown to [`ENTRIES`],
/// filled (key k → value 3k), pinned under `dir`.
fn make_map(root: &Path, dir: &Path) -> Result<()> {
    let file = root.join("programs/obj/map_types.bpf.o");
    let mut spec = ObjectSpec::from_file(&file).map_err(|e| e.to_string())?;
    let flows = spec
        .maps
        .iter_mut()
        .find(|m| m.name == "flows")
        .ok_or("map_types.bpf.o has no map flows")?;
    flows.max_entries = ENTRIES;
    let c = Collection::load(&spec, &LoadOptions::for_file(&file)).map_err(|e| e.to_string())?;
    let map = c.map("flows").map_err(|e| e.to_string())?;
    for k in 0..ENTRIES {
        map.update(&k.to_ne_bytes(), &(u64::from(k) * 3).to_ne_bytes())
            .map_err(|e| e.to_string())?;
    }
    c.pin(dir).map_err(|e| e.to_string())?;
    Ok(())
}

/// Seconds one run of `cmd` takes, wall and CPU (user + system, as GNU
/// time reports them), its output thrown away; it must succeed.
fn time(cmd: &[&str], report: &Path) -> Result<(f64, f64)> {
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "-o"])
        .arg(report)
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("running {}: {e}", cmd[0]))?;
    let wall = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status})"));
    }
    let text = std::fs::read_to_string(report).map_err(|e| e.to_string())?;
    let cpu = text
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok())
        .sum();
    Ok((wall, cpu))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The bench's rows for the dump: plain and JSON output, rawbpf (binary
/// `rawbpf`) and bpftool, with the ratio and the bound (≤ 0.25).
pub fn rows(root: &Path, rawbpf: &Path) -> Result<String> {
    sh(Command::new("bpftool").arg("version"))
        .map_err(|e| format!("bpftool is needed for the map dump rows: {e}"))?;
    let pins =
        Pins(Path::new("/sys/fs/bpf").join(format!("rawbpf-bench-maps-{}", std::process::id())));
    eprintln!("rawbpf-bench: map dump, a {ENTRIES}-entry hash, {RUNS} runs of each ...");
    make_map(root, &pins.0)?;
    let pin = pins.0.join("flows");
    let (pin, bin) = (
        pin.to_str().ok_or("pin path")?,
        rawbpf.to_str().ok_or("rawbpf path")?,
    );
    let mut out = String::new();
    for (what, ours, theirs) in [
        (
            "plain",
            vec![bin, "map", "dump", "pinned", pin],
            vec!["bpftool", "map", "dump", "pinned", pin],
        ),
        (
            "JSON",
            vec![bin, "map", "dump", "pinned", pin, "--json"],
            vec!["bpftool", "-j", "map", "dump", "pinned", pin],
        ),
    ] {
        let report =
            std::env::temp_dir().join(format!("rawbpf-bench-maps-{}.time", std::process::id()));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            a.push(time(&ours, &report)?);
            b.push(time(&theirs, &report)?);
        }
        let _ = std::fs::remove_file(&report);
        let wall = |v: &[(f64, f64)]| median(v.iter().map(|t| t.0).collect()) * 1e3;
        let cpu = |v: &[(f64, f64)]| median(v.iter().map(|t| t.1).collect()) * 1e3;
        let ratio = wall(&a) / wall(&b);
        out.push_str(&format!(
            "| `map dump` of a {ENTRIES}-entry `u32 → u64` hash with BTF, {what} output to /dev/null, median of {RUNS} (CPU: user + sys) | {:.0} ms (CPU {:.0} ms) | bpftool {:.0} ms (CPU {:.0} ms) | | {ratio:.2} | ≤ 0.25: {} |\n",
            wall(&a),
            cpu(&a),
            wall(&b),
            cpu(&b),
            if ratio <= 0.25 { "yes" } else { "NO" }
        ));
    }
    Ok(out)
}

/// `--maps-only`: the rows alone, for the release build of the CLI.
pub fn only(root: &Path) -> Result<()> {
    sh(Command::new("cargo").current_dir(root).args([
        "build",
        "-q",
        "--release",
        "-p",
        "rawbpf-cli",
    ]))?;
    print!("{}", rows(root, &root.join("target/release/rawbpf"))?);
    Ok(())
}
