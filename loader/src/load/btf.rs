//! The object's BTF into the kernel: if the kernel refuses it, what its
//! BTF loader lacks is probed once per process with tiny BTF blobs (one
//! feature each, as libbpf's `probe_kern_btf_*`; never guessed from the
//! kernel version), the BTF is sanitized for it ([`crate::obj::btf::sanitize`]) and loaded. Only
//! when even the sanitized BTF is refused does the load go on without it,
//! and then a map or program that needed it fails with an error that says
//! first that the BTF was refused, and the kernel's BTF log.

use super::{log_text, LoadError, LOG_START};
use crate::obj::btf::sanitize::{sanitize, BtfLacks};
use crate::obj::btf::{
    Btf, BtfEnum, BtfEnum64, BtfKind, BtfParam, BtfType, BtfTypeData, BtfVarSecinfo,
};
use crate::obj::{MapSpec, ObjectSpec, ProgramSpec, RelocTarget};
use crate::sys;
use crate::uapi::MapType;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

/// What this kernel's BTF loader lacks, probed on first use and kept for
/// the process (a fact of the running kernel).
pub fn kernel_btf_lacks() -> BtfLacks {
    static LACKS: OnceLock<BtfLacks> = OnceLock::new();
    *LACKS.get_or_init(probe_btf_lacks)
}

/// Probes every BTF feature sanitization knows (each a `BPF_BTF_LOAD` of a
/// blob of a few types). A kernel without BTF at all lacks everything.
pub fn probe_btf_lacks() -> BtfLacks {
    let refused = |btf: Btf| sys::btf_load(&btf.to_bytes(), None).is_err();
    BtfLacks {
        func: refused(funcs(false)),
        global_func: refused(funcs(true)),
        datasec: refused(datasec(".data")),
        qmark_datasec: refused(datasec("?.data")),
        float: refused(Btf::of(vec![(
            "float",
            BtfType::anon(BtfKind::Float, 4, BtfTypeData::None),
        )])),
        decl_tag: refused(decl_tags()),
        type_tag: refused(Btf::of(vec![
            ("int", BtfType::int32()),
            ("tag", BtfType::anon(BtfKind::TypeTag, 1, BtfTypeData::None)),
            ("", BtfType::anon(BtfKind::Ptr, 2, BtfTypeData::None)),
        ])),
        enum64: refused(enum64()),
        enum_signed: refused(signed_enum()),
    }
}

/// `[1] int, [2] int (int a), [3] FUNC x` (static or global).
fn funcs(global: bool) -> Btf {
    let mut btf = Btf::of(vec![("int", BtfType::int32())]);
    let a = btf.add_string("a");
    let params = vec![BtfParam {
        name_off: a,
        type_id: 1,
    }];
    btf.add_type(BtfType::anon(
        BtfKind::FuncProto,
        1,
        BtfTypeData::Params(params),
    ));
    let mut f = BtfType::anon(BtfKind::Func, 2, BtfTypeData::None);
    f.vlen_extra = u16::from(global);
    f.name_off = btf.add_string("x");
    btf.add_type(f);
    btf
}

/// `static int x;` in a DATASEC named `section`.
fn datasec(section: &str) -> Btf {
    let secinfo = BtfVarSecinfo {
        type_id: 2,
        offset: 0,
        size: 4,
    };
    Btf::of(vec![
        ("", BtfType::int32()),
        (
            "x",
            BtfType::anon(BtfKind::Var, 1, BtfTypeData::Var { linkage: 0 }),
        ),
        (
            section,
            BtfType::anon(BtfKind::Datasec, 4, BtfTypeData::Datasec(vec![secinfo])),
        ),
    ])
}

/// DECL_TAGs on a variable and on a function's parameter (component 0):
/// both places clang puts them.
fn decl_tags() -> Btf {
    let mut btf = funcs(false);
    for (target, component_idx) in [(3, 0), (1, -1)] {
        let mut t = BtfType::anon(
            BtfKind::DeclTag,
            target,
            BtfTypeData::DeclTag { component_idx },
        );
        t.name_off = btf.add_string("tag");
        if component_idx == -1 {
            let mut v = BtfType::anon(BtfKind::Var, 1, BtfTypeData::Var { linkage: 0 });
            v.name_off = btf.add_string("v");
            t.size_or_type = btf.add_type(v);
        }
        btf.add_type(t);
    }
    btf
}

