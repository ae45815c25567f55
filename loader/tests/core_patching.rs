//! CO-RE relocation against hand-built BTF: type relocations, candidate
//! selection, and the instruction patching and poisoning (field relocations
//! are in core.rs).

mod common;

use rawbpf::obj::btf::{Btf, BtfType};
use rawbpf::obj::core::{self, CoreError, CoreReloKind, MemSize, TargetTypes};
use rawbpf::uapi::Insn;
use rawbpf::ObjectSpec;

use common::core_btf::*;
use CoreReloKind::*;

#[test]
fn type_relocations() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let foo = l.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
    let td = l.typedef("foo_t", foo);
    let mut t = B::new();
    let long = t.int("long", 8, true);
    let tfoo = t.strukt("foo", 16, &[("a", long, 0), ("b", long, 64)]);
    let ttd = t.typedef("foo_t", tfoo);

    let (f, patched) = run(&l.0, &t.0, &[mov64(0, 8)], relo(0, foo, "0", TypeSize));
    assert_eq!(f.description, "struct foo (0)");
    assert_eq!((values(&f).local, values(&f).target), (8, 16));
    assert_eq!(patched.unwrap()[0].imm, 16);
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 8)], relo(0, td, "0", TypeSize));
    assert_eq!(f.description, "typedef foo_t (0)");
    assert_eq!(values(&f).target, 16);
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 1)], relo(0, td, "0", TypeExists));
    assert_eq!(values(&f).target, 1);
    // target_type_id: the kernel's id, not checked against the instruction.
    let (f, patched) = run(&l.0, &t.0, &[mov64(0, 99)], relo(0, td, "0", TypeIdTarget));
    assert_eq!(values(&f).target, u64::from(ttd));
    assert_eq!(patched.unwrap()[0].imm, ttd as i32);
    // local_type_id: the object's id; no target needed.
    let (f, patched) = run(
        &l.0,
        &t.0,
        &[mov64(0, 1234)],
        relo(0, foo, "0", TypeIdLocal),
    );
    assert_eq!(
        (values(&f).target, values(&f).target_type.clone()),
        (u64::from(foo), None)
    );
    assert_eq!(patched.unwrap()[0].imm, foo as i32);
    // type_matches: the members' types must match too (int vs long do not).
    let (f, _) = run(&l.0, &t.0, &[mov64(0, 1)], relo(0, foo, "0", TypeMatches));
    assert_eq!(values(&f).target, 0);
    let mut t2 = B::new();
    let int = t2.int("int", 4, true);
    t2.strukt("foo", 12, &[("z", int, 0), ("b", int, 32), ("a", int, 64)]);
    let (f, _) = run(&l.0, &t2.0, &[mov64(0, 1)], relo(0, foo, "0", TypeMatches));
    assert_eq!(values(&f).target, 1);
    // A missing type: exists, size and target id are 0 (libbpf), not failures.
    let empty = B::new();
    for kind in [TypeExists, TypeSize, TypeIdTarget, TypeMatches] {
        let local = if kind == TypeSize { 8 } else { 1 };
        let (f, patched) = run(&l.0, &empty.0, &[mov64(0, local)], relo(0, foo, "0", kind));
        assert_eq!(values(&f).target, 0, "{}", kind.name());
        assert_eq!(patched.unwrap()[0].imm, 0);
    }
    // A struct is not a typedef's candidate.
    let mut t3 = B::new();
    let int = t3.int("int", 4, true);
    t3.strukt("foo_t", 4, &[("a", int, 0)]);
    let (f, _) = run(&l.0, &t3.0, &[mov64(0, 1)], relo(0, td, "0", TypeExists));
    assert_eq!(values(&f).target, 0);
}

