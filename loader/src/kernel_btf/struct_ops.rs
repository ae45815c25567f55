//! struct_ops in the kernel's BTF: the struct a struct_ops map fills
//! (`tcp_congestion_ops`), its wrapper `bpf_struct_ops_<name>` (the map's
//! value: a common header, then the struct as member `data`), and the map's
//! value built from the object's local struct, member by member, by name
//! (libbpf's `find_struct_ops_kern_types` and `bpf_map__init_kern_struct_ops`).
//!
//! Pure: it reads any [`TargetTypes`]; [`crate::load::struct_ops`] gives it
//! the kernel's.

use crate::obj::btf::{BtfKind, BtfMember, BtfType, BtfTypeData};
use crate::obj::core::TargetTypes;
use crate::obj::{ObjectSpec, StructOpsMember, StructOpsSpec};
use std::collections::BTreeSet;

/// The prefix of the kernel's value type for a struct_ops struct.
pub const WRAPPER_PREFIX: &str = "bpf_struct_ops_";

/// A struct_ops map's kernel side: its types, and the value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOpsLayout {
    /// The kernel struct's name (`tcp_congestion_ops`).
    pub struct_name: String,
    /// Its id: the `attach_btf_id` of the map's programs.
    pub struct_id: u32,
    /// The id of `bpf_struct_ops_<name>`: the map's `btf_vmlinux_value_type_id`.
    pub wrapper_id: u32,
    /// The map's value: the wrapper's bytes with the local members copied
    /// into `data`; function pointers are zero until the programs' fds go
    /// there ([`StructOpsLayout::programs`]).
    pub value: Vec<u8>,
    /// Where each program goes.
    pub programs: Vec<StructOpsSlot>,
}

/// A function-pointer member and the program that fills it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOpsSlot {
    /// The member's name.
    pub member: String,
    /// Its index in the kernel struct: the program's `expected_attach_type`.
    pub index: u32,
    /// Byte offset of the pointer in the map's value.
    pub value_offset: u32,
    /// The program's name.
    pub program: String,
}

/// The names [`layout`] looks up for `spec`'s struct_ops maps, for the
/// `wanted` set kernel BTF is opened with.
pub fn struct_ops_names(spec: &ObjectSpec) -> BTreeSet<String> {
    spec.struct_ops
        .iter()
        .flat_map(|s| {
            [
                s.type_name.clone(),
                format!("{WRAPPER_PREFIX}{}", s.type_name),
            ]
        })
        .collect()
}

/// The first STRUCT named `name` in `types`, with its id.
fn find_struct<'a>(
    types: &'a dyn TargetTypes,
    name: &str,
) -> Result<Option<(u32, std::borrow::Cow<'a, BtfType>)>, String> {
    for id in types
        .ids_by_essential_name(name)
        .map_err(|e| e.to_string())?
    {
        let t = types.type_by_id(id).map_err(|e| e.to_string())?;
        if t.kind == BtfKind::Struct && types.string(t.name_off).is_ok_and(|n| n == name) {
            return Ok(Some((id, t)));
        }
    }
    Ok(None)
}

/// Through typedefs and modifiers.
fn strip(types: &dyn TargetTypes, mut id: u32) -> Result<(u32, BtfType), String> {
    for _ in 0..32 {
        let t = types
            .type_by_id(id)
            .map_err(|e| e.to_string())?
            .into_owned();
        match t.kind {
            BtfKind::Typedef
            | BtfKind::Const
            | BtfKind::Volatile
            | BtfKind::Restrict
            | BtfKind::TypeTag => id = t.size_or_type,
            _ => return Ok((id, t)),
        }
    }
    Err(format!("type {id}: a chain of modifiers too long"))
}

/// A type's size in bytes.
fn size_of(types: &dyn TargetTypes, id: u32) -> Result<u32, String> {
    let (_, t) = strip(types, id)?;
    match (&t.kind, &t.data) {
        (BtfKind::Ptr, _) => Ok(8),
        (
            _,
            BtfTypeData::Array {
                elem_type, nelems, ..
            },
        ) => size_of(types, *elem_type)?
            .checked_mul(*nelems)
            .ok_or_else(|| format!("type {id}: size overflows")),
        (
            BtfKind::Int
            | BtfKind::Float
            | BtfKind::Struct
            | BtfKind::Union
            | BtfKind::Enum
            | BtfKind::Enum64,
            _,
        ) => Ok(t.size_or_type),
        (k, _) => Err(format!("type {id}: a {k} has no size")),
    }
}

