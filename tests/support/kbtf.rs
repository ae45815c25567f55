//! What a kernel's BTF says, read by the tests' own walk over
//! `rawbpf::obj::btf::Btf` (types by id, names, sizes) — never through
//! rawbpf's CO-RE code — so that CO-RE results can be checked against it.
//! Also the running kernel's version, for facts of kernel history.

use rawbpf::obj::btf::{Btf, BtfKind, BtfTypeData};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Parses a kernel BTF file (`/sys/kernel/btf/vmlinux` or a copy).
pub fn load(path: &str) -> Btf {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Btf::parse(&raw).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A struct member as the kernel lays it out, relative to the outer struct
/// the walk started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Bit offset from the start of the outer struct.
    pub bit_offset: u32,
    /// Bitfield width in bits; 0 for a whole member.
    pub bitfield_bits: u32,
    /// The member's type.
    pub type_id: u32,
}

impl Member {
    pub fn byte_offset(&self) -> u64 {
        u64::from(self.bit_offset / 8)
    }
}

/// The id of the struct (or union, enum, ...) of this kind and name.
pub fn named(btf: &Btf, kind: BtfKind, name: &str) -> Option<u32> {
    btf.find_by_name(kind, name)
}

/// The id of `struct NAME`; panics (naming it) if the BTF has none.
pub fn struct_id(btf: &Btf, name: &str) -> u32 {
    named(btf, BtfKind::Struct, name).unwrap_or_else(|| panic!("no struct {name} in the BTF"))
}

/// Size in bytes of a type.
pub fn size(btf: &Btf, id: u32) -> u64 {
    u64::from(btf.resolve_size(id).unwrap())
}

/// A member of a struct or union by a dotted path (`se.vruntime`); each
/// step also looks inside anonymous struct/union members, as C does.
pub fn member(btf: &Btf, type_id: u32, path: &str) -> Option<Member> {
    let mut outer = type_id;
    let mut base = 0;
    let mut found = None;
    for name in path.split('.') {
        let m = direct_or_anonymous(btf, outer, name)?;
        let m = Member {
            bit_offset: base + m.bit_offset,
            ..m
        };
        base = m.bit_offset;
        outer = btf.strip_modifiers(m.type_id).unwrap();
        found = Some(m);
    }
    found
}

/// Only the struct's own members, by name (no anonymous members).
pub fn direct_member(btf: &Btf, type_id: u32, name: &str) -> Option<Member> {
    members(btf, type_id)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, m)| m)
}

fn direct_or_anonymous(btf: &Btf, type_id: u32, name: &str) -> Option<Member> {
    for (n, m) in members(btf, type_id) {
        if n == name {
            return Some(m);
        }
        if n.is_empty() {
            if let Some(inner) = direct_or_anonymous(btf, m.type_id, name) {
                return Some(Member {
                    bit_offset: m.bit_offset + inner.bit_offset,
                    ..inner
                });
            }
        }
    }
    None
}

/// The names of a struct's own members, in order.
pub fn member_names(btf: &Btf, type_id: u32) -> Vec<String> {
    members(btf, type_id).into_iter().map(|(n, _)| n).collect()
}

/// A struct's or union's members with their names; empty for other kinds.
fn members(btf: &Btf, type_id: u32) -> Vec<(String, Member)> {
    let id = btf.strip_modifiers(type_id).unwrap();
    let t = btf.type_by_id(id).unwrap();
    let BtfTypeData::Members(ms) = &t.data else {
        return Vec::new();
    };
    ms.iter()
        .map(|m| {
            // With kind_flag the offset word is bitfield size << 24 | bit offset.
            let (bit_offset, bitfield_bits) = if t.kind_flag {
                (m.offset & 0xff_ffff, m.offset >> 24)
            } else {
                (m.offset, 0)
            };
            let name = btf.string(m.name_off).unwrap().to_owned();
            (
                name,
                Member {
                    bit_offset,
                    bitfield_bits,
                    type_id: m.type_id,
                },
            )
        })
        .collect()
}

/// The value of enumerator `name` of `enum enum_name` (ENUM or ENUM64).
pub fn enumerator(btf: &Btf, enum_name: &str, name: &str) -> Option<u64> {
    for kind in [BtfKind::Enum, BtfKind::Enum64] {
        let Some(id) = named(btf, kind, enum_name) else {
            continue;
        };
        let t = btf.type_by_id(id).unwrap();
        let value = match &t.data {
            BtfTypeData::Enum(vs) => vs
                .iter()
                .find(|v| btf.string(v.name_off).unwrap() == name)
                // kind_flag: a signed enum, whose values sign-extend.
                .map(|v| {
                    if t.kind_flag {
                        v.val as i64 as u64
                    } else {
                        v.val as u32 as u64
                    }
                }),
            BtfTypeData::Enum64(vs) => vs
                .iter()
                .find(|v| btf.string(v.name_off).unwrap() == name)
                .map(|v| v.val),
            _ => None,
        };
        return value;
    }
    None
}

/// Whether a type resolves (through typedefs and qualifiers) to an INT of
/// `bytes` bytes with the given signedness.
pub fn is_int(btf: &Btf, type_id: u32, bytes: u32, signed: bool) -> bool {
    let id = btf.strip_modifiers(type_id).unwrap();
    let t = btf.type_by_id(id).unwrap();
    match t.data {
        BtfTypeData::Int { encoding, .. } if t.kind == BtfKind::Int => {
            t.size_or_type == bytes && (encoding & 1 == 1) == signed
        }
        _ => false,
    }
}

/// (major, minor) of a release string such as "6.18.44-fc" or "btf-5.10".
pub fn version_of(release: &str) -> Option<(u32, u32)> {
    let start = release.find(|c: char| c.is_ascii_digit())?;
    let mut parts = release[start..]
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>());
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// The running kernel's (major, minor), from uname's release.
pub fn running_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    version_of(release.trim()).unwrap_or_else(|| panic!("kernel release {release:?}"))
}