fn enum64() -> Btf {
    let mut btf = Btf::new();
    let v = btf.add_string("V");
    let values = vec![BtfEnum64 {
        name_off: v,
        val: 1 << 40,
    }];
    let mut t = BtfType::anon(BtfKind::Enum64, 8, BtfTypeData::Enum64(values));
    t.name_off = btf.add_string("e");
    btf.add_type(t);
    btf
}

/// An ENUM with the kind flag of a signed enum (clang's for `enum { A = -1 }`).
fn signed_enum() -> Btf {
    let mut btf = Btf::new();
    let v = btf.add_string("A");
    let values = vec![BtfEnum {
        name_off: v,
        val: -1,
    }];
    let mut t = BtfType::anon(BtfKind::Enum, 4, BtfTypeData::Enum(values));
    t.kind_flag = true;
    t.name_off = btf.add_string("e");
    btf.add_type(t);
    btf
}

/// Why the kernel refused the object's BTF (even sanitized): its errno and
/// the last lines of its BTF log.
#[derive(Debug)]
pub struct BtfRefusal {
    /// errno.
    pub source: std::io::Error,
    /// The kernel's BTF log (its last few lines), maybe empty.
    pub log: String,
}

/// The BTF loaded for an object, or why it could not be.
#[derive(Debug, Default)]
pub(super) struct ObjectBtf {
    pub fd: Option<OwnedFd>,
    pub refused: Option<BtfRefusal>,
}

/// Sanitizes `btf` for `lacks` and loads it; on refusal, loads it again
/// with a log to say why. Public (hidden) so that tests can load the BTF a
/// kernel lacking `lacks` would get.
#[doc(hidden)]
pub fn load_sanitized(btf: &Btf, lacks: &BtfLacks) -> Result<OwnedFd, BtfRefusal> {
    let bytes = if lacks.any() {
        sanitize(btf, lacks).0.to_bytes()
    } else {
        btf.to_bytes()
    };
    sys::btf_load(&bytes, None).map_err(|source| {
        let mut log = vec![0u8; LOG_START];
        let _ = sys::btf_load(&bytes, Some(&mut log));
        let log = log_text(&log);
        let lines: Vec<&str> = log.lines().collect();
        BtfRefusal {
            source,
            log: lines[lines.len().saturating_sub(3)..].join("\n"),
        }
    })
}

/// Loads the object's BTF, sanitized for this kernel (and for `pretend`,
/// a test's); if the kernel refuses it, goes on without and says so. The
/// BTF as it is goes first: a kernel that takes it costs no probe (a load
/// of a few microseconds matters to `rawbpf load`); only a refusal probes
/// what the kernel lacks and loads the sanitized BTF.
pub(super) fn load_object_btf(
    spec: &ObjectSpec,
    pretend: Option<BtfLacks>,
    warnings: &mut Vec<String>,
) -> ObjectBtf {
    let Some(btf) = spec.btf.as_ref() else {
        return ObjectBtf::default();
    };
    let loaded = match pretend {
        None => sys::btf_load(&btf.to_bytes(), None)
            .or_else(|_| load_sanitized(btf, &kernel_btf_lacks())),
        Some(p) => load_sanitized(btf, &kernel_btf_lacks().union(p)),
    };
    match loaded {
        Ok(fd) => ObjectBtf {
            fd: Some(fd),
            refused: None,
        },
        Err(r) => {
            warnings.push(format!(
                "the kernel refused the object's BTF ({}); loading without it (no func/line info, no BTF map types){}",
                r.source,
                r.log.lines().last().map(|l| format!(": {l}")).unwrap_or_default()
            ));
            ObjectBtf {
                fd: None,
                refused: Some(r),
            }
        }
    }
}

/// Struct types the kernel finds in a map value only through BTF.
const SPECIAL_FIELDS: [&str; 8] = [
    "bpf_spin_lock",
    "bpf_res_spin_lock",
    "bpf_timer",
    "bpf_wq",
    "bpf_list_head",
    "bpf_rb_root",
    "bpf_refcount",
    "bpf_task_work",
];