#[test]
fn type_compatibility_and_matching_rules() {
    // typedef int (*handler_t)(struct sk *, unsigned long);
    let build = |param: &str, psize: u32, fwd: bool| {
        let mut b = B::new();
        let int = b.int("int", 4, true);
        let p = b.int(param, psize, false);
        let sk = if fwd {
            b.fwd("sk", false)
        } else {
            b.strukt("sk", 4, &[("x", int, 0)])
        };
        let psk = b.ptr(sk);
        let proto = b.proto(int, &[psk, p]);
        let fptr = b.ptr(proto);
        let td = b.typedef("handler_t", fptr);
        (b, td)
    };
    let (l, td) = build("unsigned long", 8, false);
    let (t_same, _) = build("unsigned long", 8, false);
    let (t_fwd, _) = build("unsigned long", 8, true);
    let (t_narrow, _) = build("unsigned int", 4, false);
    let exists = |t: &B, kind| {
        let (f, _) = run(&l.0, &t.0, &[mov64(0, 1)], relo(0, td, "0", kind));
        values(&f).target
    };
    assert_eq!(exists(&t_same, TypeExists), 1);
    assert_eq!(exists(&t_same, TypeMatches), 1);
    // Behind a pointer a struct matches its forward declaration, but is not
    // compatible with it (kinds must be equal).
    assert_eq!(exists(&t_fwd, TypeExists), 0);
    assert_eq!(exists(&t_fwd, TypeMatches), 1);
    // Integers of another size are compatible but do not match.
    assert_eq!(exists(&t_narrow, TypeExists), 1);
    assert_eq!(exists(&t_narrow, TypeMatches), 0);
}

#[test]
fn ambiguous_candidates_are_refused() {
    let local = foo_local();
    // Two kernel flavors with b at different offsets.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
    t.strukt("foo___2", 12, &[("a", int, 0), ("b", int, 64)]);
    let (f, patched) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    let (reason, poisoned) = failure(&f);
    assert!(!poisoned);
    assert_eq!(
        reason,
        "ambiguous: candidates struct foo [2] and struct foo___2 [3] give different offsets (bit 32 vs 64)"
    );
    assert!(patched.is_none());
    let mut spec = object(
        &local.0,
        vec![ldx(4, 0, 1, 4), EXIT],
        vec![relo(0, 2, "0:1", FieldByteOffset)],
    );
    let plan = core::plan(&spec, &t.0).unwrap();
    assert_eq!(plan.failures().count(), 1);
    let err = plan.apply(&mut spec).unwrap_err();
    assert!(matches!(err, CoreError::Unresolved { .. }));
    assert_eq!(
        err.to_string(),
        "function prog: CO-RE relocation at instruction 0 (byte_off struct foo::b (0:1)) cannot be resolved: ambiguous: candidates struct foo [2] and struct foo___2 [3] give different offsets (bit 32 vs 64)"
    );
    assert_eq!(
        spec.programs[0].function.insns[0],
        ldx(4, 0, 1, 4),
        "unchanged"
    );
    // Candidates that agree are no ambiguity; one that lacks the member is no candidate.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
    t.strukt("foo___2", 8, &[("a", int, 0), ("b", int, 32)]);
    t.strukt("foo___3", 8, &[("a", int, 0)]);
    let (f, _) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(values(&f).target, 4);
}

#[test]
fn candidates_ruled_out_stay_out_for_the_same_root() {
    // foo___a has only a, foo___b only b at another offset: the first
    // relocation (a) keeps foo___a alone, so the second (b) finds no
    // candidate, as libbpf's candidate cache makes it.
    let local = foo_local();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo___a", 4, &[("a", int, 0)]);
    t.strukt("foo___b", 12, &[("z", int, 0), ("b", int, 64)]);
    let spec = object(
        &local.0,
        vec![mov64(0, 1), mov64(1, 1), EXIT],
        vec![
            relo(0, 2, "0:0", FieldExists),
            relo(1, 2, "0:1", FieldExists),
        ],
    );
    let plan = core::plan(&spec, &t.0).unwrap();
    let targets: Vec<u64> = plan.fixups().map(|f| values(f).target).collect();
    assert_eq!(targets, [1, 0]);
}

