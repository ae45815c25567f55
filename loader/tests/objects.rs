//! The committed objects parse into the spec their sources declare.

use rawbpf::obj::{MapOrigin, RelocTarget, SlotTarget};
use rawbpf::uapi::{MapType, ProgramType};
use rawbpf::ObjectSpec;

const OBJ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj");

fn spec(name: &str) -> ObjectSpec {
    ObjectSpec::from_file(format!("{OBJ_DIR}/{name}")).unwrap_or_else(|e| panic!("{e}"))
}

fn slots(spec: &ObjectSpec, map: &str) -> Vec<(u32, SlotTarget)> {
    spec.map(map)
        .unwrap_or_else(|| panic!("no map {map}"))
        .initial_slots
        .iter()
        .map(|s| (s.index, s.target.clone()))
        .collect()
}

fn prog(name: &str) -> SlotTarget {
    SlotTarget::Program(name.into())
}

/// The facts of the shipped pipeline, whatever the compiler settings.
fn check_pipeline(file: &str, with_btf: bool) {
    let s = spec(file);
    let names: Vec<_> = s.programs.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["mark_packet", "inspect_and_drop"], "{file}");
    for p in &s.programs {
        assert_eq!(p.prog_type, ProgramType::SCHED_CLS, "{file}");
        assert_eq!(p.section(), "tc");
        assert_eq!(p.attach_type, None);
        assert!(p.subprograms.is_empty());
        assert_eq!(p.function.btf_func_id.is_some(), with_btf, "{file}");
        assert_eq!(!p.function.line_info.is_empty(), with_btf, "{file}");
    }
    assert_eq!(s.license, "GPL");
    let pa = s.map("prog_array").expect("prog_array");
    assert_eq!(pa.map_type, MapType::PROG_ARRAY);
    assert_eq!((pa.key_size, pa.value_size, pa.max_entries), (4, 4, 2));
    assert_eq!(pa.origin, MapOrigin::Btf);
    assert_eq!(
        slots(&s, "prog_array"),
        [(0, prog("mark_packet")), (1, prog("inspect_and_drop"))]
    );
    let mark = s.program("mark_packet").unwrap();
    let relocs: Vec<_> = mark
        .function
        .relocations
        .iter()
        .map(|r| &r.target)
        .collect();
    assert_eq!(
        relocs,
        [&RelocTarget::Map {
            map: "prog_array".into()
        }]
    );
    let at = mark.function.relocations[0].insn;
    assert!(mark.function.insns[at].is_ld_imm64());
    assert!(s
        .program("inspect_and_drop")
        .unwrap()
        .function
        .relocations
        .is_empty());
}

#[test]
fn pipeline() {
    check_pipeline("pipeline.bpf.o", true);
}

#[test]
fn pipeline_built_for_other_cpus() {
    check_pipeline("pipeline.v1.bpf.o", true);
    check_pipeline("pipeline.v2.bpf.o", true);
}

#[test]
fn bpf2bpf_calls_with_tail_calls() {
    let s = spec("bpf2bpf_tail.bpf.o");
    let subs = |p: &str| s.program(p).unwrap().subprograms.clone();
    assert_eq!(subs("entry"), ["tail_from_subprog", "add"]);
    assert_eq!(subs("entry_missing"), ["tail_from_subprog", "add"]);
    assert_eq!(subs("stage_a"), ["add"]);
    assert_eq!(subs("stage_b"), ["classify", "add"]);
    let classify = s.subprogram("classify").unwrap();
    assert!(classify.global);
    assert!(classify.btf_func_id.is_some());
    let tail = s.subprogram("tail_from_subprog").unwrap();
    assert!(!tail.global);
    let targets: Vec<_> = tail.relocations.iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        [
            RelocTarget::Map {
                map: "jmp_table".into()
            },
            RelocTarget::Call {
                function: "add".into()
            }
        ]
    );
    assert_eq!(
        slots(&s, "jmp_table"),
        [(0, prog("stage_a")), (1, prog("stage_b"))]
    );
    // Every call instruction has a relocation that names its callee.
    for f in s.programs.iter().map(|p| &p.function).chain(&s.subprograms) {
        for (i, insn) in f.insns.iter().enumerate() {
            if insn.is_pseudo_call() {
                assert!(f.relocations.iter().any(|r| r.insn == i), "{}+{i}", f.name);
            }
        }
    }
}

