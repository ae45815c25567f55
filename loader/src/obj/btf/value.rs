//! Values of BTF types, both ways: the bytes of a variable, map key or
//! value decoded into a small tree ([`Value`], written out as JSON), and
//! the text a user types (`--set`, a map update) encoded into exactly a
//! type's bytes, checked against the type.
//!
//! # The text syntax ([`encode`])
//!
//! | type                        | text                                                    |
//! |-----------------------------|---------------------------------------------------------|
//! | integer (`int`, `__u8`, …)  | `42`, `-1`, `0x10`, `0o17`, `0b101` (`_` allowed between digits); checked against the type's range |
//! | `bool` (`_Bool`)            | `true`, `false`, `1`, `0`                               |
//! | `enum`                      | an enumerator's name (`MODE_FAST`), or a number in range |
//! | `float`, `double`           | `1.5`, `-2e3`                                           |
//! | `char[N]`                   | `"text"` (escapes `\" \\ \n \t \r \0`); at the top level a bare `text` too. It must leave room for its NUL. |
//! | other arrays                | `[1, 2, 3]`: at most N elements, the rest zero           |
//! | `struct`, `union`           | `{a=1, b=2}` or JSON `{"a": 1, "b": 2}`: fields by name, those not named zero |
//!
//! `typedef`s, `const` and `volatile` are seen through. Nested values use
//! the same syntax (`{name="eth0", ports=[80, 443]}`); inside brackets a
//! bare word runs to the next `,`, `]` or `}`. Pointers cannot be set.
//!
//! # The JSON rendering ([`Value::write_json`])
//!
//! Numbers as numbers, `bool`s as `true`/`false`, enums by enumerator name
//! (a number when no enumerator has the value), char arrays as strings (up
//! to the first NUL), structs and unions as objects by member name
//! (anonymous members' fields inline), arrays as arrays, pointers as
//! `"0x…"` strings, and bytes without a type as arrays of `"0x.."` strings
//! (bpftool's form).

use super::{Btf, BtfError, BtfKind, BtfTypeData};
use std::fmt;

const INT_SIGNED: u8 = 1;
const INT_CHAR: u8 = 2;
const INT_BOOL: u8 = 4;
/// How deeply types may nest (arrays of structs of arrays…).
const MAX_DEPTH: usize = 32;

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A signed integer.
    Int(i128),
    /// An unsigned integer.
    Uint(u128),
    /// A `bool`.
    Bool(bool),
    /// A `float` or `double`.
    Float(f64),
    /// An enum: its enumerator's name, if one has the value.
    Enum {
        /// The enumerator's name.
        name: Option<String>,
        /// The number.
        value: i128,
    },
    /// A char array, up to its first NUL.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// A struct, union or DATASEC: members by name.
    Struct(Vec<(String, Value)>),
    /// A pointer.
    Ptr(u64),
    /// Bytes of a type that has no value form (void, functions).
    Bytes(Vec<u8>),
}

impl Value {
    /// Appends the value as JSON text (see the module's table).
    pub fn write_json(&self, out: &mut String) {
        use fmt::Write as _;
        match self {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Uint(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            Value::Float(f) => json_string(out, &f.to_string()),
            Value::Enum { name: Some(n), .. } => json_string(out, n),
            Value::Enum { name: None, value } => {
                let _ = write!(out, "{value}");
            }
            Value::Str(s) => json_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Struct(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, name);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
            Value::Ptr(p) => json_string(out, &format!("{p:#x}")),
            Value::Bytes(b) => {
                out.push('[');
                for (i, byte) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"0x{byte:02x}\"");
                }
                out.push(']');
            }
        }
    }

    /// The value as JSON text.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    use fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What is wrong with a value's bytes or text. Each names where in the value
