//! Externs without a kernel: how the committed objects' externs parse and
//! are laid out, how kconfig values are read (libbpf's rules), how kernel
//! versions are derived from uname, how ksyms and kfuncs resolve against a
//! hand-built kernel BTF and kallsyms text, and how linked code is patched.

mod common;

use rawbpf::error::{LoadError, ParseError};
use rawbpf::kconfig::{self, KernelConfig};
use rawbpf::obj::btf::{Btf, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData};
use rawbpf::obj::externs::{self, KsymValue};
use rawbpf::obj::link::{ExternValue, POISON_CALL_KFUNC_BASE};
use rawbpf::obj::{ExternError, ExternKind, ExternSpec, KconfigType, RelocTarget};
use rawbpf::uapi::{insn, MapType, BPF_F_RDONLY_PROG};
use rawbpf::ObjectSpec;

fn spec(name: &str) -> ObjectSpec {
    ObjectSpec::parse(&common::object(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn kind_of(s: &ObjectSpec, name: &str) -> ExternKind {
    s.extern_spec(name)
        .unwrap_or_else(|| panic!("no extern {name}"))
        .kind
}

// --- Parsing and layout -----------------------------------------------------

/// The .kconfig layout is libbpf's (as `bpftool gen skeleton`, built on
/// libbpf, lays out struct kconfig__kconfig for this object): largest
/// alignment first, then smallest size, then name, each value aligned.
#[test]
fn kconfig_layout_is_libbpfs() {
    let s = spec("kconfig.bpf.o");
    let layout: Vec<(&str, u32, u32, bool)> = s
        .externs
        .iter()
        .map(|e| match e.kind {
            ExternKind::Kconfig { offset, size, .. } => (e.name.as_str(), offset, size, e.weak),
            other => panic!("{}: {other:?}", e.name),
        })
        .collect();
    assert_eq!(
        layout,
        [
            ("CONFIG_PHYSICAL_START", 0, 8, true),
            ("CONFIG_HZ", 8, 4, false),
            ("CONFIG_NET_CLS_BPF", 12, 4, true),
            ("CONFIG_RAWBPF_NOT_AN_OPTION", 16, 4, true),
            ("LINUX_KERNEL_VERSION", 20, 4, false),
            ("CONFIG_BPF_SYSCALL", 24, 1, true),
            ("LINUX_HAS_BPF_COOKIE", 25, 1, false),
            ("LINUX_HAS_SYSCALL_WRAPPER", 26, 1, false),
            ("CONFIG_DEFAULT_HOSTNAME", 27, 16, true),
        ]
    );
    let ty = |name| match kind_of(&s, name) {
        ExternKind::Kconfig { ty, .. } => ty,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ty("CONFIG_PHYSICAL_START"),
        KconfigType::Int { signed: false }
    );
    assert_eq!(ty("CONFIG_HZ"), KconfigType::Int { signed: true });
    assert_eq!(ty("CONFIG_NET_CLS_BPF"), KconfigType::Tristate);
    assert_eq!(ty("CONFIG_BPF_SYSCALL"), KconfigType::Bool);
    assert_eq!(ty("CONFIG_DEFAULT_HOSTNAME"), KconfigType::CharArray);

    // A frozen, read-only one-element array as big as the layout.
    let m = s.map(".kconfig").expect(".kconfig map");
    assert_eq!(m.map_type, MapType::ARRAY);
    assert_eq!((m.key_size, m.value_size, m.max_entries), (4, 43, 1));
    assert_eq!(m.flags, BPF_F_RDONLY_PROG);
    assert!(m.is_rodata(), "frozen after loading");
    assert_eq!(m.data.as_deref(), Some(&[0u8; 43][..]));

    // Its DATASEC says the same, with allocated (not extern) VARs, so the
    // kernel accepts the object's BTF.
    let btf = s.btf.as_ref().unwrap();
    assert_eq!(btf.type_name(m.btf_value_type_id).unwrap(), ".kconfig");
    let sec = btf.type_by_id(m.btf_value_type_id).unwrap();
    assert_eq!(sec.size_or_type, 43);
    let BtfTypeData::Datasec(vars) = &sec.data else {
        panic!("not a DATASEC")
    };
    for v in vars {
        let name = btf.type_name(v.type_id).unwrap();
        let ExternKind::Kconfig { offset, .. } = kind_of(&s, name) else {
            panic!("{name}")
        };
        assert_eq!(v.offset, offset, "{name}");
        assert_eq!(
            btf.type_by_id(v.type_id).unwrap().data,
            BtfTypeData::Var { linkage: 1 },
            "{name}"
        );
    }
}

/// An ld_imm64 of a kconfig value is an address in .kconfig.
#[test]
fn kconfig_loads_are_map_values() {
    let s = spec("kconfig.bpf.o");
    let f = &s.program("copy_kconfig").unwrap().function;
    let offset_of = |symbol: &str| {
        f.relocations
            .iter()
            .find(|r| r.symbol == symbol)
            .map(|r| r.target.clone())
            .unwrap_or_else(|| panic!("no relocation for {symbol}"))
    };
    assert_eq!(
        offset_of("CONFIG_HZ"),
        RelocTarget::MapValue {
            map: ".kconfig".into(),
            offset: 8
        }
    );
    assert_eq!(
        offset_of("LINUX_KERNEL_VERSION"),
        RelocTarget::MapValue {
            map: ".kconfig".into(),
            offset: 20
        }
    );
    assert!(externs::extern_names(&s).is_empty(), "no kernel BTF needed");
}

#[test]
fn ksyms_and_kfuncs_parse() {
    let s = spec("kfuncs.bpf.o");
    let btf = s.btf.as_ref().unwrap();
    let names: Vec<&str> = s.externs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bpf_prog_put",
            "bpf_task_from_pid",
            "bpf_task_release",
            "rawbpf_no_such_kfunc",
            "rawbpf_no_such_symbol"
        ],
        "by name, as libbpf sorts ksyms"
    );
    assert_eq!(
        kind_of(&s, "bpf_prog_put"),
        ExternKind::Ksym { typed: None }
    );
    let ExternKind::Kfunc { func_id } = kind_of(&s, "bpf_task_from_pid") else {
        panic!()
    };
    assert_eq!(btf.type_name(func_id).unwrap(), "bpf_task_from_pid");
    assert_eq!(
        externs::describe_type(btf, func_id),
        "struct task_struct * (__s32)"
    );
    assert!(s.extern_spec("rawbpf_no_such_kfunc").unwrap().weak);
    assert!(!s.extern_spec("bpf_task_release").unwrap().weak);
    assert_eq!(
        externs::extern_names(&s).into_iter().collect::<Vec<_>>(),
        [
            "bpf_task_from_pid",
            "bpf_task_release",
            "rawbpf_no_such_kfunc"
        ],
        "kfuncs need kernel BTF, typeless ksyms only kallsyms"
    );

    // The relocations: calls of kfuncs and loads of ksym addresses.
    let f = &s.program("find_kthreadd").unwrap().function;
    let externs: Vec<(&str, bool)> = f
        .relocations
        .iter()
        .filter_map(|r| match &r.target {
            RelocTarget::Extern { name } => Some((name.as_str(), f.insns[r.insn].is_call())),
            _ => None,
        })
        .collect();
    assert_eq!(
        externs,
        [
            ("bpf_task_from_pid", true),
            ("bpf_task_release", true),
            ("rawbpf_no_such_kfunc", false),
            ("rawbpf_no_such_kfunc", true),
            ("rawbpf_no_such_symbol", false),
            ("bpf_prog_put", false),
        ]
    );

    // .ksyms became 4-byte int VARs the kernel accepts, kfuncs stood in for
    // by one dummy_ksym VAR, their FUNCs global with named parameters.
    let sec = btf.find_by_name(BtfKind::Datasec, ".ksyms").unwrap();
    let sec = btf.type_by_id(sec).unwrap();
    let BtfTypeData::Datasec(vars) = &sec.data else {
        panic!()
    };
    assert_eq!(sec.size_or_type, 4 * vars.len() as u32);
    for (i, v) in vars.iter().enumerate() {
        let var = btf.type_by_id(v.type_id).unwrap();
        assert_eq!(var.kind, BtfKind::Var);
        assert_eq!(var.data, BtfTypeData::Var { linkage: 1 });
        assert_eq!((v.offset, v.size), (4 * i as u32, 4));
    }
    let func = btf.type_by_id(func_id).unwrap();
    assert_eq!(func.func_linkage(), 1, "global");
    let BtfTypeData::Params(params) = &btf.type_by_id(func.size_or_type).unwrap().data else {
        panic!()
    };
    assert!(params.iter().all(|p| p.name_off != 0));
}

#[test]
fn typed_ksyms_keep_their_local_types() {
    let s = spec("ksyms.bpf.o");
    let btf = s.btf.as_ref().unwrap();
    let typed = |name| match kind_of(&s, name) {
        ExternKind::Ksym { typed: Some(t) } => externs::describe_type(btf, t),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(typed("runqueues"), "struct rq");
    assert_eq!(typed("bpf_prog_active"), "int");
    assert_eq!(typed("rawbpf_no_such_variable"), "int");
    assert_eq!(
        externs::extern_names(&s).into_iter().collect::<Vec<_>>(),
        ["bpf_prog_active", "rawbpf_no_such_variable", "runqueues"]
    );
}

/// An object with externs but no BTF cannot say what they are.
#[test]
fn externs_need_btf() {
    let mut d = common::object("kconfig.bpf.o");
    let btf = common::section(&d, ".BTF");
    let at = common::section_name_offset(&d, btf);
    d[at + 3] = b'X'; // .BTF -> .BTX
    match ObjectSpec::parse(&d) {
        Err(ParseError::BadExtern { name, reason }) => {
            let reason = reason.to_string();
            assert!(
                name.starts_with("CONFIG_") || name.starts_with("LINUX_"),
                "{name}"
            );
            assert!(reason.contains("no .BTF"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

// --- Linking ----------------------------------------------------------------

#[test]
fn linked_code_gets_extern_values() {
    let s = spec("kfuncs.bpf.o");
    let p = s.program("find_kthreadd").unwrap();
    let mut linked = p.link(&s).unwrap();
    let refs = linked.extern_refs.clone();
    let at = |name: &str, call: bool| {
        refs.iter()
            .find(|r| r.name == name && r.call == call)
            .unwrap_or_else(|| panic!("no ref to {name}"))
            .insn
    };
    let (from_pid, missing_call, missing_ld, prog_put) = (
        at("bpf_task_from_pid", true),
        at("rawbpf_no_such_kfunc", true),
        at("rawbpf_no_such_kfunc", false),
        at("bpf_prog_put", false),
    );
    let index = |name: &str| s.externs.iter().position(|e| e.name == name).unwrap() as u32;
    linked
        .set_externs(|name| {
            Some(match name {
                "bpf_task_from_pid" => ExternValue::Btf {
                    id: 65918,
                    btf_fd: 0,
                    fd_index: 0,
                },
                "bpf_task_release" => ExternValue::Btf {
                    id: 65928,
                    btf_fd: 7,
                    fd_index: 1,
                },
                "bpf_prog_put" => ExternValue::Address(0xffff_ffff_814e_61b0),
                other => ExternValue::Missing {
                    index: index(other),
                },
            })
        })
        .unwrap();
    let i = &linked.insns;
    assert_eq!(
        (
            i[from_pid].code,
            i[from_pid].src(),
            i[from_pid].imm,
            i[from_pid].off
        ),
        (insn::CALL, insn::PSEUDO_KFUNC_CALL, 65918, 0)
    );
    let release = at("bpf_task_release", true);
    assert_eq!(
        (i[release].imm, i[release].off),
        (65928, 1),
        "module kfunc: fd_array index"
    );
    assert_eq!(
        (i[missing_call].src(), i[missing_call].imm),
        (
            0,
            POISON_CALL_KFUNC_BASE + index("rawbpf_no_such_kfunc") as i32
        ),
        "a weak kfunc the kernel lacks: libbpf's poisoned helper call"
    );
    assert_eq!(
        (
            i[missing_ld].src(),
            i[missing_ld].imm,
            i[missing_ld + 1].imm
        ),
        (0, 0, 0),
        "its address is NULL"
    );
    assert_eq!(
        (i[prog_put].src(), i[prog_put].imm, i[prog_put + 1].imm),
        (0, 0x814e_61b0_u32 as i32, -1),
        "a typeless ksym's 64-bit address"
    );

    // Typed ksyms: BPF_PSEUDO_BTF_ID and the BTF object's fd.
    let s = spec("ksyms.bpf.o");
    let mut linked = s.program("use_ksyms").unwrap().link(&s).unwrap();
    linked
        .set_externs(|_| {
            Some(ExternValue::Btf {
                id: 13786,
                btf_fd: 0,
                fd_index: 0,
            })
        })
        .unwrap();
    let r = &linked.extern_refs[0];
    assert_eq!(
        (
            linked.insns[r.insn].src(),
            linked.insns[r.insn].imm,
            linked.insns[r.insn + 1].imm
        ),
        (insn::PSEUDO_BTF_ID, 13786, 0)
    );
    // An extern nobody resolved is named.
    let mut linked = s.program("use_ksyms").unwrap().link(&s).unwrap();
    assert_eq!(linked.set_externs(|_| None), Err("bpf_prog_active".into()));
}

// --- kconfig values ---------------------------------------------------------

fn kc(name: &str, weak: bool, ty: KconfigType, offset: u32, size: u32) -> ExternSpec {
    ExternSpec {
        name: name.into(),
        weak,
        btf_id: 1,
        kind: ExternKind::Kconfig { ty, offset, size },
    }
}

fn config(text: &str) -> KernelConfig {
    KernelConfig {
        source: "/boot/config-test".into(),
        text: text.into(),
    }
}

fn no_linux(_: &str) -> Option<Result<u64, String>> {
    None
}

/// Fills one extern from `text`; the bytes, or the error's text.
fn one(e: ExternSpec, text: &str) -> Result<Vec<u8>, String> {
    let ExternKind::Kconfig { offset, size, .. } = e.kind else {
        unreachable!()
    };
    let mut warnings = Vec::new();
    kconfig::fill(
        &[&e],
        offset + size,
        Some(&config(text)),
        &no_linux,
        &mut warnings,
    )
    .map(|d| d[offset as usize..].to_vec())
    .map_err(|err| err.to_string())
}

const BOOL: KconfigType = KconfigType::Bool;
const TRI: KconfigType = KconfigType::Tristate;
const S32: KconfigType = KconfigType::Int { signed: true };
const U32: KconfigType = KconfigType::Int { signed: false };

#[test]
fn kconfig_bools_and_tristates() {
    let b = |text| one(kc("CONFIG_B", false, BOOL, 0, 1), text);
    assert_eq!(b("CONFIG_B=y\n"), Ok(vec![1]));
    assert_eq!(b("CONFIG_B=n"), Ok(vec![0]));
    let err = b("CONFIG_B=m").unwrap_err();
    assert!(
        err.contains("CONFIG_B") && err.contains("not a bool"),
        "{err}"
    );
    let err = b("CONFIG_B=1").unwrap_err();
    assert!(err.contains("a bool cannot hold a number"), "{err}");

    let t = |text| one(kc("CONFIG_T", false, TRI, 4, 4), text);
    assert_eq!(t("CONFIG_T=y"), Ok(vec![1, 0, 0, 0]));
    assert_eq!(t("CONFIG_T=m"), Ok(vec![2, 0, 0, 0]));
    assert_eq!(t("CONFIG_T=n"), Ok(vec![0, 0, 0, 0]));

    let c = |text| one(kc("CONFIG_C", false, KconfigType::Char, 0, 1), text);
    assert_eq!(c("CONFIG_C=m"), Ok(vec![b'm']), "a char takes the letter");
    assert_eq!(c("CONFIG_C=65"), Ok(vec![65]));

    let err = one(kc("CONFIG_I", false, S32, 0, 4), "CONFIG_I=y").unwrap_err();
    assert!(
        err.contains("needs a bool, tristate or char, not a s32"),
        "{err}"
    );
}

#[test]
fn kconfig_numbers() {
    let n = |ty, size, text| one(kc("CONFIG_N", false, ty, 0, size), text);
    assert_eq!(n(S32, 4, "CONFIG_N=250"), Ok(250i32.to_le_bytes().to_vec()));
    assert_eq!(
        n(U32, 8, "CONFIG_N=0x1000000"),
        Ok(0x100_0000u64.to_le_bytes().to_vec())
    );
    assert_eq!(
        n(U32, 4, "CONFIG_N=0755"),
        Ok(0o755u32.to_le_bytes().to_vec()),
        "octal, as strtoull"
    );
    assert_eq!(n(S32, 4, "CONFIG_N=-5"), Ok((-5i32).to_le_bytes().to_vec()));
    assert_eq!(
        n(S32, 2, "CONFIG_N=-32768"),
        Ok((-32768i16).to_le_bytes().to_vec())
    );
    assert_eq!(n(U32, 4, "CONFIG_N=4294967295"), Ok(vec![0xff; 4]));
    // Out of range for the extern's type: refused, naming it.
    for (ty, size, text) in [
        (U32, 4, "CONFIG_N=4294967296"),
        (S32, 4, "CONFIG_N=0x80000000"),
        (S32, 2, "CONFIG_N=-32769"),
        (KconfigType::Char, 1, "CONFIG_N=256"),
    ] {
        let err = n(ty, size, text).unwrap_err();
        assert!(
            err.starts_with("extern CONFIG_N: ") && err.contains("does not fit"),
            "{text}: {err}"
        );
    }
    let err = n(U32, 4, "CONFIG_N=12abc").unwrap_err();
    assert!(err.contains("is not a number"), "{err}");
    let err = n(U32, 8, "CONFIG_N=99999999999999999999").unwrap_err();
    assert!(err.contains("out of range"), "{err}");
    let err = n(U32, 4, "CONFIG_N=\"250\"").unwrap_err();
    assert!(err.contains("a u32 cannot hold a string"), "{err}");
}

#[test]
fn kconfig_strings() {
    let s = |size, text| {
        let mut warnings = Vec::new();
        let e = kc("CONFIG_S", false, KconfigType::CharArray, 0, size);
        kconfig::fill(&[&e], size, Some(&config(text)), &no_linux, &mut warnings)
            .map(|d| (d, warnings))
            .map_err(|e| e.to_string())
    };
    let (d, w) = s(8, "CONFIG_S=\"(none)\"").unwrap();
    assert_eq!(d, b"(none)\0\0");
    assert!(w.is_empty());
    // Too long: cut to fit with its NUL, and said so.
    let (d, w) = s(4, "CONFIG_S=\"abcdef\"").unwrap();
    assert_eq!(d, b"abc\0");
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("CONFIG_S") && w[0].contains("cut"), "{w:?}");
    let err = s(8, "CONFIG_S=\"open").unwrap_err();
    assert!(err.contains("closing quote"), "{err}");
    let err = s(8, "CONFIG_S=y").unwrap_err();
    assert!(err.contains("not a char[8]"), "{err}");
}

#[test]
fn kconfig_missing_weak_and_first_line() {
    let text = "# CONFIG_GONE is not set\nCONFIG_HZ=250\nCONFIG_HZ=100\nCONFIG_EMPTY=\n";
    let hz = kc("CONFIG_HZ", false, S32, 0, 4);
    let weak = kc("CONFIG_WEAK", true, S32, 4, 4);
    let gone = kc("CONFIG_GONE", false, BOOL, 8, 1);
    let run = |externs: &[&ExternSpec]| {
        let mut w = Vec::new();
        kconfig::fill(externs, 12, Some(&config(text)), &no_linux, &mut w)
    };
    let d = run(&[&hz, &weak]).unwrap();
    assert_eq!(
        &d[..4],
        250i32.to_le_bytes(),
        "the first line of a name counts"
    );
    assert_eq!(&d[4..8], [0; 4], "a weak option the config lacks is 0");
    // "is not set" is not a value: a strong extern is missing.
    match run(&[&hz, &gone]) {
        Err(LoadError::Extern { name, reason }) => {
            assert_eq!(name, "CONFIG_GONE");
            assert!(
                reason.contains("/boot/config-test") && reason.contains("__weak"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let empty = kc("CONFIG_EMPTY", true, S32, 4, 4);
    let err = run(&[&empty]).unwrap_err().to_string();
    assert!(
        err.contains("CONFIG_EMPTY") && err.contains("no value"),
        "{err}"
    );
    // No config at all, when a CONFIG_ value is needed.
    let mut w = Vec::new();
    match kconfig::fill(&[&hz], 4, None, &no_linux, &mut w) {
        Err(LoadError::KernelConfig { needed_by, .. }) => assert_eq!(needed_by, "CONFIG_HZ"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kconfig_linux_values() {
    let version = kc("LINUX_KERNEL_VERSION", false, U32, 0, 4);
    let cookie = kc("LINUX_HAS_BPF_COOKIE", false, BOOL, 4, 1);
    let linux = |name: &str| match name {
        "LINUX_KERNEL_VERSION" => Some(Ok(0x06_12_2c)),
        "LINUX_HAS_BPF_COOKIE" => Some(Ok(1)),
        _ => None,
    };
    let mut w = Vec::new();
    let d = kconfig::fill(&[&version, &cookie], 5, None, &linux, &mut w).unwrap();
    assert_eq!(d, [0x2c, 0x12, 0x06, 0, 1], "no config file needed");

    let run = |e: &ExternSpec| {
        let mut w = Vec::new();
        kconfig::fill(&[e], 4, None, &linux, &mut w).map_err(|e| e.to_string())
    };
    let err = run(&kc("LINUX_FUTURE", false, U32, 0, 4)).unwrap_err();
    assert!(
        err.starts_with("extern LINUX_FUTURE: unknown LINUX_ value"),
        "{err}"
    );
    assert_eq!(run(&kc("LINUX_FUTURE", true, U32, 0, 4)), Ok(vec![0; 4]));
    let err = run(&kc("HZ", true, U32, 0, 4)).unwrap_err();
    assert!(err.contains("must start with CONFIG_"), "{err}");
    // A value the loader could not compute.
    let failing = |_: &str| Some(Err("cannot tell".to_owned()));
    let mut w = Vec::new();
    let err = kconfig::fill(&[&version], 4, None, &failing, &mut w).unwrap_err();
    assert_eq!(err.to_string(), "extern LINUX_KERNEL_VERSION: cannot tell");
    // A value too big for the extern's type.
    let small = kc("LINUX_KERNEL_VERSION", false, KconfigType::Char, 0, 1);
    let mut w = Vec::new();
    let err = kconfig::fill(&[&small], 1, None, &linux, &mut w).unwrap_err();
    assert!(err.to_string().contains("does not fit in a char"), "{err}");
}

#[test]
fn kernel_versions_as_libbpf_derives_them() {
    let v = kconfig::kernel_version_code;
    assert_eq!(
        kconfig::parse_kernel_version("6.18.44-fc-v782", "#1 SMP PREEMPT_DYNAMIC @0", None),
        Some(v(6, 18, 44))
    );
    assert_eq!(v(6, 18, 44), 0x06_12_2c);
    // Debian: uname -r says .0, uname -v has the real patch level.
    assert_eq!(
        kconfig::parse_kernel_version(
            "6.1.0-29-amd64",
            "#1 SMP PREEMPT_DYNAMIC Debian 6.1.123-1 (2025-01-02)",
            None
        ),
        Some(v(6, 1, 123))
    );
    // The patch level saturates at 255, as the kernel's KERNEL_VERSION.
    assert_eq!(
        kconfig::parse_kernel_version(
            "4.19.0-22-amd64",
            "#1 SMP Debian 4.19.260-1 (2022-09-29)",
            None
        ),
        Some((4 << 16) + (19 << 8) + 255)
    );
    // Ubuntu: /proc/version_signature's last field wins over both.
    assert_eq!(
        kconfig::parse_kernel_version(
            "5.4.0-12-generic",
            "#15-Ubuntu SMP Mon Jan 20 2020",
            Some("Ubuntu 5.4.0-12.15-generic 5.4.8")
        ),
        Some(v(5, 4, 8))
    );
    assert_eq!(kconfig::parse_kernel_version("6.1", "", None), None);
    assert_eq!(kconfig::parse_kernel_version("linux", "", None), None);
}

#[test]
fn gzipped_configs() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let text = b"CONFIG_HZ=250\n# CONFIG_X is not set\n".repeat(500);
    let dir = std::env::temp_dir().join(format!("rawbpf-externs-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config");
    std::fs::write(&file, &text).unwrap();
    // gzip FILE stores the file name (FNAME) in the header; from stdin
    // there is none. (Only -c: the VM guests' busybox gzip has few flags.)
    let named = Command::new("gzip").arg("-c").arg(&file).output().unwrap();
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let bare = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    for gz in [&named.stdout, &bare.stdout] {
        assert_eq!(kconfig::gunzip(gz).as_deref(), Ok(&text[..]));
    }
    let gz = &named.stdout;
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    assert_eq!(
        kconfig::gunzip(&bad_crc),
        Err("gzip data does not match its CRC-32".into())
    );
    for cut in [0, 10, 18, n / 2, n - 1] {
        assert!(kconfig::gunzip(&gz[..cut]).is_err(), "cut at {cut}");
    }
    assert!(kconfig::gunzip(b"CONFIG_HZ=250\n").is_err());
}

// --- ksyms and kfuncs against a kernel's types ----------------------------

fn ty(name_off: u32, kind: BtfKind, size_or_type: u32, data: BtfTypeData) -> BtfType {
    BtfType {
        name_off,
        kind,
        kind_flag: false,
        vlen_extra: 0,
        size_or_type,
        data,
    }
}

/// A small "kernel": int, long, struct task_struct and struct rq, the two
/// per-CPU variables, and the kfuncs with `from_pid_params` parameters.
fn kernel(runqueues_type: &str, prog_active_type: &str, from_pid_params: usize) -> Btf {
    let mut b = Btf::new();
    let int = |bits| BtfTypeData::Int {
        encoding: 1,
        offset: 0,
        bits,
    };
    let s = |b: &mut Btf, n: &str| b.add_string(n);
    let n = s(&mut b, "int");
    let int_id = b.add_type(ty(n, BtfKind::Int, 4, int(32)));
    let n = s(&mut b, "long");
    let long_id = b.add_type(ty(n, BtfKind::Int, 8, int(64)));
    let n = s(&mut b, "task_struct");
    let task = b.add_type(ty(n, BtfKind::Struct, 9000, BtfTypeData::Members(vec![])));
    let n = s(&mut b, "rq");
    let m = s(&mut b, "nr_running");
    let rq = b.add_type(ty(
        n,
        BtfKind::Struct,
        3584,
        BtfTypeData::Members(vec![BtfMember {
            name_off: m,
            type_id: int_id,
            offset: 0,
        }]),
    ));
    let by_name = |name: &str| match name {
        "int" => int_id,
        "long" => long_id,
        _ => rq,
    };
    let var = |b: &mut Btf, name: &str, t: u32| {
        let n = b.add_string(name);
        b.add_type(ty(n, BtfKind::Var, t, BtfTypeData::Var { linkage: 1 }))
    };
    var(&mut b, "bpf_prog_active", by_name(prog_active_type));
    var(&mut b, "runqueues", by_name(runqueues_type));
    let ptr = b.add_type(ty(0, BtfKind::Ptr, task, BtfTypeData::None));
    let p = s(&mut b, "pid");
    let from_pid_proto = b.add_type(ty(
        0,
        BtfKind::FuncProto,
        ptr,
        BtfTypeData::Params(
            (0..from_pid_params)
                .map(|_| BtfParam {
                    name_off: p,
                    type_id: int_id,
                })
                .collect(),
        ),
    ));
    let release_proto = b.add_type(ty(
        0,
        BtfKind::FuncProto,
        0,
        BtfTypeData::Params(vec![BtfParam {
            name_off: p,
            type_id: ptr,
        }]),
    ));
    for (name, proto) in [
        ("bpf_task_from_pid", from_pid_proto),
        ("bpf_task_release", release_proto),
    ] {
        let n = s(&mut b, name);
        b.add_type(ty(n, BtfKind::Func, proto, BtfTypeData::None));
    }
    b
}

fn id_of(b: &Btf, kind: BtfKind, name: &str) -> u32 {
    b.find_by_name(kind, name).unwrap()
}

#[test]
fn ksyms_resolve_against_kernel_types() {
    let k = kernel("rq", "int", 1);
    let s = spec("ksyms.bpf.o");
    let got = externs::resolve_btf(&s, &k).unwrap();
    let btf_id = |kind, name| KsymValue::Btf {
        kernel_id: id_of(&k, kind, name),
        module: None,
    };
    assert_eq!(
        got,
        [
            (
                "bpf_prog_active".to_owned(),
                btf_id(BtfKind::Var, "bpf_prog_active")
            ),
            ("rawbpf_no_such_variable".to_owned(), KsymValue::Missing),
            ("runqueues".to_owned(), btf_id(BtfKind::Var, "runqueues")),
        ]
    );
    let s = spec("kfuncs.bpf.o");
    let got = externs::resolve_btf(&s, &k).unwrap();
    assert_eq!(
        got,
        [
            (
                "bpf_task_from_pid".to_owned(),
                btf_id(BtfKind::Func, "bpf_task_from_pid")
            ),
            (
                "bpf_task_release".to_owned(),
                btf_id(BtfKind::Func, "bpf_task_release")
            ),
            ("rawbpf_no_such_kfunc".to_owned(), KsymValue::Missing),
        ],
        "typeless ksyms are kallsyms' business"
    );
}

#[test]
fn incompatible_kernel_types_are_refused_naming_both() {
    let err = |k: &Btf, object: &str| match externs::resolve_btf(&spec(object), k) {
        Err(ExternError { name, kind }) => format!("{name}: {kind}"),
        other => panic!("{other:?}"),
    };
    // A struct here, an int there.
    let e = err(&kernel("int", "int", 1), "ksyms.bpf.o");
    assert_eq!(
        e,
        format!(
            "runqueues: the object declares it as struct rq ([{}]), but vmlinux has int ([1]): \
             struct rq here is a STRUCT, int in the kernel a INT",
            match kind_of(&spec("ksyms.bpf.o"), "runqueues") {
                ExternKind::Ksym { typed: Some(t) } => t,
                other => panic!("{other:?}"),
            }
        )
    );
    // An int of another size.
    let e = err(&kernel("rq", "long", 1), "ksyms.bpf.o");
    assert!(
        e.starts_with("bpf_prog_active:") && e.contains("4 bytes here, 8 in the kernel"),
        "{e}"
    );
    // A kfunc with another number of parameters.
    let e = err(&kernel("rq", "int", 2), "kfuncs.bpf.o");
    assert!(
        e.starts_with("bpf_task_from_pid: the object declares it as struct task_struct * (__s32)")
            && e.contains("takes 1 parameters, the kernel's 2"),
        "{e}"
    );
    // A strong kfunc the kernel lacks.
    let mut k = kernel("rq", "int", 1);
    let release = id_of(&k, BtfKind::Func, "bpf_task_release");
    k.type_by_id_mut(release).unwrap().kind = BtfKind::Typedef;
    let e = err(&k, "kfuncs.bpf.o");
    assert_eq!(
        e,
        "bpf_task_release: the kernel's BTF has no FUNC bpf_task_release"
    );
}

#[test]
fn typeless_ksyms_from_kallsyms() {
    let s = spec("kfuncs.bpf.o");
    let kallsyms = "ffffffff81000000 T _stext\n\
                    ffffffff814e61b0 T bpf_prog_put\n\
                    ffffffffc0000000 t helper\t[some_module]\n";
    let got = externs::resolve_kallsyms(&s, kallsyms.as_bytes()).unwrap();
    assert_eq!(
        got,
        [
            (
                "bpf_prog_put".to_owned(),
                KsymValue::Address(0xffff_ffff_814e_61b0)
            ),
            ("rawbpf_no_such_symbol".to_owned(), KsymValue::Missing),
        ]
    );
    let err = |text: &str| {
        externs::resolve_kallsyms(&s, text.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("ffffffff81000000 T _stext\n"),
        "extern bpf_prog_put: not in /proc/kallsyms"
    );
    let e = err("ffffffff814e61b0 T bpf_prog_put\nffffffff81000000 t bpf_prog_put\n");
    assert!(
        e.contains("two addresses, 0xffffffff814e61b0 and 0xffffffff81000000"),
        "{e}"
    );
    // Every address 0: hidden from this user.
    let e = err("0000000000000000 T _stext\n0000000000000000 T bpf_prog_put\n");
    assert!(e.contains("kptr_restrict"), "{e}");
    // Other addresses shown: a 0 is real (x86-64 per-CPU symbols before 6.15).
    let per_cpu = "0000000000000000 A bpf_prog_put\nffffffff81000000 T _stext\n";
    assert_eq!(
        externs::resolve_kallsyms(&s, per_cpu.as_bytes()).unwrap()[0].1,
        KsymValue::Address(0)
    );
    let e = err("garbage\n");
    assert!(e.contains("line 1 is not ADDRESS TYPE NAME"), "{e}");
    // A static variable's .llvm.N suffix is not part of its name.
    let d = "ffffffff82000000 d bpf_prog_put.llvm.123456\n";
    assert_eq!(
        externs::resolve_kallsyms(&s, d.as_bytes()).unwrap()[0].1,
        KsymValue::Address(0xffff_ffff_8200_0000)
    );
}

/// A kconfig value too big for any map (a crafted char[0x7fffffff]) is
/// refused at parse time, not allocated.
#[test]
fn huge_kconfig_values_are_refused() {
    let mut d = common::object("kconfig.bpf.o");
    let (start, size) = common::section_range(&d, ".BTF");
    let hdr_len = common::u32_at(&d, start + 4) as usize;
    let types = start + hdr_len + common::u32_at(&d, start + 8) as usize;
    // An ARRAY record (info: kind 3, vlen 0; size 0) of 16 elements.
    let array_of_16 = (types..start + size - 24)
        .find(|&at| {
            common::u32_at(&d, at + 4) == 3 << 24
                && common::u32_at(&d, at + 8) == 0
                && common::u32_at(&d, at + 20) == 16
        })
        .expect("char[16] in .BTF");
    common::put_u32(&mut d, array_of_16 + 20, 0x7fff_ffff);
    match ObjectSpec::parse(&d) {
        Err(ParseError::BadExtern { name, reason }) => {
            let reason = reason.to_string();
            assert_eq!(name, "CONFIG_DEFAULT_HOSTNAME");
            assert!(reason.contains("larger than 1048576 bytes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
