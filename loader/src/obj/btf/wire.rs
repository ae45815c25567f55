//! The `.BTF` binary format: the header, type records and string section,
//! read with every offset checked, and written again.

use super::*;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: u32 = 24;

/// A little-endian cursor over a byte slice that never reads out of bounds.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> u32 {
        // Callers check the length first; a short read yields 0 rather than a panic.
        let v = self
            .data
            .get(self.pos..self.pos + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        self.pos += 4;
        v
    }
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    data.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A BTF header: where the type and string sections are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// `flags`.
    pub flags: u8,
    /// Byte range of the type section in the blob (or file).
    pub types: std::ops::Range<usize>,
    /// Byte range of the string section.
    pub strings: std::ops::Range<usize>,
}

impl Header {
    /// Bytes to read to parse a header: the fixed part (any longer header's
    /// extra fields are not used).
    pub const LEN: usize = HEADER_LEN as usize;

    /// Checks a header; `data` holds at least its first [`Header::LEN`]
    /// bytes (or all there is), `total` is the blob's (or file's) length.
    pub fn parse(data: &[u8], total: usize) -> Result<Header, BtfError> {
        let truncated = |what, end: u64| BtfError::Truncated {
            what,
            end,
            len: total,
        };
        if data.len() < HEADER_LEN as usize || total < HEADER_LEN as usize {
            return Err(truncated("the header", u64::from(HEADER_LEN)));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic == MAGIC.swap_bytes() {
            return Err(BtfError::WrongEndian);
        }
        if magic != MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        if data[2] != 1 {
            return Err(BtfError::Version(data[2]));
        }
        let hdr_len = le_u32(data, 4);
        if hdr_len < HEADER_LEN {
            return Err(BtfError::HeaderLen(hdr_len));
        }
        if u64::from(hdr_len) > total as u64 {
            return Err(truncated("the header", u64::from(hdr_len)));
        }
        let section = |off_at: usize, what| {
            let off = u64::from(hdr_len) + u64::from(le_u32(data, off_at));
            let end = off + u64::from(le_u32(data, off_at + 4));
            if end > total as u64 {
                return Err(truncated(what, end));
            }
            Ok(off as usize..end as usize)
        };
        Ok(Header {
            flags: data[3],
            types: section(8, "the type section")?,
            strings: section(16, "the string section")?,
        })
    }
}

/// The kind and length of a type record from its `info` word (12 bytes and
/// what follows them for its kind and vlen); `None` for a kind this reader
/// does not know. (A lazy reader calls this for each of 100k+ types.)
#[inline]
pub(crate) fn record_len(info: u32) -> Option<(BtfKind, usize)> {
    let k = ((info >> 24) & 0x1f) as usize;
    let kind = *BtfKind::ALL.get(k).filter(|&&k| k != BtfKind::Void)?;
    let (per_item, fixed) = SHAPES[k];
    Some((kind, 12 + fixed + per_item * (info & 0xffff) as usize))
}

/// Per kind: bytes per vlen item, and fixed bytes after the common 12.
const SHAPES: [(usize, usize); BtfKind::ALL.len()] = {
    let mut t = [(0, 0); BtfKind::ALL.len()];
    let mut k = 0;
    while k < t.len() {
        use BtfKind::*;
        t[k] = match BtfKind::ALL[k] {
            Int | Var | DeclTag => (0, 4),
            Array => (0, 12),
            Struct | Union | Datasec | Enum64 => (12, 0),
            Enum | FuncProto => (8, 0),
            _ => (0, 0),
        };
        k += 1;
    }
    t
};

/// Bytes per vlen item, and fixed bytes after the common 12, of a kind's record.
fn record_shape(kind: BtfKind) -> (usize, usize) {
    SHAPES[kind as usize]
}

/// Decodes one type record (`record` starts at it; errors give offsets
/// relative to it): the decoder [`Btf::parse`] uses, for readers that hold
/// one record at a time.
pub(crate) fn decode_type(record: &[u8], id: u32) -> Result<BtfType, BtfError> {
    parse_type(
        &mut Reader {
            data: record,
            pos: 0,
        },
        id,
    )
}

impl Btf {
    /// Parses and validates a BTF blob.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let h = Header::parse(data, data.len())?;
        let type_data = &data[h.types.clone()];
        let strings = &data[h.strings.clone()];
        if strings.first() != Some(&0) {
            return Err(BtfError::Strings(
                "is empty or does not start with a NUL byte",
            ));
        }
        if strings.last() != Some(&0) {
            return Err(BtfError::Strings("does not end with a NUL byte"));
        }

