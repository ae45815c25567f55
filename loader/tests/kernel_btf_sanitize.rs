//! BTF sanitization in the real kernel: programs/btf_kinds.bpf.o carries a
//! signed ENUM, an ENUM64, a FLOAT, DECL_TAGs, a TYPE_TAG, global FUNCs and
//! a map whose value holds a bpf_spin_lock (created only with BTF). On any
//! kernel it loads with its BTF kept: a kernel lacking some of those kinds
//! (5.10 lacks all but the FUNCs) gets the BTF sanitized for what it lacks,
//! as probed. On a kernel that lacks nothing, each rewrite is forced
//! (`LoadOptions::btf_pretend_lacks`, a hidden option for tests) and the
//! rewritten BTF must load and keep the spin-lock map working. Needs root
//! (skips with a reason otherwise; under CI=true a skip fails).

#[path = "../../tests/support/mod.rs"]
mod support;

use rawbpf::load::btf::{kernel_btf_lacks, load_sanitized};
use rawbpf::obj::btf::sanitize::{sanitize, BtfLacks};
use rawbpf::obj::btf::{BtfKind, BtfTypeData};
use rawbpf::{Collection, LoadError, LoadOptions, ObjectSpec};
use std::io::Write;
use std::path::Path;
use support::{kernel, obj};

const NAME: &str = "btf_kinds.bpf.o";

fn spec() -> ObjectSpec {
    ObjectSpec::from_file(obj(NAME)).unwrap()
}

/// Everything but `FUNC` (before 5.0): such a kernel takes no func_info
/// at all, and this one would be given func_info naming FUNCs turned into
/// TYPEDEFs.
fn all_but_func() -> BtfLacks {
    BtfLacks {
        func: false,
        ..BtfLacks::ALL
    }
}

