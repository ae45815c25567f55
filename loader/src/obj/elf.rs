//! Reading the ELF container: sections, symbols and relocation entries, all
//! bounds-checked, then the parse itself in the order the pieces depend on
//! each other (BTF → maps → functions → relocations → per-program views).

use super::btf::{Btf, BtfKind, BtfTypeData};
use super::btf_ext::BtfExt;
use super::ParseError;
use super::{externs, maps, programs, relocs, struct_ops, ObjectSpec};
use object::elf;
use object::read::elf::{FileHeader, Rel as _, SectionHeader as _, Sym as _};
use object::LittleEndian as LE;
use std::collections::HashMap;

/// `EM_BPF`.
const EM_BPF: u16 = 247;
/// Size of an ELF64 file header.
const EHDR_SIZE: u64 = 64;

/// One section header, with its bytes.
#[derive(Debug)]
pub(super) struct Section<'a> {
    pub index: usize,
    pub name: &'a str,
    pub sh_type: u32,
    pub flags: u64,
    /// Size in bytes (for `SHT_NOBITS`, the size it occupies in memory).
    pub size: u64,
    /// The bytes in the file (empty for `SHT_NOBITS`).
    pub data: &'a [u8],
}

impl Section<'_> {
    pub fn is_code(&self) -> bool {
        self.sh_type == elf::SHT_PROGBITS.0 && self.flags & elf::SHF_EXECINSTR.0 != 0
    }
}

/// One symbol-table entry.
#[derive(Debug)]
pub(super) struct Symbol<'a> {
    pub name: &'a str,
    /// Index of the section the symbol is defined in; `None` for undefined,
    /// absolute and common symbols.
    pub section: Option<usize>,
    pub undefined: bool,
    pub value: u64,
    pub size: u64,
    pub st_type: u8,
    pub global: bool,
    /// `STB_WEAK`: an extern that may be missing.
    pub weak: bool,
    /// `STV_HIDDEN` (`__hidden`): global to the linker, not to other objects.
    pub hidden: bool,
}

impl Symbol<'_> {
    pub fn is_func(&self) -> bool {
        self.st_type == elf::STT_FUNC.0
    }
    pub fn is_section(&self) -> bool {
        self.st_type == elf::STT_SECTION.0
    }
}

/// One `SHT_REL` entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct RelEntry {
    pub offset: u64,
    pub sym: u32,
    pub r_type: u32,
}

/// The ELF file, read once.
pub(super) struct Elf<'a> {
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    /// `SHT_REL` sections: (relocated section index, entries).
    pub rels: Vec<(usize, Vec<RelEntry>)>,
}

impl<'a> Elf<'a> {
    pub fn section(&self, index: usize) -> Option<&Section<'a>> {
        self.sections.get(index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn section_name(&self, index: usize) -> &'a str {
        self.sections.get(index).map_or("?", |s| s.name)
    }

    /// Relocation entries that apply to a section.
    pub fn rels_for(&self, index: usize) -> impl Iterator<Item = &RelEntry> {
        self.rels
            .iter()
            .filter(move |(target, _)| *target == index)
            .flat_map(|(_, entries)| entries.iter())
    }

    /// Symbols defined in a section.
    pub fn symbols_in(&self, index: usize) -> impl Iterator<Item = &Symbol<'a>> {
        self.symbols
            .iter()
            .filter(move |s| s.section == Some(index))
    }
}

