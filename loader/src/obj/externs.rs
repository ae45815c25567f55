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
//! against any [`TargetTypes`] and kallsyms text. Reading the kernel's config
//! is [`crate::kconfig`]'s; applying the results is the loader's.

use super::btf::{Btf, BtfError, BtfKind, BtfType, BtfTypeData};
use super::core::{essential_name, TargetTypes};
use super::elf::{Elf, Symbol};
use super::{MapOrigin, MapSpec, ObjectSpec, Pinning};
use crate::error::{LoadError, ParseError};
use crate::uapi::{MapType, BPF_F_RDONLY_PROG};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::BufRead;

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
/// How deep type comparisons recurse (libbpf: 32).
const MAX_DEPTH: u32 = 32;
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
    let first = symbols[0];
    let bad = |name: &str, reason: String| ParseError::BadExtern {
        name: name.to_owned(),
        reason,
    };
    let Some(btf) = btf else {
        return Err(bad(
            first.name,
            "the object has no .BTF to say what it is (compile with clang -g)".into(),
        ));
    };
    // The first VAR or FUNC of each extern's name, and the DATASEC that
    // holds it: one pass over the types each, names and ids found by
    // binary search (externs are few, types many).
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
    // (spec, alignment) in symbol order; sorted below.
    let mut found: Vec<(ExternSpec, u32)> = Vec::with_capacity(symbols.len());
    let mut sections: [Option<u32>; 2] = [None, None]; // .kconfig, .ksyms
    for sym in symbols {
        let name = sym.name;
        let found_id = names.binary_search(&name).ok().and_then(|k| ids[k]);
        let id = found_id.ok_or_else(|| {
            bad(
                name,
                "no BTF VAR or FUNC of that name (compile with clang -g)".into(),
            )
        })?;
        let t = btf.type_by_id(id)?;
        let extern_linkage = match t.data {
            BtfTypeData::Var { linkage } => linkage == VAR_GLOBAL_EXTERN,
            _ => t.func_linkage() == FUNC_EXTERN,
        };
        if !extern_linkage {
            return Err(bad(
                name,
                format!(
                    "BTF {} {name} [{id}] is not declared extern, yet the symbol is undefined",
                    t.kind
                ),
            ));
        }
        let in_datasec = datasec_of
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .and_then(|k| datasec_of[k].1);
        let Some(sec) = in_datasec else {
            return Err(bad(
                name,
                format!(
                    "BTF {} [{id}] is in no DATASEC (declare it __kconfig or __ksym)",
                    t.kind
                ),
            ));
        };
        let sec_name = btf.type_name(sec)?;
        let is_func = t.kind == BtfKind::Func;
        let (kind, align) = match sec_name {
            KCONFIG_SECTION if is_func => {
                return Err(bad(name, "a function cannot be __kconfig".into()));
            }
            KCONFIG_SECTION => {
                sections[0] = Some(sec);
                kconfig_kind(btf, t.size_or_type).map_err(|reason| bad(name, reason))?
            }
            KSYMS_SECTION if is_func => (ExternKind::Kfunc { func_id: id }, 0),
            KSYMS_SECTION => {
                sections[1] = Some(sec);
                let ty = btf.strip_modifiers(t.size_or_type)?;
                let typed = (btf.type_by_id(ty)?.kind != BtfKind::Void).then_some(ty);
                (ExternKind::Ksym { typed }, 0)
            }
            other => {
                return Err(bad(
                    name,
                    format!("it is in section {other}; externs live in .kconfig or .ksyms"),
                ))
            }
        };
        if is_func {
            sections[1] = Some(sec);
        }
        found.push((
            ExternSpec {
                name: name.to_owned(),
                weak: sym.weak,
                btf_id: id,
                kind,
            },
            align,
        ));
    }
    // libbpf's cmp_externs: kconfig first, largest alignment first, then
    // smallest size, then name; ksyms and kfuncs by name.
    sort_by(&mut found, &|(a, a_align), (b, b_align)| {
        let key = |e: &ExternSpec, align: u32| match e.kind {
            ExternKind::Kconfig { size, .. } => (0, u32::MAX - align, size),
            _ => (1, 0, 0),
        };
        key(a, *a_align)
            .cmp(&key(b, *b_align))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut offset: u32 = 0;
    for (e, align) in &mut found {
        if let ExternKind::Kconfig {
            offset: at, size, ..
        } = &mut e.kind
        {
            *at = offset
                .checked_next_multiple_of((*align).max(1))
                .filter(|at| at.checked_add(*size).is_some_and(|end| end <= KCONFIG_MAX))
                .ok_or_else(|| {
                    bad(
                        &e.name,
                        format!("the .kconfig map would be larger than {KCONFIG_MAX} bytes"),
                    )
                })?;
            offset = *at + *size;
        }
    }
    none.specs = found.into_iter().map(|(e, _)| e).collect();
    let mut by_name: Vec<usize> = (0..none.specs.len()).collect();
    sort_by(&mut by_name, &|&a, &b| {
        none.specs[a].name.cmp(&none.specs[b].name)
    });
    none.by_name = by_name;
    if let Some(sec) = sections[1] {
        fix_ksyms_datasec(btf, sec, &none)?;
    }
    if let Some(sec) = sections[0] {
        fix_kconfig_datasec(btf, sec, &none, offset)?;
        none.kconfig_map = Some(kconfig_map(sec, offset));
    }
    Ok(none)
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
fn kconfig_kind(btf: &Btf, type_id: u32) -> Result<(ExternKind, u32), String> {
    let unsupported = |what: String| {
        format!("a __kconfig value cannot be {what} (it can be bool, char, an integer of 1, 2, 4 or 8 bytes, enum libbpf_tristate, or a char array)")
    };
    let size = btf.resolve_size(type_id).map_err(|e| e.to_string())?;
    let id = btf.strip_modifiers(type_id).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(id).map_err(|e| e.to_string())?;
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
                .map_err(|e| e.to_string())?;
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

/// The first 32-bit INT of the BTF, added if there is none (libbpf's
/// `find_int_btf_id`; libbpf would leave a VAR of void the kernel refuses).
fn int_type(btf: &mut Btf) -> u32 {
    if let Some((id, _)) = btf
        .types()
        .find(|(_, t)| matches!(t.data, BtfTypeData::Int { bits: 32, .. }))
    {
        return id;
    }
    let name_off = btf.add_string("int");
    btf.add_type(BtfType {
        name_off,
        kind: BtfKind::Int,
        kind_flag: false,
        vlen_extra: 0,
        size_or_type: 4,
        data: BtfTypeData::Int {
            encoding: INT_SIGNED,
            offset: 0,
            bits: 32,
        },
    })
}

/// `.ksyms`: every entry becomes a 4-byte allocated `int` VAR (a kfunc's
/// place is taken by one `dummy_ksym` VAR, its FUNC made global with every
/// parameter named), as libbpf does; the kernel refuses extern linkage,
/// FUNCs in a DATASEC and unnamed parameters.
fn fix_ksyms_datasec(btf: &mut Btf, sec: u32, externs: &Externs) -> Result<(), ParseError> {
    let BtfTypeData::Datasec(mut vars) = btf.type_by_id(sec)?.data.clone() else {
        return Ok(());
    };
    let int = int_type(btf);
    let mut dummy: Option<(u32, u32)> = None; // (VAR id, name offset)
    for (i, v) in vars.iter_mut().enumerate() {
        let t = btf.type_by_id(v.type_id)?.clone();
        let name = btf.string(t.name_off)?.to_owned();
        if externs.get(&name).is_none() {
            return Err(ParseError::BadExtern {
                name,
                reason: format!(
                    "BTF {} in .ksyms has no undefined symbol of that name",
                    t.kind
                ),
            });
        }
        if t.kind == BtfKind::Func {
            let (dummy_id, dummy_name) = match dummy {
                Some(d) => d,
                None => {
                    let name_off = btf.add_string(DUMMY_KSYM);
                    let id = btf.add_type(BtfType {
                        name_off,
                        kind: BtfKind::Var,
                        kind_flag: false,
                        vlen_extra: 0,
                        size_or_type: int,
                        data: BtfTypeData::Var {
                            linkage: VAR_GLOBAL_ALLOCATED,
                        },
                    });
                    *dummy.insert((id, name_off))
                }
            };
            if let BtfTypeData::Params(params) = &mut btf.type_by_id_mut(t.size_or_type)?.data {
                for p in params
                    .iter_mut()
                    .filter(|p| p.type_id != 0 && p.name_off == 0)
                {
                    p.name_off = dummy_name;
                }
            }
            btf.type_by_id_mut(v.type_id)?.vlen_extra = FUNC_GLOBAL;
            v.type_id = dummy_id;
        } else {
            let var = btf.type_by_id_mut(v.type_id)?;
            var.data = BtfTypeData::Var {
                linkage: VAR_GLOBAL_ALLOCATED,
            };
            var.size_or_type = int;
        }
        v.offset = 4 * i as u32;
        v.size = 4;
    }
    let t = btf.type_by_id_mut(sec)?;
    t.size_or_type = 4 * vars.len() as u32;
    t.data = BtfTypeData::Datasec(vars);
    Ok(())
}

/// `.kconfig`: VARs allocated, at the offsets the layout gave them.
fn fix_kconfig_datasec(
    btf: &mut Btf,
    sec: u32,
    externs: &Externs,
    size: u32,
) -> Result<(), ParseError> {
    let BtfTypeData::Datasec(mut vars) = btf.type_by_id(sec)?.data.clone() else {
        return Ok(());
    };
    for v in &mut vars {
        let name = btf.type_name(v.type_id)?.to_owned();
        let Some(ExternKind::Kconfig { offset, .. }) = externs.get(&name).map(|e| e.kind) else {
            return Err(ParseError::BadExtern {
                name,
                reason: "BTF VAR in .kconfig has no undefined symbol of that name".into(),
            });
        };
        v.offset = offset;
        if let BtfTypeData::Var { linkage } = &mut btf.type_by_id_mut(v.type_id)?.data {
            *linkage = VAR_GLOBAL_ALLOCATED;
        }
    }
    sort_by(&mut vars, &|a, b| a.offset.cmp(&b.offset));
    let t = btf.type_by_id_mut(sec)?;
    t.size_or_type = size;
    t.data = BtfTypeData::Datasec(vars);
    Ok(())
}

/// The `.kconfig` map: like `.rodata`, a one-element array, read-only to
/// programs and frozen; its value is filled at load time.
fn kconfig_map(datasec: u32, size: u32) -> MapSpec {
    MapSpec {
        name: KCONFIG_SECTION.to_owned(),
        origin: MapOrigin::GlobalData,
        section: KCONFIG_SECTION.to_owned(),
        map_type: MapType::ARRAY,
        key_size: 4,
        value_size: size,
        max_entries: 1,
        flags: BPF_F_RDONLY_PROG,
        numa_node: 0,
        map_extra: 0,
        pinning: Pinning::None,
        btf_key_type_id: 0,
        btf_value_type_id: datasec,
        inner: None,
        initial_slots: Vec::new(),
        data: Some(vec![0; size as usize]),
    }
}

/// A type of the object's BTF in C-like words (`struct rq`, `const int *`,
/// `char[16]`, `int (__s32)`), for messages and `inspect`.
pub fn describe_type(btf: &Btf, id: u32) -> String {
    describe_in(
        &|id| btf.type_by_id(id).ok().map(Cow::Borrowed),
        &|off| btf.string(off).ok().map(Cow::Borrowed),
        id,
        &Cell::new(DESCRIBE_BUDGET),
    )
}

/// [`describe_type`] for a type of the kernel's.
pub fn describe_target_type(types: &dyn TargetTypes, id: u32) -> String {
    describe_in(
        &|id| types.type_by_id(id).ok(),
        &|off| types.string(off).ok(),
        id,
        &Cell::new(DESCRIBE_BUDGET),
    )
}

type TypeOf<'a> = dyn Fn(u32) -> Option<Cow<'a, BtfType>> + 'a;
type StrOf<'a> = dyn Fn(u32) -> Option<Cow<'a, str>> + 'a;

/// How many types one description may visit: a prototype whose parameters
/// point back to it would otherwise take exponential time.
const DESCRIBE_BUDGET: u32 = 64;

fn describe_in<'a>(ty: &TypeOf<'a>, string: &StrOf<'a>, id: u32, budget: &Cell<u32>) -> String {
    if budget.get() == 0 {
        return "...".into();
    }
    budget.set(budget.get() - 1);
    let Some(t) = ty(id) else {
        return format!("[{id}]?");
    };
    let name = string(t.name_off).unwrap_or_default();
    let inner = |id| describe_in(ty, string, id, budget);
    match (&t.kind, &t.data) {
        (BtfKind::Void, _) => "void".into(),
        (BtfKind::Struct, _) => format!("struct {name}"),
        (BtfKind::Union, _) => format!("union {name}"),
        (BtfKind::Enum | BtfKind::Enum64, _) => format!("enum {name}"),
        (BtfKind::Fwd, _) => format!("{} {name}", if t.kind_flag { "union" } else { "struct" }),
        (BtfKind::Ptr, _) => format!("{} *", inner(t.size_or_type)),
        (BtfKind::Const, _) => format!("const {}", inner(t.size_or_type)),
        (BtfKind::Volatile, _) => format!("volatile {}", inner(t.size_or_type)),
        (BtfKind::Restrict, _) => format!("restrict {}", inner(t.size_or_type)),
        (
            BtfKind::Array,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => {
            format!("{}[{nelems}]", inner(*elem_type))
        }
        (BtfKind::FuncProto, BtfTypeData::Params(params)) => {
            let args: Vec<String> = params
                .iter()
                .map(|p| {
                    if p.type_id == 0 {
                        "...".into()
                    } else {
                        inner(p.type_id)
                    }
                })
                .collect();
            let args = if args.is_empty() {
                "void".to_owned()
            } else {
                args.join(", ")
            };
            format!("{} ({args})", inner(t.size_or_type))
        }
        (BtfKind::Func | BtfKind::Var, _) => inner(t.size_or_type),
        _ if !name.is_empty() => name.into_owned(),
        _ => t.kind.name().to_ascii_lowercase(),
    }
}

/// What a `__ksym` variable or a kfunc is in the running kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KsymValue {
    /// A `VAR` or `FUNC` of the kernel's BTF: the id the kernel knows it
    /// by, and the module whose BTF holds it (`None`: vmlinux).
    Btf {
        /// The kernel's id of the type.
        kernel_id: u32,
        /// The module, for a module's BTF.
        module: Option<String>,
    },
    /// A typeless ksym's address, from `/proc/kallsyms`.
    Address(u64),
    /// A `__weak` extern this kernel lacks: its address reads 0 and a call
    /// of it is left for the verifier to find unreachable.
    Missing,
}

/// The names externs look up in the kernel's BTF (typed ksyms and kfuncs),
/// for a [`TargetTypes`] that indexes only what it is asked for. Objects
/// with only `__kconfig` or typeless externs need none.
pub fn extern_names(spec: &ObjectSpec) -> BTreeSet<String> {
    spec.externs
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                ExternKind::Ksym { typed: Some(_) } | ExternKind::Kfunc { .. }
            )
        })
        .map(|e| essential_name(e.kernel_name()).to_owned())
        .collect()
}