/// Whether type `id` holds a field the kernel knows only through BTF: a
/// special struct ([`SPECIAL_FIELDS`]) or a kptr (a pointer tagged
/// `kptr`, `kptr_untrusted`, `percpu_kptr`), in its members or array
/// elements, `depth` levels down at most.
fn has_special_field(btf: &Btf, id: u32, depth: u32) -> bool {
    if depth == 0 {
        return false;
    }
    let Ok(t) = btf.type_by_id(id) else {
        return false;
    };
    let name = btf.string(t.name_off).unwrap_or("");
    match (&t.kind, &t.data) {
        (BtfKind::TypeTag, _) if name.contains("kptr") => true,
        (BtfKind::Struct | BtfKind::Union, _) if SPECIAL_FIELDS.contains(&name) => true,
        (BtfKind::Struct | BtfKind::Union, BtfTypeData::Members(m)) => m
            .iter()
            .any(|m| has_special_field(btf, m.type_id, depth - 1)),
        (BtfKind::Array, BtfTypeData::Array { elem_type, .. }) => {
            has_special_field(btf, *elem_type, depth - 1)
        }
        (BtfKind::Ptr, _) => is_kptr(btf, t.size_or_type),
        (
            BtfKind::Typedef
            | BtfKind::Const
            | BtfKind::Volatile
            | BtfKind::Restrict
            | BtfKind::TypeTag,
            _,
        ) => has_special_field(btf, t.size_or_type, depth - 1),
        _ => false,
    }
}

/// Whether a pointer's pointee `id` carries a `kptr` type tag (among its
/// modifiers: what it points to is not a field of the value).
fn is_kptr(btf: &Btf, mut id: u32) -> bool {
    for _ in 0..16 {
        let Ok(t) = btf.type_by_id(id) else {
            return false;
        };
        match t.kind {
            BtfKind::TypeTag if btf.string(t.name_off).unwrap_or("").contains("kptr") => {
                return true
            }
            BtfKind::TypeTag | BtfKind::Const | BtfKind::Volatile | BtfKind::Restrict => {
                id = t.size_or_type
            }
            _ => return false,
        }
    }
    false
}

/// Whether map `m` needs the object's BTF: local storage and struct_ops
/// (the kernel refuses them without), or a value with a spin lock, timer,
/// kptr... (the verifier refuses its programs without: "map has to have
/// BTF").
pub fn map_needs_btf(spec: &ObjectSpec, m: &MapSpec) -> bool {
    matches!(
        m.map_type,
        MapType::SK_STORAGE
            | MapType::INODE_STORAGE
            | MapType::TASK_STORAGE
            | MapType::CGRP_STORAGE
            | MapType::STRUCT_OPS
    ) || (m.btf_value_type_id != 0
        && spec
            .btf
            .as_ref()
            .is_some_and(|btf| has_special_field(btf, m.btf_value_type_id, 16)))
}

impl ObjectBtf {
    /// `e` from creating map `m`, said to follow from the refused BTF when
    /// the map needs BTF.
    pub fn map_error(&self, spec: &ObjectSpec, m: &MapSpec, e: LoadError) -> LoadError {
        if self.refused.is_none() {
            return e;
        }
        self.explain(map_needs_btf(spec, m), format!("map {}", m.name), e)
    }

    /// `e` from loading program `p`, said to follow from the refused BTF
    /// when the program uses a map that needs BTF or has global functions
    /// besides its entry (verified on their own only with func_info).
    pub fn program_error(&self, p: &ProgramSpec, spec: &ObjectSpec, e: LoadError) -> LoadError {
        if self.refused.is_none() {
            return e;
        }
        let global = |name: &str| {
            spec.btf.as_ref().is_some_and(|btf| {
                btf.find_by_name(BtfKind::Func, name)
                    .and_then(|id| btf.type_by_id(id).ok())
                    .is_some_and(|t| t.func_linkage() == 1)
            })
        };
        let needs = p.functions(spec).skip(1).any(|f| global(&f.name))
            || p.functions(spec).any(|f| {
                f.relocations.iter().any(|r| match &r.target {
                    RelocTarget::Map { map } => {
                        spec.map(map).is_some_and(|m| map_needs_btf(spec, m))
                    }
                    _ => false,
                })
            });
        self.explain(needs, format!("program {}", p.name()), e)
    }

