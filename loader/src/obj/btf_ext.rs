//! The `.BTF.ext` section: per-section func_info, line_info and CO-RE
//! relocation records (Documentation/bpf/btf.rst, "BTF.ext").

use super::btf::Btf;

const MAGIC: u16 = 0xeb9f;
const MIN_HEADER: u32 = 24;
const FUNC_INFO_MIN: u32 = 8;
const LINE_INFO_MIN: u32 = 16;
const CORE_RELO_MIN: u32 = 16;

/// What is wrong with a `.BTF.ext` blob. The caller prefixes "section .BTF.ext: ".
#[derive(thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BtfExtError {
    /// The blob ends before something its header or a block says is there.
    #[error("truncated: {what} ends at byte {end} but the section has {len} bytes")]
    Truncated {
        /// What was being read.
        what: String,
        /// Where it would end.
        end: u64,
        /// Blob length.
        len: usize,
    },
    /// Not BTF.ext.
    #[error("bad magic {0:#06x} (expected 0xeb9f)")]
    BadMagic(u16),
    /// Unknown version.
    #[error("version {0} is not supported (expected 1)")]
    Version(u8),
    /// A header length below the minimum.
    #[error("header length {0} is shorter than 24 bytes")]
    HeaderLen(u32),
    /// A record size smaller than the records we know.
    #[error("{block}: record size {size} is smaller than {min} bytes")]
    RecordSize {
        /// func_info, line_info or core_relo.
        block: &'static str,
        /// The size given.
        size: u32,
        /// The minimum.
        min: u32,
    },
    /// A section name offset that is not a string of `.BTF`.
    #[error("{block}: section name offset {offset} is not a string of .BTF")]
    SectionName {
        /// func_info, line_info or core_relo.
        block: &'static str,
        /// The offset.
        offset: u32,
    },
    /// A CO-RE relocation record naming a type that does not exist.
    #[error("core_relo for section {section}: type {type_id} is not a BTF type ({count} types)")]
    BadCoreType {
        /// Section name.
        section: String,
        /// The type id.
        type_id: u32,
        /// Types in .BTF.
        count: u32,
    },
    /// A CO-RE relocation record whose access string offset is not a string.
    #[error(
        "core_relo for section {section}: access string offset {offset} is not a string of .BTF"
    )]
    BadAccessString {
        /// Section name.
        section: String,
        /// The offset.
        offset: u32,
    },
    /// A func_info record naming a type that does not exist.
    #[error("func_info for section {section}: type {type_id} is not a BTF type ({count} types)")]
    BadFuncType {
        /// Section name.
        section: String,
        /// The type id.
        type_id: u32,
        /// Types in .BTF.
        count: u32,
    },
}

/// A func_info record: the function starting at `insn_off` has BTF type `type_id` (a FUNC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    /// Bytes from the start of the ELF section in the file; instructions from
    /// the start of the function once in a [`FunctionSpec`](super::FunctionSpec).
    pub insn_off: u32,
    /// The BTF FUNC type.
    pub type_id: u32,
}

/// A line_info record: the instruction at `insn_off` comes from this source line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineInfo {
    /// Like [`FuncInfo::insn_off`].
    pub insn_off: u32,
    /// File name (a `.BTF` string offset).
    pub file_name_off: u32,
    /// Source line text (a `.BTF` string offset).
    pub line_off: u32,
    /// Line number << 10 | column.
    pub line_col: u32,
}

impl LineInfo {
    /// The line number.
    pub fn line(&self) -> u32 {
        self.line_col >> 10
    }
    /// The column.
    pub fn col(&self) -> u32 {
        self.line_col & 0x3ff
    }
}

/// A CO-RE relocation record (`struct bpf_core_relo`): the instruction at
/// `insn_off` must be fixed for the running kernel's layout of the type
/// `type_id` (local BTF) reached through `access_str_off` ("0:1:2").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    /// Like [`FuncInfo::insn_off`].
    pub insn_off: u32,
    /// The root type in the object's BTF.
    pub type_id: u32,
    /// The access string (a `.BTF` string offset).
    pub access_str_off: u32,
    /// `enum bpf_core_relo_kind`.
    pub kind: u32,
}

/// CO-RE relocation records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecCoreRelo {
    /// The ELF section.
    pub section: String,
    /// Its records.
    pub records: Vec<CoreRelo>,
}

/// func_info records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecFuncInfo {
    /// The ELF section.
    pub section: String,
    /// Its records.
    pub records: Vec<FuncInfo>,
}

/// line_info records of one ELF section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecLineInfo {
    /// The ELF section.
    pub section: String,
    /// Its records.
    pub records: Vec<LineInfo>,
}

/// Parsed `.BTF.ext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfExt {
    /// func_info, per section.
    pub func_info: Vec<SecFuncInfo>,
    /// line_info, per section.
    pub line_info: Vec<SecLineInfo>,
    /// CO-RE relocation records, per section.
    pub core_relos: Vec<SecCoreRelo>,
}

fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// One info block's records, per section: (section name, record bytes...).
type Block<'a> = Vec<(String, Vec<&'a [u8]>)>;

impl BtfExt {
    /// Parses `.BTF.ext`; section names are resolved in `btf`'s strings.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfExtError> {
        let hdr_len = header_len(data)?;
        let field = |at: usize| {
            if at + 4 <= hdr_len as usize {
                le_u32(data, at).unwrap_or(0)
            } else {
                0
            }
        };
        let block_at =
            |at: usize, what, min| block(data, btf, hdr_len, field(at), field(at + 4), what, min);
        let funcs = block_at(8, "func_info", FUNC_INFO_MIN)?;
        let lines = block_at(16, "line_info", LINE_INFO_MIN)?;
        let relos = block_at(24, "core_relo", CORE_RELO_MIN)?;
        Ok(BtfExt {
            func_info: func_infos(funcs, btf.len())?,
            line_info: line_infos(lines),
            core_relos: core_relos(relos, btf)?,
        })
    }
}

/// The header's length, after checking its magic and version.
fn header_len(data: &[u8]) -> Result<u32, BtfExtError> {
    if data.len() < MIN_HEADER as usize {
        return Err(BtfExtError::Truncated {
            what: "the header".into(),
            end: u64::from(MIN_HEADER),
            len: data.len(),
        });
    }
    let magic = u16::from_le_bytes([data[0], data[1]]);
    if magic != MAGIC {
        return Err(BtfExtError::BadMagic(magic));
    }
    if data[2] != 1 {
        return Err(BtfExtError::Version(data[2]));
    }
    let hdr_len = le_u32(data, 4).unwrap_or(0);
    if hdr_len < MIN_HEADER {
        return Err(BtfExtError::HeaderLen(hdr_len));
    }
    Ok(hdr_len)
}

/// func_info records; each type id must be one of the `count` types.
fn func_infos(funcs: Block<'_>, count: u32) -> Result<Vec<SecFuncInfo>, BtfExtError> {
    let mut func_info = Vec::with_capacity(funcs.len());
    for (section, recs) in funcs {
        let mut records = Vec::with_capacity(recs.len());
        for r in recs {
            let rec = FuncInfo {
                insn_off: le_u32(r, 0).unwrap_or(0),
                type_id: le_u32(r, 4).unwrap_or(0),
            };
            if rec.type_id >= count {
                return Err(BtfExtError::BadFuncType {
                    section,
                    type_id: rec.type_id,
                    count,
                });
            }
            records.push(rec);
        }
        func_info.push(SecFuncInfo { section, records });
    }
    Ok(func_info)
}

fn line_infos(lines: Block<'_>) -> Vec<SecLineInfo> {
    lines
        .into_iter()
        .map(|(section, recs)| SecLineInfo {
            section,
            records: recs
                .into_iter()
                .map(|r| LineInfo {
                    insn_off: le_u32(r, 0).unwrap_or(0),
                    file_name_off: le_u32(r, 4).unwrap_or(0),
                    line_off: le_u32(r, 8).unwrap_or(0),
                    line_col: le_u32(r, 12).unwrap_or(0),
                })
                .collect(),
        })
        .collect()
}

/// core_relo records; type ids and access strings must be in `btf`.
fn core_relos(relos: Block<'_>, btf: &Btf) -> Result<Vec<SecCoreRelo>, BtfExtError> {
    let count = btf.len();
    let mut core_relos = Vec::with_capacity(relos.len());
    for (section, recs) in relos {
        let mut records = Vec::with_capacity(recs.len());
        for r in recs {
            let rec = CoreRelo {
                insn_off: le_u32(r, 0).unwrap_or(0),
                type_id: le_u32(r, 4).unwrap_or(0),
                access_str_off: le_u32(r, 8).unwrap_or(0),
                kind: le_u32(r, 12).unwrap_or(0),
            };
            if rec.type_id >= count {
                return Err(BtfExtError::BadCoreType {
                    section,
                    type_id: rec.type_id,
                    count,
                });
            }
            if btf.string(rec.access_str_off).is_err() {
                return Err(BtfExtError::BadAccessString {
                    section,
                    offset: rec.access_str_off,
                });
            }
            records.push(rec);
        }
        core_relos.push(SecCoreRelo { section, records });
    }
    Ok(core_relos)
}

