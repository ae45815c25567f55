//! Maps: BTF-defined (`.maps`), legacy (`maps`, `struct bpf_map_def`) and
//! global data (`.data*`, `.rodata*`, `.bss*` as one-element arrays), plus the
//! `.values` initialisers of prog arrays and map-in-maps (relocations in
//! `.rel.maps`).

use super::btf::{Btf, BtfKind, BtfTypeData};
use super::elf::{Elf, Section, Symbol};
use super::ParseError;
use super::{InitialSlot, MapOrigin, MapSpec, Pinning, SlotTarget};
use crate::uapi::{MapType, BPF_F_RDONLY_PROG};
use object::elf;
use std::borrow::Cow;
use std::collections::HashMap;

/// `R_BPF_64_ABS64`: a 64-bit absolute address in data (a `.values` slot).
const R_BPF_64_ABS64: u32 = 2;
/// The size of a `.values` slot: a pointer.
const PTR_SIZE: u64 = 8;
/// Size of libbpf's legacy `struct bpf_map_def` (five u32s).
const LEGACY_DEF_SIZE: usize = 20;

/// The maps, with where each is defined, so relocations can find them.
pub(super) struct Maps {
    specs: Vec<MapSpec>,
    /// Per spec: where its definition is.
    places: Vec<DefinitionPlace>,
    /// (section, offset) → the first spec defined there, and section → its
    /// global-data map: relocations find their map in O(1), not by a search
    /// of every map each.
    starts: HashMap<(usize, u64), usize>,
    data: HashMap<usize, usize>,
}

/// Where a map's definition lies.
#[derive(Clone, Copy)]
struct DefinitionPlace {
    section: usize,
    offset: u64,
    size: u64,
    /// Byte offset of the `values` member within the definition, if any.
    values_offset: Option<u64>,
}

impl DefinitionPlace {
    fn new(section: usize, offset: u64, size: u64) -> DefinitionPlace {
        DefinitionPlace {
            section,
            offset,
            size,
            values_offset: None,
        }
    }
}

impl Maps {
    fn push(&mut self, place: DefinitionPlace, spec: MapSpec) {
        let i = self.specs.len();
        self.starts
            .entry((place.section, place.offset))
            .or_insert(i);
        if spec.origin == MapOrigin::GlobalData {
            self.data.entry(place.section).or_insert(i);
        }
        self.places.push(place);
        self.specs.push(spec);
    }

    /// The map whose definition starts at `offset` of section `section`.
    pub fn defined_at(&self, section: usize, offset: u64) -> Option<&MapSpec> {
        self.starts.get(&(section, offset)).map(|&i| &self.specs[i])
    }

    /// The global-data map of a section.
    pub fn data_map(&self, section: usize) -> Option<&MapSpec> {
        self.data.get(&section).map(|&i| &self.specs[i])
    }

    pub fn into_specs(self) -> Vec<MapSpec> {
        self.specs
    }
}

/// Finds every map the object defines.
pub(super) fn collect(elf: &Elf<'_>, btf: Option<&Btf>) -> Result<Maps, ParseError> {
    let mut maps = Maps {
        specs: Vec::new(),
        places: Vec::new(),
        starts: HashMap::new(),
        data: HashMap::new(),
    };
    if let Some(section) = elf.section_by_name(".maps") {
        let btf = btf.ok_or(ParseError::MapsNeedBtf)?;
        btf_maps(elf, section, btf, &mut maps)?;
        values_relocations(elf, section, &mut maps)?;
    }
    if let Some(section) = elf.section_by_name("maps") {
        legacy_maps(elf, section, &mut maps)?;
    }
    for section in &elf.sections {
        if let Some(spec) = data_map(section, btf) {
            maps.push(DefinitionPlace::new(section.index, 0, section.size), spec);
        }
    }
    Ok(maps)
}

/// A map with every field zero: the definitions below fill in what they declare.
fn blank(name: &str, origin: MapOrigin, section: &str) -> MapSpec {
    MapSpec {
        name: name.to_owned(),
        origin,
        section: section.to_owned(),
        map_type: MapType::UNSPEC,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        numa_node: 0,
        map_extra: 0,
        pinning: Pinning::None,
        btf_key_type_id: 0,
        btf_value_type_id: 0,
        inner: None,
        initial_slots: Vec::new(),
        data: None,
    }
}

