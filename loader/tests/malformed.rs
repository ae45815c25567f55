//! Malformed input: each case damages one field of a real object (or feeds
//! bytes that are no object at all) and asserts the message a user sees.
//! None of these may panic.

mod common;

use common::*;
use rawbpf::ObjectSpec;

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
