//! Resolving `__ksym` variables and kfuncs against the running kernel: typed
//! ones in its BTF (any [`TargetTypes`]), typeless ones in `/proc/kallsyms`.

use super::{describe_target_type, describe_type, sort_by, ExternKind, ExternSpec};
use crate::obj::btf::{Btf, BtfError, BtfKind, BtfType, BtfTypeData};
use crate::obj::core::{essential_name, TargetTypes};
use crate::obj::ObjectSpec;
use std::collections::BTreeSet;
use std::io::BufRead;

/// How deep type comparisons recurse (libbpf: 32).
const MAX_DEPTH: u32 = 32;

/// A `__ksym` variable or kfunc that cannot be resolved against this
/// kernel: a strong one it lacks, a local type that does not match the
/// kernel's, kallsyms that cannot be read.
#[derive(thiserror::Error)]
#[error("extern {name}: {kind}")]
pub struct ExternError {
    /// The extern's name.
    pub name: String,
    /// What went wrong (boxed: the error stays small on the success path
    /// of every function that may return it).
    pub kind: Box<ExternErrorKind>,
}

/// What went wrong resolving an extern.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ExternErrorKind {
    /// The kernel's BTF has no type of that kind and name.
    #[error("the kernel's BTF has no {kind} {kernel_name}")]
    NotInKernelBtf {
        /// `VAR` (a typed ksym) or `FUNC` (a kfunc).
        kind: BtfKind,
        /// The name searched for (a kfunc's without its `___flavor`).
        kernel_name: String,
    },
    /// The object's type and the kernel's differ.
    #[error("the object declares it as {local} ([{local_id}]), but {module} has {kernel} ([{kernel_id}]): {why}")]
    TypeMismatch {
        /// The object's type, in words.
        local: String,
        /// Its id in the object's BTF.
        local_id: u32,
        /// `vmlinux` or the module whose BTF holds the kernel's.
        module: String,
        /// The kernel's type, in words.
        kernel: String,
        /// Its id in the kernel's BTF.
        kernel_id: u32,
        /// Where they differ, in words.
        why: String,
    },
    /// A BTF (`what`: the object's, the kernel's) could not be read.
    #[error("{what}: {source}")]
    Btf {
        /// Whose BTF, or what was being done.
        what: &'static str,
        /// The BTF error.
        source: BtfError,
    },
    /// Reading `/proc/kallsyms` failed.
    #[error("reading /proc/kallsyms: {0}")]
    KallsymsRead(#[source] std::io::Error),
    /// A line of `/proc/kallsyms` that is not `ADDRESS TYPE NAME`.
    #[error("reading /proc/kallsyms: line {line} is not ADDRESS TYPE NAME: {text:?}")]
    KallsymsLine {
        /// Line number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
    /// A `/proc/kallsyms` address that is not hexadecimal.
    #[error("reading /proc/kallsyms: line {line}: bad address {text:?}")]
    KallsymsAddress {
        /// Line number, from 1.
        line: usize,
        /// The address field.
        text: String,
    },
    /// One name at two addresses.
    #[error("/proc/kallsyms has it at two addresses, {first:#x} and {second:#x}")]
    TwoAddresses {
        /// The first address seen.
        first: u64,
        /// The other.
        second: u64,
    },
    /// `kptr_restrict` hides the addresses.
    #[error("/proc/kallsyms shows its address as 0: the kernel hides addresses from this user (kptr_restrict; run as root)")]
    AddressHidden,
    /// A strong typeless ksym the kernel lacks.
    #[error("not in /proc/kallsyms")]
    NotInKallsyms,
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
) -> Result<Vec<(String, KsymValue)>, ExternError> {
    let mut out = Vec::new();
    let empty = Btf::new();
    let local = spec.btf.as_ref().unwrap_or(&empty);
    for e in &spec.externs {
        let value = resolve_one(e, local, kernel).map_err(|kind| ExternError {
            name: e.name.clone(),
            kind: Box::new(kind),
        })?;
        if let Some(value) = value {
            out.push((e.name.clone(), value));
        }
    }
    Ok(out)
}

/// One extern of [`resolve_btf`]: `None` for those it does not resolve
/// (kconfig values, typeless ksyms).
fn resolve_one(
    e: &ExternSpec,
    local: &Btf,
    kernel: &dyn TargetTypes,
) -> Result<Option<KsymValue>, ExternErrorKind> {
    let btf_err = |what: &'static str| move |source| ExternErrorKind::Btf { what, source };
    let (kind, local_id) = match e.kind {
        ExternKind::Ksym { typed: Some(t) } => (BtfKind::Var, t),
        ExternKind::Kfunc { func_id } => (
            BtfKind::Func,
            local
                .type_by_id(func_id)
                .map_err(btf_err("the object's BTF"))?
                .size_or_type,
        ),
        _ => return Ok(None),
    };
    let name = e.kernel_name();
    let found = find_kernel(kernel, name, kind).map_err(btf_err("the kernel's BTF"))?;
    let Some(id) = found else {
        if e.weak {
            return Ok(Some(KsymValue::Missing));
        }
        return Err(ExternErrorKind::NotInKernelBtf {
            kind,
            kernel_name: name.to_owned(),
        });
    };
    let target = kernel.type_by_id(id).map_err(btf_err("the kernel's BTF"))?;
    let checked = if kind == BtfKind::Var {
        check_var(local, local_id, kernel, target.size_or_type)
    } else {
        check_proto(local, local_id, kernel, target.size_or_type)
    };
    match checked.map_err(btf_err("comparing types"))? {
        Ok(()) => {}
        // libbpf treats a weak kfunc of another prototype as missing.
        Err(_) if e.weak && kind == BtfKind::Func => return Ok(Some(KsymValue::Missing)),
        Err(why) => {
            return Err(ExternErrorKind::TypeMismatch {
                local: describe_type(local, local_id),
                local_id,
                module: kernel.module(id).unwrap_or("vmlinux").to_owned(),
                kernel: describe_target_type(kernel, target.size_or_type),
                kernel_id: target.size_or_type,
                why,
            })
        }
    }
    Ok(Some(KsymValue::Btf {
        kernel_id: kernel.kernel_id(id),
        module: kernel.module(id).map(str::to_owned),
    }))
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
/// missing is [`KsymValue::Missing`]. When every address in the file is 0,
/// the kernel hides addresses from this user (`kptr_restrict`), which is
/// an error; otherwise 0 is a real address (x86-64's per-CPU symbols start
/// at 0 before 6.15: `0000000000000000 A __per_cpu_start`).
pub fn resolve_kallsyms(
    spec: &ObjectSpec,
    kallsyms: impl BufRead,
) -> Result<Vec<(String, KsymValue)>, ExternError> {
    let mut wanted: Vec<&ExternSpec> = spec
        .externs
        .iter()
        .filter(|e| e.kind == ExternKind::Ksym { typed: None })
        .collect();
    let Some(first) = wanted.first().map(|e| e.name.clone()) else {
        return Ok(Vec::new());
    };
    sort_by(&mut wanted, &|a, b| a.name.cmp(&b.name));
    let (found, hidden) =
        kallsyms_addresses(&wanted, kallsyms).map_err(|(at, kind)| ExternError {
            name: at.map_or(first, |k| wanted[k].name.clone()),
            kind: Box::new(kind),
        })?;
    let mut out = Vec::with_capacity(wanted.len());
    for (e, addr) in wanted.into_iter().zip(found) {
        let value = match addr {
            Some(0) if hidden => Err(ExternErrorKind::AddressHidden),
            Some(addr) => Ok(KsymValue::Address(addr)),
            None if e.weak => Ok(KsymValue::Missing),
            None => Err(ExternErrorKind::NotInKallsyms),
        };
        let value = value.map_err(|kind| ExternError {
            name: e.name.clone(),
            kind: Box::new(kind),
        })?;
        out.push((e.name.clone(), value));
    }
    Ok(out)
}

/// A kallsyms error, with the index of the extern it concerns (`None`: the
/// file as a whole).
type KallsymsError = (Option<usize>, ExternErrorKind);

/// The address of each of `wanted` (sorted by name) in kallsyms text, and
/// whether the file hides addresses (all of them 0). An error says which
/// extern it concerns (`None`: the file as a whole).
fn kallsyms_addresses(
    wanted: &[&ExternSpec],
    mut kallsyms: impl BufRead,
) -> Result<(Vec<Option<u64>>, bool), KallsymsError> {
    let mut found: Vec<Option<u64>> = vec![None; wanted.len()];
    let mut any_address = false;
    // One buffer for every line: the file has ~10^5 of them.
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        let read = kallsyms.read_line(&mut line);
        if read.map_err(|e| (None, ExternErrorKind::KallsymsRead(e)))? == 0 {
            break;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(ty), Some(sym)) = (fields.next(), fields.next(), fields.next())
        else {
            if line.trim().is_empty() {
                continue;
            }
            let text = line.trim_end().to_owned();
            return Err((None, ExternErrorKind::KallsymsLine { line: n, text }));
        };
        any_address = any_address || addr.bytes().any(|b| b != b'0');
        let sym = match sym.find(".llvm.") {
            Some(at) if ty == "d" => &sym[..at],
            _ => sym,
        };
        let Ok(k) = wanted.binary_search_by(|e| e.name.as_str().cmp(sym)) else {
            continue;
        };
        let addr = u64::from_str_radix(addr, 16).map_err(|_| {
            let text = addr.to_owned();
            (None, ExternErrorKind::KallsymsAddress { line: n, text })
        })?;
        match found[k] {
            Some(first) if first != addr => {
                return Err((
                    Some(k),
                    ExternErrorKind::TwoAddresses {
                        first,
                        second: addr,
                    },
                ))
            }
            _ => found[k] = Some(addr),
        }
    }
    Ok((found, !any_address))
}

debug_is_display!(ExternError, ExternErrorKind);