fn bad(map: &str, reason: impl Into<String>) -> ParseError {
    ParseError::BadMapDefinition {
        map: map.to_owned(),
        reason: reason.into(),
    }
}

/// BTF-defined maps: each variable of the `.maps` DATASEC is a struct whose
/// members encode the definition (`__uint`, `__type`, `__array`).
fn btf_maps(
    elf: &Elf<'_>,
    section: &Section<'_>,
    btf: &Btf,
    maps: &mut Maps,
) -> Result<(), ParseError> {
    let Some(datasec) = btf.find_by_name(BtfKind::Datasec, ".maps") else {
        return Err(bad(
            ".maps",
            "the object's BTF has no DATASEC .maps describing the section",
        ));
    };
    let BtfTypeData::Datasec(vars) = &btf.type_by_id(datasec)?.data else {
        return Err(bad(".maps", "BTF type .maps is not a DATASEC"));
    };
    // The first symbol of each name in the section, found once.
    let mut symbols: HashMap<&str, &Symbol<'_>> = HashMap::new();
    for sym in elf.symbols_in(section.index).filter(|s| !s.is_section()) {
        symbols.entry(sym.name).or_insert(sym);
    }
    for var in vars {
        let var_type = btf.type_by_id(var.type_id)?;
        if var_type.kind != BtfKind::Var {
            return Err(bad(
                ".maps",
                format!(
                    "DATASEC .maps entry is BTF type {} ({}), not a VAR",
                    var.type_id,
                    var_type.kind.name()
                ),
            ));
        }
        let name = btf.type_name(var.type_id)?;
        // clang leaves DATASEC offsets for the loader to fill in; the symbol
        // table has the real ones (libbpf's btf_fixup_datasec does the same).
        let (offset, size) = match symbols.get(name) {
            Some(s) => (s.value, s.size),
            None => (u64::from(var.offset), u64::from(var.size)),
        };
        if offset
            .checked_add(size)
            .is_none_or(|end| end > section.size)
        {
            return Err(bad(
                name,
                format!(
                    "definition at bytes {offset}..+{size} lies outside section .maps ({} bytes)",
                    section.size
                ),
            ));
        }
        let def = btf.strip_modifiers(var_type.size_or_type)?;
        let (spec, values_offset) = btf_map_def(btf, name, def, false)?;
        maps.push(
            DefinitionPlace {
                values_offset,
                ..DefinitionPlace::new(section.index, offset, size)
            },
            spec,
        );
    }
    check_no_overlap(maps, section.index)
}

/// No two definitions may share bytes: a `.values` relocation must lie in
/// exactly one. Sorted by start, an overlap shows between neighbours.
fn check_no_overlap(maps: &Maps, section: usize) -> Result<(), ParseError> {
    let mut ranges: Vec<(u64, u64, usize)> = maps
        .places
        .iter()
        .enumerate()
        .filter(|(_, p)| p.section == section)
        .map(|(i, p)| (p.offset, p.offset + p.size, i))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((a_start, a_end, a), (b_start, b_end, b)) = (pair[0], pair[1]);
        if b_start < a_end {
            return Err(bad(
                &maps.specs[b].name,
                format!(
                    "definition at bytes {b_start}..{b_end} of section .maps overlaps map {}'s ({a_start}..{a_end})",
                    maps.specs[a].name
                ),
            ));
        }
    }
    Ok(())
}

