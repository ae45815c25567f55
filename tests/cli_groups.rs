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
use support::groups::{
    fails, group_dir, group_links, link_ids, list, name_dirs, pinnable_perf_events, Group, GROUPS,
};
use support::json::{self, Value};
use support::{kernel, obj, rawbpf, stderr, stdout, unique};

fn object() -> String {
    obj("groups.bpf.o")
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

/// Whether a group can pin a tracepoint here (perf_event links, 5.15+).
fn pinnable_tracepoints(test: &str) -> bool {
    pinnable_perf_events(test, "a tracepoint")
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

#[test]
fn group_attaches_counts_and_detaches() {
    if !kernel("group_attaches_counts_and_detaches")
        || !pinnable_tracepoints("group_attaches_counts_and_detaches")
    {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let name = group.name.clone();
    let cgroup = Cgroup::new("grpcg");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = group
        .attach_json(
            "groups.bpf.o",
            &[
                "--prog",
                "on_tp",
                "--prog",
                "on_raw_tp",
                "--prog",
                "on_connect4",
                "--cgroup",
                cgroup.path(),
            ],
        )
        .0;
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
    let tp = listing
        .get("links")
        .array()
        .iter()
        .find(|l| l.get("id").num() == ids[0])
        .unwrap();
    assert_eq!(tp.get("type").str(), "perf_event");
    assert_eq!(tp.get("prog_name").str(), "on_tp");
    // Kernels before 6.6 do not describe a perf_event link's event.
    let target = tp.get("target").str();
    assert!(
        target.is_empty() || target.contains("sys_enter_getppid"),
        "{tp:?}"
    );
    let text = stdout(&rawbpf(&["list"]));
    assert!(
        text.contains(&name) && text.contains("raw_tracepoint"),
        "{text}"
    );

    // The group outlives the CLI; detach ends it.
    group.detach();
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

/// The bench's CO-RE tracing object (programs/tracing_core.bpf.c): its
/// getppid tracepoint program reads the calling task's tgid and its
/// parent's through CO-RE, at the offsets this kernel's task_struct has.
/// Detached, it stops counting.
#[test]
fn co_re_group_reads_the_task() {
    if !kernel("co_re_group_reads_the_task") || !pinnable_tracepoints("co_re_group_reads_the_task")
    {
        return;
    }
    let _serial = serial();
    let group = Group::new("grpcore");
    group.attach_json("tracing_core.bpf.o", &["--prog", "enter_getppid"]);
    let maps = group_dir(&group.name).join("maps");
    let counts = Map::from_pin(maps.join("counts")).unwrap();
    let last = Map::from_pin(maps.join("last_task")).unwrap();
    let slot = |m: &Map| word(&m.lookup(&0u32.to_le_bytes()).unwrap().unwrap(), 0);
    let want =
        (u64::from(std::os::unix::process::parent_id()) << 32) | u64::from(std::process::id());
    // Other processes' getppid() calls write the slot too: ours shows
    // within a few tries.
    let seen: Vec<u64> = (0..50)
        .map(|_| {
            getppid_times(1);
            slot(&last)
        })
        .collect();
    assert!(
        seen.contains(&want),
        "want parent tgid << 32 | tgid = {want:#x}, saw {seen:x?}"
    );
    assert!(slot(&counts) >= 1);

    group.detach();
    let after = slot(&counts);
    getppid_times(5);
    assert_eq!(slot(&counts), after, "the counter moved after detach");
}

#[test]
fn group_attach_is_all_or_nothing() {
    if !kernel("group_attach_is_all_or_nothing") {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let name = group.name.clone();
    let cgroup = Cgroup::new("grpcg");
    let before = link_ids(&list());
    // Every program: on_tp, on_raw_tp and on_connect4 attach, on_missing
    // names a tracepoint no kernel has.
    let o = group.attach("groups.bpf.o", &["--cgroup", cgroup.path()]);
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
    let left = support::groups::stray_links(&list(), &before, &ours);
    assert!(left.is_empty(), "links left: {left:?}");
}

#[test]
fn group_errors_name_program_and_flag() {
    if !kernel("group_errors_name_program_and_flag") {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let name = group.name.clone();
    // A cgroup program without --cgroup.
    let o = group.attach(
        "groups.bpf.o",
        &["--prog", "on_tp", "--prog", "on_connect4"],
    );
    let e = fails(&o, 1);
    assert!(e.contains("on_connect4") && e.contains("--cgroup"), "{e}");
    assert!(!group_dir(&name).exists());
    // A cgroup that does not exist.
    let missing = format!("{}/{}", cgroup2().display(), unique("nocg"));
    let o = group.attach(
        "groups.bpf.o",
        &["--prog", "on_connect4", "--cgroup", &missing],
    );
    let e = fails(&o, 1);
    assert!(e.contains("on_connect4") && e.contains(&missing), "{e}");
    assert!(!group_dir(&name).exists());
    // A program the object lacks.
    let e = fails(&group.attach("groups.bpf.o", &["--prog", "nope"]), 1);
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
    if !kernel("concurrent_attaches_of_one_name_fail_cleanly")
        || !pinnable_tracepoints("concurrent_attaches_of_one_name_fail_cleanly")
    {
        return;
    }
    let _serial = serial();
    for _ in 0..4 {
        let group = Group::new("grp");
        let name = group.name.clone();
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
            e.contains("another rawbpf holds") && e.contains(&name),
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
        group.detach();
    }
}

#[test]
fn half_done_group_is_explained_and_cleared() {
    if !kernel("half_done_group_is_explained_and_cleared")
        || !pinnable_tracepoints("half_done_group_is_explained_and_cleared")
    {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let name = group.name.clone();
    let ids = group
        .attach_json("groups.bpf.o", &["--prog", "on_tp", "--prog", "on_raw_tp"])
        .link_ids();
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
    group.attach_json("groups.bpf.o", &["--prog", "on_tp"]);
    group.detach();
}

// ------------------------------------------------------------- crash safety
//
// `attach` of a group (two tracing programs and a cgroup program) and its
// `detach`, killed with SIGKILL at every system call in turn (strace's
// fault injection, as tests/kernel_crash.rs does for TC hooks). After each
// kill: `list --json` exits 0; the name has the whole group, nothing, or
// staging directories of the killed process that `list` calls half-done and
// says `detach --name` clears; no link of the object is attached outside
// the group's pins; `detach --name` then exits 0 if anything was left (1,
// "no group", if nothing was) and leaves no pin and no link; `attach` then
// works again.

const RAWBPF: &str = env!("CARGO_BIN_EXE_rawbpf");
const OURS: [&str; 3] = ["on_tp", "on_raw_tp", "on_connect4"];

/// The kernel tests of this file one at a time: the crash test counts the
/// object's links, which another test's attach would add to.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// rawbpf without the library paths cargo adds (their search would add
/// kill points that say nothing).
fn bare(args: &[String]) -> Command {
    let mut c = Command::new(RAWBPF);
    c.env_remove("LD_LIBRARY_PATH").args(args);
    c
}

fn have_strace(test: &str) -> bool {
    let works = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        let reason = "strace is not installed (tests/run.sh installs it)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: {reason}; under CI=true a skip is a failure");
        }
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIP {test}: {reason}");
    }
    works
}

/// The command's system calls by name (`strace -f -c`).
fn syscall_counts(args: &[String]) -> std::collections::BTreeMap<String, u32> {
    let file = support::TempFile::new("strace-c", b"");
    let mut c = Command::new("strace");
    c.env_remove("LD_LIBRARY_PATH")
        .args(["-f", "-qq", "-c", "-o", file.path(), RAWBPF])
        .args(args);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{args:?} under strace: {}", stderr(&o));
    let text = std::fs::read_to_string(file.path()).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for line in text.lines().skip_while(|l| !l.starts_with("---")).skip(1) {
        if line.starts_with("---") {
            break;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 {
            counts.insert(cols[cols.len() - 1].to_owned(), cols[3].parse().unwrap());
        }
    }
    assert!(!counts.is_empty(), "no system calls counted:\n{text}");
    counts
}

/// Ids of the object's links that no group pins, outside `before`.
fn stray_links(listing: &Value, before: &[u64]) -> Vec<String> {
    support::groups::stray_links(listing, before, &OURS)
}

/// The rules after a kill (see above); returns what broke them, and leaves
/// the name clean.
fn check_after_kill(name: &str, before: &[u64], attach: &[String]) -> Vec<String> {
    let mut broken = Vec::new();
    let o = Command::new(RAWBPF)
        .args(["list", "--json"])
        .output()
        .unwrap();
    if !o.status.success() {
        broken.push(format!("list-exits-0: {}", stderr(&o)));
    }
    let dirs = name_dirs(name);
    if o.status.success() {
        let listing = json::parse(&stdout(&o)).unwrap();
        for g in listing.get("groups").array() {
            if g.get("name").str() != name {
                continue;
            }
            let links = g.get("links").array();
            match g.get("state").str() {
                "attached" if links.len() != 3 => {
                    broken.push(format!("whole-group: {} links pinned", links.len()))
                }
                "attached" => {}
                "half-done" => {
                    let clears = match g.get("clears_it") {
                        Value::Str(s) => s.clone(),
                        _ => String::new(),
                    };
                    if !clears.contains(&format!("detach --name {name}")) {
                        broken.push(format!("list-explains: clears_it {clears:?}"));
                    }
                }
                other => broken.push(format!("list-explains: state {other}")),
            }
        }
        let stray = stray_links(&listing, before);
        if !stray.is_empty() {
            broken.push(format!("no-stray-links: {stray:?}"));
        }
    }
    let d = Command::new(RAWBPF)
        .args(["detach", "--name", name])
        .output()
        .unwrap();
    let want = if dirs.is_empty() { 1 } else { 0 };
    if d.status.code() != Some(want) {
        broken.push(format!(
            "detach-exits-{want} (left: {dirs:?}): {:?} {}",
            d.status.code(),
            stderr(&d)
        ));
    }
    let listing = list();
    if !name_dirs(name).is_empty() || !group_links(&listing, name).is_empty() {
        broken.push(format!("detach-cleans: {:?}", name_dirs(name)));
    }
    let stray = stray_links(&listing, before);
    if !stray.is_empty() {
        broken.push(format!("detach-cleans: {stray:?}"));
    }
    let a = bare(attach).output().unwrap();
    if !a.status.success() {
        broken.push(format!("attach-after-works: {}", stderr(&a)));
    }
    let d = Command::new(RAWBPF)
        .args(["detach", "--name", name])
        .output()
        .unwrap();
    if !d.status.success() || !name_dirs(name).is_empty() {
        broken.push(format!("detach-after-cleans: {}", stderr(&d)));
    }
    broken
}

fn crash_group(test: &str, detach: bool) {
    if !kernel(test) || !have_strace(test) {
        return;
    }
    let _serial = serial();
    let group = Group::new("crash");
    let name = group.name.clone();
    let cgroup = Cgroup::new("crashcg");
    let attach: Vec<String> = [
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
    ]
    .map(String::from)
    .to_vec();
    let detach_args: Vec<String> = ["detach", "--name", &name].map(String::from).to_vec();
    let killed_cmd = if detach { &detach_args } else { &attach };
    let before = link_ids(&list());
    let establish = || {
        if detach {
            let o = bare(&attach).output().unwrap();
            assert!(o.status.success(), "attach: {}", stderr(&o));
        }
    };
    establish();
    let counts = syscall_counts(killed_cmd);
    if !detach {
        let o = bare(&detach_args).output().unwrap();
        assert!(o.status.success(), "detach: {}", stderr(&o));
    }
    let mut failures = Vec::new();
    let (mut points, mut kills, mut half_done) = (0, 0, 0);
    for (syscall, &count) in &counts {
        let mut k = 1;
        loop {
            establish();
            let o = Command::new("strace")
                .env_remove("LD_LIBRARY_PATH")
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={syscall}"))
                .arg("-e")
                .arg(format!("inject={syscall}:signal=KILL:when={k}"))
                .arg(RAWBPF)
                .args(killed_cmd)
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt as _;
            let killed = o.status.signal() == Some(libc::SIGKILL);
            points += 1;
            kills += usize::from(killed);
            half_done += usize::from(name_dirs(&name).iter().any(|d| d.contains("_new_")));
            for b in check_after_kill(&name, &before, &attach) {
                failures.push(format!("{syscall} #{k}: {b}"));
            }
            if k >= count && !killed {
                break;
            }
            assert!(k < count + 1000, "{syscall}: K runs away");
            k += 1;
        }
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {points} kill points, {kills} kills, {half_done} left a half-done group, {} failures",
        failures.len()
    );
    assert!(kills > 0 && half_done > 0, "no kill left a half-done group");
    assert!(
        failures.is_empty(),
        "{} of {points} kill points broke a rule:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn crash_group_attach() {
    crash_group("crash_group_attach", false);
}

#[test]
fn crash_group_detach() {
    crash_group("crash_group_detach", true);
}

#[test]
fn sockmap_programs_join_the_group_with_their_map() {
    if !kernel("sockmap_programs_join_the_group_with_their_map") {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let name = group.name.clone();
    let a = group
        .attach_json(
            "net_hooks.bpf.o",
            &["--prog", "count_msg", "--prog", "count_verdict"],
        )
        .0;
    let links = a.get("links").array();
    assert_eq!(links.len(), 2);
    for l in links {
        assert!(l.get("target").str().contains("socks"), "{l:?}");
    }
    assert!(group_dir(&name).join("maps/socks").exists());
    // With sockmap links (6.10+) each is a link of the group; before, the
    // pinned sockmap holds the programs.
    let listed = group_links(&list(), &name);
    let ids: Vec<u64> = links
        .iter()
        .filter_map(|l| match l.get("link_id") {
            Value::Num(_) => Some(l.get("link_id").num()),
            _ => None,
        })
        .collect();
    assert_eq!(listed.len(), ids.len());
    group.detach();
    assert!(!group_dir(&name).exists());
    let now = link_ids(&list());
    assert!(ids.iter().all(|id| !now.contains(id)));
}

#[test]
fn default_selection_attaches_what_sections_name() {
    if !kernel("default_selection_attaches_what_sections_name")
        || !pinnable_tracepoints("default_selection_attaches_what_sections_name")
    {
        return;
    }
    let _serial = serial();
    let group = Group::new("grp");
    let a = group.attach_json("groups_default.bpf.o", &[]).0;
    let progs: Vec<&str> = a
        .get("links")
        .array()
        .iter()
        .map(|l| l.get("program").str())
        .collect();
    assert_eq!(progs, ["on_tp"]);
    let skipped: Vec<(&str, &str)> = a
        .get("skipped")
        .array()
        .iter()
        .map(|s| (s.get("program").str(), s.get("reason").str()))
        .collect();
    let names: Vec<&str> = skipped.iter().map(|s| s.0).collect();
    assert_eq!(names, ["on_bare_uprobe", "on_xdp", "on_tc", "on_socket"]);
    assert!(skipped[1].1.contains("--dev"), "{skipped:?}");
    // Named with --prog, a program the section gives no hook is an error.
    let o = group.attach("groups_default.bpf.o", &["--prog", "on_xdp"]);
    let e = fails(&o, 1);
    assert!(e.contains("is attached already"), "{e}");
    let other_group = Group::new("grp");
    let other = other_group.name.clone();
    let o = other_group.attach("groups_default.bpf.o", &["--prog", "on_xdp"]);
    let e = fails(&o, 1);
    assert!(e.contains("on_xdp") && e.contains("--dev"), "{e}");
    assert!(!group_dir(&other).exists());
    group.detach();
}
