//! `rawbpf attach OBJ --foreground`: the programs run while the command
//! runs, nothing is pinned, and Ctrl-C (SIGINT) or SIGTERM detaches them
//! and exits 0. It is how a kernel without perf_event links (before 5.15)
//! runs tracepoints from the CLI: those a group cannot pin.

mod support;

use support::foreground::Foreground;

use rawbpf::Map;
use support::json::Value;
use support::{kernel, obj, stderr};

/// groups.bpf.c's `state`: tid, pad, then the tp, raw and both counters.
fn counters(bss: &Map) -> (u64, u64) {
    let v = bss.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    let word = |at: usize| u64::from_le_bytes(v[at..at + 8].try_into().unwrap());
    (word(8), word(16))
}

/// Counts only this thread's getppid() calls.
fn count_this_thread(bss: &Map) {
    let tid = nix::unistd::gettid().as_raw() as u32;
    let mut v = bss.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    v[..4].copy_from_slice(&tid.to_le_bytes());
    bss.update(&0u32.to_le_bytes(), &v).unwrap();
}

fn getppid_times(n: u64) {
    for _ in 0..n {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
}

fn foreground_runs_until(signal: nix::sys::signal::Signal) {
    let file = obj("groups.bpf.o");
    let (fg, doc) = Foreground::start(&[
        "attach",
        &file,
        "--prog",
        "on_tp",
        "--prog",
        "on_raw_tp",
        "--foreground",
        "--json",
    ]);
    assert_eq!(doc.get("pinned"), &Value::Bool(false));
    let links: Vec<&str> = doc
        .get("links")
        .array()
        .iter()
        .map(|l| l.get("program").str())
        .collect();
    assert_eq!(links, ["on_tp", "on_raw_tp"]);
    let bss = doc
        .get("maps")
        .array()
        .iter()
        .find(|m| m.get("name").str().ends_with(".bss"))
        .map(|m| Map::from_id(m.get("id").num() as u32).unwrap())
        .expect("the .bss map");
    count_this_thread(&bss);
    getppid_times(5);
    assert_eq!(counters(&bss), (5, 5), "both programs ran while attached");

    assert_eq!(fg.stop(signal), Some(0), "{signal} detaches and exits 0");
    // This process holds the map: the programs are gone, the counts stay.
    getppid_times(5);
    assert_eq!(counters(&bss), (5, 5), "nothing runs after {signal}");
}

#[test]
fn foreground_runs_until_sigint() {
    if !kernel("foreground_runs_until_sigint") {
        return;
    }
    foreground_runs_until(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn foreground_runs_until_sigterm() {
    if !kernel("foreground_runs_until_sigterm") {
        return;
    }
    foreground_runs_until(nix::sys::signal::Signal::SIGTERM);
}

/// `--name` names a pinned group, which `--foreground` does not make; a
/// `--dev` attach has no foreground mode.
#[test]
fn foreground_refuses_what_it_cannot_do() {
    let file = obj("groups.bpf.o");
    for (args, says) in [
        (
            vec!["attach", &file, "--foreground", "--name", "x"],
            "--foreground pins nothing",
        ),
        (
            vec!["attach", &file, "--foreground", "--dev", "lo"],
            "--foreground is for group attaches",
        ),
    ] {
        let o = support::rawbpf(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}