/// Parses one definition struct, as libbpf's `parse_btf_map_def` does; also
/// returns the byte offset of its `values` member, if it has one.
fn btf_map_def(
    btf: &Btf,
    name: &str,
    def_id: u32,
    is_inner: bool,
) -> Result<(MapSpec, Option<u64>), ParseError> {
    let def = btf.type_by_id(def_id)?;
    let BtfTypeData::Members(members) = &def.data else {
        return Err(bad(
            name,
            format!(
                "definition is BTF type {def_id} ({}), not a struct",
                def.kind.name()
            ),
        ));
    };
    let mut spec = blank(name, MapOrigin::Btf, ".maps");
    let mut values_offset = None;
    for (i, m) in members.iter().enumerate() {
        let field = btf.string(m.name_off)?;
        let uint = || {
            btf.uint_from_ptr_to_array(m.type_id)
                .map_err(|e| bad(name, format!("field {field}: {e}")))
        };
        match field {
            "type" => spec.map_type = MapType(uint()?),
            "max_entries" => spec.max_entries = uint()?,
            "map_flags" => spec.flags = uint()?,
            "numa_node" => spec.numa_node = uint()?,
            "map_extra" => spec.map_extra = u64::from(uint()?),
            "key_size" => set_size(&mut spec.key_size, uint()?, name, "key")?,
            "value_size" => set_size(&mut spec.value_size, uint()?, name, "value")?,
            "key" | "value" => key_or_value_type(btf, &mut spec, field, m.type_id)?,
            "pinning" => {
                if is_inner {
                    return Err(bad(name, "an inner map definition cannot be pinned"));
                }
                spec.pinning = pinning(name, uint()?)?;
            }
            "values" => {
                if is_inner {
                    return Err(bad(name, "inner maps of inner maps are not supported"));
                }
                if i + 1 != members.len() {
                    return Err(bad(
                        name,
                        "field values must be the last member of the definition",
                    ));
                }
                values_field(btf, &mut spec, m.type_id)?;
                values_offset = Some(u64::from(m.offset / 8));
            }
            other => {
                return Err(bad(
                    name,
                    format!("unknown field {other} in the definition (libbpf refuses it too)"),
                ))
            }
        }
    }
    if spec.map_type == MapType::UNSPEC {
        return Err(ParseError::MapWithoutType {
            map: name.to_owned(),
            section: ".maps".to_owned(),
        });
    }
    Ok((spec, values_offset))
}

/// `__type(key, ...)` or `__type(value, ...)`: the type, and its size.
fn key_or_value_type(
    btf: &Btf,
    spec: &mut MapSpec,
    field: &str,
    type_id: u32,
) -> Result<(), ParseError> {
    let name = spec.name.clone();
    let field_err = |e| bad(&name, format!("field {field}: {e}"));
    let target = btf.pointee(type_id).map_err(field_err)?;
    let size = btf.resolve_size(target).map_err(field_err)?;
    if field == "key" {
        set_size(&mut spec.key_size, size, &name, "key")?;
        spec.btf_key_type_id = target;
    } else {
        set_size(&mut spec.value_size, size, &name, "value")?;
        spec.btf_value_type_id = target;
    }
    Ok(())
}

/// `__uint(pinning, ...)`.
fn pinning(map: &str, v: u32) -> Result<Pinning, ParseError> {
    match v {
        0 => Ok(Pinning::None),
        1 => Ok(Pinning::ByName),
        v => Err(bad(
            map,
            format!("pinning {v} is not LIBBPF_PIN_NONE (0) or LIBBPF_PIN_BY_NAME (1)"),
        )),
    }
}

fn set_size(slot: &mut u32, size: u32, map: &str, what: &str) -> Result<(), ParseError> {
    if *slot != 0 && *slot != size {
        return Err(bad(
            map,
            format!("conflicting {what} size {} and {size}", *slot),
        ));
    }
    *slot = size;
    Ok(())
}

/// `__array(values, ...)`: a flexible array of pointers to functions (prog
/// array) or to an inner map definition (map-in-map). The value is 4 bytes:
/// the kernel stores a program or map fd.
fn values_field(btf: &Btf, spec: &mut MapSpec, type_id: u32) -> Result<(), ParseError> {
    let name = spec.name.clone();
    let is_prog_array = spec.map_type == MapType::PROG_ARRAY;
    if !is_prog_array && !spec.map_type.is_map_in_map() {
        return Err(bad(
            &name,
            format!(
                "field values needs a prog_array or map-in-map type, not {}",
                spec.map_type
            ),
        ));
    }
    set_size(&mut spec.value_size, 4, &name, "value")?;
    let array = btf.type_by_id(type_id)?;
    let BtfTypeData::Array {
        elem_type,
        nelems: 0,
        ..
    } = array.data
    else {
        return Err(bad(
            &name,
            format!(
                "field values is BTF type {type_id} ({}), not an empty array",
                array.kind.name()
            ),
        ));
    };
    let ptr_id = btf.strip_modifiers(elem_type)?;
    let ptr = btf.type_by_id(ptr_id)?;
    if ptr.kind != BtfKind::Ptr {
        return Err(bad(
            &name,
            format!(
                "field values: element is {}, not a pointer",
                ptr.kind.name()
            ),
        ));
    }
    let pointee_id = btf.strip_modifiers(ptr.size_or_type)?;
    let pointee = btf.type_by_id(pointee_id)?;
    if is_prog_array {
        if pointee.kind != BtfKind::FuncProto {
            return Err(bad(
                &name,
                format!(
                    "field values: a prog array's values point to functions, not {}",
                    pointee.kind.name()
                ),
            ));
        }
        return Ok(());
    }
    if pointee.kind != BtfKind::Struct {
        return Err(bad(
            &name,
            format!(
                "field values: a map-in-map's values point to a map definition struct, not {}",
                pointee.kind.name()
            ),
        ));
    }
    let (inner, _) = btf_map_def(btf, &format!("{name}.inner"), pointee_id, true)?;
    spec.inner = Some(Box::new(inner));
    Ok(())
}