/// Resolves typed ksyms and kfuncs against the kernel's types, checking
/// that each local type is compatible with the kernel's (libbpf's
/// `bpf_core_types_are_compat`: kinds match through pointers, arrays and
/// prototypes, prototypes have as many parameters; here also sizes of a
/// typed ksym's scalar type). A weak one missing or incompatible is
/// [`KsymValue::Missing`]; a strong one is an error naming both types.
pub fn resolve_btf(
    spec: &ObjectSpec,
    kernel: &dyn TargetTypes,
) -> Result<Vec<(String, KsymValue)>, LoadError> {
    let mut out = Vec::new();
    let empty = Btf::new();
    let local = spec.btf.as_ref().unwrap_or(&empty);
    for e in &spec.externs {
        let err = |reason: String| LoadError::Extern {
            name: e.name.clone(),
            reason,
        };
        let btf_err = |what: &str, source: BtfError| err(format!("{what}: {source}"));
        let (kind, local_id) = match e.kind {
            ExternKind::Ksym { typed: Some(t) } => (BtfKind::Var, t),
            ExternKind::Kfunc { func_id } => (
                BtfKind::Func,
                local
                    .type_by_id(func_id)
                    .map_err(|x| btf_err("the object's BTF", x))?
                    .size_or_type,
            ),
            _ => continue,
        };
        let name = e.kernel_name();
        let found = find_kernel(kernel, name, kind).map_err(|x| btf_err("the kernel's BTF", x))?;
        let Some(id) = found else {
            if e.weak {
                out.push((e.name.clone(), KsymValue::Missing));
                continue;
            }
            return Err(err(format!(
                "the kernel's BTF has no {} {name}",
                kind.name()
            )));
        };
        let target = kernel
            .type_by_id(id)
            .map_err(|x| btf_err("the kernel's BTF", x))?;
        let where_ = kernel.module(id).unwrap_or("vmlinux").to_owned();
        let checked = if kind == BtfKind::Var {
            check_var(local, local_id, kernel, target.size_or_type)
        } else {
            check_proto(local, local_id, kernel, target.size_or_type)
        };
        match checked.map_err(|x| btf_err("comparing types", x))? {
            Ok(()) => {}
            Err(_) if e.weak && kind == BtfKind::Func => {
                // libbpf treats a weak kfunc of another prototype as missing.
                out.push((e.name.clone(), KsymValue::Missing));
                continue;
            }
            Err(why) => {
                return Err(err(format!(
                "the object declares it as {} ([{local_id}]), but {where_} has {} ([{}]): {why}",
                describe_type(local, local_id),
                describe_target_type(kernel, target.size_or_type),
                target.size_or_type
            )))
            }
        }
        out.push((
            e.name.clone(),
            KsymValue::Btf {
                kernel_id: kernel.kernel_id(id),
                module: kernel.module(id).map(str::to_owned),
            },
        ));
    }
    Ok(out)
}

