//! `rawbpf events`: programs/events.bpf.c attached as a group writes a
//! 20-byte record into its ring buffer and its perf event array for each
//! getppid() of the thread whose id the test writes in the group's `.bss`;
//! `rawbpf events … --count N --json`, started in a child, prints exactly
//! those N records, one JSON object per line, and exits 0. Without
//! `--count` it reads until SIGTERM and exits 0. Needs root and perf_event
//! links (5.15+: a group pins its tracepoint link); skips otherwise.

mod support;

use rawbpf::Map;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;
use support::json::{self, Value};
use support::{kernel, obj, rawbpf, rawbpf_bin, stderr, unique};

/// `struct event` of events.bpf.c: magic "EVT!", tid, seq, source 1, 0.
fn event_hex(tid: u32, seq: u32) -> String {
    [0x2154_5645, tid, seq, 1, 0]
        .iter()
        .flat_map(|w: &u32| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A group of events.bpf.o's tracepoint program, detached when the test
/// ends, pass or fail.
struct Group(String);

impl Group {
    fn attach(tag: &str) -> Group {
        let name = unique(tag);
        let o = rawbpf(&[
            "attach",
            &obj("events.bpf.o"),
            "--name",
            &name,
            "--prog",
            "on_getppid",
        ]);
        assert_eq!(o.status.code(), Some(0), "attach: {}", stderr(&o));
        Group(name)
    }

    /// Test names have no '_' or '.': escaping leaves them as they are.
    fn map_pin(&self, map: &str) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/rawbpf/groups/{}/maps/{map}", self.0))
    }

    /// Only this thread's getppid() calls write records from now on.
    fn watch_this_thread(&self) -> u32 {
        let tid = nix::unistd::gettid().as_raw() as u32;
        let bss = Map::from_pin(self.map_pin("_bss")).unwrap();
        let mut v = bss.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
        v[..4].copy_from_slice(&tid.to_le_bytes());
        bss.update(&0u32.to_le_bytes(), &v).unwrap();
        tid
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

/// A running `rawbpf events`, killed if the test ends before it does.
struct Events {
    child: Child,
    stdout: BufReader<ChildStdout>,
    watchdog: Option<std::sync::mpsc::Sender<()>>,
}

impl Events {
    /// Starts `rawbpf events ARGS` and waits until it says it reads.
    fn start(args: &[&str]) -> Events {
        let mut child = Command::new(rawbpf_bin())
            .arg("events")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        if !line.starts_with("rawbpf: events: reading ") {
            let mut rest = String::new();
            let _ = err.read_to_string(&mut rest);
            let _ = child.kill();
            panic!("rawbpf events {args:?}: {line}{rest}");
        }
        // What it says from now on (losses) is left unread: it is short.
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let pid = child.id() as i32;
        // A watchdog: a reader that misses records must fail the test, not
        // hang it (killed, it closes its stdout; the line reads then fail).
        // It stands down when `Events` goes, before the child is reaped.
        let (watchdog, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(60)) == Err(RecvTimeoutError::Timeout) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        });
        Events {
            child,
            stdout,
            watchdog: Some(watchdog),
        }
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "rawbpf events ended early");
        json::parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// Its exit status, and what it printed after the lines read.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.watchdog = None;
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status.code(), rest)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.watchdog = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn getppid_times(n: usize) {
    for _ in 0..n {
        std::hint::black_box(nix::unistd::getppid());
    }
}

/// Whether a group can pin this kernel's tracepoint attachment (a
/// perf_event link, 5.15+).
fn pinnable_tracepoints(test: &str) -> bool {
    let spec = rawbpf::ObjectSpec::from_file(obj("events.bpf.o")).unwrap();
    let loaded = rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::default()).unwrap();
    let links = rawbpf::link::attach_program(
        loaded.program("on_getppid").unwrap(),
        spec.program("on_getppid").unwrap(),
        &Default::default(),
    )
    .unwrap();
    support::kernel_has(
        test,
        "perf_event links (a tracepoint cannot be pinned)",
        links.iter().all(|l| l.fd().is_some()),
    )
}

/// Runs this thread on one CPU only; gives the CPU.
fn stay_on_one_cpu() -> u32 {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let cpu = (0..CpuSet::count())
        .find(|&c| allowed.is_set(c).unwrap_or(false))
        .unwrap();
    let mut one = CpuSet::new();
    one.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &one).unwrap();
    cpu as u32
}

fn has_key(v: &Value, key: &str) -> bool {
    matches!(v, Value::Obj(fields) if fields.iter().any(|(k, _)| k == key))
}

