//! Access strings (`0:1:2`) walked over the object's BTF: libbpf's
//! `bpf_core_parse_spec`.

use super::types::*;
use super::{CoreReloSpec, CoreResult, Problem, MAX_SPEC_LEN};
use crate::obj::btf::BtfType;
use std::fmt::Write as _;

/// One step of a parsed access that means something: a named member or an
/// array index (libbpf's high-level `bpf_core_accessor`).
#[derive(Clone, Debug, Default)]
pub(super) struct Accessor {
    /// The struct/union holding the member, or the array's element type
    /// (modifiers skipped); the enum for an enumerator.
    pub(super) type_id: u32,
    /// Member, element or enumerator index.
    pub(super) idx: u32,
    /// The member's or enumerator's name; `None` for an array index.
    pub(super) name: Option<String>,
}

/// An access string walked over one BTF (libbpf's `bpf_core_spec`).
#[derive(Clone, Debug, Default)]
pub(super) struct AccessSpec {
    /// The root type (as recorded, modifiers not skipped).
    pub(super) root: u32,
    /// Named members and array indices.
    pub(super) acc: Vec<Accessor>,
    /// Every index, anonymous members included.
    pub(super) raw: Vec<u32>,
    /// Offset of the field in bits.
    pub(super) bit_offset: u64,
}

impl AccessSpec {
    pub(super) fn add_bits(&mut self, side: CoreBtf<'_>, bits: u64) -> CoreResult<()> {
        self.bit_offset = self.bit_offset.saturating_add(bits);
        if self.bit_offset > u64::from(u32::MAX) {
            return Err(side.invalid("the field's bit offset overflows 32 bits".into()));
        }
        Ok(())
    }

    /// "struct foo::a.b[3]", "enum e::X", "struct foo[2]".
    pub(super) fn path(&self, side: CoreBtf<'_>) -> String {
        let mut s = side.label(self.root);
        let mut named = false;
        for (i, a) in self.acc.iter().enumerate() {
            match &a.name {
                Some(n) => {
                    s.push_str(if named { "." } else { "::" });
                    s.push_str(n);
                    named = true;
                }
                None if i > 0 || a.idx > 0 => {
                    let _ = write!(s, "[{}]", a.idx);
                }
                None => {}
            }
        }
        s
    }
}

