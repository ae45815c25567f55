//! `--set NAME=VALUE`: global variables set before load, on `run`, `load`
//! and `attach` (group, `--foreground`), and `LoadOptions`' globals in the
//! library. programs/globals.bpf.c says what its programs compute from
//! them: a test-run's return value and an attached tracepoint's count
//! follow the values set; a bad value is exit 2 naming the variable and
//! its type, with nothing loaded or pinned.

mod support;

use support::foreground::Foreground;

use rawbpf::load::{Collection, LoadOptions};
use rawbpf::{Map, ObjectSpec};
use support::json::{self, Value};
use support::{kernel, obj, rawbpf, stderr, stdout, unique};

const OBJ: &str = "globals.bpf.o";

/// `rawbpf run globals.bpf.o --prog compute` with these `--set`s: the retval.
fn run_with(sets: &[&str]) -> u64 {
    let file = obj(OBJ);
    let mut args = vec!["run", &file, "--prog", "compute", "--json"];
    for s in sets {
        args.extend(["--set", s]);
    }
    support::rawbpf_json(&args).get("retval").num() as u64
}

#[test]
fn run_retval_follows_the_globals_set() {
    if !kernel("run_retval_follows_the_globals_set") {
        return;
    }
    // base + pair.a + pair.b + weights + small + data_add + bss_add (+1000 for an 'x' tag).
    assert_eq!(run_with(&[]), 1 + 2 + 3 + 10, "the object's own values");
    for (sets, want) in [
        (&["base=5"][..], 20),
        (&["base=-1"], 14),
        (&["enabled=false"], 0),
        (&["mode=MODE_OFF"], 1 + 10),
        (&["mode=MODE_MUL", "base=4"], 4 * 2 * 3 + 10),
        (&["mode=2", "base=0x4"], 4 * 2 * 3 + 10),
        (&["tag=xray"], 1016),
        (&["tag=\"x y\""], 1016),
        (&["pair={a=10, b=20}"], 1 + 30 + 10),
        (&[r#"pair={"a": 10, "b": 20}"#], 1 + 30 + 10),
        (&["pair={b=20}"], 1 + 20 + 10),
        (&["weights=[1, 2, 3]"], 16 + 6),
        (&["small=255"], 16 + 255),
        (&["data_add=0"], 6),
        (&["bss_add=4"], 20),
        (&["base=5", "base=7"], 22),
    ] {
        assert_eq!(run_with(sets), want, "--set {sets:?}");
    }
    // `load` takes them too.
    let file = obj(OBJ);
    let o = rawbpf(&["load", &file, "--set", "base=3", "--set", "bss_add=1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The library: typed Rust values and text, and `.rodata` frozen after its
/// new value is written.
#[test]
fn library_sets_typed_values_and_rodata_stays_frozen() {
    if !kernel("library_sets_typed_values_and_rodata_stays_frozen") {
        return;
    }
    let spec = ObjectSpec::from_file(obj(OBJ)).unwrap();
    let mut opts = LoadOptions::for_file(std::path::Path::new(OBJ));
    opts.set_global_value("base", 100i32)
        .set_global_value("enabled", true)
        .set_global_value("bss_add", 7u32)
        .set_global("mode", "MODE_OFF");
    let c = Collection::load(&spec, &opts).unwrap();
    let frame = [0u8; 64];
    assert_eq!(support::load::retval(&c, "compute", &frame), 100 + 10 + 7);
    let rodata = c.map(".rodata").unwrap();
    let value = rodata.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    let base = spec.global("base").unwrap();
    assert_eq!(
        &value[base.offset as usize..][..4],
        &100i32.to_le_bytes(),
        "the map holds the value set"
    );
    assert!(
        rodata.update(&0u32.to_le_bytes(), &value).is_err(),
        ".rodata is frozen after its values are set"
    );
    // A Rust type of the wrong size is refused before anything is made.
    let mut bad = LoadOptions::for_file(std::path::Path::new(OBJ));
    bad.set_global_value("base", 1u64);
    let err = Collection::load(&spec, &bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "global variable base (__s32, 4 bytes): a Rust u64 (8 bytes) does not fit it"
    );
}

/// This thread's id, which count_getppid counts for when `target_tid` is it.
fn tid() -> String {
    nix::unistd::gettid().as_raw().to_string()
}

fn getppid_times(n: u64) {
    for _ in 0..n {
        std::hint::black_box(std::os::unix::process::parent_id());
    }
}

/// `hits` in a .bss map, found by its BTF name.
fn hits(bss: &Map) -> u64 {
    let spec = ObjectSpec::from_file(obj(OBJ)).unwrap();
    let g = spec.global("hits").unwrap();
    let v = bss.lookup(&0u32.to_le_bytes()).unwrap().unwrap();
    u64::from_le_bytes(v[g.offset as usize..][..8].try_into().unwrap())
}

/// The .bss map of an attach's `--json` document.
fn bss_of(doc: &Value) -> Map {
    doc.get("maps")
        .array()
        .iter()
        .find(|m| m.get("name").str().ends_with(".bss"))
        .map(|m| Map::from_id(m.get("id").num() as u32).unwrap())
        .expect("the .bss map")
}

/// A pinned group, detached whatever the test did.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = rawbpf(&["detach", "--name", &self.0]);
    }
}

#[test]
fn attached_group_counts_as_the_globals_say() {
    let test = "attached_group_counts_as_the_globals_say";
    if !kernel(test) || !support::groups::pinnable_perf_events(test, "a tracepoint") {
        return;
    }
    let file = obj(OBJ);
    let group = Group(unique("glob"));
    let (target, step) = (format!("target_tid={}", tid()), "step=3");
    let o = rawbpf(&[
        "attach",
        &file,
        "--name",
        &group.0,
        "--prog",
        "count_getppid",
        "--set",
        &target,
        "--set",
        step,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bss = bss_of(&json::parse(&stdout(&o)).unwrap());
    getppid_times(5);
    assert_eq!(hits(&bss), 15, "5 getppid() of this thread, step 3");
    let o = rawbpf(&["detach", "--name", &group.0]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    getppid_times(5);
    assert_eq!(hits(&bss), 15, "nothing counts once detached");
}

#[test]
fn foreground_attach_counts_as_the_globals_say() {
    if !kernel("foreground_attach_counts_as_the_globals_say") {
        return;
    }
    let file = obj(OBJ);
    let me = format!("target_tid={}", tid());
    // A thread id no thread has: this thread's calls are not counted.
    let other = "target_tid=4294967295".to_owned();
    for (target, step, want) in [
        (&me, "step=2", 10),
        (&me, "step=7", 35),
        (&other, "step=2", 0),
    ] {
        let (fg, doc) = Foreground::start(&[
            "attach",
            &file,
            "--prog",
            "count_getppid",
            "--foreground",
            "--set",
            target,
            "--set",
            step,
            "--json",
        ]);
        let bss = bss_of(&doc);
        getppid_times(5);
        assert_eq!(hits(&bss), want, "--set {target} --set {step}");
        assert_eq!(fg.stop(nix::sys::signal::Signal::SIGTERM), Some(0));
    }
}

/// Bad `--set`s: exit 2, the variable and its type named, nothing loaded
/// (no group pinned). All found before the kernel is asked anything.
#[test]
fn bad_values_are_usage_errors_naming_the_variable_and_type() {
    let file = obj(OBJ);
    let kconfig = obj("kconfig.bpf.o");
    let group = Group(unique("globbad"));
    let cases: &[(&str, &str, &str)] = &[
        (&file, "nope=1", "--set: global variable nope: the object has no such global (its globals: base (__s32 in .rodata), "),
        (&file, "small=256", "--set: global variable small (__u8): 256 is out of range (0 to 255)"),
        (&file, "base=-2147483649", "--set: global variable base (__s32): -2147483649 is out of range (-2147483648 to 2147483647)"),
        (&file, "mode=MODE_FAST", "--set: global variable mode (enum mode): 'MODE_FAST' is not one of its enumerators (MODE_OFF, MODE_ADD, MODE_MUL)"),
        (&file, "tag=12345678", "--set: global variable tag (char[8]): the string is 8 bytes; it holds at most 7 and the terminating NUL"),
        (&file, "enabled=yes", "--set: global variable enabled (bool): 'yes' is not true or false"),
        (&file, "pair={c=1}", "--set: global variable pair (struct pair): no field 'c' (its fields: a, b)"),
        (&file, "weights=[1,2,3,4]", "--set: global variable weights (__u32[3]): 4 elements given; it has 3"),
        (&file, "base", "--set base: expected NAME=VALUE"),
        (&kconfig, "CONFIG_HZ=100", "--set: global variable CONFIG_HZ: it is an extern in .kconfig, filled by the loader from the kernel; it cannot be set"),
    ];
    for (obj_file, set, says) in cases {
        for args in [
            vec!["run", obj_file, "--prog", "compute", "--set", set],
            vec!["load", obj_file, "--set", set],
            vec!["attach", obj_file, "--name", &group.0, "--set", set],
            vec!["attach", obj_file, "--foreground", "--set", set],
            vec!["attach", obj_file, "--dev", "lo", "--ingress", "--set", set],
        ] {
            let o = rawbpf(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).starts_with(&format!("rawbpf: {says}")),
                "{args:?}: {}",
                stderr(&o)
            );
            assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        }
    }
    let dir = std::path::Path::new("/sys/fs/bpf/rawbpf/groups").join(&group.0);
    assert!(!dir.exists(), "nothing pinned for a refused --set");
}
