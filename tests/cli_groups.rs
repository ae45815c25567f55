//! `rawbpf attach OBJ` without `--dev`: one load attached as a named group
//! of links pinned under /sys/fs/bpf/rawbpf/groups/NAME, `detach --name`,
//! and `list`'s view of the kernel's links. programs/groups.bpf.c counts
//! this test thread's getppid() calls from a tracepoint and a raw
//! tracepoint into one shared `.bss`, and every connect() of a cgroup.

mod support;

use rawbpf::Map;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::json::{self, Value};
use support::{kernel, obj, rawbpf, rawbpf_json, stderr, stdout, unique};

const GROUPS: &str = "/sys/fs/bpf/rawbpf/groups";

fn object() -> String {
    obj("groups.bpf.o")
}

fn group_dir(name: &str) -> PathBuf {
    // Test names have no '_' or '.': escaping leaves them as they are.
    Path::new(GROUPS).join(name)
}

/// `state` in groups.bpf.c: tid, pad, tp, raw, both, connect4.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct State {
    tp: u64,
    raw: u64,
    both: u64,
    connect4: u64,
}

fn bss(name: &str) -> Map {
    Map::from_pin(group_dir(name).join("maps/_bss")).unwrap()
}

fn word(v: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(v[at..at + 8].try_into().unwrap())
}

fn read_state(map: &Map) -> State {
    let v = map.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    State {
        tp: word(&v, 8),
        raw: word(&v, 16),
        both: word(&v, 24),
        connect4: word(&v, 32),
    }
}

/// This thread's id, written in the group's `.bss` so that only this
/// thread's getppid() calls count.
fn count_this_thread(map: &Map) {
    let me = std::fs::read_link("/proc/thread-self").unwrap();
    let tid: u32 = me.file_name().unwrap().to_str().unwrap().parse().unwrap();
    let mut v = map.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    v[..4].copy_from_slice(&tid.to_le_bytes());
    map.update(&0u32.to_le_bytes(), &v).unwrap();
}

fn getppid_times(n: usize) {
    for _ in 0..n {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
}

fn cgroup2() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount")
}

/// A child cgroup, removed when the test ends.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let path = cgroup2().join(unique(tag));
        std::fs::create_dir(&path).unwrap();
        Cgroup(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// A shell moved into the cgroup connects to `port` on 127.0.0.1.
    fn connect(&self, port: u16) {
        let st = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "echo $$ > '{}/cgroup.procs' && exec 3<>/dev/tcp/127.0.0.1/{port}",
                self.path()
            ))
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes a group whatever the test did (a failed assertion included).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

fn list() -> Value {
    rawbpf_json(&["list", "--json"])
}

/// The kernel links `list --json` shows for a group.
fn group_links(listing: &Value, name: &str) -> Vec<u64> {
    listing
        .get("links")
        .array()
        .iter()
        .filter(|l| matches!(l.get("group"), Value::Str(g) if g == name))
        .map(|l| l.get("id").num())
        .collect()
}

fn link_ids(listing: &Value) -> Vec<u64> {
    listing
        .get("links")
        .array()
        .iter()
        .map(|l| l.get("id").num())
        .collect()
}

fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

