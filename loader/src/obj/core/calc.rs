//! The value a relocation computes on each side (libbpf's
//! `bpf_core_calc_relo` and `bpf_core_calc_field_relo`).

use super::spec::AccessSpec;
use super::types::*;
use super::{CoreReloKind, CoreResult, BTF_INT_SIGNED, MAX_DEPTH};
use crate::obj::btf::{BtfKind, BtfType};

/// What libbpf's `bpf_core_calc_field_relo` computes for one side.
pub(super) struct FieldValue {
    pub(super) val: u64,
    /// Size of the loaded/stored unit (an array's element), for byte_off.
    pub(super) mem_size: u32,
    /// The field's type, for deciding whether a load may change size.
    pub(super) type_id: u32,
    pub(super) validate: bool,
}

pub(super) fn calc_field(
    side: CoreBtf<'_>,
    kind: CoreReloKind,
    spec: &AccessSpec,
) -> CoreResult<FieldValue> {
    use CoreReloKind::*;
    let acc = spec
        .acc
        .last()
        .ok_or_else(|| side.invalid("the access has no steps".into()))?;
    if acc.name.is_none() {
        // The access ends at an array element (or the root itself).
        return element_value(side, kind, spec, acc.type_id);
    }
    let mut out = FieldValue {
        val: 0,
        mem_size: 0,
        type_id: 0,
        validate: true,
    };
    let t = side.ty(acc.type_id)?;
    let m = *members(&t).get(acc.idx as usize).ok_or_else(|| {
        side.invalid(format!(
            "{} has no member {}",
            side.label(acc.type_id),
            acc.idx
        ))
    })?;
    let (field_type_id, mt) = side.skip(m.type_id)?;
    let bit_off = spec.bit_offset as u32;
    let mut bit_sz = member_bitfield_size(&t, &m);
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        (byte_off, byte_sz) = bitfield_load(side, spec, (field_type_id, &mt), bit_sz)?;
    } else {
        byte_sz = side.size(field_type_id)?;
        byte_off = bit_off / 8;
        bit_sz = byte_sz.wrapping_mul(8);
    }
    // For bitfields the compiler may pick another load than libbpf does, so
    // only the unambiguous values are checked against the instruction.
    out.validate = !bitfield;
    match kind {
        FieldByteOffset => {
            out.val = u64::from(byte_off);
            if !bitfield {
                out.mem_size = innermost_elem_size(side, field_type_id)?;
                out.type_id = field_type_id;
            }
        }
        FieldByteSize => out.val = u64::from(byte_sz),
        FieldSigned => {
            let signed = (is_any_enum(&mt) && mt.kind_flag)
                || (mt.kind == BtfKind::Int && int_encoding(&mt) & BTF_INT_SIGNED != 0);
            out.val = u64::from(signed);
            out.validate = true;
        }
        FieldLshiftU64 => {
            // Little-endian: the bits above the field go out to the left.
            out.val = u64::from(
                64u32.wrapping_sub(
                    bit_off
                        .wrapping_add(bit_sz)
                        .wrapping_sub(byte_off.wrapping_mul(8)),
                ),
            );
        }
        FieldRshiftU64 => {
            out.val = u64::from(64u32.wrapping_sub(bit_sz));
            out.validate = true;
        }
        _ => return Err(side.invalid(format!("{} is not a field relocation", kind.name()))),
    }
    Ok(out)
}

/// [`calc_field`] for an access that ends at an array element of type
/// `elem` (or at the root type itself): only `byte_off` and `byte_sz` apply.
fn element_value(
    side: CoreBtf<'_>,
    kind: CoreReloKind,
    spec: &AccessSpec,
    elem: u32,
) -> CoreResult<FieldValue> {
    let mut out = FieldValue {
        val: 0,
        mem_size: 0,
        type_id: 0,
        validate: true,
    };
    match kind {
        CoreReloKind::FieldByteOffset => {
            out.val = spec.bit_offset / 8;
            out.mem_size = innermost_elem_size(side, elem)?;
            out.type_id = elem;
        }
        CoreReloKind::FieldByteSize => out.val = u64::from(side.size(elem)?),
        _ => {
            return Err(side.invalid(format!(
                "a {} relocation cannot apply to an array element or a whole type (only byte_off and byte_sz can)",
                kind.name()
            )))
        }
    }
    Ok(out)
}

/// The size of the innermost element of a (nested) array type; a
/// non-array's own size.
fn innermost_elem_size(side: CoreBtf<'_>, id: u32) -> CoreResult<u32> {
    let (mut eid, mut t) = side.skip(id)?;
    for _ in 0..=MAX_DEPTH {
        let Some((elem, _)) = array(&t) else { break };
        (eid, t) = side.skip(elem)?;
    }
    side.size(eid)
}

