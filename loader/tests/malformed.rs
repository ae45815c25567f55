//! Malformed input: each case damages one field of a real object (or feeds
//! bytes that are no object at all) and asserts the message a user sees.
//! None of these may panic.

use rawbpf::ObjectSpec;

const OBJ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj");

fn object(name: &str) -> Vec<u8> {
    let path = format!("{OBJ_DIR}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The error text for bytes that must not parse.
fn error(data: &[u8]) -> String {
    match ObjectSpec::parse(data) {
        Ok(_) => panic!("malformed input parsed without error"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(data: &[u8], expected: &str) {
    let msg = error(data);
    assert!(
        msg.contains(expected),
        "error {msg:?} does not contain {expected:?}"
    );
}

// --- A minimal ELF64 view for editing fields in place -------------------

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(d[o..o + 2].try_into().unwrap())
}
fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap())
}
fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap())
}
fn put_u16(d: &mut [u8], o: usize, v: u16) {
    d[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(d: &mut [u8], o: usize, v: u32) {
    d[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(d: &mut [u8], o: usize, v: u64) {
    d[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// File offset of section header `index`.
fn shdr(d: &[u8], index: usize) -> usize {
    u64_at(d, 0x28) as usize + index * usize::from(u16_at(d, 0x3a))
}

fn section_name_offset(d: &[u8], index: usize) -> usize {
    let strtab = shdr(d, usize::from(u16_at(d, 0x3e)));
    u64_at(d, strtab + 24) as usize + u32_at(d, shdr(d, index)) as usize
}

fn section_name(d: &[u8], index: usize) -> String {
    let start = section_name_offset(d, index);
    let end = start + d[start..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8(d[start..end].to_vec()).unwrap()
}

/// Index of the section called `name`.
fn section(d: &[u8], name: &str) -> usize {
    (0..usize::from(u16_at(d, 0x3c)))
        .find(|&i| section_name(d, i) == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// (file offset, size) of a section's bytes.
fn section_range(d: &[u8], name: &str) -> (usize, usize) {
    let h = shdr(d, section(d, name));
    (u64_at(d, h + 24) as usize, u64_at(d, h + 32) as usize)
}

/// File offset of the symbol-table entry for `name`.
fn symbol(d: &[u8], name: &str) -> usize {
    let (symtab, size) = section_range(d, ".symtab");
    let strtab_index = u32_at(d, shdr(d, section(d, ".symtab")) + 40) as usize;
    let strtab = u64_at(d, shdr(d, strtab_index) + 24) as usize;
    (symtab..symtab + size)
        .step_by(24)
        .find(|&s| {
            let start = strtab + u32_at(d, s) as usize;
            d[start..].split(|&b| b == 0).next() == Some(name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no symbol {name}"))
}

// --- Not a BPF object -----------------------------------------------------

#[test]
fn not_elf() {
    assert_error(b"", "not an ELF file");
    assert_error(b"#!/bin/sh\necho hello\n", "not an ELF file");
}

#[test]
fn elf32() {
    let mut d = object("pipeline.bpf.o");
    d[4] = 1;
    assert_error(&d, "ELF class 1 is not 64-bit");
}

#[test]
fn big_endian() {
    let mut d = object("pipeline.bpf.o");
    d[5] = 2;
    assert_error(&d, "big-endian ELF (clang -target bpfeb)");
}

#[test]
fn other_machine() {
    let mut d = object("pipeline.bpf.o");
    put_u16(&mut d, 18, 62); // EM_X86_64
    assert_error(&d, "ELF machine 62 is not BPF (EM_BPF = 247)");
}

#[test]
fn linked_not_relocatable() {
    let mut d = object("pipeline.bpf.o");
    put_u16(&mut d, 16, 2); // ET_EXEC
    assert_error(&d, "ELF type 2 is not a relocatable object");
}

// --- Damaged layout --------------------------------------------------------

#[test]
fn truncated_file() {
    let d = object("pipeline.bpf.o");
    let msg = error(&d[..d.len() - 100]);
    assert!(
        msg.starts_with("truncated file: the section header table at bytes"),
        "{msg}"
    );
    // Every prefix fails cleanly, none panics.
    for len in (0..d.len()).step_by(97) {
        assert!(
            ObjectSpec::parse(&d[..len]).is_err(),
            "prefix of {len} bytes parsed"
        );
    }
}

#[test]
fn section_past_end_of_file() {
    let mut d = object("pipeline.bpf.o");
    let h = shdr(&d, section(&d, "tc"));
    put_u64(&mut d, h + 32, 1 << 40);
    assert_error(&d, "section tc: bytes ");
    assert_error(&d, "lie outside the file");
}

#[test]
fn overlapping_sections() {
    let mut d = object("pipeline.bpf.o");
    let (license_off, _) = section_range(&d, "license");
    let h = shdr(&d, section(&d, "tc"));
    put_u64(&mut d, h + 24, license_off as u64);
    let msg = error(&d);
    assert!(msg.contains("overlap"), "{msg}");
    assert!(msg.contains("license") && msg.contains("tc"), "{msg}");
}

#[test]
fn code_size_not_whole_instructions() {
    let mut d = object("pipeline.bpf.o");
    let h = shdr(&d, section(&d, "tc"));
    let size = u64_at(&d, h + 32);
    put_u64(&mut d, h + 32, size - 3);
    assert_error(&d, "section tc: size");
    assert_error(&d, "is not a multiple of 8");
}

// --- Programs --------------------------------------------------------------

#[test]
fn unknown_section_name() {
    let mut d = object("pipeline.bpf.o");
    let name = section_name_offset(&d, section(&d, "tc"));
    d[name] = b'x'; // "tc" -> "xc" (".reltc" shares the string and follows)
    assert_error(&d, "section xc (program ");
    assert_error(&d, "unknown section name");
}

#[test]
fn program_without_instructions() {
    let mut d = object("pipeline.bpf.o");
    let s = symbol(&d, "mark_packet");
    put_u64(&mut d, s + 16, 0);
    assert_error(&d, "program mark_packet in section tc has no instructions");
}

#[test]
fn program_outside_its_section() {
    let mut d = object("pipeline.bpf.o");
    let s = symbol(&d, "inspect_and_drop");
    put_u64(&mut d, s + 8, 1 << 20);
    assert_error(&d, "function inspect_and_drop: bytes 1048576..");
    assert_error(&d, "inside section tc");
}

// --- Relocations -----------------------------------------------------------

#[test]
fn relocation_of_unknown_type() {
    let mut d = object("pipeline.bpf.o");
    let (rel, _) = section_range(&d, ".reltc");
    let info = u64_at(&d, rel + 8);
    put_u64(&mut d, rel + 8, (info & !0xffff_ffff) | 5);
    let off = u64_at(&d, rel);
    assert_error(
        &d,
        &format!("section tc: relocation at offset {off} has type 5, expected R_BPF_64_64 (1) on an ld_imm64"),
    );
}

#[test]
fn relocation_to_unknown_symbol() {
    let mut d = object("pipeline.bpf.o");
    let (rel, _) = section_range(&d, ".reltc");
    let info = u64_at(&d, rel + 8);
    put_u64(&mut d, rel + 8, (9999u64 << 32) | (info & 0xffff_ffff));
    assert_error(&d, "names symbol #9999, which is not in the symbol table");
}

#[test]
fn relocation_outside_section() {
    let mut d = object("pipeline.bpf.o");
    let (rel, _) = section_range(&d, ".reltc");
    put_u64(&mut d, rel, 1 << 30);
    assert_error(&d, "relocation at offset 1073741824");
    assert_error(&d, "offset is not an instruction of the section");
}

// --- Maps and BTF ----------------------------------------------------------

#[test]
fn legacy_map_without_type() {
    let mut d = object("legacy_maps.nobtf.bpf.o");
    let (maps, _) = section_range(&d, "maps");
    put_u32(&mut d, maps, 0);
    assert_error(&d, "(section maps): definition has no type");
}

#[test]
fn btf_map_with_unknown_field() {
    let mut d = object("pipeline.bpf.o");
    let (btf, size) = section_range(&d, ".BTF");
    // Rename the definition member "max_entries" in the BTF string table.
    let at = d[btf..btf + size]
        .windows(13)
        .position(|w| w == b"\0max_entries\0")
        .expect("max_entries in .BTF strings");
    d[btf + at + 1] = b'n';
    assert_error(
        &d,
        "map prog_array: unknown field nax_entries in the definition",
    );
}

#[test]
fn malformed_btf() {
    let mut d = object("pipeline.bpf.o");
    let (btf, _) = section_range(&d, ".BTF");
    d[btf] = 0;
    d[btf + 1] = 0;
    let msg = error(&d);
    assert!(msg.starts_with("section .BTF: "), "{msg}");
    assert!(msg.to_lowercase().contains("magic"), "{msg}");
}

#[test]
fn btf_maps_without_btf() {
    let mut d = object("pipeline.bpf.o");
    let name = section_name_offset(&d, section(&d, ".BTF"));
    d[name + 3] = b'X'; // ".BTF" -> ".BTX"
    assert_error(
        &d,
        "section .maps: BTF-defined maps need the object's .BTF section",
    );
}

/// Every byte of real objects, changed to a few values, parses to Ok or an
/// error, never a panic. (Coverage-guided fuzzing comes with the robustness
/// work; this pins the cheap cases.)
#[test]
fn single_byte_corruptions_never_panic() {
    for name in [
        "pipeline.bpf.o",
        "bpf2bpf_tail.bpf.o",
        "legacy_maps.nobtf.bpf.o",
    ] {
        let original = object(name);
        let mut d = original.clone();
        for i in 0..d.len() {
            for v in [
                0x00,
                0xff,
                original[i] ^ 0x01,
                original[i].wrapping_add(0x40),
            ] {
                d[i] = v;
                let _ = ObjectSpec::parse(&d);
            }
            d[i] = original[i];
        }
    }
}
