//! The target flags of a group attach (`rawbpf attach OBJ` without `--dev`)
//! through the CLI: `--netns`, `--pid`, `--uprobe-binary`/`--uprobe-symbol`
//! and `--netfilter`. Each test attaches a named group, triggers the event
//! (UDP between two throwaway namespaces, a call of a function of this test
//! binary in this thread or in a child process), reads the program's
//! counter from the group's pinned map, detaches and sees the counter stay
//! still. Bad targets exit 1 (bad usage 2) with a message naming the
//! program and the target, and leave nothing pinned or attached.
//!
//! The programs: programs/link_tracing.bpf.c (`on_uprobe` counts the calls
//! of the thread whose id is in `target_tid`), programs/net_hooks.bpf.c
//! (`count_lookup`, sk_lookup) and programs/net_netfilter.bpf.c (6.4+).

mod support;

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use support::groups::{
    assert_nothing_pinned, counter, fails, link_ids, list, pinnable_perf_events, stray_links,
    Attached, Group,
};
use support::net::Net;
use support::{kernel, kernel_has, obj, unique};

/// Counter slot of `on_uprobe` in programs/link_tracing.bpf.c.
const UPROBE: u32 = 3;
/// The function the uprobe tests probe, in this test binary.
const SYMBOL: &str = "rawbpf_cli_target";

#[no_mangle]
#[inline(never)]
pub extern "C" fn rawbpf_cli_target(x: u64) -> u64 {
    black_box(x).wrapping_mul(7)
}

fn call_target(times: usize) {
    for i in 0..times {
        black_box(rawbpf_cli_target(i as u64));
    }
}

fn this_binary() -> String {
    std::env::current_exe()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn tid() -> u32 {
    nix::unistd::gettid().as_raw() as u32
}

/// The kernel tests of this file one at a time: the error test looks for
/// links the failed attaches left, which another test's attach would add.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn uprobes(test: &str) -> bool {
    kernel(test)
        && kernel_has(
            test,
            "uprobes (no uprobe PMU)",
            Path::new("/sys/bus/event_source/devices/uprobe").exists(),
        )
        && pinnable_perf_events(test, "a uprobe")
}

/// Makes `on_uprobe` of the group count the calls of thread `tid` only.
fn watch(attached: &Attached, tid: u32) {
    attached
        .map("target_tid")
        .update(&0u32.to_ne_bytes(), &tid.to_ne_bytes())
        .unwrap();
}

// ------------------------------------------------------------- uprobes

/// Set in the environment of a child that runs [`caller_helper`].
const CALLER: &str = "RAWBPF_TEST_CALLER";

/// Not a test of its own: run as a child process (this binary, with
/// `CALLER` set), it prints `caller-tid N` on a line of its own (libtest's
/// `test caller_helper ... ` starts the line it is on), then calls
/// [`rawbpf_cli_target`] five times for each line read from stdin,
/// printing `caller-called` after each round, until stdin closes. Without
/// the variable it does nothing.
#[test]
fn caller_helper() {
    if std::env::var_os(CALLER).is_none() {
        return;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "\ncaller-tid {}", tid()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        line.unwrap();
        call_target(5);
        writeln!(out, "caller-called").unwrap();
        out.flush().unwrap();
    }
}

/// A child process that calls the probed function when told.
struct Caller {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    tid: u32,
}

