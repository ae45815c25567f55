//! One side of a relocation as the computation reads it: the object's BTF
//! (local) or the target's, every failure blamed on the right side; and the
//! small BTF accessors libbpf's `relo_core.c` uses.

use super::{CoreResult, Problem, TargetTypes, MAX_DEPTH};
use crate::obj::btf::{Btf, BtfError, BtfKind, BtfMember, BtfParam, BtfType, BtfTypeData};
use std::borrow::Cow;

/// The BTF of one side of a relocation: the object's types (`local`) or
/// the target's. Reading through it blames a failure on that side
/// ([`Problem::Local`] for the object, a target error or refusal for the
/// target).
#[derive(Clone, Copy)]
pub(super) struct CoreBtf<'a> {
    pub(super) src: &'a dyn TargetTypes,
    pub(super) local: bool,
}

impl<'a> CoreBtf<'a> {
    pub(super) fn local(btf: &'a Btf) -> CoreBtf<'a> {
        CoreBtf {
            src: btf,
            local: true,
        }
    }

    pub(super) fn target(src: &'a dyn TargetTypes) -> CoreBtf<'a> {
        CoreBtf { src, local: false }
    }

    pub(super) fn btf_err(self, e: BtfError) -> Problem {
        if self.local {
            Problem::Local(e.to_string())
        } else {
            Problem::Target(e)
        }
    }

    /// Types that make no sense for the relocation: the object's fault on
    /// the local side, a refusal on the target's.
    pub(super) fn invalid(self, msg: String) -> Problem {
        if self.local {
            Problem::Local(msg)
        } else {
            Problem::Fatal(format!("in the kernel's BTF: {msg}"))
        }
    }

    pub(super) fn ty(self, id: u32) -> CoreResult<Cow<'a, BtfType>> {
        self.src.type_by_id(id).map_err(|e| self.btf_err(e))
    }

    pub(super) fn name(self, off: u32) -> CoreResult<Cow<'a, str>> {
        self.src.string(off).map_err(|e| self.btf_err(e))
    }

    /// libbpf's `skip_mods_and_typedefs`.
    pub(super) fn skip(self, id: u32) -> CoreResult<(u32, Cow<'a, BtfType>)> {
        let mut cur = id;
        for _ in 0..=MAX_DEPTH {
            let t = self.ty(cur)?;
            if !is_mod_or_typedef(t.kind) {
                return Ok((cur, t));
            }
            cur = t.size_or_type;
        }
        Err(self.btf_err(BtfError::Loop { id, max: MAX_DEPTH }))
    }

    /// libbpf's `btf__resolve_size`.
    pub(super) fn size(self, id: u32) -> CoreResult<u32> {
        use BtfKind::*;
        let overflow = || self.invalid(format!("the size of {} overflows", self.label(id)));
        let mut cur = id;
        let mut nelems: u32 = 1;
        for _ in 0..=MAX_DEPTH {
            let t = self.ty(cur)?;
            let size = match (t.kind, &t.data) {
                (Int | Struct | Union | Enum | Enum64 | Datasec | Float, _) => t.size_or_type,
                (Ptr, _) => 8,
                (Typedef | Volatile | Const | Restrict | Var | DeclTag | TypeTag, _) => {
                    cur = t.size_or_type;
                    continue;
                }
                (
                    Array,
                    BtfTypeData::Array {
                        elem_type,
                        nelems: n,
                        ..
                    },
                ) => {
                    nelems = nelems.checked_mul(*n).ok_or_else(overflow)?;
                    cur = *elem_type;
                    continue;
                }
                _ => return Err(self.invalid(format!("{} has no size", self.label(cur)))),
            };
            return size.checked_mul(nelems).ok_or_else(overflow);
        }
        Err(self.btf_err(BtfError::Loop { id, max: MAX_DEPTH }))
    }

