//! The malformed-input corpus in `tests/data/malformed/`: every file there is
//! an object (or not) that must not load, and `EXPECTED` holds, per file, the
//! exact error a user sees (`file<TAB>text`). Each file is parsed with
//! `ObjectSpec::parse`, which must give that text (tests/cli_inspect.rs
//! checks that `rawbpf inspect` prints it); a file without a manifest line,
//! or a line without a file, fails.
//!
//! The files are generated here from the committed objects in
//! `programs/obj/`, one damaged field each (the `fuzz-*` files are inputs the
//! fuzzer found; see `fuzz_regressions.rs`). `generated_files_are_current`
//! checks the committed bytes against the generator; regenerate with
//!
//!   RAWBPF_WRITE_CORPUS=1 cargo test -p rawbpf --test malformed_corpus
//!
//! and review the EXPECTED diff.

mod common;

use common::*;
use rawbpf::ObjectSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/malformed");

/// File offset of BTF type record `id` (1-based, as BTF counts) in `.BTF`.
fn btf_type(d: &[u8], id: u32) -> usize {
    let (btf, _) = section_range(d, ".BTF");
    let hdr_len = u32_at(d, btf + 4) as usize;
    let types = btf + hdr_len + u32_at(d, btf + 8) as usize;
    let mut at = types;
    for _ in 1..id {
        let info = u32_at(d, at + 4);
        let vlen = (info & 0xffff) as usize;
        at += 12
            + match (info >> 24) & 0x1f {
                1 | 14 | 17 => 4, // INT, VAR, DECL_TAG
                3 => 12,          // ARRAY
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                _ => 0,
            };
    }
    at
}

/// File offset of `.BTF`'s header field at `field` (8: type_off, 12: type_len, ...).
fn btf_header(d: &[u8], field: usize) -> usize {
    section_range(d, ".BTF").0 + field
}

// --- The generator ------------------------------------------------------------

