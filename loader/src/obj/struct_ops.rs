//! struct_ops maps as the object declares them: each variable of the
//! `.struct_ops` and `.struct_ops.link` sections (its BTF `DATASEC` entry)
//! is one map, typed by a local struct (`struct tcp_congestion_ops`), whose
//! bytes hold the plain members' values (`.name`, flags) and whose
//! relocations (`.rel.struct_ops*`, `R_BPF_64_ABS64`) name the program each
//! function-pointer member points to. libbpf's `bpf_object__init_struct_ops`
//! and `bpf_object__collect_st_ops_relos`.
//!
//! Pure: matching the local struct with the kernel's is
//! [`crate::kernel_btf::struct_ops`], creating and registering the map
//! [`crate::load::struct_ops`] and [`crate::link::struct_ops`].

use super::btf::{Btf, BtfKind, BtfTypeData};
use super::elf::Elf;
use super::{ParseError, ProgramSpec};
use crate::uapi::ProgramType;

/// The sections whose variables are struct_ops maps.
pub const STRUCT_OPS_SECTION: &str = ".struct_ops";
/// The section of struct_ops maps registered through a BPF link (`BPF_F_LINK`).
pub const STRUCT_OPS_LINK_SECTION: &str = ".struct_ops.link";

/// `R_BPF_64_ABS64`: a 64-bit absolute address in data (a function pointer).
const R_BPF_64_ABS64: u32 = 2;

/// One struct_ops map the object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOpsSpec {
    /// The map's name: the variable's.
    pub name: String,
    /// Its section: [`STRUCT_OPS_SECTION`] or [`STRUCT_OPS_LINK_SECTION`].
    pub section: String,
    /// The local struct's name without any `___flavor` suffix: the kernel
    /// struct of that name is the one it fills (`tcp_congestion_ops`).
    pub type_name: String,
    /// The local struct's id in the object's BTF.
    pub type_id: u32,
    /// The variable's bytes (function pointers are zero here).
    pub data: Vec<u8>,
    /// The local struct's members, in order.
    pub members: Vec<StructOpsMember>,
}

/// A member of a struct_ops map's local struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOpsMember {
    /// Its name, which finds the kernel's member.
    pub name: String,
    /// Byte offset in the local struct.
    pub offset: u32,
    /// Byte size.
    pub size: u32,
    /// The kind of its type, through typedefs and modifiers.
    pub kind: BtfKind,
    /// Whether it is a function pointer (a program goes there).
    pub func_ptr: bool,
    /// The program it points to, from the section's relocations.
    pub program: Option<String>,
}

