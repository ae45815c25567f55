//! The object's BTF made acceptable to the kernel, as libbpf's
//! `bpf_object__collect_externs` leaves it: `.ksyms` and `.kconfig` VARs
//! allocated (the kernel refuses extern linkage), and the `.kconfig` map.

use super::{
    ExternKind, Externs, DUMMY_KSYM, FUNC_GLOBAL, INT_SIGNED, KCONFIG_SECTION, KSYMS_SECTION,
    VAR_GLOBAL_ALLOCATED,
};
use crate::obj::btf::{Btf, BtfKind, BtfType, BtfTypeData};
use crate::obj::{BadExternReason, MapOrigin, MapSpec, ParseError, Pinning};
use crate::uapi::{MapType, BPF_F_RDONLY_PROG};

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
pub(super) fn fix_ksyms_datasec(
    btf: &mut Btf,
    sec: u32,
    externs: &Externs,
) -> Result<(), ParseError> {
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
                reason: BadExternReason::NoSymbol {
                    kind: t.kind,
                    datasec: KSYMS_SECTION,
                },
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
pub(super) fn fix_kconfig_datasec(
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
                reason: BadExternReason::NoSymbol {
                    kind: BtfKind::Var,
                    datasec: KCONFIG_SECTION,
                },
            });
        };
        v.offset = offset;
        if let BtfTypeData::Var { linkage } = &mut btf.type_by_id_mut(v.type_id)?.data {
            *linkage = VAR_GLOBAL_ALLOCATED;
        }
    }
    super::sort_by(&mut vars, &|a, b| a.offset.cmp(&b.offset));
    let t = btf.type_by_id_mut(sec)?;
    t.size_or_type = size;
    t.data = BtfTypeData::Datasec(vars);
    Ok(())
}

/// The `.kconfig` map: like `.rodata`, a one-element array, read-only to
/// programs and frozen; its value is filled at load time.
pub(super) fn kconfig_map(datasec: u32, size: u32) -> MapSpec {
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