/// Every generated file: name and bytes. One damaged field each; the comment
/// says what a loader must notice.
fn generate() -> Vec<(&'static str, Vec<u8>)> {
    let pipeline = object("pipeline.bpf.o");
    let with = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut d = object(name);
        edit(&mut d);
        d
    };
    let pipe = |edit: &dyn Fn(&mut Vec<u8>)| with("pipeline.bpf.o", edit);
    vec![
        // Not an object at all.
        ("empty.o", Vec::new()),
        ("not-elf.o", b"#!/bin/sh\necho hello\n".to_vec()),
        // Cut off inside the ELF header, and before the section header table.
        ("truncated-header.o", pipeline[..40].to_vec()),
        (
            "truncated-section-headers.o",
            pipeline[..pipeline.len() - 100].to_vec(),
        ),
        // Wrong kind of ELF.
        ("elf32.o", pipe(&|d| d[4] = 1)),
        ("big-endian.o", pipe(&|d| d[5] = 2)),
        ("wrong-machine.o", pipe(&|d| put_u16(d, 18, 62))), // EM_X86_64
        ("not-relocatable.o", pipe(&|d| put_u16(d, 16, 2))), // ET_EXEC
        // Section headers pointing outside the file or at each other.
        (
            "section-size-past-end.o",
            pipe(&|d| {
                let h = shdr(d, section(d, "tc"));
                put_u64(d, h + 32, 1 << 40);
            }),
        ),
        (
            "section-offset-past-end.o",
            pipe(&|d| {
                let h = shdr(d, section(d, "tc"));
                put_u64(d, h + 24, 1 << 32);
            }),
        ),
        (
            "overlapping-sections.o",
            pipe(&|d| {
                let (license, _) = section_range(d, "license");
                let h = shdr(d, section(d, "tc"));
                put_u64(d, h + 24, license as u64);
            }),
        ),
        (
            "section-header-offset-past-end.o",
            pipe(&|d| put_u64(d, 0x28, 1 << 48)),
        ),
        (
            "section-name-past-strtab.o",
            pipe(&|d| {
                let h = shdr(d, section(d, "tc"));
                put_u32(d, h, 0x00ff_ffff);
            }),
        ),
        (
            "code-size-not-whole-instructions.o",
            pipe(&|d| {
                let h = shdr(d, section(d, "tc"));
                let size = u64_at(d, h + 32);
                put_u64(d, h + 32, size - 3);
            }),
        ),
        // Programs.
        (
            "unknown-section-name.o",
            pipe(&|d| {
                let name = section_name_offset(d, section(d, "tc"));
                d[name] = b'x';
            }),
        ),
        (
            "empty-program.o",
            pipe(&|d| {
                let s = symbol(d, "mark_packet");
                put_u64(d, s + 16, 0);
            }),
        ),
        (
            "program-outside-section.o",
            pipe(&|d| {
                let s = symbol(d, "inspect_and_drop");
                put_u64(d, s + 8, 1 << 20);
            }),
        ),
        (
            "static-program.o",
            pipe(&|d| {
                let s = symbol(d, "mark_packet");
                d[s + 4] &= 0x0f; // STB_LOCAL
            }),
        ),
        (
            "symbol-name-past-strtab.o",
            pipe(&|d| {
                let s = symbol(d, "mark_packet");
                put_u32(d, s, 0x00ff_ffff);
            }),
        ),
        // Relocations.
        (
            "reloc-unknown-type.o",
            pipe(&|d| {
                let (rel, _) = section_range(d, ".reltc");
                let info = u64_at(d, rel + 8);
                put_u64(d, rel + 8, (info & !0xffff_ffff) | 5);
            }),
        ),
        (
            "reloc-to-unknown-symbol.o",
            pipe(&|d| {
                let (rel, _) = section_range(d, ".reltc");
                let info = u64_at(d, rel + 8);
                put_u64(d, rel + 8, (9999u64 << 32) | (info & 0xffff_ffff));
            }),
        ),
        (
            "reloc-past-section-end.o",
            pipe(&|d| {
                let (rel, _) = section_range(d, ".reltc");
                put_u64(d, rel, 1 << 30);
            }),
        ),
        (
            "reloc-not-on-ld-imm64.o",
            pipe(&|d| {
                let (rel, _) = section_range(d, ".reltc");
                put_u64(d, rel, 0);
            }),
        ),
        // Maps.
        (
            "legacy-map-without-type.o",
            with("legacy_maps.nobtf.bpf.o", &|d| {
                let (maps, _) = section_range(d, "maps");
                put_u32(d, maps, 0);
            }),
        ),
        (
            "btf-maps-overlap.o",
            with("map_types.bpf.o", &|d| {
                let a = symbol(d, "inner_a");
                let b = symbol(d, "inner_b");
                let value = u64_at(d, a + 8);
                put_u64(d, b + 8, value);
            }),
        ),
        (
            "btf-maps-without-btf.o",
            pipe(&|d| {
                let name = section_name_offset(d, section(d, ".BTF"));
                d[name + 3] = b'X'; // ".BTF" -> ".BTX"
            }),
        ),
        (
            "license-not-terminated.o",
            pipe(&|d| {
                let (license, size) = section_range(d, "license");
                d[license + size - 1] = b'!';
            }),
        ),
        // BTF. In pipeline.bpf.o: 1 ptr -> 3 (array, the map's type), 7 ptr
        // -> 8 (typedef __u32 -> 9, the key), 14 the map's struct, 16 ptr ->
        // 17 struct __sk_buff (26 members), 13 the values array.
        (
            "btf-bad-magic.o",
            pipe(&|d| {
                let at = btf_header(d, 0);
                put_u16(d, at, 0)
            }),
        ),
        (
            "btf-typedef-refers-to-itself.o",
            pipe(&|d| {
                let t = btf_type(d, 8);
                put_u32(d, t + 8, 8);
            }),
        ),
        (
            "btf-pointer-refers-to-itself.o",
            pipe(&|d| {
                let t = btf_type(d, 16);
                put_u32(d, t + 8, 16);
            }),
        ),
        (
            "btf-typedef-pointer-cycle.o",
            pipe(&|d| {
                let t = btf_type(d, 8);
                put_u32(d, t + 8, 7);
            }),
        ),
        (
            "btf-struct-member-refers-to-struct.o",
            pipe(&|d| {
                // The map definition's `key` member (third) becomes the struct itself.
                let t = btf_type(d, 14);
                put_u32(d, t + 12 + 2 * 12 + 4, 14);
            }),
        ),
        (
            "btf-huge-vlen.o",
            pipe(&|d| {
                let t = btf_type(d, 17);
                let info = u32_at(d, t + 4);
                put_u32(d, t + 4, info | 0xffff);
            }),
        ),
        (
            "btf-huge-array-nelems.o",
            pipe(&|d| {
                // The key becomes __u32[2^30] (the cb array, 18): 2^32 bytes.
                let ptr = btf_type(d, 7);
                put_u32(d, ptr + 8, 18);
                let t = btf_type(d, 18);
                put_u32(d, t + 12 + 8, 1 << 30);
            }),
        ),
        (
            "btf-huge-values-nelems.o",
            pipe(&|d| {
                let t = btf_type(d, 13);
                put_u32(d, t + 12 + 8, u32::MAX);
            }),
        ),
        (
            "btf-type-ref-past-end.o",
            pipe(&|d| {
                let t = btf_type(d, 1);
                put_u32(d, t + 8, 0x7fff_ffff);
            }),
        ),
        (
            "btf-name-offset-past-strings.o",
            pipe(&|d| {
                let t = btf_type(d, 2);
                put_u32(d, t, 0x7fff_ffff);
            }),
        ),
        (
            "btf-huge-type-len.o",
            pipe(&|d| {
                let at = btf_header(d, 12);
                put_u32(d, at, u32::MAX)
            }),
        ),
        (
            "btf-huge-string-offset.o",
            pipe(&|d| {
                let at = btf_header(d, 16);
                put_u32(d, at, u32::MAX)
            }),
        ),
        // BTF.ext: header at the section start; func_info at hdr_len + off.
        (
            "btf-ext-huge-record-size.o",
            pipe(&|d| {
                let (ext, _) = section_range(d, ".BTF.ext");
                let at = ext + u32_at(d, ext + 4) as usize + u32_at(d, ext + 8) as usize;
                put_u32(d, at, u32::MAX);
            }),
        ),
        (
            "btf-ext-huge-record-count.o",
            pipe(&|d| {
                let (ext, _) = section_range(d, ".BTF.ext");
                let at = ext + u32_at(d, ext + 4) as usize + u32_at(d, ext + 8) as usize;
                put_u32(d, at + 8, u32::MAX);
            }),
        ),
        (
            "btf-ext-tiny-record-size.o",
            pipe(&|d| {
                let (ext, _) = section_range(d, ".BTF.ext");
                let at = ext + u32_at(d, ext + 4) as usize + u32_at(d, ext + 16) as usize;
                put_u32(d, at, 4);
            }),
        ),
        (
            "btf-ext-block-past-end.o",
            pipe(&|d| {
                let (ext, _) = section_range(d, ".BTF.ext");
                put_u32(d, ext + 12, u32::MAX);
            }),
        ),
        // CO-RE records of core_reloc.bpf.o (one record: insn_off, type_id,
        // access_str_off, kind), each with one damaged field.
        (
            "core-relo-unknown-kind.o",
            core(&|d, rec| put_u32(d, rec + 12, 99)),
        ),
        (
            "core-relo-bad-type-id.o",
            core(&|d, rec| put_u32(d, rec + 4, 0x00ff_ffff)),
        ),
        (
            "core-relo-bad-access-string-offset.o",
            core(&|d, rec| put_u32(d, rec + 8, u32::MAX)),
        ),
        (
            "core-relo-access-past-members.o",
            core(&|d, rec| {
                // "0:0" becomes "0:7": member 7 of a struct with one member.
                let (btf, _) = section_range(d, ".BTF");
                let hdr_len = u32_at(d, btf + 4) as usize;
                let strings = btf + hdr_len + u32_at(d, btf + 16) as usize;
                let at = strings + u32_at(d, rec + 8) as usize + 2;
                d[at] = b'7';
            }),
        ),
    ]
}