/// The first type of `kind` named exactly `name`: vmlinux's before any
/// module's (ids grow from vmlinux into modules), as libbpf searches.
fn find_kernel(
    types: &dyn TargetTypes,
    name: &str,
    kind: BtfKind,
) -> Result<Option<u32>, BtfError> {
    for id in types.ids_by_essential_name(essential_name(name))? {
        let t = types.type_by_id(id)?;
        if t.kind == kind && types.string(t.name_off)? == name {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Skips typedefs and modifiers of a kernel type.
fn skip_target(types: &dyn TargetTypes, mut id: u32) -> Result<(u32, BtfType), BtfError> {
    for _ in 0..=MAX_DEPTH {
        let t = types.type_by_id(id)?.into_owned();
        if !matches!(
            t.kind,
            BtfKind::Typedef
                | BtfKind::Volatile
                | BtfKind::Const
                | BtfKind::Restrict
                | BtfKind::TypeTag
        ) {
            return Ok((id, t));
        }
        id = t.size_or_type;
    }
    Err(BtfError::Loop {
        id,
        max: MAX_DEPTH as usize,
    })
}

/// A typed ksym: compatible types, and for a scalar the same size.
fn check_var(
    local: &Btf,
    local_id: u32,
    kernel: &dyn TargetTypes,
    target_id: u32,
) -> Result<Result<(), String>, BtfError> {
    if let Err(why) = compatible(local, local_id, kernel, target_id, MAX_DEPTH)? {
        return Ok(Err(why));
    }
    let l = local.type_by_id(local.strip_modifiers(local_id)?)?;
    let (_, t) = skip_target(kernel, target_id)?;
    let scalar = matches!(
        l.kind,
        BtfKind::Int | BtfKind::Enum | BtfKind::Enum64 | BtfKind::Float
    );
    if scalar && l.size_or_type != t.size_or_type {
        return Ok(Err(format!(
            "{} bytes here, {} in the kernel",
            l.size_or_type, t.size_or_type
        )));
    }
    Ok(Ok(()))
}

/// A kfunc: prototypes with as many parameters, each compatible.
fn check_proto(
    local: &Btf,
    local_proto: u32,
    kernel: &dyn TargetTypes,
    target_proto: u32,
) -> Result<Result<(), String>, BtfError> {
    compatible(local, local_proto, kernel, target_proto, MAX_DEPTH)
}

/// libbpf's `__bpf_core_types_are_compat`: `Ok(Err(why))` when the types
/// differ. A local forward declaration matches a kernel struct or union
/// (libbpf wants the full type; a forward declaration is what a program
/// without vmlinux.h has).
fn compatible(
    local: &Btf,
    mut lid: u32,
    kernel: &dyn TargetTypes,
    mut tid: u32,
    level: u32,
) -> Result<Result<(), String>, BtfError> {
    for _ in 0..MAX_DEPTH {
        let l_id = local.strip_modifiers(lid)?;
        let l = local.type_by_id(l_id)?;
        let (t_id, t) = skip_target(kernel, tid)?;
        let enums = |k: BtfKind| matches!(k, BtfKind::Enum | BtfKind::Enum64);
        let fwd_ok = l.kind == BtfKind::Fwd && matches!(t.kind, BtfKind::Struct | BtfKind::Union);
        if l.kind != t.kind && !(enums(l.kind) && enums(t.kind)) && !fwd_ok {
            return Ok(Err(format!(
                "{} here is a {}, {} in the kernel a {}",
                describe_type(local, l_id),
                l.kind,
                describe_target_type(kernel, t_id),
                t.kind
            )));
        }
        match (&l.data, &t.data) {
            (BtfTypeData::Int { offset: a, .. }, BtfTypeData::Int { offset: b, .. }) => {
                return Ok(if *a == 0 && *b == 0 {
                    Ok(())
                } else {
                    Err("bitfield-like integers (a non-zero bit offset)".into())
                });
            }
            (BtfTypeData::Array { elem_type: a, .. }, BtfTypeData::Array { elem_type: b, .. }) => {
                (lid, tid) = (*a, *b);
            }
            (BtfTypeData::Params(lp), BtfTypeData::Params(tp)) => {
                if lp.len() != tp.len() {
                    return Ok(Err(format!(
                        "{} takes {} parameters, the kernel's {}",
                        describe_type(local, l_id),
                        lp.len(),
                        tp.len()
                    )));
                }
                for (i, (a, b)) in lp.iter().zip(tp).enumerate() {
                    if level == 0 {
                        return Err(BtfError::Loop {
                            id: l_id,
                            max: MAX_DEPTH as usize,
                        });
                    }
                    if let Err(why) = compatible(local, a.type_id, kernel, b.type_id, level - 1)? {
                        return Ok(Err(format!("parameter {}: {why}", i + 1)));
                    }
                }
                (lid, tid) = (l.size_or_type, t.size_or_type);
            }
            _ if l.kind == BtfKind::Ptr => (lid, tid) = (l.size_or_type, t.size_or_type),
            _ if matches!(
                l.kind,
                BtfKind::Void
                    | BtfKind::Struct
                    | BtfKind::Union
                    | BtfKind::Enum
                    | BtfKind::Enum64
                    | BtfKind::Fwd
                    | BtfKind::Float
            ) =>
            {
                return Ok(Ok(()))
            }
            _ => return Ok(Err(format!("{} types cannot be compared", l.kind))),
        }
    }
    Err(BtfError::Loop {
        id: lid,
        max: MAX_DEPTH as usize,
    })
}

/// Resolves typeless ksyms from `/proc/kallsyms` text (`ADDR TYPE NAME
/// [MODULE]` per line), as libbpf does: a static `d` symbol's `.llvm.N`
/// suffix is ignored, one name at two addresses is ambiguous, a weak one
/// missing is [`KsymValue::Missing`]. An address of 0 means the kernel
/// hides addresses from this user (`kptr_restrict`), which is an error.
pub fn resolve_kallsyms(
    spec: &ObjectSpec,
    mut kallsyms: impl BufRead,
) -> Result<Vec<(String, KsymValue)>, LoadError> {
    let mut wanted: Vec<&ExternSpec> = spec
        .externs
        .iter()
        .filter(|e| e.kind == ExternKind::Ksym { typed: None })
        .collect();
    let Some(first) = wanted.first().map(|e| e.name.clone()) else {
        return Ok(Vec::new());
    };
    sort_by(&mut wanted, &|a, b| a.name.cmp(&b.name));
    let mut found: Vec<Option<u64>> = vec![None; wanted.len()];
    let read_err = |reason: String| LoadError::Extern {
        name: first.clone(),
        reason: format!("reading /proc/kallsyms: {reason}"),
    };
    // One buffer for every line: the file has ~10^5 of them.
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        if kallsyms
            .read_line(&mut line)
            .map_err(|e| read_err(e.to_string()))?
            == 0
        {
            break;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(ty), Some(sym)) = (fields.next(), fields.next(), fields.next())
        else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(read_err(format!(
                "line {n} is not ADDRESS TYPE NAME: {:?}",
                line.trim_end()
            )));
        };
        let sym = match sym.find(".llvm.") {
            Some(at) if ty == "d" => &sym[..at],
            _ => sym,
        };
        let Ok(k) = wanted.binary_search_by(|e| e.name.as_str().cmp(sym)) else {
            continue;
        };
        let addr = u64::from_str_radix(addr, 16)
            .map_err(|_| read_err(format!("line {n}: bad address {addr:?}")))?;
        match found[k] {
            Some(other) if other != addr => {
                return Err(LoadError::Extern {
                    name: wanted[k].name.clone(),
                    reason: format!(
                        "/proc/kallsyms has it at two addresses, {other:#x} and {addr:#x}"
                    ),
                })
            }
            _ => found[k] = Some(addr),
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (e, addr) in wanted.into_iter().zip(found) {
        let value = match addr {
            Some(0) => {
                return Err(LoadError::Extern {
                    name: e.name.clone(),
                    reason: "/proc/kallsyms shows its address as 0: the kernel hides addresses from this user (kptr_restrict; run as root)".into(),
                })
            }
            Some(addr) => KsymValue::Address(addr),
            None if e.weak => KsymValue::Missing,
            None => {
                return Err(LoadError::Extern {
                    name: e.name.clone(),
                    reason: "not in /proc/kallsyms".into(),
                })
            }
        };
        out.push((e.name.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(types: &[(&str, BtfKind, u32, BtfTypeData)]) -> Btf {
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

    fn int(encoding: u8, bits: u8) -> BtfTypeData {
        BtfTypeData::Int {
            encoding,
            offset: 0,
            bits,
        }
    }

    fn kind(b: &Btf, id: u32) -> Result<(KconfigType, u32, u32), String> {
        match kconfig_kind(b, id)? {
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

    #[test]
    fn types_in_words() {
        use BtfKind as K;
        let b = with(&[
            ("int", K::Int, 4, int(INT_SIGNED, 32)),       // 1
            ("", K::Const, 1, BtfTypeData::None),          // 2
            ("", K::Ptr, 2, BtfTypeData::None),            // 3
            ("task_struct", K::Fwd, 0, BtfTypeData::None), // 4
            ("", K::Ptr, 4, BtfTypeData::None),            // 5
            (
                "",
                K::FuncProto,
                5,
                BtfTypeData::Params(vec![
                    super::super::btf::BtfParam {
                        name_off: 0,
                        type_id: 3,
                    },
                    super::super::btf::BtfParam {
                        name_off: 0,
                        type_id: 0,
                    },
                ]),
            ), // 6
            ("", K::Ptr, 3, BtfTypeData::None),            // 7
        ]);
        assert_eq!(describe_type(&b, 3), "const int *");
        assert_eq!(
            describe_type(&b, 6),
            "struct task_struct * (const int *, ...)"
        );
        assert_eq!(describe_type(&b, 7), "const int * *");
        assert_eq!(describe_type(&b, 0), "void");
        // A prototype whose parameters point back to it: cut short.
        let params = (0..8)
            .map(|_| super::super::btf::BtfParam {
                name_off: 0,
                type_id: 2,
            })
            .collect();
        let b = with(&[
            ("", K::FuncProto, 2, BtfTypeData::Params(params)), // 1
            ("", K::Ptr, 1, BtfTypeData::None),                 // 2
        ]);
        let text = describe_type(&b, 1);
        assert!(text.contains("...") && text.len() < 4096, "{text}");
        assert_eq!(describe_type(&b, 99), "[99]?");
    }
}
