//! The `.BTF` section: type information (Documentation/bpf/btf.rst).
//!
//! Parsing checks every offset, count and type reference before using it, so
//! no input can make it index out of bounds or allocate more than the input
//! could hold. The parsed form can be changed (the loader fixes up DATASEC
//! sizes and sanitizes kinds an old kernel lacks) and encoded again.

use std::fmt;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: u32 = 24;
/// How many modifiers/typedefs a chain may have before we call it a loop (libbpf: 32).
const MAX_CHAIN: usize = 32;

/// What is wrong with a BTF blob. The caller prefixes "section .BTF: ".
#[derive(Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BtfError {
    /// The blob ends before something its header or a record says is there.
    #[error("BTF is truncated: {what} ends at byte {end} but the section has {len} bytes")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it would end.
        end: u64,
        /// Blob length.
        len: usize,
    },
    /// Not BTF.
    #[error("bad BTF magic {0:#06x} (expected 0xeb9f)")]
    BadMagic(u16),
    /// Big-endian BTF.
    #[error("BTF is big-endian (magic reads 0x9feb); rebuild with -target bpfel")]
    WrongEndian,
    /// Unknown version.
    #[error("BTF version {0} is not supported (expected 1)")]
    Version(u8),
    /// A header length below the minimum.
    #[error("BTF header length {0} is shorter than 24 bytes")]
    HeaderLen(u32),
    /// The string section is malformed.
    #[error("BTF string section {0}")]
    Strings(&'static str),
    /// A string offset outside the string section, or a string without its NUL.
    #[error("BTF string offset {offset} is outside the string section ({len} bytes) or not a NUL-terminated UTF-8 string")]
    BadString {
        /// The offset.
        offset: u32,
        /// String section length.
        len: usize,
    },
    /// A type's name offset is bad.
    #[error("BTF type {id}: name offset {offset} is outside the string section ({len} bytes)")]
    BadName {
        /// Type id.
        id: u32,
        /// Name offset.
        offset: u32,
        /// String section length.
        len: usize,
    },
    /// A kind number this reader does not know.
    #[error("BTF type {id} at byte {offset}: unknown kind {kind}")]
    UnknownKind {
        /// Type id.
        id: u32,
        /// Byte offset in the type section.
        offset: usize,
        /// The kind number.
        kind: u32,
    },
    /// A type record (or its trailing members) runs past the type section.
    #[error("BTF type {id} ({kind}) at byte {offset}: its {need} bytes run past the type section ({len} bytes)")]
    TypeTruncated {
        /// Type id.
        id: u32,
        /// Its kind.
        kind: &'static str,
        /// Byte offset in the type section.
        offset: usize,
        /// Bytes the record needs.
        need: u64,
        /// Type section length.
        len: usize,
    },
    /// A reference to a type id that does not exist.
    #[error("BTF type {id} ({kind}): references type {target}, but there are only {count} types")]
    BadTypeRef {
        /// Type id.
        id: u32,
        /// Its kind.
        kind: &'static str,
        /// The referenced id.
        target: u32,
        /// Number of types (including void).
        count: u32,
    },
    /// A look-up of a type id that does not exist.
    #[error("BTF type {id} does not exist ({count} types)")]
    NoSuchType {
        /// Type id.
        id: u32,
        /// Number of types.
        count: u32,
    },
    /// A typedef/modifier chain that loops.
    #[error("BTF type {id}: modifier chain loops or is deeper than {max}")]
    Loop {
        /// Where the chain started.
        id: u32,
        /// The limit.
        max: usize,
    },
    /// Types that lead back to themselves through pointers, typedefs,
    /// modifiers, arrays or variables, never reaching a concrete type (the
    /// kernel rejects such BTF: "Loop detected"). Found when parsing, so no
    /// later walk has to guard against it.
    #[error("BTF type {id} ({kind}) refers back to itself: {path} (a loop of pointers, typedefs, modifiers or arrays that reaches no concrete type)")]
    Cycle {
        /// The first type of the loop met (the lowest id on it).
        id: u32,
        /// Its kind.
        kind: &'static str,
        /// The loop, as ids: "8 -> 7 -> 8".
        path: String,
    },
    /// A size asked of a type that has none.
    #[error("BTF type {id} ({kind}) has no size")]
    NoSize {
        /// Type id.
        id: u32,
        /// Its kind.
        kind: &'static str,
    },
    /// A size that overflows u32.
    #[error("BTF type {id}: size overflows")]
    Overflow {
        /// Type id.
        id: u32,
    },
    /// A type of another kind than the context needs.
    #[error("BTF type {id} is {found}, expected {expected}")]
    Unexpected {
        /// Type id.
        id: u32,
        /// What was needed.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A name a lazily indexed BTF was not asked to index (the loader
    /// collects every name it will look up before opening the kernel's BTF).
    #[error("BTF name {name} was not indexed (it was not among the names asked for when the BTF was opened)")]
    NotIndexed {
        /// The name.
        name: String,
    },
    /// Reading a BTF file failed after it was opened.
    #[error("reading BTF at byte {offset}: {reason}")]
    Read {
        /// File offset.
        offset: u64,
        /// The I/O error, in words.
        reason: String,
    },
}

/// `BTF_KIND_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum BtfKind {
    Void = 0,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl BtfKind {
    const ALL: [BtfKind; 20] = [
        BtfKind::Void,
        BtfKind::Int,
        BtfKind::Ptr,
        BtfKind::Array,
        BtfKind::Struct,
        BtfKind::Union,
        BtfKind::Enum,
        BtfKind::Fwd,
        BtfKind::Typedef,
        BtfKind::Volatile,
        BtfKind::Const,
        BtfKind::Restrict,
        BtfKind::Func,
        BtfKind::FuncProto,
        BtfKind::Var,
        BtfKind::Datasec,
        BtfKind::Float,
        BtfKind::DeclTag,
        BtfKind::TypeTag,
        BtfKind::Enum64,
    ];

    fn from_u32(v: u32) -> Option<BtfKind> {
        Self::ALL.get(v as usize).copied()
    }

    /// The uapi spelling without `BTF_KIND_`: "STRUCT", "DATASEC", ...
    pub fn name(self) -> &'static str {
        [
            "VOID",
            "INT",
            "PTR",
            "ARRAY",
            "STRUCT",
            "UNION",
            "ENUM",
            "FWD",
            "TYPEDEF",
            "VOLATILE",
            "CONST",
            "RESTRICT",
            "FUNC",
            "FUNC_PROTO",
            "VAR",
            "DATASEC",
            "FLOAT",
            "DECL_TAG",
            "TYPE_TAG",
            "ENUM64",
        ][self as usize]
    }

    /// Whether `size_or_type` holds a type id for this kind.
    fn refers_to_type(self) -> bool {
        use BtfKind::*;
        matches!(
            self,
            Ptr | Typedef
                | Volatile
                | Const
                | Restrict
                | Func
                | FuncProto
                | Var
                | DeclTag
                | TypeTag
        )
    }

    fn is_modifier(self) -> bool {
        use BtfKind::*;
        matches!(self, Typedef | Volatile | Const | Restrict | TypeTag)
    }
}