impl Caller {
    fn spawn() -> Caller {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "caller_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CALLER, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut c = Caller {
            child,
            stdin,
            stdout,
            tid: 0,
        };
        let line = c.read_until(|l| l.starts_with("caller-tid "));
        c.tid = line["caller-tid ".len()..].trim().parse().unwrap();
        c
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line `want` accepts (libtest prints its own lines too).
    fn read_until(&mut self, want: impl Fn(&str) -> bool) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "the caller process ended");
            if want(&line) {
                return line;
            }
        }
    }

    /// Has the child call the function five times, and waits until it has.
    fn call(&mut self) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(b"call\n").unwrap();
        stdin.flush().unwrap();
        self.read_until(|l| l.trim() == "caller-called");
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        // Closing stdin ends it; kill it if a failed test left it elsewhere.
        drop(self.stdin.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

#[test]
fn uprobe_binary_and_symbol_flags_attach_a_bare_uprobe() {
    let test = "uprobe_binary_and_symbol_flags_attach_a_bare_uprobe";
    if !uprobes(test) {
        return;
    }
    let _serial = serial();
    let group = Group::new("uprobe");
    let exe = this_binary();
    let a = group.attach_json(
        "link_tracing.bpf.o",
        &[
            "--prog",
            "on_uprobe",
            "--uprobe-binary",
            &exe,
            "--uprobe-symbol",
            SYMBOL,
        ],
    );
    let target = a.links()[0].get("target").str();
    assert!(
        target.starts_with("uprobe ") && target.ends_with(&format!(":{SYMBOL}")),
        "{target}"
    );
    let counts = a.map("counts");
    watch(&a, tid());
    call_target(5);
    assert_eq!(counter(&counts, UPROBE), 5);

    group.detach();
    call_target(5);
    assert_eq!(counter(&counts, UPROBE), 5, "still runs after detach");
}

#[test]
fn pid_flag_limits_a_uprobe_to_that_process() {
    let test = "pid_flag_limits_a_uprobe_to_that_process";
    if !uprobes(test) {
        return;
    }
    let _serial = serial();
    let (mut named, mut other) = (Caller::spawn(), Caller::spawn());
    let group = Group::new("pid");
    let exe = this_binary();
    let pid = named.pid().to_string();
    let a = group.attach_json(
        "link_tracing.bpf.o",
        &[
            "--prog",
            "on_uprobe",
            "--pid",
            &pid,
            "--uprobe-binary",
            &exe,
            "--uprobe-symbol",
            SYMBOL,
        ],
    );
    let counts = a.map("counts");
    // The program would count the other process's thread: the kernel does
    // not run it there.
    watch(&a, other.tid);
    other.call();
    assert_eq!(counter(&counts, UPROBE), 0, "ran in another process");
    // Nor in this process, which runs the same binary.
    watch(&a, tid());
    call_target(5);
    assert_eq!(counter(&counts, UPROBE), 0, "ran in the test process");
    watch(&a, named.tid);
    named.call();
    assert_eq!(counter(&counts, UPROBE), 5);

    group.detach();
    named.call();
    assert_eq!(counter(&counts, UPROBE), 5, "still runs after detach");
}

// ------------------------------------------------------------- namespaces

#[test]
fn netns_flag_attaches_sk_lookup_in_that_namespace() {
    let test = "netns_flag_attaches_sk_lookup_in_that_namespace";
    if !kernel(test) {
        return;
    }
    let _serial = serial();
    let net = Net::new("tgtns");
    let group = Group::new("netns");
    let a = group.attach_json(
        "net_hooks.bpf.o",
        &["--prog", "count_lookup", "--netns", &net.lab.ns_b],
    );
    let target = a.links()[0].get("target").str();
    assert!(target.contains(&net.lab.ns_b), "{target}");
    let counts = a.map("counts");
    // Slot 0: sk_lookup, run for each datagram the receiver's side gets.
    assert_eq!(net.batch().count, 10);
    let during = counter(&counts, 0);
    assert!(during >= 10, "{during} lookups for 10 datagrams");

    group.detach();
    assert_eq!(net.batch().count, 10);
    assert_eq!(counter(&counts, 0), during, "still runs after detach");
}

/// Whether this kernel loads netfilter programs (6.4+).
fn netfilter_programs(test: &str) -> bool {
    let spec = rawbpf::ObjectSpec::from_file(obj("net_netfilter.bpf.o")).unwrap();
    let loaded = rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::default());
    kernel_has(test, "netfilter programs (6.4)", loaded.is_ok())
}

#[test]
fn netfilter_flag_counts_packets_sent_in_a_namespace() {
    let test = "netfilter_flag_counts_packets_sent_in_a_namespace";
    if !kernel(test) || !netfilter_programs(test) {
        return;
    }
    let _serial = serial();
    let net = Net::new("tgtnf");
    let group = Group::new("nf");
    let a = group.attach_json(
        "net_netfilter.bpf.o",
        &["--netns", &net.lab.ns_a, "--netfilter", "ipv4:output:10"],
    );
    assert_eq!(
        a.links()[0].get("target").str(),
        format!(
            "netfilter ipv4:output:10 in network namespace {}",
            net.lab.ns_a
        )
    );
    let counts = a.map("counts");
    // The sender's namespace sends 10 IPv4 datagrams (and an IPv6 marker).
    assert_eq!(net.batch().count, 10);
    let during = counter(&counts, 0);
    assert!(during >= 10, "{during} packets counted for 10 sent");

    group.detach();
    assert_eq!(net.batch().count, 10);
    assert_eq!(counter(&counts, 0), during, "still runs after detach");
}