#[test]
fn group_attaches_counts_and_detaches() {
    if !kernel("group_attaches_counts_and_detaches") {
        return;
    }
    let name = unique("grp");
    let _cleanup = Cleanup(name.clone());
    let cgroup = Cgroup::new("grpcg");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = rawbpf_json(&[
        "attach",
        &object(),
        "--name",
        &name,
        "--prog",
        "on_tp",
        "--prog",
        "on_raw_tp",
        "--prog",
        "on_connect4",
        "--cgroup",
        cgroup.path(),
        "--json",
    ]);
    assert_eq!(a.get("name").str(), name);
    let links = a.get("links").array();
    let progs: Vec<&str> = links.iter().map(|l| l.get("program").str()).collect();
    assert_eq!(progs, ["on_tp", "on_raw_tp", "on_connect4"]);
    assert!(links[0].get("target").str().contains("sys_enter_getppid"));
    let ids: Vec<u64> = links.iter().map(|l| l.get("link_id").num()).collect();
    for l in links {
        assert!(Path::new(l.get("pin").str()).exists());
    }

    // One load: both tracing programs count into the one .bss.
    let map = bss(&name);
    count_this_thread(&map);
    getppid_times(5);
    let s = read_state(&map);
    assert_eq!((s.tp, s.raw, s.both), (5, 5, 10), "{s:?}");
    cgroup.connect(port);
    let s = read_state(&map);
    assert!(s.connect4 >= 1, "{s:?}");

    // list shows the group's links, marked.
    let listing = list();
    let mut listed = group_links(&listing, &name);
    listed.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(listed, want);
    let g = listing
        .get("groups")
        .array()
        .iter()
        .find(|g| g.get("name").str() == name)
        .expect("the group in list's groups");
    assert_eq!(g.get("state").str(), "attached");
    let text = stdout(&rawbpf(&["list"]));
    assert!(
        text.contains(&name) && text.contains("raw_tracepoint"),
        "{text}"
    );

    // The group outlives the CLI; detach ends it.
    let o = rawbpf(&["detach", "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("detached group"), "{}", stdout(&o));
    getppid_times(5);
    cgroup.connect(port);
    let after = read_state(&map);
    assert_eq!(after, s, "counters moved after detach");
    assert!(!group_dir(&name).exists());
    let now = link_ids(&list());
    assert!(ids.iter().all(|id| !now.contains(id)), "{ids:?} in {now:?}");
    // A second detach: nothing to remove.
    let e = fails(&rawbpf(&["detach", "--name", &name]), 1);
    assert!(e.contains(&format!("no group {name}")), "{e}");
}

#[test]
fn group_attach_is_all_or_nothing() {
    if !kernel("group_attach_is_all_or_nothing") {
        return;
    }
    let name = unique("grp");
    let _cleanup = Cleanup(name.clone());
    let cgroup = Cgroup::new("grpcg");
    let before = link_ids(&list());
    // Every program: on_tp, on_raw_tp and on_connect4 attach, on_missing
    // names a tracepoint no kernel has.
    let o = rawbpf(&[
        "attach",
        &object(),
        "--name",
        &name,
        "--cgroup",
        cgroup.path(),
    ]);
    let e = fails(&o, 1);
    assert!(
        e.contains("on_missing") && e.contains("tp/rawbpf_none/missing"),
        "{e}"
    );
    assert!(e.contains("nothing was attached"), "{e}");
    assert!(!group_dir(&name).exists());
    let staged = std::fs::read_dir(GROUPS)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&name));
    assert!(!staged, "a staging directory stayed");
    let ours = ["on_tp", "on_raw_tp", "on_connect4", "on_missing"];
    let left: Vec<String> = list()
        .get("links")
        .array()
        .iter()
        .filter(|l| !before.contains(&l.get("id").num()))
        .filter(|l| matches!(l.get("group"), Value::Null))
        .filter(|l| ours.contains(&l.get("prog_name").str()))
        .map(|l| format!("{} {}", l.get("id").num(), l.get("prog_name").str()))
        .collect();
    assert!(left.is_empty(), "links left: {left:?}");
}

#[test]
fn group_errors_name_program_and_flag() {
    if !kernel("group_errors_name_program_and_flag") {
        return;
    }
    let name = unique("grp");
    let _cleanup = Cleanup(name.clone());
    // A cgroup program without --cgroup.
    let o = rawbpf(&[
        "attach",
        &object(),
        "--name",
        &name,
        "--prog",
        "on_tp",
        "--prog",
        "on_connect4",
    ]);
    let e = fails(&o, 1);
    assert!(e.contains("on_connect4") && e.contains("--cgroup"), "{e}");
    assert!(!group_dir(&name).exists());
    // A program the object lacks.
    let e = fails(
        &rawbpf(&["attach", &object(), "--name", &name, "--prog", "nope"]),
        1,
    );
    assert!(e.contains("no program nope"), "{e}");
    // Bad usage: a name bpffs cannot take, TC flags without --dev, group
    // flags with it.
    fails(&rawbpf(&["attach", &object(), "--name", "a/b"]), 2);
    fails(&rawbpf(&["attach", &object(), "--priority", "3"]), 2);
    fails(
        &rawbpf(&["attach", &object(), "--dev", "lo", "--cgroup", "/x"]),
        2,
    );
    fails(&rawbpf(&["detach", "--name", &name, "--all"]), 2);
    let e = fails(&rawbpf(&["detach", "--name", &name]), 1);
    assert!(e.contains(&format!("no group {name}")), "{e}");
}