/// Checks the identification bytes ourselves so each wrong kind of file gets
/// its own message (the `object` crate reports them all as one).
fn check_ident(data: &[u8]) -> Result<(), ParseError> {
    if data.len() < 4 || data[..4] != elf::ELFMAG {
        return Err(ParseError::NotElf);
    }
    // e_ident[EI_CLASS] and e_ident[EI_DATA].
    let class = data.get(4).copied().unwrap_or(0);
    if class != elf::ELFCLASS64.0 {
        return Err(ParseError::NotElf64(class));
    }
    match data.get(5).copied() {
        Some(d) if d == elf::ELFDATA2LSB.0 => Ok(()),
        Some(d) if d == elf::ELFDATA2MSB.0 => Err(ParseError::WrongEndian),
        other => Err(ParseError::Elf(format!(
            "unknown data encoding {} in the ELF identification",
            other.unwrap_or(0)
        ))),
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, ParseError> {
    std::str::from_utf8(bytes).map_err(|_| {
        ParseError::Elf(format!(
            "{what} is not valid UTF-8: {:?}",
            String::from_utf8_lossy(bytes)
        ))
    })
}

/// The section header table of an ELF64 little-endian file.
type SectionTable<'a> = object::read::elf::SectionTable<'a, elf::FileHeader64<LE>>;

/// Reads sections, symbols and relocation tables, checking that every
/// section's bytes are in the file and that no two sections overlap.
pub(super) fn read(data: &[u8]) -> Result<Elf<'_>, ParseError> {
    let (table, endian) = section_table(data)?;
    let sections = read_sections(&table, endian, data)?;
    check_overlaps(&sections, &table, endian)?;
    let symbols = read_symbols(&table, endian, data)?;
    let rels = read_rels(&table, endian, data, &sections)?;
    Ok(Elf {
        sections,
        symbols,
        rels,
    })
}

/// The file header checked (a relocatable BPF object), and the section
/// header table it points to.
fn section_table(data: &[u8]) -> Result<(SectionTable<'_>, LE), ParseError> {
    check_ident(data)?;
    if (data.len() as u64) < EHDR_SIZE {
        return Err(ParseError::Truncated {
            what: "the ELF header",
            start: 0,
            end: EHDR_SIZE,
            file_len: data.len(),
        });
    }
    let header = elf::FileHeader64::<LE>::parse(data)?;
    let endian = header.endian()?;
    let machine = header.e_machine(endian).0;
    if machine != EM_BPF {
        return Err(ParseError::NotBpf(machine));
    }
    let e_type = header.e_type(endian).0;
    if e_type != elf::ET_REL.0 {
        return Err(ParseError::NotRelocatable(e_type));
    }
    // A cut-off file loses its section header table first (it comes last):
    // say so plainly rather than "invalid section header offset".
    let (shoff, shnum) = (header.e_shoff(endian), u64::from(header.e_shnum(endian)));
    let shsize = shnum * u64::from(header.e_shentsize(endian));
    if shoff
        .checked_add(shsize)
        .is_none_or(|end| end > data.len() as u64)
    {
        return Err(ParseError::Truncated {
            what: "the section header table",
            start: shoff,
            end: shoff.saturating_add(shsize),
            file_len: data.len(),
        });
    }
    Ok((header.sections(endian, data)?, endian))
}

/// Every section with its name and bytes, the bytes checked to be in the file.
fn read_sections<'a>(
    table: &SectionTable<'a>,
    endian: LE,
    data: &'a [u8],
) -> Result<Vec<Section<'a>>, ParseError> {
    let mut sections = Vec::with_capacity(table.len());
    for (index, sh) in table.iter().enumerate() {
        let name = table.section_name(endian, sh).map_err(|_| {
            ParseError::Elf(format!(
                "section #{index}: name offset {} is outside the section name string table",
                sh.sh_name(endian)
            ))
        })?;
        let name = utf8(name, "a section name")?;
        let sh_type = sh.sh_type(endian).0;
        let (offset, size) = (sh.sh_offset(endian), sh.sh_size(endian));
        let bytes = if sh_type == elf::SHT_NOBITS.0 || sh_type == elf::SHT_NULL.0 {
            &[][..]
        } else {
            let end = offset.checked_add(size);
            match end
                .and_then(|end| data.get(usize::try_from(offset).ok()?..usize::try_from(end).ok()?))
            {
                Some(bytes) => bytes,
                None => {
                    return Err(ParseError::SectionOutOfBounds {
                        section: name.to_owned(),
                        offset,
                        end: end.unwrap_or(u64::MAX),
                        file_len: data.len(),
                    })
                }
            }
        };
        sections.push(Section {
            index,
            name,
            sh_type,
            flags: sh.sh_flags(endian).0,
            size,
            data: bytes,
        });
    }
    Ok(sections)
}