impl fmt::Display for BtfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A struct/union member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfMember {
    /// Name (string offset).
    pub name_off: u32,
    /// Member type.
    pub type_id: u32,
    /// Bit offset (with `kind_flag`: bitfield size << 24 | bit offset).
    pub offset: u32,
}

/// An enum value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfEnum {
    /// Name (string offset).
    pub name_off: u32,
    /// Value.
    pub val: i32,
}

/// An enum64 value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfEnum64 {
    /// Name (string offset).
    pub name_off: u32,
    /// Value.
    pub val: u64,
}

/// A function prototype's parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfParam {
    /// Name (string offset).
    pub name_off: u32,
    /// Parameter type.
    pub type_id: u32,
}

/// A variable's place in a DATASEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtfVarSecinfo {
    /// The VAR (or FUNC) type.
    pub type_id: u32,
    /// Byte offset in the section.
    pub offset: u32,
    /// Byte size.
    pub size: u32,
}

/// What follows a type's common 12-byte record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BtfTypeData {
    None,
    Int {
        encoding: u8,
        offset: u8,
        bits: u8,
    },
    Array {
        elem_type: u32,
        index_type: u32,
        nelems: u32,
    },
    Members(Vec<BtfMember>),
    Enum(Vec<BtfEnum>),
    Enum64(Vec<BtfEnum64>),
    Params(Vec<BtfParam>),
    Var {
        linkage: u32,
    },
    Datasec(Vec<BtfVarSecinfo>),
    DeclTag {
        component_idx: i32,
    },
}

