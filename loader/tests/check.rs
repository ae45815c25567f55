//! `check` compares an object's needs with a kernel's features. It is pure,
//! so these tests describe kernels that lack things (as 5.10 does) without
//! booting them.

mod common;

use rawbpf::obj::btf::BtfKind;
use rawbpf::probe::{check, Feature, Features};
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
    common::full_features(spec, "test")
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

const KTIME_GET_NS: u32 = 5;
const KTIME_GET_COARSE_NS: u32 = 160;
const NO_SUCH_HELPER: u32 = 100_000;

/// A helper call behind a CO-RE guard on `enum bpf_func_id` is dead code
/// where the guard is false, as ksnoop's `bpf_get_func_ip` on 5.10: on the
/// code as relocated for the kernel, the reach pass sees the guard as the
/// constant the load writes, and counts only the branch it takes.
#[test]
fn helpers_behind_a_false_core_guard_do_not_count() {
    use rawbpf::obj::core::relocate;
    use rawbpf::obj::reach::program_helpers;
    let s = spec("core_helper_guard.bpf.o");
    let seen = |btf: &rawbpf::obj::btf::Btf| {
        let (r, _) = relocate(&s, btf).unwrap();
        program_helpers(&r, r.program("guarded_helpers").unwrap(), None)
    };
    let old = seen(&common::core_btf::kernel_func_ids(false));
    assert!(old.contains(&KTIME_GET_NS), "the fallback: {old:?}");
    assert!(!old.contains(&KTIME_GET_COARSE_NS), "{old:?}");
    assert!(!old.contains(&NO_SUCH_HELPER), "{old:?}");
    let new = seen(&common::core_btf::kernel_func_ids(true));
    assert!(new.contains(&KTIME_GET_COARSE_NS), "{new:?}");
    assert!(!new.contains(&KTIME_GET_NS), "{new:?}");
    assert!(!new.contains(&NO_SUCH_HELPER), "no kernel has it: {new:?}");
    // The object's own code says 1 for every guard: every guarded call.
    let own = program_helpers(&s, s.program("guarded_helpers").unwrap(), None);
    assert!(own.contains(&KTIME_GET_COARSE_NS) && own.contains(&NO_SUCH_HELPER));

    // check on a kernel without the helpers: a problem only where the
    // guard lets the call through; with no BTF, as before (every call).
    let mut f = full_kernel(&s);
    let tc = f.helpers.entry(ProgramType::SCHED_CLS).or_default();
    tc.insert(KTIME_GET_COARSE_NS, false);
    tc.insert(NO_SUCH_HELPER, false);
    let check_on = |btf: Option<&rawbpf::obj::btf::Btf>| {
        let types = btf.map(|b| b as &dyn rawbpf::obj::core::TargetTypes);
        rawbpf::probe::check_with_core(&s, &f, None, types)
    };
    let old = check_on(Some(&common::core_btf::kernel_func_ids(false)));
    assert!(old.would_load(), "{:?}", old.problems);
    let needs = &old.needs[0].2;
    assert!(
        needs.contains(&"bpf_ktime_get_ns (#5)".to_owned())
            && !needs
                .iter()
                .any(|n| n.contains("#160") || n.contains("#100000")),
        "{needs:?}"
    );
    let new = check_on(Some(&common::core_btf::kernel_func_ids(true)));
    let p: Vec<&str> = new.problems.iter().map(|p| p.reason.as_str()).collect();
    assert_eq!(
        p,
        ["helper bpf_ktime_get_coarse_ns (#160) is not available to sched_cls programs on this kernel"]
    );
    let unknown = check_on(None);
    assert_eq!(unknown.problems.len(), 2, "{:?}", unknown.problems);
    assert!(
        unknown.problems[1].reason
            == "helper #100000 is not available to sched_cls programs on this kernel",
        "{:?}",
        unknown.problems
    );
}

/// A CO-RE relocation that fails poisons its instruction with a call of
/// an unknown helper: that is a failed relocation (check_core says so),
/// not a helper the program needs.
#[test]
fn a_poisoned_instruction_is_no_helper() {
    let s = spec("core_unguarded.bpf.o");
    let (r, _) = rawbpf::obj::core::relocate(&s, &rawbpf::obj::btf::Btf::new()).unwrap();
    let p = r.program("unguarded_missing").unwrap();
    assert_eq!(
        rawbpf::obj::reach::program_helpers(&r, p, None),
        Default::default()
    );
}
