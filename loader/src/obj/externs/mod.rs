//! Externs: what the object uses but the kernel defines. clang writes each as
//! an undefined ELF symbol (`STB_GLOBAL` or `STB_WEAK`, `STT_NOTYPE`) and a
//! BTF `VAR` (or a `FUNC` for a kfunc) with extern linkage in one of two
//! DATASECs:
//!
//! - `.kconfig` (`extern int CONFIG_HZ __kconfig;`): values of the kernel's
//!   config and a few the loader computes (`LINUX_KERNEL_VERSION`). The
//!   loader lays them out in a one-element array map of that name, read-only
//!   to programs and frozen, as libbpf does: sorted by alignment (largest
//!   first), then size, then name, each aligned.
//! - `.ksyms` (`extern const struct rq runqueues __ksym;`, kfunc
//!   declarations): kernel variables and functions. A typed variable or a
//!   kfunc is found in the kernel's BTF by name; a typeless one
//!   (`extern const void x __ksym;`) in `/proc/kallsyms`.
//!
//! This module is pure: it reads externs out of the ELF and BTF (and fixes
//! the object's BTF so the kernel accepts it, as libbpf's
//! `bpf_object__collect_externs` does), and resolves ksyms and kfuncs
//! against any [`TargetTypes`](super::core::TargetTypes) and kallsyms text.
//! Reading the kernel's config is the load layer's (its `kconfig` module);
//! applying the results is the loader's.
//!
//! - this file: the externs an object declares ([`ExternSpec`]) and the
//!   `.kconfig` layout;
//! - `datasec`: the BTF rewrites the kernel needs, and the `.kconfig` map;
//! - `resolve`: ksyms and kfuncs against the kernel's BTF and kallsyms;
//! - `describe`: BTF types in C-like words, for messages and `inspect`.

mod datasec;
mod describe;
mod resolve;

pub use describe::{describe_target_type, describe_type};
pub use resolve::{
    extern_names, resolve_btf, resolve_kallsyms, ExternError, ExternErrorKind, KsymValue,
};

use super::btf::{Btf, BtfKind, BtfTypeData};
use super::core::essential_name;
use super::elf::{Elf, Symbol};
use super::{BadExternReason, MapSpec, ParseError};
use datasec::{fix_kconfig_datasec, fix_ksyms_datasec, kconfig_map};

/// The DATASEC (and map) of `__kconfig` externs.
pub const KCONFIG_SECTION: &str = ".kconfig";
/// The DATASEC of `__ksym` externs and kfuncs.
pub const KSYMS_SECTION: &str = ".ksyms";

/// `BTF_VAR_GLOBAL_ALLOCATED`: what extern VARs become before the kernel sees them.
const VAR_GLOBAL_ALLOCATED: u32 = 1;
/// `BTF_VAR_GLOBAL_EXTERN`.
const VAR_GLOBAL_EXTERN: u32 = 2;
/// `BTF_FUNC_GLOBAL`.
const FUNC_GLOBAL: u16 = 1;
/// `BTF_FUNC_EXTERN`.
const FUNC_EXTERN: u16 = 2;
/// `BTF_INT_SIGNED` and `BTF_INT_BOOL` in an INT's encoding.
const INT_SIGNED: u8 = 1;
const INT_BOOL: u8 = 4;
/// The most bytes of kconfig values an object may have: real ones have
/// a few dozen (the kernel's array maps stop at a few MiB anyway).
const KCONFIG_MAX: u32 = 1 << 20;
/// The name of the VAR that stands in for kfuncs in `.ksyms` (libbpf's).
const DUMMY_KSYM: &str = "dummy_ksym";

/// One extern the object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternSpec {
    /// Its name (the symbol's and the BTF `VAR`/`FUNC`'s).
    pub name: String,
    /// `__weak`: a kernel without it reads 0 instead of failing the load.
    pub weak: bool,
    /// The `VAR` or `FUNC` in the object's BTF.
    pub btf_id: u32,
    /// What it is.
    pub kind: ExternKind,
}

impl ExternSpec {
    /// The name the kernel's BTF is searched for: a kfunc's without its
    /// `___flavor` suffix (libbpf's `essent_name`), a variable's as written.
    pub fn kernel_name(&self) -> &str {
        match self.kind {
            ExternKind::Kfunc { .. } => essential_name(&self.name),
            _ => &self.name,
        }
    }
}

