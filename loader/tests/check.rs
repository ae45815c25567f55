//! `check` compares an object's needs with a kernel's features. It is pure,
//! so these tests describe kernels that lack things (as 5.10 does) without
//! booting them.

use rawbpf::obj::btf::BtfKind;
use rawbpf::probe::{check, program_helpers, Feature, Features};
use rawbpf::uapi::{MapType, ProgramType};
use rawbpf::ObjectSpec;

fn spec(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(format!(
        "{}/../programs/obj/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A kernel with everything the objects use.
fn full_kernel(spec: &ObjectSpec) -> Features {
    let mut f = Features {
        kernel: "test".into(),
        btf_global_func: true,
        ..Features::default()
    };
    for t in ProgramType::ALL {
        f.prog_types.insert(*t, Some(true));
    }
    for t in MapType::ALL {
        f.map_types.insert(*t, Some(true));
    }
    for k in rawbpf::probe::PROBED_BTF_KINDS {
        f.btf_kinds.insert(k, true);
    }
    for feat in Feature::ALL {
        f.features.insert(feat, true);
    }
    for (t, ids) in program_helpers(spec) {
        let helpers = f.helpers.entry(t).or_default();
        for id in ids {
            helpers.insert(id, true);
        }
    }
    f
}

fn reasons(spec: &ObjectSpec, f: &Features) -> Vec<String> {
    check(spec, f)
        .problems
        .into_iter()
        .map(|p| format!("{}: {}", p.program, p.reason))
        .collect()
}

#[test]
fn everything_loads_on_a_full_kernel() {
    for name in [
        "pipeline.bpf.o",
        "bpf2bpf_tail.bpf.o",
        "callbacks.bpf.o",
        "map_types.bpf.o",
        "global_data.bpf.o",
    ] {
        let s = spec(name);
        let report = check(&s, &full_kernel(&s));
        assert!(report.would_load(), "{name}: {:?}", report.problems);
    }
}

#[test]
fn a_kernel_without_bpf_loop() {
    let s = spec("callbacks.bpf.o");
    let mut f = full_kernel(&s);
    f.helpers
        .get_mut(&ProgramType::SCHED_CLS)
        .unwrap()
        .insert(181, false);
    assert_eq!(
        reasons(&s, &f),
        ["count_to_ten: helper bpf_loop (#181) is not available to sched_cls programs on this kernel"]
    );
}

#[test]
fn a_kernel_without_tail_calls_from_subprograms() {
    let s = spec("bpf2bpf_tail.bpf.o");
    let mut f = full_kernel(&s);
    f.features.insert(Feature::Bpf2BpfWithTailCalls, false);
    assert_eq!(
        reasons(&s, &f),
        [
            "entry: tail calls in a program with bpf-to-bpf calls need kernel 5.10 (x86-64 JIT)",
            "entry_missing: tail calls in a program with bpf-to-bpf calls need kernel 5.10 (x86-64 JIT)"
        ]
    );
}

#[test]
fn a_kernel_without_global_data_or_a_map_type() {
    let s = spec("global_data.bpf.o");
    let mut f = full_kernel(&s);
    f.features.insert(Feature::GlobalData, false);
    assert_eq!(
        reasons(&s, &f),
        ["count_and_verdict: global data (map value addresses) needs kernel 5.2"]
    );

    let s = spec("map_types.bpf.o");
    let mut f = full_kernel(&s);
    f.map_types.insert(MapType::LRU_HASH, Some(false));
    assert_eq!(
        reasons(&s, &f),
        ["(object): map recent is a lru_hash, which this kernel cannot create"]
    );
}

/// A kernel that lacks some of the object's BTF kinds: the loader rewrites
/// them (sanitization) and keeps the BTF, so global functions still load;
/// only a kernel without BTF FUNC at all loses the BTF, and with it global
/// functions.
#[test]
fn a_kernel_lacking_btf_kinds() {
    let s = spec("pipeline.bpf.o");
    let mut f = full_kernel(&s);
    f.btf_kinds.insert(BtfKind::Datasec, false);
    let report = check(&s, &f);
    assert!(report.would_load());
    assert!(
        report.notes[0].contains("the kernel lacks BTF kinds DATASEC")
            && report.notes[0].contains("keeps the object's BTF"),
        "{:?}",
        report.notes
    );

    let s = spec("bpf2bpf_tail.bpf.o");
    let mut f = full_kernel(&s);
    f.btf_kinds.insert(BtfKind::Datasec, false);
    assert!(
        reasons(&s, &f).is_empty(),
        "sanitized: {:?}",
        reasons(&s, &f)
    );
    f.btf_kinds.insert(BtfKind::Func, false);
    let r = reasons(&s, &f);
    assert!(r.contains(&"stage_b: it calls a global function, which the verifier checks against BTF this kernel refuses".to_owned()), "{r:?}");
}

#[test]
fn core_objects_pass_and_unsupported_program_types_fail() {
    // CO-RE is checked against kernel BTF (probe::check_core), not refused.
    let s = spec("core_reloc.bpf.o");
    assert!(reasons(&s, &full_kernel(&s)).is_empty());
    let s = spec("xdp.bpf.o");
    let mut f = full_kernel(&s);
    f.prog_types.insert(ProgramType::XDP, Some(false));
    assert_eq!(
        reasons(&s, &f),
        ["xdp_drop_port: program type xdp is not supported by this kernel"]
    );
}

/// A helper call behind a `.kconfig` guard that is false on the kernel
/// checked against is dead code the verifier prunes: usdt.bpf.h's
/// `if (LINUX_HAS_BPF_COOKIE) bpf_get_attach_cookie(...)` before 5.15.
#[test]
fn helpers_behind_a_false_kconfig_guard_do_not_count() {
    let s = spec("link_usdt.bpf.o");
    let p = s.program("on_usdt").unwrap();
    let size = s.map(".kconfig").unwrap().value_size as usize;
    let seen = |kconfig: Option<&[u8]>| rawbpf::obj::reach::program_helpers(&s, p, kconfig);
    const GET_ATTACH_COOKIE: u32 = 174;
    assert!(seen(Some(&vec![1; size])).contains(&GET_ATTACH_COOKIE));
    assert!(!seen(Some(&vec![0; size])).contains(&GET_ATTACH_COOKIE));
    assert!(
        seen(None).contains(&GET_ATTACH_COOKIE),
        "unknown: both ways"
    );
    // The rest of the program is seen either way.
    assert!(
        seen(Some(&vec![0; size])).contains(&1),
        "bpf_map_lookup_elem"
    );

    // check with a kernel without the helper: a problem only when the
    // guard lets the call through.
    let mut f = full_kernel(&s);
    f.helpers
        .entry(ProgramType::KPROBE)
        .or_default()
        .insert(GET_ATTACH_COOKIE, false);
    let cookie = rawbpf::probe::check_with_kconfig(&s, &f, Some(&vec![1; size]));
    assert!(!cookie.would_load(), "{:?}", cookie.problems);
    let none = rawbpf::probe::check_with_kconfig(&s, &f, Some(&vec![0; size]));
    assert!(none.would_load(), "{:?}", none.problems);
}