#[test]
fn global_data() {
    let s = spec("global_data.bpf.o");
    let rodata = s.map(".rodata").unwrap();
    assert!(rodata.is_rodata());
    assert_eq!(rodata.flags, rawbpf::uapi::BPF_F_RDONLY_PROG);
    // cfg_verdict = 3, cfg_step = 1
    assert_eq!(rodata.data.as_deref(), Some(&[3, 0, 0, 0, 1, 0, 0, 0][..]));
    let data = s.map(".data").unwrap();
    assert_eq!(data.data.as_deref(), Some(&[5, 0, 0, 0][..]));
    let bss = s.map(".bss").unwrap();
    assert_eq!((bss.value_size, bss.data.is_none()), (24, true));
    for m in [rodata, data, bss] {
        assert_eq!(
            (m.map_type, m.key_size, m.max_entries),
            (MapType::ARRAY, 4, 1)
        );
        assert_eq!(m.origin, MapOrigin::GlobalData);
        assert_ne!(m.btf_value_type_id, 0, "{} has a DATASEC", m.name);
    }
    let p = s.program("count_and_verdict").unwrap();
    let values: Vec<_> = p
        .function
        .relocations
        .iter()
        .filter_map(|r| match &r.target {
            RelocTarget::MapValue { map, offset } => Some((map.as_str(), *offset)),
            _ => None,
        })
        .collect();
    // bss_runs, bss_bytes, the static local_runs (through the section symbol),
    // cfg_step, data_counter, cfg_verdict.
    for want in [
        (".bss", 0),
        (".bss", 8),
        (".bss", 16),
        (".rodata", 4),
        (".data", 0),
        (".rodata", 0),
    ] {
        assert!(values.contains(&want), "{want:?} in {values:?}");
    }
}

#[test]
fn legacy_maps_with_and_without_btf() {
    for (file, btf) in [
        ("legacy_maps.bpf.o", true),
        ("legacy_maps.nobtf.bpf.o", false),
    ] {
        let s = spec(file);
        assert_eq!(s.btf.is_some(), btf, "{file}");
        let counts = s.map("legacy_counts").unwrap();
        assert_eq!(counts.origin, MapOrigin::Legacy);
        assert_eq!(
            (
                counts.map_type,
                counts.key_size,
                counts.value_size,
                counts.max_entries
            ),
            (MapType::HASH, 4, 8, 16)
        );
        let config = s.map("legacy_config").unwrap();
        assert_eq!((config.map_type, config.value_size), (MapType::ARRAY, 4));
        let p = s.program("legacy_count").unwrap();
        assert_eq!(
            (p.prog_type, p.section()),
            (ProgramType::SCHED_CLS, "classifier")
        );
        let maps: Vec<_> = p
            .function
            .relocations
            .iter()
            .map(|r| r.target.clone())
            .collect();
        assert!(maps.contains(&RelocTarget::Map {
            map: "legacy_config".into()
        }));
        assert!(maps.contains(&RelocTarget::Map {
            map: "legacy_counts".into()
        }));
        assert_eq!(p.function.func_info.is_empty(), !btf);
    }
}

#[test]
fn map_types_and_map_in_map() {
    let s = spec("map_types.bpf.o");
    let outer = s.map("outer").unwrap();
    assert_eq!(outer.map_type, MapType::ARRAY_OF_MAPS);
    assert_eq!(
        (outer.key_size, outer.value_size, outer.max_entries),
        (4, 4, 2)
    );
    let inner = outer.inner.as_deref().expect("inner template");
    assert_eq!(inner.name, "outer.inner");
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (MapType::ARRAY, 4, 4, 1)
    );
    let map = |n: &str| SlotTarget::Map(n.into());
    assert_eq!(
        slots(&s, "outer"),
        [(0, map("inner_a")), (1, map("inner_b"))]
    );
    assert_eq!(slots(&s, "outer_hash"), [(2, map("inner_a"))]);
    assert_eq!(s.map("outer_hash").unwrap().map_type, MapType::HASH_OF_MAPS);
    let flows = s.map("flows").unwrap();
    assert_eq!(
        (flows.map_type, flows.flags, flows.value_size),
        (MapType::HASH, 1, 8)
    );
    assert_eq!(
        s.map("percpu_stats").unwrap().map_type,
        MapType::PERCPU_ARRAY
    );
    assert_eq!(s.map("recent").unwrap().map_type, MapType::LRU_HASH);
    assert_eq!(
        s.map("pinned_counter").unwrap().pinning,
        rawbpf::obj::Pinning::ByName
    );
    assert_eq!(s.map("flows").unwrap().pinning, rawbpf::obj::Pinning::None);
    let btf = s.btf.as_ref().unwrap();
    assert_eq!(btf.type_name(flows.btf_key_type_id).unwrap(), "__u32");
}

