//! CO-RE field relocations against hand-built BTF, each kind as libbpf's
//! relo_core.c computes it: byte offsets, flavors, missing and incompatible
//! members, anonymous unions, arrays, bitfields and enum values. The type
//! relocations, candidates and instruction patching are in core_patching.rs.

mod common;

use rawbpf::obj::core::{self, CoreError, CoreReloKind};

use common::core_btf::*;
use CoreReloKind::*;

#[test]
fn byte_offset_follows_a_moved_member() {
    let local = foo_local();
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let int = t.int("int", 4, true);
    t.strukt("foo", 16, &[("x", long, 0), ("b", int, 64), ("a", int, 96)]);
    let (f, patched) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(f.description, "struct foo::b (0:1)");
    let v = values(&f);
    assert_eq!((v.local, v.target, v.mem_size), (4, 8, None));
    assert_eq!(v.target_type.as_ref().map(|t| t.id), Some(3));
    assert_eq!(patched.unwrap()[0], ldx(4, 0, 1, 8));

    let (f, _) = run(
        &local.0,
        &t.0,
        &[mov64(0, 4)],
        relo(0, 2, "0:1", FieldByteSize),
    );
    assert_eq!((values(&f).local, values(&f).target), (4, 4));
    let (f, patched) = run(
        &local.0,
        &t.0,
        &[mov64(0, 1)],
        relo(0, 2, "0:0", FieldExists),
    );
    assert_eq!((values(&f).local, values(&f).target), (1, 1));
    assert_eq!(patched.unwrap()[0], mov64(0, 1));
    let (f, _) = run(
        &local.0,
        &t.0,
        &[mov64(0, 1)],
        relo(0, 2, "0:0", FieldSigned),
    );
    assert_eq!(values(&f).target, 1);
}

#[test]
fn a_flavor_matches_the_plain_name() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    l.strukt(
        "task_struct___old",
        8,
        &[("state", int, 0), ("pid", int, 32)],
    );
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt(
        "task_struct",
        64,
        &[("pid", int, 8 * 40), ("state", int, 0)],
    );
    let (f, patched) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(f.description, "struct task_struct___old::pid (0:1)");
    assert_eq!(values(&f).target, 40);
    assert_eq!(patched.unwrap()[0].off, 40);
}

#[test]
fn a_missing_member_is_zero_for_exists_and_a_poison_otherwise() {
    let local = foo_local();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo", 4, &[("a", int, 0)]);

    let (f, patched) = run(
        &local.0,
        &t.0,
        &[mov64(2, 1)],
        relo(0, 2, "0:1", FieldExists),
    );
    let v = values(&f);
    assert_eq!((v.local, v.target, v.target_type.clone()), (1, 0, None));
    assert_eq!(patched.unwrap()[0], mov64(2, 0));

    let (f, patched) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    let (reason, poisoned) = failure(&f);
    assert!(poisoned);
    assert_eq!(
        reason,
        "no candidate: struct foo has no member b in the kernel"
    );
    assert_eq!(patched.unwrap(), vec![POISON, EXIT]);

    // No struct foo at all.
    let mut t = B::new();
    t.int("int", 4, true);
    let (f, _) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(
        failure(&f),
        ("no candidate: the kernel has no struct foo", true)
    );
    // A union foo is not a candidate of struct foo.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.union("foo", 4, &[("a", int, 0), ("b", int, 0)]);
    let (f, _) = run(
        &local.0,
        &t.0,
        &[mov64(0, 1)],
        relo(0, 2, "0:1", FieldExists),
    );
    assert_eq!(values(&f).target, 0);
}

#[test]
fn an_incompatible_member_does_not_match() {
    let local = foo_local();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let inner = t.strukt("bar", 4, &[("z", int, 0)]);
    t.strukt("foo", 8, &[("a", int, 0), ("b", inner, 32)]);
    let (f, _) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(
        failure(&f),
        (
            "no candidate: struct foo::b is struct bar in the kernel but int in the object",
            true
        )
    );
}