/// Splits `0:1:2` into indices as libbpf does, but strictly: decimal digits
/// only, each at most `i32::MAX`.
pub(super) fn parse_access(access: &str) -> Result<Vec<u32>, String> {
    if access.is_empty() {
        return Err("the access string is empty".into());
    }
    let mut out = Vec::new();
    for part in access.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "access string \"{access}\" is not a list of indices separated by ':'"
            ));
        }
        let v = part
            .parse::<u32>()
            .ok()
            .filter(|&v| v <= i32::MAX as u32)
            .ok_or_else(|| format!("access string \"{access}\": index {part} is too large"))?;
        if out.len() == MAX_SPEC_LEN {
            return Err(format!(
                "access string \"{access}\" has more than {MAX_SPEC_LEN} indices"
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// libbpf's `is_flex_arr`: a zero-length array that is the last member of
/// the struct the previous accessor named.
pub(super) fn is_flex_arr(
    side: CoreBtf<'_>,
    prev: Option<&Accessor>,
    nelems: u32,
) -> CoreResult<bool> {
    let Some(prev) = prev else { return Ok(false) };
    if prev.name.is_none() || nelems > 0 {
        return Ok(false);
    }
    let t = side.ty(prev.type_id)?;
    Ok(prev.idx as usize + 1 == vlen(&t))
}

/// libbpf's `bpf_core_parse_spec`: the access string walked over the
/// object's BTF. Every problem is the object's ([`Problem::Local`]).
pub(super) fn parse_spec(l: CoreBtf<'_>, relo: &CoreReloSpec) -> CoreResult<AccessSpec> {
    let bad = Problem::Local;
    l.ty(relo.type_id)?;
    let mut spec = AccessSpec {
        root: relo.type_id,
        ..AccessSpec::default()
    };
    if relo.kind.is_type() {
        if relo.access != "0" {
            return Err(bad(format!(
                "a {} relocation's access string must be \"0\", not \"{}\"",
                relo.kind.name(),
                relo.access
            )));
        }
        return Ok(spec);
    }
    spec.raw = parse_access(&relo.access).map_err(bad)?;
    let (mut id, t) = l.skip(relo.type_id)?;
    let first = spec.raw[0];
    if relo.kind.is_enumval() {
        spec.acc.push(enumerator_accessor(l, relo, &spec, id, &t)?);
        return Ok(spec);
    }
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    let size = l.size(id)?;
    spec.add_bits(l, elem_bits(first, size))?;
    let raw = spec.raw.clone();
    for &idx in &raw[1..] {
        id = walk_index(l, relo, &mut spec, id, idx)?;
    }
    Ok(spec)
}

/// The one accessor of an enumerator relocation: enumerator `raw[0]` of
/// enum `id` (`t`).
fn enumerator_accessor(
    l: CoreBtf<'_>,
    relo: &CoreReloSpec,
    spec: &AccessSpec,
    id: u32,
    t: &BtfType,
) -> CoreResult<Accessor> {
    let bad = Problem::Local;
    let first = spec.raw[0];
    if !is_any_enum(t) {
        return Err(bad(format!(
            "an enumerator relocation needs an enum, {} is not one",
            l.label(relo.type_id)
        )));
    }
    if spec.raw.len() > 1 {
        return Err(bad(format!(
            "access string \"{}\": an enumerator relocation takes one index",
            relo.access
        )));
    }
    let (name_off, _) = enumerator(t, first as usize).ok_or_else(|| {
        bad(format!(
            "index {first} is past the {} enumerators of {}",
            vlen(t),
            l.label(id)
        ))
    })?;
    Ok(Accessor {
        type_id: id,
        idx: first,
        name: Some(l.name(name_off)?.into_owned()),
    })
}

/// One index of the access string after the first: member `idx` of the
/// struct or union `id`, or element `idx` of the array `id`. Extends `spec`
/// and returns the type reached.
fn walk_index(
    l: CoreBtf<'_>,
    relo: &CoreReloSpec,
    spec: &mut AccessSpec,
    id: u32,
    idx: u32,
) -> CoreResult<u32> {
    let bad = Problem::Local;
    let (id, t) = l.skip(id)?;
    if is_composite(&t) {
        let m = *members(&t).get(idx as usize).ok_or_else(|| {
            bad(format!(
                "access string \"{}\": index {idx} is past the {} members of {}",
                relo.access,
                vlen(&t),
                spec.path(l)
            ))
        })?;
        spec.add_bits(l, u64::from(member_bit_offset(&t, &m)))?;
        if m.name_off != 0 {
            let name = l.name(m.name_off)?;
            if name.is_empty() {
                return Err(bad(format!(
                    "member {idx} of {} has an empty name",
                    l.label(id)
                )));
            }
            spec.acc.push(Accessor {
                type_id: id,
                idx,
                name: Some(name.into_owned()),
            });
        }
        Ok(m.type_id)
    } else if let Some((elem, nelems)) = array(&t) {
        let (eid, _) = l.skip(elem)?;
        if !is_flex_arr(l, spec.acc.last(), nelems)? && idx >= nelems {
            return Err(bad(format!(
                "access string \"{}\": index {idx} is out of bounds of {} ({nelems} elements)",
                relo.access,
                spec.path(l)
            )));
        }
        spec.acc.push(Accessor {
            type_id: eid,
            idx,
            name: None,
        });
        let size = l.size(eid)?;
        spec.add_bits(l, elem_bits(idx, size))?;
        Ok(eid)
    } else {
        Err(bad(format!(
            "access string \"{}\": index {idx} reaches {} ({}), which has no members or elements",
            relo.access,
            spec.path(l),
            l.label(id)
        )))
    }
}
