//! The target's counterpart of a local type: candidates by essential name
//! (libbpf's `bpf_core_find_cands`), then the field, enumerator or type
//! match of each (`bpf_core_spec_match`, `bpf_core_types_are_compat`,
//! `bpf_core_types_match`).

use super::spec::{is_flex_arr, AccessSpec, Accessor};
use super::types::*;
use super::{
    essential_name, CoreReloKind, CoreResult, Problem, BTF_INT_SIGNED, MAX_DEPTH, MAX_SPEC_LEN,
};
use crate::obj::btf::{BtfKind, BtfType};

/// Candidates of a root type in the target: types of a compatible kind
/// whose essential name is the root's; vmlinux's if it has any, else the
/// modules' (libbpf's `bpf_core_find_cands`).
pub(super) fn find_candidates(l: CoreBtf<'_>, t: CoreBtf<'_>, root: u32) -> CoreResult<Vec<u32>> {
    let lt = l.ty(root)?;
    let name = l.name(lt.name_off)?;
    let ids = t
        .src
        .ids_by_essential_name(essential_name(&name))
        .map_err(Problem::Target)?;
    let mut out = Vec::new();
    for id in ids {
        if kind_core_compat(&lt, &*t.ty(id)?) {
            out.push(id);
        }
    }
    if out.iter().any(|&id| t.src.module(id).is_none()) {
        out.retain(|&id| t.src.module(id).is_none());
    }
    Ok(out)
}

/// libbpf's `bpf_core_fields_are_compat`.
pub(super) fn fields_are_compat(
    l: CoreBtf<'_>,
    lid: u32,
    t: CoreBtf<'_>,
    tid: u32,
) -> CoreResult<bool> {
    use BtfKind::*;
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..=MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if is_composite(&lt) && is_composite(&tt) {
            return Ok(true);
        }
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            Ptr | Float => return Ok(true),
            Fwd | Enum | Enum64 => {
                let (ln, tn) = (l.name(lt.name_off)?, t.name(tt.name_off)?);
                let (le, te) = (essential_name(&ln), essential_name(&tn));
                return Ok(le.is_empty() || te.is_empty() || le == te);
            }
            Int => return Ok(int_offset(&lt) == 0 && int_offset(&tt) == 0),
            Array => match (array(&lt), array(&tt)) {
                (Some((le, _)), Some((te, _))) => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "arrays nest deeper than {MAX_DEPTH} levels"
    )))
}

/// libbpf's `__bpf_core_types_are_compat`, for type_exists, type_size and
/// target_type_id.
pub(super) fn types_are_compat(
    l: CoreBtf<'_>,
    lid: u32,
    t: CoreBtf<'_>,
    tid: u32,
    level: u32,
) -> CoreResult<bool> {
    use BtfKind::*;
    if !kind_core_compat(&*l.ty(lid)?, &*t.ty(tid)?) {
        return Ok(false);
    }
    let (mut lid, mut tid) = (lid, tid);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            Void | Struct | Union | Enum | Enum64 | Fwd => return Ok(true),
            Int => return Ok(int_offset(&lt) == 0 && int_offset(&tt) == 0),
            Ptr => (lid, tid) = (lt.size_or_type, tt.size_or_type),
            Array => match (array(&lt), array(&tt)) {
                (Some((le, _)), Some((te, _))) => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            FuncProto => {
                let (lp, tp) = (params(&lt), params(&tt));
                if lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if level == 0 {
                        return Err(Problem::Fatal("function types nest too deep".into()));
                    }
                    let (a, _) = l.skip(a.type_id)?;
                    let (b, _) = t.skip(b.type_id)?;
                    if !types_are_compat(l, a, t, b, level - 1)? {
                        return Ok(false);
                    }
                }
                lid = l.skip(lt.size_or_type)?.0;
                tid = t.skip(tt.size_or_type)?.0;
            }
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "types nest deeper than {MAX_DEPTH} levels"
    )))
}