/// `.values = { [i] = &prog_or_map }`: `R_BPF_64_ABS64` relocations in
/// `.rel.maps` at the slots' offsets name what goes in each slot.
fn values_relocations(
    elf: &Elf<'_>,
    section: &Section<'_>,
    maps: &mut Maps,
) -> Result<(), ParseError> {
    // This section's definitions by start offset, for a binary search per
    // relocation. BTF maps in .maps do not overlap (each is a variable of
    // the DATASEC at its own offset), so the last one starting at or before
    // an offset is the only one that can hold it.
    let mut by_start: Vec<(u64, usize)> = maps
        .places
        .iter()
        .enumerate()
        .filter(|(_, p)| p.section == section.index)
        .map(|(i, p)| (p.offset, i))
        .collect();
    by_start.sort_unstable();
    for rel in elf.rels_for(section.index) {
        let (offset, r_type) = (rel.offset, rel.r_type);
        let sym = elf.symbols.get(rel.sym as usize).ok_or_else(|| {
            ParseError::UnknownRelocationSymbol {
                section: ".maps".to_owned(),
                offset,
                index: rel.sym,
                count: elf.symbols.len(),
            }
        })?;
        let bad_rel = |reason: String| ParseError::BadRelocation {
            section: ".maps".to_owned(),
            offset,
            symbol: sym.name.to_owned(),
            reason,
        };
        if r_type != R_BPF_64_ABS64 {
            return Err(ParseError::UnknownRelocationType {
                section: ".maps".to_owned(),
                offset,
                r_type,
                expected: "R_BPF_64_ABS64 (2) for a .values slot",
            });
        }
        let (i, slot) = slot_at(&by_start, maps, offset).map_err(bad_rel)?;
        let map_name = maps.specs[i].name.clone();
        let target = slot_target(elf, section, maps, i, sym).map_err(|why| {
            bad_rel(format!(
                "{why} {map_name} slot {slot} must point to {}, and {} is not one",
                why.wanted(),
                sym.name
            ))
        })?;
        let index =
            u32::try_from(slot).map_err(|_| bad_rel(format!("slot {slot} is out of range")))?;
        if index >= maps.specs[i].max_entries {
            return Err(bad_rel(format!(
                "slot {index} of {map_name} is past its max_entries {}",
                maps.specs[i].max_entries
            )));
        }
        maps.specs[i]
            .initial_slots
            .push(InitialSlot { index, target });
    }
    // Sorted by index, the last relocation for an index winning: once per
    // map here, not a search and a sort per relocation.
    for spec in &mut maps.specs {
        let slots = &mut spec.initial_slots;
        slots.reverse();
        slots.sort_by_key(|s| s.index); // stable: the last written comes first
        slots.dedup_by_key(|s| s.index);
    }
    Ok(())
}

/// The map (index in `maps`) and `.values` slot at byte `offset` of the
/// section, whose definitions `by_start` lists by start offset.
fn slot_at(by_start: &[(u64, usize)], maps: &Maps, offset: u64) -> Result<(usize, u64), String> {
    let after = by_start.partition_point(|&(start, _)| start <= offset);
    let Some(i) = after
        .checked_sub(1)
        .map(|k| by_start[k].1)
        .filter(|&i| offset - maps.places[i].offset < maps.places[i].size)
    else {
        return Err("it lies in no map definition".into());
    };
    let place = maps.places[i];
    let map_name = &maps.specs[i].name;
    let Some(values_off) = place.values_offset else {
        return Err(format!("map {map_name} has no values field to initialise"));
    };
    let rel_in_map = offset - place.offset;
    let slot = rel_in_map
        .checked_sub(values_off)
        .filter(|d| d.is_multiple_of(PTR_SIZE))
        .map(|d| d / PTR_SIZE)
        .ok_or_else(|| {
            format!("offset {rel_in_map} in map {map_name} is not a slot of its values array")
        })?;
    Ok((i, slot))
}