/// Whether type `id` is a pointer to a function prototype.
fn is_func_ptr(types: &dyn TargetTypes, id: u32) -> Result<bool, String> {
    let (_, t) = strip(types, id)?;
    if t.kind != BtfKind::Ptr {
        return Ok(false);
    }
    Ok(strip(types, t.size_or_type)?.1.kind == BtfKind::FuncProto)
}

/// Checks local member `m` against `km`, the kernel's member of that
/// name in struct `name` (whose member offsets carry bitfield sizes when
/// `kind_flag`): same kind, a function pointer in both or neither, same
/// size, not a bitfield. Its byte offset in the kernel's struct.
fn kernel_offset(
    types: &dyn TargetTypes,
    name: &str,
    m: &StructOpsMember,
    km: &BtfMember,
    kind_flag: bool,
) -> Result<u32, String> {
    let (bits, bit_offset) = if kind_flag {
        (km.offset >> 24, km.offset & 0xff_ffff)
    } else {
        (0, km.offset)
    };
    if bits != 0 || bit_offset % 8 != 0 {
        return Err(format!(
            "member {} is a bitfield in the kernel's struct {name}",
            m.name
        ));
    }
    let (_, kt) = strip(types, km.type_id)?;
    if kt.kind != m.kind {
        return Err(format!(
            "member {} is a {} here but a {} in the kernel's struct {name}",
            m.name, m.kind, kt.kind
        ));
    }
    if m.func_ptr {
        if !is_func_ptr(types, km.type_id)? {
            return Err(format!(
                "member {} is a function pointer here but not in the kernel's struct {name}",
                m.name
            ));
        }
        return Ok(bit_offset / 8);
    }
    let ksize = size_of(types, km.type_id)?;
    if ksize != m.size {
        return Err(format!(
            "member {} is {} bytes here but {ksize} in the kernel's struct {name}",
            m.name, m.size
        ));
    }
    Ok(bit_offset / 8)
}