/// The symbol table.
fn read_symbols<'a>(
    table: &SectionTable<'a>,
    endian: LE,
    data: &'a [u8],
) -> Result<Vec<Symbol<'a>>, ParseError> {
    let symtab = table.symbols(endian, data, elf::SHT_SYMTAB)?;
    let strings = symtab.strings();
    let mut symbols = Vec::with_capacity(symtab.len());
    for (index, sym) in symtab.iter().enumerate() {
        let name = sym.name(endian, strings).map_err(|_| {
            ParseError::Elf(format!(
                "symbol #{index}: name offset {} is outside the symbol string table",
                sym.st_name(endian)
            ))
        })?;
        let name = utf8(name, "a symbol name")?;
        let shndx = sym.st_shndx(endian);
        symbols.push(Symbol {
            name,
            section: shndx.index().map(usize::from),
            undefined: shndx == elf::SHN_UNDEF,
            value: sym.st_value(endian),
            size: sym.st_size(endian),
            st_type: sym.st_type().0,
            global: sym.st_bind() != elf::STB_LOCAL,
            weak: sym.st_bind() == elf::STB_WEAK,
            hidden: sym.st_visibility() == elf::STV_HIDDEN,
        });
    }
    Ok(symbols)
}

/// The REL tables, by the section they relocate; RELA for code is refused.
fn read_rels(
    table: &SectionTable<'_>,
    endian: LE,
    data: &[u8],
    sections: &[Section<'_>],
) -> Result<Vec<(usize, Vec<RelEntry>)>, ParseError> {
    let mut rels = Vec::new();
    for (index, sh) in table.iter().enumerate() {
        match sh.sh_type(endian) {
            elf::SHT_REL => {
                let entries = sh.data_as_array::<elf::Rel64<LE>, _>(endian, data)?;
                let entries = entries
                    .iter()
                    .map(|r| RelEntry {
                        offset: r.r_offset(endian),
                        sym: r.r_sym(endian),
                        r_type: r.r_type(endian).0,
                    })
                    .collect();
                rels.push((sh.sh_info(endian) as usize, entries));
            }
            elf::SHT_RELA => {
                let target = sh.sh_info(endian) as usize;
                if sections.get(target).is_some_and(Section::is_code) {
                    return Err(ParseError::BadRelocation {
                        section: sections[target].name.to_owned(),
                        offset: 0,
                        symbol: String::new(),
                        reason: format!(
                            "section {} holds RELA relocations; BPF objects use REL (clang -target bpf writes REL)",
                            sections[index].name
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(rels)
}

/// No two sections (nor a section and the ELF header or the section header
/// table) may claim the same bytes.
fn check_overlaps(
    sections: &[Section<'_>],
    table: &SectionTable<'_>,
    endian: LE,
) -> Result<(), ParseError> {
    let mut ranges: Vec<(u64, u64, &str)> = Vec::with_capacity(sections.len() + 1);
    ranges.push((0, EHDR_SIZE, "(ELF header)"));
    for (section, sh) in sections.iter().zip(table.iter()) {
        if section.data.is_empty() {
            continue;
        }
        let start = sh.sh_offset(endian);
        ranges.push((start, start + section.data.len() as u64, section.name));
    }
    ranges.sort_unstable();
    let mut furthest: Option<(u64, u64, &str)> = None;
    for &(start, end, name) in &ranges {
        if let Some((f_start, f_end, f_name)) = furthest {
            if start < f_end {
                return Err(ParseError::SectionsOverlap {
                    first: f_name.to_owned(),
                    first_start: f_start,
                    first_end: f_end,
                    second: name.to_owned(),
                    second_start: start,
                    second_end: end,
                });
            }
        }
        if furthest.is_none_or(|(_, f_end, _)| end > f_end) {
            furthest = Some((start, end, name));
        }
    }
    Ok(())
}

/// clang leaves the size of every DATASEC and the offsets of global variables
/// at 0, to be filled in from the ELF file; the kernel rejects them as they
/// are. Fill them in as libbpf's `btf_fixup_datasec` does.
fn fix_datasecs(btf: &mut Btf, elf: &Elf<'_>) -> Result<(), ParseError> {
    let datasecs: Vec<u32> = btf
        .types()
        .filter(|(_, t)| t.kind == BtfKind::Datasec)
        .map(|(id, _)| id)
        .collect();
    // Sections by name and symbols by (section, name), the first of each
    // as a linear search finds it, built once: the work is datasecs +
    // variables + symbols, not products of them.
    let mut sections: HashMap<&str, &Section<'_>> = HashMap::new();
    for section in elf.sections.iter().rev() {
        sections.insert(section.name, section);
    }
    let mut symbols: HashMap<(usize, &str), u64> = HashMap::new();
    for sym in elf.symbols.iter().rev().filter(|s| !s.is_section()) {
        if let Some(section) = sym.section {
            symbols.insert((section, sym.name), sym.value);
        }
    }
    for id in datasecs {
        let Some(&section) = sections.get(btf.type_name(id)?) else {
            continue;
        };
        let index = section.index;
        let size = u32::try_from(section.size).map_err(|_| {
            ParseError::Elf(format!("section {} is larger than 4 GiB", section.name))
        })?;
        let BtfTypeData::Datasec(vars) = &btf.type_by_id(id)?.data else {
            continue;
        };
        let mut vars = vars.clone();
        for var in &mut vars {
            let name = btf.type_name(var.type_id)?;
            if let Some(&value) = symbols.get(&(index, name)) {
                var.offset = u32::try_from(value).unwrap_or(u32::MAX);
            }
        }
        vars.sort_by_key(|v| v.offset);
        let t = btf.type_by_id_mut(id)?;
        if t.size_or_type == 0 {
            t.size_or_type = size;
        }
        t.data = BtfTypeData::Datasec(vars);
    }
    Ok(())
}

/// A global function with hidden visibility (`__hidden`, as libbpf's
/// `bpf_usdt_arg`) is global only to the static linker; like libbpf, mark
/// its BTF FUNC static, so the verifier checks it in its caller's context
/// instead of on its own with unknown arguments (which it rejects).
fn hidden_funcs_static(btf: &mut Btf, elf: &Elf<'_>) -> Result<(), ParseError> {
    let hidden: std::collections::HashSet<&str> = elf
        .symbols
        .iter()
        .filter(|s| s.is_func() && s.global && s.hidden && !s.undefined)
        .map(|s| s.name)
        .collect();
    if hidden.is_empty() {
        return Ok(());
    }
    let ids: Vec<u32> = btf
        .types()
        .filter(|(_, t)| t.kind == BtfKind::Func && t.func_linkage() == 1)
        .filter(|(_, t)| btf.string(t.name_off).is_ok_and(|n| hidden.contains(n)))
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        btf.type_by_id_mut(id)?.vlen_extra = 0;
    }
    Ok(())
}

/// Parses the whole object.
pub(super) fn parse(data: &[u8]) -> Result<ObjectSpec, ParseError> {
    let elf = read(data)?;

    let license = match elf.section_by_name("license") {
        None => String::new(),
        Some(s) => {
            let text = s.data.split(|&b| b == 0).next().unwrap_or(&[]);
            if !s.data.contains(&0) {
                return Err(ParseError::BadLicense);
            }
            std::str::from_utf8(text)
                .map_err(|_| ParseError::BadLicense)?
                .to_owned()
        }
    };
    let kernel_version = match elf.section_by_name("version") {
        None => None,
        Some(s) => match <[u8; 4]>::try_from(s.data) {
            Ok(b) => Some(u32::from_le_bytes(b)),
            Err(_) => return Err(ParseError::BadVersion(s.size)),
        },
    };
    let mut btf = elf
        .section_by_name(".BTF")
        .map(|s| Btf::parse(s.data))
        .transpose()?;
    if let Some(btf) = &mut btf {
        fix_datasecs(btf, &elf)?;
        hidden_funcs_static(btf, &elf)?;
    }
    let externs = externs::collect(&elf, btf.as_mut())?;
    let btf_ext = match (&btf, elf.section_by_name(".BTF.ext")) {
        (Some(btf), Some(s)) => Some(BtfExt::parse(s.data, btf)?),
        _ => None,
    };

    let maps = maps::collect(&elf, btf.as_ref())?;
    let mut functions = programs::collect_functions(&elf)?;
    relocs::collect(&elf, &mut functions, &maps, &externs)?;
    if let Some(ext) = &btf_ext {
        programs::attach_btf_ext(&mut functions, ext, btf.as_ref().unwrap_or(&Btf::new()))?;
    }
    let (programs, subprograms) = programs::split_programs(functions)?;
    let struct_ops = struct_ops::collect(&elf, btf.as_ref(), &programs)?;

    let mut maps = maps.into_specs();
    maps.extend(externs.kconfig_map.clone());
    Ok(ObjectSpec {
        programs,
        subprograms,
        maps,
        externs: externs.specs,
        struct_ops,
        license,
        kernel_version,
        btf,
        core_relocations: btf_ext
            .as_ref()
            .map_or(0, |e| e.core_relos.iter().map(|s| s.records.len()).sum()),
    })
}
