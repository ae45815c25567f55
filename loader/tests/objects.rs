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