#[test]
fn members_are_found_through_anonymous_unions() {
    // Local: struct s { int x; union { int a; int b; }; } — b is 0:1:1 at 4.
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let u = l.union("", 4, &[("a", int, 0), ("b", int, 0)]);
    let s = l.strukt("s", 8, &[("x", int, 0), ("", u, 32)]);
    // Target: struct s { long pad; int x; struct { int q; union { int a; int b; }; }; }
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let long = t.int("long", 8, true);
    let u = t.union("", 4, &[("b", int, 0), ("a", int, 0)]);
    let anon = t.strukt("", 8, &[("q", int, 0), ("", u, 32)]);
    t.strukt(
        "s",
        24,
        &[("pad", long, 0), ("x", int, 64), ("", anon, 128)],
    );
    let (f, patched) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, s, "0:1:1", FieldByteOffset),
    );
    assert_eq!(f.description, "struct s::b (0:1:1)");
    assert_eq!(values(&f).target, 16 + 4);
    assert_eq!(patched.unwrap()[0].off, 20);
}

#[test]
fn array_elements_and_bounds() {
    // struct s { int pad; int arr[4]; }; arr[3] is 0:1:3 at 4 + 12.
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let arr = l.array(int, 4);
    let s = l.strukt("s", 20, &[("pad", int, 0), ("arr", arr, 32)]);
    let access = |a: &str, k| relo(0, s, a, k);
    // Target: arr moved to 8 and twice as long.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let arr8 = t.array(int, 8);
    t.strukt("s", 40, &[("pad", int, 0), ("arr", arr8, 64)]);
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 16)],
        access("0:1:3", FieldByteOffset),
    );
    assert_eq!(f.description, "struct s::arr[3] (0:1:3)");
    assert_eq!((values(&f).local, values(&f).target), (16, 20));
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        access("0:1:0", FieldByteOffset),
    );
    assert_eq!(values(&f).target, 8);
    // The whole array's size, and an element's.
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 16)], access("0:1", FieldByteSize));
    assert_eq!(values(&f).target, 32);
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 4)], access("0:1:2", FieldByteSize));
    assert_eq!(values(&f).target, 4);
    // A shorter target array: index 3 is out of its bounds.
    let mut t2 = B::new();
    let int = t2.int("int", 4, true);
    let arr2 = t2.array(int, 2);
    t2.strukt("s", 12, &[("pad", int, 0), ("arr", arr2, 32)]);
    let (f, _) = run(
        &l.0,
        &t2.0,
        &[ldx(4, 0, 1, 16)],
        access("0:1:3", FieldByteOffset),
    );
    assert_eq!(
        failure(&f),
        (
            "no candidate: struct s::arr has 2 elements in the kernel, index 3 is out of bounds",
            true
        )
    );
    let (f, _) = run(&l.0, &t2.0, &[mov64(0, 1)], access("0:1:3", FieldExists));
    assert_eq!(values(&f).target, 0);
    // The root index: (&s[2])->pad.
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 40)],
        access("2:0", FieldByteOffset),
    );
    assert_eq!(f.description, "struct s[2]::pad (2:0)");
    assert_eq!((values(&f).local, values(&f).target), (40, 80));
    // A signedness or shift relocation of an array element is meaningless.
    assert!(core::validate(&l.0, &access("0:1:3", FieldSigned))
        .unwrap_err()
        .contains("cannot apply to an array element"));
}

#[test]
fn flexible_arrays_take_any_index() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let flex = l.array(int, 0);
    let s = l.strukt("msg", 4, &[("len", int, 0), ("data", flex, 32)]);
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let long = t.int("long", 8, true);
    let flex = t.array(int, 0);
    t.strukt(
        "msg",
        16,
        &[("len", int, 0), ("id", long, 64), ("data", flex, 128)],
    );
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(4, 0, 1, 4 + 4 * 9)],
        relo(0, s, "0:1:9", FieldByteOffset),
    );
    assert_eq!(values(&f).target, 16 + 4 * 9);
    // A zero-length array that is not the last member is no flexible array.
    let mut l2 = B::new();
    let int = l2.int("int", 4, true);
    let zero = l2.array(int, 0);
    let s2 = l2.strukt("msg", 8, &[("data", zero, 0), ("len", int, 0)]);
    assert!(
        core::validate(&l2.0, &relo(0, s2, "0:0:1", FieldByteOffset))
            .unwrap_err()
            .contains("index 1 is out of bounds of struct msg::data (0 elements)")
    );
}