/// (`cfg.ports[1]`, starting at the variable or key the caller names) and
/// the type there.
#[derive(Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// An integer outside its type's range.
    #[error("{path} ({ty}): {text} is out of range ({min} to {max})")]
    OutOfRange {
        /// Where.
        path: String,
        /// The type, as C spells it.
        ty: String,
        /// What was given.
        text: String,
        /// The smallest value.
        min: String,
        /// The largest value.
        max: String,
    },
    /// Text of the wrong form for the type.
    #[error("{path} ({ty}): '{text}' is not {expected}")]
    Expected {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// What was given.
        text: String,
        /// What the type takes, in words.
        expected: &'static str,
    },
    /// An enum name that is none of the type's enumerators.
    #[error("{path} ({ty}): '{text}' is not one of its enumerators ({known})")]
    UnknownEnumerator {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// What was given.
        text: String,
        /// The enumerators, comma-separated.
        known: String,
    },
    /// A string longer than its char array holds (with its NUL).
    #[error(
        "{path} ({ty}): the string is {len} bytes; it holds at most {max} and the terminating NUL"
    )]
    StringTooLong {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// The string's length in bytes.
        len: usize,
        /// The most it takes.
        max: u32,
    },
    /// More elements than the array has.
    #[error("{path} ({ty}): {given} elements given; it has {max}")]
    TooManyElements {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// How many were given.
        given: usize,
        /// How many it has.
        max: u32,
    },
    /// A field name that the struct does not have.
    #[error("{path} ({ty}): no field '{field}' (its fields: {known})")]
    UnknownField {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// The name given.
        field: String,
        /// Its fields, comma-separated.
        known: String,
    },
    /// A type whose values cannot be written as text (pointers, functions).
    #[error("{path} ({ty}): a value of this type cannot be set")]
    Unsupported {
        /// Where.
        path: String,
        /// The type.
        ty: String,
    },
    /// Text that does not parse.
    #[error("{path}: cannot read '{text}' at byte {at}: {reason}")]
    Syntax {
        /// Where.
        path: String,
        /// The whole text.
        text: String,
        /// Byte offset of the problem.
        at: usize,
        /// What was expected.
        reason: &'static str,
    },
    /// Fewer bytes than the type's size.
    #[error("{path} ({ty}): {len} bytes given; the type is {size} bytes")]
    Size {
        /// Where.
        path: String,
        /// The type.
        ty: String,
        /// Bytes given.
        len: usize,
        /// The type's size.
        size: u32,
    },
    /// Types nested more deeply than rawbpf follows.
    #[error("{path}: types nest more than {MAX_DEPTH} deep")]
    TooDeep {
        /// Where.
        path: String,
    },
    /// The BTF itself is inconsistent.
    #[error("{path}: {source}")]
    Btf {
        /// Where.
        path: String,
        /// What is wrong.
        source: BtfError,
    },
}

debug_is_display!(ValueError);

/// The name of a type as C spells it, for messages: typedef names kept,
/// `const`/`volatile` dropped (`__u32`, `enum mode`, `char[16]`, `struct cfg`).
pub fn type_name(btf: &Btf, id: u32) -> String {
    type_name_depth(btf, id, 0)
}

fn type_name_depth(btf: &Btf, id: u32, depth: usize) -> String {
    let Ok(t) = btf.type_by_id(id) else {
        return format!("type {id}");
    };
    if depth > MAX_DEPTH {
        return format!("type {id}");
    }
    let name = btf.string(t.name_off).unwrap_or("");
    let named = |prefix: &str| {
        if name.is_empty() {
            format!("{prefix} <anon>")
        } else {
            format!("{prefix} {name}")
        }
    };
    match t.kind {
        BtfKind::Void => "void".into(),
        BtfKind::Int | BtfKind::Float | BtfKind::Typedef => name.to_owned(),
        BtfKind::Enum | BtfKind::Enum64 => named("enum"),
        BtfKind::Struct => named("struct"),
        BtfKind::Union => named("union"),
        BtfKind::Fwd => named("struct"),
        BtfKind::Array => match t.data {
            BtfTypeData::Array {
                elem_type, nelems, ..
            } => format!("{}[{nelems}]", type_name_depth(btf, elem_type, depth + 1)),
            _ => "array".into(),
        },
        BtfKind::Ptr => format!("{} *", type_name_depth(btf, t.size_or_type, depth + 1)),
        BtfKind::Const
        | BtfKind::Volatile
        | BtfKind::Restrict
        | BtfKind::TypeTag
        | BtfKind::Var => type_name_depth(btf, t.size_or_type, depth + 1),
        other => other.name().to_ascii_lowercase(),
    }
}

/// Decodes `bytes` as a value of type `id`; `path` names it in errors.
pub fn decode(btf: &Btf, id: u32, bytes: &[u8], path: &str) -> Result<Value, ValueError> {
    let size = btf.resolve_size(id).map_err(|source| ValueError::Btf {
        path: path.to_owned(),
        source,
    })?;
    if bytes.len() < size as usize {
        return Err(ValueError::Size {
            path: path.to_owned(),
            ty: type_name(btf, id),
            len: bytes.len(),
            size,
        });
    }
    Decoder { btf, path }.value(id, &bytes[..size as usize], 0)
}

struct Decoder<'a> {
    btf: &'a Btf,
    path: &'a str,
}

