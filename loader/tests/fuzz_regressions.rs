//! Inputs the fuzzing work (fuzz/, issue 8) found to misbehave, each with
//! the exact outcome it must have now.
//!
//! Hangs: parse work must grow with the input, not with the product of two
//! of its counts. The inputs are built here (they are large) from
//! programs/obj/pipeline.bpf.o by appending sections: many functions, many
//! relocations, many `.BTF.ext` records. Each used to take seconds to
//! minutes (a linear search per function, relocation or record); the bound
//! below is far above the linear time even in a debug build on a loaded
//! machine, and far below the old quadratic time.

mod common;

use common::*;
use rawbpf::ObjectSpec;
use std::time::{Duration, Instant};

fn section_bytes(d: &[u8], name: &str) -> Vec<u8> {
    let h = shdr(d, section(d, name));
    let (off, size) = (u64_at(d, h + 24) as usize, u64_at(d, h + 32) as usize);
    d[off..off + size].to_vec()
}

/// Points section `name` at `bytes`, appended to the file.
fn replace_section(d: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    while !d.len().is_multiple_of(8) {
        d.push(0);
    }
    let h = shdr(d, section(d, name));
    let off = d.len() as u64;
    d.extend_from_slice(bytes);
    put_u64(d, h + 24, off);
    put_u64(d, h + 32, bytes.len() as u64);
}

fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// pipeline.bpf.o plus, in section tc: `funcs` programs `fN` of
/// `ld_imm64 r1, prog_array; exit` (a relocation each), one program `big`
/// of `big_lds` such ld_imm64s (a relocation each) unless 0, and
/// `.BTF.ext` replaced by `lines` line_info records spread over the section.
fn stress(funcs: usize, big_lds: usize, lines: usize) -> Vec<u8> {
    let mut d = object("pipeline.bpf.o");
    let mut strtab = section_bytes(&d, ".strtab");
    let mut code = section_bytes(&d, "tc");
    let mut symtab = section_bytes(&d, ".symtab");
    let mut rels = section_bytes(&d, ".reltc");
    let map_sym = u64_at(&rels, 8) >> 32;
    let tc = section(&d, "tc") as u16;
    let ld = [0x18u8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let exit = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
    let mut add_function = |name: &str, lds: usize, code: &mut Vec<u8>| {
        let name_off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        let start = code.len() as u64;
        for _ in 0..lds {
            rels.extend_from_slice(&(code.len() as u64).to_le_bytes());
            rels.extend_from_slice(&((map_sym << 32) | 1).to_le_bytes());
            code.extend_from_slice(&ld);
        }
        code.extend_from_slice(&exit);
        symtab.extend_from_slice(&name_off.to_le_bytes());
        symtab.extend_from_slice(&[0x12, 0]); // STB_GLOBAL, STT_FUNC
        symtab.extend_from_slice(&tc.to_le_bytes());
        symtab.extend_from_slice(&start.to_le_bytes());
        symtab.extend_from_slice(&(code.len() as u64 - start).to_le_bytes());
    };
    for i in 0..funcs {
        add_function(&format!("f{i}"), 1, &mut code);
    }
    if big_lds > 0 {
        add_function("big", big_lds, &mut code);
    }
    // .BTF.ext: header (32 bytes), func_info (no records), line_info.
    let btf = section_bytes(&d, ".BTF");
    let strings = &btf[(u32_at(&btf, 4) + u32_at(&btf, 16)) as usize..];
    let tc_name = strings.windows(4).position(|w| w == b"\0tc\0").unwrap() as u32 + 1;
    let line_len = 4 + 8 + 16 * lines as u32;
    let mut ext = vec![0x9f, 0xeb, 1, 0];
    ext.extend(le(&[32, 0, 12, 12, line_len, 0, 0]));
    ext.extend(le(&[8, tc_name, 0]));
    ext.extend(le(&[16, tc_name, lines as u32]));
    let insns = code.len() / 8;
    for j in 0..lines {
        ext.extend(le(&[(j % insns) as u32 * 8, 0, 0, 0]));
    }
    replace_section(&mut d, ".strtab", &strtab);
    replace_section(&mut d, "tc", &code);
    replace_section(&mut d, ".symtab", &symtab);
    replace_section(&mut d, ".reltc", &rels);
    replace_section(&mut d, ".BTF.ext", &ext);
    let rel_ext = shdr(&d, section(&d, ".rel.BTF.ext"));
    put_u64(&mut d, rel_ext + 32, 0);
    // The section header table last, past everything appended.
    while !d.len().is_multiple_of(8) {
        d.push(0);
    }
    let (table, len) = (shdr(&d, 0), usize::from(u16_at(&d, 0x3c)) * 64);
    let copy = d[table..table + len].to_vec();
    let at = d.len() as u64;
    d.extend_from_slice(&copy);
    put_u64(&mut d, 0x28, at);
    d
}

/// Parses `data`, which must succeed within `limit`; returns the spec.
fn parse_within(data: &[u8], limit: Duration) -> ObjectSpec {
    let start = Instant::now();
    let spec = ObjectSpec::parse(data).unwrap_or_else(|e| panic!("stress object: {e}"));
    let took = start.elapsed();
    eprintln!("parsed {} bytes in {took:?}", data.len());
    assert!(
        took < limit,
        "parsing {} bytes took {took:?} (limit {limit:?})",
        data.len()
    );
    spec
}

#[test]
fn stress_generator_makes_valid_objects() {
    let spec = parse_within(&stress(3, 4, 10), Duration::from_secs(5));
    assert_eq!(spec.programs.len(), 2 + 3 + 1);
    let big = spec.program("big").unwrap();
    assert_eq!(big.function.insns.len(), 4 * 2 + 1);
    assert_eq!(big.function.relocations.len(), 4);
    assert_eq!(spec.program("f2").unwrap().function.relocations.len(), 1);
}

/// Each function took its `.BTF.ext` records by scanning all of them:
/// functions × records.
#[test]
fn many_functions_and_line_records_parse_in_linear_time() {
    let data = stress(20_000, 0, 40_000);
    let spec = parse_within(&data, Duration::from_secs(10));
    assert_eq!(spec.programs.len(), 20_002);
    let lines: usize = spec
        .programs
        .iter()
        .map(|p| p.function.line_info.len())
        .sum();
    assert_eq!(lines, 40_000);
}

/// Each relocation searched every function for the one containing it, and
/// every earlier relocation of that function for a duplicate.
#[test]
fn many_relocations_parse_in_linear_time() {
    let data = stress(20_000, 30_000, 0);
    let spec = parse_within(&data, Duration::from_secs(10));
    assert_eq!(
        spec.program("big").unwrap().function.relocations.len(),
        30_000
    );
}