impl StructOpsSpec {
    /// Whether the map registers through a BPF link (`.struct_ops.link`).
    pub fn is_link(&self) -> bool {
        self.section == STRUCT_OPS_LINK_SECTION
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&StructOpsMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The member's bytes in [`StructOpsSpec::data`].
    pub fn member_bytes(&self, m: &StructOpsMember) -> &[u8] {
        let start = m.offset as usize;
        self.data
            .get(start..start + m.size as usize)
            .unwrap_or_default()
    }

    /// Replaces a plain member's bytes (zero-padded to its size), as a
    /// caller that renames a `tcp_congestion_ops` before loading does with
    /// its `name`. Errors in words when the member is missing, a function
    /// pointer, or `bytes` is longer than it.
    pub fn set_member(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let m = self
            .member(name)
            .ok_or_else(|| format!("struct {} has no member {name}", self.type_name))?
            .clone();
        if m.func_ptr {
            return Err(format!("member {name} is a function pointer"));
        }
        if bytes.len() > m.size as usize {
            return Err(format!(
                "member {name} holds {} bytes, not {}",
                m.size,
                bytes.len()
            ));
        }
        let slot = &mut self.data[m.offset as usize..(m.offset + m.size) as usize];
        slot.fill(0);
        slot[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// The programs its members point to, each once, in member order.
    pub fn programs(&self) -> impl Iterator<Item = &str> {
        let mut seen = Vec::new();
        self.members
            .iter()
            .filter_map(|m| m.program.as_deref())
            .filter(move |p| {
                let new = !seen.contains(p);
                seen.push(*p);
                new
            })
    }
}

fn bad(map: &str, reason: impl Into<String>) -> ParseError {
    ParseError::BadMapDefinition {
        map: map.to_owned(),
        reason: reason.into(),
    }
}

/// Every struct_ops map of the object, `.struct_ops` first. `programs` are
/// the object's programs: a member must point to a struct_ops one.
pub(super) fn collect(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
    programs: &[ProgramSpec],
) -> Result<Vec<StructOpsSpec>, ParseError> {
    let mut out = Vec::new();
    for name in [STRUCT_OPS_SECTION, STRUCT_OPS_LINK_SECTION] {
        let Some(section) = elf.section_by_name(name) else {
            continue;
        };
        let btf = btf.ok_or_else(|| {
            ParseError::Elf(format!(
                "section {name}: struct_ops maps need the object's .BTF section (compile with clang -g), and there is none"
            ))
        })?;
        let first = out.len();
        let Some(datasec) = btf.find_by_name(BtfKind::Datasec, name) else {
            return Err(ParseError::Elf(format!(
                "section {name}: no BTF DATASEC describes it"
            )));
        };
        let BtfTypeData::Datasec(vars) = &btf.type_by_id(datasec)?.data else {
            continue;
        };
        for v in vars {
            let var_name = btf.type_name(v.type_id)?.to_owned();
            let var = btf.type_by_id(v.type_id)?;
            let type_id = btf.strip_modifiers(var.size_or_type)?;
            let start = v.offset as usize;
            let data = section
                .data
                .get(start..start + v.size as usize)
                .ok_or_else(|| bad(&var_name, "its bytes lie outside its section"))?
                .to_vec();
            out.push(StructOpsSpec {
                members: members(btf, type_id, &var_name)?,
                type_name: super::core::essential_name(btf.type_name(type_id)?).to_owned(),
                name: var_name,
                section: name.to_owned(),
                type_id,
                data,
            });
        }
        relocations(elf, section.index, &vars[..], &mut out[first..], programs)?;
    }
    Ok(out)
}

/// The members of struct `id`, the type of struct_ops map `map`.
fn members(btf: &Btf, id: u32, map: &str) -> Result<Vec<StructOpsMember>, ParseError> {
    let t = btf.type_by_id(id)?;
    let BtfTypeData::Members(members) = &t.data else {
        return Err(bad(
            map,
            format!(
                "a struct_ops variable must be a struct, and this one is a {}",
                t.kind
            ),
        ));
    };
    if t.kind != BtfKind::Struct {
        return Err(bad(
            map,
            "a struct_ops variable must be a struct, not a union",
        ));
    }
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let name = btf.string(m.name_off)?.to_owned();
        let (bits, bit_offset) = if t.kind_flag {
            (m.offset >> 24, m.offset & 0xff_ffff)
        } else {
            (0, m.offset)
        };
        if bits != 0 || bit_offset % 8 != 0 {
            return Err(bad(
                map,
                format!("member {name} is a bitfield, which struct_ops maps cannot hold"),
            ));
        }
        let ty = btf.strip_modifiers(m.type_id)?;
        let resolved = btf.type_by_id(ty)?;
        let func_ptr = resolved.kind == BtfKind::Ptr
            && btf
                .strip_modifiers(resolved.size_or_type)
                .and_then(|p| btf.type_by_id(p))
                .is_ok_and(|p| p.kind == BtfKind::FuncProto);
        out.push(StructOpsMember {
            offset: bit_offset / 8,
            size: btf.resolve_size(ty)?,
            kind: resolved.kind,
            func_ptr,
            program: None,
            name,
        });
    }
    Ok(out)
}

/// Fills each member's program from the relocations of section `index`,
/// whose variables are `vars` (the maps in `maps`, in the same order).
fn relocations(
    elf: &Elf<'_>,
    index: usize,
    vars: &[super::btf::BtfVarSecinfo],
    maps: &mut [StructOpsSpec],
    programs: &[ProgramSpec],
) -> Result<(), ParseError> {
    let section = elf.section_name(index);
    for rel in elf.rels_for(index) {
        let Some(i) = vars.iter().position(|v| {
            rel.offset >= u64::from(v.offset)
                && rel.offset < u64::from(v.offset) + u64::from(v.size)
        }) else {
            return Err(ParseError::Elf(format!(
                "section {section}: relocation at offset {} is in no struct_ops variable",
                rel.offset
            )));
        };
        let map = &mut maps[i];
        let moff = (rel.offset - u64::from(vars[i].offset)) as u32;
        if rel.r_type != R_BPF_64_ABS64 {
            return Err(bad(
                &map.name,
                format!(
                    "relocation at offset {moff} has type {}, expected R_BPF_64_ABS64 (2)",
                    rel.r_type
                ),
            ));
        }
        let program = target(elf, rel.sym, &map.data, moff).map_err(|e| bad(&map.name, e))?;
        let Some(member) = map.members.iter_mut().find(|m| m.offset == moff) else {
            return Err(bad(
                &map.name,
                format!("relocation at offset {moff} (program {program}) is at no member's start"),
            ));
        };
        if !member.func_ptr {
            return Err(bad(
                &map.name,
                format!(
                    "member {} points to program {program} but is not a function pointer",
                    member.name
                ),
            ));
        }
        check_program(programs, program, &member.name).map_err(|e| bad(&map.name, e))?;
        member.program = Some(program.to_owned());
    }
    Ok(())
}

/// The name of the function relocation `sym` at `moff` of a map's `data`
/// points to: a function symbol's own; for a section symbol, the function
/// at the address stored in the data (the implicit addend).
fn target<'a>(elf: &Elf<'a>, sym: u32, data: &[u8], moff: u32) -> Result<&'a str, String> {
    let s = elf.symbols.get(sym as usize).ok_or_else(|| {
        format!("relocation at offset {moff} names symbol #{sym}, which is not in the symbol table")
    })?;
    if !s.is_section() {
        return Ok(s.name);
    }
    let at = data
        .get(moff as usize..moff as usize + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    Ok(elf
        .symbols_in(s.section.unwrap_or(usize::MAX))
        .find(|f| f.is_func() && f.value == at)
        .map_or("?", |f| f.name))
}

/// That `program`, which member `member` points to, is a struct_ops
/// program of the object.
fn check_program(programs: &[ProgramSpec], program: &str, member: &str) -> Result<(), String> {
    match programs.iter().find(|p| p.name() == program) {
        Some(p) if p.prog_type == ProgramType::STRUCT_OPS => Ok(()),
        Some(p) => Err(format!(
            "member {member} points to program {program}, whose section {} is not struct_ops/...",
            p.section()
        )),
        None => Err(format!(
            "member {member} points to {program}, which is not a program of the object"
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::obj::btf::BtfKind;
    use crate::ObjectSpec;

    fn object() -> ObjectSpec {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../programs/obj/struct_ops_cc.bpf.o"
        );
        ObjectSpec::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn each_variable_is_a_map_with_its_programs() {
        let spec = object();
        let names: Vec<(&str, &str, bool)> = spec
            .struct_ops
            .iter()
            .map(|s| (s.name.as_str(), s.section.as_str(), s.is_link()))
            .collect();
        assert_eq!(
            names,
            [
                ("rawbpf_cc_map", ".struct_ops", false),
                ("rawbpf_cc", ".struct_ops.link", true)
            ]
        );
        let cc = &spec.struct_ops[1];
        assert_eq!(cc.type_name, "tcp_congestion_ops");
        assert_eq!(cc.data.len(), 48);
        let members: Vec<(&str, u32, Option<&str>)> = cc
            .members
            .iter()
            .map(|m| (m.name.as_str(), m.offset, m.program.as_deref()))
            .collect();
        assert_eq!(
            members,
            [
                ("ssthresh", 0, Some("rawbpf_ssthresh")),
                ("cong_avoid", 8, Some("rawbpf_cong_avoid")),
                ("undo_cwnd", 16, Some("rawbpf_undo_cwnd")),
                ("init", 24, Some("rawbpf_init")),
                ("name", 32, None),
            ]
        );
        let name = cc.member("name").unwrap();
        assert_eq!(name.kind, BtfKind::Array);
        assert!(!name.func_ptr && cc.member("init").unwrap().func_ptr);
        assert_eq!(&cc.member_bytes(name)[..10], b"rawbpf_cc\0");
        assert_eq!(cc.programs().count(), 4);
    }

    /// The object's bytes with the first relocation of `.rel.struct_ops`
    /// (map rawbpf_cc_map's ssthresh) changed by `patch(r_offset, r_info)`.
    fn with_first_reloc(patch: impl Fn(&mut u64, &mut u64, &dyn Fn(&str) -> u64)) -> Vec<u8> {
        use object::read::elf::ElfFile64;
        use object::{Object, ObjectSection, ObjectSymbol};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../programs/obj/struct_ops_cc.bpf.o"
        );
        let mut bytes = std::fs::read(path).unwrap();
        let (at, symbols) = {
            let elf = ElfFile64::<object::LittleEndian>::parse(&bytes[..]).unwrap();
            let rel = elf.section_by_name(".rel.struct_ops").unwrap();
            let at = rel.file_range().unwrap().0 as usize;
            let symbols: Vec<(String, u64)> = elf
                .symbols()
                .map(|s| (s.name().unwrap_or("").to_owned(), s.index().0 as u64))
                .collect();
            (at, symbols)
        };
        let sym = |name: &str| symbols.iter().find(|(n, _)| n == name).unwrap().1;
        let mut off = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let mut info = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        patch(&mut off, &mut info, &sym);
        bytes[at..at + 8].copy_from_slice(&off.to_le_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&info.to_le_bytes());
        bytes
    }

    fn parse_error(bytes: &[u8]) -> String {
        ObjectSpec::parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn bad_relocations_name_the_map_and_member() {
        let e = parse_error(&with_first_reloc(|off, _, _| *off = 4));
        assert!(
            e.contains("map rawbpf_cc_map") && e.contains("offset 4") && e.contains("no member"),
            "{e}"
        );
        let e = parse_error(&with_first_reloc(|off, _, _| *off = 32));
        assert!(
            e.contains("map rawbpf_cc_map")
                && e.contains("member name")
                && e.contains("not a function pointer"),
            "{e}"
        );
        let e = parse_error(&with_first_reloc(|_, info, sym| {
            *info = (sym("init_calls") << 32) | (*info & 0xffff_ffff)
        }));
        assert!(
            e.contains("member ssthresh")
                && e.contains("init_calls")
                && e.contains("not a program"),
            "{e}"
        );
        let e = parse_error(&with_first_reloc(|_, info, _| {
            *info = (*info & !0xffff_ffff) | 1
        }));
        assert!(
            e.contains("map rawbpf_cc_map") && e.contains("R_BPF_64_ABS64"),
            "{e}"
        );
    }

    #[test]
    fn set_member_renames_and_refuses_what_does_not_fit() {
        let mut cc = object().struct_ops.remove(1);
        cc.set_member("name", b"cc_1234").unwrap();
        let name = cc.member("name").unwrap().clone();
        assert_eq!(cc.member_bytes(&name), b"cc_1234\0\0\0\0\0\0\0\0\0");
        assert!(cc.set_member("name", &[b'x'; 17]).is_err());
        assert!(cc.set_member("init", b"x").is_err());
        assert!(cc.set_member("nope", b"x").is_err());
    }
}