#[test]
fn xdp_socket_and_tail_chain() {
    let s = spec("xdp.bpf.o");
    let p = s.program("xdp_drop_port").unwrap();
    assert_eq!(
        (p.prog_type, p.attach_type),
        (ProgramType::XDP, Some(rawbpf::uapi::AttachType::XDP))
    );
    assert_eq!(s.license, "Dual MIT/GPL");
    assert_eq!(
        s.map(".rodata").unwrap().data.as_deref(),
        Some(&4242u16.to_le_bytes()[..])
    );

    let s = spec("socket_filter.bpf.o");
    assert_eq!(
        s.program("socket_len").unwrap().prog_type,
        ProgramType::SOCKET_FILTER
    );

    let s = spec("tail_chain.bpf.o");
    assert_eq!(slots(&s, "chain"), [(0, prog("chain_step"))]);
}

#[test]
fn section_names() {
    use rawbpf::uapi::AttachType as A;
    use ProgramType as P;
    let s = spec("sections.bpf.o");
    /// (program, section, type, attach type, attach target)
    type Row = (
        &'static str,
        &'static str,
        P,
        Option<A>,
        Option<&'static str>,
    );
    let expect: &[Row] = &[
        (
            "on_kprobe",
            "kprobe/do_sys_openat2",
            P::KPROBE,
            None,
            Some("do_sys_openat2"),
        ),
        (
            "on_kretprobe",
            "kretprobe/do_sys_openat2",
            P::KPROBE,
            None,
            Some("do_sys_openat2"),
        ),
        (
            "on_tracepoint",
            "tracepoint/syscalls/sys_enter_openat",
            P::TRACEPOINT,
            None,
            Some("syscalls/sys_enter_openat"),
        ),
        (
            "on_raw_tracepoint",
            "raw_tracepoint/sys_enter",
            P::RAW_TRACEPOINT,
            None,
            Some("sys_enter"),
        ),
        (
            "on_cgroup_ingress",
            "cgroup_skb/ingress",
            P::CGROUP_SKB,
            Some(A::CGROUP_INET_INGRESS),
            None,
        ),
        (
            "on_cgroup_egress",
            "cgroup_skb/egress",
            P::CGROUP_SKB,
            Some(A::CGROUP_INET_EGRESS),
            None,
        ),
        ("on_classifier", "classifier", P::SCHED_CLS, None, None),
        (
            "on_tcx_ingress",
            "tc/ingress",
            P::SCHED_CLS,
            Some(A::TCX_INGRESS),
            None,
        ),
        (
            "on_tcx_egress",
            "tcx/egress",
            P::SCHED_CLS,
            Some(A::TCX_EGRESS),
            None,
        ),
        ("on_xdp", "xdp", P::XDP, Some(A::XDP), None),
        ("on_socket", "socket", P::SOCKET_FILTER, None, None),
        ("on_perf_event", "perf_event", P::PERF_EVENT, None, None),
        (
            "on_cgroup_sock",
            "cgroup/sock",
            P::CGROUP_SOCK,
            Some(A::CGROUP_INET_SOCK_CREATE),
            None,
        ),
    ];
    assert_eq!(s.programs.len(), expect.len());
    for &(name, section, ty, attach, target) in expect {
        let p = s.program(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(
            (
                p.section(),
                p.prog_type,
                p.attach_type,
                p.attach_target.as_deref()
            ),
            (section, ty, attach, target),
            "{name}"
        );
    }
}

/// Every committed object parses, and its .BTF re-encodes byte for byte.
#[test]
fn every_object_parses_and_btf_round_trips() {
    use object::{Object, ObjectSection};
    let mut seen = 0;
    for entry in std::fs::read_dir(OBJ_DIR).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let s = ObjectSpec::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!s.programs.is_empty(), "{}", path.display());
        let file = object::File::parse(&*bytes).unwrap();
        if let Some(section) = file.section_by_name(".BTF") {
            let raw = section.data().unwrap();
            let btf = rawbpf::obj::btf::Btf::parse(raw).unwrap();
            assert_eq!(btf.to_bytes(), raw, "{}", path.display());
            // The file's types come first, of the same kinds; extern fixups
            // may append libbpf's dummy_ksym VAR (kfuncs in .ksyms).
            let parsed = s.btf.as_ref().unwrap();
            assert!(parsed.len() >= btf.len(), "{}", path.display());
            for (id, t) in btf.types() {
                assert_eq!(parsed.type_by_id(id).unwrap().kind, t.kind);
            }
            for (id, _) in parsed.types().skip(btf.len() as usize) {
                assert_eq!(parsed.type_name(id).unwrap(), "dummy_ksym");
            }
        }
        seen += 1;
    }
    assert!(seen >= 13, "only {seen} objects");
}