#[test]
fn bitfields_follow_libbpfs_formulas() {
    // Local: struct bf { u32 a:3; u32 b:5; u32 c:20; } (kind_flag layout).
    let mut l = B::new();
    let u32_ = l.int("u32", 4, false);
    let bf = l.bitfields(
        "bf",
        4,
        &[("a", u32_, 0, 3), ("b", u32_, 3, 5), ("c", u32_, 8, 20)],
    );
    // Target: struct bf { u64 x; u32 a:3; u32 pad:7; u32 b:5; s32 c:20; }:
    // c at bit 64 + 15 = 79.
    let mut t = B::new();
    let u32_ = t.int("u32", 4, false);
    let s32 = t.int("s32", 4, true);
    let u64_ = t.int("u64", 8, false);
    t.bitfields(
        "bf",
        16,
        &[
            ("x", u64_, 0, 0),
            ("a", u32_, 64, 3),
            ("pad", u32_, 67, 7),
            ("b", u32_, 74, 5),
            ("c", s32, 79, 20),
        ],
    );
    let c = |k| relo(0, bf, "0:2", k);
    // Local c: bit_off 8, bit_sz 20 in a 4-byte unit: byte_off 8/8/4*4 = 0,
    // 8 + 20 - 0 <= 32 so byte_sz 4; lshift 64 - (8 + 20 - 0) = 36; rshift 64 - 20 = 44.
    // Target c: bit_off 79: byte_off 79/8/4*4 = 8, but 79 + 20 - 64 = 35 > 32,
    // so byte_sz 8, byte_off 79/8/8*8 = 8; 35 <= 64; lshift 64 - 35 = 29.
    let expect = [
        (FieldByteOffset, 0, 8),
        (FieldByteSize, 4, 8),
        (FieldLshiftU64, 36, 29),
        (FieldRshiftU64, 44, 44),
        (FieldSigned, 0, 1),
    ];
    for (kind, local, target) in expect {
        let (f, patched) = run(&l.0, &t.0, &[mov64(1, local as i32)], c(kind));
        let v = values(&f);
        assert_eq!((v.local, v.target), (local, target), "{}", kind.name());
        assert_eq!(patched.unwrap()[0].imm, target as i32, "{}", kind.name());
    }
    // The compiler may load a bitfield differently: offsets and sizes are not
    // checked against the instruction, signedness and right shifts are.
    let (f, patched) = run(&l.0, &t.0, &[mov64(1, 123)], c(FieldByteSize));
    assert!(!values(&f).validate);
    assert_eq!(patched.unwrap()[0].imm, 8);
    let mut spec = object(&l.0, vec![mov64(1, 7), EXIT], vec![c(FieldRshiftU64)]);
    let err = core::plan(&spec, &t.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "function prog: CO-RE relocation at instruction 0 (rshift_u64 struct bf::c (0:2)): the instruction's immediate is 7, but the object's BTF says 44"
    );
    assert!(matches!(err, CoreError::Invalid { insn: 0, .. }));
    spec.programs[0].function.insns[0] = mov64(1, 44);
    assert!(core::plan(&spec, &t.0).is_ok());
}