        let mut types = vec![BtfType::void()];
        let mut r = Reader {
            data: type_data,
            pos: 0,
        };
        while r.pos < type_data.len() {
            let id = types.len() as u32;
            types.push(parse_type(&mut r, id)?);
        }

        let btf = Btf {
            flags: h.flags,
            types,
            strings: strings.to_vec(),
        };
        btf.validate()?;
        Ok(btf)
    }

    /// Checks names and type references once everything is read (references may point forward).
    fn validate(&self) -> Result<(), BtfError> {
        let count = self.len();
        for (id, t) in self.types() {
            if self.string(t.name_off).is_err() {
                return Err(BtfError::BadName {
                    id,
                    offset: t.name_off,
                    len: self.strings.len(),
                });
            }
            for target in t.refs() {
                if target >= count {
                    return Err(BtfError::BadTypeRef {
                        id,
                        kind: t.kind.name(),
                        target,
                        count,
                    });
                }
            }
        }
        self.check_chains()
    }

    /// Rejects loops of pointers, typedefs, modifiers, arrays and variables
    /// (`typedef a a;`, a pointer to itself, ...). Each type is visited once:
    /// a walk follows the one type each of these kinds refers to and stops
    /// at any other kind (a struct may hold a pointer to itself: the walk from
    /// the pointer stops at the struct), at a type already known to end, or
    /// at a type on its own path, which is a loop. References are already
    /// checked to be in range.
    fn check_chains(&self) -> Result<(), BtfError> {
        fn next(t: &BtfType) -> Option<u32> {
            use BtfKind::*;
            match (t.kind, &t.data) {
                (Array, BtfTypeData::Array { elem_type, .. }) => Some(*elem_type),
                (Ptr | Var | Typedef | Volatile | Const | Restrict | TypeTag, _) => {
                    Some(t.size_or_type)
                }
                _ => None,
            }
        }
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const ENDS: u8 = 2;
        let mut state = vec![NEW; self.types.len()];
        let mut path: Vec<usize> = Vec::new();
        for start in 0..self.types.len() {
            let mut cur = start;
            let looped = loop {
                match state[cur] {
                    ENDS => break false,
                    ON_PATH => break true,
                    _ => {}
                }
                state[cur] = ON_PATH;
                path.push(cur);
                match next(&self.types[cur]) {
                    Some(n) => cur = n as usize,
                    None => break false,
                }
            };
            if looped {
                let from = path.iter().position(|&p| p == cur).unwrap_or(0);
                let ring = &path[from..];
                let first = ring.iter().copied().min().unwrap_or(cur);
                let at = ring.iter().position(|&p| p == first).unwrap_or(0);
                // The loop from its lowest id round to it again, at most 8 steps shown.
                let ids: Vec<String> = ring[at..]
                    .iter()
                    .chain(&ring[..at])
                    .chain(std::iter::once(&first))
                    .map(|id| id.to_string())
                    .collect();
                let path = if ids.len() > 9 {
                    format!(
                        "{} -> ... ({} types) -> {first}",
                        ids[..8].join(" -> "),
                        ring.len()
                    )
                } else {
                    ids.join(" -> ")
                };
                return Err(BtfError::Cycle {
                    id: first as u32,
                    kind: self.types[first].kind.name(),
                    path,
                });
            }
            for &p in &path {
                state[p] = ENDS;
            }
            path.clear();
        }
        Ok(())
    }