/// The kinds of extern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    /// `__kconfig`: a value in the `.kconfig` map.
    Kconfig {
        /// How the value is stored.
        ty: KconfigType,
        /// Byte offset in the `.kconfig` map's value.
        offset: u32,
        /// Size in bytes (an integer's width, a char array's length).
        size: u32,
    },
    /// `__ksym` variable.
    Ksym {
        /// Its type in the object's BTF (modifiers and typedefs skipped):
        /// `Some` for a typed ksym, found in the kernel's BTF; `None` for a
        /// typeless one (`extern const void x __ksym;`), found in
        /// `/proc/kallsyms`.
        typed: Option<u32>,
    },
    /// A kernel function (kfunc) declared `__ksym`.
    Kfunc {
        /// Its `FUNC` in the object's BTF (whose type is the prototype).
        func_id: u32,
    },
}

/// How a `__kconfig` value is stored (libbpf's `enum kcfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KconfigType {
    /// `bool`: `y` is 1, `n` is 0.
    Bool,
    /// `enum libbpf_tristate`: `n` 0, `y` 1, `m` 2.
    Tristate,
    /// A one-byte integer (`char`): takes `y`/`n`/`m` as the letter, or a number.
    Char,
    /// An integer of 2, 4 or 8 bytes.
    Int {
        /// Whether it is signed.
        signed: bool,
    },
    /// A `char` array: takes a quoted string.
    CharArray,
}

impl KconfigType {
    /// The type in words, for `inspect` and errors (`u32`, `char[16]`).
    pub fn describe(self, size: u32) -> String {
        match self {
            KconfigType::Bool => "bool".into(),
            KconfigType::Tristate => "tristate".into(),
            KconfigType::Char => "char".into(),
            KconfigType::Int { signed } => {
                format!("{}{}", if signed { 's' } else { 'u' }, size * 8)
            }
            KconfigType::CharArray => format!("char[{size}]"),
        }
    }
}

/// The externs of an object being parsed, and the `.kconfig` map they need.
pub(super) struct Externs {
    pub specs: Vec<ExternSpec>,
    pub kconfig_map: Option<MapSpec>,
    /// Indices of `specs` sorted by name, to find one by binary search.
    by_name: Vec<usize>,
}

impl Externs {
    pub fn get(&self, name: &str) -> Option<&ExternSpec> {
        let k = self
            .by_name
            .binary_search_by(|&i| self.specs[i].name.as_str().cmp(name))
            .ok()?;
        Some(&self.specs[self.by_name[k]])
    }
}

/// Finds every extern symbol, what it is, and where kconfig values go;
/// rewrites the object's `.kconfig` and `.ksyms` DATASECs so the kernel
/// accepts the BTF (it refuses extern linkage), as libbpf does.
pub(super) fn collect(elf: &Elf<'_>, btf: Option<&mut Btf>) -> Result<Externs, ParseError> {
    let none = Externs {
        specs: Vec::new(),
        kconfig_map: None,
        by_name: Vec::new(),
    };
    let symbols: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.undefined && s.global && s.st_type == object::elf::STT_NOTYPE.0 && !s.name.is_empty()
        })
        .collect();
    if symbols.is_empty() {
        return Ok(none);
    }
    collect_some(none, symbols, btf)
}

/// [`collect`] for an object with extern symbols: out of line, so that
/// objects without any (most) do not run through its code.
#[inline(never)]
fn collect_some(
    mut none: Externs,
    symbols: Vec<&Symbol<'_>>,
    btf: Option<&mut Btf>,
) -> Result<Externs, ParseError> {
    let Some(btf) = btf else {
        return Err(bad_extern(symbols[0].name, BadExternReason::NoBtf));
    };
    let found_btf = ExternBtf::find(btf, &symbols)?;
    // (spec, alignment) in symbol order; sorted below.
    let mut found: Vec<(ExternSpec, u32)> = Vec::with_capacity(symbols.len());
    let mut sections = ExternSections::default();
    for sym in symbols {
        found.push(extern_of_symbol(btf, sym, &found_btf, &mut sections)?);
    }
    let kconfig_size = lay_out_kconfig(&mut found)?;
    none.specs = found.into_iter().map(|(e, _)| e).collect();
    let mut by_name: Vec<usize> = (0..none.specs.len()).collect();
    sort_by(&mut by_name, &|&a, &b| {
        none.specs[a].name.cmp(&none.specs[b].name)
    });
    none.by_name = by_name;
    if let Some(sec) = sections.ksyms {
        fix_ksyms_datasec(btf, sec, &none)?;
    }
    if let Some(sec) = sections.kconfig {
        fix_kconfig_datasec(btf, sec, &none, kconfig_size)?;
        none.kconfig_map = Some(kconfig_map(sec, kconfig_size));
    }
    Ok(none)
}