#[test]
fn concurrent_attaches_of_one_name_fail_cleanly() {
    if !kernel("concurrent_attaches_of_one_name_fail_cleanly") {
        return;
    }
    for _ in 0..4 {
        let name = unique("grp");
        let _cleanup = Cleanup(name.clone());
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_rawbpf"))
                .args(["attach", &object(), "--name", &name])
                .args(["--prog", "on_tp", "--prog", "on_raw_tp", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
        let won: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
        assert_eq!(
            won.len(),
            1,
            "{:?}",
            outs.iter().map(stderr).collect::<Vec<_>>()
        );
        let lost = outs.iter().find(|o| !o.status.success()).unwrap();
        let e = fails(lost, 1);
        assert!(
            e.contains(&format!("another rawbpf holds group {name}"))
                || e.contains(&format!("group {name} is attached already")),
            "{e}"
        );
        assert!(!e.contains("os error"), "a raw errno: {e}");
        // The winner's group, whole, and nothing of the loser's.
        let doc = json::parse(&stdout(won[0])).unwrap();
        let mut ids: Vec<u64> = doc
            .get("links")
            .array()
            .iter()
            .map(|l| l.get("link_id").num())
            .collect();
        ids.sort();
        let mut listed = group_links(&list(), &name);
        listed.sort();
        assert_eq!(listed, ids);
        let dirs: Vec<String> = std::fs::read_dir(GROUPS)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&name))
            .collect();
        assert_eq!(dirs, std::slice::from_ref(&name));
        let o = rawbpf(&["detach", "--name", &name]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

#[test]
fn half_done_group_is_explained_and_cleared() {
    if !kernel("half_done_group_is_explained_and_cleared") {
        return;
    }
    let name = unique("grp");
    let _cleanup = Cleanup(name.clone());
    let a = rawbpf_json(&[
        "attach",
        &object(),
        "--name",
        &name,
        "--prog",
        "on_tp",
        "--prog",
        "on_raw_tp",
        "--json",
    ]);
    let ids: Vec<u64> = a
        .get("links")
        .array()
        .iter()
        .map(|l| l.get("link_id").num())
        .collect();
    // What a rawbpf killed between pinning and renaming leaves: the staging
    // directory of a process that is gone, its links still attached.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let staged = Path::new(GROUPS).join(format!("{name}_new_{pid}"));
    std::fs::rename(group_dir(&name), &staged).unwrap();
    let text = stdout(&rawbpf(&["list"]));
    assert!(
        text.contains("half-done") && text.contains(&format!("rawbpf detach --name {name}")),
        "{text}"
    );
    let g = list();
    let g = g
        .get("groups")
        .array()
        .iter()
        .find(|g| g.get("name").str() == name)
        .cloned()
        .expect("the half-done group in list");
    assert_eq!(g.get("state").str(), "half-done");
    assert_eq!(g.get("pid").num(), u64::from(pid));
    // detach clears it and exits 0; the links are gone.
    let o = rawbpf(&["detach", "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("reconciled"), "{}", stdout(&o));
    assert!(!staged.exists());
    let now = link_ids(&list());
    assert!(ids.iter().all(|id| !now.contains(id)));
    // And the name attaches again.
    rawbpf_json(&[
        "attach",
        &object(),
        "--name",
        &name,
        "--prog",
        "on_tp",
        "--json",
    ]);
    let o = rawbpf(&["detach", "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