    /// Encodes the BTF again (header, types, strings), as clang lays it out.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut types = Vec::new();
        for t in self.types.iter().skip(1) {
            encode_type(t, &mut types);
        }
        let mut out = Vec::with_capacity(HEADER_LEN as usize + types.len() + self.strings.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1);
        out.push(self.flags);
        for v in [
            HEADER_LEN,
            0,
            types.len() as u32,
            types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Reads one type record; `r` is at its start.
fn parse_type(r: &mut Reader<'_>, id: u32) -> Result<BtfType, BtfError> {
    let start = r.pos;
    let len = r.data.len();
    let truncated = |kind: &'static str, need: u64| BtfError::TypeTruncated {
        id,
        kind,
        offset: start,
        need,
        len,
    };
    if len - start < 12 {
        return Err(truncated("?", 12));
    }
    let name_off = r.u32();
    let info = r.u32();
    let size_or_type = r.u32();
    let kind_num = (info >> 24) & 0x1f;
    let kind = BtfKind::from_u32(kind_num)
        .filter(|&k| k != BtfKind::Void)
        .ok_or(BtfError::UnknownKind {
            id,
            offset: start,
            kind: kind_num,
        })?;
    let vlen = (info & 0xffff) as usize;
    let (per_item, fixed) = record_shape(kind);
    // Check the whole record fits before allocating anything for its members.
    let need = 12 + fixed as u64 + per_item as u64 * vlen as u64;
    if need > (len - start) as u64 {
        return Err(truncated(kind.name(), need));
    }
    let data = parse_data(r, kind, vlen, per_item);
    let has_items = per_item != 0;
    Ok(BtfType {
        name_off,
        kind,
        kind_flag: info & (1 << 31) != 0,
        vlen_extra: if has_items { 0 } else { vlen as u16 },
        size_or_type,
        data,
    })
}

/// The kind-specific part of a type record (after the common 12 bytes),
/// whose length the caller has checked: `vlen` items of `per_item` bytes.
fn parse_data(r: &mut Reader<'_>, kind: BtfKind, vlen: usize, per_item: usize) -> BtfTypeData {
    use BtfKind::*;
    let mut items = |n: usize| -> Vec<[u32; 3]> {
        (0..n)
            .map(|_| {
                let a = r.u32();
                let b = r.u32();
                let c = if per_item == 12 { r.u32() } else { 0 };
                [a, b, c]
            })
            .collect()
    };
    match kind {
        Int => {
            let v = r.u32();
            BtfTypeData::Int {
                encoding: ((v >> 24) & 0xf) as u8,
                offset: ((v >> 16) & 0xff) as u8,
                bits: (v & 0xff) as u8,
            }
        }
        Array => BtfTypeData::Array {
            elem_type: r.u32(),
            index_type: r.u32(),
            nelems: r.u32(),
        },
        Struct | Union => BtfTypeData::Members(
            items(vlen)
                .into_iter()
                .map(|[name_off, type_id, offset]| BtfMember {
                    name_off,
                    type_id,
                    offset,
                })
                .collect(),
        ),
        Enum => BtfTypeData::Enum(
            items(vlen)
                .into_iter()
                .map(|[name_off, val, _]| BtfEnum {
                    name_off,
                    val: val as i32,
                })
                .collect(),
        ),
        Enum64 => BtfTypeData::Enum64(
            items(vlen)
                .into_iter()
                .map(|[name_off, lo, hi]| BtfEnum64 {
                    name_off,
                    val: u64::from(lo) | (u64::from(hi) << 32),
                })
                .collect(),
        ),
        FuncProto => BtfTypeData::Params(
            items(vlen)
                .into_iter()
                .map(|[name_off, type_id, _]| BtfParam { name_off, type_id })
                .collect(),
        ),
        Datasec => BtfTypeData::Datasec(
            items(vlen)
                .into_iter()
                .map(|[type_id, offset, size]| BtfVarSecinfo {
                    type_id,
                    offset,
                    size,
                })
                .collect(),
        ),
        Var => BtfTypeData::Var { linkage: r.u32() },
        DeclTag => BtfTypeData::DeclTag {
            component_idx: r.u32() as i32,
        },
        _ => BtfTypeData::None,
    }
}

fn encode_type(t: &BtfType, out: &mut Vec<u8>) {
    let mut put = |v: u32| out.extend_from_slice(&v.to_le_bytes());
    let info =
        (u32::from(t.kind_flag) << 31) | ((t.kind as u32) << 24) | (t.vlen() as u32 & 0xffff);
    put(t.name_off);
    put(info);
    put(t.size_or_type);
    match &t.data {
        BtfTypeData::None => {}
        BtfTypeData::Int {
            encoding,
            offset,
            bits,
        } => put((u32::from(*encoding) << 24) | (u32::from(*offset) << 16) | u32::from(*bits)),
        BtfTypeData::Array {
            elem_type,
            index_type,
            nelems,
        } => {
            put(*elem_type);
            put(*index_type);
            put(*nelems);
        }
        BtfTypeData::Members(m) => m.iter().for_each(|m| {
            put(m.name_off);
            put(m.type_id);
            put(m.offset);
        }),
        BtfTypeData::Enum(e) => e.iter().for_each(|e| {
            put(e.name_off);
            put(e.val as u32);
        }),
        BtfTypeData::Enum64(e) => e.iter().for_each(|e| {
            put(e.name_off);
            put(e.val as u32);
            put((e.val >> 32) as u32);
        }),
        BtfTypeData::Params(p) => p.iter().for_each(|p| {
            put(p.name_off);
            put(p.type_id);
        }),
        BtfTypeData::Var { linkage } => put(*linkage),
        BtfTypeData::Datasec(v) => v.iter().for_each(|v| {
            put(v.type_id);
            put(v.offset);
            put(v.size);
        }),
        BtfTypeData::DeclTag { component_idx } => put(*component_idx as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::btf::tests::Builder;

    /// [1] int, [2] int (*)[7], [3] struct { x: int; }, [4] typedef a -> 5,
    /// [5] typedef a -> 1.
    fn sample() -> Builder {
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, BtfKind::Int, 0, 4, &[(1 << 24) | 32]); // 1
        b.t(0, BtfKind::Ptr, 0, 6, &[]); // 2 -> 6
        let x = b.s("x");
        let st = b.s("st");
        b.t(st, BtfKind::Struct, 1, 4, &[x, 1, 0]); // 3
        let a = b.s("a");
        b.t(a, BtfKind::Typedef, 0, 5, &[]); // 4
        b.t(a, BtfKind::Typedef, 0, 1, &[]); // 5
        b.t(0, BtfKind::Array, 0, 0, &[1, 1, 7]); // 6
        b
    }

    /// `sample` with [5] typedef -> 4: a loop of two typedefs.
    fn sample_with_loop() -> Vec<u8> {
        let mut b = sample();
        // Type 5's size_or_type: after 1 (16 bytes), 2 (12), 3 (24), 4 (12).
        let at = 16 + 12 + 24 + 12 + 8;
        b.types[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
        b.build()
    }

    #[test]
    fn parses_and_round_trips() {
        let bytes = sample().build();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.len(), 7);
        assert_eq!(btf.to_bytes(), bytes);
        assert_eq!(btf.type_name(3).unwrap(), "st");
        assert_eq!(btf.uint_from_ptr_to_array(2).unwrap(), 7);
        assert_eq!(btf.resolve_size(3).unwrap(), 4);
        assert_eq!(btf.resolve_size(6).unwrap(), 28);
        assert_eq!(btf.find_by_name(BtfKind::Struct, "st"), Some(3));
        assert_eq!(
            btf.kinds_used(),
            vec![
                BtfKind::Int,
                BtfKind::Ptr,
                BtfKind::Array,
                BtfKind::Struct,
                BtfKind::Typedef
            ]
        );
    }

    #[test]
    fn typedef_loop_is_an_error() {
        assert_eq!(
            Btf::parse(&sample_with_loop()).unwrap_err().to_string(),
            "BTF type 4 (TYPEDEF) refers back to itself: 4 -> 5 -> 4 (a loop of pointers, typedefs, modifiers or arrays that reaches no concrete type)"
        );
        // A loop made after parsing (add_type does not check) still ends the walks.
        let mut btf = Btf::parse(&sample().build()).unwrap();
        let a = btf.add_string("b");
        let looped = btf.add_type(BtfType {
            name_off: a,
            kind: BtfKind::Typedef,
            kind_flag: false,
            vlen_extra: 0,
            size_or_type: btf.len(),
            data: BtfTypeData::None,
        });
        let e = btf.strip_modifiers(looped).unwrap_err();
        assert_eq!(
            e.to_string(),
            "BTF type 7: modifier chain loops or is deeper than 32"
        );
        assert!(btf.resolve_size(looped).is_err());
    }

    #[test]
    fn pointer_and_array_loops_are_errors() {
        let mut b = Builder::new();
        b.t(0, BtfKind::Ptr, 0, 1, &[]); // 1 -> 1
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1 (PTR) refers back to itself: 1 -> 1 (a loop of pointers, typedefs, modifiers or arrays that reaches no concrete type)"
        );
        let mut b = Builder::new();
        let int = b.s("int");
        b.t(int, BtfKind::Int, 0, 4, &[(1 << 24) | 32]); // 1
        b.t(0, BtfKind::Const, 0, 3, &[]); // 2 -> 3
        b.t(0, BtfKind::Array, 0, 0, &[2, 1, 4]); // 3: const 3[4]
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 2 (CONST) refers back to itself: 2 -> 3 -> 2 (a loop of pointers, typedefs, modifiers or arrays that reaches no concrete type)"
        );
        // A long loop is shown shortened.
        let mut b = Builder::new();
        for id in 1..=20 {
            b.t(0, BtfKind::Ptr, 0, id % 20 + 1, &[]);
        }
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1 (PTR) refers back to itself: 1 -> 2 -> 3 -> 4 -> 5 -> 6 -> 7 -> 8 -> ... (20 types) -> 1 (a loop of pointers, typedefs, modifiers or arrays that reaches no concrete type)"
        );
        // A struct holding a pointer to itself is no loop.
        let mut b = Builder::new();
        let next = b.s("next");
        b.t(0, BtfKind::Struct, 1, 8, &[next, 2, 0]); // 1 { 2 next; }
        b.t(0, BtfKind::Ptr, 0, 1, &[]); // 2 -> 1
        assert!(Btf::parse(&b.build()).is_ok());
    }

    #[test]
    fn header_errors() {
        let good = sample().build();
        assert_eq!(
            Btf::parse(&good[..10]).unwrap_err().to_string(),
            "BTF is truncated: the header ends at byte 24 but the section has 10 bytes"
        );
        let mut bad = good.clone();
        bad[0] = 0;
        assert_eq!(
            Btf::parse(&bad).unwrap_err().to_string(),
            "bad BTF magic 0xeb00 (expected 0xeb9f)"
        );
        let mut be = good.clone();
        be[0] = 0xeb;
        be[1] = 0x9f;
        assert_eq!(Btf::parse(&be).unwrap_err(), BtfError::WrongEndian);
        let mut long = good.clone();
        long[12..16].copy_from_slice(&10_000u32.to_le_bytes()); // type_len
        assert!(Btf::parse(&long)
            .unwrap_err()
            .to_string()
            .starts_with("BTF is truncated: the type section ends at byte"));
        let mut no_strings = good.clone();
        no_strings[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Btf::parse(&no_strings).unwrap_err().to_string(),
            "BTF string section is empty or does not start with a NUL byte"
        );
    }

    #[test]
    fn type_errors() {
        let mut b = Builder::new();
        b.t(9999, BtfKind::Int, 0, 4, &[32]);
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1: name offset 9999 is outside the string section (1 bytes)"
        );
        let mut b = Builder::new();
        b.t(0, BtfKind::Ptr, 0, 42, &[]);
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1 (PTR): references type 42, but there are only 2 types"
        );
        let mut b = Builder::new();
        b.types
            .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0, 0]);
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1 at byte 0: unknown kind 31"
        );
        // A struct claiming 65535 members in a 12-byte record: an error, and
        // no allocation sized by the claim.
        let mut b = Builder::new();
        b.t(0, BtfKind::Struct, 0xffff, 4, &[]);
        assert_eq!(
            Btf::parse(&b.build()).unwrap_err().to_string(),
            "BTF type 1 (STRUCT) at byte 0: its 786432 bytes run past the type section (12 bytes)"
        );
        let mut b = Builder::new();
        b.types.extend_from_slice(&[1, 2, 3]);
        assert!(Btf::parse(&b.build()).is_err());
    }
}