/// libbpf's `bpf_core_names_match`.
pub(super) fn names_match(
    l: CoreBtf<'_>,
    loff: u32,
    t: CoreBtf<'_>,
    toff: u32,
) -> CoreResult<bool> {
    let (ln, tn) = (l.name(loff)?, t.name(toff)?);
    if tn.is_empty() {
        return Ok(ln.is_empty());
    }
    Ok(essential_name(&ln) == essential_name(&tn))
}

/// libbpf's `bpf_core_enums_match`.
pub(super) fn enums_match(
    l: CoreBtf<'_>,
    lt: &BtfType,
    t: CoreBtf<'_>,
    tt: &BtfType,
) -> CoreResult<bool> {
    if lt.size_or_type != tt.size_or_type || vlen(lt) > vlen(tt) {
        return Ok(false);
    }
    for i in 0..vlen(lt) {
        let (loff, _) = enumerator(lt, i).unwrap_or_default();
        let mut matched = false;
        for j in 0..vlen(tt) {
            let (toff, _) = enumerator(tt, j).unwrap_or_default();
            if names_match(l, loff, t, toff)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// libbpf's `bpf_core_composites_match`.
pub(super) fn composites_match(
    l: CoreBtf<'_>,
    lt: &BtfType,
    t: CoreBtf<'_>,
    tt: &BtfType,
    behind_ptr: bool,
    level: u32,
) -> CoreResult<bool> {
    let (lm, tm) = (members(lt), members(tt));
    if lm.len() > tm.len() {
        return Ok(false);
    }
    for a in lm {
        let mut matched = false;
        for b in tm {
            if !names_match(l, a.name_off, t, b.name_off)? {
                continue;
            }
            if types_match(l, a.type_id, t, b.type_id, behind_ptr, level - 1)? {
                matched = true;
                break;
            }
        }
        if !matched {
            return Ok(false);
        }
    }
    Ok(true)
}

/// libbpf's `__bpf_core_types_match`, for type_matches. (82 lines: one arm
/// per BTF kind, in libbpf's order, so the two read side by side.)
pub(super) fn types_match(
    l: CoreBtf<'_>,
    lid: u32,
    t: CoreBtf<'_>,
    tid: u32,
    behind_ptr: bool,
    level: u32,
) -> CoreResult<bool> {
    use BtfKind::*;
    if level == 0 {
        return Err(Problem::Fatal("types nest too deep to match".into()));
    }
    let (mut lid, mut tid, mut behind_ptr) = (lid, tid, behind_ptr);
    for _ in 0..MAX_DEPTH {
        let (_, lt) = l.skip(lid)?;
        let (_, tt) = t.skip(tid)?;
        if !names_match(l, lt.name_off, t, tt.name_off)? {
            return Ok(false);
        }
        let (lk, tk) = (lt.kind, tt.kind);
        match lk {
            Void => return Ok(lk == tk),
            Fwd => {
                let lf = lt.kind_flag;
                return Ok(if behind_ptr && tk != Fwd {
                    // A forward declaration's kind_flag says struct (0) or union (1).
                    (tk == Struct && !lf) || (tk == Union && lf)
                } else {
                    tk == Fwd && lf == tt.kind_flag
                });
            }
            Enum | Enum64 => {
                return if is_any_enum(&tt) {
                    enums_match(l, &lt, t, &tt)
                } else {
                    Ok(false)
                }
            }
            Struct | Union => {
                if behind_ptr {
                    return Ok(lk == tk || (tk == Fwd && (lk == Union) == tt.kind_flag));
                }
                if lk != tk {
                    return Ok(false);
                }
                return composites_match(l, &lt, t, &tt, behind_ptr, level);
            }
            Int => {
                return Ok(lk == tk
                    && lt.size_or_type == tt.size_or_type
                    && int_encoding(&lt) & BTF_INT_SIGNED == int_encoding(&tt) & BTF_INT_SIGNED)
            }
            Ptr => {
                if lk != tk {
                    return Ok(false);
                }
                behind_ptr = true;
                (lid, tid) = (lt.size_or_type, tt.size_or_type);
            }
            Array => match (array(&lt), array(&tt)) {
                (Some((le, ln)), Some((te, tn))) if ln == tn => (lid, tid) = (le, te),
                _ => return Ok(false),
            },
            FuncProto => {
                let (lp, tp) = (params(&lt), params(&tt));
                if lk != tk || lp.len() != tp.len() {
                    return Ok(false);
                }
                for (a, b) in lp.iter().zip(tp) {
                    if !types_match(l, a.type_id, t, b.type_id, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                (lid, tid) = (lt.size_or_type, tt.size_or_type);
            }
            _ => return Ok(false),
        }
    }
    Err(Problem::Fatal(format!(
        "types nest deeper than {MAX_DEPTH} levels"
    )))
}

/// How a member name fared in a target struct.
pub(super) enum MemberMatch {
    Found,
    Missing,
    Incompatible(String),
}

/// libbpf's `bpf_core_match_member`: the local accessor's member, by name,
/// in the target struct `targ_id`, searching anonymous members too; extends
/// `ts` along the way.
pub(super) fn match_member(
    l: CoreBtf<'_>,
    la: &Accessor,
    t: CoreBtf<'_>,
    targ_id: u32,
    ts: &mut AccessSpec,
    next: &mut u32,
) -> CoreResult<MemberMatch> {
    let (targ_id, tt) = t.skip(targ_id)?;
    if !is_composite(&tt) {
        return Ok(MemberMatch::Missing);
    }
    let lt = l.ty(la.type_id)?;
    let lm = *members(&lt).get(la.idx as usize).ok_or_else(|| {
        Problem::Local(format!("{} has no member {}", l.label(la.type_id), la.idx))
    })?;
    let lname = la.name.as_deref().unwrap_or_default();
    for (i, m) in members(&tt).iter().enumerate() {
        if ts.raw.len() == MAX_SPEC_LEN {
            return Err(Problem::Fatal(format!(
                "the kernel's {} nests deeper than {MAX_SPEC_LEN} levels",
                t.label(targ_id)
            )));
        }
        let bits = u64::from(member_bit_offset(&tt, m));
        ts.bit_offset += bits;
        ts.raw.push(i as u32);
        let tname = t.name(m.name_off)?;
        if tname.is_empty() {
            match match_member(l, la, t, m.type_id, ts, next)? {
                MemberMatch::Missing => {}
                found => return Ok(found),
            }
        } else if tname == lname {
            ts.acc.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(tname.into_owned()),
            });
            *next = m.type_id;
            if fields_are_compat(l, lm.type_id, t, m.type_id)? {
                return Ok(MemberMatch::Found);
            }
            ts.acc.pop();
            let tkind = t
                .skip(m.type_id)
                .map_or_else(|_| "?".into(), |(id, _)| t.label(id));
            let lkind = l
                .skip(lm.type_id)
                .map_or_else(|_| "?".into(), |(id, _)| l.label(id));
            return Ok(MemberMatch::Incompatible(format!(
                "is {tkind} in the kernel but {lkind} in the object"
            )));
        }
        ts.bit_offset -= bits;
        ts.raw.pop();
    }
    Ok(MemberMatch::Missing)
}

/// libbpf's `bpf_core_spec_match` for field and enumerator relocations:
/// the local spec's counterpart in target candidate `cand`, or why there is
/// none.
pub(super) fn spec_match(
    l: CoreBtf<'_>,
    kind: CoreReloKind,
    lspec: &AccessSpec,
    t: CoreBtf<'_>,
    cand: u32,
) -> CoreResult<Result<AccessSpec, String>> {
    let mut ts = AccessSpec {
        root: cand,
        ..AccessSpec::default()
    };
    if kind.is_enumval() {
        return enumval_match(lspec, t, cand);
    }
    let mut targ_id = cand;
    for (i, la) in lspec.acc.iter().enumerate() {
        let (tid, tt) = t.skip(targ_id)?;
        targ_id = tid;
        if let Some(name) = &la.name {
            match match_member(l, la, t, tid, &mut ts, &mut targ_id)? {
                MemberMatch::Found => {}
                MemberMatch::Missing => {
                    return Ok(Err(format!(
                        "{} has no member {name} in the kernel",
                        ts.path(t)
                    )))
                }
                MemberMatch::Incompatible(why) => {
                    let mut path = ts.path(t);
                    path.push_str(if ts.acc.iter().any(|a| a.name.is_some()) {
                        "."
                    } else {
                        "::"
                    });
                    return Ok(Err(format!("{path}{name} {why}")));
                }
            }
        } else {
            if i > 0 {
                let Some((elem, nelems)) = array(&tt) else {
                    return Ok(Err(format!("{} is not an array in the kernel", ts.path(t))));
                };
                if !is_flex_arr(t, ts.acc.last(), nelems)? && la.idx >= nelems {
                    return Ok(Err(format!(
                        "{} has {nelems} elements in the kernel, index {} is out of bounds",
                        ts.path(t),
                        la.idx
                    )));
                }
                targ_id = t.skip(elem)?.0;
            }
            if ts.raw.len() == MAX_SPEC_LEN {
                return Err(Problem::Fatal(format!(
                    "the access nests deeper than {MAX_SPEC_LEN} levels"
                )));
            }
            ts.acc.push(Accessor {
                type_id: targ_id,
                idx: la.idx,
                name: None,
            });
            ts.raw.push(la.idx);
            let size = t.size(targ_id)?;
            ts.add_bits(t, elem_bits(la.idx, size))?;
        }
    }
    if ts.bit_offset > u64::from(u32::MAX) {
        return Err(t.invalid("the field's bit offset overflows 32 bits".into()));
    }
    Ok(Ok(ts))
}

/// [`spec_match`] for an enumerator relocation: the enumerator of the same
/// essential name in target enum `cand`.
fn enumval_match(
    lspec: &AccessSpec,
    t: CoreBtf<'_>,
    cand: u32,
) -> CoreResult<Result<AccessSpec, String>> {
    let mut ts = AccessSpec {
        root: cand,
        ..AccessSpec::default()
    };
    let (tid, tt) = t.skip(cand)?;
    if !is_any_enum(&tt) {
        return Ok(Err(format!(
            "{} is not an enum in the kernel",
            t.label(cand)
        )));
    }
    let lname = lspec.acc[0].name.as_deref().unwrap_or_default();
    let want = essential_name(lname);
    for i in 0..vlen(&tt) {
        let (off, _) = enumerator(&tt, i).unwrap_or_default();
        let name = t.name(off)?;
        if essential_name(&name) == want {
            ts.acc.push(Accessor {
                type_id: tid,
                idx: i as u32,
                name: Some(name.into_owned()),
            });
            ts.raw.push(i as u32);
            return Ok(Ok(ts));
        }
    }
    Ok(Err(format!(
        "{} has no enumerator {lname} in the kernel",
        t.label(tid)
    )))
}

/// The type-relocation match of candidate `cand`.
pub(super) fn type_match(
    l: CoreBtf<'_>,
    kind: CoreReloKind,
    root: u32,
    t: CoreBtf<'_>,
    cand: u32,
) -> CoreResult<Result<AccessSpec, String>> {
    let ok = if kind == CoreReloKind::TypeMatches {
        types_match(l, root, t, cand, false, MAX_DEPTH as u32)?
    } else {
        types_are_compat(l, root, t, cand, MAX_DEPTH as u32)?
    };
    if ok {
        return Ok(Ok(AccessSpec {
            root: cand,
            ..AccessSpec::default()
        }));
    }
    Ok(Err(if kind == CoreReloKind::TypeMatches {
        format!(
            "{} in the kernel does not match the object's definition",
            t.label(cand)
        )
    } else {
        format!(
            "{} in the kernel is not compatible with the object's",
            t.label(cand)
        )
    }))
}