/// The kernel side of struct_ops map `spec`: its struct and wrapper in
/// `types`, and its value with the local members copied by name. Errors in
/// words naming the struct or member at fault (the caller adds the map).
pub fn layout(types: &dyn TargetTypes, spec: &StructOpsSpec) -> Result<StructOpsLayout, String> {
    let name = &spec.type_name;
    let (struct_id, kern) = find_struct(types, name)?
        .ok_or_else(|| format!("the kernel has no struct {name} (no struct_ops of that name)"))?;
    let wrapper_name = format!("{WRAPPER_PREFIX}{name}");
    let (wrapper_id, wrapper) = find_struct(types, &wrapper_name)?.ok_or_else(|| {
        format!("the kernel has struct {name} but no {wrapper_name}: it is not a struct_ops type")
    })?;
    if let Some(m) = types.module(struct_id) {
        return Err(format!(
            "struct {name} is in module {m}'s BTF; struct_ops of modules are not supported yet"
        ));
    }
    let member_name = |off| {
        types
            .string(off)
            .map(|s| s.into_owned())
            .unwrap_or_default()
    };
    let BtfTypeData::Members(wrapper_members) = &wrapper.data else {
        return Err(format!("{wrapper_name} is not a struct"));
    };
    let data = wrapper_members
        .iter()
        .find(|m| member_name(m.name_off) == "data")
        .ok_or_else(|| format!("{wrapper_name} has no member data"))?;
    let data_offset = data.offset / 8;
    let BtfTypeData::Members(kern_members) = &kern.data else {
        return Err(format!("{name} is not a struct"));
    };
    let mut value = vec![0u8; wrapper.size_or_type as usize];
    let mut programs = Vec::new();
    for m in &spec.members {
        let local = spec.member_bytes(m);
        let Some((index, km)) = kern_members
            .iter()
            .enumerate()
            .find(|(_, k)| member_name(k.name_off) == m.name)
        else {
            if m.program.is_some() || local.iter().any(|&b| b != 0) {
                return Err(format!(
                    "member {} is set, but the kernel's struct {name} has no member of that name",
                    m.name
                ));
            }
            continue;
        };
        let at = (data_offset + kernel_offset(types, name, m, km, kern.kind_flag)?) as usize;
        if m.func_ptr {
            if let Some(p) = &m.program {
                programs.push(StructOpsSlot {
                    member: m.name.clone(),
                    index: index as u32,
                    value_offset: at as u32,
                    program: p.clone(),
                });
            }
            continue;
        }
        value
            .get_mut(at..at + local.len())
            .ok_or_else(|| format!("member {} lies outside {wrapper_name}", m.name))?
            .copy_from_slice(local);
    }
    Ok(StructOpsLayout {
        struct_name: name.clone(),
        struct_id: types.kernel_id(struct_id),
        wrapper_id: types.kernel_id(wrapper_id),
        value,
        programs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::btf::tests::Builder;
    use crate::obj::btf::Btf;
    use BtfKind as K;

    fn object() -> ObjectSpec {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../programs/obj/struct_ops_cc.bpf.o"
        );
        ObjectSpec::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A kernel with `struct tcp_congestion_ops { u32 flags; ssthresh;
    /// cong_avoid; undo_cwnd; char name[16]; init; }` (members in another
    /// order than the object's, and one it lacks) and its wrapper with
    /// `data` at byte 8, unless `wrapper` is false.
    fn kernel(wrapper: bool) -> Btf {
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, K::Int, 0, 4, &[32]); // 1
        b.t(0, K::FuncProto, 0, 1, &[]); // 2
        b.t(0, K::Ptr, 0, 2, &[]); // 3
        let ch = b.s("char");
        b.t(ch, K::Int, 0, 1, &[8]); // 4
        b.t(0, K::Array, 0, 0, &[4, 1, 16]); // 5: char[16]
        let ops = b.s("tcp_congestion_ops");
        let names: Vec<u32> = [
            "flags",
            "ssthresh",
            "cong_avoid",
            "undo_cwnd",
            "name",
            "init",
        ]
        .iter()
        .map(|n| b.s(n))
        .collect();
        let members = [
            names[0], 1, 0, names[1], 3, 64, names[2], 3, 128, names[3], 3, 192, names[4], 5, 256,
            names[5], 3, 384,
        ];
        b.t(ops, K::Struct, 6, 56, &members); // 6
        if wrapper {
            let w = b.s("bpf_struct_ops_tcp_congestion_ops");
            let (common, data) = (b.s("common"), b.s("data"));
            b.t(w, K::Struct, 2, 64, &[common, 1, 0, data, 6, 64]); // 7
        }
        Btf::parse(&b.build()).unwrap()
    }

    #[test]
    fn members_go_by_name_to_the_kernels_offsets() {
        let spec = object();
        let cc = &spec.struct_ops[1];
        let l = layout(&kernel(true), cc).unwrap();
        assert_eq!((l.struct_id, l.wrapper_id, l.value.len()), (6, 7, 64));
        let slots: Vec<(&str, u32, u32, &str)> = l
            .programs
            .iter()
            .map(|s| {
                (
                    s.member.as_str(),
                    s.index,
                    s.value_offset,
                    s.program.as_str(),
                )
            })
            .collect();
        assert_eq!(
            slots,
            [
                ("ssthresh", 1, 16, "rawbpf_ssthresh"),
                ("cong_avoid", 2, 24, "rawbpf_cong_avoid"),
                ("undo_cwnd", 3, 32, "rawbpf_undo_cwnd"),
                ("init", 5, 56, "rawbpf_init"),
            ]
        );
        assert_eq!(&l.value[40..50], b"rawbpf_cc\0");
        assert!(l.value[..40].iter().all(|&b| b == 0));
        assert_eq!(
            struct_ops_names(&spec).into_iter().collect::<Vec<_>>(),
            ["bpf_struct_ops_tcp_congestion_ops", "tcp_congestion_ops"]
        );
    }

    #[test]
    fn what_the_kernel_lacks_is_named() {
        let mut cc = object().struct_ops.remove(1);
        let e = layout(&kernel(false), &cc).unwrap_err();
        assert!(e.contains("no bpf_struct_ops_tcp_congestion_ops"), "{e}");
        // A member the kernel lacks: fine while zero, an error once set.
        cc.members.push(crate::obj::StructOpsMember {
            name: "extra".into(),
            offset: 44,
            size: 4,
            kind: K::Int,
            func_ptr: false,
            program: None,
        });
        layout(&kernel(true), &cc).unwrap();
        cc.data[44] = 1;
        let e = layout(&kernel(true), &cc).unwrap_err();
        assert!(
            e.contains("member extra") && e.contains("tcp_congestion_ops"),
            "{e}"
        );
        cc.type_name = "nope_ops".into();
        let e = layout(&kernel(true), &cc).unwrap_err();
        assert!(e.contains("no struct nope_ops"), "{e}");
    }
}