// ------------------------------------------------------------- bad targets

/// `attach` fails with `code`, its message has every one of `words`, and
/// nothing of the group is pinned or attached.
fn refused(group: &Group, object: &str, args: &[&str], code: i32, words: &[&str]) {
    let before = link_ids(&list());
    let e = fails(&group.attach(object, args), code);
    for w in words {
        assert!(e.contains(w), "{args:?}: {w:?} not in: {e}");
    }
    assert_nothing_pinned(&group.name);
    let progs = ["on_uprobe", "count_lookup", "count_netfilter"];
    let stray = stray_links(&list(), &before, &progs);
    assert!(stray.is_empty(), "{args:?} left {stray:?}");
}

#[test]
fn bad_targets_exit_1_naming_the_program_and_the_target() {
    let test = "bad_targets_exit_1_naming_the_program_and_the_target";
    if !kernel(test) {
        return;
    }
    let _serial = serial();
    let group = Group::new("bad");
    let exe = this_binary();
    let tracing = "link_tracing.bpf.o";
    let uprobe = |more: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["--prog", "on_uprobe"].map(String::from).to_vec();
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, code: i32, words: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&group, tracing, &args, code, words);
    };
    // A binary that does not exist.
    let mut a = uprobe(&["--uprobe-binary", "/nonexistent/rawbpf-binary"]);
    a.extend(["--uprobe-symbol".into(), SYMBOL.into()]);
    run(a, 1, &["on_uprobe", "/nonexistent/rawbpf-binary"]);
    // A symbol the binary lacks.
    let mut a = uprobe(&["--uprobe-symbol", "rawbpf_no_such_function"]);
    a.extend(["--uprobe-binary".into(), exe.clone()]);
    run(a, 1, &["on_uprobe", "rawbpf_no_such_function"]);
    // A process that does not exist (above the kernel's pid_max limit).
    let mut a = uprobe(&["--pid", "1073741824", "--uprobe-symbol", SYMBOL]);
    a.extend(["--uprobe-binary".into(), exe.clone()]);
    run(a, 1, &["on_uprobe", SYMBOL, "process 1073741824"]);
    // A section that names no target, and no flag that gives one.
    let needs = ["on_uprobe", "names no target", "--uprobe-binary"];
    run(uprobe(&[]), 1, &needs);
    run(uprobe(&["--uprobe-symbol", SYMBOL]), 1, &needs);
    let mut a = uprobe(&["--uprobe-binary"]);
    a.push(exe.clone());
    run(a, 1, &needs);
    // Not a process id: bad usage.
    run(uprobe(&["--pid", "abc"]), 2, &["--pid abc"]);
    run(uprobe(&["--pid", "0"]), 2, &["--pid 0"]);

    // A namespace that does not exist.
    let missing = unique("nons");
    refused(
        &group,
        "net_hooks.bpf.o",
        &["--prog", "count_lookup", "--netns", &missing],
        1,
        &["count_lookup", &missing],
    );
    // Malformed --netfilter values: bad usage, before anything is loaded.
    for (value, says) in [
        ("ipv4:nohook:10", "one of prerouting, input"),
        ("ipv9:output:10", "one of ipv4, ipv6"),
        ("ipv4:output", "FAMILY:HOOK:PRIORITY"),
        ("ipv4:output:high", "FAMILY:HOOK:PRIORITY"),
        ("ipv4:output:10:frag", "FAMILY:HOOK:PRIORITY"),
    ] {
        refused(
            &group,
            "net_netfilter.bpf.o",
            &["--netfilter", value],
            2,
            &[&format!("--netfilter {value}"), says],
        );
    }
    if netfilter_programs(test) {
        // A netfilter program without --netfilter, or in a namespace that
        // does not exist.
        refused(
            &group,
            "net_netfilter.bpf.o",
            &[],
            1,
            &["count_netfilter", "names no target", "--netfilter"],
        );
        refused(
            &group,
            "net_netfilter.bpf.o",
            &["--netns", &missing, "--netfilter", "ipv6:input:1"],
            1,
            &["count_netfilter", &missing],
        );
    }
    // And the name still attaches (nothing half-done holds it).
    let a = group.attach_json("net_hooks.bpf.o", &["--prog", "count_lookup"]);
    assert_eq!(a.link_ids().len(), 1);
    group.detach();
}