/// core_reloc.bpf.o with `edit` applied at its first CO-RE record.
fn core(edit: &dyn Fn(&mut Vec<u8>, usize)) -> Vec<u8> {
    let mut d = object("core_reloc.bpf.o");
    let (ext, _) = section_range(&d, ".BTF.ext");
    let block = ext + u32_at(&d, ext + 4) as usize + u32_at(&d, ext + 24) as usize;
    // record size, then the first section's name offset and record count
    edit(&mut d, block + 4 + 8);
    d
}

// --- The corpus -----------------------------------------------------------------

fn manifest() -> BTreeMap<String, String> {
    let path = Path::new(CORPUS).join("EXPECTED");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let (file, expected) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("EXPECTED line {}: no tab: {line:?}", n + 1));
        assert!(
            out.insert(file.to_owned(), expected.to_owned()).is_none(),
            "EXPECTED names {file} twice"
        );
    }
    out
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("{CORPUS}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "EXPECTED")
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_str().unwrap().to_owned()
}

fn parse_error(data: &[u8]) -> Option<String> {
    ObjectSpec::parse(data).err().map(|e| e.to_string())
}

#[test]
fn generated_files_are_current() {
    let write = std::env::var_os("RAWBPF_WRITE_CORPUS").is_some();
    let mut expected = if write {
        manifest_or_empty()
    } else {
        manifest()
    };
    let mut stale = Vec::new();
    for (name, bytes) in generate() {
        let path = Path::new(CORPUS).join(name);
        if write {
            std::fs::create_dir_all(CORPUS).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            // A file that parses shows up as a failure of every_file_gives_its_error.
            let msg = parse_error(&bytes).unwrap_or_else(|| "(parses without error)".into());
            expected.insert(name.to_owned(), msg);
        } else if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            stale.push(name);
        }
    }
    if write {
        let text: String = expected
            .iter()
            .map(|(f, m)| format!("{f}\t{m}\n"))
            .collect();
        std::fs::write(Path::new(CORPUS).join("EXPECTED"), text).unwrap();
    }
    assert!(
        stale.is_empty(),
        "generated corpus files differ from the committed ones (objects rebuilt?): {stale:?}; \
         regenerate with RAWBPF_WRITE_CORPUS=1 and review EXPECTED"
    );
}

