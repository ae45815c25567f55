//! What the pure tests share: the committed objects, a minimal ELF64
//! view for reading and editing fields of an object in place, and (in
//! `core_btf`) the CO-RE tests' BTF builder and helpers.
#![allow(dead_code)] // each test file uses its own part of this

pub mod core_btf;

pub const OBJ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../programs/obj");

pub fn object(name: &str) -> Vec<u8> {
    let path = format!("{OBJ_DIR}/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(d[o..o + 2].try_into().unwrap())
}
pub fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap())
}
pub fn u64_at(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap())
}
pub fn put_u16(d: &mut [u8], o: usize, v: u16) {
    d[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(d: &mut [u8], o: usize, v: u32) {
    d[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(d: &mut [u8], o: usize, v: u64) {
    d[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// File offset of section header `index`.
pub fn shdr(d: &[u8], index: usize) -> usize {
    u64_at(d, 0x28) as usize + index * usize::from(u16_at(d, 0x3a))
}

pub fn section_name_offset(d: &[u8], index: usize) -> usize {
    let strtab = shdr(d, usize::from(u16_at(d, 0x3e)));
    u64_at(d, strtab + 24) as usize + u32_at(d, shdr(d, index)) as usize
}

pub fn section_name(d: &[u8], index: usize) -> String {
    let start = section_name_offset(d, index);
    let end = start + d[start..].iter().position(|&b| b == 0).unwrap();
    String::from_utf8(d[start..end].to_vec()).unwrap()
}

/// Index of the section called `name`.
pub fn section(d: &[u8], name: &str) -> usize {
    (0..usize::from(u16_at(d, 0x3c)))
        .find(|&i| section_name(d, i) == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// (file offset, size) of a section's bytes.
pub fn section_range(d: &[u8], name: &str) -> (usize, usize) {
    let h = shdr(d, section(d, name));
    (u64_at(d, h + 24) as usize, u64_at(d, h + 32) as usize)
}

/// File offset of the symbol-table entry for `name`.
pub fn symbol(d: &[u8], name: &str) -> usize {
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

/// A kernel (`Features`) named `kernel` with every program type, map
/// type, BTF kind and feature, and the helpers `spec` calls: what the
/// `check` tests take away from.
pub fn full_features(spec: &rawbpf::ObjectSpec, kernel: &str) -> rawbpf::probe::Features {
    use rawbpf::probe::{program_helpers, Feature, Features};
    use rawbpf::uapi::{MapType, ProgramType};
    let mut f = Features {
        kernel: kernel.into(),
        btf_global_func: true,
        ..Features::default()
    };
    for t in ProgramType::ALL {
        f.prog_types.insert(*t, Some(true));
    }
    for t in MapType::ALL {
        f.map_types.insert(*t, Some(true));
    }
    for k in rawbpf::probe::PROBED_BTF_KINDS {
        f.btf_kinds.insert(k, true);
    }
    for feat in Feature::ALL {
        f.features.insert(feat, true);
    }
    for (t, ids) in program_helpers(spec) {
        f.helpers
            .entry(t)
            .or_default()
            .extend(ids.into_iter().map(|id| (id, true)));
    }
    f
}