    /// "struct foo", "enum bar", "typedef u32", "int"; never fails.
    pub(super) fn label(self, id: u32) -> String {
        match self.ty(id) {
            Ok(t) => {
                let name = self.name(t.name_off).unwrap_or(Cow::Borrowed("?"));
                kind_label(&t, &name)
            }
            Err(_) => format!("type {id}"),
        }
    }
}

pub(super) fn kind_label(t: &BtfType, name: &str) -> String {
    use BtfKind::*;
    let word = match t.kind {
        Struct => "struct",
        Union => "union",
        Enum | Enum64 => "enum",
        Fwd if t.kind_flag => "union",
        Fwd => "struct",
        Typedef => "typedef",
        Void => return "void".into(),
        Int | Float if !name.is_empty() => return name.to_owned(),
        k if name.is_empty() => return k.name().to_ascii_lowercase(),
        k => return format!("{} {name}", k.name().to_ascii_lowercase()),
    };
    if name.is_empty() {
        format!("anonymous {word}")
    } else {
        format!("{word} {name}")
    }
}

pub(super) fn is_mod_or_typedef(k: BtfKind) -> bool {
    use BtfKind::*;
    matches!(k, Typedef | Volatile | Const | Restrict | TypeTag)
}

pub(super) fn is_composite(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Struct | BtfKind::Union)
}

pub(super) fn is_any_enum(t: &BtfType) -> bool {
    matches!(t.kind, BtfKind::Enum | BtfKind::Enum64)
}

/// libbpf's `btf_kind_core_compat`: the same kind, or enum and enum64.
pub(super) fn kind_core_compat(a: &BtfType, b: &BtfType) -> bool {
    a.kind == b.kind || (is_any_enum(a) && is_any_enum(b))
}

pub(super) fn members(t: &BtfType) -> &[BtfMember] {
    match &t.data {
        BtfTypeData::Members(m) => m,
        _ => &[],
    }
}

pub(super) fn params(t: &BtfType) -> &[BtfParam] {
    match &t.data {
        BtfTypeData::Params(p) => p,
        _ => &[],
    }
}

pub(super) fn vlen(t: &BtfType) -> usize {
    match &t.data {
        BtfTypeData::Members(v) => v.len(),
        BtfTypeData::Enum(v) => v.len(),
        BtfTypeData::Enum64(v) => v.len(),
        BtfTypeData::Params(v) => v.len(),
        _ => 0,
    }
}

/// An enumerator's name and value; a 32-bit enum's value is sign-extended
/// as libbpf does (`__u64 val = (__s32)e->val`).
pub(super) fn enumerator(t: &BtfType, idx: usize) -> Option<(u32, u64)> {
    match &t.data {
        BtfTypeData::Enum(v) => v.get(idx).map(|e| (e.name_off, e.val as i64 as u64)),
        BtfTypeData::Enum64(v) => v.get(idx).map(|e| (e.name_off, e.val)),
        _ => None,
    }
}

pub(super) fn array(t: &BtfType) -> Option<(u32, u32)> {
    match (t.kind, &t.data) {
        (
            BtfKind::Array,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => Some((*elem_type, *nelems)),
        _ => None,
    }
}

pub(super) fn member_bit_offset(t: &BtfType, m: &BtfMember) -> u32 {
    if t.kind_flag {
        m.offset & 0x00ff_ffff
    } else {
        m.offset
    }
}

pub(super) fn member_bitfield_size(t: &BtfType, m: &BtfMember) -> u32 {
    if t.kind_flag {
        m.offset >> 24
    } else {
        0
    }
}

pub(super) fn int_encoding(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { encoding, .. } => encoding,
        _ => 0,
    }
}

pub(super) fn int_offset(t: &BtfType) -> u8 {
    match t.data {
        BtfTypeData::Int { offset, .. } => offset,
        _ => 0,
    }
}

/// `idx` elements of `size` bytes, in bits.
pub(super) fn elem_bits(idx: u32, size: u32) -> u64 {
    // At most 2^31 * 2^32 * 8: saturates rather than wraps; `add_bits` refuses it.
    (u64::from(idx) * u64::from(size)).saturating_mul(8)
}