#[test]
fn a_bitfield_wider_than_a_load_is_refused() {
    // u64 x:60 at bit 8: 8 + 60 > 64 whatever the load.
    let mut l = B::new();
    let u64_ = l.int("u64", 8, false);
    let s = l.bitfields("wide", 16, &[("x", u64_, 8, 60)]);
    assert_eq!(
        core::validate(&l.0, &relo(0, s, "0:0", FieldByteOffset)).unwrap_err(),
        "bitfield struct wide::x cannot be read with one 64-bit load"
    );
    // Fine locally, too wide in the kernel: libbpf refuses the object.
    let mut l = B::new();
    let u64_ = l.int("u64", 8, false);
    let s = l.bitfields("wide", 8, &[("x", u64_, 0, 60)]);
    let mut t = B::new();
    let u64_ = t.int("u64", 8, false);
    t.bitfields("wide", 16, &[("x", u64_, 8, 60)]);
    let (f, patched) = run(
        &l.0,
        &t.0,
        &[mov64(0, 0)],
        relo(0, s, "0:0", FieldByteOffset),
    );
    let (reason, poisoned) = failure(&f);
    assert!(!poisoned);
    assert_eq!(
        reason,
        "in the kernel's BTF: bitfield struct wide::x cannot be read with one 64-bit load"
    );
    assert!(patched.is_none(), "apply refuses");
}

#[test]
fn enum_values_and_their_existence() {
    let mut l = B::new();
    let e = l.enum32(
        "color",
        false,
        &[("RED", 1), ("GREEN", 2), ("BLUE___v2", 3)],
    );
    let mut t = B::new();
    t.enum32("color", false, &[("GREEN", 5), ("RED", 1)]);
    let [a, b] = ld_imm64(1, 2);
    let (f, patched) = run(&l.0, &t.0, &[a, b], relo(0, e, "1", EnumvalValue));
    assert_eq!(f.description, "enum color::GREEN (1)");
    assert_eq!((values(&f).local, values(&f).target), (2, 5));
    let p = patched.unwrap();
    assert_eq!((p[0].imm, p[1].imm), (5, 0));
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 1)], relo(0, e, "0", EnumvalExists));
    assert_eq!(values(&f).target, 1);
    // BLUE (a flavored enumerator name) is missing: exists 0, value poisoned,
    // both halves of the ld_imm64.
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 1)], relo(0, e, "2", EnumvalExists));
    assert_eq!(values(&f).target, 0);
    let [a, b] = ld_imm64(1, 3);
    let (f, patched) = run(&l.0, &t.0, &[a, b], relo(0, e, "2", EnumvalValue));
    assert_eq!(
        failure(&f),
        (
            "no candidate: enum color has no enumerator BLUE___v2 in the kernel",
            true
        )
    );
    assert_eq!(patched.unwrap(), vec![POISON, POISON, EXIT]);
    // A 32-bit enumerator is sign-extended, as libbpf reads it.
    let mut t = B::new();
    t.enum32("color", true, &[("GREEN", -2)]);
    let [a, b] = ld_imm64(1, 2);
    let (f, patched) = run(&l.0, &t.0, &[a, b], relo(0, e, "1", EnumvalValue));
    assert_eq!(values(&f).target, (-2i64) as u64);
    let p = patched.unwrap();
    assert_eq!((p[0].imm, p[1].imm), (-2, -1));
}

#[test]
fn enum64_and_enum_are_interchangeable() {
    let mut l = B::new();
    let e = l.enum64("big", false, &[("SMALL", 1), ("HUGE", 1 << 40)]);
    let [a, b] = ld_imm64(3, 1 << 40);
    let mut t = B::new();
    t.enum64("big", false, &[("HUGE", (1 << 41) + 5)]);
    let (f, patched) = run(&l.0, &t.0, &[a, b], relo(0, e, "1", EnumvalValue));
    assert_eq!(values(&f).target, (1 << 41) + 5);
    let p = patched.unwrap();
    assert_eq!((p[0].imm, p[1].imm), (5, 1 << 9));
    // The kernel's enum is 32-bit now.
    let mut t = B::new();
    t.enum32("big", false, &[("HUGE", 7)]);
    let (f, _) = run(&l.0, &t.0, &[a, b], relo(0, e, "1", EnumvalValue));
    assert_eq!(values(&f).target, 7);
    // The value the instruction holds is checked across both halves.
    let [a, b] = ld_imm64(3, 1 << 41);
    let spec = object(&l.0, vec![a, b, EXIT], vec![relo(0, e, "1", EnumvalValue)]);
    assert!(core::plan(&spec, &t.0)
        .unwrap_err()
        .to_string()
        .ends_with("the instruction's 64-bit immediate is 2199023255552, but the object's BTF says 1099511627776"));
}