fn manifest_or_empty() -> BTreeMap<String, String> {
    if Path::new(CORPUS).join("EXPECTED").exists() {
        manifest()
    } else {
        BTreeMap::new()
    }
}

#[test]
fn manifest_and_files_match() {
    let expected = manifest();
    let files: Vec<String> = corpus_files().iter().map(|p| file_name(p)).collect();
    let unlisted: Vec<&String> = files
        .iter()
        .filter(|f| !expected.contains_key(*f))
        .collect();
    let missing: Vec<&String> = expected.keys().filter(|f| !files.contains(f)).collect();
    assert!(
        unlisted.is_empty(),
        "files without an EXPECTED line: {unlisted:?}"
    );
    assert!(
        missing.is_empty(),
        "EXPECTED lines without a file: {missing:?}"
    );
}

#[test]
fn every_file_gives_its_error() {
    let expected = manifest();
    let mut wrong = Vec::new();
    for path in corpus_files() {
        let name = file_name(&path);
        let Some(want) = expected.get(&name) else {
            continue; // manifest_and_files_match reports it
        };
        let data = std::fs::read(&path).unwrap();
        match parse_error(&data) {
            Some(got) if &got == want => {}
            got => wrong.push(format!("{name}:\n  expected {want:?}\n  got      {got:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