fn bad_extern(name: &str, reason: BadExternReason) -> ParseError {
    ParseError::BadExtern {
        name: name.to_owned(),
        reason,
    }
}

/// The DATASECs that hold externs, once seen.
#[derive(Default)]
struct ExternSections {
    kconfig: Option<u32>,
    ksyms: Option<u32>,
}

/// The first VAR or FUNC of each extern's name, and the DATASEC that holds
/// it: one pass over the types each, names and ids found by binary search
/// (externs are few, types many).
struct ExternBtf<'a> {
    /// Extern names, sorted and unique.
    names: Vec<&'a str>,
    /// The VAR or FUNC of each of `names`.
    ids: Vec<Option<u32>>,
    /// (VAR or FUNC id, its DATASEC), sorted by id.
    datasec_of: Vec<(u32, Option<u32>)>,
}

impl<'a> ExternBtf<'a> {
    fn find(btf: &Btf, symbols: &[&Symbol<'a>]) -> Result<ExternBtf<'a>, ParseError> {
        let mut names: Vec<&str> = symbols.iter().map(|s| s.name).collect();
        sort_by(&mut names, &|a, b| a.cmp(b));
        names.dedup();
        let mut ids: Vec<Option<u32>> = vec![None; names.len()];
        for (id, t) in btf.types() {
            if matches!(t.kind, BtfKind::Var | BtfKind::Func) {
                if let Ok(k) = names.binary_search(&btf.string(t.name_off)?) {
                    ids[k].get_or_insert(id);
                }
            }
        }
        let mut datasec_of: Vec<(u32, Option<u32>)> =
            ids.iter().flatten().map(|&id| (id, None)).collect();
        sort_by(&mut datasec_of, &|a, b| a.0.cmp(&b.0));
        for (id, t) in btf.types() {
            if let BtfTypeData::Datasec(vars) = &t.data {
                for v in vars {
                    if let Ok(k) = datasec_of.binary_search_by_key(&v.type_id, |e| e.0) {
                        datasec_of[k].1.get_or_insert(id);
                    }
                }
            }
        }
        Ok(ExternBtf {
            names,
            ids,
            datasec_of,
        })
    }

    fn id(&self, name: &str) -> Option<u32> {
        self.names
            .binary_search(&name)
            .ok()
            .and_then(|k| self.ids[k])
    }

    fn datasec(&self, id: u32) -> Option<u32> {
        self.datasec_of
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .and_then(|k| self.datasec_of[k].1)
    }
}

/// One extern symbol: what its BTF says it is, and its alignment (for a
/// kconfig value; 0 otherwise). Notes the DATASEC it is in.
fn extern_of_symbol(
    btf: &Btf,
    sym: &Symbol<'_>,
    found: &ExternBtf<'_>,
    sections: &mut ExternSections,
) -> Result<(ExternSpec, u32), ParseError> {
    let name = sym.name;
    let bad = |reason: BadExternReason| bad_extern(name, reason);
    let id = found
        .id(name)
        .ok_or_else(|| bad(BadExternReason::NoBtfEntry))?;
    let t = btf.type_by_id(id)?;
    let extern_linkage = match t.data {
        BtfTypeData::Var { linkage } => linkage == VAR_GLOBAL_EXTERN,
        _ => t.func_linkage() == FUNC_EXTERN,
    };
    if !extern_linkage {
        return Err(bad(BadExternReason::NotDeclaredExtern {
            kind: t.kind,
            name: name.to_owned(),
            id,
        }));
    }
    let Some(sec) = found.datasec(id) else {
        return Err(bad(BadExternReason::NoDatasec { kind: t.kind, id }));
    };
    let is_func = t.kind == BtfKind::Func;
    let (kind, align) = match btf.type_name(sec)? {
        KCONFIG_SECTION if is_func => return Err(bad(BadExternReason::KconfigFunction)),
        KCONFIG_SECTION => {
            sections.kconfig = Some(sec);
            kconfig_kind(btf, t.size_or_type).map_err(bad)?
        }
        KSYMS_SECTION if is_func => {
            sections.ksyms = Some(sec);
            (ExternKind::Kfunc { func_id: id }, 0)
        }
        KSYMS_SECTION => {
            sections.ksyms = Some(sec);
            let ty = btf.strip_modifiers(t.size_or_type)?;
            let typed = (btf.type_by_id(ty)?.kind != BtfKind::Void).then_some(ty);
            (ExternKind::Ksym { typed }, 0)
        }
        other => {
            return Err(bad(BadExternReason::WrongSection {
                section: other.to_owned(),
            }))
        }
    };
    let spec = ExternSpec {
        name: name.to_owned(),
        weak: sym.weak,
        btf_id: id,
        kind,
    };
    Ok((spec, align))
}

/// Sorts externs as libbpf's `cmp_externs` does (kconfig first, largest
/// alignment first, then smallest size, then name; ksyms and kfuncs by
/// name) and gives each kconfig value its offset in the `.kconfig` map.
/// Returns the map's size.
fn lay_out_kconfig(found: &mut Vec<(ExternSpec, u32)>) -> Result<u32, ParseError> {
    sort_by(found, &|(a, a_align), (b, b_align)| {
        let key = |e: &ExternSpec, align: u32| match e.kind {
            ExternKind::Kconfig { size, .. } => (0, u32::MAX - align, size),
            _ => (1, 0, 0),
        };
        key(a, *a_align)
            .cmp(&key(b, *b_align))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut offset: u32 = 0;
    for (e, align) in found.iter_mut() {
        if let ExternKind::Kconfig {
            offset: at, size, ..
        } = &mut e.kind
        {
            *at = offset
                .checked_next_multiple_of((*align).max(1))
                .filter(|at| at.checked_add(*size).is_some_and(|end| end <= KCONFIG_MAX))
                .ok_or_else(|| {
                    bad_extern(
                        &e.name,
                        BadExternReason::KconfigTooLarge { max: KCONFIG_MAX },
                    )
                })?;
            offset = *at + *size;
        }
    }
    Ok(offset)
}

/// Sorts `items` by `cmp`, every caller sharing one copy of the standard
/// sort: one per element type and comparator would add ~5 KB of code each,
/// for lists that hold a handful of externs.
pub(crate) fn sort_by<T>(items: &mut Vec<T>, cmp: &dyn Fn(&T, &T) -> std::cmp::Ordering) {
    let order = sorted_indices(items.len(), &|a, b| cmp(&items[a], &items[b]));
    let mut slots: Vec<Option<T>> = std::mem::take(items).into_iter().map(Some).collect();
    items.extend(order.into_iter().filter_map(|i| slots[i].take()));
}

fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| cmp(a, b));
    order
}

/// A kconfig extern's kind and alignment, from its VAR's type (libbpf's
/// `find_kcfg_type` and `btf__align_of`).
fn kconfig_kind(btf: &Btf, type_id: u32) -> Result<(ExternKind, u32), BadExternReason> {
    let unsupported = |what: String| BadExternReason::KconfigType { what };
    let size = btf.resolve_size(type_id).map_err(BadExternReason::Btf)?;
    let id = btf.strip_modifiers(type_id).map_err(BadExternReason::Btf)?;
    let t = btf.type_by_id(id).map_err(BadExternReason::Btf)?;
    let described = describe_type(btf, id);
    let (ty, align) = match (&t.kind, &t.data) {
        (BtfKind::Int, BtfTypeData::Int { encoding, .. }) => {
            if encoding & INT_BOOL != 0 {
                if size != 1 {
                    return Err(unsupported(format!("a {size}-byte bool")));
                }
                (KconfigType::Bool, 1)
            } else if size == 1 {
                (KconfigType::Char, 1)
            } else if matches!(size, 2 | 4 | 8) {
                (
                    KconfigType::Int {
                        signed: encoding & INT_SIGNED != 0,
                    },
                    size,
                )
            } else {
                return Err(unsupported(format!("a {size}-byte integer ({described})")));
            }
        }
        (BtfKind::Enum | BtfKind::Enum64, _) => {
            let name = btf.string(t.name_off).unwrap_or("");
            if name != "libbpf_tristate" || (t.kind == BtfKind::Enum && size != 4) {
                return Err(unsupported(described));
            }
            (KconfigType::Tristate, size)
        }
        (
            BtfKind::Array,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => {
            let elem = btf
                .strip_modifiers(*elem_type)
                .and_then(|e| btf.type_by_id(e))
                .map_err(BadExternReason::Btf)?;
            let is_char = matches!(elem.data, BtfTypeData::Int { encoding, .. } if encoding & INT_BOOL == 0)
                && elem.size_or_type == 1;
            if *nelems == 0 || !is_char {
                return Err(unsupported(described));
            }
            (KconfigType::CharArray, 1)
        }
        _ => return Err(unsupported(described)),
    };
    Ok((
        ExternKind::Kconfig {
            ty,
            offset: 0,
            size,
        },
        align,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::btf::BtfType;

    pub(super) fn with(types: &[(&str, BtfKind, u32, BtfTypeData)]) -> Btf {
        let mut b = Btf::new();
        for (name, kind, size_or_type, data) in types {
            let name_off = if name.is_empty() {
                0
            } else {
                b.add_string(name)
            };
            b.add_type(BtfType {
                name_off,
                kind: *kind,
                kind_flag: false,
                vlen_extra: 0,
                size_or_type: *size_or_type,
                data: data.clone(),
            });
        }
        b
    }

    pub(super) fn int(encoding: u8, bits: u8) -> BtfTypeData {
        BtfTypeData::Int {
            encoding,
            offset: 0,
            bits,
        }
    }

    fn kind(b: &Btf, id: u32) -> Result<(KconfigType, u32, u32), String> {
        match kconfig_kind(b, id).map_err(|e| e.to_string())? {
            (ExternKind::Kconfig { ty, size, .. }, align) => Ok((ty, size, align)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kconfig_value_types() {
        use BtfKind as K;
        let array = |elem, nelems| BtfTypeData::Array {
            elem_type: elem,
            index_type: 1,
            nelems,
        };
        let b = with(&[
            ("int", K::Int, 4, int(INT_SIGNED, 32)), // 1
            ("char", K::Int, 1, int(INT_SIGNED, 8)), // 2
            ("_Bool", K::Int, 1, int(INT_BOOL, 8)),  // 3
            ("", K::Array, 0, array(2, 16)),         // 4 char[16]
            ("libbpf_tristate", K::Enum, 4, BtfTypeData::Enum(vec![])), // 5
            ("other", K::Enum, 4, BtfTypeData::Enum(vec![])), // 6
            ("", K::Array, 0, array(1, 4)),          // 7 int[4]
            ("s", K::Struct, 4, BtfTypeData::Members(vec![])), // 8
            ("odd", K::Int, 3, int(0, 24)),          // 9
            ("wide_bool", K::Int, 2, int(INT_BOOL, 16)), // 10
            ("u64", K::Typedef, 12, BtfTypeData::None), // 11
            ("unsigned long long", K::Int, 8, int(0, 64)), // 12
            ("", K::Const, 11, BtfTypeData::None),   // 13
        ]);
        assert_eq!(kind(&b, 1), Ok((KconfigType::Int { signed: true }, 4, 4)));
        assert_eq!(kind(&b, 2), Ok((KconfigType::Char, 1, 1)));
        assert_eq!(kind(&b, 3), Ok((KconfigType::Bool, 1, 1)));
        assert_eq!(kind(&b, 4), Ok((KconfigType::CharArray, 16, 1)));
        assert_eq!(kind(&b, 5), Ok((KconfigType::Tristate, 4, 4)));
        assert_eq!(
            kind(&b, 13),
            Ok((KconfigType::Int { signed: false }, 8, 8)),
            "through const and typedef"
        );
        for (id, what) in [
            (6, "enum other"),
            (7, "int[4]"),
            (8, "struct s"),
            (9, "a 3-byte integer"),
            (10, "a 2-byte bool"),
        ] {
            let err = kind(&b, id).unwrap_err();
            assert!(
                err.starts_with(&format!("a __kconfig value cannot be {what}")),
                "{id}: {err}"
            );
        }
    }
}