/// A `.values` slot whose symbol is not what the map holds.
#[derive(Clone, Copy)]
enum WrongSlot {
    /// A prog array's slot that names no program.
    ProgArray,
    /// A map-in-map's slot that names no map in `.maps`.
    MapInMap,
}

impl WrongSlot {
    fn wanted(self) -> &'static str {
        match self {
            WrongSlot::ProgArray => "a program",
            WrongSlot::MapInMap => "a map in .maps",
        }
    }
}

impl std::fmt::Display for WrongSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WrongSlot::ProgArray => "prog array",
            WrongSlot::MapInMap => "map-in-map",
        })
    }
}

/// What `sym` puts in a slot of map `i`: a program (prog array) or a map
/// defined in the same `.maps` section (map-in-map).
fn slot_target(
    elf: &Elf<'_>,
    section: &Section<'_>,
    maps: &Maps,
    i: usize,
    sym: &Symbol<'_>,
) -> Result<SlotTarget, WrongSlot> {
    if maps.specs[i].map_type == MapType::PROG_ARRAY {
        let in_program_section = sym
            .section
            .and_then(|s| elf.section(s))
            .is_some_and(|s| s.is_code() && s.name != ".text");
        if !sym.is_func() || !in_program_section {
            return Err(WrongSlot::ProgArray);
        }
        return Ok(SlotTarget::Program(sym.name.to_owned()));
    }
    let inner = sym
        .section
        .filter(|&s| s == section.index)
        .and_then(|s| maps.defined_at(s, sym.value))
        .ok_or(WrongSlot::MapInMap)?;
    Ok(SlotTarget::Map(inner.name.clone()))
}

/// The legacy `maps` section: an array of `struct bpf_map_def`, one per
/// symbol, all the same size.
fn legacy_maps(elf: &Elf<'_>, section: &Section<'_>, maps: &mut Maps) -> Result<(), ParseError> {
    let mut syms: Vec<_> = elf
        .symbols_in(section.index)
        .filter(|s| !s.is_section())
        .collect();
    syms.sort_by_key(|s| s.value);
    if syms.is_empty() {
        return Ok(());
    }
    let count = syms.len();
    if !section.size.is_multiple_of(count as u64) || section.data.is_empty() {
        return Err(ParseError::BadLegacyMapsSection {
            size: section.size,
            count,
        });
    }
    let def_size = section.data.len() / count;
    for sym in syms {
        let name = sym.name;
        let bytes = usize::try_from(sym.value)
            .ok()
            .and_then(|start| section.data.get(start..start.checked_add(def_size)?))
            .ok_or_else(|| {
                bad(
                    name,
                    format!(
                        "definition at offset {} lies outside section maps ({} bytes)",
                        sym.value, section.size
                    ),
                )
            })?;
        let mut def = [0u8; LEGACY_DEF_SIZE];
        let known = def_size.min(LEGACY_DEF_SIZE);
        def[..known].copy_from_slice(&bytes[..known]);
        if bytes[known..].iter().any(|&b| b != 0) {
            return Err(bad(name, format!("legacy definition is {def_size} bytes with non-zero fields past map_flags (byte {LEGACY_DEF_SIZE} on); rawbpf reads libbpf's struct bpf_map_def (type, key_size, value_size, max_entries, map_flags)")));
        }
        let field = |i: usize| {
            u32::from_le_bytes([def[4 * i], def[4 * i + 1], def[4 * i + 2], def[4 * i + 3]])
        };
        if field(0) == 0 {
            return Err(ParseError::MapWithoutType {
                map: name.to_owned(),
                section: "maps".to_owned(),
            });
        }
        maps.push(
            DefinitionPlace::new(section.index, sym.value, def_size as u64),
            MapSpec {
                map_type: MapType(field(0)),
                key_size: field(1),
                value_size: field(2),
                max_entries: field(3),
                flags: field(4),
                ..blank(name, MapOrigin::Legacy, "maps")
            },
        );
    }
    Ok(())
}

