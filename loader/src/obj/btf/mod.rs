//! The `.BTF` section: type information (Documentation/bpf/btf.rst).
//!
//! Parsing checks every offset, count and type reference before using it, so
//! no input can make it index out of bounds or allocate more than the input
//! could hold. The parsed form can be changed (the loader fixes up DATASEC
//! sizes and sanitizes kinds an old kernel lacks) and encoded again.

//!
//! This file holds the types and the queries on them; `wire` reads and
//! writes the binary format.

pub mod sanitize;
pub mod value;
mod wire;

pub(crate) use wire::{decode_type, record_len, Header};

use std::fmt;

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
    /// An anonymous type of `kind` (for blobs built by hand).
    pub fn anon(kind: BtfKind, size_or_type: u32, data: BtfTypeData) -> BtfType {
        BtfType {
            name_off: 0,
            kind,
            kind_flag: false,
            vlen_extra: 0,
            size_or_type,
            data,
        }
    }

    /// A signed 32-bit `INT` (for blobs built by hand; name it `int`).
    pub fn int32() -> BtfType {
        BtfType::anon(
            BtfKind::Int,
            4,
            BtfTypeData::Int {
                encoding: 1,
                offset: 0,
                bits: 32,
            },
        )
    }

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

impl Btf {
    /// An empty BTF (only void), to build small blobs such as feature probes.
    pub fn new() -> Btf {
        Btf {
            flags: 0,
            types: vec![BtfType::void()],
            strings: vec![0],
        }
    }

    /// A BTF of these named types, in order from id 1 (an empty name:
    /// anonymous), to build small blobs such as feature probes.
    pub fn of(types: Vec<(&str, BtfType)>) -> Btf {
        let mut btf = Btf::new();
        for (name, mut t) in types {
            if !name.is_empty() {
                t.name_off = btf.add_string(name);
            }
            btf.add_type(t);
        }
        btf
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
}

debug_is_display!(BtfError);
