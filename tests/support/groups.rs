//! Shared by the CLI tests of named groups (`rawbpf attach OBJ` without
//! `--dev`): a group name of the test's own that is detached whatever the
//! test did, attaching and detaching it through the CLI, its pinned maps
//! and counters, `list`'s view of the kernel's links, and the probe for a
//! kernel that can pin perf-event attachments.

use super::json::{self, Value};
use super::{kernel_has, obj, rawbpf, stderr, stdout, unique};
use rawbpf::Map;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Where rawbpf pins its groups.
pub const GROUPS: &str = "/sys/fs/bpf/rawbpf/groups";

/// A group's directory. Names from [`unique`] have no '_' or '.': escaping
/// leaves them as they are.
pub fn group_dir(name: &str) -> PathBuf {
    Path::new(GROUPS).join(name)
}

/// A group name no other test uses, detached when the test ends, pass or
/// fail.
pub struct Group {
    pub name: String,
}

impl Group {
    pub fn new(tag: &str) -> Group {
        Group { name: unique(tag) }
    }

    /// `rawbpf attach OBJ --name NAME ARGS...` (`obj` in programs/obj).
    pub fn attach(&self, object: &str, args: &[&str]) -> Output {
        let file = obj(object);
        let mut all = vec!["attach", &file, "--name", &self.name];
        all.extend_from_slice(args);
        rawbpf(&all)
    }

    /// [`Group::attach`] with `--json`: it must exit 0.
    pub fn attach_json(&self, object: &str, args: &[&str]) -> Attached {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let o = self.attach(object, &with_json);
        assert_eq!(
            o.status.code(),
            Some(0),
            "attach {object} {args:?}: {}",
            stderr(&o)
        );
        Attached(json::parse(&stdout(&o)).unwrap())
    }

    /// `rawbpf detach --name NAME`: it must exit 0 and leave no pin.
    pub fn detach(&self) {
        let o = rawbpf(&["detach", "--name", &self.name]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("detached group"), "{}", stdout(&o));
        assert_nothing_pinned(&self.name);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.name]);
    }
}

/// What `attach --json` said of a group.
pub struct Attached(pub Value);

impl Attached {
    /// One of the group's maps, opened from the pin `attach` names.
    pub fn map(&self, name: &str) -> Map {
        let m = self
            .0
            .get("maps")
            .array()
            .iter()
            .find(|m| m.get("name").str() == name)
            .unwrap_or_else(|| panic!("no map {name} in {:?}", self.0));
        Map::from_pin(m.get("pin").str()).unwrap()
    }

    /// The `link_id`s of its links.
    pub fn link_ids(&self) -> Vec<u64> {
        self.links()
            .iter()
            .map(|l| l.get("link_id").num())
            .collect()
    }

    pub fn links(&self) -> &[Value] {
        self.0.get("links").array()
    }
}

/// The u64 counter in `slot` of an array map.
pub fn counter(map: &Map, slot: u32) -> u64 {
    let v = map.lookup(&slot.to_ne_bytes()).unwrap().unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// The group's directory and any staging directory of it, by name.
pub fn name_dirs(name: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(GROUPS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f == name || f.starts_with(&format!("{name}_new_")))
        .collect();
    v.sort();
    v
}

/// Nothing of the group is pinned: neither its directory nor a staging
/// directory.
pub fn assert_nothing_pinned(name: &str) {
    assert!(!group_dir(name).exists(), "{name} is pinned");
    let dirs = name_dirs(name);
    assert!(dirs.is_empty(), "{name} left {dirs:?} under {GROUPS}");
}

/// The command failed with `code`; its stderr.
pub fn fails(o: &Output, code: i32) -> String {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stderr(o)
}

/// `rawbpf list --json`.
pub fn list() -> Value {
    super::rawbpf_json(&["list", "--json"])
}

/// The kernel links `list --json` shows for a group.
pub fn group_links(listing: &Value, name: &str) -> Vec<u64> {
    listing
        .get("links")
        .array()
        .iter()
        .filter(|l| matches!(l.get("group"), Value::Str(g) if g == name))
        .map(|l| l.get("id").num())
        .collect()
}

/// The ids of every kernel link `list --json` shows.
pub fn link_ids(listing: &Value) -> Vec<u64> {
    listing
        .get("links")
        .array()
        .iter()
        .map(|l| l.get("id").num())
        .collect()
}

/// Links outside `before` of the programs `progs` that no group pins.
pub fn stray_links(listing: &Value, before: &[u64], progs: &[&str]) -> Vec<String> {
    listing
        .get("links")
        .array()
        .iter()
        .filter(|l| !before.contains(&l.get("id").num()))
        .filter(|l| matches!(l.get("group"), Value::Null))
        .filter(|l| progs.contains(&l.get("prog_name").str()))
        .map(|l| format!("link {} of {}", l.get("id").num(), l.get("prog_name").str()))
        .collect()
}

/// Whether this kernel attaches perf-event programs (tracepoints, uprobes)
/// with a BPF link (perf_event links), which a group can pin; before them
/// (5.15) such a program is attached to a perf event that dies with the
/// process, and rawbpf refuses to make a group of it. Probed by attaching
/// groups.bpf.o's tracepoint program; says why when it returns false.
pub fn pinnable_perf_events(test: &str, what: &str) -> bool {
    let spec = rawbpf::ObjectSpec::from_file(obj("groups.bpf.o")).unwrap();
    let loaded = rawbpf::Collection::load(&spec, &rawbpf::LoadOptions::default()).unwrap();
    let program = loaded.program("on_tp").unwrap();
    let on_tp = spec.programs.iter().find(|p| p.name() == "on_tp").unwrap();
    let links = rawbpf::link::attach_program(program, on_tp, &Default::default()).unwrap();
    kernel_has(
        test,
        &format!("perf_event links ({what} cannot be pinned)"),
        links.iter().all(|l| l.fd().is_some()),
    )
}