/// One BTF type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfType {
    /// Name (string offset; 0 for anonymous).
    pub name_off: u32,
    /// Kind.
    pub kind: BtfKind,
    /// `kind_flag` (bitfield members, enum signedness, union/struct forward).
    pub kind_flag: bool,
    /// vlen for kinds whose vlen is not a member count (FUNC: linkage).
    pub vlen_extra: u16,
    /// Size in bytes, or the referenced type id, depending on the kind.
    pub size_or_type: u32,
    /// Kind-specific data.
    pub data: BtfTypeData,
}

impl BtfType {
    /// Type 0, `void`, which every BTF starts with.
    pub(crate) fn void() -> BtfType {
        BtfType {
            name_off: 0,
            kind: BtfKind::Void,
            kind_flag: false,
            vlen_extra: 0,
            size_or_type: 0,
            data: BtfTypeData::None,
        }
    }

    fn vlen(&self) -> usize {
        match &self.data {
            BtfTypeData::Members(v) => v.len(),
            BtfTypeData::Enum(v) => v.len(),
            BtfTypeData::Enum64(v) => v.len(),
            BtfTypeData::Params(v) => v.len(),
            BtfTypeData::Datasec(v) => v.len(),
            _ => usize::from(self.vlen_extra),
        }
    }

    /// FUNC linkage (0 static, 1 global, 2 extern).
    pub fn func_linkage(&self) -> u16 {
        self.vlen_extra
    }

    /// Renames every type id this type refers to with `id`, and every
    /// string offset it holds (its name, member, parameter and enumerator
    /// names) with `string`: a reader that merges several BTFs into one id
    /// space moves a split BTF's own ids and strings this way.
    pub(crate) fn remap(&mut self, id: impl Fn(u32) -> u32, string: impl Fn(u32) -> u32) {
        self.name_off = string(self.name_off);
        if self.kind.refers_to_type() {
            self.size_or_type = id(self.size_or_type);
        }
        match &mut self.data {
            BtfTypeData::Array {
                elem_type,
                index_type,
                ..
            } => {
                *elem_type = id(*elem_type);
                *index_type = id(*index_type);
            }
            BtfTypeData::Members(m) => m.iter_mut().for_each(|m| {
                m.name_off = string(m.name_off);
                m.type_id = id(m.type_id);
            }),
            BtfTypeData::Params(p) => p.iter_mut().for_each(|p| {
                p.name_off = string(p.name_off);
                p.type_id = id(p.type_id);
            }),
            BtfTypeData::Enum(e) => e.iter_mut().for_each(|e| e.name_off = string(e.name_off)),
            BtfTypeData::Enum64(e) => e.iter_mut().for_each(|e| e.name_off = string(e.name_off)),
            BtfTypeData::Datasec(v) => v.iter_mut().for_each(|v| v.type_id = id(v.type_id)),
            BtfTypeData::None
            | BtfTypeData::Int { .. }
            | BtfTypeData::Var { .. }
            | BtfTypeData::DeclTag { .. } => {}
        }
    }

