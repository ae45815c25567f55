//! `rawbpf probe --json --full` writes a target file; `rawbpf check OBJ
//! --target FILE [--btf FILE]` judges an object from it alone. Here the
//! target is this machine, so the verdict can be compared with a real load;
//! bad target and BTF files are refused with exit 2, naming the file.

mod support;
// The pure tests' BTF builder, for the same kernel BTF they use.
#[allow(dead_code)]
#[path = "../loader/tests/common/core_btf.rs"]
mod core_btf;

use support::json::Value;
use support::kbtf::running_version;
use support::{kernel, obj, rawbpf, stderr, stdout, TempFile, OBJ_DIR};

/// This machine's target file.
fn host_target() -> TempFile {
    let o = rawbpf(&["probe", "--json", "--full"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    TempFile::new("target", &o.stdout)
}

#[test]
fn the_target_file_describes_this_kernel() {
    if !kernel("the_target_file_describes_this_kernel") {
        return;
    }
    let target = host_target();
    let doc = support::json::parse(&std::fs::read_to_string(target.path()).unwrap()).unwrap();
    assert_eq!(doc.get("format"), &Value::Str("rawbpf-target/1".into()));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(doc.get("kernel"), &Value::Str(release.trim().into()));
    assert_eq!(
        doc.get("arch"),
        &Value::Str(std::env::consts::ARCH.into()),
        "uname -m"
    );
    let helpers = |t: &str| -> Vec<u64> {
        doc.get("helpers")
            .get(t)
            .array()
            .iter()
            .map(|v| v.num())
            .collect()
    };
    let tp = helpers("tracepoint");
    assert!(tp.contains(&1), "bpf_map_lookup_elem for tracepoints");
    assert!(
        !tp.contains(&9),
        "bpf_skb_store_bytes is not for tracepoints"
    );
    assert_eq!(tp.contains(&181), running_version() >= (5, 17), "bpf_loop");
    assert!(helpers("sched_cls").contains(&9));
    // Every program type that loads has its helpers probed.
    let Value::Obj(types) = doc.get("prog_types") else {
        panic!("prog_types")
    };
    for (t, ok) in types {
        if ok == &Value::Bool(true) {
            assert!(!helpers(t).is_empty(), "helpers of {t}");
        }
    }
    assert_eq!(
        doc.get("attach_types")
            .get("cgroup_sock_addr")
            .get("cgroup_unix_connect"),
        &Value::Bool(running_version() >= (6, 7))
    );
    assert_eq!(
        doc.get("link_kinds").get("tcx"),
        &Value::Bool(running_version() >= (6, 6))
    );
    // Facts of the matrix's kernels (5.10, 6.1, 6.12, 7.3) and this host:
    // perf_event links came in 5.15, task storage in 5.11 (probed with a
    // small BTF, which it needs), bloom filters in 5.16, user ring
    // buffers in 6.1, cgroup storage (cgrp_storage) in 6.2.
    assert_eq!(
        doc.get("link_kinds").get("perf_event"),
        &Value::Bool(running_version() >= (5, 15))
    );
    for (map, since) in [
        ("task_storage", (5, 11)),
        ("bloom_filter", (5, 16)),
        ("user_ringbuf", (6, 1)),
        ("cgrp_storage", (6, 2)),
    ] {
        assert_eq!(
            doc.get("map_types").get(map),
            &Value::Bool(running_version() >= since),
            "{map}"
        );
    }
    let externs = doc.get("externs");
    assert!(
        !externs.get("kallsyms").array().is_empty(),
        "kallsyms names"
    );
    assert!(matches!(externs.get("kconfig"), Value::Obj(o) if !o.is_empty()));
}

/// check --target (made here) agrees with a real load of each of the
/// project's objects: it says "would load" exactly when load succeeds.
#[test]
fn check_target_agrees_with_load_here() {
    if !kernel("check_target_agrees_with_load_here") {
        return;
    }
    let target = host_target();
    let btf = "/sys/kernel/btf/vmlinux";
    let mut disagree = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(OBJ_DIR).unwrap() {
        let path = entry.unwrap().path();
        let file = path.to_str().unwrap();
        // Refused by the verifier on purpose: no static check sees it.
        if !file.ends_with(".o") || file.ends_with("verifier_reject.bpf.o") {
            continue;
        }
        n += 1;
        let checked = rawbpf(&["check", file, "--target", target.path(), "--btf", btf]);
        let loaded = rawbpf(&["load", file]);
        assert!(
            matches!(checked.status.code(), Some(0 | 1)),
            "{file}: {}",
            stderr(&checked)
        );
        if checked.status.code() != loaded.status.code() {
            disagree.push(format!(
                "{file}: check says {:?}, load exits {:?}\n{}{}",
                checked.status.code(),
                loaded.status.code(),
                stdout(&checked),
                stderr(&loaded)
            ));
        }
    }
    assert!(n > 30, "objects in {OBJ_DIR}");
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}

#[test]
fn the_verdict_names_the_target_it_came_from() {
    if !kernel("the_verdict_names_the_target_it_came_from") {
        return;
    }
    let target = host_target();
    let o = rawbpf(&["check", &obj("xdp.bpf.o"), "--target", target.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let header = format!(
        "on kernel {} {} (from {})",
        release.trim(),
        std::env::consts::ARCH,
        target.path()
    );
    assert!(text.contains(&header), "{text}");
    assert!(text.contains("would load on the target"), "{text}");
    let o = rawbpf(&[
        "check",
        &obj("core_reloc.bpf.o"),
        "--target",
        target.path(),
        "--json",
    ]);
    let doc = support::json::parse(&stdout(&o)).unwrap();
    assert_eq!(doc.get("target"), &Value::Str(target.path().into()));
    assert_eq!(doc.get("would_load"), &Value::Bool(true));
    let notes = doc.get("notes").array();
    assert!(
        notes
            .iter()
            .any(|n| matches!(n, Value::Str(s) if s.contains("not checked without --btf"))),
        "{notes:?}"
    );
}

/// Exit 2 and a message that names the file and what is wrong with it.
fn refused(args: &[&str], file: &str, why: &str) {
    let o = rawbpf(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(file) && err.contains(why), "{args:?}: {err}");
}

/// A target file like `probe --json` writes, with no kernel needed.
const MINIMAL: &str = r#"{"format":"rawbpf-target/1","rawbpf":"0.1.0","kernel":"5.10.0-35-amd64","arch":"ARCH","prog_types":{"xdp":true}}"#;

#[test]
fn bad_target_files_are_refused_naming_the_file() {
    let xdp = obj("xdp.bpf.o");
    let minimal = MINIMAL.replace("ARCH", std::env::consts::ARCH);
    let cases = [
        ("{\"format\":\"rawbpf-target/1\",", "not valid JSON at byte"),
        ("[1,2]", "not a JSON object"),
        ("{\"kernel\":\"6.1\"}", "not a rawbpf target file"),
        (
            &*minimal.replace("rawbpf-target/1", "rawbpf-target/2"),
            "target file format \"rawbpf-target/2\"",
        ),
        (
            &*minimal.replace(std::env::consts::ARCH, "s390x_other"),
            "architecture is s390x_other",
        ),
        (
            &*minimal.replace("\"xdp\":true", "\"xdp\":\"yes\""),
            "prog_types.xdp",
        ),
    ];
    for (text, why) in cases {
        let f = TempFile::new("bad-target", text.as_bytes());
        refused(&["check", &xdp, "--target", f.path()], f.path(), why);
    }
    refused(
        &["check", &xdp, "--target", "/nonexistent/rawbpf-target.json"],
        "/nonexistent/rawbpf-target.json",
        "No such file",
    );
    // A good minimal file is read: a 5.10 target, no helpers probed.
    let f = TempFile::new("min-target", minimal.as_bytes());
    let o = rawbpf(&["check", &xdp, "--target", f.path()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("on kernel 5.10.0-35-amd64"));
}

#[test]
fn bad_btf_files_are_refused_naming_the_file() {
    let minimal = MINIMAL.replace("ARCH", std::env::consts::ARCH);
    let target = TempFile::new("target", minimal.as_bytes());
    let core = obj("core_reloc.bpf.o");
    let junk = TempFile::new("junk-btf", b"this is not BTF");
    refused(
        &[
            "check",
            &core,
            "--target",
            target.path(),
            "--btf",
            junk.path(),
        ],
        junk.path(),
        "neither raw BTF",
    );
    // An ELF file without .BTF: this test's own executable.
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    refused(
        &["check", &core, "--target", target.path(), "--btf", exe],
        exe,
        "without a .BTF section",
    );
    // Raw BTF magic and a broken header.
    let broken = TempFile::new("broken-btf", &[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]);
    refused(
        &[
            "check",
            &core,
            "--target",
            target.path(),
            "--btf",
            broken.path(),
        ],
        broken.path(),
        "not valid BTF",
    );
}

/// `--btf` may be a vmlinux-like ELF: its `.BTF` section is read (here
/// the BTF of an object file, whose own types it then finds).
#[test]
fn btf_from_an_elf_section() {
    let minimal = MINIMAL.replace("ARCH", std::env::consts::ARCH);
    let target = TempFile::new("target", minimal.as_bytes());
    let o = rawbpf(&[
        "check",
        &obj("core_reloc.bpf.o"),
        "--target",
        target.path(),
        "--btf",
        &obj("xdp.bpf.o"),
    ]);
    // xdp.bpf.o's BTF has no struct __sk_buff: the CO-RE relocation fails.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("__sk_buff"), "{}", stdout(&o));
}

/// A raw BTF file with only `enum bpf_func_id`, with or without
/// `BPF_FUNC_ktime_get_coarse_ns` (5.11): what the CO-RE guards of
/// core_helper_guard.bpf.o look up.
fn func_ids_btf(coarse: bool) -> TempFile {
    let btf = core_btf::kernel_func_ids(coarse);
    TempFile::new("func-ids-btf", &btf.to_bytes())
}

/// A helper behind a CO-RE guard that the target's BTF makes false (as
/// ksnoop's bpf_get_func_ip on 5.10) is not counted: a 5.10-like target
/// without bpf_ktime_get_coarse_ns and helper #100000 loads
/// core_helper_guard.bpf.o, and says it needs neither; the same call
/// without its guard does not load there. No kernel needed.
#[test]
fn helpers_behind_a_false_core_guard_on_the_target() {
    let minimal = MINIMAL.replace("ARCH", std::env::consts::ARCH).replace(
        r#""prog_types":{"xdp":true}"#,
        r#""prog_types":{"sched_cls":true},"helpers":{"sched_cls":[1,2,3,5]},"helpers_unavailable":{"sched_cls":[160,100000]}"#,
    );
    let target = TempFile::new("target-510", minimal.as_bytes());
    let old = func_ids_btf(false);
    let check = |o: &str, btf: &TempFile| {
        rawbpf(&[
            "check",
            &obj(o),
            "--target",
            target.path(),
            "--btf",
            btf.path(),
        ])
    };
    let o = check("core_helper_guard.bpf.o", &old);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(text.contains("would load on the target"), "{text}");
    assert!(
        text.contains("bpf_ktime_get_ns (#5)"),
        "the fallback: {text}"
    );
    assert!(
        !text.contains("#160") && !text.contains("#100000"),
        "{text}"
    );
    // The guard is what decides: where the BTF has the enumerator, the
    // call is seen and the probe's answer counts.
    let o = check("core_helper_guard.bpf.o", &func_ids_btf(true));
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(
        text.contains(
            "FAIL guarded_helpers: helper bpf_ktime_get_coarse_ns (#160) is not available"
        ),
        "{text}"
    );
    assert!(!text.contains("#100000"), "{text}");
    let o = check("core_helper_unguarded.bpf.o", &old);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(
        text.contains(
            "FAIL unguarded_helper: helper bpf_ktime_get_coarse_ns (#160) is not available"
        ),
        "{text}"
    );
}

/// Here, against this kernel's BTF: the guard on a helper no kernel has
/// is false, so `check` does not ask for it and says what `load` does.
#[test]
fn a_helper_no_kernel_has_behind_a_core_guard_here() {
    if !kernel("a_helper_no_kernel_has_behind_a_core_guard_here") {
        return;
    }
    let file = obj("core_helper_guard.bpf.o");
    let o = rawbpf(&["check", &file]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}{}", stderr(&o));
    assert!(text.contains("would load here"), "{text}");
    assert!(!text.contains("#100000"), "{text}");
    let loaded = rawbpf(&["load", &file]);
    assert_eq!(loaded.status.code(), Some(0), "{}", stderr(&loaded));
}
