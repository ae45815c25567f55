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
        float: refused(blob(vec![(
            "float",
            ty(BtfKind::Float, 4, BtfTypeData::None),
        )])),
        decl_tag: refused(decl_tags()),
        type_tag: refused(blob(vec![
            ("int", int()),
            ("tag", ty(BtfKind::TypeTag, 1, BtfTypeData::None)),
            ("", ty(BtfKind::Ptr, 2, BtfTypeData::None)),
        ])),
        enum64: refused(enum64()),
        enum_signed: refused(signed_enum()),
    }
}

fn blob(types: Vec<(&str, BtfType)>) -> Btf {
    let mut btf = Btf::new();
    for (name, mut t) in types {
        if !name.is_empty() {
            t.name_off = btf.add_string(name);
        }
        btf.add_type(t);
    }
    btf
}

fn ty(kind: BtfKind, size_or_type: u32, data: BtfTypeData) -> BtfType {
    BtfType {
        name_off: 0,
        kind,
        kind_flag: false,
        vlen_extra: 0,
        size_or_type,
        data,
    }
}

fn int() -> BtfType {
    let data = BtfTypeData::Int {
        encoding: 1,
        offset: 0,
        bits: 32,
    };
    ty(BtfKind::Int, 4, data)
}

/// `[1] int, [2] int (int a), [3] FUNC x` (static or global).
fn funcs(global: bool) -> Btf {
    let mut btf = blob(vec![("int", int())]);
    let a = btf.add_string("a");
    let params = vec![BtfParam {
        name_off: a,
        type_id: 1,
    }];
    btf.add_type(ty(BtfKind::FuncProto, 1, BtfTypeData::Params(params)));
    let mut f = ty(BtfKind::Func, 2, BtfTypeData::None);
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
    blob(vec![
        ("", int()),
        ("x", ty(BtfKind::Var, 1, BtfTypeData::Var { linkage: 0 })),
        (
            section,
            ty(BtfKind::Datasec, 4, BtfTypeData::Datasec(vec![secinfo])),
        ),
    ])
}

/// DECL_TAGs on a variable and on a function's parameter (component 0):
/// both places clang puts them.
fn decl_tags() -> Btf {
    let mut btf = funcs(false);
    for (target, component_idx) in [(3, 0), (1, -1)] {
        let mut t = ty(
            BtfKind::DeclTag,
            target,
            BtfTypeData::DeclTag { component_idx },
        );
        t.name_off = btf.add_string("tag");
        if component_idx == -1 {
            let mut v = ty(BtfKind::Var, 1, BtfTypeData::Var { linkage: 0 });
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
    let mut t = ty(BtfKind::Enum64, 8, BtfTypeData::Enum64(values));
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
    let mut t = ty(BtfKind::Enum, 4, BtfTypeData::Enum(values));
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

impl ObjectBtf {
    /// `e` from creating map `m`, said to follow from the refused BTF when
    /// the map would have had BTF types.
    pub fn map_error(&self, m: &MapSpec, e: LoadError) -> LoadError {
        let needs = m.btf_key_type_id != 0
            || m.btf_value_type_id != 0
            || matches!(
                m.map_type,
                MapType::SK_STORAGE
                    | MapType::INODE_STORAGE
                    | MapType::TASK_STORAGE
                    | MapType::CGRP_STORAGE
                    | MapType::STRUCT_OPS
            );
        self.explain(needs, format!("map {}", m.name), e)
    }

    /// `e` from loading program `p`, said to follow from the refused BTF
    /// when the program uses a map that would have had BTF types (the
    /// verifier wants them for `bpf_spin_lock`, timers, kptrs: "map has to
    /// have BTF") or has global functions besides its entry (verified on
    /// their own only with func_info).
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
        let typed_map = |map: &str| {
            spec.map(map)
                .is_some_and(|m| m.btf_key_type_id != 0 || m.btf_value_type_id != 0)
        };
        let needs = p.functions(spec).skip(1).any(|f| global(&f.name))
            || p.functions(spec).any(|f| {
                f.relocations.iter().any(|r| match &r.target {
                    RelocTarget::Map { map } => typed_map(map),
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