/// Loads the object, checks its BTF was not refused (only `allowed` maps
/// may lose their BTF types), and runs `locked_count` twice: the
/// spin-locked counter counts 1, 2 (a spin-lock map exists only with BTF).
fn load_and_count(opts: &LoadOptions, what: &str, allowed: &[&str]) {
    let c = Collection::load(&spec(), opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    let unexpected: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| {
            !allowed
                .iter()
                .any(|m| w.starts_with(&format!("map {m}: created without BTF types")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{what}: the BTF or a map's BTF types were refused: {unexpected:?}"
    );
    let p = c.program("locked_count").unwrap();
    for want in [1, 2] {
        let run = p.test_run(&[0u8; 64], 1).unwrap();
        assert_eq!(run.retval, want, "{what}: the locked counter");
    }
    let value = c
        .map("locked")
        .unwrap()
        .lookup(&0u32.to_le_bytes())
        .unwrap();
    let value = value.expect("locked[0] exists");
    assert_eq!(value[4..8], 2u32.to_le_bytes(), "{what}: count in the map");
    assert_eq!(value[8..12], 1i32.to_le_bytes(), "{what}: last = SIGN_POS");
}

#[test]
fn loads_with_its_btf_kept_on_this_kernel() {
    if !kernel("loads_with_its_btf_kept_on_this_kernel") {
        return;
    }
    let lacks = kernel_btf_lacks();
    // Past libtest's capture: the kernel matrix's logs record it per kernel.
    let _ = writeln!(
        std::io::stderr(),
        "this kernel's BTF loader lacks: {:?}",
        lacks.names()
    );
    load_and_count(&LoadOptions::for_file(Path::new(NAME)), "as probed", &[]);
}

#[test]
fn every_rewrite_forced_keeps_the_spin_lock_map() {
    if !kernel("every_rewrite_forced_keeps_the_spin_lock_map") {
        return;
    }
    let opts = |lacks| LoadOptions {
        btf_pretend_lacks: Some(lacks),
        ..LoadOptions::for_file(Path::new(NAME))
    };
    let no_datasec = BtfLacks {
        datasec: false,
        ..all_but_func()
    };
    load_and_count(&opts(no_datasec), "every rewrite but VAR/DATASEC", &[]);
    // Without DATASEC the global-data maps' value type is a STRUCT, which
    // the kernel refuses for a keyless array: they are created without BTF
    // types, as libbpf does (a kernel without DATASEC has no global data).
    load_and_count(
        &opts(all_but_func()),
        "every rewrite forced",
        &[".data", ".bss"],
    );
}

/// Each feature alone: the sanitized BTF no longer uses it and the kernel
/// loads it (sanitized too for what it really lacks).
#[test]
fn each_rewrite_alone_loads() {
    if !kernel("each_rewrite_alone_loads") {
        return;
    }
    let btf = spec().btf.unwrap();
    let flag = |set: fn(&mut BtfLacks)| {
        let mut l = BtfLacks::default();
        set(&mut l);
        l
    };
    fn gone(kind: BtfKind) -> impl Fn(&rawbpf::obj::btf::Btf) -> bool {
        move |b| !b.kinds_used().contains(&kind)
    }
    type Check = Box<dyn Fn(&rawbpf::obj::btf::Btf) -> bool>;
    let cases: Vec<(&str, BtfLacks, Check)> = vec![
        (
            "signed ENUM",
            flag(|l| l.enum_signed = true),
            Box::new(|b| {
                b.types()
                    .all(|(_, t)| t.kind != BtfKind::Enum || !t.kind_flag)
            }),
        ),
        (
            "ENUM64",
            flag(|l| l.enum64 = true),
            Box::new(gone(BtfKind::Enum64)),
        ),
        (
            "FLOAT",
            flag(|l| l.float = true),
            Box::new(gone(BtfKind::Float)),
        ),
        (
            "DECL_TAG",
            flag(|l| l.decl_tag = true),
            Box::new(gone(BtfKind::DeclTag)),
        ),
        (
            "TYPE_TAG",
            flag(|l| l.type_tag = true),
            Box::new(gone(BtfKind::TypeTag)),
        ),
        (
            "global FUNC",
            flag(|l| l.global_func = true),
            Box::new(|b| {
                b.types()
                    .all(|(_, t)| t.kind != BtfKind::Func || t.func_linkage() == 0)
            }),
        ),
        (
            "VAR/DATASEC",
            flag(|l| l.datasec = true),
            Box::new(|b| gone(BtfKind::Var)(b) && gone(BtfKind::Datasec)(b)),
        ),
        (
            "FUNC",
            flag(|l| l.func = true),
            Box::new(|b| gone(BtfKind::Func)(b) && gone(BtfKind::FuncProto)(b)),
        ),
    ];
    for (what, lacks, check) in cases {
        let (out, changed) = sanitize(&btf, &lacks);
        assert!(
            changed > 0,
            "{what}: the object has it, something to rewrite"
        );
        assert!(check(&out), "{what}: still in the sanitized BTF");
        assert_eq!(
            out.types().take(btf.len() as usize).count(),
            btf.len() as usize,
            "{what}: ids kept"
        );
        // What this kernel lacks besides (on 5.10, most of them).
        if let Err(r) = load_sanitized(&btf, &lacks.union(kernel_btf_lacks())) {
            panic!(
                "{what}: the kernel refused the sanitized BTF ({}):\n{}",
                r.source, r.log
            );
        }
    }
}

/// A BTF the kernel refuses even sanitized (an INT wider than its size):
/// the load goes on without BTF, the spin-lock map is created without (the
/// kernel cannot tell), and the program that takes its lock fails with an
/// error that says first that the BTF was refused, and the kernel's why.
#[test]
fn refused_btf_is_named_before_the_map_that_needed_it() {
    if !kernel("refused_btf_is_named_before_the_map_that_needed_it") {
        return;
    }
    let mut spec = spec();
    let btf = spec.btf.as_mut().unwrap();
    let char_id = btf.find_by_name(BtfKind::Int, "char").unwrap();
    let t = btf.type_by_id_mut(char_id).unwrap();
    t.data = BtfTypeData::Int {
        encoding: 1,
        offset: 0,
        bits: 64,
    };
    let e = Collection::load(&spec, &LoadOptions::for_file(Path::new(NAME))).unwrap_err();
    assert!(matches!(e, LoadError::BtfRefused { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("the kernel refused the object's BTF ("),
        "{text}"
    );
    assert!(text.contains("which program locked_count needs"), "{text}");
    assert!(
        text.contains("nr_bits exceeds"),
        "the kernel's BTF log: {text}"
    );
    assert!(text.contains("has to have BTF"), "the verifier's: {text}");
}