/// Whether a section holds global data, as libbpf decides: `.data`, `.rodata`
/// and `.bss`, or any of them followed by `.suffix`.
pub(super) fn is_data_section(section: &Section<'_>) -> bool {
    let named = |base: &str| {
        section.name == base
            || section
                .name
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    let alloc = section.flags & elf::SHF_ALLOC.0 != 0 && section.flags & elf::SHF_EXECINSTR.0 == 0;
    let progbits = section.sh_type == elf::SHT_PROGBITS.0;
    let nobits = section.sh_type == elf::SHT_NOBITS.0;
    alloc
        && section.size > 0
        && (((named(".data") || named(".rodata")) && progbits) || (named(".bss") && nobits))
}

/// A global-data section as a one-element array map whose value is the
/// section (libbpf's "internal maps").
fn data_map(section: &Section<'_>, btf: Option<&Btf>) -> Option<MapSpec> {
    if !is_data_section(section) {
        return None;
    }
    let value_size = u32::try_from(section.size).ok()?;
    let rodata = section.name.starts_with(".rodata");
    Some(MapSpec {
        map_type: MapType::ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        flags: if rodata { BPF_F_RDONLY_PROG } else { 0 },
        btf_value_type_id: btf
            .and_then(|b| b.find_by_name(BtfKind::Datasec, section.name))
            .unwrap_or(0),
        data: (section.sh_type != elf::SHT_NOBITS.0).then(|| section.data.to_vec()),
        ..blank(section.name, MapOrigin::GlobalData, section.name)
    })
}

impl MapSpec {
    /// The map as the kernel must be asked to create it: the definition with
    /// the fix-ups libbpf and cilium/ebpf make for maps real objects declare,
    /// and a warning (naming the map) for each declared value it changes.
    ///
    /// - A perf event array without `max_entries` gets one slot per possible
    ///   CPU (libbpf's `map_set_def_max_entries`; a declared value is kept, as
    ///   libbpf keeps it). Its key and value are 4 bytes (a CPU index, a perf
    ///   event fd) whatever the object's `__type`s say.
    /// - A ring buffer (`RINGBUF`, `USER_RINGBUF`) has no key or value, and
    ///   its size is rounded up to a power-of-2 multiple of the page size
    ///   (libbpf's `adjust_ringbuf_sz`).
    ///
    /// Neither map type takes BTF key/value types, so their ids are dropped
    /// (the kernel refuses them). `possible_cpus` and `page_size` are the
    /// machine's; this function itself is pure. The spec is borrowed back
    /// unchanged when nothing needs fixing.
    pub fn for_kernel(
        &self,
        possible_cpus: u32,
        page_size: u32,
    ) -> (Cow<'_, MapSpec>, Vec<String>) {
        let mut warnings = Vec::new();
        if !needs_fixups(self) {
            return (Cow::Borrowed(self), warnings);
        }
        let mut fixed = self.clone();
        if fix_for_kernel(&mut fixed, possible_cpus, page_size, &mut warnings) {
            (Cow::Owned(fixed), warnings)
        } else {
            (Cow::Borrowed(self), warnings)
        }
    }

    /// Whether [`for_kernel`](MapSpec::for_kernel) may change this map (a
    /// perf event array or ring buffer, or a map-in-map of them): only then
    /// does it need the CPU count and page size.
    pub fn needs_kernel_fixups(&self) -> bool {
        needs_fixups(self)
    }
}

/// Whether [`MapSpec::for_kernel`] may change anything in this map (the
/// others are not cloned: a global-data map can carry kilobytes).
fn needs_fixups(m: &MapSpec) -> bool {
    matches!(
        m.map_type,
        MapType::PERF_EVENT_ARRAY | MapType::RINGBUF | MapType::USER_RINGBUF
    ) || m.inner.as_deref().is_some_and(needs_fixups)
}

/// Applies the fix-ups to `m` in place; returns whether anything changed.
fn fix_for_kernel(
    m: &mut MapSpec,
    possible_cpus: u32,
    page_size: u32,
    warnings: &mut Vec<String>,
) -> bool {
    let shape = |m: &MapSpec| {
        (
            m.key_size,
            m.value_size,
            m.max_entries,
            m.btf_key_type_id,
            m.btf_value_type_id,
        )
    };
    let before = shape(m);
    match m.map_type {
        MapType::PERF_EVENT_ARRAY => {
            if m.max_entries == 0 {
                m.max_entries = possible_cpus.max(1);
            }
            let name = &m.name;
            for (what, size, meaning) in [
                ("key", &mut m.key_size, "a CPU index"),
                ("value", &mut m.value_size, "a perf event fd"),
            ] {
                if *size != 4 && *size != 0 {
                    warnings.push(format!(
                        "map {name}: {what} size {size} changed to 4: a perf event array's {what} is {meaning} (4 bytes)"
                    ));
                }
                *size = 4;
            }
        }
        MapType::RINGBUF | MapType::USER_RINGBUF => {
            if m.key_size != 0 || m.value_size != 0 {
                warnings.push(format!(
                    "map {}: key size {} and value size {} changed to 0: a ring buffer has no keys or values (declare only its type and max_entries)",
                    m.name, m.key_size, m.value_size
                ));
                m.key_size = 0;
                m.value_size = 0;
            }
            let size = ringbuf_size(m.max_entries, page_size);
            if size != m.max_entries {
                warnings.push(format!(
                    "map {}: max_entries {} rounded up to {size}: a ring buffer's size must be a power-of-2 multiple of the page size ({page_size} bytes)",
                    m.name, m.max_entries
                ));
                m.max_entries = size;
            }
        }
        _ => {}
    }
    // Neither takes BTF key/value types: the kernel refuses them.
    if matches!(
        m.map_type,
        MapType::PERF_EVENT_ARRAY | MapType::RINGBUF | MapType::USER_RINGBUF
    ) {
        m.btf_key_type_id = 0;
        m.btf_value_type_id = 0;
    }
    let inner_changed = match m.inner.as_deref_mut() {
        Some(inner) => fix_for_kernel(inner, possible_cpus, page_size, warnings),
        None => false,
    };
    inner_changed || shape(m) != before
}

/// A ring buffer's size as the kernel takes it: a power-of-2 multiple of
/// the page size, the smallest above `size` if `size` is not one (libbpf's
/// `adjust_ringbuf_sz`). 0 stays 0, and a size no such multiple fits in a
/// u32 is left as it is, for the kernel to refuse in its own words.
fn ringbuf_size(size: u32, page_size: u32) -> u32 {
    if size == 0 || page_size == 0 {
        return size;
    }
    if size.is_multiple_of(page_size) && (size / page_size).is_power_of_two() {
        return size;
    }
    let mut mul: u32 = 1;
    while let Some(bytes) = mul.checked_mul(page_size) {
        if bytes > size {
            return bytes;
        }
        match mul.checked_mul(2) {
            Some(next) => mul = next,
            None => break,
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(map_type: MapType, key: u32, value: u32, max_entries: u32) -> MapSpec {
        MapSpec {
            map_type,
            key_size: key,
            value_size: value,
            max_entries,
            ..blank("m", MapOrigin::Btf, ".maps")
        }
    }

    fn sizes(m: &MapSpec) -> (u32, u32, u32) {
        (m.key_size, m.value_size, m.max_entries)
    }

    #[test]
    fn unsized_stack_trace_maps_are_named_before_the_kernel_refuses_them() {
        // libbpf-tools' `stackmap`: sizes its loader sets before the load.
        let rule = map(MapType::STACK_TRACE, 4, 0, 0).kernel_rule_broken();
        assert!(
            rule.as_deref()
                .is_some_and(|r| r.contains("0 entries of 0 bytes") && r.contains("multiple of 8")),
            "{rule:?}"
        );
        assert!(map(MapType::STACK_TRACE, 4, 12, 1024)
            .kernel_rule_broken()
            .is_some());
        assert_eq!(
            map(MapType::STACK_TRACE, 4, 127 * 8, 1024).kernel_rule_broken(),
            None
        );
    }

    #[test]
    fn perf_event_array_gets_cpus_and_4_byte_slots() {
        // Undeclared sizes and max_entries: filled in without a word.
        let m = map(MapType::PERF_EVENT_ARRAY, 0, 0, 0);
        let (fixed, warnings) = m.for_kernel(6, 4096);
        assert_eq!(sizes(&fixed), (4, 4, 6));
        assert!(warnings.is_empty(), "{warnings:?}");
        // A declared max_entries is kept, above the CPU count too (as libbpf).
        let m = map(MapType::PERF_EVENT_ARRAY, 4, 4, 128);
        let (fixed, _) = m.for_kernel(6, 4096);
        assert_eq!(sizes(&fixed), (4, 4, 128));
        assert!(matches!(fixed, Cow::Borrowed(_)), "nothing to fix");
        // `__type(key, __u64); __type(value, struct event)`: sizes the kernel
        // refuses become 4, BTF ids go, and each change is named.
        let mut m = map(MapType::PERF_EVENT_ARRAY, 8, 16, 0);
        m.name = "events".into();
        m.btf_key_type_id = 3;
        m.btf_value_type_id = 7;
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert_eq!(sizes(&fixed), (4, 4, 2));
        assert_eq!((fixed.btf_key_type_id, fixed.btf_value_type_id), (0, 0));
        assert_eq!(
            warnings,
            [
                "map events: key size 8 changed to 4: a perf event array's key is a CPU index (4 bytes)",
                "map events: value size 16 changed to 4: a perf event array's value is a perf event fd (4 bytes)",
            ]
        );
        // `__type(key, int); __type(value, __u32)`: right sizes, types dropped quietly.
        let mut m = map(MapType::PERF_EVENT_ARRAY, 4, 4, 0);
        m.btf_key_type_id = 3;
        m.btf_value_type_id = 3;
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert_eq!((sizes(&fixed), fixed.btf_value_type_id), ((4, 4, 2), 0));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn ring_buffer_loses_key_and_value_and_is_rounded_up() {
        let mut m = map(MapType::RINGBUF, 4, 4, 4096 * 4);
        m.name = "rb".into();
        m.btf_key_type_id = 1;
        m.btf_value_type_id = 2;
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert_eq!(sizes(&fixed), (0, 0, 16384));
        assert_eq!((fixed.btf_key_type_id, fixed.btf_value_type_id), (0, 0));
        assert_eq!(
            warnings,
            ["map rb: key size 4 and value size 4 changed to 0: a ring buffer has no keys or values (declare only its type and max_entries)"]
        );
        let mut m = map(MapType::USER_RINGBUF, 0, 0, 10_000);
        m.name = "urb".into();
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert_eq!(sizes(&fixed), (0, 0, 16384));
        assert_eq!(
            warnings,
            ["map urb: max_entries 10000 rounded up to 16384: a ring buffer's size must be a power-of-2 multiple of the page size (4096 bytes)"]
        );
        let m = map(MapType::RINGBUF, 0, 0, 1 << 20);
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert!(matches!(fixed, Cow::Borrowed(_)) && warnings.is_empty());
    }

    #[test]
    fn ring_buffer_sizes_as_libbpf_rounds_them() {
        assert_eq!(ringbuf_size(0, 4096), 0, "left for the kernel to refuse");
        assert_eq!(ringbuf_size(1, 4096), 4096);
        assert_eq!(ringbuf_size(4096, 4096), 4096);
        assert_eq!(ringbuf_size(4097, 4096), 8192);
        assert_eq!(ringbuf_size(3 * 4096, 4096), 4 * 4096);
        assert_eq!(ringbuf_size(8192, 16384), 16384, "other page sizes");
        assert_eq!(ringbuf_size(1 << 31, 4096), 1 << 31);
        assert_eq!(
            ringbuf_size((1 << 31) + 1, 4096),
            (1 << 31) + 1,
            "no u32 fits"
        );
        assert_eq!(ringbuf_size(u32::MAX, 4096), u32::MAX);
    }

    #[test]
    fn other_maps_and_inner_maps() {
        let m = map(MapType::HASH, 8, 8, 0);
        let (fixed, warnings) = m.for_kernel(2, 4096);
        assert!(matches!(fixed, Cow::Borrowed(_)) && warnings.is_empty());
        let mut outer = map(MapType::ARRAY_OF_MAPS, 4, 4, 1);
        let mut inner = map(MapType::RINGBUF, 0, 0, 5000);
        inner.name = "outer.inner".into();
        outer.inner = Some(Box::new(inner));
        let (fixed, warnings) = outer.for_kernel(2, 4096);
        assert_eq!(fixed.inner.as_ref().map(|i| i.max_entries), Some(8192));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("map outer.inner: max_entries 5000 rounded up to 8192"));
        assert_eq!(
            outer.inner.as_ref().map(|i| i.max_entries),
            Some(5000),
            "declared spec unchanged"
        );
    }
}