#[test]
fn a_load_changes_size_only_for_unsigned_integers_and_pointers() {
    let build = |signed: bool, size: u32| {
        let mut b = B::new();
        let x = b.int("x_t", size, signed);
        b.strukt("s", 8, &[("pad", x, 0), ("x", x, size * 8)]);
        b
    };
    let l = build(false, 4);
    let (f, patched) = run(
        &l.0,
        &build(false, 8).0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(values(&f).mem_size, Some(MemSize { from: 4, to: 8 }));
    assert_eq!(patched.unwrap()[0], ldx(8, 0, 1, 8));
    let (f, patched) = run(
        &l.0,
        &build(false, 2).0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(patched.unwrap()[0], ldx(2, 0, 1, 2));
    assert_eq!(values(&f).mem_size, Some(MemSize { from: 4, to: 2 }));
    // A signed field read at another size would change its value: poisoned.
    let l = build(true, 4);
    let (f, patched) = run(
        &l.0,
        &build(true, 8).0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    let (reason, poisoned) = failure(&f);
    assert!(poisoned);
    assert!(
        reason.starts_with("the kernel's field is 8 bytes where the object's is 4"),
        "{reason}"
    );
    assert_eq!(patched.unwrap()[0], POISON);
    // The same relocation on an ALU instruction just takes the offset.
    let (f, _) = run(
        &l.0,
        &build(true, 8).0,
        &[mov64(2, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(values(&f).target, 8);
    // The instruction must access the object's field size.
    let spec = object(
        &build(false, 4).0,
        vec![ldx(2, 0, 1, 4), EXIT],
        vec![relo(0, 2, "0:1", FieldByteOffset)],
    );
    assert!(core::plan(&spec, &build(false, 8).0)
        .unwrap_err()
        .to_string()
        .ends_with("the instruction accesses 2 bytes, but the object's field is 4 bytes"));
    // Pointers (a 32-bit kernel's are 4 bytes) may change size: arrays of
    // them compare element sizes.
    let mut l = B::new();
    let v = l.int("char", 1, true);
    let p = l.ptr(v);
    let cp = l.konst(p);
    let ps = l.array(cp, 2);
    let s = l.strukt("s", 16, &[("ps", ps, 0)]);
    let mut t = B::new();
    let int = t.int("char", 1, true);
    let p = t.ptr(int);
    let ps = t.array(p, 2);
    t.strukt("s", 16, &[("ps", ps, 0)]);
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(8, 0, 1, 8)],
        relo(0, s, "0:0:1", FieldByteOffset),
    );
    assert_eq!((values(&f).target, values(&f).mem_size), (8, None));
    let (f, _) = run(
        &l.0,
        &t.0,
        &[ldx(8, 0, 1, 0)],
        relo(0, s, "0:0", FieldByteOffset),
    );
    assert_eq!((values(&f).target, values(&f).mem_size), (0, None));
}

#[test]
fn an_offset_beyond_16_bits_is_refused() {
    let local = foo_local();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let big = t.array(int, 20_000);
    t.strukt(
        "foo",
        80_008,
        &[
            ("pad", big, 0),
            ("a", int, 80_000 * 8),
            ("b", int, 80_004 * 8),
        ],
    );
    let (f, _) = run(
        &local.0,
        &t.0,
        &[ldx(4, 0, 1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(
        failure(&f),
        (
            "the kernel's offset 80004 does not fit an instruction's 16-bit offset",
            false
        )
    );
    // An ALU immediate holds it.
    let (f, _) = run(
        &local.0,
        &t.0,
        &[mov64(1, 4)],
        relo(0, 2, "0:1", FieldByteOffset),
    );
    assert_eq!(values(&f).target, 80_004);
}

#[test]
fn instructions_that_cannot_carry_the_relocation_are_errors() {
    let local = foo_local();
    let target = foo_local();
    let plan_err = |insns: Vec<Insn>, r| {
        core::plan(&object(&local.0, insns, vec![r]), &target.0)
            .unwrap_err()
            .to_string()
    };
    let r = || relo(0, 2, "0:1", FieldByteOffset);
    assert!(plan_err(vec![ldx(4, 0, 1, 8), EXIT], r())
        .ends_with("the instruction's offset is 8, but the object's BTF says 4"));
    let mov_reg = Insn {
        code: 0xbf,
        regs: 0x10,
        off: 0,
        imm: 0,
    };
    assert!(plan_err(vec![mov_reg, EXIT], r()).contains("only an immediate can be relocated"));
    assert!(plan_err(vec![EXIT], r()).contains("cannot be relocated"));
    assert!(plan_err(vec![EXIT], relo(5, 2, "0:1", FieldByteOffset))
        .ends_with("instruction 5 is past the end of the function (1 instructions)"));
    let [a, _] = ld_imm64(1, 4);
    assert!(plan_err(vec![a], r()).contains("is not a plain 64-bit immediate load"));
}

#[test]
fn malformed_access_strings_are_errors_never_panics() {
    let local = foo_local();
    let mut b = local;
    let e = b.enum32("e", false, &[("A", 0)]);
    let fwd = b.fwd("opaque", false);
    let l = &b.0;
    let cases: &[(&str, u32, CoreReloKind, &str)] = &[
        ("", 2, FieldByteOffset, "the access string is empty"),
        ("x", 2, FieldByteOffset, "access string \"x\" is not a list of indices separated by ':'"),
        (":0", 2, FieldByteOffset, "access string \":0\" is not a list of indices separated by ':'"),
        ("0:", 2, FieldByteOffset, "access string \"0:\" is not a list of indices separated by ':'"),
        ("0::1", 2, FieldByteOffset, "access string \"0::1\" is not a list of indices separated by ':'"),
        ("-1", 2, FieldByteOffset, "access string \"-1\" is not a list of indices separated by ':'"),
        ("0:99999999999", 2, FieldByteOffset, "access string \"0:99999999999\": index 99999999999 is too large"),
        ("0:2", 2, FieldByteOffset, "access string \"0:2\": index 2 is past the 2 members of struct foo"),
        ("0:1:0", 2, FieldByteOffset, "access string \"0:1:0\": index 0 reaches struct foo::b (int), which has no members or elements"),
        ("1", 2, TypeSize, "a type_size relocation's access string must be \"0\", not \"1\""),
        ("0:0", 2, TypeExists, "a type_exists relocation's access string must be \"0\", not \"0:0\""),
        ("0", 2, EnumvalValue, "an enumerator relocation needs an enum, struct foo is not one"),
        ("1", e, EnumvalValue, "index 1 is past the 1 enumerators of enum e"),
        ("0:0", e, EnumvalExists, "access string \"0:0\": an enumerator relocation takes one index"),
        ("0", 999, FieldByteOffset, "BTF type 999 does not exist (5 types)"),
        ("0", fwd, FieldByteOffset, "struct opaque has no size"),
        ("0", fwd, TypeSize, "struct opaque has no size"),
        ("0", 2, FieldSigned, "a signed relocation cannot apply to an array element or a whole type (only byte_off and byte_sz can)"),
    ];
    for &(access, root, kind, want) in cases {
        let r = relo(0, root, access, kind);
        assert_eq!(
            core::validate(l, &r).unwrap_err(),
            want,
            "{access:?} {}",
            kind.name()
        );
        // describe still says something.
        assert!(core::describe(l, &r).ends_with(&format!("({access})")));
    }
    let deep = vec!["0"; 65].join(":");
    assert!(core::validate(l, &relo(0, 2, &deep, FieldByteOffset))
        .unwrap_err()
        .contains("has more than 64 indices"));
    // A failing validate is an error from plan, naming function and instruction.
    let spec = object(
        l,
        vec![ldx(4, 0, 1, 4), EXIT],
        vec![relo(0, 2, "0:7", FieldByteOffset)],
    );
    assert_eq!(
        core::plan(&spec, l).unwrap_err().to_string(),
        "function prog: CO-RE relocation at instruction 0 (byte_off struct foo (0:7)): access string \"0:7\": index 7 is past the 2 members of struct foo"
    );
}

#[test]
fn anonymous_roots_relocate_only_their_local_id() {
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let anon = b.strukt("", 4, &[("a", int, 0)]);
    let spec = object(
        &b.0,
        vec![mov64(0, 1), EXIT],
        vec![relo(0, anon, "0:0", FieldExists)],
    );
    assert!(core::plan(&spec, &b.0)
        .unwrap_err()
        .to_string()
        .contains("cannot be matched by name"));
    assert!(core::wanted_names(&spec).is_empty());
    let (f, _) = run(&b.0, &b.0, &[mov64(0, 0)], relo(0, anon, "0", TypeIdLocal));
    assert_eq!(f.description, "anonymous struct (0)");
    assert_eq!(values(&f).target, u64::from(anon));
}

#[test]
fn wanted_names_are_the_essential_root_names() {
    let mut b = foo_local();
    let e = b.enum32("color___x", false, &[("RED", 0)]);
    let spec = object(
        &b.0,
        vec![mov64(0, 1), mov64(0, 1), mov64(0, 2), EXIT],
        vec![
            relo(0, 2, "0:1", FieldExists),
            relo(1, e, "0", EnumvalExists),
            relo(2, 2, "0", TypeIdLocal),
        ],
    );
    let names: Vec<String> = core::wanted_names(&spec).into_iter().collect();
    assert_eq!(names, ["color", "foo"]);
}

/// A target that only knows some names and says type 3 is in a module.
struct Modules(Btf);

impl TargetTypes for Modules {
    fn type_by_id(
        &self,
        id: u32,
    ) -> Result<std::borrow::Cow<'_, BtfType>, rawbpf::obj::btf::BtfError> {
        TargetTypes::type_by_id(&self.0, id)
    }
    fn string(&self, offset: u32) -> Result<std::borrow::Cow<'_, str>, rawbpf::obj::btf::BtfError> {
        TargetTypes::string(&self.0, offset)
    }
    fn ids_by_essential_name(&self, name: &str) -> Result<Vec<u32>, rawbpf::obj::btf::BtfError> {
        self.0.ids_by_essential_name(name)
    }
    fn kernel_id(&self, id: u32) -> u32 {
        id + 1000
    }
    fn module(&self, id: u32) -> Option<&str> {
        (id == 3).then_some("nf_conntrack")
    }
}

#[test]
fn vmlinux_candidates_come_before_module_ones() {
    let local = foo_local();
    // [2] foo in vmlinux, [3] foo in a module with b elsewhere: no ambiguity,
    // the module is not searched.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo", 8, &[("a", int, 0), ("b", int, 32)]);
    t.strukt("foo", 12, &[("a", int, 0), ("b", int, 64)]);
    let spec = object(
        &local.0,
        vec![mov64(0, 0), EXIT],
        vec![relo(0, 2, "0", TypeIdTarget)],
    );
    let plan = core::plan(&spec, &Modules(t.0.clone())).unwrap();
    let v = values(plan.fixups().next().unwrap());
    assert_eq!(v.target, 1002);
    assert_eq!(
        v.target_type
            .as_ref()
            .map(|t| (t.id, t.kernel_id, t.module.clone())),
        Some((2, 1002, None))
    );
    // Only in the module.
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("bar", 8, &[("a", int, 0)]);
    t.strukt("foo", 12, &[("a", int, 0), ("b", int, 64)]);
    let plan = core::plan(&spec, &Modules(t.0)).unwrap();
    let v = values(plan.fixups().next().unwrap());
    assert_eq!(
        v.target_type.as_ref().map(|t| t.module.as_deref()),
        Some(Some("nf_conntrack"))
    );
    assert_eq!(v.target, 1003);
}

#[test]
fn subprograms_are_relocated_too() {
    let local = foo_local();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.strukt("foo", 12, &[("z", int, 0), ("a", int, 32), ("b", int, 64)]);
    let mut spec = object(&local.0, vec![EXIT], Vec::new());
    let mut sub = function(
        "helper",
        vec![ldx(4, 0, 1, 4), EXIT],
        vec![relo(0, 2, "0:1", FieldByteOffset)],
    );
    sub.section = ".text".into();
    spec.subprograms.push(sub);
    let plan = core::plan(&spec, &t.0).unwrap();
    assert_eq!(plan.for_function("helper").count(), 1);
    assert_eq!(plan.for_function("prog").count(), 0);
    plan.apply(&mut spec).unwrap();
    assert_eq!(spec.subprograms[0].insns[0].off, 8);
}

#[test]
fn reachable_poison_folds_known_branches() {
    let jeq = |dst: u8, imm: i32, off: i16| Insn {
        code: 0x15,
        regs: dst,
        off,
        imm,
    };
    let ldx_unknown = ldx(4, 1, 1, 0);
    // r1 = <exists>; if r1 == 0 goto +1; <poisoned>; exit
    let prog = |first: Insn| vec![first, jeq(1, 0, 1), POISON, EXIT];
    assert_eq!(
        core::reachable_poison(&prog(mov64(1, 0)), &[2]),
        Vec::<usize>::new()
    );
    assert_eq!(core::reachable_poison(&prog(mov64(1, 1)), &[2]), [2]);
    assert_eq!(core::reachable_poison(&prog(ldx_unknown), &[2]), [2]);
    // Through ALU on known values and a 64-bit immediate.
    let [a, b] = ld_imm64(2, 1 << 33);
    let insns = vec![
        a,
        b,
        Insn {
            code: 0x77, // r2 >>= 33
            regs: 2,
            off: 0,
            imm: 33,
        },
        Insn {
            code: 0x55, // if r2 != 1 goto +2
            regs: 2,
            off: 2,
            imm: 1,
        },
        mov64(0, 0),
        EXIT,
        POISON,
        EXIT,
    ];
    assert_eq!(core::reachable_poison(&insns, &[6]), Vec::<usize>::new());
    // Unreachable in the graph at all, and a path through a bpf-to-bpf call.
    let call = Insn {
        code: 0x85,
        regs: 0x10,
        off: 0,
        imm: 1,
    };
    let insns = vec![call, EXIT, POISON, EXIT];
    assert_eq!(core::reachable_poison(&insns, &[2]), [2]);
    assert_eq!(
        core::reachable_poison(&[EXIT, POISON], &[1]),
        Vec::<usize>::new()
    );
    // A loop that counts to a million runs out of budget: every poison the
    // graph reaches is reported.
    let insns = vec![
        mov64(1, 0),
        Insn {
            code: 0x07, // r1 += 1
            regs: 1,
            off: 0,
            imm: 1,
        },
        Insn {
            code: 0xa5, // if r1 < 1000000 goto -2
            regs: 1,
            off: -2,
            imm: 1_000_000,
        },
        jeq(1, 0, 1),
        POISON,
        EXIT,
    ];
    assert_eq!(core::reachable_poison(&insns, &[4]), [4]);
}

#[test]
fn the_committed_object_validates_and_relocates_against_vmlinux() {
    let spec = ObjectSpec::parse(&common::object("core_reloc.bpf.o")).unwrap();
    let f = &spec.programs[0].function;
    assert_eq!(f.core_relos.len(), 1);
    let btf = spec.btf.as_ref().unwrap();
    assert_eq!(
        core::describe(btf, &f.core_relos[0]),
        "struct __sk_buff___local::len (0:0)"
    );
    let names: Vec<String> = core::wanted_names(&spec).into_iter().collect();
    assert_eq!(names, ["__sk_buff"]);

    // A bad access string is a parse error naming the section and instruction.
    let mut data = common::object("core_reloc.bpf.o");
    let at = data.windows(5).position(|w| w == b"\x000:0\x00").unwrap();
    data[at + 3] = b'7';
    assert_eq!(
        ObjectSpec::parse(&data).unwrap_err().to_string(),
        "section tc: CO-RE relocation at instruction 0: access string \"0:7\": index 7 is past the 1 members of struct __sk_buff___local"
    );

    let path = "/sys/kernel/btf/vmlinux";
    let Ok(raw) = std::fs::read(path) else {
        eprintln!("skipped the vmlinux part: cannot read {path}");
        return;
    };
    let vmlinux = Btf::parse(&raw).unwrap();
    let mut spec = spec;
    let plan = core::plan(&spec, &vmlinux).unwrap();
    let fx = plan.fixups().next().unwrap();
    let v = values(fx);
    // __sk_buff::len is the first member in every kernel.
    assert_eq!(
        (fx.kind, v.local, v.target, v.mem_size),
        (FieldByteOffset, 0, 0, None)
    );
    let target = v.target_type.as_ref().unwrap();
    assert_eq!(vmlinux.type_name(target.id).unwrap(), "__sk_buff");
    plan.apply(&mut spec).unwrap();
    assert_eq!(spec.programs[0].function.insns[0], ldx(4, 0, 1, 0));
}

/// Every kind, root and a spread of access strings over odd types (a
/// struct that holds itself anonymously, flexible arrays, bitfields, enums,
/// forward declarations): errors or values, never a panic.
#[test]
fn a_sweep_of_odd_relocations_never_panics() {
    let build = |shift: u32| {
        let mut b = B::new();
        let int = b.int("int", 4, true);
        let u8_ = b.int("u8", 1, false);
        let arr = b.array(int, 3 + shift);
        let flex = b.array(u8_, 0);
        let e = b.enum32("e", true, &[("A", -1), ("B", 7)]);
        let e64 = b.enum64("e64", false, &[("B", u64::MAX)]);
        let fwd = b.fwd("opaque", true);
        let pfwd = b.ptr(fwd);
        let inner = b.union("", 4, &[("x", int, 0), ("y", e, 0)]);
        let bits = b.bitfields("bits", 8, &[("a", int, shift, 31), ("b", u8_, 40, 7)]);
        let proto = b.proto(int, &[pfwd, int]);
        let fp = b.ptr(proto);
        // struct odd { int n; <anon union>; int arr[]; bits; opaque *p; fp; u8 data[]; }
        let odd_id = b.0.len();
        let odd = b.strukt(
            "odd",
            64,
            &[
                ("n", int, shift * 32),
                ("", inner, 32),
                ("arr", arr, 64),
                ("bits", bits, 192),
                ("p", pfwd, 256),
                ("fp", fp, 320),
                ("e", e64, 384),
                ("data", flex, 448),
            ],
        );
        assert_eq!(odd, odd_id);
        // A struct that holds itself anonymously, and a typedef of odd.
        let selfish = b.0.len();
        b.strukt("selfish", 4, &[("", selfish, 0), ("z", int, 0)]);
        b.typedef("odd_t", odd);
        b.konst(odd);
        b
    };
    let local = build(0);
    let targets = [build(0), build(1), foo_local(), B::new()];
    let mut accesses: Vec<String> = [
        "",
        "0",
        "1",
        "0:0",
        "0:1",
        "0:1:0",
        "0:1:1",
        "0:2:2",
        "0:2:3",
        "0:3:0",
        "0:3:1",
        "0:4",
        "0:5",
        "0:6",
        "0:7:100",
        "0:7:2147483647",
        "3:7:5",
        "0:0:0:0:0:0:0:1",
        "2147483647",
        "4294967296",
        "0:",
        ":",
        "0:8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..80 {
        let mut s = String::new();
        for i in 0..(seed % 6 + 1) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if i > 0 {
                s.push(':');
            }
            s.push_str(&(seed % 9).to_string());
        }
        accesses.push(s);
    }
    let insns = [
        mov64(0, 0),
        ld_imm64(1, 0)[0],
        ld_imm64(1, 0)[1],
        ldx(4, 0, 1, 0),
        EXIT,
    ];
    let mut planned = 0;
    for root in 0..local.0.len() + 2 {
        for kind in (0..13).filter_map(CoreReloKind::from_u32) {
            for access in &accesses {
                for at in [0, 1, 3] {
                    let r = relo(at, root, access, kind);
                    let valid = core::validate(&local.0, &r).is_ok();
                    let _ = core::describe(&local.0, &r);
                    if !valid {
                        continue;
                    }
                    planned += 1;
                    let mut spec = object(&local.0, insns.to_vec(), vec![r]);
                    for t in &targets {
                        if let Ok(plan) = core::plan(&spec, &t.0) {
                            let _ = plan.clone().apply(&mut spec.clone());
                        }
                    }
                    spec.programs[0].function.insns.truncate(1);
                    let _ = core::plan(&spec, &local.0);
                }
            }
        }
    }
    eprintln!("{planned} valid relocations planned");
    assert!(planned > 300, "{planned}");
}