/// The (byte offset, byte size) of the smallest power-of-two load, from a
/// multiple of its own size, that holds a bitfield of `bit_sz` bits at the
/// spec's bit offset, starting from the size of its integer type `ty`.
fn bitfield_load(
    side: CoreBtf<'_>,
    spec: &AccessSpec,
    (type_id, ty): (u32, &BtfType),
    bit_sz: u32,
) -> CoreResult<(u32, u32)> {
    if !matches!(ty.kind, BtfKind::Int | BtfKind::Enum | BtfKind::Enum64) || ty.size_or_type == 0 {
        return Err(side.invalid(format!(
            "bitfield {} has type {}, which is not an integer",
            spec.path(side),
            side.label(type_id)
        )));
    }
    let bit_off = spec.bit_offset as u32;
    let mut byte_sz = ty.size_or_type;
    let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
    while u64::from(bit_off) + u64::from(bit_sz) - u64::from(byte_off) * 8 > u64::from(byte_sz) * 8
    {
        if byte_sz >= 8 {
            return Err(side.invalid(format!(
                "bitfield {} cannot be read with one 64-bit load",
                spec.path(side)
            )));
        }
        byte_sz *= 2;
        byte_off = bit_off / 8 / byte_sz * byte_sz;
    }
    Ok((byte_off, byte_sz))
}

pub(super) fn enum_value(side: CoreBtf<'_>, spec: &AccessSpec) -> CoreResult<u64> {
    let acc = spec
        .acc
        .first()
        .ok_or_else(|| side.invalid("no enumerator".into()))?;
    let t = side.ty(acc.type_id)?;
    enumerator(&t, acc.idx as usize)
        .map(|(_, v)| v)
        .ok_or_else(|| {
            side.invalid(format!(
                "{} has no enumerator {}",
                side.label(acc.type_id),
                acc.idx
            ))
        })
}

/// One relocation's values as computed from the two BTFs, before the
/// instruction is looked at (libbpf's `bpf_core_relo_res`): `orig` is the
/// local value the instruction should hold, `new` the target's.
#[derive(Clone, Debug, Default)]
pub(super) struct ComputedRelo {
    pub(super) orig: u64,
    pub(super) new: u64,
    pub(super) poison: bool,
    pub(super) validate: bool,
    pub(super) orig_sz: u32,
    pub(super) new_sz: u32,
    pub(super) fail_memsz_adjust: bool,
}

/// libbpf's `bpf_core_calc_relo`: the local and target values, given the
/// target's match (`None`: no candidate matched).
pub(super) fn calc_relo(
    l: CoreBtf<'_>,
    t: CoreBtf<'_>,
    kind: CoreReloKind,
    lspec: &AccessSpec,
    tspec: Option<&AccessSpec>,
) -> CoreResult<ComputedRelo> {
    use CoreReloKind::*;
    let mut c = ComputedRelo {
        validate: true,
        ..ComputedRelo::default()
    };
    if kind == FieldExists {
        c.orig = 1;
        c.new = u64::from(tspec.is_some());
    } else if kind.is_field() {
        let lv = calc_field(l, kind, lspec)?;
        c.orig = lv.val;
        c.validate = lv.validate;
        c.orig_sz = lv.mem_size;
        let Some(ts) = tspec else {
            c.poison = true;
            return Ok(c);
        };
        let tv = calc_field(t, kind, ts)?;
        c.new = tv.val;
        c.new_sz = tv.mem_size;
        if c.orig_sz != c.new_sz {
            // Only a pointer (a 32-bit kernel's) or an unsigned integer
            // reads the same value at another size.
            let (ot, nt) = (l.ty(lv.type_id)?, t.ty(tv.type_id)?);
            let ptrs = ot.kind == BtfKind::Ptr && nt.kind == BtfKind::Ptr;
            let uints = ot.kind == BtfKind::Int
                && nt.kind == BtfKind::Int
                && int_encoding(&ot) != BTF_INT_SIGNED
                && int_encoding(&nt) != BTF_INT_SIGNED;
            c.fail_memsz_adjust = !(ptrs || uints);
        }
    } else if kind.is_type() {
        c.orig = match kind {
            TypeIdTarget | TypeIdLocal => {
                c.validate = false;
                u64::from(lspec.root)
            }
            TypeSize => u64::from(l.size(lspec.root)?),
            _ => 1,
        };
        // Type relocations give 0 when no candidate matches, type_size and
        // target_type_id included (libbpf).
        c.new = match (kind, tspec) {
            (TypeIdLocal, _) => u64::from(lspec.root),
            (_, None) => 0,
            (TypeIdTarget, Some(ts)) => u64::from(t.src.kernel_id(ts.root)),
            (TypeSize, Some(ts)) => u64::from(t.size(ts.root)?),
            (_, Some(_)) => 1,
        };
    } else {
        c.orig = match kind {
            EnumvalExists => 1,
            _ => enum_value(l, lspec)?,
        };
        match (tspec, kind) {
            (None, EnumvalExists) => c.new = 0,
            (None, _) => c.poison = true,
            (Some(_), EnumvalExists) => c.new = 1,
            (Some(ts), _) => c.new = enum_value(t, ts)?,
        }
    }
    Ok(c)
}