/// DATASEC sizes and variable offsets are filled in from the ELF file
/// (clang leaves them 0, which the kernel refuses).
#[test]
fn datasecs_are_fixed_up() {
    use rawbpf::obj::btf::BtfTypeData;
    let s = spec("global_data.bpf.o");
    let btf = s.btf.as_ref().unwrap();
    let bss = s.map(".bss").unwrap();
    let t = btf.type_by_id(bss.btf_value_type_id).unwrap();
    assert_eq!(t.size_or_type, 24);
    let BtfTypeData::Datasec(vars) = &t.data else {
        panic!("not a DATASEC")
    };
    let layout: Vec<_> = vars
        .iter()
        .map(|v| (btf.type_name(v.type_id).unwrap(), v.offset, v.size))
        .collect();
    assert_eq!(
        layout,
        [
            ("bss_runs", 0, 8),
            ("bss_bytes", 8, 8),
            ("local_runs", 16, 8)
        ]
    );
}

/// Linking lays subprograms after the program and points every call at its
/// callee's new start.
#[test]
fn linking_fixes_calls() {
    let s = spec("bpf2bpf_tail.bpf.o");
    let p = s.program("entry").unwrap();
    let linked = p.link(&s).unwrap();
    let entry_len = p.function.insns.len();
    let tail_len = s.subprogram("tail_from_subprog").unwrap().insns.len();
    let add_len = s.subprogram("add").unwrap().insns.len();
    assert_eq!(linked.insns.len(), entry_len + tail_len + add_len);
    // Follow each call to where it lands: the start of the right function.
    let lands = |at: usize| (at as i64 + 1 + i64::from(linked.insns[at].imm)) as usize;
    let calls: Vec<usize> = (0..linked.insns.len())
        .filter(|&i| linked.insns[i].is_pseudo_call())
        .map(lands)
        .collect();
    assert_eq!(calls, [entry_len, entry_len + tail_len]);
    // One func_info per function, at its start.
    let starts: Vec<u32> = linked.func_info.iter().map(|f| f.insn_off).collect();
    assert_eq!(starts, [0, entry_len as u32, (entry_len + tail_len) as u32]);
    // The tail call's map reference moved with its subprogram.
    assert_eq!(linked.map_refs.len(), 1);
    assert_eq!(linked.map_refs[0].map, "jmp_table");
    assert!(linked.map_refs[0].insn >= entry_len);
    assert!(linked.insns[linked.map_refs[0].insn].is_ld_imm64());
}

/// A callback's address is a relocation to a .text function, which the
/// program then needs; string literals make a .rodata.str1.1 data map.
#[test]
fn callbacks_and_string_literals() {
    let s = spec("callbacks.bpf.o");
    let p = s.program("count_to_ten").unwrap();
    assert_eq!(p.subprograms, ["add_one"]);
    let targets: Vec<_> = p
        .function
        .relocations
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        targets,
        [RelocTarget::FuncAddr {
            function: "add_one".into()
        }]
    );
    let linked = p.link(&s).unwrap();
    let at = p.function.relocations[0].insn;
    assert_eq!(linked.insns[at].src(), rawbpf::uapi::insn::PSEUDO_FUNC);
    let lands = (at as i64 + 1 + i64::from(linked.insns[at].imm)) as usize;
    assert_eq!(
        lands,
        p.function.insns.len(),
        "points at add_one, appended after the program"
    );
    let strings = s.map(".rodata.str1.1").unwrap();
    assert!(strings.is_rodata());
    assert_eq!(strings.data.as_deref(), Some(&b"len %d\n\0"[..]));
}

#[test]
fn core_relocations_are_counted() {
    assert_eq!(spec("core_reloc.bpf.o").core_relocations, 1);
    assert_eq!(spec("pipeline.bpf.o").core_relocations, 0);
}
