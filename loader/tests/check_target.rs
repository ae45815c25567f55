//! `check --target`: the verdict from a target file's facts alone. These
//! targets are made up (a 5.10-like kernel without bpf_loop, unix socket
//! hooks, a map type, a link kind...), so nothing here reads this machine.

mod common;

use rawbpf::compat::check_on_target;
use rawbpf::obj::btf::BtfKind;
use rawbpf::probe::{Feature, Features, LinkKind, TargetExterns, EXPECTED_ATTACH_TYPES};
use rawbpf::uapi::{AttachType, MapType, ProgramType};
use rawbpf::ObjectSpec;

fn spec(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(format!(
        "{}/../programs/obj/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A target that has everything the object needs, read back from its
/// target file (so the file format is in the loop).
fn full_target(spec: &ObjectSpec) -> Features {
    let mut f = common::full_features(spec, "9.9.0-test");
    f.arch = rawbpf::probe::machine();
    for (t, list) in EXPECTED_ATTACH_TYPES {
        for a in *list {
            f.attach_types.insert((*t, *a), true);
        }
    }
    for k in LinkKind::ALL {
        f.link_kinds.insert(k, true);
    }
    let mut externs = TargetExterns {
        kconfig: Some(rawbpf::probe::parse_config(
            "CONFIG_HZ=250\nCONFIG_BPF_SYSCALL=y\nCONFIG_NET_CLS_BPF=m\n",
        )),
        kallsyms: Some(["bpf_prog_active".to_owned(), "runqueues".into()].into()),
        ..TargetExterns::default()
    };
    for (k, v) in [
        ("LINUX_KERNEL_VERSION", 330_240),
        ("LINUX_HAS_BPF_COOKIE", 1),
        ("LINUX_HAS_SYSCALL_WRAPPER", 1),
    ] {
        externs.linux.insert(k.into(), v);
    }
    f.externs = Some(externs);
    Features::from_json(&f.to_json()).unwrap()
}

fn problems(spec: &ObjectSpec, f: &Features) -> Vec<String> {
    check_on_target(spec, f, None)
        .problems
        .into_iter()
        .map(|p| format!("{}: {}", p.program, p.reason))
        .collect()
}

/// Asserts that `spec` would load on the target `f` (no BTF given) and
/// that one of the report's notes contains every one of `parts`.
fn loads_noting(spec: &ObjectSpec, f: &Features, parts: &[&str]) {
    let report = check_on_target(spec, f, None);
    assert!(report.would_load(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|n| parts.iter().all(|p| n.contains(p))),
        "no note with {parts:?}: {:?}",
        report.notes
    );
}

#[test]
fn a_full_target_loads_everything_checkable() {
    for name in [
        "pipeline.bpf.o",
        "callbacks.bpf.o",
        "cgroup_unix.bpf.o",
        "map_types.bpf.o",
        "kconfig.bpf.o",
        "link_kprobe.bpf.o",
        "events.bpf.o",
    ] {
        let s = spec(name);
        assert_eq!(
            problems(&s, &full_target(&s)),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

#[test]
fn a_target_without_bpf_loop_or_a_helper() {
    let s = spec("callbacks.bpf.o");
    let mut f = full_target(&s);
    for ids in f.helpers.values_mut() {
        if let Some(v) = ids.get_mut(&181) {
            *v = false;
        }
    }
    let p = problems(&s, &f);
    assert!(
        p.iter()
            .any(|p| p.contains("helper bpf_loop (#181) is not available")),
        "{p:?}"
    );
}

#[test]
fn a_target_without_unix_socket_hooks() {
    // 5.10 and 6.1: cgroup_sock_addr has no unix attach types (6.7).
    let s = spec("cgroup_unix.bpf.o");
    let mut f = full_target(&s);
    for a in [
        AttachType::CGROUP_UNIX_CONNECT,
        AttachType::CGROUP_UNIX_GETPEERNAME,
    ] {
        f.attach_types
            .insert((ProgramType::CGROUP_SOCK_ADDR, a), false);
    }
    let p = problems(&s, &f);
    assert!(
        p.iter()
            .any(|p| p.contains("expected attach type cgroup_unix_connect are not supported")),
        "{p:?}"
    );
}

#[test]
fn a_target_without_a_map_type() {
    let s = spec("map_types.bpf.o");
    let mut f = full_target(&s);
    f.map_types.insert(MapType::LRU_HASH, Some(false));
    let p = problems(&s, &f);
    assert_eq!(
        p,
        ["(object): map recent is a lru_hash, which this kernel cannot create"]
    );
}

#[test]
fn a_target_without_a_link_kind_loads_but_says_it_cannot_attach() {
    let s = spec("link_kprobe.bpf.o");
    let mut f = full_target(&s);
    f.link_kinds.insert(LinkKind::KprobeMulti, false);
    loads_noting(&s, &f, &["cannot be attached", "kprobe_multi link"]);
}

#[test]
fn a_target_refusing_trampolines() {
    let s = spec("attach_fentry.bpf.o");
    let mut f = full_target(&s);
    f.features.insert(Feature::Fentry, false);
    let p = problems(&s, &f);
    assert!(
        p.iter()
            .any(|p| p.contains("does not load fentry programs")),
        "{p:?}"
    );
}

#[test]
fn kconfig_comes_from_the_target_file() {
    let s = spec("kconfig.bpf.o");
    let mut f = full_target(&s);
    // CONFIG_HZ is a strong extern: a target config without it fails.
    if let Some(c) = f.externs.as_mut().and_then(|e| e.kconfig.as_mut()) {
        c.remove("CONFIG_HZ");
    }
    let p = problems(&s, &f);
    assert!(
        p.iter()
            .any(|p| p.contains("CONFIG_HZ") && p.contains("the target file's kconfig")),
        "{p:?}"
    );
    let s = spec("kconfig_missing.bpf.o");
    let p = problems(&s, &full_target(&s));
    assert!(
        p.iter().any(|p| p.contains("CONFIG_RAWBPF_MISSING_OPTION")),
        "{p:?}"
    );
    // A target file without externs (a quick probe): not checked, said so.
    let s = spec("kconfig.bpf.o");
    let mut f = full_target(&s);
    f.externs = None;
    loads_noting(&s, &f, &["__kconfig externs not checked"]);
}

#[test]
fn without_the_targets_btf_core_is_not_checked_and_says_so() {
    let s = spec("core_reloc.bpf.o");
    loads_noting(&s, &full_target(&s), &["not checked without --btf"]);
}

#[test]
fn a_target_lacking_btf_kinds_keeps_the_btf_sanitized() {
    let s = spec("btf_kinds.bpf.o");
    let mut f = full_target(&s);
    f.btf_kinds.insert(BtfKind::Enum64, false);
    loads_noting(&s, &f, &["lacks BTF kinds", "rewrites them"]);
}

#[test]
fn a_target_without_spin_lock_maps() {
    let s = spec("btf_kinds.bpf.o");
    let mut f = full_target(&s);
    f.features.insert(Feature::MapSpinLock, false);
    let p = problems(&s, &f);
    assert!(
        p.iter().any(|p| p.contains("holds a bpf_spin_lock")),
        "{p:?}"
    );
    // Maps without a lock do not care.
    let s = spec("map_types.bpf.o");
    let mut f = full_target(&s);
    f.features.insert(Feature::MapSpinLock, false);
    assert_eq!(problems(&s, &f), Vec::<String>::new());
}

/// A target without bpf_ktime_get_coarse_ns (5.10): core_helper_guard
/// calls it only behind `bpf_core_enum_value_exists(enum bpf_func_id,
/// BPF_FUNC_ktime_get_coarse_ns)`, which the target's BTF makes 0, so it
/// loads, and the helper is not among its needs; without the guard
/// (core_helper_unguarded) the call is seen and the verdict is no. A
/// target whose BTF has the enumerator but whose probe lacks the helper
/// fails the guarded call too: the guard is what decides.
#[test]
fn a_target_without_a_helper_behind_a_false_core_guard() {
    let s = spec("core_helper_guard.bpf.o");
    let mut f = full_target(&s);
    for id in [160, 100_000] {
        f.helpers
            .entry(ProgramType::SCHED_CLS)
            .or_default()
            .insert(id, false);
    }
    let old = common::core_btf::kernel_func_ids(false);
    let report = check_on_target(&s, &f, Some(&old));
    assert!(report.would_load(), "{:?}", report.problems);
    let (name, _, needs) = &report.needs[0];
    assert_eq!(name, "guarded_helpers");
    assert!(
        needs.contains(&"bpf_ktime_get_ns (#5)".to_owned())
            && !needs
                .iter()
                .any(|n| n.contains("#160") || n.contains("#100000")),
        "{needs:?}"
    );
    let new = common::core_btf::kernel_func_ids(true);
    let p: Vec<String> = check_on_target(&s, &f, Some(&new))
        .problems
        .into_iter()
        .map(|p| format!("{}: {}", p.program, p.reason))
        .collect();
    assert_eq!(
        p,
        ["guarded_helpers: helper bpf_ktime_get_coarse_ns (#160) is not available to sched_cls programs on this kernel"]
    );

    let s = spec("core_helper_unguarded.bpf.o");
    let mut f = full_target(&s);
    f.helpers
        .entry(ProgramType::SCHED_CLS)
        .or_default()
        .insert(160, false);
    let report = check_on_target(&s, &f, Some(&old));
    let p: Vec<&str> = report.problems.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(
        p,
        ["helper bpf_ktime_get_coarse_ns (#160) is not available to sched_cls programs on this kernel"]
    );
}

/// A target whose kallsyms has no `bpf_fentry_test1` (its compiler kept
/// only a renamed clone, or inlined it): the kernel cannot attach fentry
/// or fexit there, and `check` says so from the file; the fmod_ret program
/// on another function is fine. With the function in kallsyms, it loads.
#[test]
fn a_target_without_an_address_for_an_fentry_function() {
    let s = spec("attach_fentry.bpf.o");
    let mut b = common::core_btf::B::new();
    let int = b.int("int", 4, true);
    let proto = b.proto(int, &[]);
    for name in ["bpf_fentry_test1", "security_file_open"] {
        b.add(
            name,
            BtfKind::Func,
            false,
            proto,
            rawbpf::obj::btf::BtfTypeData::None,
        );
    }
    let btf = b.0;
    let mut f = full_target(&s);
    let report = check_on_target(&s, &f, Some(&btf));
    assert!(report.would_load(), "{:?}", report.problems);
    if let Some(e) = f.externs.as_mut() {
        e.btf_funcs_without_address = Some(["bpf_fentry_test1".to_owned()].into());
    }
    let f = Features::from_json(&f.to_json()).unwrap();
    let report = check_on_target(&s, &f, Some(&btf));
    let failed: Vec<_> = report.problems.iter().map(|p| p.program.as_str()).collect();
    assert_eq!(failed.len(), 2, "{:?}", report.problems);
    assert!(
        report.problems.iter().all(|p| p
            .reason
            .contains("the target's kallsyms has no function of that name")),
        "{:?}",
        report.problems
    );
}