/// Reads one info block: a u32 record size, then per section its name
/// offset, record count and records. Records may be larger than the part we
/// read (newer compilers); we step by the stated size.
fn block<'a>(
    data: &'a [u8],
    btf: &Btf,
    hdr_len: u32,
    off: u32,
    len: u32,
    name: &'static str,
    min: u32,
) -> Result<Block<'a>, BtfExtError> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let start = u64::from(hdr_len) + u64::from(off);
    let end = start + u64::from(len);
    if end > data.len() as u64 {
        return Err(BtfExtError::Truncated {
            what: format!("the {name} block"),
            end,
            len: data.len(),
        });
    }
    let blk = &data[start as usize..end as usize];
    let rec_size = le_u32(blk, 0).ok_or(BtfExtError::Truncated {
        what: format!("the {name} record size"),
        end: start + 4,
        len: data.len(),
    })?;
    if rec_size < min {
        return Err(BtfExtError::RecordSize {
            block: name,
            size: rec_size,
            min,
        });
    }
    let mut out = Vec::new();
    let mut pos = 4usize;
    while pos < blk.len() {
        let (Some(name_off), Some(num)) = (le_u32(blk, pos), le_u32(blk, pos + 4)) else {
            return Err(BtfExtError::Truncated {
                what: format!("a {name} section header"),
                end: start + pos as u64 + 8,
                len: data.len(),
            });
        };
        let section = btf
            .string(name_off)
            .map_err(|_| BtfExtError::SectionName {
                block: name,
                offset: name_off,
            })?
            .to_owned();
        pos += 8;
        // Checked before any allocation: the records must be in the block.
        let bytes = u64::from(num) * u64::from(rec_size);
        if pos as u64 + bytes > blk.len() as u64 {
            return Err(BtfExtError::Truncated {
                what: format!("{num} {name} records of {rec_size} bytes for section {section}"),
                end: start + pos as u64 + bytes,
                len: data.len(),
            });
        }
        let records = blk[pos..pos + bytes as usize]
            .chunks_exact(rec_size as usize)
            .collect();
        pos += bytes as usize;
        out.push((section, records));
    }
    Ok(out)
}

/// Packs func_info records as `BPF_PROG_LOAD` takes them (8 bytes each).
pub fn encode_func_info(records: &[FuncInfo]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| [r.insn_off, r.type_id])
        .flat_map(u32::to_le_bytes)
        .collect()
}

/// Packs line_info records as `BPF_PROG_LOAD` takes them (16 bytes each).
pub fn encode_line_info(records: &[LineInfo]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| [r.insn_off, r.file_name_off, r.line_off, r.line_col])
        .flat_map(u32::to_le_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::btf::{tests::Builder, BtfKind};
    use super::*;

    fn btf() -> (Btf, u32, u32) {
        let mut b = Builder::new();
        let tc = b.s("tc");
        let text = b.s(".text");
        let f = b.s("f");
        b.t(0, BtfKind::FuncProto, 0, 0, &[]); // 1
        b.t(f, BtfKind::Func, 1, 1, &[]); // 2
        (Btf::parse(&b.build()).unwrap(), tc, text)
    }

    fn ext(func: &[u32], line: &[u32]) -> Vec<u8> {
        let mut out = vec![0x9f, 0xeb, 1, 0];
        let (fl, ll) = (func.len() as u32 * 4, line.len() as u32 * 4);
        for v in [24, 0, fl, fl, ll] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in func.iter().chain(line) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    #[test]
    fn two_sections() {
        let (btf, tc, text) = btf();
        let data = ext(
            &[8, tc, 1, 0, 2, text, 2, 0, 2, 16, 2],
            &[16, tc, 1, 8, tc, tc, (7 << 10) | 3],
        );
        let e = BtfExt::parse(&data, &btf).unwrap();
        assert_eq!(e.func_info.len(), 2);
        assert_eq!(e.func_info[1].section, ".text");
        assert_eq!(
            e.func_info[1].records[1],
            FuncInfo {
                insn_off: 16,
                type_id: 2
            }
        );
        assert_eq!(e.line_info[0].records[0].line(), 7);
        assert_eq!(e.line_info[0].records[0].col(), 3);
        assert_eq!(
            encode_func_info(&e.func_info[0].records),
            [0, 0, 0, 0, 2, 0, 0, 0]
        );
    }

    #[test]
    fn errors() {
        let (btf, tc, _) = btf();
        assert_eq!(
            BtfExt::parse(&[0x9f, 0xeb, 1], &btf)
                .unwrap_err()
                .to_string(),
            "truncated: the header ends at byte 24 but the section has 3 bytes"
        );
        assert_eq!(
            BtfExt::parse(&ext(&[4, tc, 0], &[]), &btf)
                .unwrap_err()
                .to_string(),
            "func_info: record size 4 is smaller than 8 bytes"
        );
        assert_eq!(
            BtfExt::parse(&ext(&[8, 999, 0], &[]), &btf)
                .unwrap_err()
                .to_string(),
            "func_info: section name offset 999 is not a string of .BTF"
        );
        // A count far larger than the block: an error, no allocation by it.
        let e = BtfExt::parse(&ext(&[8, tc, 0x0fff_ffff, 0, 2], &[]), &btf).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("truncated: 268435455 func_info records of 8 bytes for section tc"),
            "{e}"
        );
        assert_eq!(
            BtfExt::parse(&ext(&[8, tc, 1, 0, 77], &[]), &btf)
                .unwrap_err()
                .to_string(),
            "func_info for section tc: type 77 is not a BTF type (3 types)"
        );
    }
}

debug_is_display!(BtfExtError);