#[test]
fn events_prints_the_ring_buffers_records_then_exits() {
    let test = "events_prints_the_ring_buffers_records_then_exits";
    if !kernel(test) || !pinnable_tracepoints(test) {
        return;
    }
    let group = Group::attach("events-ring");
    let pin = group.map_pin("ring");
    let mut events = Events::start(&["pinned", pin.to_str().unwrap(), "--count", "5", "--json"]);
    let tid = group.watch_this_thread();
    getppid_times(5);
    for seq in 0..5 {
        let line = events.line();
        assert!(!has_key(&line, "cpu"), "a ring buffer has no CPU: {line:?}");
        assert_eq!(line.get("len").num(), 20);
        assert_eq!(line.get("data").str(), event_hex(tid, seq), "record {seq}");
    }
    let (code, rest) = events.finish();
    assert_eq!(code, Some(0));
    assert_eq!(rest, "", "nothing after the 5 records");
    // The group's .bss is no event stream.
    let o = rawbpf(&["events", "--name", &group.0, ".bss"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is of type array: events reads a ringbuf or a perf_event_array"),
        "{}",
        stderr(&o)
    );
}

/// `--type event`: each record decoded by the object's `struct event`.
#[test]
fn events_decodes_records_by_their_btf_type() {
    let test = "events_decodes_records_by_their_btf_type";
    if !kernel(test) || !pinnable_tracepoints(test) {
        return;
    }
    let group = Group::attach("events-typed");
    let pin = group.map_pin("ring");
    let mut events = Events::start(&[
        "pinned",
        pin.to_str().unwrap(),
        "--count",
        "3",
        "--type",
        "struct event",
        "--json",
    ]);
    let tid = group.watch_this_thread();
    getppid_times(3);
    for seq in 0..3 {
        let data = events.line().get("data").clone();
        assert_eq!(data.get("magic").num(), 0x2154_5645, "{data:?}");
        assert_eq!(data.get("tid").num(), u64::from(tid));
        assert_eq!(data.get("seq").num(), seq);
        assert_eq!(data.get("source").num(), 1);
    }
    assert_eq!(events.finish().0, Some(0));
    let o = rawbpf(&[
        "events",
        "pinned",
        pin.to_str().unwrap(),
        "--type",
        "no_such",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("its BTF has no type no_such"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn events_prints_the_perf_event_arrays_records_with_their_cpu() {
    let test = "events_prints_the_perf_event_arrays_records_with_their_cpu";
    if !kernel(test) || !pinnable_tracepoints(test) {
        return;
    }
    let cpu = stay_on_one_cpu();
    let group = Group::attach("events-perf");
    // By id this time, as `rawbpf list` or bpftool would give it.
    let id = Map::from_pin(group.map_pin("perf"))
        .unwrap()
        .id()
        .to_string();
    let mut events = Events::start(&["id", &id, "--count", "5", "--json"]);
    let tid = group.watch_this_thread();
    getppid_times(5);
    for seq in 0..5 {
        let line = events.line();
        assert_eq!(line.get("cpu").num(), u64::from(cpu));
        assert_eq!(line.get("len").num(), 20);
        assert_eq!(line.get("data").str(), event_hex(tid, seq), "record {seq}");
    }
    let (code, rest) = events.finish();
    assert_eq!(code, Some(0));
    assert_eq!(rest, "");
}

#[test]
fn events_by_group_and_name_reads_until_sigterm() {
    let test = "events_by_group_and_name_reads_until_sigterm";
    if !kernel(test) || !pinnable_tracepoints(test) {
        return;
    }
    let group = Group::attach("events-term");
    let mut events = Events::start(&["--name", &group.0, "ring"]);
    let tid = group.watch_this_thread();
    getppid_times(2);
    let want = |seq| format!("20 bytes: {}\n", event_hex(tid, seq));
    for seq in 0..2 {
        let mut line = String::new();
        events.stdout.read_line(&mut line).unwrap();
        assert_eq!(line, want(seq));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(events.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (code, rest) = events.finish();
    assert_eq!(code, Some(0), "SIGTERM ends it cleanly");
    assert_eq!(rest, "");
}

#[test]
fn events_refuses_what_it_cannot_read() {
    if !kernel("events_refuses_what_it_cannot_read") {
        return;
    }
    let o = rawbpf(&["events", "pinned", "/sys/fs/bpf/rawbpf-no-such-pin"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/sys/fs/bpf/rawbpf-no-such-pin"),
        "{}",
        stderr(&o)
    );
    let o = rawbpf(&["events", "id", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = rawbpf(&["events", "ring"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = rawbpf(&["events", "--name", "rawbpf-no-such-group", "ring"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("group rawbpf-no-such-group has no map ring"),
        "{}",
        stderr(&o)
    );
}