impl Decoder<'_> {
    fn btf_err(&self, source: BtfError) -> ValueError {
        ValueError::Btf {
            path: self.path.to_owned(),
            source,
        }
    }

    /// The value of type `id` in `bytes` (which start at it).
    fn value(&self, id: u32, bytes: &[u8], depth: usize) -> Result<Value, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::TooDeep {
                path: self.path.to_owned(),
            });
        }
        let id = self.btf.strip_modifiers(id).map_err(|e| self.btf_err(e))?;
        let t = self.btf.type_by_id(id).map_err(|e| self.btf_err(e))?;
        let size = (t.size_or_type as usize).min(bytes.len());
        Ok(match (&t.kind, &t.data) {
            (BtfKind::Int, BtfTypeData::Int { .. }) | (BtfKind::Enum | BtfKind::Enum64, _) => {
                self.bits(id, bytes, 0, 0)?
            }
            (BtfKind::Float, _) => match size {
                4 => Value::Float(f64::from(f32::from_le_bytes(
                    bytes[..4].try_into().unwrap_or([0; 4]),
                ))),
                8 => Value::Float(f64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]))),
                _ => Value::Bytes(bytes[..size].to_vec()),
            },
            (BtfKind::Ptr, _) => Value::Ptr(read_uint(bytes, 0, 64) as u64),
            (
                BtfKind::Array,
                BtfTypeData::Array {
                    elem_type, nelems, ..
                },
            ) => self.array(*elem_type, *nelems, bytes, depth)?,
            (BtfKind::Struct | BtfKind::Union, BtfTypeData::Members(members)) => {
                let mut fields = Vec::with_capacity(members.len());
                for m in members {
                    let (bit_off, bit_size) = member_bits(t.kind_flag, m.offset);
                    let v = if bit_size > 0 {
                        self.bits(m.type_id, bytes, bit_off, bit_size)?
                    } else {
                        let start = (bit_off / 8) as usize;
                        self.value(m.type_id, bytes.get(start..).unwrap_or(&[]), depth + 1)?
                    };
                    let name = self.btf.string(m.name_off).unwrap_or("");
                    match v {
                        // An anonymous struct/union's fields are the parent's, as in C.
                        Value::Struct(inner) if name.is_empty() => fields.extend(inner),
                        v => fields.push((name.to_owned(), v)),
                    }
                }
                Value::Struct(fields)
            }
            (BtfKind::Datasec, BtfTypeData::Datasec(vars)) => {
                let mut fields = Vec::with_capacity(vars.len());
                for v in vars {
                    let name = self.btf.type_name(v.type_id).unwrap_or("").to_owned();
                    let start = v.offset as usize;
                    let end = start.saturating_add(v.size as usize).min(bytes.len());
                    let part = bytes.get(start..end).unwrap_or(&[]);
                    fields.push((name, self.value(v.type_id, part, depth + 1)?));
                }
                Value::Struct(fields)
            }
            (BtfKind::Var, _) => self.value(t.size_or_type, bytes, depth + 1)?,
            _ => Value::Bytes(bytes[..size].to_vec()),
        })
    }

    fn array(
        &self,
        elem: u32,
        nelems: u32,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Value, ValueError> {
        if is_char(self.btf, elem) {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            if let Ok(s) = std::str::from_utf8(&bytes[..end]) {
                return Ok(Value::Str(s.to_owned()));
            }
        }
        let elem_size = self.btf.resolve_size(elem).map_err(|e| self.btf_err(e))? as usize;
        let mut items = Vec::with_capacity(nelems.min(4096) as usize);
        for i in 0..nelems as usize {
            let start = i.saturating_mul(elem_size);
            let part = bytes.get(start..).unwrap_or(&[]);
            items.push(self.value(elem, part, depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    /// An integer, bool or enum of type `id`: the whole type at the start
    /// of `bytes`, or (`bit_size` > 0) a bitfield at `bit_off`.
    fn bits(
        &self,
        id: u32,
        bytes: &[u8],
        bit_off: u32,
        bit_size: u32,
    ) -> Result<Value, ValueError> {
        let id = self.btf.strip_modifiers(id).map_err(|e| self.btf_err(e))?;
        let t = self.btf.type_by_id(id).map_err(|e| self.btf_err(e))?;
        let scalar = Scalar::of(self.btf, id).ok_or_else(|| ValueError::Unsupported {
            path: self.path.to_owned(),
            ty: type_name(self.btf, id),
        })?;
        let (off, bits) = if bit_size > 0 {
            (bit_off, bit_size)
        } else {
            (scalar.bit_off, scalar.bits)
        };
        let raw = read_uint(bytes, off, bits);
        let signed_value = sign_extend(raw, bits);
        Ok(match scalar.class {
            Class::Bool => Value::Bool(raw != 0),
            Class::Int if scalar.signed => Value::Int(signed_value),
            Class::Int => Value::Uint(raw),
            Class::Enum => {
                let value = if scalar.signed {
                    signed_value
                } else {
                    raw as i128
                };
                let name = enumerators(self.btf, &t.data)
                    .into_iter()
                    .find(|(_, v)| *v == value)
                    .map(|(n, _)| n.to_owned());
                Value::Enum { name, value }
            }
        })
    }
}

/// A member's (bit offset, bitfield size; 0 for a whole member).
fn member_bits(kind_flag: bool, offset: u32) -> (u32, u32) {
    if kind_flag {
        (offset & 0xff_ffff, offset >> 24)
    } else {
        (offset, 0)
    }
}

/// Whether an array of `elem` is a string: a one-byte integer named `char`
/// (clang's) or marked CHAR (pahole's).
fn is_char(btf: &Btf, elem: u32) -> bool {
    let Ok(id) = btf.strip_modifiers(elem) else {
        return false;
    };
    let Ok(t) = btf.type_by_id(id) else {
        return false;
    };
    match t.data {
        BtfTypeData::Int { encoding, bits, .. } if t.kind == BtfKind::Int && bits == 8 => {
            encoding & INT_CHAR != 0
                || (encoding & INT_BOOL == 0
                    && matches!(btf.string(t.name_off), Ok("char" | "signed char")))
        }
        _ => false,
    }
}

/// The kinds of scalar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Int,
    Bool,
    Enum,
}

/// An integer-like type's layout.
#[derive(Clone, Copy)]
struct Scalar {
    class: Class,
    signed: bool,
    /// Bits from the start of the type where the value starts (INT's offset).
    bit_off: u32,
    bits: u32,
}

impl Scalar {
    /// The layout of `id` (modifiers already stripped), if it is an
    /// integer, bool or enum.
    fn of(btf: &Btf, id: u32) -> Option<Scalar> {
        let t = btf.type_by_id(id).ok()?;
        match (t.kind, &t.data) {
            (
                BtfKind::Int,
                BtfTypeData::Int {
                    encoding,
                    offset,
                    bits,
                },
            ) => Some(Scalar {
                class: if encoding & INT_BOOL != 0 {
                    Class::Bool
                } else {
                    Class::Int
                },
                signed: encoding & INT_SIGNED != 0,
                bit_off: u32::from(*offset),
                bits: u32::from(*bits).min(128),
            }),
            (BtfKind::Enum | BtfKind::Enum64, _) => Some(Scalar {
                class: Class::Enum,
                signed: t.kind_flag,
                bit_off: 0,
                bits: (t.size_or_type * 8).min(64),
            }),
            _ => None,
        }
    }

    fn range(&self) -> (i128, u128) {
        let bits = self.bits.clamp(1, 128);
        if self.signed {
            let max = (1u128 << (bits - 1)) - 1;
            (-(max as i128) - 1, max)
        } else {
            let max = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            (0, max)
        }
    }
}

/// An enum's enumerators as (name, value).
fn enumerators<'b>(btf: &'b Btf, data: &BtfTypeData) -> Vec<(&'b str, i128)> {
    match data {
        BtfTypeData::Enum(e) => e
            .iter()
            .map(|e| (btf.string(e.name_off).unwrap_or(""), i128::from(e.val)))
            .collect(),
        BtfTypeData::Enum64(e) => e
            .iter()
            .map(|e| (btf.string(e.name_off).unwrap_or(""), i128::from(e.val)))
            .collect(),
        _ => Vec::new(),
    }
}

/// `bits` bits (at most 128) at bit `off` of `bytes`, little-endian; bytes
/// past the end read as zero.
fn read_uint(bytes: &[u8], off: u32, bits: u32) -> u128 {
    let mut v: u128 = 0;
    for i in 0..bits.min(128) {
        let bit = off + i;
        let byte = bytes.get((bit / 8) as usize).copied().unwrap_or(0);
        if byte >> (bit % 8) & 1 != 0 {
            v |= 1u128 << i;
        }
    }
    v
}

/// Writes the low `bits` bits of `v` at bit `off` of `out`, little-endian.
fn write_uint(out: &mut [u8], off: u32, bits: u32, v: u128) {
    for i in 0..bits.min(128) {
        let bit = off + i;
        if let Some(byte) = out.get_mut((bit / 8) as usize) {
            let mask = 1u8 << (bit % 8);
            if v >> i & 1 != 0 {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

fn sign_extend(raw: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return raw as i128;
    }
    let shift = 128 - bits;
    ((raw << shift) as i128) >> shift
}

mod encode;
pub use encode::encode;

#[cfg(test)]
mod tests;