    /// Every type id this type refers to.
    fn refs(&self) -> Vec<u32> {
        let mut out = Vec::new();
        if self.kind.refers_to_type() {
            out.push(self.size_or_type);
        }
        match &self.data {
            BtfTypeData::Array {
                elem_type,
                index_type,
                ..
            } => out.extend([*elem_type, *index_type]),
            BtfTypeData::Members(m) => out.extend(m.iter().map(|m| m.type_id)),
            BtfTypeData::Params(p) => out.extend(p.iter().map(|p| p.type_id)),
            BtfTypeData::Datasec(v) => out.extend(v.iter().map(|v| v.type_id)),
            _ => {}
        }
        out
    }
}

/// Parsed BTF: types by id (id 0 is void) and the string section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    flags: u8,
    types: Vec<BtfType>,
    strings: Vec<u8>,
}

impl Default for Btf {
    fn default() -> Btf {
        Btf::new()
    }
}

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

    /// An empty BTF (only void), to build small blobs such as feature probes.
    pub fn new() -> Btf {
        Btf {
            flags: 0,
            types: vec![BtfType::void()],
            strings: vec![0],
        }
    }

    /// Number of types, including void (id 0).
    pub fn len(&self) -> u32 {
        self.types.len() as u32
    }

    /// Whether there are no types besides void.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// A type by id.
    pub fn type_by_id(&self, id: u32) -> Result<&BtfType, BtfError> {
        self.types.get(id as usize).ok_or(BtfError::NoSuchType {
            id,
            count: self.len(),
        })
    }

    /// A type by id, to change it in place.
    pub fn type_by_id_mut(&mut self, id: u32) -> Result<&mut BtfType, BtfError> {
        let count = self.len();
        self.types
            .get_mut(id as usize)
            .ok_or(BtfError::NoSuchType { id, count })
    }

    /// Appends a type; returns its id. References are not checked.
    pub fn add_type(&mut self, t: BtfType) -> u32 {
        self.types.push(t);
        self.len() - 1
    }

    /// Adds a string to the string section; returns its offset.
    pub fn add_string(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    /// All types with their ids, void included.
    pub fn types(&self) -> impl Iterator<Item = (u32, &BtfType)> {
        self.types.iter().enumerate().map(|(i, t)| (i as u32, t))
    }

    /// The string at an offset of the string section.
    pub fn string(&self, offset: u32) -> Result<&str, BtfError> {
        let bad = BtfError::BadString {
            offset,
            len: self.strings.len(),
        };
        let rest = self.strings.get(offset as usize..).ok_or(bad.clone())?;
        let end = rest.iter().position(|&b| b == 0).ok_or(bad.clone())?;
        std::str::from_utf8(&rest[..end]).map_err(|_| bad)
    }

    /// A type's name; "" for anonymous types.
    pub fn type_name(&self, id: u32) -> Result<&str, BtfError> {
        self.string(self.type_by_id(id)?.name_off)
    }

    /// Follows typedef/const/volatile/restrict/type_tag to the type underneath.
    pub fn strip_modifiers(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        for _ in 0..=MAX_CHAIN {
            let t = self.type_by_id(cur)?;
            if !t.kind.is_modifier() {
                return Ok(cur);
            }
            cur = t.size_or_type;
        }
        Err(BtfError::Loop { id, max: MAX_CHAIN })
    }

    /// The size in bytes of a type, through modifiers and arrays.
    pub fn resolve_size(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        let mut factor: u32 = 1;
        for _ in 0..=MAX_CHAIN {
            let t = self.type_by_id(cur)?;
            use BtfKind::*;
            let size = match t.kind {
                Int | Float | Struct | Union | Enum | Enum64 | Datasec => t.size_or_type,
                Ptr => 8,
                Typedef | Volatile | Const | Restrict | TypeTag | Var => {
                    cur = t.size_or_type;
                    continue;
                }
                Array => {
                    let BtfTypeData::Array {
                        elem_type, nelems, ..
                    } = t.data
                    else {
                        return Err(BtfError::NoSize {
                            id: cur,
                            kind: t.kind.name(),
                        });
                    };
                    factor = factor
                        .checked_mul(nelems)
                        .ok_or(BtfError::Overflow { id })?;
                    cur = elem_type;
                    continue;
                }
                Void | Fwd | Func | FuncProto | DeclTag => {
                    return Err(BtfError::NoSize {
                        id: cur,
                        kind: t.kind.name(),
                    })
                }
            };
            return size.checked_mul(factor).ok_or(BtfError::Overflow { id });
        }
        Err(BtfError::Loop { id, max: MAX_CHAIN })
    }

    /// The first type of a kind with a name.
    pub fn find_by_name(&self, kind: BtfKind, name: &str) -> Option<u32> {
        self.types()
            .find(|(_, t)| t.kind == kind && self.string(t.name_off).ok() == Some(name))
            .map(|(id, _)| id)
    }

    /// Which kinds appear, each once, in kind order.
    pub fn kinds_used(&self) -> Vec<BtfKind> {
        let mut seen = [false; BtfKind::ALL.len()];
        for t in self.types.iter().skip(1) {
            seen[t.kind as usize] = true;
        }
        BtfKind::ALL
            .iter()
            .copied()
            .filter(|k| seen[*k as usize])
            .collect()
    }

    /// libbpf's `__uint(name, val)` is a member of type `int (*)[val]`: the value.
    pub fn uint_from_ptr_to_array(&self, member_type: u32) -> Result<u32, BtfError> {
        let ptr = self.expect(self.strip_modifiers(member_type)?, BtfKind::Ptr)?;
        let arr_id = ptr.size_or_type;
        match self.expect(arr_id, BtfKind::Array)?.data {
            BtfTypeData::Array { nelems, .. } => Ok(nelems),
            _ => Err(BtfError::Unexpected {
                id: arr_id,
                expected: "ARRAY",
                found: "malformed ARRAY",
            }),
        }
    }

    /// libbpf's `__type(name, T)` is a member of type `T *`: the id of T.
    pub fn pointee(&self, id: u32) -> Result<u32, BtfError> {
        Ok(self
            .expect(self.strip_modifiers(id)?, BtfKind::Ptr)?
            .size_or_type)
    }

    fn expect(&self, id: u32, kind: BtfKind) -> Result<&BtfType, BtfError> {
        let t = self.type_by_id(id)?;
        if t.kind != kind {
            return Err(BtfError::Unexpected {
                id,
                expected: kind.name(),
                found: t.kind.name(),
            });
        }
        Ok(t)
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
    use BtfKind::*;
    let (per_item, fixed) = record_shape(kind);
    // Check the whole record fits before allocating anything for its members.
    let need = 12 + fixed as u64 + per_item as u64 * vlen as u64;
    if need > (len - start) as u64 {
        return Err(truncated(kind.name(), need));
    }
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
    let data = match kind {
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
    };
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
pub(crate) mod tests {
    use super::*;

    /// A tiny BTF writer for tests: raw type records and a string table.
    #[derive(Default)]
    pub(crate) struct Builder {
        pub types: Vec<u8>,
        pub strings: Vec<u8>,
    }

    impl Builder {
        pub fn new() -> Builder {
            Builder {
                types: Vec::new(),
                strings: vec![0],
            }
        }
        pub fn s(&mut self, s: &str) -> u32 {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        pub fn t(&mut self, name: u32, kind: BtfKind, vlen: u32, size_or_type: u32, extra: &[u32]) {
            for v in [name, ((kind as u32) << 24) | vlen, size_or_type]
                .iter()
                .chain(extra)
            {
                self.types.extend_from_slice(&v.to_le_bytes());
            }
        }
        pub fn build(&self) -> Vec<u8> {
            let mut out = vec![0x9f, 0xeb, 1, 0];
            for v in [
                24,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

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

debug_is_display!(BtfError);