    /// `e` from creating the struct_ops maps: they always need BTF.
    pub fn struct_ops_error(&self, e: LoadError) -> LoadError {
        self.explain(true, "struct_ops".to_owned(), e)
    }

    fn explain(&self, needs: bool, what: String, e: LoadError) -> LoadError {
        match &self.refused {
            Some(r) if needs => LoadError::BtfRefused {
                what,
                reason: format!(
                    "{}{}",
                    r.source,
                    if r.log.is_empty() {
                        String::new()
                    } else {
                        format!("; BTF log:\n{}", r.log)
                    }
                ),
                source: Box::new(e),
            },
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spin locks, timers and kptrs are found through typedefs, arrays and
    /// nested structs; plain values are not.
    #[test]
    fn special_fields_found() {
        let mut btf = Btf::new();
        let int = btf.add_type(BtfType::int32());
        let mut lock = BtfType::anon(BtfKind::Struct, 4, BtfTypeData::Members(vec![]));
        lock.name_off = btf.add_string("bpf_spin_lock");
        let lock = btf.add_type(lock);
        let arr = btf.add_type(BtfType::anon(
            BtfKind::Array,
            0,
            BtfTypeData::Array {
                elem_type: lock,
                index_type: int,
                nelems: 2,
            },
        ));
        let member = |type_id| crate::obj::btf::BtfMember {
            name_off: 0,
            type_id,
            offset: 0,
        };
        let outer = btf.add_type(BtfType::anon(
            BtfKind::Struct,
            8,
            BtfTypeData::Members(vec![member(int), member(arr)]),
        ));
        let plain = btf.add_type(BtfType::anon(
            BtfKind::Struct,
            4,
            BtfTypeData::Members(vec![member(int)]),
        ));
        let mut tag = BtfType::anon(BtfKind::TypeTag, plain, BtfTypeData::None);
        tag.name_off = btf.add_string("kptr_untrusted");
        let tag = btf.add_type(tag);
        let ptr = btf.add_type(BtfType::anon(BtfKind::Ptr, tag, BtfTypeData::None));
        let with_kptr = btf.add_type(BtfType::anon(
            BtfKind::Struct,
            8,
            BtfTypeData::Members(vec![member(ptr)]),
        ));
        assert!(has_special_field(&btf, outer, 16));
        assert!(has_special_field(&btf, with_kptr, 16));
        assert!(!has_special_field(&btf, plain, 16));
        assert!(!has_special_field(&btf, int, 16));
        // A plain pointer to a struct with a lock is no field of the value.
        let ptr_to_lock = btf.add_type(BtfType::anon(BtfKind::Ptr, outer, BtfTypeData::None));
        let with_ptr = btf.add_type(BtfType::anon(
            BtfKind::Struct,
            8,
            BtfTypeData::Members(vec![member(ptr_to_lock)]),
        ));
        assert!(!has_special_field(&btf, with_ptr, 16));
    }

    /// Every probe blob is well-formed BTF (it parses back).
    #[test]
    fn probe_blobs_parse() {
        for btf in [
            funcs(false),
            funcs(true),
            datasec("?.data"),
            decl_tags(),
            enum64(),
            signed_enum(),
        ] {
            Btf::parse(&btf.to_bytes()).unwrap();
        }
    }

    /// Each blob, sanitized for what it probes, no longer uses that feature.
    #[test]
    fn sanitized_probe_blobs_avoid_the_feature() {
        let l = BtfLacks::ALL;
        let (d, _) = sanitize(&decl_tags(), &l);
        assert!(!d.kinds_used().contains(&BtfKind::DeclTag));
        let (e, _) = sanitize(&enum64(), &l);
        assert!(!e.kinds_used().contains(&BtfKind::Enum64));
        let (s, _) = sanitize(&signed_enum(), &l);
        assert!(s.types().all(|(_, t)| !t.kind_flag));
    }
}
